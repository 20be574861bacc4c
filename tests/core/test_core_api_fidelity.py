"""Closer to the points API: the maximum caps a transaction, a replay tells today's truth,
the idempotency key belongs to the member, identifiers may be typed and external ids
numeric, and times are the organisation's (ORG_TIMEZONE).

Functions new with these rules are imported inside the tests that use them, so each test
stands or falls on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from points_harness import Env, member_csv
from typer.testing import CliRunner

from bot.cli import app
from core.identifiers import Kind, parse_identifier
from core.service import ImportRejected, PointsService, RedemptionResult
from core.status import PointsError


def refused(action: Callable[[], object]) -> PointsError:
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def redeem(service: PointsService, who: str, points: int, *, txn: str, ref: str,
           **kw: Any) -> RedemptionResult:
    return service.redeem(who, points, None, transaction_number=txn, external_reference=ref,
                          **kw)


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
