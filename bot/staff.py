"""Member care in the chat: staff look a member up, give goodwill points, revert and
reverse redemptions.

Only Telegram users in STAFF_TELEGRAM_IDS may; anyone else is refused, and the attempt is
logged and recorded in the engine's staff audit (`allowed=False`). Staff are recorded as
``telegram:<user id>``: goodwill, revert and reverse record it themselves; a lookup and a
refused operation are recorded here through `PointsService.record_staff_action`.
"""

from __future__ import annotations

import logging

from telegram import Update

from bot import replies
from bot.logsafe import chat_tag
from bot.runtime import Context, core, runtime, say
from core.status import InputError, PointsError

log = logging.getLogger(__name__)

USAGE = {
    "member": "/member IDENTIFIER",
    "goodwill": "/goodwill IDENTIFIER POINTS REASON",
    "revert": "/revert TRANSACTION_NUMBER [POINTS] [IDENTIFIER]",
    "reverse": "/reverse REDEMPTION_ID [POINTS]",
}


def staff_name(user_id: int) -> str:
    return f"telegram:{user_id}"


async def authorised(update: Update, context: Context, action: str) -> str | None:
    """The staff name of the sender, or None after refusing (logged and recorded)."""
    assert update.effective_user is not None
    user_id = update.effective_user.id
    rt = runtime(context)
    if rt.is_staff(user_id):
        return staff_name(user_id)
    log.warning("refused /%s from telegram user %s: not in STAFF_TELEGRAM_IDS", action,
                chat_tag(user_id))  # the id itself is in the staff action record
    await core(rt.service.record_staff_action, staff_name(user_id), action,
               " ".join(context.args or []), False, "not in STAFF_TELEGRAM_IDS")
    await say(update, context, replies.STAFF_ONLY)
    return None


async def refused(update: Update, context: Context, staff: str, action: str,
                  error: PointsError | InputError) -> None:
    """Show a refused staff operation and record the attempt."""
    target = " ".join(context.args or [])
    if isinstance(error, PointsError):
        text, detail = replies.refusal(error), f"refused: {error}"
    else:
        text, detail = f"{error}\nUsage: {USAGE[action]}", f"refused: {error}"
    await core(runtime(context).service.record_staff_action, staff, action, target, True,
               detail)
    await say(update, context, text)


async def usage(update: Update, context: Context, action: str) -> None:
    await say(update, context, f"Usage: {USAGE[action]}")


async def member(update: Update, context: Context) -> None:
    """Staff look a member up: profile, linked Telegram account, balance, fraud status,
    recent history."""
    staff = await authorised(update, context, "member")
    if staff is None:
        return
    args = context.args or []
    if len(args) != 1:
        await usage(update, context, "member")
        return
    service = runtime(context).service
    try:
        found = await core(service.balance, args[0])
        items = await core(service.history_of, found.member.id, 5)
        linked = await core(runtime(context).conversations.linked_user, found.member.id)
    except PointsError as error:
        await refused(update, context, staff, "member", error)
        return
    await core(service.record_staff_action, staff, "member", args[0], True, "viewed profile")
    await say(update, context, replies.member_profile(found, items, service.settings.zone,
                                                      linked))


async def goodwill(update: Update, context: Context) -> None:
    """Staff give goodwill points, with a reason."""
    staff = await authorised(update, context, "goodwill")
    if staff is None:
        return
    args = context.args or []
    if len(args) < 3:
        await usage(update, context, "goodwill")
        return
    service = runtime(context).service
    try:
        issued = await core(service.goodwill, args[0], args[1], reason=" ".join(args[2:]),
                            staff=staff)
    except (PointsError, InputError) as error:
        await refused(update, context, staff, "goodwill", error)
        return
    await say(update, context, f"Issued {issued.points:,} goodwill points ({issued.reference}); "
                               f"current points now {issued.balance:,}.")


async def revert(update: Update, context: Context) -> None:
    """Staff give back all the points redeemed on a transaction number: POINTS, when
    given, is checked against what is left (810); MEMBER, when not given, is whoever
    redeemed on it. The same order as `loyalty-bot revert`."""
    staff = await authorised(update, context, "revert")
    if staff is None:
        return
    args = context.args or []
    if len(args) not in (1, 2, 3):
        await usage(update, context, "revert")
        return
    service = runtime(context).service
    points = args[1] if len(args) >= 2 else None
    who = args[2] if len(args) == 3 else None
    try:
        result = await core(service.revert, who, args[0], points, staff=staff)
    except (PointsError, InputError) as error:
        await refused(update, context, staff, "revert", error)
        return
    await say(update, context, f"Reverted {result.points_reversed:,} points "
                               f"({', '.join(result.reversal_ids)}); current points now "
                               f"{result.balance:,}.")


async def reverse(update: Update, context: Context) -> None:
    """Staff reverse a redemption by its id, all that is left or some points."""
    staff = await authorised(update, context, "reverse")
    if staff is None:
        return
    args = context.args or []
    if len(args) not in (1, 2):
        await usage(update, context, "reverse")
        return
    service = runtime(context).service
    try:
        result = await core(service.reverse, args[0], args[1] if len(args) == 2 else None,
                            staff=staff)
    except (PointsError, InputError) as error:
        await refused(update, context, staff, "reverse", error)
        return
    await say(update, context, f"Reversed {result.points_reversed:,} points "
                               f"({', '.join(result.reversal_ids)}); current points now "
                               f"{result.balance:,}.")
