"""The one place the python-telegram-bot `Application` is assembled, and how it is run.

`build_application(settings, service=None, request=None)` gives a ready application: the
token and Bot API server, AIORateLimiter (RetryAfter is waited out and the call retried),
updates processed concurrently but each chat's in order (`PerChatUpdateProcessor`), the
handlers, and an error handler that answers with a short help and never shows a
traceback. `request` replaces the network (a `bot.standin.StandInRequest`, say); `service`
an engine built elsewhere (by default one is built on DATABASE_URL with the OTP_CHANNEL
senders). `serve(application, settings)` runs it: long polling, or a webhook server when
WEBHOOK_URL is set.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from bot import handlers, logsafe, metrics, replies
from bot.burstlog import BurstLog
from bot.runtime import Context, Runtime, Threads, in_thread, say, use_threads
from bot.senders import make_senders
from bot.settings import BotSettings
from core import i18n
from core.chat import Chats
from core.service import PointsService
from core.status import PointsError

log = logging.getLogger(__name__)
# The updates the bot asks Telegram for: edits, reactions and the rest are not wanted.
ALLOWED_UPDATES = ["message", "callback_query"]
# A token for an application that never reaches Telegram (its `request` is a stand-in).
STAND_IN_TOKEN = "0:stand-in"  # noqa: S105  (not a secret: it opens nothing)
COMMANDS = ("balance", "redeem", "history", "language", "cancel", "help")


def member_commands(language: str = i18n.REFERENCE) -> list[BotCommand]:
    """The command menu Telegram shows members, described in `language`."""
    texts = replies.ENGLISH.in_language(language)
    return [BotCommand(name, texts(f"command.{name}")) for name in COMMANDS]


MEMBER_COMMANDS = member_commands()


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Processes updates of different chats concurrently and each chat's updates one at a
    time, in the order they arrived (asyncio locks wake their waiters first come, first
    served). An update waiting for its chat holds one of the `max_concurrent_updates`
    places, so a chat may have at most `chat_queue_max` updates in hand: more are dropped
    (one log line a burst), and one flooding chat cannot take everyone's places. Shutting
    it down (with the application) ends the bot's `threads`."""

    def __init__(self, max_concurrent_updates: int, chat_queue_max: int = 10,
                 threads: Threads | None = None) -> None:
        super().__init__(max_concurrent_updates)
        self.chat_queue_max = chat_queue_max
        self.threads = threads
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}
        self.dropped = BurstLog(log, "chat %s sends more than CHAT_QUEUE_MAX updates at "
                                "once: the excess is dropped",
                                "chat %s: %d more updates dropped in the last %.0f s")

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = _chat_of(update)
        if chat is None:
            await coroutine
            return
        if self._users.get(chat, 0) >= self.chat_queue_max:
            if inspect.iscoroutine(coroutine):
                coroutine.close()  # never started: nothing to undo
            self.dropped.note(chat)
            return
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._users[chat] = self._users.get(chat, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat] -= 1
            if not self._users[chat]:
                del self._users[chat], self._locks[chat]

    def queue_depth(self) -> tuple[int, int]:
        """(updates waiting for an earlier update of their chat, chats being served)"""
        users = list(self._users.values())
        return sum(max(0, n - 1) for n in users), len(users)

    async def initialize(self) -> None:
        """Nothing to set up (the threads start on first use)."""

    async def shutdown(self) -> None:
        if self.threads is not None:
            self.threads.shutdown()


class ObservedUpdateProcessor(PerChatUpdateProcessor):
    """Each update counted, timed and logged as it ends (`bot.metrics.observe_update`)."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        with metrics.observe_update(update, _chat_of(update)):
            await super().do_process_update(update, coroutine)


def _chat_of(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    return update.effective_user.id if update.effective_user is not None else None


def build_application(settings: BotSettings, service: PointsService | None = None,
                      request: BaseRequest | None = None) -> Application[Any, Any, Any, Any,
                                                                          Any, Any]:
    """The bot, ready for `initialize()` and `process_update()` or `serve()`."""
    logsafe.protect(settings)  # no token, secret or validation code in any log
    token = settings.telegram_bot_token.strip()
    if not token:
        if request is None:
            raise PointsError(888, "TELEGRAM_BOT_TOKEN: missing (ask @BotFather for one)")
        token = STAND_IN_TOKEN
    owned = service is None
    engine = service or PointsService(settings, senders=make_senders(settings))
    threads = Threads(settings.bot_engine_threads, settings.bot_delivery_threads)
    metrics.watch_database(engine)
    processor = ObservedUpdateProcessor(settings.bot_concurrent_updates,
                                        settings.chat_queue_max, threads)
    metrics.watch_queues(processor)
    builder = (Application.builder()
               .token(token)
               .base_url(settings.telegram_base_url)
               .rate_limiter(AIORateLimiter(
                   overall_max_rate=settings.telegram_max_messages_per_second,
                   max_retries=settings.telegram_max_retries))
               .concurrent_updates(processor)
               .post_init(_post_init)
               .post_stop(_post_stop))
    if owned:
        builder = builder.post_shutdown(_dispose_engine)
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    application = builder.build()
    application.bot_data["runtime"] = Runtime(settings, engine, Chats(engine),
                                              threads=threads)
    add_handlers(application)
    application.add_error_handler(on_error)
    return application


def add_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Every handler, in the order they are tried: every new message and button press
    goes to the engine's chat use case (`handlers.on_update`)."""
    # First of all (the sandbox's commands are group -2): this application's threads.
    application.add_handler(TypeHandler(Update, use_threads), group=-10)
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, handlers.on_update))
    application.add_handler(CallbackQueryHandler(handlers.on_update))


async def on_error(update: object, context: Context) -> None:
    """Whatever went wrong: the member gets the status code and message of a refusal, or
    a short help; the traceback goes to the log only. Stops the update there."""
    error = context.error
    rt = context.bot_data.get("runtime")
    user = update.effective_user if isinstance(update, Update) else None
    texts = (rt.texts(i18n.choose(user.language_code if user else None,
                                  rt.settings.default_language))
             if rt is not None else replies.ENGLISH)
    if isinstance(error, PointsError):
        text = replies.refusal(error, texts)
        log.warning("refusal not handled by a handler: %s", error)
    else:
        text = f"{texts('something_wrong')}\n\n{texts('help')}"
        log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await say(update, context, text)
        except Exception as failure:  # the error handler itself must not fail
            log.error("could not tell the member about an error: %s", type(failure).__name__)
    raise ApplicationHandlerStop


async def _post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Once running: where the database is, the command menu, and the sweeper of old
    update claims."""
    await asyncio.to_thread(announce_database, application.bot_data["runtime"])
    try:
        await application.bot.set_my_commands(MEMBER_COMMANDS)
        for language in i18n.shipped():  # members whose app speaks it see it in theirs
            if language != i18n.REFERENCE:
                await application.bot.set_my_commands(member_commands(language),
                                                      language_code=language)
    except TelegramError as error:
        log.warning("could not set the command menu: %s", type(error).__name__)
    application.bot_data["sweeper"] = asyncio.create_task(_forget_old_updates(application))
    application.bot_data["deliveries"] = asyncio.create_task(handlers.sweep_deliveries(
        application.bot, application.bot_data["runtime"]))


def announce_database(rt: Runtime) -> None:
    """Log where the database is, and warn when it holds no members (a wrong DATABASE_URL,
    or a relative SQLite path started from another directory)."""
    location = rt.service.location()
    log.info("database: %s", location)
    try:
        members = rt.service.member_count()
    except Exception as error:
        log.warning("could not count the members of %s: %s", location, type(error).__name__)
        return
    if not members:
        log.warning("the database (%s) holds no members: every member will get 816; check "
                    "DATABASE_URL, or load them with `loyalty-bot import`", location)


async def _post_stop(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    for task in ("sweeper", "deliveries"):
        sweeper = application.bot_data.pop(task, None)
        if sweeper is not None:
            sweeper.cancel()


async def _forget_old_updates(application: Application[Any, Any, Any, Any, Any, Any]
                              ) -> None:
    """Every hour, forget update claims older than HANDLED_UPDATES_KEEP_HOURS (Telegram
    stops redelivering an update long before that)."""
    rt: Runtime = application.bot_data["runtime"]
    keep = timedelta(hours=rt.settings.handled_updates_keep_hours)
    while True:
        try:
            pool = rt.threads.pool("engine") if rt.threads is not None else None
            await in_thread(pool, rt.chats.forget_updates, keep)
        except Exception as error:
            log.warning("could not forget old update claims: %s", type(error).__name__)
        await asyncio.sleep(3600)


async def _dispose_engine(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    rt: Runtime = application.bot_data["runtime"]
    rt.service.close()


def serve(application: Application[Any, Any, Any, Any, Any, Any],
          settings: BotSettings) -> None:
    """Run the bot until it is stopped (Ctrl-C, SIGTERM): a webhook server when
    WEBHOOK_URL is set, long polling otherwise."""
    if settings.webhook_url:
        from bot.webhook import serve_webhook

        if settings.metrics_port is not None:
            log.info("METRICS_PORT is for long polling: a webhook worker serves /metrics "
                     "on WEBHOOK_PORT")
        asyncio.run(serve_webhook(application, settings))
        return
    exporter = None
    if settings.metrics_port is not None:
        exporter = metrics.start_metrics_server(settings.metrics_listen, settings.metrics_port)
    log.info("starting long polling")
    try:
        application.run_polling(allowed_updates=ALLOWED_UPDATES)
    finally:
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()


__all__ = ["ALLOWED_UPDATES", "ObservedUpdateProcessor", "PerChatUpdateProcessor",
           "add_handlers", "announce_database", "build_application", "serve"]
