"""What an operator sees: Prometheus metrics on the webhook server's /metrics (and on
METRICS_PORT in long polling), JSON log lines, and where the database is.

Metrics are counters of the whole test process, so each test compares a scrape before
and after what it does."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from telegram import Update

from bot import logsafe, metrics
from bot.app import ObservedUpdateProcessor, announce_database, build_application, serve
from bot.standin import Fault
from core.db import Database, Retry
from core.service import PointsService
from core.settings import load_settings
from core.status import PointsError
from tests.bot.bot_harness import ASHA, World, telegram_phone, webhook_served

SECRET = "0ps-Secret_Token"
WEBHOOK = {"webhook_url": "https://bot.example.com/telegram/hook", "webhook_secret": SECRET,
           "webhook_listen": "127.0.0.1", "webhook_port": 0,
           "secret_key": "a-real-secret-for-production"}
USER_ID = 987_654_321  # a chat id no other number in these logs could contain


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with `labels` in a scrape (0 when it is not there yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@dataclass
class Served:
    client: httpx.AsyncClient
    world: World

    async def post(self, update: dict[str, Any]) -> None:
        answer = await self.client.post("/telegram/hook", json=update,
                                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert answer.status_code == 200

    async def scrape(self) -> str:
        answer = await self.client.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        return answer.text

    async def redeem(self, points: int = 500) -> None:
        """A member links their chat and redeems `points` through the webhook."""
        stand_in = self.world.stand_in
        user = stand_in.user(USER_ID, "Asha")
        await self.post(user.says("/start"))
        await self.post(user.shares_contact(telegram_phone(ASHA)))
        await self.post(user.says(f"/redeem {points}"))
        await self.post(user.presses(stand_in.last_message(USER_ID), "Confirm"))
        code = next(m.text for m in stand_in.messages(USER_ID) if "SANDBOX" in m.text)
        await self.post(user.says(code.split("validation code is ")[1][:6]))
        assert stand_in.last_message(USER_ID).text.startswith("800 ")


@pytest.fixture
async def served(world: World) -> AsyncIterator[Served]:
    async with webhook_served(world, WEBHOOK) as port, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield Served(client, world)


# ---------------------------------------------------------------- metrics


async def test_metrics_move_with_a_redemption_through_the_webhook(served: Served) -> None:
    before = await served.scrape()
    await served.redeem(500)
    after = await served.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("loyalty_redemptions_total") == 1
    assert moved("loyalty_redeemed_points_total") == 500
    assert moved("loyalty_outcomes_total", operation="enter_code", code="800") == 1
    assert moved("loyalty_outcomes_total", operation="ask_amount", code="800") == 1  # /redeem 500
    assert moved("loyalty_validation_codes_sent_total", channel="chat") == 1
    assert moved("loyalty_updates_total", kind="command") == 2  # /start, /redeem 500
    assert moved("loyalty_updates_total", kind="contact") == 1
    assert moved("loyalty_updates_total", kind="button") == 1
    assert moved("loyalty_updates_total", kind="text") == 1
    assert moved("loyalty_update_seconds_count", kind="text") == 1
    assert moved("loyalty_replies_sent_total") >= 5
    assert moved("loyalty_engine_call_seconds_count", operation="enter_code") == 1
    assert value(after, "loyalty_chat_queue_depth") == 0
    # Labels carry kinds, operations, channels and codes: never who.
    for identifier in (str(USER_ID), ASHA["mobile"], telegram_phone(ASHA), "asha"):
        assert identifier not in after

    # A refusal is counted by its code; a retried redemption is not a second one.
    user = served.world.stand_in.user(USER_ID, "Asha")
    await served.post(user.says("/redeem 7"))
    again = await served.scrape()
    assert value(again, "loyalty_outcomes_total", operation="ask_amount", code="821") - \
        value(after, "loyalty_outcomes_total", operation="ask_amount", code="821") == 1
    assert value(again, "loyalty_redemptions_total") == value(after, "loyalty_redemptions_total")


async def test_failed_deliveries_and_replies_are_counted(world: World) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/send"  # nothing listens there
    chat = await world.chat(otp_channel="sms,chat", sms_gateway_url=nowhere, sms_retries=0)
    await chat.link()
    await chat.say("/redeem 500")
    before = metrics.render().decode()
    replies = await chat.press("Confirm")
    assert "Validation Code Issued by chat" in replies[-1].text
    world.stand_in.fail_next(Fault.server_error(), times=3, methods=["sendMessage"])
    assert await chat.say("/help") == []  # 1 + TELEGRAM_SEND_RETRIES (2) attempts failed
    after = metrics.render().decode()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("loyalty_validation_code_delivery_failures_total", channel="sms") == 1
    assert moved("loyalty_validation_codes_sent_total", channel="chat") == 1
    assert moved("loyalty_validation_codes_sent_total", channel="sms") == 0
    assert moved("loyalty_reply_failures_total", reason="undelivered") == 1


def test_database_retries_and_transient_failures_are_counted(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'retries.db'}"
    db = Database(url, retries=3)
    service = PointsService(load_settings(_env_file=None, database_url=url), db=db)
    metrics.watch_database(service)
    metrics.watch_database(service)  # once, however often
    tries = 0

    def flaky(_session: Any) -> int:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise Retry
        return tries

    before = metrics.render().decode()
    assert db.run(flaky) == 2
    with pytest.raises(PointsError) as busy:
        db.run(lambda _session: (_ for _ in ()).throw(Retry()))
    assert busy.value.code == 815
    after = metrics.render().decode()
    db.dispose()
    assert value(after, "loyalty_db_retries_total", reason="transient") - \
        value(before, "loyalty_db_retries_total", reason="transient") == 1 + 2
    assert value(after, "loyalty_db_transient_failures_total") - \
        value(before, "loyalty_db_transient_failures_total") == 1 + 3


async def test_the_per_chat_queue_depth_is_a_gauge(world: World) -> None:
    processor = ObservedUpdateProcessor(8)
    metrics.watch_queues(processor)
    user = world.stand_in.user(USER_ID, "Asha")
    first, second = (Update.de_json(user.says(text), None) for text in ("/help", "/balance"))
    release = asyncio.Event()
    started = asyncio.Event()

    async def blocked() -> None:
        started.set()
        await release.wait()

    async def quick() -> None:
        pass

    one = asyncio.create_task(processor.process_update(first, blocked()))
    await started.wait()
    two = asyncio.create_task(processor.process_update(second, quick()))
    async with asyncio.timeout(10):
        while processor.queue_depth() != (1, 1):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    scrape = metrics.render().decode()
    assert value(scrape, "loyalty_chat_queue_depth") >= 1
    assert value(scrape, "loyalty_chats_in_progress") >= 1
    release.set()
    await asyncio.gather(one, two)
    assert processor.queue_depth() == (0, 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_long_polling_serves_metrics_on_metrics_port(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    settings = world.settings(metrics_port=port)
    application = build_application(settings, world.service(), request=world.stand_in)
    seen: dict[str, httpx.Response] = {}

    def run_polling(self: Any, **_kw: Any) -> None:  # stands in for the polling loop
        seen["answer"] = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)

    monkeypatch.setattr(type(application), "run_polling", run_polling)
    await asyncio.to_thread(serve, application, settings)
    assert seen["answer"].status_code == 200
    assert "loyalty_updates_total" in seen["answer"].text or \
        "loyalty_redemptions_total" in seen["answer"].text
    with pytest.raises(httpx.TransportError):  # stopped with the bot
        await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_metrics_port_is_off_unless_set(world: World) -> None:
    assert world.settings().metrics_port is None
    assert world.settings(metrics_port="").metrics_port is None
    with pytest.raises(PointsError) as refused:
        world.settings(metrics_port=70000)
    assert refused.value.code == 899 and "METRICS_PORT" in str(refused.value)


# ---------------------------------------------------------------- JSON logs


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as LOG_FORMAT=json writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logsafe.use_log_format("json")
    try:
        yield stream
    finally:
        root.handlers = saved[1]
        root.setLevel(saved[0])


async def test_json_log_lines_carry_update_chat_tag_code_and_duration(
        served: Served, json_log: io.StringIO) -> None:
    await served.redeem(500)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    handled = [line for line in lines if line["event"] == "update handled"]
    assert len(handled) == 5
    for line in handled:
        assert {"time", "level", "event", "update_id", "chat", "duration_ms"} <= line.keys()
        assert line["chat"] == logsafe.chat_tag(USER_ID)
        assert isinstance(line["update_id"], int) and line["duration_ms"] >= 0
    assert handled[-1]["code"] == 800 and handled[-1]["kind"] == "text"
    assert handled[2]["code"] == 800  # /redeem 500: isredeemable answered 800
    assert all(line["time"].endswith("Z") for line in lines)
    assert str(USER_ID) not in json_log.getvalue()  # the chat id itself: never


def test_json_log_lines_hide_secrets(world: World, json_log: io.StringIO) -> None:
    token = "123456:AAE-json-line-token"
    settings = world.settings(telegram_bot_token=token, webhook_secret="hook-secret-json-1",
                              secret_key="the-secret-key-json", sms_provider="twilio",
                              twilio_account_sid="AC123", twilio_auth_token="twilio-tok-json",
                              twilio_from="+15005550006")
    logsafe.protect(settings)
    logging.getLogger("telegram.Bot").warning("calling https://api.telegram.org/bot%s/getMe",
                                              token)
    try:
        raise RuntimeError("failed with hook-secret-json-1 and twilio-tok-json")
    except RuntimeError:
        logging.getLogger("bot.anything").exception("it broke: %s", "the-secret-key-json")
    text = json_log.getvalue()
    for secret in (token, token.partition(":")[2], "hook-secret-json-1",
                   "the-secret-key-json", "twilio-tok-json"):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 2
    assert logsafe.HIDDEN in lines[0]["event"]
    assert logsafe.HIDDEN in lines[1]["event"] and "RuntimeError" in lines[1]["exception"]


def test_the_default_log_format_is_text(world: World) -> None:
    assert world.settings().log_format == "text"
    assert world.settings(log_format="JSON").log_format == "json"
    with pytest.raises(PointsError) as refused:
        world.settings(log_format="xml")
    assert refused.value.code == 888 and "LOG_FORMAT" in str(refused.value)


# ---------------------------------------------------------------- the database


async def test_the_bot_logs_where_its_database_is_and_warns_when_it_is_empty(
        world: World, tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    application = await world.application()
    with caplog.at_level(logging.INFO, logger="bot.app"):
        announce_database(application.bot_data["runtime"])
    assert "database: " in caplog.text
    assert "holds no members" not in caplog.text
    caplog.clear()
    empty = await world.application(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with caplog.at_level(logging.INFO, logger="bot.app"):
        announce_database(empty.bot_data["runtime"])
    assert f"database: SQLite file {tmp_path / 'empty.db'}" in caplog.text
    assert "holds no members" in caplog.text


# ---------------------------------------------------------------- rotating SECRET_KEY


async def test_rotating_secret_key_voids_pending_codes_and_a_resend_works(world: World
                                                                          ) -> None:
    """What docs/deploy.md promises: after a new SECRET_KEY a pending code answers 808,
    and the member's Resend brings one that redeems."""
    old = await world.chat(user_id=USER_ID, secret_key="the-old-secret-key-1")
    await old.link()
    await old.say("/redeem 500")
    await old.press("Confirm")
    stale = old.chat_code()
    application = await world.application(secret_key="the-new-secret-key-2")
    new = type(old)(world, old.user, application)  # the same chat, a restarted worker
    replies = await new.say(stale)
    assert replies[-1].text.startswith("808 ")
    await new.press("Resend code")
    fresh = new.chat_code()
    assert fresh != stale
    assert (await new.say(fresh))[-1].text.startswith("800 ")
    assert world.member(ASHA["mobile"]).current_points == 1500
