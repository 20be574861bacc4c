"""What every handler needs: the engine and its chat use case, a way to call them off the
event loop (the bot's own engine and delivery threads), and a reply that survives a flaky
Bot API.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from telegram import Bot, Message, Update
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot import metrics
from bot.logsafe import chat_tag
from bot.settings import BotSettings
from core import i18n
from core.chat import Chats
from core.i18n import Texts
from core.service import PointsService

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
Context = ContextTypes.DEFAULT_TYPE


class Threads:
    """The bot's own threads: engine calls on BOT_ENGINE_THREADS, and apart from them code
    delivery (SMTP, SMS gateways) on BOT_DELIVERY_THREADS, so that members waiting for a
    slow gateway never hold the threads another member's /balance needs (asyncio's default
    pool, shared with everything, has only a handful). Made on first use; `shutdown()`
    (with the application's update processor) ends them, and a later use makes new ones."""

    def __init__(self, engine: int, delivery: int) -> None:
        self.sizes = {"engine": engine, "delivery": delivery}
        self._pools: dict[str, ThreadPoolExecutor] = {}

    def pool(self, kind: str) -> ThreadPoolExecutor:
        pool = self._pools.get(kind)
        if pool is None:
            pool = self._pools[kind] = ThreadPoolExecutor(self.sizes[kind],
                                                          thread_name_prefix=f"bot-{kind}")
        return pool

    def shutdown(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Runtime:
    """The engine and the bot's settings, kept in `application.bot_data`."""

    settings: BotSettings
    service: PointsService
    chats: Chats
    # Put before every message `say` sends (the sandbox's "🧪 SANDBOX"); empty: nothing.
    mark: str = ""
    # Where `core` and `deliver` run this application's calls (None: asyncio's default pool).
    threads: Threads | None = None

    def is_staff(self, user_id: int) -> bool:
        return user_id in self.settings.staff_ids

    def texts(self, language: str = "") -> Texts:
        """What replies are written with: `language` (empty: DEFAULT_LANGUAGE) in the
        settings' formats."""
        return i18n.for_settings(self.settings, language)


def runtime(context: Context) -> Runtime:
    return cast(Runtime, context.bot_data["runtime"])


# The threads of the application whose update is being handled (set by `use_threads`).
_threads: contextvars.ContextVar[Threads | None] = contextvars.ContextVar("bot_threads",
                                                                         default=None)


async def use_threads(update: object, context: Context) -> None:
    """The first handler of every update: `core` and `deliver` use this application's
    threads for the rest of it."""
    _threads.set(runtime(context).threads)


async def in_thread(pool: ThreadPoolExecutor | None, call: Callable[P, T], *args: P.args,
                    **kwargs: P.kwargs) -> T:
    """Run `call` on `pool` (None: asyncio's default one), with this context's variables,
    as `asyncio.to_thread` does."""
    bound = functools.partial(contextvars.copy_context().run, call, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, bound)


@metrics.observed  # timed, and its status code counted
async def core(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run an engine call on the engine threads: database work never blocks the event
    loop."""
    threads = _threads.get()
    pool = threads.pool("engine") if threads is not None else None
    return await in_thread(pool, call, *args, **kwargs)


@metrics.observed  # timed, and its status code (860: no channel delivered) counted
async def deliver(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a code delivery (`Chats.deliver`) on the delivery threads: a slow gateway holds
    none of the engine's."""
    threads = _threads.get()
    pool = threads.pool("delivery") if threads is not None else None
    return await in_thread(pool, call, *args, **kwargs)


def user_key(update: Update) -> str:
    """The chat user as the engine knows them: the Telegram user id, as text."""
    assert update.effective_user is not None
    return str(update.effective_user.id)


# ---------------------------------------------------------------- replying


async def say(update: Update, context: Context, text: str, markup: Any = None
              ) -> Message | None:
    """Send `text` to the update's chat (`say_to`)."""
    chat = update.effective_chat
    if chat is None:
        return None
    return await say_to(context.bot, runtime(context), chat.id, text, markup)


async def say_to(bot: Bot, rt: Runtime, chat_id: int, text: str, markup: Any = None
                 ) -> Message | None:
    """Send `text` to chat `chat_id`. A 5xx or a timeout from the Bot API is retried
    TELEGRAM_SEND_RETRIES times (a RetryAfter is waited out by the rate limiter); if it
    still fails, it is logged and None returned: the outcome is already in the database
    (/history shows it), so the handler goes on."""
    retries = rt.settings.telegram_send_retries
    if rt.mark:
        text = f"{rt.mark}\n{text}"
    for attempt in range(retries + 1):
        try:
            sent = await bot.send_message(chat_id=chat_id, text=text, reply_markup=markup)
        except BadRequest:
            metrics.reply_failed("refused")
            raise
        except NetworkError as error:
            if attempt == retries:
                metrics.reply_failed("undelivered")
                log.error("reply to chat %s not delivered after %d attempts: %s",
                          chat_tag(chat_id), attempt + 1, type(error).__name__)
                return None
            log.warning("reply to chat %s failed (%s); trying again", chat_tag(chat_id),
                        type(error).__name__)
            await asyncio.sleep(0.2 * 2 ** attempt)
        except TelegramError as error:
            metrics.reply_failed("refused")
            log.error("reply to chat %s refused: %s", chat_tag(chat_id), type(error).__name__)
            return None
        else:
            metrics.reply_sent()
            return sent
    return None


async def answer_button(update: Update) -> None:
    """Stop the button's spinner; the real answer is a message."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer()
    except TelegramError as error:
        log.info("could not answer callback query: %s", type(error).__name__)


async def drop_buttons(update: Update) -> None:
    """Take the inline buttons off the message whose button was pressed."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except TelegramError as error:
        log.debug("could not remove buttons: %s", type(error).__name__)
