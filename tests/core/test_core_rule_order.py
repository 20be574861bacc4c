"""The redemption rules run in the documented order and stop at the first failure.

For every pair of rules next to each other in the order, a member who breaks both gets
the earlier rule's code; the same member with only the later rule broken gets the later
code, which proves both breakages are real (so the first answer is not an accident).
Checked on `redeem` and, where the rule applies there, on `isredeemable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from core.service import PointsService
from core.status import PointsError
from tests.core.points_harness import Env

POINTS = 200  # what every case asks to redeem


@dataclass(frozen=True)
class Breach:
    """What it takes to break one rule: member fields, settings, and the code given."""

    code: int
    member: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    validation_code: str | None = None
    on_check: bool = True  # whether isredeemable can break it too
    check_code: int | None = None  # the code isredeemable answers, when it differs


BREACHES: dict[str, Breach] = {
    "686 campaign": Breach(686, member={"customer_type": "campaign"}),
    "881 not enrolled": Breach(881, member={"customer_type": "non_loyalty"}),
    "827 disabled": Breach(827, settings={"redemption_enabled": False}),
    "809 fraud": Breach(809, member={"fraud_status": "MARKED"}),
    "824 no code": Breach(824, settings={"validation_code_required": True}, on_check=False),
    "808 wrong code": Breach(808, validation_code="123456"),
    "821 minimum": Breach(821, settings={"redemption_min_points": 300}),
    "804 current": Breach(804, settings={"redemption_min_current_points": 5000}),
    "805 lifetime": Breach(805, settings={"redemption_min_lifetime_points": 5000}),
    "806 purchases": Breach(806, settings={"redemption_min_lifetime_purchases": 5000}),
    "807 multiple": Breach(807, settings={"redemption_multiple_of": 3}),
    "819 maximum": Breach(819, settings={"redemption_max_points": 150}),
    "818 balance": Breach(818, member={"points": 100}, check_code=803),
}

# Adjacent pairs in the documented order (686 and 881 are the two ways of failing
# enrolment; 824 and 808 the two ways of failing validation).
ORDER = [
    ("686 campaign", "827 disabled"),
    ("881 not enrolled", "827 disabled"),
    ("827 disabled", "809 fraud"),
    ("809 fraud", "824 no code"),
    ("809 fraud", "808 wrong code"),
    ("824 no code", "821 minimum"),
    ("808 wrong code", "821 minimum"),
    ("821 minimum", "804 current"),
    ("804 current", "805 lifetime"),
    ("805 lifetime", "806 purchases"),
    ("806 purchases", "807 multiple"),
    ("807 multiple", "819 maximum"),
    ("819 maximum", "818 balance"),
]

BASE_MEMBER: dict[str, Any] = {"points": 1000, "lifetime_points": 1000, "purchases": "1000",
                               "customer_type": "loyalty", "fraud_status": "NONE"}
BASE_SETTINGS: dict[str, Any] = {"validation_code_required": False}


def answer(env: Env, breaches: list[Breach], *, check: bool) -> int:
    """The code a member in all of `breaches` at once gets (800 when nothing fails)."""
    member = dict(BASE_MEMBER)
    settings = dict(BASE_SETTINGS)
    code: str | None = None
    for breach in breaches:
        member.update(breach.member)
        settings.update(breach.settings)
        code = breach.validation_code or code
    service: PointsService = env.service(**settings)
    who = env.add_member(service, **member).mobile
    assert who is not None
    try:
        if check:
            service.is_redeemable(who, POINTS, code)
        else:
            service.redeem(who, POINTS, code, transaction_number="T-ORDER",
                           external_reference=f"REF-{len(env.services)}")
    except PointsError as error:
        return error.code
    return 800


@pytest.mark.parametrize(("first", "second"), ORDER, ids=[f"{a}>{b}" for a, b in ORDER])
def test_earlier_rule_wins_on_redeem(first: str, second: str, env: Env) -> None:
    a, b = BREACHES[first], BREACHES[second]
    assert answer(env, [], check=False) == 800  # the base member can redeem
    assert answer(env, [b], check=False) == b.code
    assert answer(env, [a], check=False) == a.code
    assert answer(env, [a, b], check=False) == a.code
    assert answer(env, [b, a], check=False) == a.code


@pytest.mark.parametrize(
    ("first", "second"),
    [pair for pair in ORDER if all(BREACHES[name].on_check for name in pair)],
    ids=[f"{a}>{b}" for a, b in ORDER if BREACHES[a].on_check and BREACHES[b].on_check])
def test_earlier_rule_wins_on_isredeemable(first: str, second: str, sqlite_env: Env) -> None:
    a, b = BREACHES[first], BREACHES[second]
    assert answer(sqlite_env, [b], check=True) == (b.check_code or b.code)
    assert answer(sqlite_env, [a, b], check=True) == (a.check_code or a.code)


def test_unknown_member_comes_after_input_checks(env: Env) -> None:
    """Malformed input is refused before the member is looked up (816)."""
    service = env.service(validation_code_required=False)
    nobody = "+919999999999"
    with pytest.raises(PointsError) as caught:
        service.redeem(nobody, POINTS, None, transaction_number="T", external_reference="R")
    assert caught.value.code == 816
    for points, who, when, txn, ref, code in (
        ("0", "not valid!", "bad", "", "", 801),
        (POINTS, "not valid!", "bad", "", "", 802),
        (POINTS, nobody, "bad", "", "", 859),
        (POINTS, nobody, None, "", "", 811),
        (POINTS, nobody, None, "T", "", 817),
    ):
        with pytest.raises(PointsError) as caught:
            service.redeem(who, points, None, transaction_number=txn, external_reference=ref,
                           redemption_time=when)
        assert caught.value.code == code
