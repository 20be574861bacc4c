"""Crash: a process redeeming with validation codes (and retrying), importing several-row
files, earning on bills, reversing and giving goodwill in a loop is killed with SIGKILL at
random moments, 20 times, and started again each time; after every kill the books balance
(`benchmarks.drills.violations`: the engine's audit, and whole import batches). And the
audit really sees each kind of broken books, so an empty audit means something.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from benchmarks.drills import (
    crash_drill,
    engine_settings,
    members_csv,
    violations,
)
from core.delivery import RecordingSender
from core.models import CodeState, ImportBatch, LedgerEntry, Redemption, Source, ValidationCode
from core.service import PointsService

KILLS = 20


@pytest.mark.slow
def test_sigkill_at_random_moments_never_breaks_the_books(database_url: str) -> None:
    audits: list[int] = []
    outcome = crash_drill(database_url, kills=KILLS,
                          on_kill=lambda k, problems: audits.append(k))
    assert outcome.violations == []
    assert audits == list(range(KILLS))  # audited after every kill
    assert outcome.crashes == KILLS  # each one killed a live, working process
    assert outcome.requests > KILLS  # and it got work done between kills


def broken(service: PointsService, damage: object) -> list[str]:
    service.db.run(damage)  # type: ignore[arg-type]
    return violations(service)


@pytest.fixture
def service(database_url: str) -> PointsService:
    sender = RecordingSender()
    engine = PointsService(engine_settings(database_url), senders=[sender])
    engine.import_csv(members_csv([{"mobile": "+919860000001", "points": 1000},
                                   {"mobile": "+919860000002", "points": 500}]))
    engine.issue_validation_code("+919860000001", 100)
    engine.redeem("+919860000001", 100, sender.last_code(), transaction_number="T1",
                  external_reference="E1")
    assert violations(engine) == []
    return engine


def test_the_audit_sees_a_redemption_without_its_ledger_entry(service: PointsService) -> None:
    def damage(session: Session) -> None:
        entry = session.exec(select(LedgerEntry).where(
            LedgerEntry.source == Source.REDEMPTION)).one()
        session.delete(entry)
    problems = broken(service, damage)
    assert any("has no matching ledger entry" in p for p in problems)
    assert any("!= ledger sum" in p for p in problems)


def test_the_audit_sees_a_ledger_entry_without_its_redemption(service: PointsService) -> None:
    def damage(session: Session) -> None:
        for code in session.exec(select(ValidationCode)).all():
            code.redemption_id = None
            session.add(code)
        session.flush()
        session.delete(session.exec(select(Redemption)).one())
    assert any("has no redemption record" in p for p in broken(service, damage))


def test_the_audit_sees_a_used_code_without_its_redemption(service: PointsService) -> None:
    def damage(session: Session) -> None:
        code = session.exec(select(ValidationCode)).one()
        assert code.state == CodeState.USED
        code.redemption_id = "RNOSUCHONE"
        session.add(code)
    assert any("used without a redemption" in p for p in broken(service, damage))


def test_the_audit_sees_a_half_applied_import(service: PointsService) -> None:
    def damage(session: Session) -> None:
        entry = session.exec(select(LedgerEntry).where(LedgerEntry.source == Source.IMPORT)
                             .order_by(col(LedgerEntry.id).desc())).first()
        assert entry is not None
        entry.points = entry.lifetime_points = 0  # as if the row was never applied
        session.add(entry)
        session.add(ImportBatch(digest="x" * 64, filename="lost.csv", rows=2,
                                created_at=datetime.now(UTC)))
    problems = broken(service, damage)
    assert any("0 ledger entries (half applied)" in p for p in problems)
    assert any("!= ledger sum" in p for p in problems)
