"""What the bot says and the buttons it shows: the wording of every reply the engine's chat
use case asks for (`core.chat_io.Reply`: a message key and its values), its buttons and
keyboards, rendered for Telegram. `render(reply, zone)` is the one way in.

The menu keyboard's words come back as text when pressed; `menu_command` reads them back
as the commands they stand for (the inverse of this module's own keyboard, not a guess at
what a member meant).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.staff_wording import STAFF_HELP, STAFF_WORDING
from core.chat_io import Button, Keyboard, Reply
from core.service import Balance, CodeIssued, HistoryItem, MemberView, Redeemable, RedemptionResult
from core.status import PointsError, Reason
from core.times import show

# The menu's buttons send these words as text; the bot reads them like the commands.
MENU_BALANCE, MENU_REDEEM, MENU_HISTORY, MENU_HELP = "Balance", "Redeem", "History", "Help"
SHARE_PHONE = "Share my phone number"

HELP = ("I show your loyalty points and redeem them.\n"
        "/balance – your points and what you can redeem\n"
        "/redeem – redeem points (or /redeem 500)\n"
        "/history – your last redemptions and reversals\n"
        "/cancel – stop what you are doing\n"
        "/help – this message")
NOT_UNDERSTOOD = "Sorry, I did not understand that."
SOMETHING_WRONG = ("Sorry, something went wrong on my side. Check /balance and /history, "
                   "or try again.\n\n" + HELP)
ASK_CONTACT = ("To see your points, share your phone number with the button below. It must "
               "be the number registered with the loyalty program.")
NOT_YOUR_CONTACT = ("That is not your own contact. Share your own phone number with the "
                    "button below.")
CONTACT_REFUSED = "If this is not right, please contact member care."
NOT_LINKED = "First share your phone number, so I know whose points to show.\n\n" + ASK_CONTACT
VERIFIED_ELSEWHERE = ("This Telegram account is no longer linked to your membership: your phone "
                      "number was verified from another Telegram account. To use this "
                      "account, share your phone number again with the button below.")
PRIVATE_ONLY = "I only talk about points in a private chat: message me directly."
STALE = "That button belongs to a request that is no longer pending.\n\n" + HELP
NOTHING_TO_CANCEL = "There is nothing to cancel."
CANCELLED = "Cancelled: nothing was redeemed."
CONFIRM_OR_CANCEL = "Press Confirm to receive a validation code, or Cancel."
STAFF_ONLY = "This command is for member care staff only."


# ---------------------------------------------------------------- keyboards

# The menu keyboard's words, and the commands they stand for when pressed.
MENU_COMMANDS = {MENU_BALANCE: "balance", MENU_REDEEM: "redeem", MENU_HISTORY: "history",
                 MENU_HELP: "help", "Cancel": "cancel"}
_MENU_WORDS = {word.casefold(): command for word, command in MENU_COMMANDS.items()}
BUTTON_LABELS = {"confirm": "Confirm", "cancel": "Cancel", "resend": "Resend code",
                 "new_code": "Send a new code", "retry": "Try again"}


def menu_command(text: str) -> str | None:
    """The command a menu keyboard word stands for ("Balance" -> "balance"), or None."""
    return _MENU_WORDS.get(text.strip().casefold())


def menu() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[MENU_BALANCE, MENU_REDEEM], [MENU_HISTORY, MENU_HELP]],
                               resize_keyboard=True, is_persistent=True)


def contact_request() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(SHARE_PHONE, request_contact=True)]],
                               resize_keyboard=True, one_time_keyboard=True)


def no_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


KEYBOARDS: dict[Keyboard, Callable[[], Any]] = {
    Keyboard.MENU: menu, Keyboard.CONTACT: contact_request, Keyboard.REMOVE: no_keyboard}


def label(button: Button) -> str:
    if button.key == "amount":
        return f"{button.values['points']:,}"
    return BUTTON_LABELS[button.key]


def markup(reply: Reply) -> Any:
    """The reply's buttons under the message, else the keyboard it asks for."""
    if reply.buttons:
        return InlineKeyboardMarkup([[InlineKeyboardButton(label(b), callback_data=b.data)
                                      for b in row] for row in reply.buttons])
    return KEYBOARDS[reply.keyboard]() if reply.keyboard is not None else None


# ---------------------------------------------------------------- wording


def render(reply: Reply, zone: tzinfo) -> tuple[str, Any]:
    """The text and the markup of one reply of the engine's chat use case."""
    return WORDING[reply.key](reply.values, zone), markup(reply)


def _help(staff: bool) -> str:
    return f"{HELP}\n\n{STAFF_HELP}" if staff else HELP


def refusal(error: PointsError) -> str:
    """A refusal as the member sees it: the status code, its message, and the detail."""
    text = f"{error.status.code} {error.status.message}"
    return f"{text}\n({error.detail})" if error.detail else text


def welcome(member: MemberView, staff: bool = False) -> str:
    name = f", {member.name}" if member.name else ""
    return f"Welcome{name}! You have {member.current_points:,} points.\n\n{_help(staff)}"


def balance(b: Balance, blocked: PointsError | None = None) -> str:
    rules = b.rules
    multiple = f", in multiples of {rules.multiple_of:,}" if rules.multiple_of > 1 else ""
    figures = (f"Current points: {b.current_points:,} (worth {b.value})\n"
               f"Lifetime points: {b.lifetime_points:,}\n"
               f"Lifetime purchases: {b.lifetime_purchases:,.2f}\n")
    if blocked is not None:
        return f"{figures}{cannot_redeem(blocked)}"
    return (f"{figures}You can redeem {rules.min_points:,} to {rules.max_points:,} points at "
            f"a time{multiple}.")


def cannot_redeem(error: PointsError) -> str:
    """A member who can redeem no amount now: why, with the status code."""
    return f"You cannot redeem points now.\n{refusal(error)}"


def ask_points(b: Balance) -> str:
    return (f"You have {b.current_points:,} points (worth {b.value}). How many do you want "
            "to redeem? Pick an amount or type a number.")


def try_another(error: PointsError, nearest: Sequence[int] = ()) -> str:
    near = ""
    if error.status.code == 807 and nearest:
        near = "\nThe nearest amounts you can redeem: " + " or ".join(
            f"{p:,}" for p in nearest) + "."
    return f"{refusal(error)}{near}\n\nType another amount, or /cancel."


def summary(r: Redeemable) -> str:
    return f"Redeem {r.points:,} points worth {r.points_redeem_value}?"


def code_sent(issued: CodeIssued, zone: tzinfo) -> str:
    where = " and ".join(issued.destinations)
    again = "sent again" if issued.resent else "sent"
    return (f"{issued.message}: {again} to {where}. It is valid until "
            f"{show(issued.expires_at, zone)}.\n"
            f"Enter the code here to redeem {issued.points:,} points.")


def code_refused(error: PointsError) -> str:
    """A validation code that did not redeem (808): why, and what the member can do."""
    reason = error.reason
    text = f"{error.status.code} {error.status.message}"
    if reason is Reason.WRONG:
        left = int(error.facts.get("attempts_left", 0))
        return (f"{text}\n{left} attempt{'s' if left != 1 else ''} left. Enter the code "
                "again, or ask for a new one.")
    why = {
        Reason.EXPIRED: "The code has expired.",
        Reason.VOIDED: "The code is no longer valid.",
        Reason.ATTEMPTS: "Too many wrong attempts: the code is no longer valid.",
        Reason.USED: "The code was already used.",
        Reason.NONE: "No code was sent for this redemption.",
        Reason.AMOUNT: "The code was sent for another amount.",
    }.get(reason, error.detail) if reason is not None else error.detail
    return f"{text}\n{why} Press the button for a new code."


def redeemed(result: RedemptionResult, zone: tzinfo) -> str:
    """A redemption's outcome. A replay says so, what has been reversed of it since, and
    the member's current points now (not the balance right after it)."""
    head = (f"{result.status.code} {result.status.message}\n"
            f"Redemption id: {result.redemption_id}\n"
            f"Points redeemed: {result.points_redeemed:,} (worth {result.redeemed_value})\n")
    tail = (f"Transaction number: {result.transaction_number}\n"
            f"Redeemed at: {show(result.redemption_time, zone)}")
    if not result.replayed:
        return f"{head}New balance: {result.balance:,} points\n{tail}"
    back = (f"Reversed since: {result.points_reversed:,} points\n"
            if result.points_reversed else "")
    return ("This redemption was already done; nothing more was redeemed.\n"
            f"{head}{back}Current balance: {result.current_points:,} points\n{tail}")


def enter_code(length: int) -> str:
    return f"Enter the {length}-digit validation code you received, or press Cancel."


def history(items: Sequence[HistoryItem], zone: tzinfo) -> str:
    if not items:
        return "No redemptions yet."
    lines = ["Your last redemptions and reversals:"]
    for item in items:
        when = show(item.at, zone)
        if item.kind == "redemption":
            back = f", {item.points_reversed:,} reversed" if item.points_reversed else ""
            lines.append(f"{when}  redeemed {item.points:,} points  {item.id}  "
                         f"({item.transaction_number}{back})")
        else:
            lines.append(f"{when}  reversed {item.points:,} points  {item.id}  "
                         f"of {item.redemption_id}")
    return "\n".join(lines)


Values = Mapping[str, Any]
WORDING: dict[str, Callable[[Values, tzinfo], str]] = {
    "ask_contact": lambda v, z: ASK_CONTACT,
    "not_linked": lambda v, z: NOT_LINKED,
    "verified_elsewhere": lambda v, z: VERIFIED_ELSEWHERE,
    "not_your_contact": lambda v, z: NOT_YOUR_CONTACT,
    "contact_refused": lambda v, z: f"{refusal(v['refusal'])}\n{CONTACT_REFUSED}",
    "welcome": lambda v, z: welcome(v["member"], v.get("staff", False)),
    "help": lambda v, z: _help(v.get("staff", False)),
    "not_understood": lambda v, z: f"{NOT_UNDERSTOOD}\n\n{_help(v.get('staff', False))}",
    "balance": lambda v, z: balance(v["balance"], v.get("blocked")),
    "history": lambda v, z: history(v["items"], z),
    "cannot_redeem": lambda v, z: cannot_redeem(v["refusal"]),
    "ask_amount": lambda v, z: ask_points(v["balance"]),
    "try_another": lambda v, z: try_another(v["refusal"], v.get("nearest", ())),
    "summary": lambda v, z: summary(v["redeemable"]),
    "refusal": lambda v, z: refusal(v["refusal"]),
    "code_sent": lambda v, z: code_sent(v["issued"], z),
    "code_refused": lambda v, z: code_refused(v["refusal"]),
    "enter_code": lambda v, z: enter_code(v["length"]),
    "confirm_or_cancel": lambda v, z: CONFIRM_OR_CANCEL,
    "redeemed": lambda v, z: redeemed(v["result"], z),
    "stale": lambda v, z: STALE,
    "nothing_to_cancel": lambda v, z: NOTHING_TO_CANCEL,
    "cancelled": lambda v, z: CANCELLED,
    "staff_only": lambda v, z: STAFF_ONLY,
    "usage": lambda v, z: f"Usage: {v['usage']}",
    **STAFF_WORDING,  # the staff commands' replies (bot.staff_wording)
}
