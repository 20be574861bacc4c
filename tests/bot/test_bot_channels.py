"""Where validation codes go: email through a local SMTP server, SMS through a local HTTP
gateway, the log, and what happens when no channel delivers."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from bot.senders import EmailSender, LogSender, SmsSender
from bot.settings import load_bot_settings
from core.delivery import CodeMessage, DeliveryFailed
from core.models import CodeState, ValidationCode
from tests.bot.bot_harness import ASHA, World, text_of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mailbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def last_code(self) -> str:
        body = self.messages[-1].get_payload(decode=True).decode()
        found = re.search(r"validation code is (\d+)", body)
        assert found, body
        return found.group(1)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


class Gateway:
    """A local SMS gateway: records each request; answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                gateway.requests.append({"path": self.path,
                                         "auth": self.headers.get("Authorization"),
                                         "body": json.loads(self.rfile.read(length))})
                self.send_response(gateway.status)
                self.end_headers()
                self.wfile.write(b'{"queued": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def last_code(self) -> str:
        found = re.search(r"validation code is (\d+)", self.requests[-1]["body"]["text"])
        assert found
        return found.group(1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    try:
        yield server
    finally:
        server.close()


async def test_email_delivery_through_a_local_smtp_server(
        world: World, smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    chat = await world.chat(otp_channel="email", smtp_host="127.0.0.1", smtp_port=port,
                            smtp_from="points@example.com", smtp_starttls=False)
    await chat.link()
    await chat.say("/redeem 500")
    replies = await chat.press("Confirm")
    assert "Validation Code Issued by Email: sent to a•••@example.com." in replies[-1].text
    assert "SANDBOX" not in text_of(replies)  # the code is not in the chat
    [mail] = mailbox.messages
    assert mail["To"] == ASHA["email"]
    assert mail["From"] == "points@example.com"
    replies = await chat.say(mailbox.last_code())
    assert text_of(replies).startswith("800 ")


async def test_sms_delivery_through_a_local_gateway(world: World, gateway: Gateway) -> None:
    chat = await world.chat(otp_channel="sms", sms_gateway_url=gateway.url,
                            sms_gateway_token="gw-token")
    await chat.link()
    await chat.say("/redeem 500")
    replies = await chat.press("Confirm")
    assert "Validation Code Issued by SMS: sent to +91•••••45678." in replies[-1].text
    [request] = gateway.requests
    assert request["auth"] == "Bearer gw-token"
    assert request["body"]["to"] == ASHA["mobile"]
    replies = await chat.say(gateway.last_code())
    assert text_of(replies).startswith("800 ")


async def test_several_channels_say_where_the_code_went(
        world: World, gateway: Gateway, smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    chat = await world.chat(otp_channel="sms,email", sms_gateway_url=gateway.url,
                            smtp_host="127.0.0.1", smtp_port=port,
                            smtp_from="points@example.com", smtp_starttls=False)
    await chat.link()
    await chat.say("/redeem 500")
    replies = await chat.press("Confirm")
    assert ("Validation Code Issued by SMS and Email: sent to +91•••••45678 and "
            "a•••@example.com.") in replies[-1].text
    assert gateway.last_code() == mailbox.last_code()


async def test_one_channel_failing_is_not_a_failure(world: World, gateway: Gateway) -> None:
    gateway.status = 503
    chat = await world.chat(otp_channel="sms,chat", sms_gateway_url=gateway.url)
    await chat.link()
    await chat.say("/redeem 500")
    replies = await chat.press("Confirm")
    assert "Validation Code Issued by chat: sent to chat." in replies[-1].text


async def test_every_channel_failing_gives_860_and_leaves_no_code_pending(
        world: World, gateway: Gateway) -> None:
    gateway.status = 500
    chat = await world.chat(otp_channel="sms,email", sms_gateway_url=gateway.url,
                            smtp_host="127.0.0.1", smtp_port=free_port(),
                            smtp_from="points@example.com", smtp_starttls=False)
    await chat.link()
    await chat.say("/redeem 500")
    replies = await chat.press("Confirm")
    assert replies[-1].text.startswith("860 We could not send a validation code.")
    assert replies[-1].button_texts == ["Try again", "Cancel"]  # the member may try again
    assert len(gateway.requests) == 3  # a 500 is tried again SMS_RETRIES (2) times

    def states(session: Any) -> list[str]:
        return [c.state for c in session.exec(select(ValidationCode)).all()]
    assert world.services[0].db.run(states, write=False) == [CodeState.VOIDED]
    replies = await chat.say("123456")  # the code was voided: nothing can redeem
    assert replies[-1].text.startswith("808 ") and "no longer valid" in replies[-1].text
    gateway.status = 200
    replies = await chat.press("Try again")  # a new code, sent this time
    assert "Validation Code Issued by SMS" in text_of(replies)
    assert world.member(ASHA["mobile"]).current_points == 2000


def code_message(**overrides: Any) -> CodeMessage:
    values: dict[str, Any] = {"member_id": 1, "name": "Asha", "mobile": ASHA["mobile"],
                              "email": ASHA["email"], "code": "424242", "points": 500,
                              "value": "500.00", "valid_minutes": 10}
    return CodeMessage(**{**values, **overrides})


def test_starttls_is_required_when_asked_for(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server  # this server offers no STARTTLS
    settings = load_bot_settings(require_token=False, otp_channel="email",
                                 smtp_host="127.0.0.1", smtp_port=port,
                                 smtp_from="points@example.com", smtp_starttls=True)
    with pytest.raises(DeliveryFailed) as failure:
        EmailSender(settings).send(code_message())
    assert "424242" not in str(failure.value)
    assert mailbox.messages == []  # never sent in the clear


def test_senders_refuse_members_without_the_address(gateway: Gateway) -> None:
    settings = load_bot_settings(require_token=False, otp_channel="sms,email",
                                 sms_gateway_url=gateway.url, smtp_host="127.0.0.1",
                                 smtp_from="points@example.com", sms_gateway_user="u",
                                 sms_gateway_password="p")
    with pytest.raises(DeliveryFailed):
        SmsSender(settings).send(code_message(mobile=None))
    with pytest.raises(DeliveryFailed):
        EmailSender(settings).send(code_message(email=None))
    assert SmsSender(settings).send(code_message()) == ASHA["mobile"]
    assert gateway.requests[-1]["auth"].startswith("Basic ")


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
def test_credentials_in_the_gateway_url_never_reach_the_log(
        gateway: Gateway, caplog: pytest.LogCaptureFixture, level: int) -> None:
    """SMS_GATEWAY_URL may carry credentials (user:password@, an api key in the query);
    httpx logs the URL of each request at INFO. Its userinfo and query values are hidden."""
    import base64

    from bot import logsafe

    url = (gateway.url.replace("http://", "http://gw-user:gw-pass-5150@")
           + "?api_key=KEY-8080-x&sender=LOYALTY1")
    settings = load_bot_settings(require_token=False, otp_channel="sms", sms_gateway_url=url)
    logsafe.protect(settings)
    caplog.set_level(level)
    for name in ("httpx", "httpcore", "bot.senders"):
        caplog.set_level(level, logger=name)
    assert SmsSender(settings).send(code_message()) == ASHA["mobile"]
    # The gateway got the credentials...
    sent = gateway.requests[-1]
    assert sent["path"] == "/send?api_key=KEY-8080-x&sender=LOYALTY1"
    assert sent["auth"] == "Basic " + base64.b64encode(b"gw-user:gw-pass-5150").decode()
    # ...and the log did not.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request: POST http://[hidden]@127.0.0.1:" in logged
    assert "/send?api_key=[hidden]&sender=[hidden]" in logged
    for secret in ("gw-pass-5150", "gw-user", "KEY-8080-x", "LOYALTY1"):
        assert secret not in logged


def test_the_log_channel_writes_the_code_for_development(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.senders"):
        assert LogSender().send(code_message()) == "log"
    assert "DEVELOPMENT ONLY" in caplog.text and "424242" in caplog.text


async def test_the_log_channel_in_the_chat(world: World, caplog: pytest.LogCaptureFixture
                                           ) -> None:
    chat = await world.chat(otp_channel="log")
    await chat.link()
    await chat.say("/redeem 500")
    with caplog.at_level(logging.WARNING, logger="bot.senders"):
        replies = await chat.press("Confirm")
    assert "Validation Code Issued by log: sent to log." in replies[-1].text
    code = re.search(r"validation code (\d+)", caplog.text)
    assert code
    replies = await chat.say(code.group(1))
    assert text_of(replies).startswith("800 ")
