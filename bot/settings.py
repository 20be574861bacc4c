"""The bot's settings: the engine's settings plus Telegram, the code channels and the webhook.

`load_bot_settings()` is the only way in, like `core.settings.load_settings()`: a value that
does not parse is refused with 888, a combination that cannot work (a webhook without a
secret, the log channel in production) with 899, each with a message naming the setting.
`require_production_ready()` adds what `loyalty-bot run` needs outside the sandbox: a
strong SECRET_KEY, and OTP_CHANNEL chat only with ALLOW_CHAT_CODES=true.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationInfo, field_validator

from core.settings import DEV_SECRET_KEY, Settings, checked, read, require_strong_key
from core.status import PointsError

log = logging.getLogger(__name__)
CHANNELS = ("chat", "email", "sms", "log")
SMS_PROVIDERS = ("generic", "twilio", "http")
SMS_HTTP_METHODS = ("GET", "POST", "PUT")
LOG_FORMATS = ("text", "json")
DEFAULT_BASE_URL = "https://api.telegram.org/bot"
# What Telegram accepts as a webhook secret token.
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class BotSettings(Settings):
    """Settings of `loyalty-bot run`. Field names are the environment variable names."""

    telegram_bot_token: str = ""
    # The Bot API server; a `{token}` placeholder is filled in, otherwise the token is
    # appended (python-telegram-bot's rule). Change it for a self-hosted Bot API server.
    telegram_base_url: str = DEFAULT_BASE_URL
    staff_telegram_ids: str = ""  # comma-separated Telegram user ids
    # Where validation codes go: one or several of chat, email, sms, log.
    otp_channel: str = "sms"
    # OTP_CHANNEL chat outside the sandbox sends the code to the chat it verifies (no
    # second factor): refused unless this is set.
    allow_chat_codes: bool = False

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 15

    sms_gateway_url: str = ""
    sms_gateway_token: str = ""  # sent as "Authorization: Bearer <token>"
    sms_gateway_user: str = ""  # or HTTP basic authentication
    sms_gateway_password: str = ""
    sms_timeout_seconds: float = 15
    # Who sends the SMS: generic (the gateway above, JSON {"to", "text"}), twilio, http (a
    # request templated by the SMS_HTTP_* settings).
    sms_provider: str = "generic"
    sms_retries: int = 2  # a 5xx or a timeout is retried this often; a 4xx never
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""  # a Twilio number, or else:
    twilio_messaging_service_sid: str = ""
    twilio_api_url: str = "https://api.twilio.com"
    sms_http_method: str = "POST"
    sms_http_headers: str = ""  # a JSON object: {"authkey": "..."}
    sms_http_format: str = "json"  # json or form: how SMS_HTTP_BODY is read and encoded
    sms_http_body: str = ""  # with {to} (or {to_digits}) and {text} placeholders

    webhook_url: str = ""  # set: serve a webhook; empty: long polling
    webhook_secret: str = ""
    webhook_listen: str = "0.0.0.0"  # noqa: S104  (a webhook server listens for Telegram)
    webhook_port: int = 8443
    # Proxies whose X-Forwarded-For is believed (addresses or CIDRs, comma-separated), for
    # the client address in the log; anyone else's header is ignored.
    trusted_proxies: str = ""
    # Bounds of the webhook server: a connection may wait this long for a request's
    # headers (idle or half-sent), then it is closed; a body must arrive within
    # WEBHOOK_BODY_TIMEOUT_SECONDS; larger headers or bodies are refused.
    webhook_idle_timeout_seconds: float = 30
    webhook_body_timeout_seconds: float = 10
    webhook_max_body_bytes: int = 1 << 20  # an update is a few kilobytes
    webhook_max_header_bytes: int = 16 << 10
    # Connections held at once (lowered to fit the file-descriptor limit); beyond it the
    # connection that waited longest for a request is closed to make room.
    webhook_max_connections: int = 1000

    # Updates handled at once (one chat's updates always in order).
    bot_concurrent_updates: int = 64
    # How often a message is retried after Telegram's RetryAfter (flood control).
    telegram_max_retries: int = 3
    # The overall cap on messages sent to the Bot API, a second (Telegram's documented
    # broadcast limit is 30); 0 lifts it (a bot with a higher limit, a benchmark). Each
    # chat's and group's own limits stay as python-telegram-bot's AIORateLimiter sets them.
    # Whole messages: aiolimiter cannot send even one under a cap below 1 a second.
    telegram_max_messages_per_second: int = 30
    # How often a reply is retried after a network error or a 5xx from Telegram.
    telegram_send_retries: int = 2
    # How long an update is remembered as handled (a redelivery within it is ignored).
    handled_updates_keep_hours: int = 48
    # Updates one chat may have in hand (handled or waiting); more are dropped (one
    # flooding chat must not hold the places of everyone else's).
    chat_queue_max: int = 10
    # Threads for engine calls, and apart from them for code delivery (SMTP, SMS): a slow
    # gateway never holds up another member's /balance.
    bot_engine_threads: int = 8
    bot_delivery_threads: int = 4

    # Long polling: serve GET /metrics on this port (unset: not served). A webhook worker
    # serves /metrics on WEBHOOK_PORT.
    metrics_port: int | None = None
    metrics_listen: str = "127.0.0.1"
    log_format: str = "text"  # or json: one JSON object per line

    @field_validator("otp_channel")
    @classmethod
    def _known_channels(cls, value: str) -> str:
        names = [part.strip().lower() for part in value.split(",") if part.strip()]
        unknown = [name for name in names if name not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel {', '.join(unknown)}; known: "
                             f"{', '.join(CHANNELS)}")
        if not names:
            raise ValueError(f"name at least one channel of {', '.join(CHANNELS)}")
        return ",".join(dict.fromkeys(names))

    @field_validator("sms_provider", "sms_http_format", "log_format")
    @classmethod
    def _one_of(cls, value: str, info: ValidationInfo) -> str:
        known = {"sms_provider": SMS_PROVIDERS, "sms_http_format": ("json", "form"),
                 "log_format": LOG_FORMATS}[info.field_name or ""]
        name = value.strip().lower()
        if name not in known:
            raise ValueError(f"{value!r} is not one of {', '.join(known)}")
        return name

    @field_validator("sms_http_method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.strip().upper()
        if method not in SMS_HTTP_METHODS:
            raise ValueError(f"{value!r} is not one of {', '.join(SMS_HTTP_METHODS)}")
        return method

    @field_validator("sms_http_headers")
    @classmethod
    def _headers(cls, value: str) -> str:
        if not value.strip():
            return ""
        try:
            headers = json.loads(value)
        except ValueError:
            raise ValueError('not JSON: write a JSON object, {"Name": "value"}') from None
        if not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ValueError('must be a JSON object of text values, {"Name": "value"}')
        return value

    @field_validator("sms_http_body")
    @classmethod
    def _body(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            return ""
        if info.data.get("sms_http_format", "json") == "json":
            try:
                json.loads(value)
            except ValueError as error:
                raise ValueError(f"not JSON ({error}); placeholders go inside strings: "
                                 '{"to": "{to}", "text": "{text}"}') from None
        else:
            try:
                parse_qsl(value, keep_blank_values=True, strict_parsing=True)
            except ValueError:
                raise ValueError("not a form (name=value&name=value)") from None
        return value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _unset_port(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("staff_telegram_ids")
    @classmethod
    def _user_ids(cls, value: str) -> str:
        ids = [part.strip() for part in value.split(",") if part.strip()]
        bad = [part for part in ids if not re.fullmatch(r"-?[0-9]{1,20}", part)]
        if bad:
            raise ValueError(f"{', '.join(bad)} is not a Telegram user id (a number)")
        return ",".join(ids)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part} is not an IP address or network (CIDR)") from None
        return ",".join(parts)

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(part, strict=False)
                     for part in self.trusted_proxies.split(",") if part)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.otp_channel.split(","))

    @property
    def staff_ids(self) -> frozenset[int]:
        return frozenset(int(part) for part in self.staff_telegram_ids.split(",") if part)

    @property
    def sms_http_header_dict(self) -> dict[str, str]:
        return dict(json.loads(self.sms_http_headers)) if self.sms_http_headers else {}

    @property
    def sms_http_header_values(self) -> tuple[str, ...]:
        """The header values (credentials, often): kept out of the log."""
        return tuple(self.sms_http_header_dict.values())

    @property
    def webhook_path(self) -> str:
        """The path the webhook server answers on: the path of WEBHOOK_URL."""
        return urlsplit(self.webhook_url).path.rstrip("/") or "/"

    def problems(self) -> list[str]:
        found = super().problems()
        channels = self.channels
        if "email" in channels and not (self.smtp_host and self.smtp_from):
            found.append("OTP_CHANNEL email needs SMTP_HOST and SMTP_FROM")
        if "sms" in channels and self.sms_provider != "twilio" and not self.sms_gateway_url:
            found.append("OTP_CHANNEL sms needs SMS_GATEWAY_URL")
        if "sms" in channels:
            found += self._sms_provider_problems()
        if self.sms_gateway_url and not self.sms_gateway_url.startswith(("http://",
                                                                          "https://")):
            found.append("SMS_GATEWAY_URL must be an http:// or https:// URL")
        if not 1 <= self.smtp_port <= 65535:
            found.append(f"SMTP_PORT must be a port number (it is {self.smtp_port})")
        if "{token}" not in self.telegram_base_url and not self.telegram_base_url.startswith(
                ("http://", "https://")):
            found.append("TELEGRAM_BASE_URL must be an http:// or https:// URL")
        positive = {"BOT_CONCURRENT_UPDATES": self.bot_concurrent_updates,
                    "HANDLED_UPDATES_KEEP_HOURS": self.handled_updates_keep_hours,
                    "SMTP_TIMEOUT_SECONDS": self.smtp_timeout_seconds,
                    "SMS_TIMEOUT_SECONDS": self.sms_timeout_seconds,
                    "CHAT_QUEUE_MAX": self.chat_queue_max,
                    "BOT_ENGINE_THREADS": self.bot_engine_threads,
                    "BOT_DELIVERY_THREADS": self.bot_delivery_threads,
                    "WEBHOOK_IDLE_TIMEOUT_SECONDS": self.webhook_idle_timeout_seconds,
                    "WEBHOOK_BODY_TIMEOUT_SECONDS": self.webhook_body_timeout_seconds,
                    "WEBHOOK_MAX_CONNECTIONS": self.webhook_max_connections}
        found += [f"{name} must be more than 0 (it is {value})"
                  for name, value in positive.items() if value <= 0]
        not_negative = {"TELEGRAM_MAX_RETRIES": self.telegram_max_retries,
                        "TELEGRAM_SEND_RETRIES": self.telegram_send_retries,
                        "TELEGRAM_MAX_MESSAGES_PER_SECOND":
                            self.telegram_max_messages_per_second,
                        "SMS_RETRIES": self.sms_retries}
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            found.append(f"METRICS_PORT must be a port number (it is {self.metrics_port})")
        found += [f"{name} must not be negative (it is {value})"
                  for name, value in not_negative.items() if value < 0]
        if self.webhook_url:
            found += self._webhook_problems()
        elif "log" in channels and self.secret_key != DEV_SECRET_KEY:
            found.append("OTP_CHANNEL log writes validation codes to the log, so it is for "
                         "development only: it is refused once SECRET_KEY is set for real")
        return found

    def _sms_provider_problems(self) -> list[str]:
        """SMS_PROVIDER's own settings (each problem names the setting)."""
        found: list[str] = []
        if self.sms_provider == "twilio":
            if not self.twilio_account_sid:
                found.append("SMS_PROVIDER twilio needs TWILIO_ACCOUNT_SID")
            if not self.twilio_auth_token:
                found.append("SMS_PROVIDER twilio needs TWILIO_AUTH_TOKEN")
            if bool(self.twilio_from) == bool(self.twilio_messaging_service_sid):
                found.append("SMS_PROVIDER twilio needs TWILIO_FROM or "
                             "TWILIO_MESSAGING_SERVICE_SID (one of them)")
            if not self.twilio_api_url.startswith(("http://", "https://")):
                found.append("TWILIO_API_URL must be an http:// or https:// URL")
        elif self.sms_provider == "http":
            where = self.sms_gateway_url + self.sms_http_body
            if "{text}" not in where:
                found.append("SMS_HTTP_BODY (or SMS_GATEWAY_URL) needs the {text} placeholder")
            if "{to}" not in where and "{to_digits}" not in where:
                found.append("SMS_HTTP_BODY (or SMS_GATEWAY_URL) needs the {to} placeholder")
            if self.sms_http_method == "GET" and self.sms_http_body:
                found.append("SMS_HTTP_METHOD GET sends no body: put the placeholders in "
                             "SMS_GATEWAY_URL and leave SMS_HTTP_BODY empty")
        return found

    def _webhook_problems(self) -> list[str]:
        found: list[str] = []
        parts = urlsplit(self.webhook_url)
        if parts.scheme != "https" or not parts.hostname:
            found.append("WEBHOOK_URL must be an https:// URL (Telegram sends webhooks over "
                         "HTTPS only)")
        if not self.webhook_secret:
            found.append("WEBHOOK_URL needs WEBHOOK_SECRET (Telegram sends it with every "
                         "update; requests without it are refused)")
        elif not _SECRET_TOKEN.fullmatch(self.webhook_secret):
            found.append("WEBHOOK_SECRET must be 1 to 256 letters, digits, _ or -")
        if self.secret_key == DEV_SECRET_KEY:
            found.append("SECRET_KEY must be set (not the development default) when "
                         "WEBHOOK_URL is set")
        if "log" in self.channels:
            found.append("OTP_CHANNEL log writes validation codes to the log: it is refused "
                         "when WEBHOOK_URL is set")
        if not 0 <= self.webhook_port <= 65535:
            found.append(f"WEBHOOK_PORT must be a port number (it is {self.webhook_port})")
        if not 4 << 10 <= self.webhook_max_body_bytes <= 64 << 20:
            found.append("WEBHOOK_MAX_BODY_BYTES must be between 4096 and 67108864 (it is "
                         f"{self.webhook_max_body_bytes}; an update is a few kilobytes)")
        if not 1 << 10 <= self.webhook_max_header_bytes <= 1 << 20:
            found.append("WEBHOOK_MAX_HEADER_BYTES must be between 1024 and 1048576 (it is "
                         f"{self.webhook_max_header_bytes})")
        return found


def require_production_ready(settings: BotSettings) -> None:
    """What `loyalty-bot run` checks outside the sandbox, before it starts (long polling
    or webhook): a strong SECRET_KEY (`core.settings.require_strong_key`), and OTP_CHANNEL
    chat only with ALLOW_CHAT_CODES=true (a warning is logged when it is). 899 otherwise."""
    problems: list[str] = []
    try:
        require_strong_key(settings)
    except PointsError as weak:
        problems.append(weak.detail)
    if "chat" in settings.channels and not settings.allow_chat_codes:
        problems.append("OTP_CHANNEL chat sends the validation code to the very chat it is "
                        "meant to verify, so it is no second factor: use sms or email, or "
                        "set ALLOW_CHAT_CODES=true if you accept that")
    if problems:
        raise PointsError(899, "; ".join(problems))
    if "chat" in settings.channels:
        log.warning("ALLOW_CHAT_CODES=true: validation codes are sent in the chat they "
                    "verify, so they are no second factor")


def load_bot_settings(*, require_token: bool = True, **overrides: Any) -> BotSettings:
    """Read and check the bot's settings; 888 for a bad value, 899 for a bad combination."""
    settings = read(BotSettings, **overrides)
    if require_token and not settings.telegram_bot_token.strip():
        raise PointsError(888, "TELEGRAM_BOT_TOKEN: missing (ask @BotFather for one)")
    return checked(settings)
