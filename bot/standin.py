"""A stand-in for the Telegram Bot API: a python-telegram-bot request layer that answers
locally, keeps what the bot sent, and fails on demand.

Give it to the application instead of the network::

    stand_in = StandInRequest()
    application = build_application(settings, request=stand_in)
    await application.initialize()                       # getMe is answered here
    asha = stand_in.user(1001, "Asha")
    await application.process_update(Update.de_json(asha.says("/start"), application.bot))
    stand_in.last_message(asha.id).text                 # what the bot answered
    stand_in.last_message(asha.id).keyboard             # the reply keyboard it showed

Reading what the bot sent (every method is thread-safe):

- `calls` / `calls_to(method)`: every Bot API call in order, as `ApiCall(method, params,
  fault, result)`; `params` are the parsed parameters (reply markups as plain dicts);
  `fault` names the injected failure that answered it, or is None; `result` is what the
  stand-in answered. `subscribe(fn)` calls `fn(call)` after each call, as it happens (a
  terminal can print the bot's messages as they come).
- `messages(chat_id)`: the chat's messages from the bot as `BotMessage`s, oldest first, as
  they are now (an `editMessageText` changes the message in place; `edits` counts them).
  `last_message(chat_id)`, `texts(chat_id)`; `mark()` and `messages_since(mark, chat_id)`
  read only what came after a point.
- `BotMessage.buttons` (inline buttons under the message), `BotMessage.keyboard` (the reply
  keyboard sent with it: the menu, a request_contact button), `BotMessage.button(text)`.
- `callback_answers` (answerCallbackQuery calls), `webhook` (what setWebhook registered, or
  None), `commands` (what setMyCommands set).

Failing on demand: `fail_next(Fault.retry_after(1), times=1, methods={"sendMessage"})`
answers the next matching calls with HTTP 429 and `parameters.retry_after` (the library
raises `RetryAfter`), `Fault.server_error(502)` with a 5xx, `Fault.timeout()` by raising
`TimedOut` (`delivered=True`: the message arrives, only the answer is lost),
`Fault.slow(2)` answers normally two seconds late (`slow_waiting` counts the answers held
back now; `hurry()` lets them all go at once, so a test need not race a clock);
`chat_id=` limits a fault to one chat; `clear_faults()` disarms them all.

Feeding updates: `user(id, first_name)` returns a `TelegramUser` that builds realistic
update JSON (`says`, `shares_contact`, `presses`, `sends_callback`), numbered by this
stand-in. `put_update(update)` queues one for `getUpdates`, so a polling application (a
terminal sandbox, say) receives it. `responders[method] = fn(params) -> result` answers a
method this class does not know, or replaces one it does; raising `ApiRefusal(400,
"Bad Request: ...")` there answers with a Bot API error.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

JSON = dict[str, Any]
Responder = Callable[[JSON], Any]


class ApiRefusal(Exception):
    """Raised by a responder to answer with a Bot API error (HTTP status and description)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@dataclass(frozen=True)
class ApiCall:
    """One call the bot made: the method, its parsed parameters, the injected fault if any."""

    method: str
    params: JSON
    fault: str | None = None
    result: Any = None  # what the stand-in answered (None for a fault)
    at: float = 0.0


@dataclass(frozen=True)
class Button:
    """A button: inline (`callback_data` or `url`) or on a reply keyboard."""

    text: str
    callback_data: str | None = None
    url: str | None = None
    request_contact: bool = False


@dataclass
class BotMessage:
    """A message the bot sent, as it stands now."""

    chat_id: int
    message_id: int
    text: str
    date: int
    buttons: list[list[Button]] = field(default_factory=list)  # inline, under the message
    # The reply keyboard sent with the message: None when the message did not change it,
    # [] when it removed the keyboard.
    keyboard: list[list[Button]] | None = None
    edits: int = 0
    deleted: bool = False

    @property
    def button_texts(self) -> list[str]:
        return [button.text for row in self.buttons for button in row]

    @property
    def keyboard_texts(self) -> list[str]:
        return [button.text for row in self.keyboard or [] for button in row]

    def button(self, text: str) -> Button:
        """The inline button labelled `text` (or starting with it)."""
        for row in self.buttons:
            for button in row:
                if button.text == text or button.text.startswith(text):
                    return button
        raise LookupError(f"no button {text!r} under message {self.message_id}: "
                          f"{self.button_texts}")


@dataclass(frozen=True)
class Fault:
    """A failure to answer with, instead of the Bot API's normal answer."""

    kind: str  # "retry_after", "server_error", "timeout" or "slow"
    status: int = 0
    seconds: float = 0  # retry_after: what `parameters.retry_after` says; slow: the delay
    delivered: bool = False  # timeout only: the call took effect, the answer was lost

    @classmethod
    def retry_after(cls, seconds: int = 1) -> Fault:
        """HTTP 429 with `parameters.retry_after` (flood control)."""
        return cls("retry_after", HTTPStatus.TOO_MANY_REQUESTS, seconds=seconds)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """A normal answer, `seconds` late (a slow network)."""
        return cls("slow", seconds=seconds)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx answer."""
        return cls("server_error", status)

    @classmethod
    def timeout(cls, *, delivered: bool = False) -> Fault:
        """No answer in time (`TimedOut`); with `delivered`, the call still took effect."""
        return cls("timeout", delivered=delivered)


@dataclass
class _ArmedFault:
    fault: Fault
    times: int
    methods: frozenset[str] | None
    chat_id: int | None

    def matches(self, method: str, params: JSON) -> bool:
        if self.methods is None and method in ("getMe", "getUpdates"):
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)


class StandInRequest(BaseRequest):
    """A local Bot API: answers the methods a bot uses and records every call."""

    def __init__(self, *, bot_id: int = 7000000001, bot_username: str = "LoyaltyTestBot",
                 bot_name: str = "Loyalty Points") -> None:
        self.bot_user: JSON = {"id": bot_id, "is_bot": True, "first_name": bot_name,
                               "username": bot_username, "can_join_groups": False,
                               "can_read_all_group_messages": False,
                               "supports_inline_queries": False}
        self._lock = threading.RLock()
        self._calls: list[ApiCall] = []
        self._sent: list[BotMessage] = []  # every message, in the order sent
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._chats: dict[int, JSON] = {}
        self._faults: list[_ArmedFault] = []
        self._hurries = 0  # how often `hurry()` was called
        self.slow_waiting = 0  # slow answers being held back now
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(100_000)
        self.callback_answers: list[JSON] = []
        self.webhook: JSON | None = None
        self.commands: list[JSON] = []
        self.commands_by_language: dict[str, list[JSON]] = {}  # setMyCommands per language
        self._subscribers: list[Callable[[ApiCall], None]] = []
        self.responders: dict[str, Responder] = {
            "getMe": lambda _: dict(self.bot_user),
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback,
            "sendChatAction": lambda _: True,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._webhook_info,
            "setMyCommands": self._set_commands,
            "getMyCommands": lambda _: list(self.commands),
            "deleteMyCommands": self._delete_commands,
            "getUpdates": lambda params: self._pending_updates(params),
            "close": lambda _: True,
            "logOut": lambda _: True,
        }

    # ------------------------------------------------------------- reading what was sent

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def subscribe(self, subscriber: Callable[[ApiCall], None]) -> None:
        """Call `subscriber(call)` for every call from now on, as it is recorded (on the
        bot's event loop, holding the stand-in's lock: keep it quick)."""
        with self._lock:
            self._subscribers.append(subscriber)

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [call for call in self._calls if call.method == method]

    def messages(self, chat_id: int | None = None) -> list[BotMessage]:
        """The bot's messages (in one chat, or all), oldest first; deleted ones left out."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._sent
                    if not m.deleted and (chat_id is None or m.chat_id == chat_id)]

    def last_message(self, chat_id: int) -> BotMessage:
        messages = self.messages(chat_id)
        if not messages:
            raise LookupError(f"the bot sent nothing to chat {chat_id}")
        return messages[-1]

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    def mark(self) -> int:
        """A point in the call record; `messages_since(mark)` reads what came after it."""
        with self._lock:
            return len(self._calls)

    def messages_since(self, mark: int, chat_id: int | None = None) -> list[BotMessage]:
        """The messages the bot sent after `mark` (as they stand now)."""
        with self._lock:
            ids = {(c.result["chat"]["id"], c.result["message_id"]) for c in self._calls[mark:]
                   if c.method == "sendMessage" and isinstance(c.result, dict)}
        return [m for m in self.messages(chat_id) if (m.chat_id, m.message_id) in ids]

    # ------------------------------------------------------------- faults and updates

    def fail_next(self, fault: Fault, times: int = 1, methods: Iterable[str] | None = None,
                  chat_id: int | None = None) -> None:
        """Answer the next `times` calls (to `methods`, or any but getMe/getUpdates; for
        `chat_id`, or any chat) with `fault`."""
        with self._lock:
            self._faults.append(_ArmedFault(fault, times,
                                            frozenset(methods) if methods else None, chat_id))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def hurry(self) -> None:
        """Let every slow answer held back now go at once."""
        with self._lock:
            self._hurries += 1

    async def _held_back(self, seconds: float) -> None:
        with self._lock:
            hurries = self._hurries
            self.slow_waiting += 1
        deadline = time.monotonic() + seconds
        try:
            # hurry() may come from another thread (a terminal's): no asyncio.Event to share.
            while time.monotonic() < deadline and self._hurries == hurries:  # noqa: ASYNC110
                await asyncio.sleep(min(0.01, seconds))
        finally:
            with self._lock:
                self.slow_waiting -= 1

    def next_update_id(self) -> int:
        with self._lock:
            return next(self._update_ids)

    def put_update(self, update: JSON) -> None:
        """Queue an update for the next getUpdates (long polling)."""
        with self._lock:
            self._updates.append(update)

    def user(self, user_id: int, first_name: str = "Member", *, last_name: str | None = None,
             username: str | None = None, language_code: str = "en") -> TelegramUser:
        return TelegramUser(self, user_id, first_name, last_name, username, language_code)

    # ------------------------------------------------------------- BaseRequest

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None,
                         ) -> tuple[int, bytes]:
        api_method = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        params: JSON = dict(request_data.parameters) if request_data else {}
        if api_method == "getUpdates":
            return await self._get_updates(params)
        fault = self._take_fault(api_method, params)
        if fault is not None and fault.kind == "slow":
            await self._held_back(fault.seconds)
        elif fault is not None:
            return self._fail(api_method, params, fault)
        return self._answer(api_method, params)

    # ------------------------------------------------------------- answering

    def _answer(self, method: str, params: JSON, fault: str | None = None) -> tuple[int, bytes]:
        responder = self.responders.get(method)
        with self._lock:
            if responder is None:
                self._record(method, params, fault)
                return _error(HTTPStatus.NOT_FOUND, "Not Found: method not found")
            try:
                result = responder(params)
            except ApiRefusal as refusal:
                self._record(method, params, fault)
                return _error(refusal.status, refusal.description)
            self._record(method, params, fault, result)
            return HTTPStatus.OK, json.dumps({"ok": True, "result": result}).encode()

    def _record(self, method: str, params: JSON, fault: str | None, result: Any = None
                ) -> None:
        call = ApiCall(method, copy.deepcopy(params), fault, copy.deepcopy(result),
                       time.monotonic())
        self._calls.append(call)
        for subscriber in self._subscribers:
            subscriber(call)

    def _take_fault(self, method: str, params: JSON) -> Fault | None:
        with self._lock:
            for armed in self._faults:
                if armed.matches(method, params):
                    armed.times -= 1
                    if armed.times <= 0:
                        self._faults.remove(armed)
                    return armed.fault
        return None

    def _fail(self, method: str, params: JSON, fault: Fault) -> tuple[int, bytes]:
        if fault.kind == "timeout":
            if fault.delivered:
                self._answer(method, params, fault="timeout")
            else:
                with self._lock:
                    self._record(method, params, "timeout")
            raise TimedOut("stand-in: the Bot API did not answer in time")
        with self._lock:
            self._record(method, params, fault.kind)
        if fault.kind == "retry_after":
            return _error(HTTPStatus.TOO_MANY_REQUESTS,
                          f"Too Many Requests: retry after {int(fault.seconds)}",
                          {"retry_after": int(fault.seconds)})
        return _error(fault.status or HTTPStatus.INTERNAL_SERVER_ERROR,
                      "Internal Server Error" if fault.status < 502 else "Bad Gateway")

    async def _get_updates(self, params: JSON) -> tuple[int, bytes]:
        wait = min(float(params.get("timeout") or 0), 1.0)
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                offset = int(params.get("offset") or 0)
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = bool(self._updates)
            if ready or time.monotonic() >= deadline:
                return self._answer("getUpdates", params)
            await asyncio.sleep(0.05)

    def _pending_updates(self, params: JSON) -> list[JSON]:
        limit = int(params.get("limit") or 100)
        return copy.deepcopy(self._updates[:limit])

    # ------------------------------------------------------------- methods

    def _chat(self, chat_id: Any) -> JSON:
        try:
            number = int(chat_id)
        except (TypeError, ValueError):
            raise ApiRefusal(HTTPStatus.BAD_REQUEST, "Bad Request: chat not found") from None
        return self._chats.get(number) or {"id": number,
                                           "type": "private" if number > 0 else "group"}

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _send_message(self, params: JSON) -> JSON:
        chat = self._chat(params.get("chat_id"))
        text = str(params.get("text") or "")
        if not text.strip():
            raise ApiRefusal(HTTPStatus.BAD_REQUEST, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiRefusal(HTTPStatus.BAD_REQUEST, "Bad Request: message is too long")
        markup = params.get("reply_markup") or {}
        message = BotMessage(chat["id"], self._next_message_id(chat["id"]), text,
                             int(time.time()), _inline(markup), _keyboard(markup))
        self._sent.append(message)
        return self._message_json(message)

    def _find(self, params: JSON) -> BotMessage:
        chat = self._chat(params.get("chat_id"))
        message_id = params.get("message_id")
        for message in self._sent:
            if (message.chat_id == chat["id"] and message.message_id == message_id
                    and not message.deleted):
                return message
        raise ApiRefusal(HTTPStatus.BAD_REQUEST, "Bad Request: message to edit not found")

    def _edit_message_text(self, params: JSON) -> JSON:
        message = self._find(params)
        text = str(params.get("text") or "")
        buttons = _inline(params.get("reply_markup") or {})
        if text == message.text and buttons == message.buttons:
            raise ApiRefusal(HTTPStatus.BAD_REQUEST, "Bad Request: message is not modified")
        message.text, message.buttons = text, buttons
        message.edits += 1
        return self._message_json(message)

    def _edit_reply_markup(self, params: JSON) -> JSON:
        message = self._find(params)
        buttons = _inline(params.get("reply_markup") or {})
        if buttons == message.buttons:
            raise ApiRefusal(HTTPStatus.BAD_REQUEST, "Bad Request: message is not modified")
        message.buttons = buttons
        message.edits += 1
        return self._message_json(message)

    def _delete_message(self, params: JSON) -> bool:
        self._find(params).deleted = True
        return True

    def _answer_callback(self, params: JSON) -> bool:
        self.callback_answers.append(dict(params))
        return True

    def _set_webhook(self, params: JSON) -> bool:
        self.webhook = dict(params)
        return True

    def _delete_webhook(self, params: JSON) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _webhook_info(self, _: JSON) -> JSON:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    def _set_commands(self, params: JSON) -> bool:
        commands = params.get("commands") or []
        if isinstance(commands, str):
            commands = json.loads(commands)
        language = params.get("language_code") or ""
        if language:
            self.commands_by_language[str(language)] = list(commands)
        else:
            self.commands = list(commands)
        return True

    def _delete_commands(self, _: JSON) -> bool:
        self.commands = []
        return True

    def _message_json(self, message: BotMessage) -> JSON:
        data: JSON = {"message_id": message.message_id, "date": message.date,
                      "chat": self._chat(message.chat_id), "from": dict(self.bot_user),
                      "text": message.text}
        if message.edits:
            data["edit_date"] = int(time.time())
        if message.buttons:
            data["reply_markup"] = {"inline_keyboard": [
                [_button_json(b) for b in row] for row in message.buttons]}
        return data


class TelegramUser:
    """A Telegram user talking to the bot in a private chat: builds the update JSON that
    Telegram would deliver for what they do."""

    def __init__(self, stand_in: StandInRequest, user_id: int, first_name: str,
                 last_name: str | None = None, username: str | None = None,
                 language_code: str = "en") -> None:
        self.stand_in = stand_in
        self.id = user_id
        self.user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name,
                           "language_code": language_code}
        if last_name:
            self.user["last_name"] = last_name
        if username:
            self.user["username"] = username
        self.chat: JSON = {"id": user_id, "type": "private", "first_name": first_name}
        if username:
            self.chat["username"] = username
        with stand_in._lock:
            stand_in._chats[user_id] = self.chat

    def _message(self, **content: Any) -> JSON:
        with self.stand_in._lock:
            message_id = self.stand_in._next_message_id(self.id)
        return {"update_id": self.stand_in.next_update_id(),
                "message": {"message_id": message_id, "date": int(time.time()),
                            "chat": dict(self.chat), "from": dict(self.user), **content}}

    def says(self, text: str) -> JSON:
        """A text message; a leading /command gets its bot_command entity, as Telegram
        marks it."""
        content: JSON = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command)}]
        return self._message(**content)

    def shares_contact(self, phone_number: str, *, user_id: int | str | None = "own",
                       first_name: str | None = None) -> JSON:
        """A shared contact. By default the user's own (the request_contact button);
        `user_id=` another id, or None, for a contact forwarded from the address book."""
        contact: JSON = {"phone_number": phone_number,
                         "first_name": first_name or self.user["first_name"]}
        owner = self.id if user_id == "own" else user_id
        if owner is not None:
            contact["user_id"] = owner
        return self._message(contact=contact)

    def presses(self, message: BotMessage, button_text: str) -> JSON:
        """Pressing the inline button labelled `button_text` under `message`."""
        data = message.button(button_text).callback_data
        if data is None:
            raise LookupError(f"button {button_text!r} has no callback data")
        return self.sends_callback(message, data)

    def sends_callback(self, message: BotMessage, data: str) -> JSON:
        """A callback query with any `data` (for malformed or stale button data)."""
        with self.stand_in._lock:
            message_json = self.stand_in._message_json(message)
        return {"update_id": self.stand_in.next_update_id(),
                "callback_query": {"id": str(self.stand_in.next_update_id() * 1000 + self.id),
                                   "from": dict(self.user),
                                   "chat_instance": f"ci-{self.id}",
                                   "message": message_json, "data": data}}


def _error(status: int, description: str, parameters: JSON | None = None
           ) -> tuple[int, bytes]:
    body: JSON = {"ok": False, "error_code": int(status), "description": description}
    if parameters:
        body["parameters"] = parameters
    return int(status), json.dumps(body).encode()


def _button(data: JSON) -> Button:
    return Button(str(data.get("text", "")), data.get("callback_data"), data.get("url"),
                  bool(data.get("request_contact")))


def _button_json(button: Button) -> JSON:
    data: JSON = {"text": button.text}
    if button.callback_data is not None:
        data["callback_data"] = button.callback_data
    if button.url is not None:
        data["url"] = button.url
    return data


def _inline(markup: JSON) -> list[list[Button]]:
    return [[_button(b) for b in row] for row in markup.get("inline_keyboard") or []]


def _keyboard(markup: JSON) -> list[list[Button]] | None:
    if "keyboard" in markup:
        return [[_button(b if isinstance(b, dict) else {"text": b}) for b in row]
                for row in markup["keyboard"]]
    if markup.get("remove_keyboard"):
        return []
    return None


__all__ = ["ApiCall", "ApiRefusal", "BotMessage", "Button", "Fault", "StandInRequest",
           "TelegramUser"]
