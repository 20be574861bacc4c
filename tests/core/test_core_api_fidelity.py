"""Closer to the points API: the maximum caps a transaction, a replay tells today's truth,
the idempotency key belongs to the member, identifiers may be typed and external ids
numeric, and times are the organisation's (ORG_TIMEZONE).

`core.times` is imported inside the test that uses it, so the other tests stand or fall on
their own.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from bot.cli import app
from core.identifiers import Kind, parse_identifier
from core.models import Redemption
from core.service import ImportRejected, PointsService, RedemptionResult
from core.settings import load_settings
from core.status import CATALOGUE, PointsError
from tests.core.points_harness import Env
from tests.support.members import member_csv


def refused(action: Callable[[], object]) -> PointsError:
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def redeem(service: PointsService, who: str, points: int, *, txn: str, ref: str,
           **kw: Any) -> RedemptionResult:
    return service.redeem(who, points, None, transaction_number=txn, external_reference=ref,
                          **kw)


# ---------------------------------------------------------------- rules


def test_the_maximum_caps_a_transaction_not_each_redemption(env: Env) -> None:
    service = env.service(validation_code_required=False, redemption_max_points=400)
    who = env.add_member(service, points=5000).mobile
    assert who is not None
    first = redeem(service, who, 400, txn="BILL-1", ref="A")
    error = refused(lambda: redeem(service, who, 100, txn="BILL-1", ref="B"))
    assert error.code == 819
    assert "400 already redeemed on this transaction number" in error.detail
    assert "for a transaction" in error.status.message
    assert redeem(service, who, 400, txn="BILL-2", ref="C").points_redeemed == 400
    # Net of reversals: what was given back may be redeemed again on the transaction.
    service.reverse(first.redemption_id, 150)
    assert redeem(service, who, 150, txn="BILL-1", ref="D").points_redeemed == 150
    assert refused(lambda: redeem(service, who, 100, txn="BILL-1", ref="E")).code == 819
    # A revert gives back what the transaction took: never more than the maximum.
    assert service.revert(who, "BILL-1", 400).points_reversed == 400
    assert service.balance(who).current_points == 5000 - 400
    assert service.audit() == []


def test_the_transaction_maximum_holds_under_concurrent_redemptions(env: Env) -> None:
    service = env.service(validation_code_required=False, redemption_max_points=400)
    who = env.add_member(service, points=5000).mobile
    assert who is not None
    workers = [env.service(validation_code_required=False, redemption_max_points=400)
               for _ in range(4)]
    outcomes: list[int] = []
    start = threading.Barrier(len(workers))

    def attempt(worker: PointsService, n: int) -> None:
        start.wait(timeout=30)
        try:
            redeem(worker, who, 400, txn="BILL-9", ref=f"R-{n}")
            outcomes.append(800)
        except PointsError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt, args=(w, n)) for n, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == [800, 819, 819, 819]
    assert service.balance(who).current_points == 4600
    assert service.audit() == []


def test_a_replay_tells_what_was_reversed_since_and_the_balance_now(env: Env) -> None:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=1000).mobile
    assert who is not None
    first = redeem(service, who, 300, txn="T-1", ref="EXT-1")
    assert (first.balance, first.current_points, first.points_reversed) == (700, 700, 0)
    service.reverse(first.redemption_id, 100)
    service.goodwill(who, 50, reason="sorry", staff="agent")
    replay = redeem(service, who, 300, txn="T-1", ref="EXT-1")
    assert replay.replayed and replay.redemption_id == first.redemption_id
    assert replay.balance == 700  # right after the redemption, as first answered
    assert (replay.points_reversed, replay.current_points) == (100, 850)
    assert service.balance(who).current_points == 850
    assert service.audit() == []


def test_the_idempotency_key_belongs_to_the_member_not_to_how_they_were_named(
        env: Env) -> None:
    service = env.service(validation_code_required=False)
    member = env.add_member(service, mobile="+919800000001", email="asha@example.com",
                            external_id="CRM-1", points=1000)
    first = redeem(service, "CRM-1", 300, txn="T-1", ref="EXT-1")
    for other_name in ("9800000001", "+91 98000 00001", "ASHA@example.com", "mobile:9800000001"):
        again = redeem(service, other_name, 300, txn="T-1", ref="EXT-1")
        assert again.replayed and again.redemption_id == first.redemption_id, other_name
    assert refused(lambda: redeem(service, "9800000001", 200, txn="T-1", ref="EXT-1")
                   ).code == 817
    assert refused(lambda: redeem(service, "9800000001", 300, txn="T-2", ref="EXT-1")
                   ).code == 817
    assert service.balance(member).current_points == 700
    assert service.audit() == []


def test_rows_fingerprinted_by_the_identifier_text_still_replay(env: Env) -> None:
    """Rows written before the fingerprint was the member's keep answering replays."""
    service = env.service(validation_code_required=False)
    env.add_member(service, mobile="+919800000001", external_id="CRM-1", points=1000)
    first = redeem(service, "CRM-1", 300, txn="T-1", ref="EXT-OLD")
    old = hashlib.sha256(b"external_id:CRM-1|300|T-1").hexdigest()
    with Session(service.db.engine) as session:
        row = session.exec(select(Redemption).where(Redemption.id == first.redemption_id)).one()
        row.fingerprint = old
        session.add(row)
        session.commit()
    for name in ("CRM-1", "+919800000001"):
        again = redeem(service, name, 300, txn="T-1", ref="EXT-OLD")
        assert again.replayed and again.redemption_id == first.redemption_id
    assert refused(lambda: redeem(service, "CRM-1", 400, txn="T-1", ref="EXT-OLD")).code == 817


def test_the_catalogue_keeps_the_seeds_meaning_of_819() -> None:
    assert CATALOGUE[819] == ("Points you are trying to redeem are more than the maximum "
                              "allowed redemption limit for a transaction.")


def test_the_cli_shows_a_replay_with_what_was_reversed_and_the_points_now(
        db_url: str, tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv([{"mobile": "9876543210", "current_points": 1000,
                                     "lifetime_points": 1000}]))
    runner = CliRunner()
    env = {"DATABASE_URL": db_url, "VALIDATION_CODE_REQUIRED": "false"}
    assert runner.invoke(app, ["import", str(members)], env=env).exit_code == 0
    args = ["redeem", "9876543210", "200", "--transaction", "B-1", "--reference", "X-1"]
    first = runner.invoke(app, args, env=env).stdout
    assert "current points now 800" in first and "reversed since" not in first
    assert runner.invoke(app, ["reverse", "X-1", "50"], env=env).exit_code == 0
    again = runner.invoke(app, [*args[:1], "mobile:9876543210", *args[2:]], env=env)
    assert again.exit_code == 0, again.output
    assert "a retry" in again.stdout
    assert "; 50 reversed since; current points now 850" in again.stdout


# ---------------------------------------------------------------- identifiers


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("mobile:9876543210", Kind.MOBILE, "+919876543210"),
    ("MOBILE: +91 98765 43210", Kind.MOBILE, "+919876543210"),
    ("email:Asha@Example.com", Kind.EMAIL, "asha@example.com"),
    ("external_id:12345678", Kind.EXTERNAL_ID, "12345678"),
    ("external_id:9876543210", Kind.EXTERNAL_ID, "9876543210"),
    ("external_id:CRM-7", Kind.EXTERNAL_ID, "CRM-7"),
])
def test_a_typed_identifier_is_read_as_its_kind(text: str, kind: Kind, value: str) -> None:
    ident = parse_identifier(text, "IN")
    assert (ident.kind, ident.value, ident.fallback) == (kind, value, None)


@pytest.mark.parametrize("text", ["mobile:12", "mobile:CRM-1", "email:12345678",
                                  "external_id:", "email:"])
def test_a_typed_identifier_that_is_not_of_its_kind_is_802(text: str) -> None:
    assert refused(lambda: parse_identifier(text, "IN")).code == 802


def test_guessing_a_number_tries_the_mobile_first_then_the_external_id() -> None:
    mobile = parse_identifier("9876543210", "IN")
    assert (mobile.kind, mobile.value) == (Kind.MOBILE, "+919876543210")
    assert mobile.fallback is not None
    assert (mobile.fallback.kind, mobile.fallback.value) == (Kind.EXTERNAL_ID, "9876543210")
    short = parse_identifier("12345678", "IN")  # no mobile in India: only an external id
    assert (short.kind, short.value, short.fallback) == (Kind.EXTERNAL_ID, "12345678", None)


def test_numeric_external_ids_import_and_are_found(env: Env) -> None:
    service = env.service()
    result = service.import_csv(member_csv([
        {"external_id": "12345678", "name": "Numbered", "current_points": 10,
         "lifetime_points": 10},
        {"external_id": "9876543210", "name": "Digits like a mobile"},
        {"mobile": "9876543210", "name": "Owner of the mobile"},
        {"external_id": "9123456780", "name": "Nobody has this mobile"},
    ]))
    assert (result.rows, result.created) == (4, 4)
    assert service.member("12345678").name == "Numbered"
    assert service.member("external_id:12345678").current_points == 10
    # Guessing: the mobile first; the external id when no member has that mobile.
    assert service.member("9876543210").name == "Owner of the mobile"
    assert service.member("external_id:9876543210").name == "Digits like a mobile"
    assert service.member("9123456780").name == "Nobody has this mobile"
    assert refused(lambda: service.member("mobile:9123456780")).code == 816
    # Each column is its own kind: a number in the mobile column is checked as a mobile.
    with pytest.raises(ImportRejected) as caught:
        service.import_csv(member_csv([{"mobile": "12345678", "name": "not a mobile"}]))
    assert [(e.line, e.reason) for e in caught.value.errors] == [
        (2, "mobile '12345678' is not a valid mobile")]


def test_the_cli_takes_typed_identifiers(db_url: str, tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv([
        {"external_id": "9876543210", "name": "Numbered", "current_points": 500,
         "lifetime_points": 500},
        {"mobile": "9876543210", "name": "Mobile owner"}]))
    runner = CliRunner()
    env = {"DATABASE_URL": db_url}
    assert runner.invoke(app, ["import", str(members)], env=env).exit_code == 0
    shown = runner.invoke(app, ["member", "external_id:9876543210"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "Numbered" in shown.stdout and "current points 500" in shown.stdout
    assert "Mobile owner" in runner.invoke(app, ["member", "mobile:9876543210"], env=env).stdout


# ---------------------------------------------------------------- time


def test_org_timezone_is_an_iana_name_and_a_bad_one_is_888() -> None:
    assert load_settings().org_timezone == "UTC"
    assert load_settings(org_timezone=" Asia/Kolkata ").zone == ZoneInfo("Asia/Kolkata")
    for bad in ("Mars/Olympus", "IST+5:30", "../etc/passwd", ""):
        error = refused(lambda bad=bad: load_settings(org_timezone=bad))
        assert error.code == 888 and "ORG_TIMEZONE" in error.detail, bad


def test_a_redemption_time_without_an_offset_is_the_organisations(env: Env) -> None:
    # Now is 2026-03-01 09:00 UTC: 14:30 in India.
    service = env.service(validation_code_required=False, org_timezone="Asia/Kolkata")
    who = env.add_member(service, points=5000).mobile
    assert who is not None
    local = redeem(service, who, 100, txn="T-1", ref="R-1",
                   redemption_time="2026-03-01 14:05:00")
    assert local.redemption_time == datetime(2026, 3, 1, 8, 35, tzinfo=UTC)
    offset = redeem(service, who, 100, txn="T-2", ref="R-2",
                    redemption_time="2026-03-01 08:35:00+00:00")
    assert offset.redemption_time == local.redemption_time
    assert redeem(service, who, 100, txn="T-3", ref="R-3",
                  redemption_time="2026-03-01 14:05:00+05:30").redemption_time == (
        local.redemption_time)
    assert refused(lambda: redeem(service, who, 100, txn="T-4", ref="R-4",
                                  redemption_time="2026-03-01 14:31:00")).code == 859
    assert refused(lambda: redeem(service, who, 100, txn="T-5", ref="R-5",
                                  redemption_time="2026-03-01T14:00:00")).code == 859


def test_times_are_shown_in_the_organisations_zone_with_its_abbreviation() -> None:
    from core.times import show

    moment = datetime(2026, 11, 29, 8, 35, 9, tzinfo=UTC)
    assert show(moment, ZoneInfo("Asia/Kolkata")) == "2026-11-29 14:05 IST"
    assert show(moment, ZoneInfo("Asia/Kolkata"), seconds=True) == "2026-11-29 14:05:09 IST"
    assert show(moment, ZoneInfo("UTC")) == "2026-11-29 08:35 UTC"
    assert show(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), ZoneInfo("Europe/London")) == (
        "2026-07-01 13:00 BST")


def test_the_cli_shows_times_in_the_organisations_zone(db_url: str, tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv([{"mobile": "9876543210", "current_points": 1000,
                                     "lifetime_points": 1000}]))
    runner = CliRunner()
    env = {"DATABASE_URL": db_url, "ORG_TIMEZONE": "Asia/Kolkata",
           "VALIDATION_CODE_REQUIRED": "false", "SECRET_KEY": "k" * 40}
    assert runner.invoke(app, ["import", str(members)], env=env).exit_code == 0
    redeemed = runner.invoke(app, ["redeem", "9876543210", "200", "--transaction", "B-1",
                                   "--reference", "X-1", "--time", "2026-01-05 10:15:00"],
                             env=env)
    assert redeemed.exit_code == 0, redeemed.output
    assert "at 2026-01-05 10:15 IST" in redeemed.stdout
    history = runner.invoke(app, ["history", "9876543210"], env=env).stdout
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d IST  redeemed", history, re.M), history
    issued = runner.invoke(app, ["validationcode", "9876543210", "200"], env=env).stdout
    assert re.search(r"valid until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d IST", issued), issued
