"""One slow thing does not stall everyone.

On PostgreSQL a member's unit of work waits DB_LOCK_TIMEOUT_SECONDS in all for a row lock,
then answers 815 (not attempts x timeout). A Data Import writes in a few bulk statements,
whatever its size, and while it holds SQLite's write lock another process's balance read
still answers (WAL readers never need the write lock).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from core.db import Retry
from core.status import PointsError
from tests.core.points_harness import Env, requires_postgres
from tests.support.clock import Clock
from tests.support.members import member_csv

# ---------------------------------------------------------------- PostgreSQL lock waits


@requires_postgres
@pytest.mark.postgres
def test_a_redemption_behind_a_held_row_lock_answers_815_within_the_budget(
        postgres_url: str, clock: Clock) -> None:
    env = Env(postgres_url, clock)
    try:
        # Ten attempts of a 1 s timeout each would keep the member 10 s and more.
        service = env.service(db_lock_timeout_seconds=1, db_retry_attempts=10)
        member = env.add_member(service, points=1000)
        assert member.mobile is not None
        service.issue_validation_code(member.mobile, 500)
        code = env.sender.last_code(member.id)
        answers: list[object] = []

        def redeem(reference: str) -> None:
            try:
                answers.append(service.redeem(member.mobile or "", 500, code,
                                              transaction_number="T-1",
                                              external_reference=reference).status.code)
            except PointsError as error:
                answers.append(error.code)

        holder = create_engine(postgres_url, poolclass=NullPool)
        try:
            with holder.connect() as connection:
                # Another transaction (a large import, say) holds the member's row.
                connection.execute(text("SELECT id FROM member WHERE id = :id FOR UPDATE"),
                                   {"id": member.id})
                started = time.monotonic()
                waiting = threading.Thread(target=redeem, args=("E-1",), daemon=True)
                waiting.start()
                waiting.join(timeout=30)
                elapsed = time.monotonic() - started
                answered = not waiting.is_alive()
                connection.rollback()
            waiting.join(timeout=60)
        finally:
            holder.dispose()
        assert answered, "the redemption was still waiting for the row lock after 30 s"
        assert answers == [815]
        assert elapsed < 6, f"815 came after {elapsed:.1f} s, not about 1 s"
        # Nothing was written; with the lock released, the same request redeems.
        assert service.balance(member.mobile).current_points == 1000
        redeem("E-1")
        assert answers == [815, 800]
        assert service.audit() == []
    finally:
        env.close()


@requires_postgres
@pytest.mark.postgres
def test_a_retry_waits_only_for_what_is_left_of_the_lock_budget(
        postgres_url: str, clock: Clock) -> None:
    env = Env(postgres_url, clock)
    try:
        service = env.service(db_lock_timeout_seconds=3)
        seen: list[str] = []

        def unit(session: Session) -> None:
            value = session.connection().execute(text("SHOW lock_timeout")).scalar_one()
            seen.append(str(value))
            if len(seen) == 1:
                time.sleep(0.5)
                raise Retry()

        service.db.run(unit)
        assert seen[0] == "3s"
        left = int(seen[1].removesuffix("ms"))
        assert 0 < left <= 2500
        # The budget is per unit: the next unit starts with the whole of it again.
        service.db.run(unit)
        assert seen[2] == "3s"
    finally:
        env.close()


# ---------------------------------------------------------------- Data Import in bulk


def import_rows(count: int, first: int, *, extra: list[dict[str, Any]] | None = None
                ) -> bytes:
    rows: list[dict[str, Any]] = [
        {"external_id": f"BULK{first + i}", "name": f"Member {first + i}", "type": "loyalty",
         "current_points": 10 + i % 7, "lifetime_points": 20 + i % 7,
         "lifetime_purchases": "1.50"} for i in range(count)]
    return member_csv(rows + (extra or []))


def test_an_import_writes_in_a_few_statements_whatever_its_size(sqlite_env: Env) -> None:
    service = sqlite_env.service()
    service.import_csv(import_rows(1000, 0))  # 1,000 members who exist
    statements: list[str] = []
    event.listen(service.db.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: statements.append(statement))
    # 1,000 top-ups of those members and 1,000 new members, in one file.
    result = service.import_csv(import_rows(2000, 0))
    assert (result.created, result.updated) == (1000, 1000)
    assert len(statements) <= 20, "\n".join(s[:80] for s in statements[:30])
    assert service.member("BULK5").current_points == 2 * (10 + 5)
    assert service.member("BULK1500").current_points == 10 + 1500 % 7
    assert service.audit() == []


def hold_an_import(url: str, data: bytes, holding: Any, release: Any, results: Any) -> None:
    """Import `data` in this process, pausing at its first ledger write (the write lock
    held, the members written) until `release` is set."""
    from sqlalchemy import event

    from core.service import PointsService
    from core.settings import load_settings

    service = PointsService(load_settings(database_url=url))

    def pause(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO ledger_entry") and not holding.is_set():
            holding.set()
            release.wait(timeout=120)

    event.listen(service.db.engine, "before_cursor_execute", pause)
    try:
        result = service.import_csv(data, filename="big.csv")
        results.put(("ok", result.created))
    except Exception as error:
        results.put(("error", f"{type(error).__name__}: {error}"))
    finally:
        service.db.dispose()


def test_a_balance_read_answers_while_a_big_import_holds_the_write_lock(
        sqlite_env: Env, tmp_path: Path) -> None:
    service = sqlite_env.service()
    member = sqlite_env.add_member(service, points=700)
    assert member.mobile is not None
    data = import_rows(20_000, 0, extra=[{"mobile": member.mobile, "current_points": 5,
                                          "lifetime_points": 5}])
    context = multiprocessing.get_context("forkserver")
    holding, release, results = context.Event(), context.Event(), context.Queue()
    importer = context.Process(target=hold_an_import,
                               args=(sqlite_env.url, data, holding, release, results))
    importer.start()
    try:
        assert holding.wait(timeout=120), "the import never reached its writes"
        # The import holds the write lock: a writer cannot begin.
        probe = sqlite3.connect(sqlite_env.url.removeprefix("sqlite:///"), timeout=0,
                                isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
        finally:
            probe.close()
        balances: list[int] = []
        reader = threading.Thread(
            target=lambda: balances.append(service.balance(member.mobile or "")
                                           .current_points), daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert balances == [700], "the balance read did not answer within 10 s"
    finally:
        release.set()
        importer.join(timeout=120)
    assert results.get(timeout=10) == ("ok", 20_000)
    assert service.balance(member.mobile).current_points == 705
    assert service.audit() == []
