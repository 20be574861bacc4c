"""What the bot tests drive: a `World` (one test's database, clock, stand-in Bot API and
real python-telegram-bot applications built by `bot.app.build_application`) and a `Chat`
that plays a member: it sends the update JSON Telegram would send and reads back what the
bot answered."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot import replies
from bot.app import build_application
from bot.senders import make_senders
from bot.settings import BotSettings, load_bot_settings
from bot.standin import BotMessage, StandInRequest, TelegramUser
from bot.webhook import serve_webhook
from core.service import MemberView, PointsService
from tests.support.clock import Clock
from tests.support.members import member_csv

TOKEN = "123456:TEST-TOKEN"

# Members every test starts with (mobile as Telegram sends it in a contact: no plus).
Member = dict[str, Any]
ASHA: Member = {"mobile": "+919812345678", "email": "asha@example.com", "name": "Asha",
                "points": 2000, "purchases": "12000.00"}
RAVI: Member = {"mobile": "+919812345679", "email": "ravi@example.com", "name": "Ravi",
                "points": 1000, "fraud_status": "MARKED"}
CAMPAIGN: Member = {"mobile": "+919812345670", "name": "Camp", "type": "campaign"}
NON_LOYALTY: Member = {"mobile": "+919812345671", "name": "Nolo", "type": "non_loyalty"}
MEMBERS = (ASHA, RAVI, CAMPAIGN, NON_LOYALTY)


def telegram_phone(member: dict[str, Any]) -> str:
    return str(member["mobile"]).lstrip("+")


class Chat:
    """A member in a private chat with the bot: sends what Telegram would deliver and
    answers with the bot's new messages in this chat."""

    def __init__(self, world: World, user: TelegramUser,
                 application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.world = world
        self.user = user
        self.application = application

    @property
    def stand_in(self) -> StandInRequest:
        return self.world.stand_in

    async def deliver(self, update: dict[str, Any],
                      application: Application[Any, Any, Any, Any, Any, Any] | None = None
                      ) -> list[BotMessage]:
        app = application or self.application
        mark = self.stand_in.mark()
        await app.process_update(Update.de_json(update, app.bot))
        return self.stand_in.messages_since(mark, self.user.id)

    async def say(self, text: str, **kw: Any) -> list[BotMessage]:
        return await self.deliver(self.user.says(text), **kw)

    async def share_contact(self, phone: str, **kw: Any) -> list[BotMessage]:
        app = kw.pop("application", None)
        return await self.deliver(self.user.shares_contact(phone, **kw), app)

    async def press(self, button: str, message: BotMessage | None = None,
                    **kw: Any) -> list[BotMessage]:
        """Press `button` under `message`, or under the newest message that has it."""
        target = message or self.with_button(button)
        return await self.deliver(self.user.presses(target, button), **kw)

    def with_button(self, button: str) -> BotMessage:
        for message in reversed(self.stand_in.messages(self.user.id)):
            if any(t == button or t.startswith(button) for t in message.button_texts):
                return message
        raise LookupError(f"no message in chat {self.user.id} has a {button!r} button")

    def last(self) -> BotMessage:
        return self.stand_in.last_message(self.user.id)

    def chat_code(self) -> str:
        """The newest validation code the chat channel sent here (a sandbox code)."""
        for message in reversed(self.stand_in.messages(self.user.id)):
            found = re.search(r"validation code is (\d+)", message.text)
            if found:
                return found.group(1)
        raise LookupError("no validation code in the chat")

    async def link(self, member: dict[str, Any] = ASHA) -> None:
        await self.say("/start")
        replies = await self.share_contact(telegram_phone(member))
        assert "Welcome" in replies[-1].text, replies[-1].text


def shown(code: int) -> str:
    """What a member reads for a status code (in English, with no member care contact
    set): the code and the catalogue's text for members."""
    return replies.ENGLISH.status(code)


def text_of(messages: list[BotMessage]) -> str:
    return "\n".join(m.text for m in messages)


class World:
    """One test's database, clock, stand-in Bot API and applications."""

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = url
        self.clock = clock
        self.stand_in = StandInRequest()
        self.applications: list[Application[Any, Any, Any, Any, Any, Any]] = []
        self.services: list[PointsService] = []
        self.defaults: dict[str, Any] = {
            "telegram_bot_token": TOKEN, "database_url": url, "otp_channel": "chat",
            "staff_telegram_ids": "900", "redemption_min_points": 100,
            "redemption_multiple_of": 50, "redemption_max_points": 5000,
        }
        self._users = 0
        self.service(**{})  # migrate, and enrol the members
        self.services[0].import_csv(member_csv(list(MEMBERS)), filename="members.csv")

    def settings(self, **overrides: Any) -> BotSettings:
        return load_bot_settings(**{**self.defaults, **overrides})

    def service(self, **overrides: Any) -> PointsService:
        settings = self.settings(**overrides)
        service = PointsService(settings, senders=make_senders(settings), clock=self.clock)
        self.services.append(service)
        return service

    async def application(self, stand_in: StandInRequest | None = None, **overrides: Any
                          ) -> Application[Any, Any, Any, Any, Any, Any]:
        """A new, initialized application on this world's database (its own engine)."""
        settings = self.settings(**overrides)
        app = build_application(settings, self.service(**overrides),
                                request=stand_in or self.stand_in)
        await app.initialize()
        self.applications.append(app)
        return app

    async def chat(self, user_id: int | None = None, name: str = "Asha", **overrides: Any
                   ) -> Chat:
        """A member's chat with a fresh application (settings `overrides`)."""
        app = await self.application(**overrides)
        if user_id is None:
            self._users += 1
            user_id = 1000 + self._users
        return Chat(self, self.stand_in.user(user_id, name), app)

    def member(self, identifier: str) -> MemberView:
        return self.services[0].member(identifier)

    async def close(self) -> None:
        for app in self.applications:
            if app.running:
                await app.stop()
            await app.shutdown()
        for service in self.services:
            service.db.dispose()




@contextlib.asynccontextmanager
async def webhook_served(world: World, settings: dict[str, Any],
                         service: dict[str, Any] | None = None,
                         stop_timeout: float = 10) -> AsyncIterator[int]:
    """The bot served by `serve_webhook` (as `loyalty-bot run` does with WEBHOOK_URL) with
    `settings` over the world's; the engine's settings are `service` (default: the same).
    Answers the port it listens on; stops the server on the way out."""
    bot_settings = world.settings(**settings)
    application = build_application(bot_settings, world.service(**(service or settings)),
                                    request=world.stand_in)
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_webhook(application, bot_settings, stop=stop,
                                             on_ready=ready.set_result))
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_timeout)
