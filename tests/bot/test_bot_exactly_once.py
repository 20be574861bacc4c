"""Redeemed once whatever happens: Confirm pressed twice, an update delivered twice, two
worker processes serving one chat, a restart in the middle, a flaky Bot API."""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram import Update

from bot.app import PerChatUpdateProcessor
from bot.standin import Fault
from tests.bot.bot_harness import ASHA, Chat, World, text_of

# python-telegram-bot itself warns about RetryAfter.retry_after's future type.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def redemptions(world: World) -> int:
    return len([i for i in world.services[0].history(ASHA["mobile"]) if i.kind == "redemption"])


async def test_confirm_pressed_twice_sends_one_code_and_redeems_once(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    summary = chat.last()
    first = chat.user.presses(summary, "Confirm")
    second = chat.user.presses(summary, "Confirm")  # pressed again before the buttons went
    await chat.deliver(first)
    replies = await chat.deliver(second)
    assert replies[-1].text == "Enter the 6-digit validation code you received, or press Cancel."
    codes = [m for m in world.stand_in.messages(chat.user.id) if "SANDBOX CODE" in m.text]
    assert len(codes) == 1
    await chat.say(chat.chat_code())
    replies = await chat.deliver(chat.user.presses(summary, "Confirm"))  # after the redemption
    assert "no longer pending" in text_of(replies)
    assert redemptions(world) == 1
    assert world.member(ASHA["mobile"]).current_points == 1500


async def test_confirm_pressed_twice_at_once_through_the_update_processor(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    summary = chat.last()
    app = chat.application
    updates = [Update.de_json(chat.user.presses(summary, "Confirm"), app.bot) for _ in range(2)]
    await asyncio.gather(*(app.update_processor.process_update(u, app.process_update(u))
                           for u in updates))
    codes = [m for m in world.stand_in.messages(chat.user.id) if "SANDBOX CODE" in m.text]
    assert len(codes) == 1
    await chat.say(chat.chat_code())
    assert redemptions(world) == 1


async def test_without_validation_codes_confirm_twice_redeems_once(world: World) -> None:
    chat = await world.chat(validation_code_required=False)
    await chat.link()
    await chat.say("/redeem 500")
    summary = chat.last()
    replies = await chat.deliver(chat.user.presses(summary, "Confirm"))
    assert text_of(replies).startswith("800 ")
    replies = await chat.deliver(chat.user.presses(summary, "Confirm"))
    assert "no longer pending" in text_of(replies)
    assert redemptions(world) == 1
    assert world.member(ASHA["mobile"]).current_points == 1500


async def test_the_same_update_delivered_twice_is_handled_once(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    entry = chat.user.says(chat.chat_code())
    first = await chat.deliver(entry)
    assert text_of(first).startswith("800 ")
    again = await chat.deliver(entry)
    # Answered again with the kept answer (its first reply may never have reached the
    # member), and nothing redone.
    assert text_of(again) == text_of(first)
    assert text_of(await chat.deliver(entry)) == text_of(first)
    assert redemptions(world) == 1


async def test_two_applications_on_one_database_serve_alternate_updates(world: World) -> None:
    """Two worker processes behind one webhook: each update of one redemption goes to the
    other worker, and the chat state in the database carries it through."""
    chat = await world.chat()
    a = chat.application
    b = await world.application()
    await chat.say("/start", application=a)
    await chat.share_contact("919812345678", application=b)
    await chat.say("/redeem", application=a)
    await chat.say("500", application=b)
    await chat.press("Confirm", application=a)
    replies = await chat.say(chat.chat_code(), application=b)
    assert text_of(replies).startswith("800 ")
    replies = await chat.say("/history", application=a)
    assert "redeemed 500 points" in replies[-1].text
    assert redemptions(world) == 1


async def test_a_restart_in_the_middle_of_a_redemption_resumes_it(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    await chat.application.shutdown()  # the process goes away ...
    world.applications.remove(chat.application)
    chat.application = await world.application()  # ... and a new one takes over
    replies = await chat.say(code)
    assert text_of(replies).startswith("800 ")


async def test_a_retry_after_is_waited_out_and_the_message_still_delivered(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    world.stand_in.fail_next(Fault.retry_after(1), methods={"sendMessage"})
    started = time.monotonic()
    replies = await chat.say("/balance")
    assert time.monotonic() - started >= 1.0
    assert replies[-1].text.startswith("Current points: 2,000")
    sends = world.stand_in.calls_to("sendMessage")
    assert [c.fault for c in sends[-2:]] == ["retry_after", None]


async def test_a_retry_after_on_the_code_message_still_delivers_the_code(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    world.stand_in.fail_next(Fault.retry_after(1), methods={"sendMessage"})
    await chat.press("Confirm")
    replies = await chat.say(chat.chat_code())
    assert text_of(replies).startswith("800 ")


async def test_server_errors_and_timeouts_are_retried(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    world.stand_in.fail_next(Fault.server_error(502), times=1, methods={"sendMessage"})
    world.stand_in.fail_next(Fault.timeout(), times=1, methods={"sendMessage"})
    replies = await chat.say(chat.chat_code())
    assert text_of(replies).startswith("800 ")
    faults = [c.fault for c in world.stand_in.calls_to("sendMessage")[-3:]]
    assert faults == ["server_error", "timeout", None]


async def test_when_the_bot_api_stays_down_the_outcome_is_not_lost(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    world.stand_in.fail_next(Fault.server_error(500), times=50, methods={"sendMessage"})
    assert await chat.say(code) == []  # the member heard nothing ...
    world.stand_in.clear_faults()
    assert world.member(ASHA["mobile"]).current_points == 1500  # ... but it happened once
    replies = await chat.say("/history")
    assert "redeemed 500 points" in replies[-1].text
    replies = await chat.say(code)  # back at the menu: a number now is a new amount
    assert not text_of(replies).startswith(("800", "808"))
    assert redemptions(world) == 1


async def test_a_timeout_after_delivery_does_not_redeem_twice(world: World) -> None:
    chat = await world.chat(telegram_send_retries=0)
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    world.stand_in.fail_next(Fault.timeout(delivered=True), methods={"sendMessage"})
    replies = await chat.say(chat.chat_code())
    assert text_of(replies).startswith("800 ")  # it arrived; only the answer was lost
    assert redemptions(world) == 1


async def test_chats_run_concurrently_and_each_chat_in_order() -> None:
    processor = PerChatUpdateProcessor(16)
    order: list[tuple[int, int]] = []
    running: set[int] = set()
    overlap = False

    async def handle(chat: int, n: int) -> None:
        nonlocal overlap
        assert chat not in running  # never two updates of one chat at once
        running.add(chat)
        if len(running) > 1:
            overlap = True
        await asyncio.sleep(0.01 * (3 - n))  # the first update of a chat is the slowest
        order.append((chat, n))
        running.discard(chat)

    def update(chat: int, update_id: int) -> Update:
        return Update.de_json({"update_id": update_id, "message": {
            "message_id": update_id, "date": 0, "text": "hi",
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "M"}}}, None)

    await asyncio.gather(*(processor.process_update(update(chat, chat * 10 + n),
                                                    handle(chat, n))
                           for n in range(3) for chat in (1, 2, 3)))
    for chat in (1, 2, 3):
        assert [n for c, n in order if c == chat] == [0, 1, 2]
    assert overlap  # different chats did run at the same time


async def test_a_slow_chat_does_not_hold_up_another(world: World) -> None:
    asha = await world.chat()
    await asha.link()
    other = Chat(world, world.stand_in.user(4242, "Other"), asha.application)
    app = asha.application
    # Held back until the test lets it go (`hurry`), not for a time the quick chat could
    # overrun on a loaded machine.
    world.stand_in.fail_next(Fault.slow(600), methods={"sendMessage"}, chat_id=asha.user.id)
    slow = Update.de_json(asha.user.says("/balance"), app.bot)
    quick = Update.de_json(other.user.says("/help"), app.bot)
    slow_task = asyncio.create_task(app.update_processor.process_update(
        slow, app.process_update(slow)))
    async with asyncio.timeout(60):  # until the slow reply is held back at the Bot API
        while not world.stand_in.slow_waiting:  # noqa: ASYNC110  (no event to wait on)
            await asyncio.sleep(0.01)
    await app.update_processor.process_update(quick, app.process_update(quick))
    assert world.stand_in.messages(4242)  # answered ...
    assert not slow_task.done()  # ... while the other chat still waits for Telegram
    world.stand_in.hurry()
    await asyncio.wait_for(slow_task, 60)
    assert asha.last().text.startswith("Current points")
