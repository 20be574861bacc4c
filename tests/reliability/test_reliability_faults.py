"""Bot API faults at each step of a redemption: RetryAfter, 5xx answers and timeouts (lost
on the way, or delivered with only the answer lost), once or until the Bot API comes back,
on the reply of each step (the contact's welcome, the amount's summary, the validation code
and its notice, the 800). Whatever happened, the outcome is never lost: after the Bot API
is back the member's /history shows the redemption exactly when the balance went down, the
member can finish, there is exactly one redemption, the books balance; the bot answers the
next update, and while one chat's replies fail another chat is served.

Extends tests/bot/test_bot_exactly_once.py (a fault on one reply each) to every step and
every fault, once and persistent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.standin import Fault
from tests.bot.bot_harness import ASHA, Chat, World, telegram_phone, text_of
from tests.support.clock import Clock

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

FAULTS = {
    "retry_after": Fault.retry_after(1),
    "5xx": Fault.server_error(502),
    "timeout": Fault.timeout(),
    "timeout_delivered": Fault.timeout(delivered=True),
}
STEPS = ("contact", "amount", "confirm", "code")
# Bot API calls answered with the fault: once (recovered by the retries), or until back.
TIMES = {"once": 1, "down": 12}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """SQLite only: what is tested is the bot's handling of the Bot API, not the database
    (tests/bot/test_bot_exactly_once.py runs its fault tests on both)."""
    environment = World(f"sqlite:///{tmp_path / 'loyalty.db'}", Clock())
    try:
        yield environment
    finally:
        await environment.close()


def redemptions(world: World) -> list[str]:
    return [i.id for i in world.services[0].history(ASHA["mobile"]) if i.kind == "redemption"]


async def step(chat: Chat, name: str) -> None:
    """Do one step of the redemption (its reply may fail)."""
    if name == "contact":
        await chat.share_contact(telegram_phone(ASHA))
    elif name == "amount":
        await chat.say("/redeem 500")
    elif name == "confirm":
        await chat.press("Confirm")
    else:
        await chat.say(chat.chat_code())


@pytest.mark.parametrize("mode", sorted(TIMES))
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("at", STEPS)
async def test_a_bot_api_fault_at_any_step_never_loses_the_outcome(
        world: World, at: str, fault: str, mode: str) -> None:
    chat = await world.chat(telegram_max_retries=1)
    bystander = Chat(world, world.stand_in.user(4242, "Other"), chat.application)
    await chat.say("/start")
    for before in STEPS[:STEPS.index(at)]:
        await step(chat, before)
    world.stand_in.fail_next(FAULTS[fault], times=TIMES[mode], methods={"sendMessage"},
                             chat_id=chat.user.id)
    await step(chat, at)
    if mode == "down":  # the Bot API still fails for this chat: another is served
        assert (await bystander.say("/help"))[-1].text.startswith("I show your loyalty points")
    world.stand_in.clear_faults()

    # The bot is serving, and tells the truth about what happened.
    balance = text_of(await chat.say("/balance"))
    done = redemptions(world)
    if at == "contact" and "First share your phone number" in balance:
        await chat.share_contact(telegram_phone(ASHA))  # the link itself was not made
        balance = text_of(await chat.say("/balance"))
    assert balance.startswith(f"Current points: {2000 - 500 * len(done):,}"), balance
    history = text_of(await chat.say("/history"))
    assert ("redeemed 500 points" in history) == bool(done)
    assert len(done) <= 1

    if not done:  # nothing happened: the member can go again from the start and finish
        await chat.say("/redeem 500")
        await chat.press("Confirm")
        assert text_of(await chat.say(chat.chat_code())).startswith("800 ")
    assert len(redemptions(world)) == 1
    assert world.member(ASHA["mobile"]).current_points == 1500
    assert "redeemed 500 points" in text_of(await chat.say("/history"))
    assert world.services[0].audit() == []
    everything = "\n".join(world.stand_in.texts(chat.user.id))
    assert "something went wrong" not in everything
