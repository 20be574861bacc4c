"""What a member does in the chat, one handler each, and what the bot answers.

The bot decides nothing: each handler reads the chat's step from the database, calls the
engine, and shows the answer (a refusal as its status code and message). No
ConversationHandler: the step and the pending redemption live in the database
(`core.conversation`), so any worker process can take a chat's next update and a restart
resumes where the member was.
"""

from __future__ import annotations

import logging
import re

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot import replies
from bot.logsafe import chat_tag
from bot.runtime import (
    AMOUNT,
    CODE,
    CONFIRM,
    DONE,
    IDLE,
    Context,
    Pending,
    answer_button,
    core,
    deliver,
    drop_buttons,
    identifier,
    new_pending,
    pending,
    runtime,
    say,
    user_key,
)
from bot.senders import chat_delivery
from core.conversation import State
from core.service import MemberView
from core.status import PointsError

log = logging.getLogger(__name__)


async def claim_update(update: Update, context: Context) -> None:
    """Every update first: handled once (a second delivery is dropped), private chats only."""
    if update.effective_user is None or update.effective_chat is None:
        raise ApplicationHandlerStop
    key = f"{context.bot.id}:{update.update_id}"
    if not await core(runtime(context).conversations.first_delivery, key):
        log.info("update %s was delivered again: ignored", key)
        raise ApplicationHandlerStop
    if update.effective_chat.type != "private":
        message = update.effective_message
        if message is not None and (message.text or "").startswith("/"):
            await say(update, context, replies.PRIVATE_ONLY)
        raise ApplicationHandlerStop


async def linked_member(update: Update, context: Context) -> MemberView | None:
    """The member this Telegram user was verified as; if none, ask them to share their
    number and answer None."""
    member = await core(runtime(context).conversations.member, user_key(update))
    if member is not None:
        return member
    await ask_to_verify(update, context, replies.NOT_LINKED)
    return None


async def ask_to_verify(update: Update, context: Context, text: str) -> None:
    """Ask an unlinked chat for its phone number, telling it plainly when it was unlinked
    because the member's number was verified from another Telegram account."""
    if await core(runtime(context).conversations.was_replaced, user_key(update)):
        text = replies.VERIFIED_ELSEWHERE
    await say(update, context, text, replies.contact_request())


async def set_step(context: Context, update: Update, state: State) -> None:
    await core(runtime(context).conversations.save, user_key(update), state)


async def chat_state(context: Context, update: Update) -> State:
    return await core(runtime(context).conversations.state, user_key(update))


# ---------------------------------------------------------------- getting in


async def start(update: Update, context: Context) -> None:
    """The member opens the bot: welcome back, or ask for their phone number."""
    rt = runtime(context)
    member_id = await core(rt.conversations.member_id, user_key(update))
    if member_id is None:
        await ask_to_verify(update, context, replies.ASK_CONTACT)
        return
    member = await core(rt.service.member_by_id, member_id)
    await say(update, context, replies.welcome(member), replies.menu())


async def share_contact(update: Update, context: Context) -> None:
    """The member shares a phone number: their own is looked up and linked; anyone
    else's is refused."""
    message = update.effective_message
    assert message is not None and message.contact is not None
    assert update.effective_user is not None
    if message.contact.user_id != update.effective_user.id:
        log.info("telegram user %s shared a contact that is not their own",
                 chat_tag(update.effective_user.id))
        await say(update, context, replies.NOT_YOUR_CONTACT, replies.contact_request())
        return
    rt = runtime(context)
    try:
        member = await core(rt.conversations.verify_contact, user_key(update),
                            message.contact.phone_number)
    except PointsError as error:
        await say(update, context, f"{replies.refusal(error)}\n{replies.CONTACT_REFUSED}",
                  replies.no_keyboard())
        return
    await set_step(context, update, State())
    await say(update, context, replies.welcome(member), replies.menu())


# ---------------------------------------------------------------- looking


async def balance(update: Update, context: Context) -> None:
    """The member asks for their balance: points, lifetime figures, what can be redeemed."""
    member = await linked_member(update, context)
    if member is None:
        return
    result = runtime(context).service.balance_for(member)
    await say(update, context, replies.balance(result), replies.menu())


async def history(update: Update, context: Context) -> None:
    """The member asks for their history: their last redemptions and reversals."""
    member = await linked_member(update, context)
    if member is None:
        return
    items = await core(runtime(context).service.history_of, member.id, 10)
    await say(update, context, replies.history(items, runtime(context).service.settings.zone),
              replies.menu())


async def help_(update: Update, context: Context) -> None:
    """The member asks for help: the commands (and the staff commands, for staff)."""
    assert update.effective_user is not None
    text = replies.HELP
    if runtime(context).is_staff(update.effective_user.id):
        text += "\n\n" + replies.STAFF_HELP
    await say(update, context, text, replies.menu())


async def unknown(update: Update, context: Context) -> None:
    """Anything the bot does not understand: a short help, never silence."""
    await say(update, context, replies.NOT_UNDERSTOOD)


# ---------------------------------------------------------------- redeeming


async def ask_points(update: Update, context: Context) -> None:
    """The member wants to redeem (/redeem, /redeem 500, the Redeem button): ask how
    many points, offering amounts the engine suggests."""
    if context.args:
        await choose_points(update, context, " ".join(context.args))
        return
    member = await linked_member(update, context)
    if member is None:
        return
    result = runtime(context).service.balance_for(member)
    await set_step(context, update, State(AMOUNT))
    await say(update, context, replies.ask_points(result), replies.amounts(result.suggestions))


async def choose_points(update: Update, context: Context, points: str) -> None:
    """The member names an amount: the engine checks it (isredeemable); a refusal shows
    its code and asks again, success shows the summary with Confirm and Cancel."""
    member = await linked_member(update, context)
    if member is None:
        return
    service = runtime(context).service
    try:
        checked = await core(service.is_redeemable, identifier(member), points)
    except PointsError as error:
        result = service.balance_for(member)
        await set_step(context, update, State(AMOUNT))
        await say(update, context, replies.try_another(error),
                  replies.amounts(result.suggestions))
        return
    redemption = new_pending(service, checked.points)
    await set_step(context, update, redemption.state())
    await say(update, context, replies.summary(checked),
              replies.confirm_buttons(redemption.token))


async def confirm(update: Update, context: Context, token: str) -> None:
    """The member presses Confirm: the engine issues a validation code and sends it; the
    bot says where it went. A second press does not issue another."""
    member = await linked_member(update, context)
    if member is None:
        return
    redemption = pending(await chat_state(context, update))
    if redemption is None or redemption.token != token:
        await say(update, context, replies.STALE, replies.menu())
        return
    if redemption.step == CODE:
        await say(update, context, replies.ENTER_CODE, replies.code_buttons(token))
        return
    if redemption.step == DONE:
        await redeem(update, context, member, redemption, code=None)
        return
    rt = runtime(context)
    if not rt.service.settings.validation_code_required:
        await redeem(update, context, member, redemption, code=None)
        return
    await send_code(update, context, member, redemption)


async def send_code(update: Update, context: Context, member: MemberView,
                    redemption: Pending) -> None:
    """Ask the engine for the code of `redemption` (it resends the same one while it is
    valid) and move the chat to the code step."""
    assert update.effective_chat is not None
    service = runtime(context).service
    try:
        code = await core(service.prepare_validation_code, identifier(member),
                          redemption.points, reply_to=str(update.effective_chat.id))
        with chat_delivery(context.bot):  # on the delivery threads, not the engine's
            issued = await deliver(service.deliver_validation_code, code)
    except PointsError as error:
        buttons = (replies.code_buttons(redemption.token) if redemption.step == CODE
                   else replies.confirm_buttons(redemption.token))
        await say(update, context, replies.refusal(error), buttons)
        return
    await set_step(context, update, redemption.state(CODE))
    await say(update, context, replies.code_sent(issued, service.settings.zone),
              replies.code_buttons(redemption.token))


async def resend(update: Update, context: Context, token: str) -> None:
    """The member asks for the code again (or a new one after it expired or was voided)."""
    member = await linked_member(update, context)
    if member is None:
        return
    redemption = pending(await chat_state(context, update))
    if redemption is None or redemption.token != token or redemption.step == DONE:
        await say(update, context, replies.STALE, replies.menu())
        return
    await send_code(update, context, member, redemption)


async def enter_code(update: Update, context: Context, redemption: Pending, code: str
                     ) -> None:
    """The member types the validation code: the engine redeems, or says why not (a wrong
    code: 808 with attempts left; expired or voided: offer a new one)."""
    member = await linked_member(update, context)
    if member is None:
        return
    await redeem(update, context, member, redemption, code=code)


async def redeem(update: Update, context: Context, member: MemberView, redemption: Pending,
                 code: str | None) -> None:
    """Redeem through the engine with the chat's external reference number: a repeat
    answers the first result, debiting nothing more."""
    assert update.effective_user is not None
    service = runtime(context).service
    try:
        result = await core(
            service.redeem, identifier(member), redemption.points, code,
            transaction_number=redemption.transaction_number,
            external_reference=redemption.external_reference,
            notes=f"Telegram user {update.effective_user.id}")
    except PointsError as error:
        if error.code == 808:
            wrong = error.facts.get("reason") == "wrong"
            await say(update, context, replies.code_refused(error),
                      replies.code_buttons(redemption.token, new_code=not wrong))
        else:
            await say(update, context, replies.refusal(error),
                      replies.code_buttons(redemption.token) if redemption.step == CODE
                      else replies.menu())
        return
    await set_step(context, update, redemption.state(DONE, result.redemption_id))
    await say(update, context, replies.redeemed(result, service.settings.zone),
              replies.menu())


async def cancel(update: Update, context: Context, token: str | None = None) -> None:
    """The member cancels (/cancel, or a Cancel button): any step is left, nothing is
    redeemed."""
    state = await chat_state(context, update)
    redemption = pending(state)
    if token is not None and (redemption is None or redemption.token != token):
        await say(update, context, replies.STALE, replies.menu())
        return
    if state.step in (IDLE, DONE):
        await say(update, context, replies.NOTHING_TO_CANCEL, replies.menu())
        return
    await set_step(context, update, State())
    await say(update, context, replies.CANCELLED, replies.menu())


# ---------------------------------------------------------------- routing


async def cancel_command(update: Update, context: Context) -> None:
    """/cancel or the Cancel word."""
    await cancel(update, context)


async def press_button(update: Update, context: Context) -> None:
    """The member presses an inline button: its data is checked, then routed."""
    await answer_button(update)
    query = update.callback_query
    pressed = replies.parse_button(query.data if query else None)
    if pressed is None:
        log.info("callback data not understood: %r", (query.data if query else None))
        await unknown(update, context)
        return
    if pressed.kind in ("c", "x", "p"):
        await drop_buttons(update)
    if pressed.kind == "p":
        await choose_points(update, context, pressed.value)
    elif pressed.kind == "c":
        await confirm(update, context, pressed.value)
    elif pressed.kind == "r":
        await resend(update, context, pressed.value)
    else:
        await cancel(update, context, pressed.value)


async def type_text(update: Update, context: Context) -> None:
    """The member types text: an amount, a validation code, or something not understood,
    depending on the chat's step."""
    message = update.effective_message
    assert message is not None
    text = (message.text or "").strip()
    state = await chat_state(context, update)
    if state.step == AMOUNT:
        await choose_points(update, context, text)
        return
    redemption = pending(state)
    if redemption is not None and redemption.step in (CODE, DONE) and re.search(r"\d", text):
        await enter_code(update, context, redemption, text)
        return
    if redemption is not None and redemption.step == CONFIRM:
        await say(update, context, replies.CONFIRM_OR_CANCEL,
                  replies.confirm_buttons(redemption.token))
        return
    if redemption is not None and redemption.step == CODE:
        await say(update, context, replies.ENTER_CODE, replies.code_buttons(redemption.token))
        return
    await unknown(update, context)
