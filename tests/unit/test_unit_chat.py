"""The chat's table, its reading of inputs, and the amount helpers, on plain objects: no
database. What the table says a step does with an input is checked here; what the
transitions then do with the engine is checked in tests/bot and tests/core."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core import codes, rules
from core.chat import ANY, TRANSITIONS, Step, kind
from core.chat_io import Command, Contact, Press, Start, Text
from core.models import Member
from core.settings import Settings, load_settings

TOKEN = "ABCDEFGH"


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = {"database_url": "sqlite:///unused.db",
                               "redemption_min_points": 100, "redemption_max_points": 5000,
                               "redemption_multiple_of": 50}
    return load_settings(_env_file=None, **{**base, **overrides})


def member(points: int = 2000, **fields: object) -> Member:
    values: dict[str, object] = {"id": 1, "current_points": points, "lifetime_points": points,
                                 "lifetime_purchases": Decimal("12000")}
    return Member(**{**values, **fields})


def row(step: Step, what: str) -> str:
    found = TRANSITIONS.get((step, what)) or TRANSITIONS.get((ANY, what)) \
        or TRANSITIONS[(ANY, "text")]
    return found.name


@pytest.mark.parametrize(("given", "step", "expected"), [
    (Start(), Step.MENU, "start"),
    (Contact("+919800000001", own=True), Step.CODE, "contact"),
    (Command("balance"), Step.AMOUNT, "/balance"),
    (Press("p:500"), Step.MENU, "amount"),
    (Press(f"c:{TOKEN}"), Step.CONFIRM, "confirm"),
    (Press(f"r:{TOKEN}"), Step.CODE, "resend"),
    (Press(f"x:{TOKEN}"), Step.CODE, "cancel"),
    (Press("p:0500"), Step.MENU, "junk"),  # not a shape the chat makes
    (Press("c:abc"), Step.MENU, "junk"),
    (Press(""), Step.MENU, "junk"),
    (Text("500"), Step.MENU, "number"),  # a bare number at the menu
    (Text("1,000"), Step.MENU, "number"),
    (Text("hello"), Step.MENU, "text"),
    (Text("123456"), Step.CODE, "code"),  # digits at the code step are the code
    (Text("123 456"), Step.CODE, "code"),
    (Text("１２３４５６"), Step.CODE, "code"),
    (Text("12345"), Step.CODE, "text"),  # cannot be a 6-digit code
    (Text("500"), Step.AMOUNT, "text"),  # the amount step reads any text as an amount
])
def test_what_an_input_is_at_a_step(given: object, step: Step, expected: str) -> None:
    assert kind(given, step, 6) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("step", "what", "transition"), [
    (Step.MENU, "number", "choose_amount"),
    (Step.AMOUNT, "text", "choose_amount"),
    (Step.CODE, "amount", "choose_amount"),  # an amount button starts afresh anywhere
    (Step.CONFIRM, "confirm", "confirm"),
    (Step.CODE, "confirm", "code_hint"),  # the old Confirm at the code step: a hint
    (Step.MENU, "confirm", "stale_button"),  # no redemption pending
    (Step.CODE, "code", "enter_code"),
    (Step.CONFIRM, "text", "confirm_hint"),
    (Step.CODE, "text", "code_hint"),  # a text that cannot be a code costs no attempt
    (Step.CODE, "resend", "resend"),
    (Step.CONFIRM, "resend", "stale_button"),
    (Step.CODE, "cancel", "cancel"),
    (Step.MENU, "text", "not_understood"),
    (Step.MENU, "/nonsense", "not_understood"),
    (Step.CODE, "/member", "member"),
    (Step.CONFIRM, "/balance", "show_balance"),
])
def test_the_table(step: Step, what: str, transition: str) -> None:
    assert row(step, what) == transition


def test_reads_only_rows_are_the_looking_ones() -> None:
    reading = {what for (step, what), r in TRANSITIONS.items() if r.reads_only}
    assert reading == {"start", "/start", "/balance", "/history", "/help"}
    assert all(step is ANY for (step, _), r in TRANSITIONS.items() if r.reads_only)


def test_every_step_answers_every_input() -> None:
    kinds = {what for _, what in TRANSITIONS} | {"/unknown"}
    for step in Step:
        for what in kinds:
            assert row(step, what)  # a transition, never a KeyError


@pytest.mark.parametrize(("points", "expected"), [
    (2000, (100, 750, 1350, 2000)),
    (300, (100, 150, 250, 300)),
    (200, (100, 150, 200)),
    (100, (100,)),
    (99_999, (100, 1750, 3350, 5000)),  # capped at the maximum per transaction
])
def test_amounts_spread_over_the_members_range(points: int, expected: tuple[int, ...]) -> None:
    assert rules.suggest(settings(), member(points)) == expected


@pytest.mark.parametrize(("fields", "overrides", "code"), [
    ({"customer_type": "campaign"}, {}, 686),
    ({"customer_type": "none"}, {}, 881),
    ({}, {"redemption_enabled": False}, 827),
    ({"fraud_status": "CONFIRMED"}, {}, 809),
    ({}, {"redemption_min_current_points": 2500}, 804),
    ({}, {"redemption_min_lifetime_points": 5000}, 805),
    ({}, {"redemption_min_lifetime_purchases": "20000"}, 806),
    ({"current_points": 80}, {}, 803),
])
def test_a_member_who_can_redeem_nothing_is_told_why(fields: dict[str, object],
                                                      overrides: dict[str, object],
                                                      code: int) -> None:
    blocked = rules.blocker(settings(**overrides), member(**fields))
    assert blocked is not None and blocked.code == code
    assert rules.suggest(settings(**overrides), member(**fields)) == ()


def test_a_member_who_can_redeem_is_not_blocked() -> None:
    assert rules.blocker(settings(), member(2000)) is None


@pytest.mark.parametrize(("points", "expected"), [
    (520, (500, 550)), (2010, (2000,)), (90, (100,)), (130, (100, 150))])
def test_807_suggests_the_nearest_valid_amounts(points: int, expected: tuple[int, ...]) -> None:
    assert rules.nearest(settings(), member(2000), points) == expected


@pytest.mark.parametrize(("typed", "code"), [
    ("123456", "123456"), (" 123 456 ", "123456"), ("123-456", "123456"),
    ("１２３４５６", "123456"), ("१२३४५६", "123456"),
    ("12345", None), ("1234567", None), ("12a456", None), ("", None), ("1" * 100, None)])
def test_a_typed_code_is_read_or_is_no_code(typed: str, code: str | None) -> None:
    assert codes.read(typed.strip(), 6) == code
