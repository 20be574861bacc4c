"""What the bot says and the buttons it shows: the wording of every reply the engine's chat
use case asks for (`core.chat_io.Reply`: a message key and its values), its buttons and
keyboards, rendered for Telegram. `render(reply, texts)` is the one way in: `texts` is the
chat's language with the settings' formats (`core.i18n.Texts`).

Every text a member reads comes from the message catalogue (`core/locales`), in the
chat's language: numbers, money and times as its locale writes them, a status code with
a text written for members (`Texts.status`). Staff texts (the staff commands' answers,
STAFF_HELP) are English by decision and are not in the catalogue.

The menu keyboard's words come back as text when pressed; `menu_command` reads them back
as the commands they stand for, in every shipped language (the inverse of this module's
own keyboard, not a guess at what a member meant).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.staff_wording import STAFF_HELP, STAFF_WORDING
from core import i18n
from core.chat_io import Button, Keyboard, Reply
from core.i18n import Texts
from core.service import Balance, CodeIssued, HistoryItem, MemberView, Redeemable, RedemptionResult
from core.status import PointsError, Reason

# English texts with the default formats, for what is said outside a chat's language
# (the sandbox's staff commands, the drills).
ENGLISH = i18n.texts(i18n.REFERENCE, zone=UTC, currency="INR", region="IN")
HELP = ENGLISH("help")
NOT_UNDERSTOOD = ENGLISH("not_understood")
SOMETHING_WRONG = ENGLISH("something_wrong") + "\n\n" + HELP
ASK_CONTACT = ENGLISH("ask_contact")
PRIVATE_ONLY = ENGLISH("private_only")
NOTHING_TO_CANCEL = ENGLISH("nothing_to_cancel")
STAFF_ONLY = ENGLISH("staff_only")
CONFIRM_OR_CANCEL = ENGLISH("confirm_or_cancel")
NOT_YOUR_CONTACT = ENGLISH("not_your_contact")
NOT_LINKED = ENGLISH("not_linked") + "\n\n" + ASK_CONTACT
VERIFIED_ELSEWHERE = ENGLISH("verified_elsewhere")


# ---------------------------------------------------------------- keyboards

# The menu keyboard's words (and the Cancel word), and the commands they stand for.
MENU_KEYS = {"menu.balance": "balance", "menu.redeem": "redeem", "menu.history": "history",
             "menu.help": "help", "menu.cancel": "cancel"}
_MENU_WORDS = {ENGLISH.in_language(language)(key).casefold(): command
               for language in i18n.shipped() for key, command in MENU_KEYS.items()}


def menu_command(text: str) -> str | None:
    """The command a menu keyboard word stands for, in any shipped language ("Balance",
    "बैलेंस" -> "balance"), or None."""
    return _MENU_WORDS.get(text.strip().casefold())


def menu(t: Texts = ENGLISH) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[t("menu.balance"), t("menu.redeem")],
                                [t("menu.history"), t("menu.help")]],
                               resize_keyboard=True, is_persistent=True)


def contact_request(t: Texts = ENGLISH) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(t("button.share_phone"), request_contact=True)]],
                               resize_keyboard=True, one_time_keyboard=True)


def no_keyboard(t: Texts = ENGLISH) -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


KEYBOARDS: dict[Keyboard, Callable[[Texts], Any]] = {
    Keyboard.MENU: menu, Keyboard.CONTACT: contact_request, Keyboard.REMOVE: no_keyboard}


def label(button: Button, t: Texts = ENGLISH) -> str:
    if button.key == "amount":
        return t.number(button.values["points"])
    if button.key == "language":  # each language in its own words
        return t.in_language(button.values["language"])("language.name")
    return t(f"button.{button.key}")


def markup(reply: Reply, t: Texts = ENGLISH) -> Any:
    """The reply's buttons under the message, else the keyboard it asks for."""
    if reply.buttons:
        return InlineKeyboardMarkup([[InlineKeyboardButton(label(b, t), callback_data=b.data)
                                      for b in row] for row in reply.buttons])
    return KEYBOARDS[reply.keyboard](t) if reply.keyboard is not None else None


# ---------------------------------------------------------------- wording


def render(reply: Reply, t: Texts) -> tuple[str, Any]:
    """The text and the markup of one reply of the engine's chat use case, in `t`'s
    language."""
    return WORDING[reply.key](reply.values, t), markup(reply, t)


def _help(t: Texts, staff: bool) -> str:
    return f"{t('help')}\n\n{STAFF_HELP}" if staff else t("help")


def detail(error: PointsError, t: Texts) -> str:
    """What a refusal's facts say to the member (the minimum, what they have...), in their
    language; empty when there is nothing more to say."""
    f, code, n = error.facts, error.status.code, t.number
    if code == 821 and "minimum" in f:
        return t("detail.minimum", minimum=n(f["minimum"]))
    if code == 819 and "maximum" in f:
        if f.get("already"):
            return t("detail.maximum_earlier", maximum=n(f["maximum"]),
                     already=n(f["already"]))
        return t("detail.maximum", maximum=n(f["maximum"]))
    if code == 803 and "smallest" in f:
        return t("detail.smallest", smallest=n(f["smallest"]), available=n(f["available"]))
    if code in (803, 818) and "available" in f:
        return t("detail.available", available=n(f["available"]))
    if code == 804 and "needed" in f:
        return t("detail.current", needed=n(f["needed"]))
    if code == 805 and "needed" in f:
        return t("detail.lifetime", needed=n(f["needed"]))
    if code == 806 and "needed" in f:
        return t("detail.purchases", needed=t.money(f["needed"]))
    if code == 801 and "limit" in f:
        return t("detail.limit", limit=n(f["limit"]))
    if code == 860 and error.reason is Reason.PERIOD_LIMIT:
        return t("detail.period_limit")
    if code == 860 and error.reason is Reason.SEND_LIMIT and "sends" in f:
        return t("detail.send_limit", sends=n(f["sends"]))
    if code == 860 and error.reason is Reason.DELIVERY:
        return t("detail.delivery")
    if "error_id" in f:
        return t("detail.error_id", error_id=f["error_id"])
    return ""


def refusal(error: PointsError, t: Texts = ENGLISH) -> str:
    """A refusal as the member sees it: the status code, a text written for members, and
    what its facts say."""
    text = t.status(error.status.code, error.facts)
    more = detail(error, t)
    return f"{text}\n({more})" if more else text


def welcome(member: MemberView, staff: bool = False, t: Texts = ENGLISH) -> str:
    points = t.number(member.current_points)
    hello = (t("welcome", name=member.name, points=points) if member.name
             else t("welcome.anonymous", points=points))
    return f"{hello}\n\n{_help(t, staff)}"


def balance(b: Balance, blocked: PointsError | None = None, t: Texts = ENGLISH) -> str:
    rules, n = b.rules, t.number
    figures = t("balance.figures", points=n(b.current_points), value=t.money(b.value),
                lifetime=n(b.lifetime_points), purchases=t.money(b.lifetime_purchases))
    if blocked is not None:
        return f"{figures}\n{cannot_redeem(blocked, t)}"
    if rules.multiple_of > 1:
        return f"{figures}\n" + t("balance.range_multiple", min=n(rules.min_points),
                                  max=n(rules.max_points), multiple=n(rules.multiple_of))
    return f"{figures}\n" + t("balance.range", min=n(rules.min_points),
                              max=n(rules.max_points))


def cannot_redeem(error: PointsError, t: Texts = ENGLISH) -> str:
    """A member who can redeem no amount now: why, with the status code."""
    return f"{t('cannot_redeem')}\n{refusal(error, t)}"


def ask_points(b: Balance, t: Texts = ENGLISH) -> str:
    return t("ask_amount", points=t.number(b.current_points), value=t.money(b.value))


def try_another(error: PointsError, nearest: Sequence[int] = (), t: Texts = ENGLISH) -> str:
    near = ""
    if error.status.code == 807 and nearest:
        near = "\n" + t("nearest", amounts=t("word.or").join(t.number(p) for p in nearest))
    return f"{refusal(error, t)}{near}\n\n{t('try_another')}"


def summary(r: Redeemable, t: Texts = ENGLISH) -> str:
    return t("summary", points=t.number(r.points), value=t.money(r.points_redeem_value))


def code_sent(issued: CodeIssued, t: Texts = ENGLISH) -> str:
    known = ("chat", "log", "sms", "email")
    channels = t("word.and").join(t(f"channel.{c}") if c in known else c
                                  for c in issued.channels)
    where = t("word.and").join(t(f"channel.{d}") if d in ("chat", "log") else d
                               for d in issued.destinations)
    key = "code_sent.again" if issued.resent else "code_sent"
    return (t(key, channels=channels, where=where, until=t.time(issued.expires_at)) + "\n"
            + t("code_sent.enter", points=t.number(issued.points)))


def code_refused(error: PointsError, t: Texts = ENGLISH) -> str:
    """A validation code that did not redeem (808): why, and what the member can do."""
    reason = error.reason
    text = t.status(error.status.code)
    if reason is Reason.WRONG:
        left = int(error.facts.get("attempts_left", 0))
        return f"{text}\n{t.plural('attempts_left', left)} {t('code.again')}"
    known = {Reason.EXPIRED, Reason.VOIDED, Reason.ATTEMPTS, Reason.USED, Reason.NONE,
             Reason.AMOUNT}
    why = t(f"code.{reason.value}") if reason in known and reason is not None else ""
    return f"{text}\n{why + ' ' if why else ''}{t('code.new')}"


def redeemed(result: RedemptionResult, t: Texts = ENGLISH) -> str:
    """A redemption's outcome. A replay says so, what has been reversed of it since, and
    the member's current points now (not the balance right after it)."""
    n = t.number
    head = (f"{t.status(result.status.code)}\n"
            + t("redeemed.head", id=result.redemption_id, points=n(result.points_redeemed),
                value=t.money(result.redeemed_value)) + "\n")
    tail = t("redeemed.tail", txn=result.transaction_number,
             at=t.time(result.redemption_time))
    if not result.replayed:
        return f"{head}{t('redeemed.balance', balance=n(result.balance))}\n{tail}"
    back = (t("redeemed.reversed", points=n(result.points_reversed)) + "\n"
            if result.points_reversed else "")
    return (f"{t('redeemed.replay')}\n{head}{back}"
            f"{t('redeemed.current', balance=n(result.current_points))}\n{tail}")


def seed_refusal(error: PointsError) -> str:
    """A refusal as staff and the logs read it: the status code, the seed's message word
    for word, and the engine's detail."""
    text = f"{error.status.code} {error.status.message}"
    return f"{text}\n({error.detail})" if error.detail else text


def history(items: Sequence[HistoryItem], t: Texts = ENGLISH) -> str:
    if not items:
        return t("history.none")
    lines, n = [t("history.title")], t.number
    for item in items:
        when = t.time(item.at)
        if item.kind == "redemption" and item.points_reversed:
            lines.append(t("history.redemption_reversed", at=when, points=n(item.points),
                           id=item.id, txn=item.transaction_number,
                           reversed=n(item.points_reversed)))
        elif item.kind == "redemption":
            lines.append(t("history.redemption", at=when, points=n(item.points), id=item.id,
                           txn=item.transaction_number))
        else:
            lines.append(t("history.reversal", at=when, points=n(item.points), id=item.id,
                           redemption=item.redemption_id))
    return "\n".join(lines)


def _with_help(text: str, t: Texts, staff: bool = False) -> str:
    return f"{text}\n\n{_help(t, staff)}"


Values = Mapping[str, Any]
WORDING: dict[str, Callable[[Values, Texts], str]] = {
    "ask_contact": lambda v, t: t("ask_contact"),
    "not_linked": lambda v, t: f"{t('not_linked')}\n\n{t('ask_contact')}",
    "verified_elsewhere": lambda v, t: t("verified_elsewhere"),
    "not_your_contact": lambda v, t: t("not_your_contact"),
    "contact_refused": lambda v, t: (f"{refusal(v['refusal'], t)}\n{t('contact_refused')}"
                                     f"{t.care()}"),
    "welcome": lambda v, t: welcome(v["member"], v.get("staff", False), t),
    "help": lambda v, t: _help(t, v.get("staff", False)),
    "not_understood": lambda v, t: _with_help(t("not_understood"), t, v.get("staff", False)),
    "balance": lambda v, t: balance(v["balance"], v.get("blocked"), t),
    "history": lambda v, t: history(v["items"], t),
    "cannot_redeem": lambda v, t: cannot_redeem(v["refusal"], t),
    "ask_amount": lambda v, t: ask_points(v["balance"], t),
    "try_another": lambda v, t: try_another(v["refusal"], v.get("nearest", ()), t),
    "summary": lambda v, t: summary(v["redeemable"], t),
    "refusal": lambda v, t: refusal(v["refusal"], t),
    "code_sent": lambda v, t: code_sent(v["issued"], t),
    "code_refused": lambda v, t: code_refused(v["refusal"], t),
    "enter_code": lambda v, t: t("enter_code", length=t.number(v["length"])),
    "confirm_or_cancel": lambda v, t: t("confirm_or_cancel"),
    "redeemed": lambda v, t: redeemed(v["result"], t),
    "stale": lambda v, t: _with_help(t("stale"), t),
    "nothing_to_cancel": lambda v, t: t("nothing_to_cancel"),
    "cancelled": lambda v, t: t("cancelled"),
    "language_ask": lambda v, t: t("language.ask"),
    "language_set": lambda v, t: t("language.set"),
    "staff_only": lambda v, t: t("staff_only"),
    "usage": lambda v, t: t("usage", usage=v["usage"]),
    **STAFF_WORDING,  # the staff commands' replies (bot.staff_wording)
}
