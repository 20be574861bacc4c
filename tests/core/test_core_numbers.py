"""Numbers behave the same on SQLite and PostgreSQL: points columns are BIGINT and money
NUMERIC(20, 2) (migration 0004), so totals past 2^31 work on both; amounts past
`core.limits` are refused with the same answer on both instead of overflowing a column on
one of them. Every test here runs on a SQLite file and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core import limits
from core.db import MIGRATIONS, Database
from core.service import ImportRejected, PointsService
from core.status import InputError, PointsError
from tests.core.points_harness import Env
from tests.support.members import member_csv

BILLION = 1_000_000_000


def answer(action: Callable[[], object]) -> tuple[str, object, str]:
    """What a refused action answered, as plain data to compare across databases."""
    try:
        action()
    except PointsError as error:
        return ("refused", error.code, error.detail)
    except ImportRejected as error:
        return ("rejected", None, "; ".join(str(e) for e in error.errors))
    except InputError as error:
        return ("input", None, str(error))
    raise AssertionError("the action was not refused")


def books(service: PointsService, who: str) -> tuple[int, int, Decimal, int]:
    member = service.member(who)
    return (member.current_points, member.lifetime_points, member.lifetime_purchases,
            len(service.ledger_entries(who)))


def test_lifetime_points_past_2_to_the_31_work(env: Env) -> None:
    service = env.service(redemption_max_points=BILLION, goodwill_max_points=BILLION)
    who = env.add_member(service, points=BILLION, purchases="999999999999.99").mobile
    assert who is not None
    service.goodwill(who, BILLION, reason="migration", staff="care")
    service.goodwill(who, BILLION, reason="migration", staff="care")
    issued = service.earn(who, "BILL-BIG", "999999999.99")  # 999,999,999 points
    assert issued.balance == 4 * BILLION - 1
    top_up = member_csv([{"mobile": who, "current_points": BILLION,
                          "lifetime_points": BILLION, "lifetime_purchases": "1"}])
    assert service.import_csv(top_up).updated == 1
    member = service.member(who)
    assert (member.current_points, member.lifetime_points) == (5 * BILLION - 1,
                                                               5 * BILLION - 1)
    assert member.current_points > 2**32
    assert member.lifetime_purchases == Decimal("1001000000000.98")  # past NUMERIC(14, 2)
    # Redeeming the most one redemption may take, and reversing it, move BIGINT balances.
    service.issue_validation_code(who, BILLION)
    code = env.sender.last_code(member.id)
    redeemed = service.redeem(who, BILLION, code, transaction_number="T-BIG",
                              external_reference="E-BIG")
    assert redeemed.balance == 4 * BILLION - 1
    assert service.reverse(redeemed.redemption_id).balance == 5 * BILLION - 1
    assert service.audit() == []


def test_amounts_past_the_limits_get_the_same_answer_on_both(env: Env) -> None:
    service = env.service(redemption_max_points=BILLION, goodwill_max_points=BILLION)
    who = env.add_member(service, points=500, purchases="10").mobile
    assert who is not None
    before = books(service, who)
    too_many = member_csv([{"mobile": who, "current_points": BILLION + 1,
                            "lifetime_points": BILLION + 1}])
    answers = [
        answer(lambda: service.goodwill(who, BILLION + 1, reason="r", staff="s")),
        answer(lambda: service.goodwill(who, "10000000000000000", reason="r", staff="s")),
        answer(lambda: service.earn(who, "BILL-1", "999999999999.99")),
        answer(lambda: service.earn(who, "BILL-2", "1000000000000")),
        answer(lambda: service.import_csv(too_many)),
        answer(lambda: service.is_redeemable(who, 5 * BILLION)),
        answer(lambda: service.is_redeemable(who, 10**13)),
    ]
    assert answers == [
        ("refused", 901, "goodwill points must be a whole number from 1 to 1,000,000,000, "
                         "not '1000000001'"),
        ("refused", 901, "goodwill points must be a whole number from 1 to 1,000,000,000, "
                         "not '10000000000000000'"),
        ("input", None, "a purchase of 999,999,999,999.99 would issue 999,999,999,999 "
                        "points; one earning issues at most 1,000,000,000"),
        ("input", None, "the purchase amount '1000000000000' is not below "
                        "1,000,000,000,000"),
        ("rejected", None, "line 2: current_points '1000000001' is not a whole number of "
                           "points from 0 to 1,000,000,000"),
        ("refused", 819, "the maximum is 1000000000 points a transaction"),
        ("refused", 801, "at most 1,000,000,000,000 points at once"),
    ]
    assert books(service, who) == before
    assert service.audit() == []


def test_a_balance_past_the_most_it_may_hold_refuses_the_issuing_operation(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_BALANCE_POINTS", 3 * BILLION)
    monkeypatch.setattr(limits, "MAX_BALANCE_MONEY", Decimal("5000"))
    service = env.service(goodwill_max_points=BILLION)
    who = env.add_member(service, points=BILLION, purchases="1000").mobile
    assert who is not None
    member_id = service.member(who).id
    service.goodwill(who, BILLION, reason="r", staff="s")
    service.goodwill(who, BILLION, reason="r", staff="s")  # exactly the most, and held
    before = books(service, who)
    assert before[:2] == (3 * BILLION, 3 * BILLION)
    over = ("current points would be 3,000,000,001, above the most a balance may hold "
            "(3,000,000,000)")
    assert answer(lambda: service.goodwill(who, 1, reason="r", staff="s")) == (
        "input", None, f"member {member_id}: {over}; nothing was issued")
    assert answer(lambda: service.earn(who, "BILL-1", "1.00")) == (
        "input", None, f"member {member_id}: {over}; nothing was issued")
    assert answer(lambda: service.import_csv(member_csv([
        {"mobile": env.next_mobile(), "current_points": 1, "lifetime_points": 1},
        {"mobile": who, "current_points": 1, "lifetime_points": 1}]))) == (
        "rejected", None, f"line 3: member {member_id}: {over}")
    assert books(service, who) == before
    # Lifetime purchases too: 1,000 + 3,999.99 is below 5,000; one cent more is not.
    monkeypatch.setattr(limits, "MAX_BALANCE_POINTS", 10 * BILLION)
    service.earn(who, "BILL-2", "3999.99")
    assert answer(lambda: service.earn(who, "BILL-3", "0.01")) == (
        "input", None, f"member {member_id}: lifetime purchases would be 5,000.00, not "
                       f"below the most they may reach (5,000); nothing was issued")
    assert service.member(who).lifetime_purchases == Decimal("4999.99")
    assert service.audit() == []


def test_migration_0004_widens_a_database_made_before_it(db_url: str) -> None:
    """A database made by the migrations before 0004, with members, entries and a chat
    link in it, is migrated on start: the data, the CHECK and the foreign keys are kept,
    and totals past 2^31 fit."""
    database = Database(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = database._write_engine if database.is_sqlite else database.engine
    with engine.connect() as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    with engine.connect() as connection, connection.begin():
        connection.execute(text(
            "INSERT INTO member (id, mobile, name, customer_type, fraud_status, current_points,"
            " lifetime_points, lifetime_purchases, created_at) VALUES (1, '+919800000001', "
            "'A', 'loyalty', 'NONE', 5, 7, 12.5, '2026-01-01 00:00:00')"))
        connection.execute(text(
            "INSERT INTO ledger_entry (member_id, source, points, lifetime_points, reference,"
            " created_at) VALUES (1, 'import', 5, 7, 'import:0:2', '2026-01-01 00:00:00')"))
        connection.execute(text(
            "INSERT INTO chat_link (channel_user, member_id, created_at) "
            "VALUES ('u1', 1, '2026-01-01 00:00:00')"))
    database.dispose()
    service = PointsService(Env(db_url, None).settings(goodwill_max_points=BILLION),  # type: ignore[arg-type]
                            db=Database(db_url))
    try:
        member = service.member("+919800000001")
        assert (member.current_points, member.lifetime_points, member.lifetime_purchases) == (
            5, 7, Decimal("12.50"))
        service.goodwill("+919800000001", BILLION, reason="r", staff="s")
        service.goodwill("+919800000001", BILLION, reason="r", staff="s")
        service.goodwill("+919800000001", BILLION, reason="r", staff="s")
        assert service.member("+919800000001").lifetime_points == 3 * BILLION + 7
        assert service.audit() == []
        for statement in (
                "UPDATE member SET current_points = -1 WHERE id = 1",
                "INSERT INTO ledger_entry (member_id, source, points, lifetime_points, "
                "reference, created_at) VALUES (99, 'import', 1, 1, 'x', "
                "'2026-01-01 00:00:00')"):
            with pytest.raises(IntegrityError), service.db.session(write=True) as session:
                session.connection().execute(text(statement))
    finally:
        service.db.dispose()
