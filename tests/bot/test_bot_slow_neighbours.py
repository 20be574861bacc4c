"""One slow thing must not stall everyone: members waiting for a code from a 10-second SMS
gateway leave another member's /balance and /healthz prompt (code delivery has threads of
its own, apart from engine calls and the health check), and a chat flooding the bot with
300 updates has the excess dropped (CHAT_QUEUE_MAX) with one log line, so another member's
/balance stays prompt. The real Application, behind the real webhook server on 127.0.0.1
or its update processor; generous "still answered within" bounds only."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from telegram import Update

from bot.standin import Fault
from tests.bot.bot_harness import RAVI, Chat, World, text_of, webhook_served
from tests.support.members import member_csv

SECRET = "s3cret-Token_1"
PATH = "/telegram/hook"
RIGHT = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
PROMPT = 2.0  # seconds: "answered quickly", generously
# More members waiting for a code than asyncio's default pool has threads (what engine
# calls and delivery shared before).
WAITING = min(32, (os.cpu_count() or 1) + 4) + 2


class SlowGateway:
    """An SMS gateway on 127.0.0.1 that takes `delay` seconds to answer (or until
    released), counting the requests it got."""

    def __init__(self, delay: float) -> None:
        self.requests = 0
        self.release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gateway.requests += 1
                gateway.release.wait(delay)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"queued": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[SlowGateway]:
    server = SlowGateway(10.0)
    try:
        yield server
    finally:
        server.close()


def mobile(n: int) -> str:
    return f"+9198770{n:05d}"


@pytest.fixture
async def webhook(world: World, gateway: SlowGateway) -> AsyncIterator[httpx.AsyncClient]:
    """The bot with codes by SMS through the slow gateway, behind its webhook server."""
    world.services[0].import_csv(member_csv(
        [{"mobile": mobile(n), "name": f"M{n}", "points": 2000} for n in range(WAITING + 1)]),
        filename="more.csv")
    overrides = {"webhook_url": f"https://bot.example.com{PATH}", "webhook_secret": SECRET,
                 "webhook_listen": "127.0.0.1", "webhook_port": 0, "otp_channel": "sms",
                 "sms_gateway_url": gateway.url, "sms_timeout_seconds": 30,
                 "secret_key": "a-real-secret-for-production"}
    async with webhook_served(world, overrides, stop_timeout=30) as port:
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         timeout=60) as client:
                yield client
        finally:
            gateway.release.set()  # before the server stops: no delivery left waiting


async def post(client: httpx.AsyncClient, update: dict[str, Any]) -> None:
    answer = await client.post(PATH, json=update, headers=RIGHT)
    assert answer.status_code == 200


async def test_members_waiting_for_a_slow_sms_gateway_hold_up_no_one_else(
        world: World, gateway: SlowGateway, webhook: httpx.AsyncClient) -> None:
    stand_in = world.stand_in
    users = [stand_in.user(3000 + n, f"M{n}") for n in range(WAITING + 1)]
    for n, user in enumerate(users):
        await post(webhook, user.says("/start"))
        await post(webhook, user.shares_contact(mobile(n).lstrip("+")))
        assert stand_in.last_message(user.id).text.startswith("Welcome")
    *waiting, other = users
    for user in waiting:
        await post(webhook, user.says("/redeem 500"))
    confirms = [asyncio.create_task(post(webhook, user.presses(
        stand_in.last_message(user.id), "Confirm"))) for user in waiting]
    for _ in range(200):  # until the gateway holds as many as it will at once
        if gateway.requests >= 4:
            break
        await asyncio.sleep(0.05)
    assert gateway.requests >= 4

    started = time.monotonic()
    await post(webhook, other.says("/balance"))
    balance_took = time.monotonic() - started
    started = time.monotonic()
    health = await webhook.get("/healthz")
    health_took = time.monotonic() - started
    assert balance_took < PROMPT, f"/balance took {balance_took:.1f} s"
    assert health_took < PROMPT, f"/healthz took {health_took:.1f} s"
    assert stand_in.last_message(other.id).text.startswith("Current points")
    assert health.status_code == 200
    assert not any(task.done() for task in confirms)  # still waiting for the gateway

    gateway.release.set()
    await asyncio.wait_for(asyncio.gather(*confirms), 60)
    for user in waiting:  # every one of them got a code in the end
        assert "Validation Code Issued by SMS" in text_of(stand_in.messages(user.id))


async def test_a_chat_flooding_the_bot_delays_no_other_member(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    flood = await world.chat(chat_queue_max=10)
    await flood.link()
    other = Chat(world, world.stand_in.user(4242, "Other"), flood.application)
    await other.link(RAVI)
    app = flood.application
    caplog.set_level(logging.INFO, logger="bot.app")
    # Each answer to the flooding chat is a little slow, as a busy Bot API would be.
    world.stand_in.fail_next(Fault.slow(0.05), times=1000, methods={"sendMessage"},
                             chat_id=flood.user.id)

    def through_processor(data: dict[str, Any]) -> asyncio.Task[None]:
        update = Update.de_json(data, app.bot)
        return asyncio.create_task(app.update_processor.process_update(
            update, app.process_update(update)))

    flooding = [through_processor(flood.user.says("/balance")) for _ in range(300)]
    await asyncio.sleep(0.2)
    mark = world.stand_in.mark()
    started = time.monotonic()
    await asyncio.wait_for(through_processor(other.user.says("/balance")), 60)
    took = time.monotonic() - started
    replies = world.stand_in.messages_since(mark, other.user.id)
    assert text_of(replies).startswith("Current points")
    assert took < PROMPT, f"/balance took {took:.1f} s behind the flood"

    await asyncio.wait_for(asyncio.gather(*flooding), 120)
    answered = len([m for m in world.stand_in.messages(flood.user.id)
                    if m.text.startswith("Current points")])
    assert 10 <= answered < 300  # what was queued was answered, the excess dropped
    drops = [r for r in caplog.records if "CHAT_QUEUE_MAX" in r.getMessage()
             or "updates dropped" in r.getMessage()]
    assert 1 <= len(drops) <= 2, [r.getMessage() for r in drops]
