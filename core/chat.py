"""The chat use case: one update of a chat in, one `Outcome` out, decided here.

`Chats.handle(sender, update_key, input)` runs a state-changing update as ONE unit of work:
it loads the chat's step and pending redemption and its member (row-locked), calls the
engine's operations on the same session, saves the step and claims the update; all of it
commits together, so the claim lands only with its outcome. After a crash before commit
the redelivered update is handled as if for the first time; after commit it is a
duplicate: it changes nothing and is answered with the replies kept with its claim
(`core.chat_record`), so a worker dying between commit and reply loses no answer.
Read-only inputs (/start, /balance, /history, /help) run in a read transaction and claim
nothing.

The steps and what moves between them are one table, `TRANSITIONS` (step x input ->
transition), in the style of python-telegram-bot's ConversationHandler(states=...) but
kept in the database (`core.models.ChatState`), so any worker can take the next update.

A validation code is issued inside the update's transaction and sent after it commits
(`core.outbox`): the outcome carries a `DeliverCode` effect, and `Chats.deliver` sends it
and answers how it went. A worker that dies in between leaves the delivery to whichever
worker sweeps overdue deliveries next.

Inputs and outcomes (`core.chat_io`) know no messaging app: an adapter turns its updates
into inputs and renders outcomes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import bindparam, delete
from sqlmodel import Session, col, select

from core import chat_record, codes, i18n, ledger, outbox, reads, redemption, rules
from core.chat_io import (
    Button,
    Command,
    Contact,
    DeliverCode,
    Input,
    Keyboard,
    Outcome,
    Press,
    Reply,
    Sender,
    Start,
    Text,
    amount_button,
    code_buttons,
    confirm_buttons,
    is_token,
    language_buttons,
    new_token,
    reply,
)
from core.chat_staff import (
    goodwill_cancelled,
    goodwill_confirmed,
    goodwill_hint,
    staff_command,
    staff_fraud,
    staff_goodwill,
    staff_member,
    staff_reverse,
    staff_revert,
    staff_stafflog,
    staff_unlink,
)
from core.conversation import attach, contact_mobile
from core.identifiers import Identifier, Kind
from core.models import ChatLink, ChatState, CustomerType, HandledUpdate, Member
from core.results import MemberView
from core.service import PointsService
from core.status import PointsError, Reason, WrongCode
from core.work import Work

log = logging.getLogger(__name__)
T = TypeVar("T")
HISTORY_ITEMS = 10


class Step(StrEnum):
    MENU = "menu"  # nothing pending
    AMOUNT = "amount"  # asked how many points
    CONFIRM = "confirm"  # an amount checked: Confirm sends a validation code
    CODE = "code"  # a code sent: the member types it
    GOODWILL = "goodwill"  # staff: a large goodwill grant waits for Confirm


@dataclass
class Chat:
    """One update's view of its chat, inside its unit of work."""

    work: Work
    sender: Sender
    state: ChatState
    member: Member | None  # None: not verified
    replaced: bool  # unlinked because another chat user verified the member

    @property
    def language(self) -> str:
        """The language the chat speaks: the one kept with it, else the one the messaging
        app names (when shipped), else DEFAULT_LANGUAGE."""
        return self.state.language or i18n.choose(self.sender.language,
                                                  self.work.settings.default_language)

    @property
    def step(self) -> Step:
        return Step(self.state.step) if self.state.step in Step.__members__.values() \
            else Step.MENU

    def to(self, step: Step) -> None:
        """Move to `step`. Leaving the code step any way but a redemption (cancelled, a
        new amount) voids the pending code: the next Confirm sends a new one."""
        if self.step is Step.CODE and step is not Step.CODE and self.member is not None:
            assert self.member.id is not None
            _void_code(self.work, self.member.id)
        self.state.step = step
        if step in (Step.MENU, Step.AMOUNT):
            self.state.points = self.state.external_reference = None
            self.state.transaction_number = self.state.token = None
        if step is not Step.GOODWILL:
            self.state.member_id = self.state.reason = None


Transition = Callable[["Chats", Chat, Input], Outcome]


@dataclass(frozen=True)
class Row:
    """A transition and whether it only reads (runs without a write transaction)."""

    run: Transition
    reads_only: bool = False
    members_only: bool = True  # needs a verified member; others are asked to verify

    @property
    def name(self) -> str:
        return getattr(self.run, "__name__", "transition")


ANY = None


def kind(given: Input, step: Step, otp_length: int) -> str:
    """What an input is, for the table: its command, its button, or what its text reads
    as at this step (a code at the code step, a bare number at the menu)."""
    if isinstance(given, Start):
        return "start"
    if isinstance(given, Contact):
        return "contact"
    if isinstance(given, Command):
        return f"/{given.name}"
    if isinstance(given, Press):
        shape = _button(given.data)
        return {"p": "amount", "c": "confirm", "r": "resend", "x": "cancel",
                "l": "language"}.get(
            shape[0] if shape else "", "junk")
    if step is Step.CODE and codes.read(given.text.strip(), otp_length) is not None:
        return "code"
    if step is Step.MENU and _points(given.text) is not None:
        return "number"
    return "text"


def _button(data: str) -> tuple[str, str] | None:
    """(kind, value) of button data this chat makes, or None."""
    head, _, value = (data or "").partition(":")
    if head == "p" and value.isascii() and value.isdigit() and len(value) <= 12 \
            and not value.startswith("0"):
        return head, value
    if head == "l" and value in i18n.shipped():
        return head, value
    if head in ("c", "r", "x") and is_token(value):
        return head, value
    return None


def _points(text: str) -> int | None:
    try:
        return rules.parse_points(text)
    except PointsError:
        return None


# ---------------------------------------------------------------- the table


class Chats:
    """The chat use case over one engine (`PointsService`: its database, settings, clock
    and code senders)."""

    def __init__(self, service: PointsService) -> None:
        self.service = service
        self.db = service.db
        self.settings = service.settings

    # -- one update

    def handle(self, sender: Sender, update_key: str, given: Input) -> Outcome:
        """Decide what `given` comes to for `sender`'s chat, exactly once per
        `update_key` (the messaging app's id of the update)."""
        row = TRANSITIONS.get((ANY, kind(given, Step.MENU, self.settings.otp_length)))
        if row is not None and row.reads_only:
            return self.db.run(lambda s: self._step(Work(s, self.settings,
                                                         self.service.clock()),
                                                    sender, given, lock=False), write=False)

        def unit(session: Session) -> Outcome:
            work = Work(session, self.settings, self.service.clock())
            key = update_key[:64]
            claimed = session.get(HandledUpdate, key)
            if claimed is not None:  # handled: answered again, nothing done again
                return (chat_record.loads(claimed.outcome) if claimed.outcome
                        else Outcome(duplicate=True))
            outcome = self._step(work, sender, given, lock=True)
            # The claim, with the replies to answer a redelivery with. Two workers handling
            # one update at once: one insert wins at commit; the other's unit fails on the
            # key, runs again whole (Database.run) and finds the claim.
            session.add(HandledUpdate(key=key, created_at=work.now,
                                      outcome=chat_record.dumps(outcome)))
            return outcome
        outcome = self.db.run(unit)
        if outcome.duplicate:
            log.info("update %s was delivered again: answered again, nothing redone",
                     update_key)
        return outcome

    def _step(self, work: Work, sender: Sender, given: Input, *, lock: bool) -> Outcome:
        chat = _load(work, sender, lock=lock)
        what = kind(given, chat.step, self.settings.otp_length)
        row = TRANSITIONS.get((chat.step, what)) or TRANSITIONS.get((ANY, what)) \
            or TRANSITIONS[(ANY, "text")]
        if row.members_only and chat.member is None:
            return Outcome((ask_to_verify(chat, "not_linked"),), language=chat.language)
        before = _pending(chat.state)
        outcome = replace(row.run(self, chat, given), transition=row.name,
                          language=chat.language)
        if lock and _pending(chat.state) != before:  # a step that changed nothing writes none
            # A chat's state written for the first time keeps the language it speaks.
            chat.state.language = chat.language
            chat.state.updated_at = work.now
            work.session.add(chat.state)
        return outcome

    # -- engine operations inside the update's transaction

    def attempt(self, chat: Chat, operation: Callable[[], T]) -> T:
        """Run an engine operation in a savepoint of the update's transaction: a refusal
        undoes what the operation wrote, except a wrong validation code, whose counted
        attempt is kept (`WrongCode`)."""
        savepoint = chat.work.session.begin_nested()
        try:
            result = operation()
        except WrongCode:
            savepoint.commit()
            raise
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
        return result

    # -- after commit

    def deliver(self, delivery_id: int, *, take_over: bool = False) -> Outcome:
        """Send the validation code waiting in `delivery_id` and answer how it went (the
        chat's next message); nothing when another worker has it or it is no longer
        wanted (cancelled, used, expired). `take_over`: a delivery another worker left
        (`overdue_deliveries`)."""
        sent = outbox.send(self.service, delivery_id, take_over=take_over)
        if sent is None:
            return Outcome()
        token = sent.token or ""
        if sent.refusal is not None:
            again = "retry" if sent.refusal.reason is Reason.DELIVERY else None
            return Outcome((reply("refusal", refusal=sent.refusal,
                                  buttons=code_buttons(token, resend=again)),),
                           language=sent.language)
        return Outcome((reply("code_sent", issued=sent.issued,
                              buttons=code_buttons(token)),), language=sent.language)

    def overdue_deliveries(self) -> list[tuple[int, str | None]]:
        """Deliveries a worker took and did not finish (it died): (id, chat to answer)."""
        return outbox.overdue(self.db, self.service.clock())

    # -- links and housekeeping (staff tools, the sandbox)

    def verify_contact(self, channel_user: str, phone: str) -> MemberView:
        """What a shared contact does, on its own (the CLI, drills): link `channel_user` to
        the enrolled member whose mobile `phone` is; the newest verification wins."""
        return self.db.run(lambda s: reads.view(_verify(
            Work(s, self.settings, self.service.clock()), channel_user, phone)))

    def link(self, channel_user: str, member_id: int) -> None:
        """Link without a contact (the sandbox's `/as`): whoever else was linked to the
        member is unlinked, and the chat starts at the menu."""
        def unit(session: Session) -> None:
            if session.exec(select(Member.id).where(Member.id == member_id)
                            .with_for_update()).first() is None:
                raise PointsError(816)
            attach(session, channel_user, member_id, self.service.clock())
            _reset(Work(session, self.settings, self.service.clock()), channel_user)
        self.db.run(unit)

    def speak(self, channel_user: str, language: str) -> None:
        """Keep `language` (shipped) with the chat, as /language does (the sandbox's `/as`
        makes the chat speak the demo member's)."""
        if language not in i18n.shipped():
            raise ValueError(f"{language!r} is not a shipped language")

        def unit(session: Session) -> None:
            now = self.service.clock()
            state = session.get(ChatState, channel_user) or ChatState(
                channel_user=channel_user, step=Step.MENU, updated_at=now)
            state.language, state.updated_at = language, now
            session.add(state)
        self.db.run(unit)

    def unlink(self, channel_user: str) -> None:
        def unit(session: Session) -> None:
            session.exec(delete(ChatLink).where(col(ChatLink.channel_user) == channel_user))
            _reset(Work(session, self.settings, self.service.clock()), channel_user)
        self.db.run(unit)

    def member_id(self, channel_user: str) -> int | None:
        def unit(session: Session) -> int | None:
            link = session.get(ChatLink, channel_user)
            return link.member_id if link else None
        return self.db.run(unit, write=False)

    def linked_user(self, member_id: int) -> str | None:
        """The chat user (Telegram user id) linked to this member, if any."""
        return self.db.run(lambda s: self.linked_in(Work(s, self.settings, self.service.clock()),
                                                    member_id), write=False)

    @staticmethod
    def linked_in(work: Work, member_id: int) -> str | None:
        return work.session.exec(select(ChatLink.channel_user).where(
            ChatLink.member_id == member_id)).first()

    def step(self, channel_user: str) -> Step:
        def unit(session: Session) -> Step:
            state = session.get(ChatState, channel_user)
            return Step(state.step) if state is not None else Step.MENU
        return self.db.run(unit, write=False)

    def forget_updates(self, older_than: timedelta) -> None:
        cutoff = self.service.clock() - older_than
        self.db.run(lambda s: s.exec(delete(HandledUpdate).where(
            col(HandledUpdate.created_at) < cutoff)))


# A chat's link, member and state in one query, built once (its cache key too).
_CHAT = (select(ChatLink, Member, ChatState).select_from(ChatLink)
         .outerjoin(Member, col(Member.id) == col(ChatLink.member_id))
         .outerjoin(ChatState, col(ChatState.channel_user) == col(ChatLink.channel_user))
         .where(col(ChatLink.channel_user) == bindparam("user")))


def _load(work: Work, sender: Sender, *, lock: bool) -> Chat:
    """The chat's link, member and state: one joined query, except where rows are locked
    one by one (PostgreSQL; SQLite's write transaction holds the whole database)."""
    session, user = work.session, sender.user
    link: ChatLink | None
    member: Member | None = None
    state: ChatState | None
    if lock and session.get_bind().dialect.name != "sqlite":
        link = session.get(ChatLink, user)
        if link is not None and link.member_id is not None:
            member = ledger.lock(session, link.member_id)
        state = session.get(ChatState, user, with_for_update=True)
    else:
        found = session.exec(_CHAT, params={"user": user}).first()
        if found is None:  # never verified: no link
            link, state = None, session.get(ChatState, user)
        else:
            link, member, state = found
    state = state or ChatState(channel_user=user, step=Step.MENU, updated_at=work.now)
    replaced = link is not None and link.member_id is None and link.replaced_at is not None
    return Chat(work, sender, state, member, replaced)


def _pending(state: ChatState) -> tuple[object, ...]:
    """What a chat's state holds: its step and pending redemption."""
    return (state.step, state.points, state.external_reference, state.transaction_number,
            state.token, state.member_id, state.reason, state.language)


def _reset(work: Work, user: str) -> None:
    """Back to the menu (`Chat.to`: a pending code is voided)."""
    state = work.session.get(ChatState, user)
    if state is None:
        return
    link = work.session.get(ChatLink, user)
    member = (work.session.get(Member, link.member_id)
              if link is not None and link.member_id is not None else None)
    Chat(work, Sender(user), state, member, False).to(Step.MENU)
    state.updated_at = work.now
    work.session.add(state)


def _void_code(work: Work, member_id: int) -> None:
    """Void the member's pending code, if they have one."""
    latest = codes.latest(work.session, member_id)
    if latest is not None and latest.id is not None:
        codes.void(work.session, latest.id)


# ---------------------------------------------------------------- transitions: getting in


def ask_to_verify(chat: Chat, key: str) -> Reply:
    """Ask an unverified chat for its number; one unlinked because the member verified
    from another account is told so."""
    return reply("verified_elsewhere" if chat.replaced else key, keyboard=Keyboard.CONTACT)


def start(chats: Chats, chat: Chat, given: Input) -> Outcome:
    if chat.member is None:
        return Outcome((ask_to_verify(chat, "ask_contact"),))
    return Outcome((reply("welcome", member=reads.view(chat.member), staff=_staff(chat),
                          keyboard=Keyboard.MENU),))


def verify(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """A shared contact: the sender's own number, read as international only, links the
    chat to the enrolled member who has it; the newest verification wins."""
    assert isinstance(given, Contact)
    if not given.own:
        log.info("a chat user shared a contact that is not their own")
        return Outcome((reply("not_your_contact", keyboard=Keyboard.CONTACT),))
    try:
        member = chats.attempt(chat, lambda: _verify(chat.work, chat.sender.user,
                                                     given.number, chat.sender.display))
    except PointsError as refusal:
        return Outcome((reply("contact_refused", refusal=refusal, keyboard=Keyboard.REMOVE),))
    chat.member, chat.replaced = member, False
    chat.state.language = chat.language  # verified: the language it speaks is kept
    chat.to(Step.MENU)
    return Outcome((reply("welcome", member=reads.view(member), staff=_staff(chat),
                          keyboard=Keyboard.MENU),))


def _verify(work: Work, channel_user: str, number: str, display: str = "") -> Member:
    """Link `channel_user` to the enrolled member whose mobile `number` is (read as
    international only: 802 when it is not a valid number so read)."""
    mobile = contact_mobile(number)
    if mobile is None:
        raise PointsError(802)
    member = ledger.find_member(work.session, Identifier(Kind.MOBILE, mobile), lock=True)
    if member.customer_type == CustomerType.CAMPAIGN:
        raise PointsError(686)
    if member.customer_type != CustomerType.LOYALTY:
        raise PointsError(881)
    assert member.id is not None
    attach(work.session, channel_user, member.id, work.now, display)
    return member


# ---------------------------------------------------------------- transitions: looking


def show_balance(chats: Chats, chat: Chat, given: Input) -> Outcome:
    assert chat.member is not None
    balance = reads.balance(chat.work, chat.member)
    blocked = rules.blocker(chat.work.settings, chat.member)
    return Outcome((reply("balance", balance=balance, blocked=blocked,
                          keyboard=Keyboard.MENU),))


def show_history(chats: Chats, chat: Chat, given: Input) -> Outcome:
    assert chat.member is not None
    items = reads.history(chat.work, chat.member, HISTORY_ITEMS)
    return Outcome((reply("history", items=items, keyboard=Keyboard.MENU),))


def show_help(chats: Chats, chat: Chat, given: Input) -> Outcome:
    return Outcome((reply("help", staff=_staff(chat), keyboard=Keyboard.MENU),))


def not_understood(chats: Chats, chat: Chat, given: Input) -> Outcome:
    return Outcome((reply("not_understood", staff=_staff(chat)),))


def ask_language(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """/language: a button for every shipped language; `/language hi` picks at once."""
    if isinstance(given, Command) and given.args:
        return set_language(chats, chat, Press(f"l:{given.args[0].casefold()}"))
    return Outcome((reply("language_ask", buttons=language_buttons(i18n.shipped())),))


def set_language(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """A language picked: kept with the chat, and said in it."""
    assert isinstance(given, Press)
    picked = _button(given.data)
    if picked is None or picked[0] != "l":
        return Outcome((reply("language_ask", buttons=language_buttons(i18n.shipped())),))
    chat.state.language = picked[1]
    keyboard = Keyboard.MENU if chat.member is not None else None
    return Outcome((reply("language_set", keyboard=keyboard),), settled=True)


def _staff(chat: Chat) -> bool:
    return chat.sender.staff


# ---------------------------------------------------------------- transitions: redeeming


def ask_amount(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """/redeem (or /redeem 500): how many points? Only amounts the member can redeem are
    offered; a member who can redeem none is told why, with its code."""
    if isinstance(given, Command) and given.args:
        return choose_amount(chats, chat, Text(" ".join(given.args)))
    assert chat.member is not None
    blocked = rules.blocker(chat.work.settings, chat.member)
    if blocked is not None:
        chat.to(Step.MENU)
        return Outcome((reply("cannot_redeem", refusal=blocked, keyboard=Keyboard.MENU),))
    chat.to(Step.AMOUNT)
    balance = reads.balance(chat.work, chat.member)
    return Outcome((reply("ask_amount", balance=balance, buttons=_amounts(
        rules.suggest(chat.work.settings, chat.member))),))


def _amounts(points: tuple[int, ...]) -> tuple[tuple[Button, ...], ...]:
    return (tuple(amount_button(p) for p in points),) if points else ()


def choose_amount(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """An amount (typed, a bare number at the menu, or a button): checked as isredeemable
    does, in the documented order; a refusal asks again, offering the nearest valid
    amounts for 807; success shows the summary with Confirm and Cancel."""
    member, settings = _member(chat), chat.work.settings
    text = (given.data.partition(":")[2] if isinstance(given, Press)
            else given.text if isinstance(given, Text) else "")
    points = _points(text)
    try:
        if points is None:
            rules.parse_points(text)  # raises the refusal (801) with its detail
        assert points is not None
        checked = chats.attempt(chat, lambda: redemption.check(chat.work, member, points))
    except PointsError as refusal:
        blocked = rules.blocker(settings, member)
        if blocked is not None:  # no amount would do
            chat.to(Step.MENU)
            return Outcome((reply("cannot_redeem", refusal=blocked,
                                  keyboard=Keyboard.MENU),), settled=True)
        chat.to(Step.AMOUNT)
        near = (rules.nearest(settings, member, points)
                if refusal.status.code == 807 and points is not None
                else rules.suggest(settings, member))
        return Outcome((reply("try_another", refusal=refusal, nearest=near,
                              buttons=_amounts(near)),), settled=True)
    chat.to(Step.CONFIRM)
    token = new_token()
    chat.state.points = checked.points
    chat.state.transaction_number = f"TG-{chat.work.now:%Y%m%d}-{token}"
    chat.state.external_reference = f"tg-{uuid.uuid4().hex}"
    chat.state.token = token
    return Outcome((reply("summary", redeemable=checked, buttons=confirm_buttons(token)),),
                   settled=True)


def _member(chat: Chat) -> Member:
    assert chat.member is not None
    return chat.member


def _token(given: Input) -> str:
    return given.data.partition(":")[2] if isinstance(given, Press) else ""


def stale(chat: Chat) -> Outcome:
    return Outcome((reply("stale", keyboard=Keyboard.MENU),), settled=True)


def confirm(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """Confirm: a validation code is issued for the pending amount and sent after commit
    (or, where no code is required, the points are redeemed at once)."""
    if _token(given) != chat.state.token:
        return stale(chat)
    if not chat.work.settings.validation_code_required:
        return redeem(chats, chat, None)
    return send_code(chats, chat)


def send_code(chats: Chats, chat: Chat) -> Outcome:
    token, points = chat.state.token or "", chat.state.points or 0
    try:
        issued = chats.attempt(chat, lambda: redemption.issue_code(
            chat.work, _member(chat), points, reply_to=chat.sender.chat))
    except PointsError as refusal:
        # 860 past the send limits: no Resend (it would be refused again), only Cancel.
        buttons = (code_buttons(token, resend=None) if refusal.status.code == 860
                   else confirm_buttons(token) if chat.step is Step.CONFIRM
                   else code_buttons(token))
        return Outcome((reply("refusal", refusal=refusal, buttons=buttons),), settled=True)
    delivery = outbox.enqueue(chat.work, issued.record_id, resent=issued.resent,
                              channel_user=chat.sender.user, chat=chat.sender.chat,
                              token=token)
    chat.to(Step.CODE)
    return Outcome(effects=(DeliverCode(delivery),), settled=True)


def resend(chats: Chats, chat: Chat, given: Input) -> Outcome:
    if _token(given) != chat.state.token:
        return stale(chat)
    return send_code(chats, chat)


def code_hint(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """At the code step, a press of the old Confirm or a text that cannot be a code: how
    to go on (no attempt is counted)."""
    if isinstance(given, Press) and _token(given) != chat.state.token:
        return stale(chat)
    return Outcome((reply("enter_code", length=chat.work.settings.otp_length,
                          buttons=code_buttons(chat.state.token or "")),))


def confirm_hint(chats: Chats, chat: Chat, given: Input) -> Outcome:
    return Outcome((reply("confirm_or_cancel",
                          buttons=confirm_buttons(chat.state.token or "")),))


def enter_code(chats: Chats, chat: Chat, given: Input) -> Outcome:
    assert isinstance(given, Text)
    return redeem(chats, chat, codes.read(given.text.strip(), chat.work.settings.otp_length))


def redeem(chats: Chats, chat: Chat, code: str | None) -> Outcome:
    """Redeem the pending amount with the chat's external reference number (a repeat
    answers the first result); done, the chat is back at the menu."""
    state, token = chat.state, chat.state.token or ""
    assert state.points and state.transaction_number and state.external_reference
    try:
        result = chats.attempt(chat, lambda: redemption.redeem(
            chat.work, _member(chat), state.points or 0, code,
            transaction_number=state.transaction_number or "",
            external_reference=state.external_reference or "",
            notes=f"chat user {chat.sender.user}"))
    except WrongCode as wrong:
        return Outcome((reply("code_refused", refusal=wrong, buttons=code_buttons(
            token, resend="new_code" if wrong.reason is Reason.ATTEMPTS else "resend")),))
    except PointsError as refusal:
        if refusal.status.code == 808:
            return Outcome((reply("code_refused", refusal=refusal,
                                  buttons=code_buttons(token, resend="new_code")),))
        chat.to(Step.MENU)
        return Outcome((reply("refusal", refusal=refusal, keyboard=Keyboard.MENU),),
                       settled=True)
    chat.to(Step.MENU)
    return Outcome((reply("redeemed", result=result, keyboard=Keyboard.MENU),), settled=True)


def cancel(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """/cancel, the Cancel word or button: any step is left, a pending code voided."""
    if isinstance(given, Press) and _token(given) != chat.state.token:
        return stale(chat)
    if chat.step is Step.MENU:
        return Outcome((reply("nothing_to_cancel", keyboard=Keyboard.MENU),), settled=True)
    chat.to(Step.MENU)  # a pending code is voided
    return Outcome((reply("cancelled", keyboard=Keyboard.MENU),), settled=True)


def stale_button(chats: Chats, chat: Chat, given: Input) -> Outcome:
    """A button of a redemption (or a staff chat's goodwill grant) that is no longer
    pending; an unverified chat that is not staff is asked to verify."""
    if chat.member is None and not chat.sender.staff:
        return Outcome((ask_to_verify(chat, "not_linked"),))
    return stale(chat)


def junk(chats: Chats, chat: Chat, given: Input) -> Outcome:
    log.info("button data not understood: %r", given.data if isinstance(given, Press)
             else given)
    return not_understood(chats, chat, given)


# The steps and what moves between them. ANY: at whatever step (a row for the step itself
# comes first). `reads`: answered in a read transaction, nothing claimed or changed.
TRANSITIONS: dict[tuple[Step | None, str], Row] = {
    (ANY, "start"): Row(start, reads_only=True, members_only=False),
    (ANY, "/start"): Row(start, reads_only=True, members_only=False),
    (ANY, "contact"): Row(verify, members_only=False),
    (ANY, "/balance"): Row(show_balance, reads_only=True),
    (ANY, "/history"): Row(show_history, reads_only=True),
    (ANY, "/help"): Row(show_help, reads_only=True, members_only=False),
    (ANY, "/language"): Row(ask_language, members_only=False),
    (ANY, "language"): Row(set_language, members_only=False),
    (ANY, "/redeem"): Row(ask_amount),
    (ANY, "/cancel"): Row(cancel),
    (ANY, "cancel"): Row(cancel),
    (ANY, "amount"): Row(choose_amount),
    (Step.MENU, "number"): Row(choose_amount),
    (Step.AMOUNT, "text"): Row(choose_amount),
    (Step.CONFIRM, "confirm"): Row(confirm),
    (Step.CONFIRM, "text"): Row(confirm_hint),
    (Step.CODE, "code"): Row(enter_code),
    (Step.CODE, "resend"): Row(resend),
    (Step.CODE, "confirm"): Row(code_hint),
    (Step.CODE, "text"): Row(code_hint),
    (ANY, "confirm"): Row(stale_button, members_only=False),
    (ANY, "resend"): Row(stale_button, members_only=False),
    (ANY, "/member"): Row(staff_command(staff_member), members_only=False),
    (ANY, "/goodwill"): Row(staff_command(staff_goodwill), members_only=False),
    (ANY, "/revert"): Row(staff_command(staff_revert), members_only=False),
    (ANY, "/reverse"): Row(staff_command(staff_reverse), members_only=False),
    (ANY, "/unlink"): Row(staff_command(staff_unlink), members_only=False),
    (ANY, "/fraud"): Row(staff_command(staff_fraud), members_only=False),
    (ANY, "/stafflog"): Row(staff_command(staff_stafflog), members_only=False),
    (Step.GOODWILL, "confirm"): Row(goodwill_confirmed, members_only=False),
    (Step.GOODWILL, "cancel"): Row(goodwill_cancelled, members_only=False),
    (Step.GOODWILL, "/cancel"): Row(goodwill_cancelled, members_only=False),
    (Step.GOODWILL, "text"): Row(goodwill_hint, members_only=False),
    (ANY, "junk"): Row(junk, members_only=False),
    (ANY, "text"): Row(not_understood, members_only=False),
}


__all__ = ["TRANSITIONS", "Chats", "Step", "kind"]
