"""Member care in the chat: the staff commands of `core.chat`'s table.

/member IDENTIFIER, /goodwill IDENTIFIER POINTS REASON [ref:REFERENCE], /revert
TRANSACTION_NUMBER [POINTS] [IDENTIFIER], /reverse REDEMPTION_ID [POINTS], /unlink
IDENTIFIER, /fraud IDENTIFIER STATUS REASON, /stafflog [member=IDENTIFIER] [staff=WHO]
[limit=N]. Each runs inside the update's unit of work, like a member's step, so a
redelivered /goodwill issues nothing twice. Only a sender the adapter names as staff
(`Sender.staff`, from STAFF_TELEGRAM_IDS) may; anyone else is refused, and the attempt is
recorded in the staff audit (`allowed=False`). A lookup, and a refused operation, are
recorded here (with the member it concerns when it can be found); goodwill, revert,
reverse, unlink and fraud record themselves.

Goodwill above GOODWILL_CONFIRM_ABOVE waits for a Confirm press: the chat moves to the
goodwill step with the grant pending in its state (member, points, reason, reference) and
the house's Confirm and Cancel buttons (``c:<token>``, ``x:<token>``); the press issues
it, once (the step is left as the grant is made, in the same transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from core import ledger, member_care, points_in, reads, reversal, rules, staff_audit
from core.chat_io import Command, Input, Outcome, Press, confirm_buttons, new_token, reply
from core.status import InputError, PointsError
from core.text import points_or, reference

if TYPE_CHECKING:
    from core.chat import Chat, Chats

log = logging.getLogger(__name__)
USAGE = {
    "member": "/member IDENTIFIER",
    "goodwill": "/goodwill IDENTIFIER POINTS REASON [ref:REFERENCE]",
    "revert": "/revert TRANSACTION_NUMBER [POINTS] [IDENTIFIER]",
    "reverse": "/reverse REDEMPTION_ID [POINTS]",
    "unlink": "/unlink IDENTIFIER",
    "fraud": "/fraud IDENTIFIER STATUS REASON",
    "stafflog": "/stafflog [member=IDENTIFIER] [staff=WHO] [limit=N]",
}
ARGUMENTS = {"member": (1, 1), "goodwill": (3, 999), "revert": (1, 3), "reverse": (1, 2),
             "unlink": (1, 1), "fraud": (3, 999), "stafflog": (0, 3)}
# Commands whose first argument names a member: a refusal's audit line names them too
# (/revert and /reverse name theirs through the transaction or the redemption).
NAMES_A_MEMBER = frozenset({"member", "goodwill", "unlink", "fraud"})
STAFF_LOG_LINES, STAFF_LOG_MOST = 20, 50  # /stafflog's lines by default, and at most
REFERENCE_MARK = "ref:"  # /goodwill's last word, when it starts so, is the grant's reference

StaffStep = Callable[["Chats", "Chat", tuple[str, ...], str], Outcome]


def staff_command(step: StaffStep) -> Callable[[Chats, Chat, Input], Outcome]:
    """A staff command: refused (and recorded) for anyone but staff, usage for the wrong
    number of arguments, a refusal shown and recorded; `step` does the rest."""
    action = step.__name__.removeprefix("staff_")

    def run(chats: Chats, chat: Chat, given: Input) -> Outcome:
        assert isinstance(given, Command)
        target, staff = " ".join(given.args), chat.sender.who

        def concerns() -> int | None:  # the member an audit line is about, when known
            return _concerns(chats, chat, action, given.args)
        if not chat.sender.staff:
            log.warning("refused /%s: the sender is not staff (recorded in the staff audit)",
                        action)
            staff_audit.record(chat.work, staff, action, target, False, "not staff",
                               member_id=concerns())
            return Outcome((reply("staff_only"),))
        low, high = ARGUMENTS[action]
        if not low <= len(given.args) <= high:
            return Outcome((reply("usage", usage=USAGE[action]),))
        try:
            return chats.attempt(chat, lambda: step(chats, chat, given.args, staff))
        except (PointsError, InputError) as refusal:
            staff_audit.record(chat.work, staff, action, target, True,
                               f"{staff_audit.REFUSED}{refusal}", member_id=concerns())
            return Outcome((reply("staff_refused", refusal=refusal, usage=USAGE[action],
                                  action=action),))

    run.__name__ = action
    return run


def _concerns(chats: Chats, chat: Chat, action: str, args: tuple[str, ...]) -> int | None:
    """The id of the member a staff command is about, for its audit line; None when it
    names none that can be found (a refusal's line is written all the same)."""
    if not args:
        return None
    if action in NAMES_A_MEMBER:
        return _member_id(chats, chat, args[0])
    try:  # each read with the step's own checks first: the text may be anything
        if action == "revert":
            if len(args) == 3:
                return _member_id(chats, chat, args[2])
            txn = reference(args[0], "the transaction number", code=811)
            return reversal.member_of_transaction(chat.work, txn).id
        if action == "reverse":
            found = reversal.find_redemption(chat.work.session,
                                             reversal.redemption_key(args[0]))
            return found.member_id if found is not None else None
    except (PointsError, InputError):
        return None
    return None


def _member_id(chats: Chats, chat: Chat, text: str) -> int | None:
    """The id of the member `text` names, for a refusal's audit line; None when none."""
    try:
        return ledger.find_member(chat.work.session, chats.service.identify(text)).id
    except (PointsError, InputError):
        return None


def staff_member(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """What staff see of a member (`member_care.report`): profile, balance, linked chat
    account, the latest validation code's state, fraud status, the latest ledger
    entries."""
    member = ledger.find_member(chat.work.session, chats.service.identify(args[0]))
    staff_audit.record(chat.work, staff, "member", args[0], True, "viewed profile",
                       member_id=member.id)
    return Outcome((reply("member_profile", report=member_care.report(chat.work, member)),))


def staff_goodwill(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """Goodwill points: at most GOODWILL_MAX_POINTS (901); above GOODWILL_CONFIRM_ABOVE
    the grant waits for a Confirm press; `ref:REFERENCE` as the last word issues it once."""
    settings = chat.work.settings
    points = points_in.goodwill_points(settings, args[1])
    ident = chats.service.identify(args[0])
    words = list(args[2:])
    ref = None
    if words and words[-1].casefold().startswith(REFERENCE_MARK):
        ref = points_in.goodwill_reference(words.pop()[len(REFERENCE_MARK):]) \
            or _no_reference()
    why, who = points_in.goodwill_reason(" ".join(words)), points_in.goodwill_staff(staff)
    member = ledger.find_member(chat.work.session, ident, lock=True)
    if points > settings.goodwill_confirm_above:
        from core.chat import Step

        chat.to(Step.GOODWILL)
        token = new_token()
        state = chat.state
        state.points, state.external_reference, state.token = points, ref, token
        state.member_id, state.reason = member.id, why
        return Outcome((reply("goodwill_confirm", member=reads.view(member), points=points,
                              reason=why, reference=ref, buttons=confirm_buttons(token)),))
    issued = points_in.goodwill(chat.work, member, points, reason=why, staff=who,
                                target=ident.value, reference=ref)
    return Outcome((reply("goodwill_issued", issued=issued, member=reads.view(member),
                          reference=ref),))


def _no_reference() -> str:
    raise InputError("ref: needs a reference after it (ref:TICKET-42)")


def goodwill_confirmed(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """Confirm pressed on a pending goodwill grant: issued now (once: the step is left in
    the same transaction), for staff only."""
    from core.chat import Step, stale

    state = chat.state
    if not isinstance(given, Press) or given.data.partition(":")[2] != state.token:
        return stale(chat)
    staff = chat.sender.who
    points, ref, why, member_id = state.points or 0, state.external_reference, \
        state.reason or "", state.member_id
    chat.to(Step.MENU)
    if not chat.sender.staff:
        log.warning("refused a goodwill Confirm: the sender is not staff (recorded in the "
                    "staff audit)")
        staff_audit.record(chat.work, staff, "goodwill", f"member {member_id}", False,
                           "not staff", member_id=member_id)
        return Outcome((reply("staff_only"),), settled=True)

    def grant() -> Outcome:
        if member_id is None:
            raise PointsError(816)
        member = ledger.lock(chat.work.session, member_id)
        issued = points_in.goodwill(chat.work, member, points, reason=why,
                                    staff=points_in.goodwill_staff(staff), reference=ref)
        return Outcome((reply("goodwill_issued", issued=issued, member=reads.view(member),
                              reference=ref),), settled=True)
    try:
        return chats.attempt(chat, grant)
    except (PointsError, InputError) as refusal:
        staff_audit.record(chat.work, staff, "goodwill", f"member {member_id}", True,
                           f"{staff_audit.REFUSED}{refusal}", member_id=member_id)
        return Outcome((reply("staff_refused", refusal=refusal, usage=USAGE["goodwill"],
                              action="goodwill"),), settled=True)


def goodwill_cancelled(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """Cancel (the button, /cancel) on a pending goodwill grant: nothing is issued."""
    from core.chat import Step, stale

    if isinstance(given, Press) and given.data.partition(":")[2] != chat.state.token:
        return stale(chat)
    points = chat.state.points or 0
    chat.to(Step.MENU)
    return Outcome((reply("goodwill_cancelled", points=points),), settled=True)


def goodwill_hint(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """A text while a goodwill grant waits: press Confirm or Cancel."""
    return Outcome((reply("goodwill_confirm_hint", points=chat.state.points or 0,
                          buttons=confirm_buttons(chat.state.token or "")),))


def staff_revert(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """All the points redeemed on a transaction number: POINTS, when given, is checked
    against what is left (810); IDENTIFIER, when not given, is whoever redeemed on it."""
    txn = reference(args[0], "the transaction number", code=811)
    points = rules.parse_points(args[1]) if len(args) >= 2 else None
    member = (ledger.find_member(chat.work.session, chats.service.identify(args[2]),
                                 lock=True) if len(args) == 3 else None)
    result = reversal.revert(chat.work, member, txn, points, staff=staff)
    return Outcome((reply("reverted", result=result),))


def staff_reverse(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """A redemption by its id, all that is left or some points."""
    result = reversal.reverse(chat.work, reversal.redemption_key(args[0]),
                              points_or(args[1], 901) if len(args) == 2 else None,
                              staff=staff)
    return Outcome((reply("reversed", result=result),))




def staff_unlink(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """Unlink the member's Telegram account (a lost phone): they must verify again."""
    ident = chats.service.identify(args[0])
    member = ledger.find_member(chat.work.session, ident, lock=True)
    return Outcome((reply("unlinked", unlinked=member_care.unlink(chat.work, member, staff,
                                                                  ident.value)),))


def staff_fraud(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """Set the member's fraud status, recorded with who and why."""
    ident = chats.service.identify(args[0])
    status = member_care.fraud_status(args[1])
    why = member_care.staff_reason(" ".join(args[2:]), "a fraud status")
    member = ledger.find_member(chat.work.session, ident, lock=True)
    change = member_care.set_fraud(chat.work, member, status, why, staff, ident.value)
    return Outcome((reply("fraud_set", member=reads.view(member), change=change),))


def staff_stafflog(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """The staff audit, newest first: `member=IDENTIFIER`, `staff=WHO` (as the audit
    names them: telegram:900, cli) and `limit=N` (1 to 50) filter and bound it."""
    options: dict[str, str] = {}
    for arg in args:
        name, equals, value = arg.partition("=")
        if not equals or name.casefold() not in ("member", "staff", "limit") or not value \
                or name.casefold() in options:
            raise InputError(f"{arg[:40]!r} is not member=IDENTIFIER, staff=WHO or limit=N")
        options[name.casefold()] = value
    limit = STAFF_LOG_LINES
    if "limit" in options:
        text = options["limit"]
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= STAFF_LOG_MOST:
            raise InputError(f"limit must be a number from 1 to {STAFF_LOG_MOST}")
        limit = int(text)
    member_id, ident = None, None
    if "member" in options:
        ident = chats.service.identify(options["member"])
        member_id = ledger.find_member(chat.work.session, ident).id
    found = staff_audit.lines(chat.work, limit, staff=options.get("staff"),
                              member_id=member_id)
    shown = " ".join(f"{k}={v}" for k, v in options.items()) or "all"
    staff_audit.record(chat.work, staff, "stafflog", shown, True, f"viewed {len(found)} lines",
                       member_id=member_id)
    return Outcome((reply("staff_log", lines=found, filters=options),))
