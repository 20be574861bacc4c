"""The channels a validation code goes out on: the chat itself, email, SMS, and the log.

The engine calls each sender synchronously, after the transaction that issued the code
(the bot does this on its delivery threads, `bot.runtime.deliver`, apart from engine
calls; SMTP_TIMEOUT_SECONDS and SMS_TIMEOUT_SECONDS bound each attempt). Every sender
raises `core.delivery.DeliveryFailed` when it cannot deliver, with a reason that never
contains the code, and returns where the code went (the engine masks it for display).

- `ChatSender` sends the code into the member's Telegram chat, marked as a sandbox code: it
  schedules the send on the bot's event loop and waits for Telegram's answer, so a failed
  send is a failed delivery. The bot and the loop come from `chat_delivery()`, which the
  handler enters around the delivery (a context variable: the delivery thread gets it).
- `EmailSender` speaks SMTP (smtplib), with STARTTLS unless SMTP_STARTTLS is false.

Every channel's text is `core.code_texts.CodeTexts`': the operators' template
(SMS_TEMPLATE, EMAIL_SUBJECT, EMAIL_TEMPLATE, or their files) or the catalogue's text in
the member's language.
- `SmsSender` POSTs JSON `{"to", "text"}` to SMS_GATEWAY_URL (httpx), with a bearer token
  or basic authentication; any answer but 2xx is a failed delivery (SMS_PROVIDER generic;
  twilio and http are in `bot.sms`, and every provider retries a 5xx or a timeout).
- `LogSender` writes the code to the log. Development only: settings refuse it with
  WEBHOOK_URL or a real SECRET_KEY, so a code never reaches a production log.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from email.message import EmailMessage

import httpx
from telegram import Bot
from telegram.error import TelegramError

from bot import metrics
from bot.settings import BotSettings
from bot.sms import TemplateSender, TwilioSender, send_with_retries
from core.code_texts import CodeTexts
from core.delivery import CodeMessage, CodeSender, DeliveryFailed

log = logging.getLogger(__name__)
SANDBOX_MARK = "🧪 SANDBOX CODE (chat channel, for testing only)"


@dataclass(frozen=True)
class _ChatLine:
    bot: Bot
    loop: asyncio.AbstractEventLoop


_chat_line: ContextVar[_ChatLine | None] = ContextVar("chat_line", default=None)


@contextlib.contextmanager
def chat_delivery(bot: Bot) -> Iterator[None]:
    """Within this block (and the calls `bot.runtime.deliver` runs from it), the chat
    channel sends through `bot` on the running event loop."""
    token = _chat_line.set(_ChatLine(bot, asyncio.get_running_loop()))
    try:
        yield
    finally:
        _chat_line.reset(token)


class ChatSender:
    """Sends the code in the member's own chat (`CodeMessage.reply_to`), marked as a
    sandbox code: the SMS text (SMS_TEMPLATE, or the catalogue's in the member's
    language)."""

    channel = "chat"

    def __init__(self, texts: CodeTexts, timeout: float = 60) -> None:
        self.texts = texts
        self.timeout = timeout

    def send(self, message: CodeMessage) -> str:
        line = _chat_line.get()
        if line is None:
            raise DeliveryFailed("the chat channel works only inside the bot")
        if not message.reply_to:
            raise DeliveryFailed("no chat to send the code to")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # called on the loop itself: waiting here would deadlock it
            raise DeliveryFailed("the chat channel must be called from a worker thread")
        try:
            chat_id = int(message.reply_to)
        except ValueError:
            raise DeliveryFailed("the chat id is not a number") from None
        text = f"{SANDBOX_MARK}\n{self.texts.sms(message)}"
        future = asyncio.run_coroutine_threadsafe(
            line.bot.send_message(chat_id=chat_id, text=text), line.loop)
        try:
            future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise DeliveryFailed("Telegram did not answer in time") from None
        except TelegramError as error:
            raise DeliveryFailed(f"Telegram refused the message: {type(error).__name__}"
                                 ) from None
        return "chat"


class EmailSender:
    """Sends the code by email through SMTP: EMAIL_SUBJECT and EMAIL_TEMPLATE, or the
    catalogue's texts in the member's language."""

    channel = "email"

    def __init__(self, settings: BotSettings) -> None:
        self.texts = CodeTexts.of(settings)
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.user = settings.smtp_user
        self.password = settings.smtp_password
        self.sender = settings.smtp_from
        self.starttls = settings.smtp_starttls
        self.timeout = settings.smtp_timeout_seconds

    def send(self, message: CodeMessage) -> str:
        if not message.email:
            raise DeliveryFailed("the member has no email address")
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.email
        subject, body = self.texts.email(message)
        mail["Subject"] = subject
        mail.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryFailed(f"SMTP {self.host}:{self.port}: {type(error).__name__}"
                                 ) from None
        return message.email


class SmsSender:
    """Sends the code by SMS through an HTTP gateway."""

    channel = "sms"
    backoff = 0.25  # seconds before the first retry of a 5xx or a timeout; then doubled

    def __init__(self, settings: BotSettings) -> None:
        self.texts = CodeTexts.of(settings)
        self.url = settings.sms_gateway_url
        self.headers: dict[str, str] = {}
        self.auth: tuple[str, str] | None = None
        if settings.sms_gateway_token:
            self.headers["Authorization"] = f"Bearer {settings.sms_gateway_token}"
        elif settings.sms_gateway_user:
            self.auth = (settings.sms_gateway_user, settings.sms_gateway_password)
        self.timeout = settings.sms_timeout_seconds
        self.retries = settings.sms_retries

    def send(self, message: CodeMessage) -> str:
        if not message.mobile:
            raise DeliveryFailed("the member has no mobile number")
        payload = {"to": message.mobile, "text": self.texts.sms(message)}

        def post(client: httpx.Client) -> httpx.Response:
            return client.post(self.url, json=payload, headers=self.headers,
                               auth=self.auth or httpx.USE_CLIENT_DEFAULT)

        answer = send_with_retries("generic", post, timeout=self.timeout,
                                   retries=self.retries, backoff=self.backoff)
        if not answer.is_success:
            raise DeliveryFailed(f"SMS gateway answered {answer.status_code}")
        return message.mobile


class LogSender:
    """Writes the code to the log, for development (refused in production by settings)."""

    channel = "log"

    def send(self, message: CodeMessage) -> str:
        log.warning("DEVELOPMENT ONLY: validation code %s for member %s (%s points)",
                    message.code, message.member_id, message.points)
        return "log"


def make_senders(settings: BotSettings) -> list[CodeSender]:
    """The senders OTP_CHANNEL names, in its order (SMS by SMS_PROVIDER), each counted
    (bot.metrics)."""
    sms: dict[str, Callable[[BotSettings], CodeSender]] = {
        "generic": SmsSender, "twilio": TwilioSender, "http": TemplateSender}
    makers: dict[str, Callable[[], CodeSender]] = {
        "chat": lambda: ChatSender(CodeTexts.of(settings)),
        "email": lambda: EmailSender(settings),
        "sms": lambda: sms[settings.sms_provider](settings), "log": LogSender}
    return [metrics.counted(makers[name]()) for name in settings.channels]
