"""The Telegram side of the chat: each update becomes an input for the engine's chat use case
(`core.chat.Chats.handle`), and its outcome becomes messages.

The bot decides nothing here. It reads what arrived (a contact and whether it is the
sender's own, a command and its arguments, a text, a pressed button's data) and hands it
to core, which claims the update, decides, and saves the chat's step in one transaction.
The bot then shows the replies (`bot.replies`) and runs the outcome's effects after that
transaction committed: a validation code is sent on the delivery threads, and how it went
is the chat's next message. Only private chats are served: in a group a command is told
so, anything else ignored.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from telegram import Bot, Update
from telegram.ext import ApplicationHandlerStop

from bot import replies
from bot.runtime import (
    Context,
    Runtime,
    answer_button,
    core,
    deliver,
    drop_buttons,
    in_thread,
    runtime,
    say,
    say_to,
)
from bot.senders import chat_delivery
from core import i18n
from core.chat_io import Command, Contact, DeliverCode, Input, Outcome, Press, Sender, Start, Text

log = logging.getLogger(__name__)


def read_input(update: Update, bot_username: str | None) -> Input | None:
    """What the update says, in the engine's terms; None for nothing to answer."""
    query = update.callback_query
    if query is not None:
        return Press(query.data or "")
    message = update.effective_message
    if message is None or update.effective_user is None:
        return None
    if message.contact is not None:
        return Contact(message.contact.phone_number or "",
                       own=message.contact.user_id == update.effective_user.id)
    text = message.text or ""
    if text.startswith("/"):
        head, *args = text[1:].split() or [""]
        name, _, addressee = head.partition("@")
        if addressee and bot_username and addressee.casefold() != bot_username.casefold():
            return None  # another bot's command
        name = name.casefold()
        return Start() if name == "start" and not args else Command(name, tuple(args))
    word = replies.menu_command(text)
    if word is not None:
        return Command(word)
    return Text(text)


async def on_update(update: Update, context: Context) -> None:
    """Every message and button press: to core and back."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        raise ApplicationHandlerStop
    if update.callback_query is not None:
        await answer_button(update)
    rt = runtime(context)
    if chat.type != "private":
        message = update.effective_message
        if message is not None and (message.text or "").startswith("/"):
            language = i18n.choose(user.language_code, rt.settings.default_language)
            await say(update, context, rt.texts(language)("private_only"))
        return
    given = read_input(update, context.bot.username if context.bot else None)
    if given is None:
        return
    sender = Sender(str(user.id), str(chat.id), name=f"telegram:{user.id}",
                    staff=rt.is_staff(user.id), display=user.full_name,
                    language=user.language_code or "")
    outcome = await core(rt.chats.handle, sender, f"{context.bot.id}:{update.update_id}",
                         given)
    await show(update, context, outcome)


async def show(update: Update, context: Context, outcome: Outcome) -> None:
    """The outcome's replies, then its effects (each of which answers in turn)."""
    if outcome.settled:
        await drop_buttons(update)
    texts = runtime(context).texts(outcome.language)
    for reply in outcome.replies:
        text, markup = replies.render(reply, texts)
        await say(update, context, text, markup)
    for effect in outcome.effects:
        if isinstance(effect, DeliverCode):
            await show(update, context, await send_code(context, effect.delivery_id))


async def send_code(context: Context, delivery_id: int) -> Outcome:
    """Send a waiting validation code on the delivery threads (a slow gateway holds none
    of the engine's); what the chat is told next."""
    with chat_delivery(context.bot):
        return await deliver(runtime(context).chats.deliver, delivery_id)


async def sweep_deliveries(bot: Bot, rt: Runtime, every: float = 15.0) -> None:
    """Forever: send the validation codes a worker took and never finished (it died after
    its transaction committed), and tell their chats how it went."""
    while True:
        try:
            await send_overdue(bot, rt)
        except Exception as error:
            log.warning("could not send overdue validation codes: %s", type(error).__name__)
        await asyncio.sleep(every)


async def send_overdue(bot: Bot, rt: Runtime) -> int:
    """One sweep: the overdue deliveries sent, each chat told; how many were sent."""
    engine = rt.threads.pool("engine") if rt.threads is not None else None
    delivery = rt.threads.pool("delivery") if rt.threads is not None else None
    sent = 0
    for delivery_id, chat in await in_thread(engine, rt.chats.overdue_deliveries):
        with chat_delivery(bot):
            outcome = await in_thread(delivery, functools.partial(
                rt.chats.deliver, delivery_id, take_over=True))
        sent += bool(outcome.replies)
        if chat is None or not chat.lstrip("-").isdigit():
            continue
        for reply in outcome.replies:
            text, markup = replies.render(reply, rt.texts(outcome.language))
            await say_to(bot, rt, int(chat), text, markup)
    return sent
