"""Hostile input, property-based (Hypothesis): arbitrary text, numbers of every shape, long
messages, update kinds the bot never asked for, malformed callback data and other people's
contacts (and contact numbers of every shape against members of many countries), sent
from every step of a member's way through the real `Application` (the
stand-in Bot API, a real database); and malformed Data Import files.

For each input `benchmarks.drills.BotRig.check` holds the bot to: no unhandled exception
(the error handler is never reached, nothing logged with a traceback, no "something went
wrong"), a reply to every private message that is a documented status code, the help or
the step's own question (kinds the bot ignores by design, such as edited messages, group
chatter and updates without a user, get none), no change to points, members or the ledger,
and no change to the chat's state unless the input was taken (a refused new request,
`/redeem X` or an amount button, asks for another amount, as documented).

Extends tests/bot/test_bot_member_flow.py (a few malformed callbacks and texts, a group
chat, a contact of someone else) to generated input at every step, and
tests/core/test_core_points_in.py (bad import rows) to generated files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.drills import (
    STEPS,
    UPDATE_KINDS,
    BotRig,
    Hostile,
    contact_drill,
    engine_settings,
    import_check,
    members_csv,
    rows_with_points,
    strategies,
    violations,
)
from core.service import IMPORT_COLUMNS, PointsService
from tests.support.databases import own_database

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

HOSTILE = strategies()
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=["sqlite",
                                        pytest.param("postgres", marks=pytest.mark.postgres)])
def rig_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:
    # Not `from conftest import ...`: which conftest that finds depends on the suites
    # collected last (tests/bot/conftest.py, say), so it failed in some test orders.
    with own_database(request.param, tmp_path_factory.mktemp("hostile")) as url:
        yield url


@pytest.fixture(scope="module")
def rig(rig_url: str) -> Iterator[BotRig]:
    bot = BotRig(rig_url)
    try:
        yield bot
    finally:
        bot.close()


def holds(rig: BotRig, hostile: Hostile) -> None:
    assert rig.check(hostile) == []


@FUZZ
@given(step=HOSTILE.steps, text=HOSTILE.texts)
def test_arbitrary_text_at_every_step(rig: BotRig, step: str, text: str) -> None:
    holds(rig, Hostile("text", step, text))


@FUZZ
@given(step=st.sampled_from(["menu", "amount", "confirm", "code"]), number=HOSTILE.numbers,
       how=st.sampled_from(["/redeem {}", "{}", "/redeem@LoyaltyTestBot {}"]))
def test_numbers_of_every_shape_as_an_amount(rig: BotRig, step: str, number: str,
                                             how: str) -> None:
    holds(rig, Hostile("text", step, how.format(number)))


@pytest.mark.parametrize("text", ["9" * 4096, "1" * 4097, "/redeem " + "5" * 5000,
                                  "🙂" * 4100, "a b " * 3000, "1,000 " * 1000],
                         ids=["4096 digits", "4097 digits", "redeem 5000 digits", "emoji",
                              "words", "amounts"])
def test_long_messages_at_every_step(rig: BotRig, text: str) -> None:
    for step in STEPS:
        holds(rig, Hostile("text", step, text))


@FUZZ
@given(step=HOSTILE.steps, command=HOSTILE.commands)
def test_commands_with_hostile_arguments(rig: BotRig, step: str, command: str) -> None:
    holds(rig, Hostile("command", step, command))


@FUZZ
@given(step=HOSTILE.steps, kind=st.sampled_from(sorted(UPDATE_KINDS)),
       extra=st.text(max_size=40))
def test_update_kinds_the_bot_does_not_expect(rig: BotRig, step: str, kind: str,
                                              extra: str) -> None:
    holds(rig, Hostile("update", step, kind, extra))


def test_every_unexpected_update_kind_from_every_step(rig: BotRig) -> None:
    for kind in UPDATE_KINDS:
        for step in STEPS:
            holds(rig, Hostile("update", step, kind, "500"))


@FUZZ
@given(step=HOSTILE.steps, data=HOSTILE.callback_data)
def test_malformed_callback_data(rig: BotRig, step: str, data: str) -> None:
    holds(rig, Hostile("callback", step, data))


@FUZZ
@given(step=HOSTILE.steps, phone=HOSTILE.phones, owner=HOSTILE.owners)
def test_contacts_of_any_number_and_any_owner(rig: BotRig, step: str, phone: str,
                                              owner: object) -> None:
    holds(rig, Hostile("contact", step, (phone, owner)))


@pytest.mark.parametrize("owner", [None, 999_999, 1])
def test_a_forwarded_contact_never_takes_over_a_member(rig: BotRig, owner: int | None
                                                       ) -> None:
    """Every chat, linked or not, forwards the contact of another chat's member: no chat
    changes hands (`check` also asserts its state and link did not change)."""
    for step in STEPS:
        for victim in STEPS:
            rig.goto(step)
            before = rig.chat_state(step)[0]
            holds(rig, Hostile("contact", step, (rig.phones[victim].lstrip("+"), owner)))
            assert rig.chat_state(step)[0] == before


def test_shared_contacts_link_nothing_or_their_own_member(database_url: str) -> None:
    """Contact numbers drawn by Hypothesis (`benchmarks.drills.contact_drill`: members'
    numbers without their country code, with another's, mangled, anything) against members
    of 20 countries: each links nothing or exactly the member its international reading
    names. Reading a contact's digits in DEFAULT_PHONE_REGION linked strangers."""
    outcome = contact_drill(database_url, examples=200)
    assert outcome.violations == []
    assert outcome.hostile == 200


# ---------------------------------------------------------------- Data Import


@pytest.fixture(scope="module")
def importer(rig_url: str) -> Iterator[PointsService]:
    """A service on the database of the rig (SQLite, PostgreSQL), members of its own."""
    service = PointsService(engine_settings(rig_url))
    service.import_csv(members_csv([{"external_id": "KEEP1", "mobile": "+919861111111",
                                     "points": 700}]), filename="keep.csv")
    try:
        yield service
    finally:
        service.db.dispose()


@settings(FUZZ, max_examples=150)
@given(data=HOSTILE.csv_files)
def test_malformed_import_files(importer: PointsService, data: bytes) -> None:
    assert import_check(importer, data) == []


@settings(FUZZ, max_examples=100)
@given(column=st.sampled_from(["current_points", "lifetime_points", "lifetime_purchases",
                               "mobile", "email", "external_id"]),
       value=HOSTILE.numbers, n=st.integers(0, 10**6))
def test_hostile_numbers_in_every_field_of_an_otherwise_good_row(
        importer: PointsService, column: str, value: str, n: int) -> None:
    row = {"external_id": f"HOST{n}", "name": "Hostile", "points": 5, "lifetime_points": 9,
           column: value}
    assert import_check(importer, members_csv([row])) == []


def test_a_valid_row_without_points_is_a_whole_import(tmp_path: Path) -> None:
    """Regression: a valid row with 0 points posts no ledger entry, and the check called
    its batch "half applied" (Hypothesis drew such rows now and then; every later import
    test on the shared database failed after one). Such a batch is whole; only the strict
    check (for the drills' own files, where every row carries points) counts every row."""
    service = PointsService(engine_settings(f"sqlite:///{tmp_path / 'zero.db'}"))
    try:
        zero = {"external_id": "ZERO1", "name": "Zero", "current_points": "0",
                "lifetime_points": "0"}
        mixed = members_csv([zero, {"external_id": "SOME1", "points": 5},
                             {"external_id": "ZERO2", "current_points": "", "lifetime_points": ""}])
        assert rows_with_points(mixed) == 1
        assert import_check(service, members_csv([zero])) == []
        assert import_check(service, mixed) == []
        assert import_check(service, members_csv([{"external_id": "LATER", "points": 9}])) == []
        assert violations(service, every_row_has_points=False) == []
        assert any("half applied" in p for p in violations(service))  # the strict check
    finally:
        service.db.dispose()


@pytest.mark.parametrize("value", ["²", "³¹", "①", "Ⅻ", "½", "٣", "３", "1e3", "-0", "+5",
                                   "1,000", "NaN", "9" * 11])
def test_points_in_an_import_are_whole_decimal_numbers(importer: PointsService,
                                                       value: str) -> None:
    """Regression: '²' passed `str.isdigit` and then broke `int()` (a ValueError, not a
    refusal naming the row)."""
    row = {"external_id": "DIGITS1", "current_points": value, "lifetime_points": "99999999"}
    assert import_check(importer, members_csv([row])) == []


@pytest.mark.parametrize("field", ["name", "external_id", "lifetime_purchases", "type"])
def test_a_nul_character_in_an_import_is_a_bad_row(importer: PointsService,
                                                   field: str) -> None:
    """Regression: PostgreSQL cannot keep a NUL character, and the import raised its
    DataError instead of naming the row."""
    row = {"external_id": "NUL1", "name": "Nul", "points": 5, field: "a\x00b"}
    assert import_check(importer, members_csv([row])) == []


@pytest.mark.parametrize("text", ["/member \x00", "/goodwill +919860000100 5 \x00",
                                  "/revert \x00 5", "/reverse R\x00", "/as \x00", "\x00",
                                  "/redeem \x00", "/member \ud800"],
                         ids=["member", "goodwill", "revert", "reverse", "as", "text",
                              "redeem", "surrogate"])
def test_text_the_database_cannot_keep_is_handled_like_any_other(rig: BotRig,
                                                                 text: str) -> None:
    """Regression: on PostgreSQL a NUL in a refused staff command's arguments (which are
    recorded) reached the error handler with a DataError."""
    for step in ("unlinked", "menu", "code"):
        holds(rig, Hostile("command", step, text))


def test_the_columns_checked_are_the_documented_ones() -> None:
    assert list(IMPORT_COLUMNS) == ["mobile", "email", "external_id", "name", "type",
                                    "fraud_status", "current_points", "lifetime_points",
                                    "lifetime_purchases"]
