"""Identifiers, validation codes, limits and times on plain values: `core.identifiers`,
`codes.derive`, `core.limits`, `core.times`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core import codes, limits, times
from core.identifiers import Identifier, Kind, mask, parse_as, parse_identifier
from core.settings import Settings
from core.status import PointsError


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **{"secret_key": "unit-secret-key", **overrides})  # type: ignore[arg-type]


# ---------------------------------------------------------------- identifiers


@pytest.mark.parametrize(("text", "expected"), [
    ("Asha@Example.com", Identifier(Kind.EMAIL, "asha@example.com")),
    ("+44 7911 123456", Identifier(Kind.MOBILE, "+447911123456")),
    ("98765 43210", Identifier(Kind.MOBILE, "+919876543210")),
    ("12345", Identifier(Kind.EXTERNAL_ID, "12345")),
    ("CUST-77", Identifier(Kind.EXTERNAL_ID, "CUST-77")),
    ("external_id:ABC-1", Identifier(Kind.EXTERNAL_ID, "ABC-1")),
    ("email: Ravi@Example.com", Identifier(Kind.EMAIL, "ravi@example.com")),
])
def test_parse_identifier_names_and_normalises(text: str, expected: Identifier) -> None:
    assert parse_identifier(text, "IN") == expected


def test_a_numeric_mobile_may_also_be_an_external_id() -> None:
    found = parse_identifier("9876543210", "IN")
    assert found == Identifier(Kind.MOBILE, "+919876543210",
                               fallback=Identifier(Kind.EXTERNAL_ID, "9876543210"))


def test_the_region_reads_a_national_number() -> None:
    assert parse_identifier("07911 123456", "GB").value == "+447911123456"


@pytest.mark.parametrize("text", ["", "   ", "mobile:12345", "email:nobody", "0098 7654 3210",
                                  "a b", "x" * 255, "tab\there"])
def test_what_is_no_identifier_is_802(text: str) -> None:
    with pytest.raises(PointsError) as refusal:
        parse_identifier(text, "IN")
    assert refusal.value.code == 802


def test_parse_as_reads_only_the_kind_asked_for() -> None:
    assert parse_as(Kind.MOBILE, "9876543210", "IN").value == "+919876543210"
    with pytest.raises(PointsError) as refusal:
        parse_as(Kind.EMAIL, "9876543210", "IN")
    assert refusal.value.code == 802


def test_mask_hides_most_of_a_destination() -> None:
    assert mask("+919876543210") == "+91•••••43210"
    assert mask("asha@example.com") == "a•••@example.com"


# ---------------------------------------------------------------- validation codes


def test_derive_is_the_same_for_the_same_inputs() -> None:
    assert codes.derive(settings(), 7, 500, "n1") == codes.derive(settings(), 7, 500, "n1")


def test_derive_differs_per_member_amount_nonce_and_key() -> None:
    base = codes.derive(settings(), 7, 500, "n1")
    others = {codes.derive(settings(), 8, 500, "n1"), codes.derive(settings(), 7, 550, "n1"),
              codes.derive(settings(), 7, 500, "n2"),
              codes.derive(settings(secret_key="another-unit-key"), 7, 500, "n1")}
    assert base not in others
    assert len(others) == 4


@pytest.mark.parametrize("length", [4, 6, 8, 10])
def test_derive_gives_otp_length_digits(length: int) -> None:
    code = codes.derive(settings(otp_length=length), 7, 500, "n1")
    assert len(code) == length and code.isdigit()


def test_a_short_code_is_the_end_of_the_six_digit_one() -> None:
    six = codes.derive(settings(otp_length=6), 7, 500, "n1")
    assert codes.derive(settings(otp_length=4), 7, 500, "n1") == six[-4:]


# ---------------------------------------------------------------- limits


def test_a_balance_up_to_the_limit_may_be_held() -> None:
    most = limits.MAX_BALANCE_POINTS
    assert limits.points_over_balance(most, most) is None
    assert limits.money_over_balance(limits.MAX_BALANCE_MONEY - Decimal("0.01")) is None


def test_a_balance_past_the_limit_says_which() -> None:
    most = limits.MAX_BALANCE_POINTS
    current = limits.points_over_balance(most + 1, most + 1)
    lifetime = limits.points_over_balance(0, most + 1)
    assert current is not None and current.startswith("current points")
    assert lifetime is not None and lifetime.startswith("lifetime points")
    money = limits.money_over_balance(limits.MAX_BALANCE_MONEY)
    assert money is not None and money.startswith("lifetime purchases")


# ---------------------------------------------------------------- times


def test_a_moment_is_shown_in_the_organisations_zone() -> None:
    moment = datetime(2026, 11, 29, 8, 35, 9, tzinfo=UTC)
    assert times.show(moment, times.zone("Asia/Kolkata")) == "2026-11-29 14:05 IST"
    assert times.show(moment, times.zone("Asia/Kolkata"), seconds=True) == \
        "2026-11-29 14:05:09 IST"


def test_a_moment_without_a_zone_is_utc() -> None:
    naive = datetime(2026, 7, 1, 12, 0)
    assert times.show(naive, times.zone("Europe/London")) == "2026-07-01 13:00 BST"
    assert times.local(naive, times.zone("UTC")) == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["Mars/Base", "", "IST+5"])
def test_an_unknown_zone_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="IANA time zone"):
        times.zone(name)
