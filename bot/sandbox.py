"""Sandbox mode: the production bot, on a database of its own seeded with the demo members,
validation codes sent in the chat, and staff commands to play any member and start again.

Used by `loyalty-bot run --sandbox` (a real Telegram test bot) and by `loyalty-bot sandbox`
(the same bot answered in a terminal, `bot.terminal`). Production is untouched: nothing
here runs unless one of those two asked for it. `build_sandbox_application` calls the one
`bot.app.build_application` and then `install`s on top of it:

- `/as MOBILE` (or `/as 3`, a demo member's number; any identifier works): staff only. Links
  the staff member's own Telegram account to that member without a contact
  (`core.chat.Chats.link`), leaves any pending step (voiding a pending code), and welcomes them as
  that member.
- `/forget`: staff only. Unlinks their account, so that /start asks for the phone number
  as it asks a new member.
- `/reset`: staff only. Empties the sandbox database and seeds the demo members again
  (`bot.demo.reset`); whoever the staff member was playing, they play again.
- `/demo`: the demo members, what each one shows, and the sandbox rules.
- every message the bot sends is marked with `SANDBOX_MARK` (`Runtime.mark`; the codes the
  chat channel sends carry their own sandbox mark).

These commands are tried before every other handler (group -2), in private chats only, and
stop there: they are the sandbox's tools, not part of the chat use case (nothing in them
needs exactly once). Staff actions are recorded like the other staff commands'
(`telegram:<id>`).

The sandbox database must not be the production one, and two layers see to it:
`load_sandbox_settings` reads SANDBOX_DATABASE_URL (default
`sqlite:///sandbox-data/telegram.db`) and refuses to start, with 899, when it names the same
database as DATABASE_URL however it is spelt (`same_database`); and the database itself
must be a sandbox's: seeding and `/reset` refuse, with 899, a database that holds members
and has no sandbox mark (`core.sandbox`). The sandbox's redemption rules are
`bot.demo.SANDBOX_RULES`, whatever the REDEMPTION_* settings say.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop, CommandHandler, filters
from telegram.request import BaseRequest

from bot import demo, replies
from bot.app import build_application
from bot.runtime import Context, Runtime, core, runtime, say, user_key
from bot.settings import BotSettings, load_bot_settings
from core.sandbox import safe_url, same_database
from core.service import PointsService
from core.status import PointsError

log = logging.getLogger(__name__)
SANDBOX_MARK = "🧪 SANDBOX"
DEFAULT_SANDBOX_DATABASE_URL = "sqlite:///sandbox-data/telegram.db"
SANDBOX_GROUP = -2  # before the chat use case (group 0)

AS_USAGE = "Usage: /as MOBILE (or the number of a demo member, 1 to {count})"

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


class SandboxSettings(BotSettings):
    """The bot's settings plus where the sandbox keeps its data."""

    # The sandbox's own database; never the production DATABASE_URL.
    sandbox_database_url: str = DEFAULT_SANDBOX_DATABASE_URL


# ---------------------------------------------------------------- settings


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
                               f"({safe_url(raw.database_url)}): the sandbox seeds demo members "
                               "and /reset empties its database, so it needs a database of "
                               "its own. Set SANDBOX_DATABASE_URL to another database")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        private_directory(Path(url.removeprefix("sqlite:///")).parent)
    passed = {k: v for k, v in overrides.items() if k != "sandbox_database_url"}
    return load_bot_settings(**{**passed, **sandbox_overrides(url)})


def private_directory(path: Path) -> None:
    """Create `path` (and its parents) if missing; the directory created for the sandbox's
    data is its owner's only (0700, whatever the umask). One that exists is left as it
    is."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
        path.chmod(0o700)


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
             "staff", safe_url(settings.database_url))
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


async def private(update: Update, context: Context) -> bool:
    """Whether the update comes from a user in a private chat (a group is told to write
    privately)."""
    if update.effective_user is None or update.effective_chat is None:
        return False
    if update.effective_chat.type != "private":
        await say(update, context, replies.PRIVATE_ONLY)
        return False
    return True


async def authorised(update: Update, context: Context, action: str) -> str | None:
    """The staff name of the sender, or None after refusing (logged and recorded in the
    staff audit)."""
    if not await private(update, context):
        return None
    assert update.effective_user is not None
    user_id, rt = update.effective_user.id, runtime(context)
    if rt.is_staff(user_id):
        return f"telegram:{user_id}"
    log.warning("refused sandbox /%s: not in STAFF_TELEGRAM_IDS", action)
    await core(rt.service.record_staff_action, f"telegram:{user_id}", action,
               " ".join(context.args or []), False, "not in STAFF_TELEGRAM_IDS")
    await say(update, context, replies.STAFF_ONLY)
    return None


async def act_as(update: Update, context: Context) -> None:
    """/as MOBILE: staff play that member from now on (their own account is linked)."""
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
        await core(rt.chats.link, user_key(update), member.id)
    except PointsError as error:
        await say(update, context, replies.seed_refusal(error))
        return
    await core(rt.service.record_staff_action, staff, "sandbox-as",
               member.mobile or identifier, True, f"playing member {member.id}")
    shown = demo.by_mobile(member.mobile)
    language = shown.language if shown else rt.settings.default_language
    await core(rt.chats.speak, user_key(update), language)
    story = f" – {shown.story}" if shown else ""
    await say(update, context, f"You are now {member.name or 'member ' + str(member.id)} "
                               f"({member.mobile or identifier}){story}.\n\n"
                               + replies.welcome(member, t=rt.texts(language)),
              replies.menu(rt.texts(language)))


async def forget(update: Update, context: Context) -> None:
    """/forget: staff are a Telegram user who has not shared a number yet (to try /start
    and sharing the contact as a new member would)."""
    staff = await authorised(update, context, "forget")
    if staff is not None:
        rt = runtime(context)
        await core(rt.chats.unlink, user_key(update))
        await core(rt.service.record_staff_action, staff, "sandbox-forget", "", True,
                   "unlinked")
        await say(update, context, "This Telegram account is linked to no member now, like a "
                                   "new member's: /start to share a phone number.",
                  replies.no_keyboard())
    raise ApplicationHandlerStop


async def reset(update: Update, context: Context) -> None:
    """/reset: the sandbox database emptied and the demo members seeded again."""
    staff = await authorised(update, context, "reset")
    if staff is not None:
        await _reset(update, context, staff)
    raise ApplicationHandlerStop


async def _reset(update: Update, context: Context, staff: str) -> None:
    rt = runtime(context)
    key = user_key(update)
    playing = await core(rt.chats.member_id, key)
    mobile = (await core(rt.service.member, playing)).mobile if playing else None
    try:
        members = await core(demo.reset, rt.service)
    except PointsError as error:  # 899: not a sandbox database; nothing was deleted
        log.error("/reset refused: %s", error)
        await say(update, context, replies.seed_refusal(error))
        return
    await core(rt.service.record_staff_action, staff, "sandbox-reset", "", True,
               f"{len(members)} demo members seeded")
    again = next((m for m in members if mobile and m.mobile == mobile), None)
    text = ("The sandbox was reset: every redemption, code and chat is gone, and the demo "
            "members are back as they started.\n\n"
            + demo.listing({m.mobile or "": m.current_points for m in members}))
    if again is None:
        await say(update, context, text + "\n\nPick a member with /as.", replies.no_keyboard())
        return
    await core(rt.chats.link, key, again.id)
    shown = demo.by_mobile(again.mobile)
    language = shown.language if shown else rt.settings.default_language
    await core(rt.chats.speak, key, language)
    await say(update, context, f"{text}\n\nYou are {again.name} again.",
              replies.menu(rt.texts(language)))


async def show_demo(update: Update, context: Context) -> None:
    """/demo: who the demo members are, what each shows, and the sandbox rules."""
    if not await private(update, context):
        raise ApplicationHandlerStop
    members = await core(demo.members, runtime(context).service)
    await say(update, context, demo.listing({m.mobile or "": m.current_points
                                             for m in members}))
    raise ApplicationHandlerStop


__all__ = ["DEFAULT_SANDBOX_DATABASE_URL", "SANDBOX_MARK", "SandboxSettings",
           "build_sandbox_application", "install", "load_sandbox_settings", "private_directory",
           "same_database"]
