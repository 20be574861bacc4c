"""Long polling through the stand-in's getUpdates (what `loyalty-bot run` does without
WEBHOOK_URL, and what a terminal sandbox can drive), and the sweeper of old update
claims."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlmodel import select

from bot.app import ALLOWED_UPDATES, build_application
from bot.webhook import serve_webhook
from core.models import HandledUpdate
from core.service import PointsService
from tests.bot.bot_harness import ASHA, World, telegram_phone


async def wait_for(condition: Callable[[], object]) -> None:
    """Wait (10 s at most) until `condition()` holds: the polling loop answers in its own
    time."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110  (the stand-in offers no event to wait on)
            await asyncio.sleep(0.02)


def claimed(service: PointsService) -> int:
    """How many update claims the database holds."""
    return service.db.run(
        lambda session: len(session.exec(select(HandledUpdate.key)).all()), write=False)


async def test_updates_fetched_by_long_polling_are_answered_in_order(world: World) -> None:
    app = await world.application()
    stand_in = world.stand_in
    user = stand_in.user(1001, "Asha")
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES, poll_interval=0,
                                    timeout=1)
    try:
        for update in (user.says("/start"), user.shares_contact(telegram_phone(ASHA)),
                       user.says("/redeem 500")):
            stand_in.put_update(update)
        await wait_for(lambda: stand_in.messages(1001)
                       and stand_in.last_message(1001).text.startswith("Redeem 500"))
        texts = stand_in.texts(1001)
        assert "share your phone number" in texts[0]
        assert texts[1].startswith("Welcome, Asha!")
        stand_in.put_update(user.presses(stand_in.last_message(1001), "Confirm"))
        await wait_for(lambda: "Enter the code" in stand_in.last_message(1001).text)
        code = next(m.text for m in stand_in.messages(1001) if "SANDBOX" in m.text)
        stand_in.put_update(user.says(code.split("validation code is ")[1][:6]))
        await wait_for(lambda: stand_in.last_message(1001).text.startswith("800 "))
    finally:
        await app.updater.stop()
        await app.stop()
    offsets = [c.params.get("offset") for c in stand_in.calls_to("getUpdates")]
    assert offsets[-1] and offsets[-1] > 100_000  # each update was acknowledged


async def test_old_update_claims_are_forgotten(world: World) -> None:
    chat = await world.chat()
    update = chat.user.says("/cancel")  # a write is claimed (a read like /help is not)
    first = await chat.deliver(update)
    assert first and claimed(world.service()) == 1
    again = await chat.deliver(update)  # a redelivery is answered from its claim ...
    assert [m.text for m in again] == [m.text for m in first]
    assert claimed(world.service()) == 1
    world.clock.advance(49 * 3600)
    settings = world.settings(webhook_url="https://bot.example.com/hook",
                              webhook_secret="s", secret_key="real", webhook_port=0,
                              webhook_listen="127.0.0.1")
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    served = build_application(settings, world.service(), request=world.stand_in)
    task = asyncio.create_task(serve_webhook(served, settings, stop=stop,
                                             on_ready=ready.set_result))
    await asyncio.wait_for(ready, 10)
    # The sweeper runs once at start: wait until it has forgotten the claim (a fixed sleep
    # raced it on a loaded machine).
    engine = world.service()
    await wait_for(lambda: not claimed(engine))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert await chat.deliver(update)  # ... until its claim is forgotten, two days later
    assert claimed(world.service()) == 1  # handled anew, claimed anew
