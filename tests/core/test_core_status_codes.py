"""Every status code that can arise in this system is made to arise here, on a real
database; the ones that cannot arise are listed with the reason, and a test keeps the two
lists together equal to the catalogue.

Each scenario sets up the situation through the service's public operations and returns
the refusal; the test checks its code (and, where the seed asks for it, the message).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, select

from core import ledger
from core.db import Database
from core.delivery import RecordingSender
from core.models import Member, Source
from core.service import PointsService, RedemptionResult
from core.settings import load_settings
from core.status import CATALOGUE, SUCCESS, PointsError, message
from tests.core.points_harness import Env
from tests.support.members import member_csv

# Codes of the seed that this system never answers, and why (docs/status-codes.md).
CANNOT_ARISE: dict[int, str] = {
    820: "the same fraud refusal as 809 in another context; 809 is answered everywhere",
    822: "missed-call validation is not offered",
    823: "missed-call redemption is not offered",
    825: "there are no signed API clients",
    826: "there are no points categories",
    886: "every transient failure of a redemption answers 815",
    887: "every transient failure of a redemption answers 815",
    894: "every transient failure of a redemption answers 815",
    895: "this service is the loyalty program",
    898: "every transient failure of a redemption answers 815",
    3045: "the same fraud refusal as 809",
}

Scenario = Callable[[Env], PointsError]
SCENARIOS: dict[int, Scenario] = {}


def scenario(code: int) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS[code] = function
        return function
    return register


def refusal(action: Callable[[], object]) -> PointsError:
    """Run `action`, which must be refused; return the refusal."""
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def redeem(service: PointsService, who: str, points: object, code: str | None = None, *,
           transaction_number: str = "BILL-1", external_reference: str = "REF-1",
           redemption_time: str | None = None) -> RedemptionResult:
    return service.redeem(who, points, code, transaction_number=transaction_number,
                          external_reference=external_reference,
                          redemption_time=redemption_time)


@scenario(686)
def _campaign_member(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, customer_type="campaign", points=1000).mobile
    assert who is not None
    assert refusal(lambda: service.is_redeemable(who, 200)).code == 686
    assert refusal(lambda: service.issue_validation_code(who, 200)).code == 686
    assert refusal(lambda: service.earn(who, "B-686", "10")).code == 686
    return refusal(lambda: redeem(service, who, 200))


@scenario(801)
def _invalid_points(env: Env) -> PointsError:
    service = env.service()
    who = env.add_member(service, points=1000).mobile
    assert who is not None
    for bad in ("0", 0, -5, "-5", "1.5", 1.5, "abc", "", "  ", True, None, "1,00", 10**13):
        assert refusal(lambda bad=bad: service.is_redeemable(who, bad)).code == 801, bad
    assert refusal(lambda: service.issue_validation_code(who, "0")).code == 801
    assert refusal(lambda: service.revert(who, "BILL-1", "x")).code == 801
    return refusal(lambda: redeem(service, who, "12.5", "123456"))


@scenario(802)
def _invalid_identifier(env: Env) -> PointsError:
    service = env.service()
    # ("12" is no mobile, so it is an external id: 816, not 802; "+12" is a bad mobile.)
    for bad in ("", "   ", "+12", "+1 555", "a@b", "not@an@email.com", "1abc!", "x" * 300,
                "name with spaces", "ext\x00id", "mobile:12", "email:12", "external_id:a b",
                "1" * 65):
        assert refusal(lambda bad=bad: service.is_redeemable(bad, 200)).code == 802, bad
    assert refusal(lambda: service.balance("@@")).code == 802
    return refusal(lambda: redeem(service, "nobody@", 200, "123456"))


@scenario(803)
def _check_more_than_balance(env: Env) -> PointsError:
    service = env.service()
    who = env.add_member(service, points=150).mobile
    assert who is not None
    assert refusal(lambda: service.issue_validation_code(who, 200)).code == 803
    assert env.sender.sent == []  # nothing was sent for an amount that cannot be redeemed
    assert service.is_redeemable(who, 150).points == 150
    return refusal(lambda: service.is_redeemable(who, 151))


@scenario(804)
def _min_current_points(env: Env) -> PointsError:
    service = env.service(redemption_min_current_points=500)
    who = env.add_member(service, points=499, lifetime_points=5000).mobile
    assert who is not None
    error = refusal(lambda: service.is_redeemable(who, 200))
    service.goodwill(who, 1, reason="top up", staff="care")
    assert service.is_redeemable(who, 200).points == 200  # 500 current points is enough
    return error


@scenario(805)
def _min_lifetime_points(env: Env) -> PointsError:
    service = env.service(redemption_min_lifetime_points=1000)
    who = env.add_member(service, points=900, lifetime_points=999).mobile
    assert who is not None
    return refusal(lambda: service.is_redeemable(who, 200))


@scenario(806)
def _min_lifetime_purchases(env: Env) -> PointsError:
    service = env.service(redemption_min_lifetime_purchases="100.00")
    who = env.add_member(service, points=900, purchases="99.99").mobile
    assert who is not None
    error = refusal(lambda: service.is_redeemable(who, 200))
    service.earn(who, "B-806", "0.01")
    assert service.is_redeemable(who, 200).points == 200
    return error


@scenario(807)
def _not_a_multiple(env: Env) -> PointsError:
    service = env.service(redemption_multiple_of=50)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    assert service.is_redeemable(who, 250).points == 250
    error = refusal(lambda: service.is_redeemable(who, 260))
    # The seed's <X> is filled in with the configured multiple.
    assert "multiple of 50" in error.status.message
    assert "{" not in error.status.message
    return error


@scenario(808)
def _wrong_validation_code(env: Env) -> PointsError:
    service = env.service()
    who = env.add_member(service, points=900).mobile
    assert who is not None
    never_issued = refusal(lambda: redeem(service, who, 200, "123456"))
    assert never_issued.code == 808 and never_issued.reason == "none"
    service.issue_validation_code(who, 200)
    good = env.sender.last_code()
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    return refusal(lambda: redeem(service, who, 200, wrong))


@scenario(809)
def _fraud(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    for status in ("NONE", "NOT_FRAUD", "INTERNAL"):
        ok = env.add_member(service, fraud_status=status, points=900).mobile
        assert ok is not None
        assert service.is_redeemable(ok, 200).points == 200, status
    for status in ("CONFIRMED", "RECONFIRMED"):
        blocked = env.add_member(service, fraud_status=status, points=900).mobile
        assert blocked is not None
        assert refusal(lambda b=blocked: service.is_redeemable(b, 200)).code == 809
    # Which statuses block is configuration.
    custom = env.service(fraud_statuses_blocking="internal", validation_code_required=False)
    marked = env.add_member(custom, fraud_status="MARKED", points=900).mobile
    internal = env.add_member(custom, fraud_status="INTERNAL", points=900).mobile
    assert marked is not None and internal is not None
    assert custom.is_redeemable(marked, 200).points == 200
    assert refusal(lambda: custom.is_redeemable(internal, 200)).code == 809
    who = env.add_member(service, fraud_status="MARKED", points=900).mobile
    assert who is not None
    return refusal(lambda: redeem(service, who, 200))


@scenario(810)
def _revert_mismatch(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    redeem(service, who, 300, transaction_number="T-810")
    error = refusal(lambda: service.revert(who, "T-810", 200))
    assert error.facts["remaining"] == 300
    assert service.balance(who).current_points == 600  # nothing was reverted
    return error


@scenario(811)
def _unknown_transaction(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    other = env.add_member(service, points=900).mobile
    assert who is not None and other is not None
    redeem(service, other, 300, transaction_number="T-OTHER")
    # Another member's transaction number is not this member's.
    assert refusal(lambda: service.revert(who, "T-OTHER", 300)).code == 811
    # A malformed transaction number, on redeem and on revert.
    assert refusal(lambda: redeem(service, who, 200, transaction_number="")).code == 811
    assert refusal(lambda: redeem(service, who, 200,
                                  transaction_number="has space")).code == 811
    assert refusal(lambda: service.revert(who, "bad txn!", 300)).code == 811
    return refusal(lambda: service.revert(who, "T-NEVER", 300))


@scenario(812)
def _already_reverted(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    redeem(service, who, 300, transaction_number="T-812")
    service.revert(who, "T-812", 300)
    error = refusal(lambda: service.revert(who, "T-812", 300))
    assert service.balance(who).current_points == 900  # given back once
    return error


@scenario(813)
def _debit_below_zero(env: Env) -> PointsError:
    """The ledger's own guard: a debit that would take the balance below zero is refused
    even when called past the rules (it cannot be reached through the service, where the
    member row is locked while the rules run); the database refuses it too."""
    service = env.service()
    who = env.add_member(service, points=50).mobile
    assert who is not None

    def debit(session: Session) -> None:
        member = session.exec(select(Member).where(Member.mobile == who)).one()
        ledger.post(session, member, Source.REDEMPTION, -51, reference="R-guard",
                    now=env.clock())

    error = refusal(lambda: service.db.run(debit))
    assert service.balance(who).current_points == 50
    assert service.audit() == []
    with pytest.raises(IntegrityError):
        service.db.run(lambda s: s.connection().execute(text(
            "UPDATE member SET current_points = -1")))
    assert service.balance(who).current_points == 50
    return error


@scenario(814)
def _bill_without_redemption(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.earn(who, "BILL-814", "120")
    return refusal(lambda: service.revert(who, "BILL-814", 120))


@scenario(816)
def _unknown_member(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    env.add_member(service, points=900)
    nobody = "+919999999999"
    for action in (lambda: service.balance(nobody), lambda: service.history("ghost@x.com"),
                   lambda: service.is_redeemable("EXT-NOBODY", 200),
                   lambda: service.issue_validation_code(nobody, 200),
                   lambda: service.earn(nobody, "B-816", "10"),
                   lambda: service.goodwill(nobody, 10, reason="r", staff="s"),
                   lambda: service.revert(nobody, "T-1", 10)):
        assert refusal(action).code == 816
    return refusal(lambda: redeem(service, nobody, 200))


@scenario(817)
def _reference_reused(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    redeem(service, who, 200, external_reference="REF-817", transaction_number="T-1")
    assert refusal(lambda: redeem(service, who, 200, external_reference="")).code == 817
    assert refusal(lambda: redeem(service, who, 200,
                                  external_reference="no spaces")).code == 817
    error = refusal(lambda: redeem(service, who, 300, external_reference="REF-817",
                                   transaction_number="T-1"))
    assert error.reason == "reference_conflict"
    assert service.balance(who).current_points == 700
    return error


@scenario(818)
def _redeem_more_than_balance(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=199).mobile
    assert who is not None
    error = refusal(lambda: redeem(service, who, 200))
    assert service.balance(who).current_points == 199
    return error


@scenario(819)
def _above_maximum(env: Env) -> PointsError:
    service = env.service(redemption_max_points=500)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    assert service.is_redeemable(who, 500).points == 500
    return refusal(lambda: service.is_redeemable(who, 501))


@scenario(821)
def _below_minimum(env: Env) -> PointsError:
    service = env.service(redemption_min_points=150)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    assert service.is_redeemable(who, 150).points == 150
    return refusal(lambda: service.is_redeemable(who, 149))


@scenario(824)
def _code_required(env: Env) -> PointsError:
    service = env.service()
    who = env.add_member(service, points=900).mobile
    assert who is not None
    assert refusal(lambda: redeem(service, who, 200, "   ")).code == 824
    error = refusal(lambda: redeem(service, who, 200, None))
    # Without the requirement, no code is needed.
    relaxed = env.service(validation_code_required=False)
    assert redeem(relaxed, who, 200).points_redeemed == 200
    return error


@scenario(827)
def _redemption_disabled(env: Env) -> PointsError:
    service = env.service(redemption_enabled=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    assert refusal(lambda: service.issue_validation_code(who, 200)).code == 827
    assert "is not enabled" in CATALOGUE[827]
    return refusal(lambda: service.is_redeemable(who, 200))


@scenario(859)
def _bad_redemption_time(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    for bad in ("2026-13-01 00:00:00", "yesterday", "2026-02-28T10:00:00", "2026-02-30 10:00:00"):
        assert refusal(lambda bad=bad: redeem(service, who, 200, redemption_time=bad)
                       ).code == 859, bad
    future = (env.clock() + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    error = refusal(lambda: redeem(service, who, 200, redemption_time=future))
    past = redeem(service, who, 200, redemption_time="2026-02-28 10:00:00")
    assert past.redemption_time.isoformat() == "2026-02-28T10:00:00+00:00"
    return error


@scenario(860)
def _cannot_issue(env: Env) -> PointsError:
    service = env.service(senders=[RecordingSender("sms", fail=True)])
    who = env.add_member(service, points=900).mobile
    assert who is not None
    return refusal(lambda: service.issue_validation_code(who, 200))


@scenario(881)
def _not_enrolled(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, customer_type="non_loyalty", points=900).mobile
    assert who is not None
    assert refusal(lambda: service.is_redeemable(who, 200)).code == 881
    assert refusal(lambda: service.earn(who, "B-881", "10")).code == 881
    return refusal(lambda: redeem(service, who, 200))


@scenario(888)
def _bad_setting_value(env: Env) -> PointsError:
    for bad in ({"redemption_min_points": "lots"}, {"fraud_statuses_blocking": "SOMETIMES"},
                {"default_phone_region": "XX"}, {"redemption_enabled": "perhaps"},
                {"otp_length": "six"}):
        error = refusal(lambda bad=bad: load_settings(database_url=env.url, **bad))
        assert error.code == 888, bad
        assert next(iter(bad)).upper() in error.detail  # the message names the setting
    memory = refusal(lambda: Database("sqlite:///:memory:"))
    assert memory.code == 888
    for url in ("nonsense", "oracle://db/x", "postgresql://u:pw@h:port/x", "postgresql+x://h"):
        error = refusal(lambda url=url: Database(url))
        assert error.code == 888 and error.detail.startswith("DATABASE_URL: "), url
    return refusal(lambda: load_settings(database_url=env.url, earn_rate="fast"))


@scenario(899)
def _bad_setting_combination(env: Env) -> PointsError:
    for bad, name in (
        ({"redemption_min_points": 500, "redemption_max_points": 100}, "REDEMPTION_MAX_POINTS"),
        ({"redemption_min_points": 101, "redemption_max_points": 149,
          "redemption_multiple_of": 150}, "REDEMPTION_MULTIPLE_OF"),
        ({"redemption_multiple_of": 0}, "REDEMPTION_MULTIPLE_OF"),
        ({"otp_length": 3}, "OTP_LENGTH"),
        ({"otp_max_attempts": 0}, "OTP_MAX_ATTEMPTS"),
        ({"secret_key": "   "}, "SECRET_KEY"),
        ({"redemption_min_current_points": -1}, "REDEMPTION_MIN_CURRENT_POINTS"),
    ):
        error = refusal(lambda bad=bad: load_settings(database_url=env.url, **bad))
        assert error.code == 899, bad
        assert name in error.detail, (bad, error.detail)
    return refusal(lambda: load_settings(database_url=env.url, db_retry_attempts=0))


@scenario(901)
def _bad_reversal(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    done = redeem(service, who, 300)
    rid = done.redemption_id
    for bad_id in ("", "   ", "has space", "x" * 129):
        assert refusal(lambda b=bad_id: service.reverse(b)).code == 901, bad_id
    for bad_points in ("0", "-3", "abc", "2.5"):
        assert refusal(lambda p=bad_points: service.reverse(rid, p)).code == 901, bad_points
    # Goodwill points that are invalid or above GOODWILL_MAX_POINTS: 901 (801 speaks of
    # redeeming), its detail in goodwill's words.
    for bad_points in ("-1", "0", "abc", 10_001):
        goodwill = refusal(lambda p=bad_points: service.goodwill(who, p, reason="r", staff="s"))
        assert goodwill.code == 901 and "goodwill" in goodwill.detail, bad_points
        assert "redeem" not in goodwill.detail, bad_points
    error = refusal(lambda: service.reverse(rid, 301))
    assert error.facts["remaining"] == 300
    assert service.balance(who).current_points == 600
    return error


@scenario(902)
def _no_such_redemption(env: Env) -> PointsError:
    service = env.service()
    return refusal(lambda: service.reverse("RNOSUCHTHING"))


@scenario(904)
def _wrong_member_on_reversal(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    other = env.add_member(service, points=900).mobile
    assert who is not None and other is not None
    rid = redeem(service, who, 300).redemption_id
    assert refusal(lambda: service.reverse(rid, identifier="not valid!")).code == 904
    error = refusal(lambda: service.reverse(rid, identifier=other))
    assert service.balance(who).current_points == 600
    assert service.balance(other).current_points == 900
    return error


@scenario(3802)
def _already_reversed(env: Env) -> PointsError:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    rid = redeem(service, who, 300).redemption_id
    service.reverse(rid)
    error = refusal(lambda: service.reverse(rid))
    assert refusal(lambda: service.reverse(rid, 1)).code == 3802
    assert service.balance(who).current_points == 900
    return error


# 815 and 889 need the database to stay busy. On SQLite: the write lock held by another
# connection, and a short busy timeout on the service's connections (set at the driver edge
# as a connection is checked out). On PostgreSQL: the member's row locked by another
# connection, and a short lock_timeout configured on the database.


def _short_busy_timeout(service: PointsService, milliseconds: int = 20) -> None:
    @event.listens_for(service.db.engine, "checkout")
    def _busy(dbapi_connection: sqlite3.Connection, _record: object, _proxy: object) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _hold_write_lock(url: str) -> sqlite3.Connection:
    holder = sqlite3.connect(_sqlite_path(url), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@contextmanager
def busy_database(env: Env, service: PointsService, member_id: int) -> Iterator[None]:
    """While the block runs, every write that touches member `member_id` finds it locked
    by someone else, and the service gives up waiting quickly."""
    if env.url.startswith("sqlite"):
        _short_busy_timeout(service)
        holder = _hold_write_lock(env.url)
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
        return
    admin = create_engine(env.url, poolclass=NullPool)
    name = make_url(env.url).database
    try:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" SET lock_timeout = \'20ms\''))
            connection.commit()
        service.db.engine.dispose()  # new connections pick up the setting
        with admin.connect() as row_holder:
            row_holder.execute(text("SELECT id FROM member WHERE id = :id FOR UPDATE"),
                               {"id": member_id})
            try:
                yield
            finally:
                row_holder.rollback()
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" RESET lock_timeout'))
            connection.commit()
    finally:
        admin.dispose()


@scenario(815)
def _database_stays_locked(env: Env) -> PointsError:
    service = env.service(validation_code_required=False, db_retry_attempts=3)
    member = env.add_member(service, points=900)
    who = member.mobile
    assert who is not None
    rid = redeem(service, who, 100, external_reference="REF-BEFORE",
                 transaction_number="T-BEFORE").redemption_id
    with busy_database(env, service, member.id):
        error = refusal(lambda: redeem(service, who, 200, external_reference="REF-LOCKED"))
        assert refusal(lambda: service.issue_validation_code(who, 200)).code == 815
        assert refusal(lambda: service.reverse(rid)).code == 815
        assert refusal(lambda: service.revert(who, "T-BEFORE", 100)).code == 815
    # Nothing was half done: the balance is whole, and the same request now goes through.
    assert service.balance(who).current_points == 800
    assert service.history(who)[0].points_reversed == 0
    assert redeem(service, who, 200, external_reference="REF-LOCKED"
                  ).balance == 600
    return error


@scenario(889)
def _database_stays_locked_while_issuing(env: Env) -> PointsError:
    service = env.service(db_retry_attempts=2)
    member = env.add_member(service, points=900, external_id="EXT889")
    who = member.mobile or "EXT889"
    with busy_database(env, service, member.id):
        assert refusal(lambda: service.goodwill(who, 10, reason="r", staff="s")).code == 889
        update = member_csv([{"external_id": "EXT889", "current_points": 5,
                              "lifetime_points": 5}])
        assert refusal(lambda: service.import_csv(update)).code == 889
        error = refusal(lambda: service.earn(who, "B-889", "10"))
    assert service.balance(who).current_points == 900
    assert service.earn(who, "B-889", "10").points == 10
    assert service.import_csv(update).points == 5
    assert service.balance(who).current_points == 915
    return error


@scenario(903)
def _database_error_while_redeeming(env: Env) -> PointsError:
    """A database error that no retry mends (a table gone): 903 with an error id that the
    log line carries too; nothing was written."""
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    admin = create_engine(env.url, poolclass=NullPool)
    rename = 'ALTER TABLE {} RENAME TO {}'
    try:
        with admin.begin() as connection:
            connection.execute(text(rename.format("redemption", "redemption_gone")))
        with _captured("core.redemption") as records:
            error = refusal(lambda: redeem(service, who, 200, external_reference="REF-903"))
        with admin.begin() as connection:
            connection.execute(text(rename.format("redemption_gone", "redemption")))
    finally:
        admin.dispose()
    error_id = error.facts["error_id"]
    assert error.detail == f"error id {error_id}"
    assert [r.levelname for r in records if error_id in r.getMessage()] == ["ERROR"]
    assert service.balance(who).current_points == 900
    assert redeem(service, who, 200, external_reference="REF-903").balance == 700
    return error


@contextmanager
def _captured(logger: str) -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    logging.getLogger(logger).addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger(logger).removeHandler(handler)


def test_transient_failure_that_clears_is_retried(sqlite_env: Env,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A lock released while the retries run: the redemption goes through, once."""
    import threading

    service = sqlite_env.service(validation_code_required=False, db_retry_attempts=10)
    who = sqlite_env.add_member(service, points=900).mobile
    assert who is not None
    _short_busy_timeout(service)
    holder = _hold_write_lock(sqlite_env.url)
    release = threading.Timer(0.1, holder.rollback)
    release.start()
    try:
        with caplog.at_level("WARNING", logger="core.db"):
            result = redeem(service, who, 200)
    finally:
        release.join()
        holder.close()
    assert any("transient database failure" in r.getMessage() for r in caplog.records)
    assert result.balance == 700
    assert service.balance(who).current_points == 700
    assert len([e for e in service.ledger_entries(who) if e.source == Source.REDEMPTION]) == 1
    assert service.audit() == []


@pytest.mark.parametrize("code", sorted(SCENARIOS))
def test_status_code_arises(code: int, env: Env) -> None:
    error = SCENARIOS[code](env)
    assert error.code == code, f"expected {code}, got {error}"
    assert error.status.code == code
    assert error.status.message == message(code, **error.facts)
    assert str(error).startswith(f"{code} ")
    for service in env.services:
        assert service.audit() == []


def test_every_reachable_code_has_a_scenario() -> None:
    reachable = set(CATALOGUE) - set(CANNOT_ARISE) - {SUCCESS}
    assert set(SCENARIOS) == reachable
    assert not set(SCENARIOS) & set(CANNOT_ARISE)


def test_the_status_code_page_says_which_codes_cannot_arise() -> None:
    """docs/status-codes.md and CANNOT_ARISE agree: a code that now arises (903) is
    documented with when it does."""
    import re

    page = (Path(__file__).resolve().parents[2] / "docs" / "status-codes.md").read_text()
    documented: set[int] = set()
    for codes, when in re.findall(r"^\| ([\d, ]+) \| (.*?) \|", page, re.MULTILINE):
        if when.startswith("cannot arise"):
            documented |= {int(code) for code in codes.split(",")}
    assert documented == set(CANNOT_ARISE)


def test_success_is_800(env: Env) -> None:
    service = env.service()
    who = env.add_member(service, points=900).mobile
    assert who is not None
    check = service.is_redeemable(who, 200)
    assert (check.status.code, check.status.message) == (800, "Points can be redeemed")
    assert str(check.points_redeem_value) == "200.00"
    service.issue_validation_code(who, 200)
    done = service.redeem(who, 200, env.sender.last_code(), transaction_number="T-800",
                          external_reference="REF-800")
    assert done.status.code == 800 and done.status.success
    assert done.status.message == "Points redeemed successfully"


def test_catalogue_has_the_46_codes_of_the_seed() -> None:
    seed = Path("/work/shared/seed/points-v1.1.md")
    assert len(CATALOGUE) == 46
    assert all(isinstance(code, int) for code in CATALOGUE)
    assert all(CATALOGUE[code].strip() for code in CATALOGUE)
    if seed.exists():  # the seed page lives outside the repository
        import re

        seeded = {int(c) for c in re.findall(r"^\| (\d{3,4})\s+\|", seed.read_text(),
                                             re.MULTILINE)}
        assert seeded == set(CATALOGUE)
