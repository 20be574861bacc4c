"""What the bot says and the buttons it shows: the wording of every reply, the keyboards,
and the callback data of inline buttons (built and checked here, in one place).

Callback data is short text Telegram hands back when a button is pressed; anyone can send
any text there, so `parse_button` accepts only the four shapes below and everything else
is treated as not understood:

- ``p:<points>``   redeem this many points (an amount suggested by the engine)
- ``c:<token>``    confirm the pending redemption whose token this is
- ``r:<token>``    send the validation code of that redemption again (or a new one)
- ``x:<token>``    cancel that pending redemption

The token is the short id of the redemption's transaction number, so a button left over
from an earlier redemption never acts on a later one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from core.service import Balance, CodeIssued, HistoryItem, MemberView, Redeemable, RedemptionResult
from core.status import PointsError
from core.times import show

_BUTTON = re.compile(r"^(?:(p):([1-9][0-9]{0,11})|([crx]):([A-Z0-9]{8}))$")

# The menu's buttons send these words as text; the bot reads them like the commands.
MENU_BALANCE, MENU_REDEEM, MENU_HISTORY, MENU_HELP = "Balance", "Redeem", "History", "Help"
SHARE_PHONE = "Share my phone number"

HELP = ("I show your loyalty points and redeem them.\n"
        "/balance – your points and what you can redeem\n"
        "/redeem – redeem points (or /redeem 500)\n"
        "/history – your last redemptions and reversals\n"
        "/cancel – stop what you are doing\n"
        "/help – this message")
STAFF_HELP = ("Staff:\n"
              "/member IDENTIFIER – profile, balance, fraud status, recent history\n"
              "/goodwill IDENTIFIER POINTS REASON – give goodwill points\n"
              "/revert TRANSACTION_NUMBER [POINTS] [IDENTIFIER] – give back a transaction's "
              "points\n"
              "/reverse REDEMPTION_ID [POINTS] – reverse a redemption, all or part")
NOT_UNDERSTOOD = "Sorry, I did not understand that.\n\n" + HELP
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
ENTER_CODE = "Enter the validation code you received, or press Cancel."
STAFF_ONLY = "This command is for member care staff only."


@dataclass(frozen=True)
class Pressed:
    """A pressed inline button, checked: `kind` is one of p, c, r, x."""

    kind: str
    value: str


def parse_button(data: str | None) -> Pressed | None:
    """The button `data` stands for, or None when it is not one this bot makes."""
    match = _BUTTON.fullmatch(data or "")
    if match is None:
        return None
    if match.group(1):
        return Pressed("p", match.group(2))
    return Pressed(match.group(3), match.group(4))


# ---------------------------------------------------------------- keyboards


def menu() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[MENU_BALANCE, MENU_REDEEM], [MENU_HISTORY, MENU_HELP]],
                               resize_keyboard=True, is_persistent=True)


def contact_request() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(SHARE_PHONE, request_contact=True)]],
                               resize_keyboard=True, one_time_keyboard=True)


def no_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def amounts(suggestions: Sequence[int]) -> InlineKeyboardMarkup | None:
    if not suggestions:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"{points:,}", callback_data=f"p:{points}")
                                  for points in suggestions]])


def confirm_buttons(token: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Confirm", callback_data=f"c:{token}"),
                                  InlineKeyboardButton("Cancel", callback_data=f"x:{token}")]])


def code_buttons(token: str, *, new_code: bool = False) -> InlineKeyboardMarkup:
    label = "Send a new code" if new_code else "Resend code"
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"r:{token}"),
                                  InlineKeyboardButton("Cancel", callback_data=f"x:{token}")]])


# ---------------------------------------------------------------- wording


def refusal(error: PointsError) -> str:
    """A refusal as the member sees it: the status code, its message, and the detail."""
    text = f"{error.status.code} {error.status.message}"
    return f"{text}\n({error.detail})" if error.detail else text


def welcome(member: MemberView) -> str:
    name = f", {member.name}" if member.name else ""
    return f"Welcome{name}! You have {member.current_points:,} points.\n\n{HELP}"


def balance(b: Balance) -> str:
    rules = b.rules
    multiple = f", in multiples of {rules.multiple_of:,}" if rules.multiple_of > 1 else ""
    return (f"Current points: {b.current_points:,} (worth {b.value})\n"
            f"Lifetime points: {b.lifetime_points:,}\n"
            f"Lifetime purchases: {b.lifetime_purchases:,.2f}\n"
            f"You can redeem {rules.min_points:,} to {rules.max_points:,} points at a "
            f"time{multiple}.")


def ask_points(b: Balance) -> str:
    return (f"You have {b.current_points:,} points (worth {b.value}). How many do you want "
            "to redeem? Pick an amount or type a number.")


def try_another(error: PointsError) -> str:
    return f"{refusal(error)}\n\nType another amount, or /cancel."


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
    reason = error.facts.get("reason")
    text = f"{error.status.code} {error.status.message}"
    if reason == "wrong":
        left = int(error.facts.get("attempts_left", 0))
        return (f"{text}\n{left} attempt{'s' if left != 1 else ''} left. Enter the code "
                "again, or ask for a new one.")
    why = {
        "expired": "The code has expired.",
        "voided": "The code is no longer valid.",
        "attempts": "Too many wrong attempts: the code is no longer valid.",
        "used": "The code was already used.",
        "none": "No code was sent for this redemption.",
        "amount": "The code was sent for another amount.",
    }.get(str(reason), error.detail)
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


def member_profile(b: Balance, items: Sequence[HistoryItem], zone: tzinfo,
                   linked: str | None = None) -> str:
    m = b.member
    return (f"Member {m.id}: {m.name or '(no name)'}\n"
            f"Mobile {m.mobile or '-'}, email {m.email or '-'}, external id "
            f"{m.external_id or '-'}\n"
            f"Type {m.customer_type}, fraud status {m.fraud_status}\n"
            f"Linked Telegram account: {linked or 'none'}\n"
            f"{balance(b)}\n\n{history(items, zone)}")
