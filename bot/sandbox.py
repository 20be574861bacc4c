"""Sandbox mode: the production bot, on a database of its own seeded with the demo members,
validation codes sent in the chat, and staff commands to play any member and start again.

Used by `loyalty-bot run --sandbox` (a real Telegram test bot) and by `loyalty-bot sandbox`
(the same bot answered in a terminal, `bot.terminal`). Production is untouched: nothing
here runs unless one of those two asked for it. `build_sandbox_application` calls the one
`bot.app.build_application` and then `install`s on top of it:

- `/as MOBILE` (or `/as 3`, a demo member's number; any identifier works): staff only. Links
  the staff member's own Telegram account to that member without a contact
  (`core.conversation.Conversations.link`), leaves any pending step, and welcomes them as
  that member.
- `/forget`: staff only. Unlinks their account, so that /start asks for the phone number
  as it asks a new member.
- `/reset`: staff only. Empties the sandbox database and seeds the demo members again
  (`bot.demo.reset`); whoever the staff member was playing, they play again.
- `/demo`: the demo members, what each one shows, and the sandbox rules.
- every message the bot sends is marked with `SANDBOX_MARK` (`Runtime.mark`; the codes the
  chat channel sends carry their own sandbox mark).

These commands are tried before every other handler (group -2): each claims its update as
every update is claimed (`bot.handlers.claim_update`: once only, private chats only) and
stops there. Staff actions are recorded like the other staff commands' (`telegram:<id>`).

The sandbox database must not be the production one: `load_sandbox_settings` reads
SANDBOX_DATABASE_URL (default `sqlite:///sandbox-data/telegram.db`) and refuses to start,
with 899, when it names the same database as DATABASE_URL. The sandbox's redemption rules
are `bot.demo.SANDBOX_RULES`, whatever the REDEMPTION_* settings say.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop, CommandHandler, filters
from telegram.request import BaseRequest

from bot import demo, handlers, replies
from bot.app import build_application
from bot.runtime import Context, Runtime, core, runtime, say, user_key
from bot.settings import BotSettings, load_bot_settings
from bot.staff import authorised
from core.conversation import State
from core.service import PointsService
from core.status import PointsError

log = logging.getLogger(__name__)
SANDBOX_MARK = "🧪 SANDBOX"
DEFAULT_SANDBOX_DATABASE_URL = "sqlite:///sandbox-data/telegram.db"
SANDBOX_GROUP = -2  # before claim_update (group -1) and the member handlers (group 0)
AS_USAGE = "Usage: /as MOBILE (or the number of a demo member, 1 to {count})"

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


class SandboxSettings(BotSettings):
    """The bot's settings plus where the sandbox keeps its data."""

    # The sandbox's own database; never the production DATABASE_URL.
    sandbox_database_url: str = DEFAULT_SANDBOX_DATABASE_URL


# ---------------------------------------------------------------- settings


def same_database(first: str, second: str) -> bool:
    """Whether two database URLs name the same database: the same SQLite file (however
    the path is written), or the same database on the same server (whatever the driver or
    the user)."""
    try:
        a, b = make_url(first.strip()), make_url(second.strip())
    except ArgumentError:
        return first.strip() == second.strip()
    backend_a, backend_b = a.get_backend_name(), b.get_backend_name()
    if backend_a != backend_b:
        return False
    if backend_a == "sqlite":
        if not a.database or not b.database or ":memory:" in (a.database, b.database):
            return a.database == b.database
        return Path(a.database).expanduser().resolve() == Path(b.database).expanduser().resolve()
    loopback = {None, "", "localhost", "127.0.0.1", "::1"}

    def host(url: Any) -> str:
        return "localhost" if url.host in loopback else str(url.host).lower()

    return (host(a) == host(b) and (a.port or 0) == (b.port or 0)
            and (a.database or "") == (b.database or ""))


def sandbox_overrides(database_url: str) -> dict[str, Any]:
    """The settings every sandbox runs with: its database, codes in the chat, its rules."""
    return {"database_url": database_url, "otp_channel": "chat", **demo.SANDBOX_RULES}


def load_sandbox_settings(**overrides: Any) -> BotSettings:
    """Settings of `run --sandbox`: the environment's (token, staff, webhook...), with the
    sandbox database, the chat channel and the sandbox rules. Refuses with 899 when
    SANDBOX_DATABASE_URL is the production DATABASE_URL, and like `load_bot_settings`
    otherwise."""
    try:
        raw = SandboxSettings(**overrides)
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                            for e in error.errors())
        raise PointsError(888, reasons) from None
    url = raw.sandbox_database_url.strip() or DEFAULT_SANDBOX_DATABASE_URL
    if same_database(url, raw.database_url):
        raise PointsError(899, "SANDBOX_DATABASE_URL is the production DATABASE_URL "
                               f"({_safe(raw.database_url)}): the sandbox seeds demo members "
                               "and /reset empties its database, so it needs a database of "
                               "its own. Set SANDBOX_DATABASE_URL to another database")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    passed = {k: v for k, v in overrides.items() if k != "sandbox_database_url"}
    return load_bot_settings(**{**passed, **sandbox_overrides(url)})


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "the same URL"


# ---------------------------------------------------------------- the application


def build_sandbox_application(settings: BotSettings, service: PointsService | None = None,
                              request: BaseRequest | None = None, *,
                              mark: str = SANDBOX_MARK) -> AnyApplication:
    """The production application on the sandbox database, seeded if empty, with the
    sandbox commands and every message marked with `mark` ("" for none)."""
    application = build_application(settings, service, request)
    engine: PointsService = application.bot_data["runtime"].service
    if demo.seed_if_empty(engine):
        log.info("sandbox database seeded with %d demo members", len(demo.DEMO_MEMBERS))
    log.info("SANDBOX MODE: database %s, codes sent in the chat, /as /forget /reset for "
             "staff", _safe(settings.database_url))
    if not settings.staff_ids:
        log.warning("STAFF_TELEGRAM_IDS is empty: nobody can use /as, /forget or /reset")
    install(application, mark=mark)
    return application


def install(application: AnyApplication, *, mark: str = SANDBOX_MARK) -> None:
    """Add the sandbox commands to an application from `build_application`, and mark its
    messages."""
    rt: Runtime = application.bot_data["runtime"]
    application.bot_data["runtime"] = dataclasses.replace(rt, mark=mark)
    new_message = filters.UpdateType.MESSAGE
    commands = (("as", act_as), ("forget", forget), ("reset", reset), ("demo", show_demo))
    for name, callback in commands:
        application.add_handler(CommandHandler(name, callback, filters=new_message),
                                group=SANDBOX_GROUP)


# ---------------------------------------------------------------- the commands


async def act_as(update: Update, context: Context) -> None:
    """/as MOBILE: staff play that member from now on (their own account is linked)."""
    await handlers.claim_update(update, context)
    staff = await authorised(update, context, "as")
    if staff is not None:
        await _act_as(update, context, staff)
    raise ApplicationHandlerStop


async def _act_as(update: Update, context: Context, staff: str) -> None:
    args = context.args or []
    if len(args) != 1:
        await say(update, context, AS_USAGE.format(count=len(demo.DEMO_MEMBERS)) + "\n\n"
                  + demo.listing())
        return
    numbered = demo.find(args[0])
    identifier = numbered.mobile if numbered else args[0]
    rt = runtime(context)
    try:
        member = await core(rt.service.member, identifier)
        await core(rt.conversations.link, user_key(update), member.id)
    except PointsError as error:
        await say(update, context, replies.refusal(error))
        return
    await core(rt.conversations.save, user_key(update), State())
    await core(rt.service.record_staff_action, staff, "sandbox-as",
               member.mobile or identifier, True, f"playing member {member.id}")
    shown = demo.by_mobile(member.mobile)
    story = f" – {shown.story}" if shown else ""
    await say(update, context, f"You are now {member.name or 'member ' + str(member.id)} "
                               f"({member.mobile or identifier}){story}.\n\n"
                               + replies.welcome(member), replies.menu())


async def forget(update: Update, context: Context) -> None:
    """/forget: staff are a Telegram user who has not shared a number yet (to try /start
    and sharing the contact as a new member would)."""
    await handlers.claim_update(update, context)
    staff = await authorised(update, context, "forget")
    if staff is not None:
        rt = runtime(context)
        await core(rt.conversations.unlink, user_key(update))
        await core(rt.conversations.save, user_key(update), State())
        await core(rt.service.record_staff_action, staff, "sandbox-forget", "", True,
                   "unlinked")
        await say(update, context, "This Telegram account is linked to no member now, like a "
                                   "new member's: /start to share a phone number.",
                  replies.no_keyboard())
    raise ApplicationHandlerStop


async def reset(update: Update, context: Context) -> None:
    """/reset: the sandbox database emptied and the demo members seeded again."""
    await handlers.claim_update(update, context)
    staff = await authorised(update, context, "reset")
    if staff is not None:
        await _reset(update, context, staff)
    raise ApplicationHandlerStop


async def _reset(update: Update, context: Context, staff: str) -> None:
    rt = runtime(context)
    key = user_key(update)
    playing = await core(rt.conversations.member_id, key)
    mobile = (await core(rt.service.member_by_id, playing)).mobile if playing else None
    members = await core(demo.reset, rt.service)
    await core(rt.service.record_staff_action, staff, "sandbox-reset", "", True,
               f"{len(members)} demo members seeded")
    again = next((m for m in members if mobile and m.mobile == mobile), None)
    text = ("The sandbox was reset: every redemption, code and chat is gone, and the demo "
            "members are back as they started.\n\n"
            + demo.listing({m.mobile or "": m.current_points for m in members}))
    if again is None:
        await say(update, context, text + "\n\nPick a member with /as.", replies.no_keyboard())
        return
    await core(rt.conversations.link, key, again.id)
    await say(update, context, f"{text}\n\nYou are {again.name} again.", replies.menu())


async def show_demo(update: Update, context: Context) -> None:
    """/demo: who the demo members are, what each shows, and the sandbox rules."""
    await handlers.claim_update(update, context)
    members = await core(demo.members, runtime(context).service)
    await say(update, context, demo.listing({m.mobile or "": m.current_points
                                             for m in members}))
    raise ApplicationHandlerStop


__all__ = ["DEFAULT_SANDBOX_DATABASE_URL", "SANDBOX_MARK", "SandboxSettings",
           "build_sandbox_application", "install", "load_sandbox_settings", "same_database"]
