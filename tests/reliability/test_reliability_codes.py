"""Validation-code attacks: a guesser gets at most OTP_MAX_ATTEMPTS tries at each code (also
with 40 guesses at once, through isredeemable and redeem) and at most
OTP_PERIOD_MAX_SENDS codes a period, so its chance stays at most
attempts / 10^digits per code (and codes x attempts / 10^digits a period); code requests
are capped per member and period through the bot too; a member's code is useless to
another member and for another amount, typed into the chat.

The engine's own tests already prove each rule on its own
(tests/core/test_core_validation_codes.py: wrong entries void the code, the period limit,
the send limit, bound to member, bound to amount); these add the attacker's view.
"""

from __future__ import annotations

import itertools

import pytest

from benchmarks.drills import concurrent_guesses, engine_settings, members_csv
from core.delivery import RecordingSender
from core.service import PointsService
from core.status import PointsError
from tests.bot.bot_harness import ASHA, World, text_of
from tests.support.members import member_csv

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

DIGITS, ATTEMPTS, CODES_A_PERIOD = 4, 5, 6


def test_a_guesser_gets_attempts_tries_per_code_and_codes_per_period(
        database_url: str) -> None:
    sender = RecordingSender()
    service = PointsService(engine_settings(
        database_url, otp_length=DIGITS, otp_max_attempts=ATTEMPTS,
        otp_period_max_sends=CODES_A_PERIOD, otp_max_sends=1), senders=[sender])
    try:
        service.import_csv(members_csv([{"mobile": "+919860000001", "points": 10_000}]))
        who = "+919860000001"
        evaluated: list[int] = []
        refs = itertools.count()
        for n in itertools.count():
            points = 100 + n  # another amount: a new code (and the last one void)
            try:
                service.issue_validation_code(who, points)
            except PointsError as error:
                assert (error.code, error.reason) == (860, "period_limit")
                break
            real = sender.last_code()
            # Every candidate in order, as a guesser would; the real code is kept back
            # until the attempts are spent, to see that it is dead by then.
            candidates = (f"{c:0{DIGITS}d}" for c in range(10**DIGITS))
            tries = 0
            for guess in (c for c in candidates if c != real):
                try:
                    service.redeem(who, points, guess, transaction_number=f"G{n}",
                                   external_reference=f"G-{next(refs)}")
                except PointsError as error:
                    assert error.code == 808
                    if error.reason not in ("wrong", "attempts"):
                        break  # refused without looking at the guess: the code is dead
                    tries += 1
            evaluated.append(tries)
            with pytest.raises(PointsError) as dead:
                service.redeem(who, points, real, transaction_number=f"G{n}",
                               external_reference=f"G-{next(refs)}")
            assert (dead.value.code, dead.value.reason) == (808, "voided")
        assert evaluated == [ATTEMPTS] * CODES_A_PERIOD
        assert service.balance(who).current_points == 10_000
        # So a guesser's chance is at most ATTEMPTS in 10^DIGITS for each code, and
        # CODES_A_PERIOD x ATTEMPTS guesses in 10^DIGITS in a period.
        assert sum(evaluated) / 10**DIGITS <= CODES_A_PERIOD * ATTEMPTS / 10**DIGITS
        assert service.audit() == []
    finally:
        service.db.dispose()


def test_forty_simultaneous_wrong_guesses_are_compared_at_most_the_limit(
        database_url: str) -> None:
    """40 threads enter wrong codes for one code at the same moment, half through
    isredeemable and half through redeem (`benchmarks.drills.concurrent_guesses`): each
    comparison waits for the member's row lock, so at most OTP_MAX_ATTEMPTS are compared
    and the code is void afterwards (the right code is refused). On PostgreSQL without the
    lock, isredeemable's counts overwrote each other: 13 and 20 of 40 were compared."""
    outcome = concurrent_guesses(database_url, guessers=40, rounds=3)
    assert outcome.violations == []
    assert outcome.requests == outcome.hostile == 120
    assert "at most 5 of 40" in outcome.detail


async def test_code_requests_through_the_bot_are_capped_per_member_and_period(
        world: World) -> None:
    chat = await world.chat(otp_period_max_sends=3, otp_period_seconds=600)
    await chat.link()
    for points in (100, 150, 200):
        await chat.say(f"/redeem {points}")
        assert "Validation Code Issued" in text_of(await chat.press("Confirm"))
    await chat.say("/redeem 250")
    replies = await chat.press("Confirm")
    assert replies[-1].text.startswith("860 We could not send a validation code.")
    assert "too many validation codes" in replies[-1].text
    assert replies[-1].button_texts == ["Cancel"]  # no Resend, nor Confirm: it would fail
    await chat.say("/redeem 250")
    replies = await chat.press("Confirm")  # asking again does not get round it
    assert replies[-1].text.startswith("860 ")
    world.clock.advance(601)  # a new period
    await chat.say("/redeem 250")
    await chat.press("Confirm")
    assert text_of(await chat.say(chat.chat_code())).startswith("800 ")


async def test_a_code_is_useless_to_another_member_and_for_another_amount(
        world: World) -> None:
    world.services[0].import_csv(member_csv([{"mobile": "+919812345600", "name": "Mallory",
                                              "points": 2000}]), filename="mallory.csv")
    asha = await world.chat()
    await asha.link()
    await asha.say("/redeem 500")
    await asha.press("Confirm")
    asha_code = asha.chat_code()

    mallory = await world.chat(name="Mallory")
    await mallory.say("/start")
    await mallory.share_contact("919812345600")
    await mallory.say("/redeem 500")
    await mallory.press("Confirm")
    if mallory.chat_code() == asha_code:
        pytest.skip("both drew the same code: nothing to tell apart")
    replies = await mallory.say(asha_code)  # Asha's code, same amount: wrong for Mallory
    assert replies[-1].text.startswith("808 ") and "attempts left" in replies[-1].text

    await asha.say("/redeem 1000")  # another amount ...
    await asha.press("Confirm")
    replies = await asha.say(asha_code)  # ... and the code of the first is void
    assert replies[-1].text.startswith("808 ")
    assert world.member(ASHA["mobile"]).current_points == 2000
    assert world.member("+919812345600").current_points == 2000
