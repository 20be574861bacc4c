"""Validation codes and secrets never reach a log: every logger captured at DEBUG (the bot's,
python-telegram-bot's, httpx's, tornado's) through whole redemptions over the webhook with
each code channel, the Bot API over real HTTP, and the sandbox's log file at --verbose.

The `log` channel is the one exception by design: it writes the code to the log for
development, and settings refuse it once SECRET_KEY is real or WEBHOOK_URL is set
(tests/bot/test_bot_settings.py::test_the_log_channel_is_for_development_only).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pexpect
import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.app import build_application
from bot.standin import StandInRequest
from bot.webhook import SECRET_HEADER, serve_webhook
from tests.bot.bot_harness import ASHA, Chat, World, telegram_phone, text_of
from tests.bot.test_bot_channels import Gateway, Mailbox, free_port
from tests.sandbox.sandbox_support import PROMPT, letter_of, spawn_sandbox

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "424242:AAH-reliability-TOKEN-x9"
SECRETS = {"telegram_bot_token": TOKEN, "webhook_secret": "whsec-Reliability_77",
           "secret_key": "sk-reliability-secret-key-3141", "sms_gateway_token": "gw-tok-5926",
           "smtp_password": "smtp-pw-5358"}
WEBHOOK = {"webhook_url": "https://bot.example.com/hook", "webhook_listen": "127.0.0.1",
           "webhook_port": 0}
CODE = re.compile(r"validation code is (\d+)")


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Every logger that exists, and the root, at DEBUG for this test."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)


def logged(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text + (record.exc_text or "") + (record.stack_info or "")


def leaks(caplog: pytest.LogCaptureFixture, secrets: list[str]) -> list[str]:
    # aiosmtpd is the test's own mail server (another system), not the bot.
    return [f"{r.name}: {logged(r)[:200]}" for r in caplog.records
            if not r.name.startswith("mail.log")
            and any(secret in logged(r) for secret in secrets)]


def secret_values(token: str = TOKEN) -> list[str]:
    return [*SECRETS.values(), token, token.partition(":")[2]]


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


async def served_redemption(world: World, channel: dict[str, Any],
                            code_of: Any) -> list[str]:
    """Asha redeems 500 points over the webhook with `channel`'s settings; the codes."""
    values = {**SECRETS, **WEBHOOK, **channel}
    world.defaults["telegram_bot_token"] = TOKEN
    settings = world.settings(**values)
    application = build_application(settings, world.service(**values), request=world.stand_in)
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_webhook(application, settings, stop=stop,
                                             on_ready=ready.set_result))
    port = await asyncio.wait_for(ready, 10)
    user = world.stand_in.user(1001, "Asha")
    codes: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            async def post(update: dict[str, Any], secret: str = SECRETS["webhook_secret"]
                           ) -> None:
                answer = await client.post("/hook", json=update, headers={SECRET_HEADER: secret})
                assert answer.status_code == (200 if secret == SECRETS["webhook_secret"]
                                              else 403)

            await post(user.says("/start"), secret="a-wrong-secret")  # refused, and logged
            await post(user.says("/start"))
            await post(user.shares_contact(telegram_phone(ASHA)))
            await post(user.says("/redeem 500"))
            await post(user.presses(world.stand_in.last_message(1001), "Confirm"))
            codes.append(code_of())
            await post(user.says("000000" if codes[0] != "000000" else "111111"))  # wrong
            await post(user.says(codes[0]))
            assert world.stand_in.last_message(1001).text.startswith("800 ")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return codes


@pytest.mark.parametrize("channel", ["chat", "sms", "email"])
async def test_no_code_or_secret_reaches_any_log_through_a_webhook_redemption(
        world: World, caplog: pytest.LogCaptureFixture, gateway: Gateway,
        mailbox: tuple[Mailbox, int], channel: str) -> None:
    capture_everything(caplog)
    box, port = mailbox
    settings: dict[str, Any] = {
        "chat": {"otp_channel": "chat"},
        "sms": {"otp_channel": "sms", "sms_gateway_url": gateway.url},
        "email": {"otp_channel": "email", "smtp_host": "127.0.0.1", "smtp_port": port,
                  "smtp_from": "points@example.com", "smtp_starttls": False,
                  "smtp_user": ""},
    }[channel]

    def code_of() -> str:
        if channel == "chat":
            found = CODE.search(world.stand_in.texts(1001)[-2])
            assert found
            return found.group(1)
        return gateway.last_code() if channel == "sms" else box.last_code()

    codes = await served_redemption(world, settings, code_of)
    names = {r.name for r in caplog.records}
    # The capture saw the libraries at work, so their silence about secrets means something.
    assert {"telegram.ext.ExtBot", "telegram.ext.Application", "bot.webhook"} <= names
    if channel == "sms":
        assert "httpx" in names
    assert leaks(caplog, [*secret_values(), *codes]) == []


class HttpBotApi:
    """The stand-in Bot API behind real HTTP, so the bot's own httpx request layer (and its
    logging of URLs, which carry the token) is what talks to it."""

    def __init__(self) -> None:
        self.stand_in = StandInRequest()
        stand_in = self.stand_in

        class Endpoint(tornado.web.RequestHandler):
            async def post(self, method: str) -> None:
                # What the stand-in reads of a request: its parameters, parsed.
                data = SimpleNamespace(parameters={
                    name: _json_or_text(values[0].decode())
                    for name, values in self.request.body_arguments.items()})
                status, body = await stand_in.do_request(self.request.full_url(), "POST",
                                                         data)  # type: ignore[arg-type]
                self.set_status(status)
                self.set_header("Content-Type", "application/json")
                self.finish(body)

        self.app = tornado.web.Application([(r"/bot[^/]+/(\w+)", Endpoint)],
                                           log_function=lambda _: None)
        self.server: HTTPServer | None = None
        self.port = 0

    async def start(self) -> None:
        sockets = bind_sockets(0, address="127.0.0.1")
        self.server = HTTPServer(self.app)
        self.server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()


def _json_or_text(value: str) -> Any:
    import json

    try:
        return json.loads(value)
    except ValueError:
        return value


@pytest.fixture
async def http_bot_api() -> AsyncIterator[HttpBotApi]:
    api = HttpBotApi()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


async def test_the_token_stays_out_of_the_log_when_the_bot_api_is_real_http(
        world: World, caplog: pytest.LogCaptureFixture, http_bot_api: HttpBotApi) -> None:
    capture_everything(caplog)
    values = {**SECRETS, "otp_channel": "chat",
              "telegram_base_url": f"http://127.0.0.1:{http_bot_api.port}/bot"}
    world.defaults["telegram_bot_token"] = TOKEN
    settings = world.settings(**values)
    application = build_application(settings, world.service(**values))  # the real network
    await application.initialize()
    try:
        chat = Chat(world, http_bot_api.stand_in.user(1001, "Asha"), application)
        world.stand_in = http_bot_api.stand_in
        await chat.link()
        await chat.say("/redeem 500")
        await chat.press("Confirm")
        code = chat.chat_code()
        assert text_of(await chat.say(code)).startswith("800 ")
    finally:
        await application.shutdown()
    assert any(r.name == "httpx" and "HTTP Request" in r.getMessage() for r in caplog.records)
    assert leaks(caplog, [*secret_values(), code]) == []


async def test_the_log_channel_writes_the_code_in_its_own_development_line_only(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    capture_everything(caplog)
    chat = await world.chat(otp_channel="log")  # the development SECRET_KEY: allowed
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    [line] = [r for r in caplog.records if "DEVELOPMENT ONLY" in r.getMessage()]
    found = re.search(r"validation code (\d+)", line.getMessage())
    assert found and line.name == "bot.senders"
    code = found.group(1)
    assert text_of(await chat.say(code)).startswith("800 ")
    assert [r for r in caplog.records if code in logged(r)] == [line]


def test_the_sandbox_log_file_at_verbose_has_no_code(tmp_path: Path) -> None:
    child = spawn_sandbox(tmp_path, "--verbose", NO_COLOR="1")
    child.expect("Pick a demo member to be")
    child.sendline("1")  # Asha
    child.expect(PROMPT)
    child.sendline("/redeem 500")
    child.expect(PROMPT)
    child.sendline(letter_of(str(child.before), "Confirm"))
    child.expect(PROMPT)
    found = re.search(r"Your validation code is (\d{6})", str(child.before))
    assert found, child.before
    child.sendline(found.group(1))
    child.expect(PROMPT)
    assert "800 Points redeemed successfully" in str(child.before)
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    log = (tmp_path / "sandbox-data" / "sandbox.log").read_text(encoding="utf-8")
    assert " DEBUG " in log  # verbose: everything is in it
    assert "Processing update" in log  # python-telegram-bot's own lines are there ...
    assert found.group(1) not in log  # ... but not the code


def test_the_filter_keeps_contents_and_secrets_out_of_each_record() -> None:
    from telegram import Update

    from bot.logsafe import HIDDEN, LEFT_OUT, SecretFilter

    hide = SecretFilter()
    hide.add("s3cr3t-value", "abc")  # too short to hide: "abc" stays
    update = Update.de_json({"update_id": 77, "message": {
        "message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "123456"}},
        None)

    def record(msg: str, *args: object, exc: BaseException | None = None) -> str:
        entry = logging.LogRecord("telegram.ext.Application", logging.DEBUG, __file__, 1,
                                  msg, args, (type(exc), exc, None) if exc else None)
        assert hide.filter(entry)
        return entry.getMessage() + (entry.exc_text or "")

    assert record("Processing update %s", update) == "Processing update 77"
    assert record("Calling `%s` with `%s`", "sendMessage", {"text": "code 123456"}) == \
        f"Calling `sendMessage` with `{LEFT_OUT}`"
    assert record("URL https://x/bots3cr3t-value/getMe abc") == \
        f"URL https://x/bot{HIDDEN}/getMe abc"
    assert record("%s %d", "x", 5) == "x 5"
    failed = record("failed", exc=RuntimeError("at /bots3cr3t-value/sendMessage"))
    assert "s3cr3t-value" not in failed and HIDDEN in failed
