"""The three ways points come in: earning on a bill (Loyalty Manager), Data Import, and
goodwill (Member Care). Each is recorded in the ledger with its source and reference; a
bill issues once, a file imports once, and a file with any bad row changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.models import Source
from core.service import ImportRejected, PointsService
from core.status import InputError, PointsError
from tests.core.points_harness import Env
from tests.support.members import member_csv


def refused(action: Callable[[], object]) -> PointsError:
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def snapshot(service: PointsService) -> list[tuple[object, ...]]:
    """Every member and ledger entry, to show that nothing changed."""
    def unit(session: Session) -> list[tuple[object, ...]]:
        rows = session.connection().execute(text(
            "SELECT id, mobile, email, external_id, name, customer_type, fraud_status, "
            "current_points, lifetime_points, lifetime_purchases FROM member ORDER BY id"))
        entries = session.connection().execute(text(
            "SELECT id, member_id, source, points, lifetime_points, reference "
            "FROM ledger_entry ORDER BY id"))
        batches = session.connection().execute(text(
            "SELECT id, digest FROM import_batch ORDER BY id"))
        return [tuple(r) for r in rows] + [tuple(r) for r in entries] + [
            tuple(r) for r in batches]
    return service.db.run(unit, write=False)


# ---------------------------------------------------------------- earning


def test_earn_issues_points_at_earn_rate(env: Env) -> None:
    service = env.service(earn_rate="2.5")
    who = env.add_member(service, points=100, purchases="10.00").mobile
    assert who is not None
    issued = service.earn(who, "BILL-100", "123.45")
    assert (issued.points, issued.balance, issued.reference, issued.replayed) == (
        308, 408, "BILL-100", False)  # 123.45 x 2.5 = 308.625, whole points only
    member = service.member(who)
    assert member.lifetime_purchases == Decimal("133.45")
    assert (member.current_points, member.lifetime_points) == (408, 408)
    entry = service.ledger_entries(who)[-1]
    assert (entry.source, entry.points, entry.lifetime_points, entry.reference) == (
        Source.EARN, 308, 308, "BILL-100")
    assert service.audit() == []


def test_same_bill_twice_issues_once(env: Env) -> None:
    service = env.service()
    who = env.add_member(service).mobile
    other = env.add_member(service).mobile
    assert who is not None and other is not None
    assert service.earn(who, "BILL-1", "1,250.50").points == 1250
    again = service.earn(who, "BILL-1", "1250.5")
    assert (again.replayed, again.points, again.balance) == (True, 1250, 1250)
    with pytest.raises(InputError, match="already recorded"):
        service.earn(who, "BILL-1", "99")
    with pytest.raises(InputError, match="already recorded"):
        service.earn(other, "BILL-1", "1250.50")
    member = service.member(who)
    assert (member.current_points, member.lifetime_purchases) == (1250, Decimal("1250.50"))
    assert service.member(other).current_points == 0
    assert [e.source for e in service.ledger_entries(who)] == [Source.EARN]
    assert service.audit() == []


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "1.234", "NaN", "Infinity", ""])
def test_earn_refuses_amounts_that_are_not_money(amount: str, sqlite_env: Env) -> None:
    service = sqlite_env.service()
    who = sqlite_env.add_member(service).mobile
    assert who is not None
    with pytest.raises(InputError):
        service.earn(who, "BILL-X", amount)
    assert service.member(who).current_points == 0


def test_earn_refusals(env: Env) -> None:
    service = env.service()
    campaign = env.add_member(service, customer_type="campaign").mobile
    assert campaign is not None
    assert refused(lambda: service.earn(campaign, "B1", "10")).code == 686
    assert refused(lambda: service.earn("+919999999999", "B1", "10")).code == 816
    assert refused(lambda: service.earn(campaign, "bad bill", "10")).code == 811
    assert service.audit() == []


# ---------------------------------------------------------------- goodwill


def test_goodwill_is_recorded_with_staff_and_reason(env: Env) -> None:
    service = env.service()
    who = env.add_member(service, points=10).mobile
    assert who is not None
    issued = service.goodwill(who, "250", reason="late delivery", staff="agent-7")
    assert (issued.points, issued.balance) == (250, 260)
    member = service.member(who)
    assert (member.current_points, member.lifetime_points) == (260, 260)
    entry = service.ledger_entries(who)[-1]
    assert (entry.source, entry.points, entry.lifetime_points, entry.staff, entry.reason,
            entry.reference) == (Source.GOODWILL, 250, 250, "agent-7", "late delivery",
                                 issued.reference)
    action = service.staff_actions()[0]
    assert (action.staff, action.action, action.target, action.allowed) == (
        "agent-7", "goodwill", who, True)
    assert "late delivery" in action.detail
    # Each grant is its own entry, never merged.
    service.goodwill(who, 250, reason="late delivery", staff="agent-7")
    assert [e.points for e in service.ledger_entries(who)
            if e.source == Source.GOODWILL] == [250, 250]
    assert service.audit() == []


def test_goodwill_needs_reason_staff_and_valid_points(env: Env) -> None:
    service = env.service()
    who = env.add_member(service).mobile
    assert who is not None
    with pytest.raises(InputError, match="reason"):
        service.goodwill(who, 10, reason="  ", staff="agent")
    with pytest.raises(InputError, match="staff"):
        service.goodwill(who, 10, reason="why", staff="")
    assert refused(lambda: service.goodwill(who, 0, reason="why", staff="a")).code == 901
    assert refused(lambda: service.goodwill(who, 10**10, reason="why", staff="a")).code == 901
    assert service.member(who).current_points == 0
    assert service.staff_actions() == []


# ---------------------------------------------------------------- data import


GOOD_ROWS: list[dict[str, Any]] = [
    {"mobile": "9876543210", "name": "Asha", "type": "loyalty", "fraud_status": "NONE",
     "current_points": 500, "lifetime_points": 800, "lifetime_purchases": "1200.50"},
    {"email": "Ravi@Example.com", "external_id": "CRM-2", "name": "Ravi", "type": "campaign",
     "current_points": 0, "lifetime_points": 0, "lifetime_purchases": ""},
    {"external_id": "CRM-3", "name": "Meera", "type": "", "fraud_status": "marked",
     "current_points": 40, "lifetime_points": 40, "lifetime_purchases": "0"},
]


def test_good_import_creates_members_with_balances(env: Env, tmp_path: Path) -> None:
    service = env.service()
    file = tmp_path / "members.csv"
    file.write_bytes(member_csv(GOOD_ROWS))
    result = service.import_file(file)
    assert (result.rows, result.created, result.updated, result.points,
            result.already_imported) == (3, 3, 0, 540, False)
    asha = service.member("+919876543210")
    assert (asha.name, asha.current_points, asha.lifetime_points, asha.lifetime_purchases,
            asha.customer_type) == ("Asha", 500, 800, Decimal("1200.50"), "loyalty")
    ravi = service.member("ravi@example.com")
    assert (ravi.external_id, ravi.customer_type, ravi.current_points) == ("CRM-2",
                                                                           "campaign", 0)
    meera = service.member("CRM-3")
    assert (meera.fraud_status, meera.customer_type) == ("MARKED", "loyalty")
    entry = service.ledger_entries("CRM-3")[0]
    assert (entry.source, entry.points, entry.lifetime_points) == (Source.IMPORT, 40, 40)
    assert entry.reference == f"import:{result.batch_id}:4"
    assert service.ledger_entries("ravi@example.com") == []  # nothing to post
    assert service.member_count() == 3
    assert service.audit() == []


def test_same_file_twice_changes_nothing(env: Env, tmp_path: Path) -> None:
    service = env.service()
    file = tmp_path / "members.csv"
    file.write_bytes(member_csv(GOOD_ROWS))
    first = service.import_file(file)
    before = snapshot(service)
    again = service.import_file(file)
    assert again.already_imported and again.batch_id == first.batch_id
    assert (again.created, again.updated, again.points) == (0, 0, 0)
    assert snapshot(service) == before
    assert service.audit() == []


def test_import_updates_existing_member_and_adds_points(env: Env) -> None:
    service = env.service()
    service.import_csv(member_csv(GOOD_ROWS))
    update = member_csv([{"mobile": "+91 98765 43210", "email": "asha@example.com",
                          "name": "Asha K", "type": "loyalty", "fraud_status": "NOT_FRAUD",
                          "current_points": 100, "lifetime_points": 150,
                          "lifetime_purchases": "99.50"}])
    result = service.import_csv(update)
    assert (result.created, result.updated, result.points) == (0, 1, 100)
    asha = service.member("asha@example.com")
    assert (asha.mobile, asha.name, asha.fraud_status, asha.current_points,
            asha.lifetime_points, asha.lifetime_purchases) == (
        "+919876543210", "Asha K", "NOT_FRAUD", 600, 950, Decimal("1300.00"))
    assert service.member_count() == 3
    assert service.audit() == []


def test_import_with_blank_status_keeps_fraud_flag_and_type(env: Env) -> None:
    """A top-up row that leaves type and fraud_status empty changes neither: it must not
    clear a fraud flag or enrol a campaign-only customer. Given values still apply."""
    service = env.service()
    flagged = env.add_member(service, fraud_status="CONFIRMED", points=10)
    campaign = env.add_member(service, customer_type="campaign", points=0)
    top_up = member_csv([{"mobile": flagged.mobile, "current_points": 100,
                          "lifetime_points": 100},
                         {"mobile": campaign.mobile, "current_points": 5,
                          "lifetime_points": 5}])
    assert service.import_csv(top_up).updated == 2
    after = service.member(flagged.id)
    assert (after.fraud_status, after.customer_type, after.current_points) == (
        "CONFIRMED", "loyalty", 110)
    assert service.member(campaign.id).customer_type == "campaign"
    cleared = member_csv([{"mobile": flagged.mobile, "fraud_status": "NOT_FRAUD"},
                          {"mobile": campaign.mobile, "type": "loyalty"}])
    service.import_csv(cleared)
    assert service.member(flagged.id).fraud_status == "NOT_FRAUD"
    assert service.member(campaign.id).customer_type == "loyalty"
    assert service.audit() == []


def test_file_with_bad_rows_changes_nothing_and_lists_every_bad_row(env: Env) -> None:
    service = env.service()
    service.import_csv(member_csv(GOOD_ROWS))
    before = snapshot(service)
    rows: list[dict[str, Any]] = [
        {"mobile": "9123456780", "name": "fine", "current_points": 5, "lifetime_points": 5},
        {"mobile": "12345", "name": "bad mobile"},                                    # 3
        {"name": "no identifier", "current_points": 1, "lifetime_points": 1},         # 4
        {"email": "x@example.com", "type": "vip"},                                    # 5
        {"email": "y@example.com", "fraud_status": "MAYBE"},                          # 6
        {"email": "z@example.com", "current_points": "ten"},                          # 7
        {"email": "w@example.com", "current_points": 9, "lifetime_points": 3},        # 8
        {"email": "v@example.com", "lifetime_purchases": "-1"},                       # 9
        {"mobile": "9123456780", "name": "same mobile as line 2"},                    # 10
        {"email": "not-an-email", "name": "bad email"},                               # 11
        {"mobile": "9876543210", "email": "ravi@example.com"},                        # 12
    ]
    data = member_csv(rows) + b"only,three,fields\n"                                 # 13
    with pytest.raises(ImportRejected) as caught:
        service.import_csv(data)
    errors = caught.value.errors
    reported = {e.line: e.reason for e in errors}
    assert sorted(reported) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 13]
    assert "mobile" in reported[3]
    assert "needs a mobile, an email or an external id" in reported[4]
    assert "type 'vip'" in reported[5]
    assert "fraud_status 'MAYBE'" in reported[6]
    assert "current_points 'ten'" in reported[7]
    assert "exceed lifetime_points" in reported[8]
    assert "lifetime_purchases" in reported[9]
    assert "also on line 2" in reported[10]
    assert "email" in reported[11]
    assert "3 fields, expected 9" in reported[13]
    assert str(errors[0]).startswith("line 3: ")
    assert snapshot(service) == before
    # Once the rows that fail on their own are fixed, the row that names two different
    # members (line 12) is reported against the database, still changing nothing.
    with pytest.raises(ImportRejected) as caught:
        service.import_csv(member_csv([rows[0], rows[10]]))
    assert [(e.line, e.reason) for e in caught.value.errors] == [
        (3, "its identifiers belong to different members")]
    assert snapshot(service) == before
    assert service.audit() == []


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "the file is empty"),
    (b"mobile,email\n9876543210,a@b.com\n", "missing column(s)"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    (",".join(["mobile", "email", "external_id", "name", "type", "fraud_status",
               "current_points", "lifetime_points", "lifetime_purchases"]).encode() + b"\n",
     "no rows"),
])
def test_unreadable_files_are_rejected(data: bytes, reason: str, sqlite_env: Env) -> None:
    service = sqlite_env.service()
    with pytest.raises(ImportRejected) as caught:
        service.import_csv(data)
    assert [e.line for e in caught.value.errors] == [1]
    assert reason in caught.value.errors[0].reason
    assert service.member_count() == 0


def test_import_of_missing_file_is_an_input_error(sqlite_env: Env, tmp_path: Path) -> None:
    service = sqlite_env.service()
    with pytest.raises(InputError, match="cannot read"):
        service.import_file(tmp_path / "absent.csv")
