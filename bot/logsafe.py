"""Keeping secrets and validation codes out of the log, whatever level it is kept at.

python-telegram-bot logs at DEBUG the Bot API URL (the token is in it), every update it
processes (a member typing their validation code), and every Bot API call's parameters
and answer (the chat channel's code, setWebhook's secret token); httpx logs at INFO the URL
of each request (the token again). `protect(settings)`, called by
`bot.app.build_application`, puts a filter on those loggers: contents of updates, call
parameters and answers are left out (an update is logged by its id), and the token,
WEBHOOK_SECRET, SECRET_KEY and the gateways' credentials are replaced by "[hidden]"
anywhere in their messages and tracebacks. In any URL they log, the userinfo
(`user:password@`) and every query value (`?api_key=...`) are hidden too: httpx logs the
SMS gateway's URL at INFO, and SMS_GATEWAY_URL may carry credentials in either place.

`use_log_format("json")` (LOG_FORMAT=json) makes the root logger's handlers write one JSON
object per line: time, level, logger, event, and, while an update is handled, its update
id and its chat as a tag (`chat_tag`: a keyed hash, never the chat id itself), plus the
status code and duration where a line has them. Secrets are hidden in every string of it.
The default is the human-readable text format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bot.settings import BotSettings

HIDDEN = "[hidden]"
LEFT_OUT = "[not logged]"
# The loggers that write what Telegram, the webhook and the gateways carry.
LOGGERS = ("telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Application",
           "telegram.ext.Updater", "httpx")
_SHORTEST = 6  # shorter "secrets" would hide ordinary words
# A URL in a log message: its scheme, its userinfo if any, the rest, its query if any.
_URL = re.compile(r"(?P<start>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@?#]*@)?"
                  r"(?P<rest>[^\s?#\"'<>]*)(?P<query>\?[^\s#\"'<>]*)?")


def _hide_url(match: re.Match[str]) -> str:
    userinfo = f"{HIDDEN}@" if match["userinfo"] else ""
    query = match["query"] or ""
    if query:
        parts = (part.partition("=") for part in query[1:].split("&") if part)
        query = "?" + "&".join(f"{key}={HIDDEN}" if equals else HIDDEN
                               for key, equals, _ in parts)
    return f"{match['start']}{userinfo}{match['rest']}{query}"


def hide_url_credentials(text: str) -> str:
    """`text` with the userinfo and the query values of every URL in it hidden."""
    return _URL.sub(_hide_url, text) if "://" in text else text


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries: its user, password and query values, as written and
    decoded (to hide them wherever else they turn up)."""
    try:
        parts = urlsplit(url.strip())
        values = [parts.username or "", parts.password or ""]
    except ValueError:
        return []
    values += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    values += [raw.partition("=")[2] for raw in parts.query.split("&")]
    return [form for value in values if value for form in (value, unquote(value))]


class SecretFilter(logging.Filter):
    """Rewrites a record so that it carries no secret and no update or call contents."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        with self._lock:
            self.secrets |= {s for s in secrets if len(s) >= _SHORTEST}

    def hide(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
        return hide_url_credentials(text)

    def _arg(self, value: Any) -> Any:
        if isinstance(value, bool | int | float | type) or value is None:
            return value
        update_id = getattr(value, "update_id", None)
        if isinstance(update_id, int):
            return update_id
        if isinstance(value, dict | list | tuple | set) or hasattr(value, "to_dict"):
            return LEFT_OUT
        return self.hide(str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict):
            args = {key: self._arg(value) for key, value in args.items()}
        elif args:
            args = tuple(self._arg(value) for value in args)
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError, KeyError):
            message = str(record.msg)
        record.msg, record.args = self.hide(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.hide(logging.Formatter().formatException(record.exc_info))
        return True


FILTER = SecretFilter()
_TAG_KEY = [secrets.token_bytes(32)]  # replaced by one derived from SECRET_KEY in protect()


def chat_tag(chat_id: int | str) -> str:
    """A chat as the log names it: 12 hex digits of a hash keyed by SECRET_KEY, the same
    for one chat in every worker, and not reversible by trying every Telegram id."""
    return hmac.new(_TAG_KEY[0], str(chat_id).encode(), hashlib.sha256).hexdigest()[:12]


@dataclass
class UpdateTrace:
    """The update being handled in this context (set by bot.metrics.observe_update)."""

    update_id: int | None
    chat: str | None  # chat_tag() of the chat
    code: int | None = None  # the last status code the engine answered


TRACE: ContextVar[UpdateTrace | None] = ContextVar("update_trace", default=None)
_FIELDS = ("kind", "code", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, secrets hidden in each of its strings."""

    def format(self, record: logging.LogRecord) -> str:
        message = FILTER.hide(record.getMessage())
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name,
            "event": FILTER.hide(str(getattr(record, "event", message)))}
        if line["event"] != message:
            line["message"] = message
        trace = TRACE.get()
        update_id = getattr(record, "update_id", trace.update_id if trace else None)
        chat = trace.chat if trace else None
        if update_id is not None:
            line["update_id"] = update_id
        if chat is not None:
            line["chat"] = chat
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value if isinstance(value, int | float) else FILTER.hide(
                    str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = FILTER.hide(record.exc_text)
        return json.dumps(line, ensure_ascii=False, default=str)


def use_log_format(log_format: str, logger: logging.Logger | None = None) -> None:
    """With "json", every handler of `logger` (the root logger) writes JSON lines; with
    "text" (the default) they keep the format they have."""
    if log_format != "json":
        return
    target = logger or logging.getLogger()
    for handler in target.handlers:
        handler.setFormatter(JsonFormatter())


def protect(settings: BotSettings) -> None:
    """Hide `settings`' secrets from the log, and keep update and call contents out."""
    token = settings.telegram_bot_token.strip()
    FILTER.add(token, token.partition(":")[2], settings.webhook_secret, settings.secret_key,
               settings.sms_gateway_token, settings.sms_gateway_password,
               settings.smtp_password, *url_secrets(settings.sms_gateway_url),
               settings.twilio_auth_token, *settings.sms_http_header_values)
    _TAG_KEY[0] = hmac.new(settings.secret_key.encode(), b"chat tag in the log",
                           hashlib.sha256).digest()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if FILTER not in logger.filters:
            logger.addFilter(FILTER)


__all__ = ["FILTER", "HIDDEN", "LOGGERS", "TRACE", "JsonFormatter", "SecretFilter",
           "UpdateTrace", "chat_tag", "hide_url_credentials", "protect", "url_secrets",
           "use_log_format"]
