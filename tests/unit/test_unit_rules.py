"""The redemption rules (`core.rules.check`) in their documented order, on a `Member` built
in memory and a `Settings` object: each rule alone gives its code, and a member who breaks
two adjacent rules gets the earlier one's. Also `rules.parse_points`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from core import limits
from core.models import Member
from core.rules import Stage, check, parse_points
from core.settings import Settings
from core.status import PointsError
from tests.support.clock import START

RULES: dict[str, Any] = {
    "redemption_enabled": True, "fraud_statuses_blocking": "MARKED,CONFIRMED",
    "redemption_min_points": 100, "redemption_min_current_points": 0,
    "redemption_min_lifetime_points": 0, "redemption_min_lifetime_purchases": "0",
    "redemption_multiple_of": 50, "redemption_max_points": 5000,
}
MEMBER: dict[str, Any] = {"id": 7, "customer_type": "loyalty", "fraud_status": "NONE",
                          "current_points": 1000, "lifetime_points": 1000,
                          "lifetime_purchases": Decimal("1000")}


def wrong_code() -> None:
    raise PointsError(808)


def no_code() -> None:
    raise PointsError(824)


# What breaks each rule: the member's fields, the settings, the points asked for, the
# validation step; and the code it gives.
BREACHES: dict[str, tuple[int, dict[str, Any]]] = {
    "686 campaign": (686, {"member": {"customer_type": "campaign"}}),
    "881 not enrolled": (881, {"member": {"customer_type": "non_loyalty"}}),
    "827 disabled": (827, {"settings": {"redemption_enabled": False}}),
    "809 fraud": (809, {"member": {"fraud_status": "MARKED"}}),
    "824 no code": (824, {"validate": no_code}),
    "808 wrong code": (808, {"validate": wrong_code}),
    "821 minimum": (821, {"settings": {"redemption_min_points": 300}}),
    "804 current": (804, {"settings": {"redemption_min_current_points": 5000}}),
    "805 lifetime": (805, {"settings": {"redemption_min_lifetime_points": 5000}}),
    "806 purchases": (806, {"settings": {"redemption_min_lifetime_purchases": "5000"}}),
    "807 multiple": (807, {"settings": {"redemption_multiple_of": 3}}),
    "819 maximum": (819, {"settings": {"redemption_max_points": 150}}),
    "818 balance": (818, {"member": {"current_points": 100}}),
}
# Adjacent rules in the documented order (core/rules.py's docstring).
ORDER = [("686 campaign", "827 disabled"), ("881 not enrolled", "827 disabled"),
         ("827 disabled", "809 fraud"), ("809 fraud", "824 no code"),
         ("809 fraud", "808 wrong code"), ("824 no code", "821 minimum"),
         ("808 wrong code", "821 minimum"), ("821 minimum", "804 current"),
         ("804 current", "805 lifetime"), ("805 lifetime", "806 purchases"),
         ("806 purchases", "807 multiple"), ("807 multiple", "819 maximum"),
         ("819 maximum", "818 balance")]


def outcome(*breaches: str, points: int = 200, stage: Stage = Stage.REDEEM,
            already_redeemed: int = 0) -> int:
    """The code `check` answers for a member in all of `breaches` (800: none failed)."""
    member: dict[str, Any] = dict(MEMBER)
    rules: dict[str, Any] = dict(RULES)
    validate: Callable[[], None] | None = None
    for name in breaches:
        parts = BREACHES[name][1]
        member.update(parts.get("member", {}))
        rules.update(parts.get("settings", {}))
        validate = parts.get("validate", validate)
    settings = Settings(_env_file=None, **rules)  # type: ignore[call-arg]
    try:
        check(settings, Member(created_at=START, **member), points, stage, validate,
              already_redeemed=already_redeemed)
    except PointsError as refusal:
        return refusal.code
    return 800


def test_a_member_within_every_rule_may_redeem() -> None:
    assert outcome() == 800


@pytest.mark.parametrize("name", list(BREACHES))
def test_each_rule_alone_gives_its_code(name: str) -> None:
    assert outcome(name) == BREACHES[name][0]


@pytest.mark.parametrize(("first", "second"), ORDER, ids=[f"{a}<{b}" for a, b in ORDER])
def test_the_earlier_rule_decides(first: str, second: str) -> None:
    assert outcome(second) == BREACHES[second][0]
    assert outcome(first, second) == BREACHES[first][0]


def test_too_many_points_is_803_on_a_check_and_818_on_a_redemption() -> None:
    assert outcome(points=1050, stage=Stage.CHECK) == 803
    assert outcome(points=1050, stage=Stage.REDEEM) == 818
    assert outcome(points=1000, stage=Stage.REDEEM) == 800


def test_the_maximum_counts_what_the_transaction_number_already_redeemed() -> None:
    assert outcome(points=1000, already_redeemed=4000) == 800
    assert outcome(points=1000, already_redeemed=4050) == 819


@pytest.mark.parametrize(("given", "points"), [
    (5, 5), ("250", 250), (" 1,000 ", 1000), ("1 000", 1000), ("1_000_000", 1_000_000),
    ("١٢٣", 123), (limits.MAX_POINTS_INPUT, limits.MAX_POINTS_INPUT)])
def test_parse_points_reads_whole_positive_points(given: object, points: int) -> None:
    assert parse_points(given) == points


@pytest.mark.parametrize("given", [
    0, -5, "0", "-5", "1.5", "1,00", "10,0000", "", "  ", "abc", "1e3", True, None, 2.0,
    "²", limits.MAX_POINTS_INPUT + 1, "9" * 16])
def test_parse_points_refuses_anything_else_with_801(given: object) -> None:
    with pytest.raises(PointsError) as refusal:
        parse_points(given)
    assert refusal.value.code == 801


def test_parse_points_keeps_to_the_limit_it_is_given() -> None:
    assert parse_points("1,000", limit=1000) == 1000
    with pytest.raises(PointsError) as refusal:
        parse_points("1,001", limit=1000)
    assert refusal.value.code == 801
    assert "1,000" in refusal.value.detail
