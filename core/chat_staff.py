"""Member care in the chat: the staff commands of `core.chat`'s table.

/member IDENTIFIER, /goodwill IDENTIFIER POINTS REASON, /revert TRANSACTION_NUMBER
[POINTS] [IDENTIFIER], /reverse REDEMPTION_ID [POINTS]. Each runs inside the update's
unit of work, like a member's step, so a redelivered /goodwill issues nothing twice. Only
a sender the adapter names as staff (`Sender.staff`, from STAFF_TELEGRAM_IDS) may; anyone
else is refused, and the attempt is recorded in the staff audit (`allowed=False`). A
lookup, and a refused operation, are recorded here; goodwill, revert and reverse record
themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from core import ledger, limits, points_in, reads, reversal, rules, staff_audit
from core.chat_io import Command, Input, Outcome, reply
from core.status import InputError, PointsError
from core.text import points_or, reference

if TYPE_CHECKING:
    from core.chat import Chat, Chats

log = logging.getLogger(__name__)
USAGE = {
    "member": "/member IDENTIFIER",
    "goodwill": "/goodwill IDENTIFIER POINTS REASON",
    "revert": "/revert TRANSACTION_NUMBER [POINTS] [IDENTIFIER]",
    "reverse": "/reverse REDEMPTION_ID [POINTS]",
}
ARGUMENTS = {"member": (1, 1), "goodwill": (3, 999), "revert": (1, 3), "reverse": (1, 2)}
PROFILE_HISTORY = 5

StaffStep = Callable[["Chats", "Chat", tuple[str, ...], str], Outcome]


def staff_command(step: StaffStep) -> Callable[[Chats, Chat, Input], Outcome]:
    """A staff command: refused (and recorded) for anyone but staff, usage for the wrong
    number of arguments, a refusal shown and recorded; `step` does the rest."""
    action = step.__name__.removeprefix("staff_")

    def run(chats: Chats, chat: Chat, given: Input) -> Outcome:
        assert isinstance(given, Command)
        target, staff = " ".join(given.args), chat.sender.who
        if not chat.sender.staff:
            log.warning("refused /%s: the sender is not staff (recorded in the staff audit)",
                        action)
            staff_audit.record(chat.work, staff, action, target, False, "not staff")
            return Outcome((reply("staff_only"),))
        low, high = ARGUMENTS[action]
        if not low <= len(given.args) <= high:
            return Outcome((reply("usage", usage=USAGE[action]),))
        try:
            return chats.attempt(chat, lambda: step(chats, chat, given.args, staff))
        except (PointsError, InputError) as refusal:
            staff_audit.record(chat.work, staff, action, target, True, f"refused: {refusal}")
            return Outcome((reply("staff_refused", refusal=refusal, usage=USAGE[action]),))

    run.__name__ = action
    return run


def staff_member(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    """Profile, linked chat account, balance, fraud status, recent history."""
    member = ledger.find_member(chat.work.session, chats.service.identify(args[0]))
    assert member.id is not None
    linked = chats.linked_in(chat.work, member.id)
    staff_audit.record(chat.work, staff, "member", args[0], True, "viewed profile")
    return Outcome((reply("member_profile", balance=reads.balance(chat.work, member),
                          items=reads.history(chat.work, member, PROFILE_HISTORY),
                          linked=linked),))


def staff_goodwill(chats: Chats, chat: Chat, args: tuple[str, ...], staff: str) -> Outcome:
    points = rules.parse_points(args[1], limit=limits.MAX_OPERATION_POINTS)
    ident = chats.service.identify(args[0])
    why, who = points_in.goodwill_reason(" ".join(args[2:])), points_in.goodwill_staff(staff)
    member = ledger.find_member(chat.work.session, ident, lock=True)
    issued = points_in.goodwill(chat.work, member, points, reason=why, staff=who,
                                target=ident.value)
    return Outcome((reply("goodwill_issued", issued=issued),))


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


