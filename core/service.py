"""The use cases of the points engine: one method per operation of the points API, plus the
three ways points come in. Entry points (the bot, the CLI, the sandbox, scripts) call these
and show what they answer; nothing else changes points.

Every method takes plain values (text as a person typed it is fine: parsing and its
refusals live here), runs in one transaction through `Database.run`, and returns a frozen
result or raises `PointsError` with the documented status code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from core import codes, ledger, limits, rules
from core.db import Database, executemany
from core.delivery import CodeMessage, CodeSender, DeliveryFailed
from core.identifiers import Identifier, Kind, mask, parse_as, parse_identifier
from core.models import (
    Bill,
    CustomerType,
    FraudStatus,
    ImportBatch,
    LedgerEntry,
    Member,
    Redemption,
    Reversal,
    Source,
    StaffAction,
)
from core.settings import Settings
from core.status import SUCCESS, InputError, PointsError, Status, message

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_REFERENCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                             "-_./:#")


CAN_REDEEM = Status(SUCCESS, "Points can be redeemed")
REDEEMED = Status(SUCCESS, message(SUCCESS))


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A short opaque id: a prefix letter and 10 random base32 characters."""
    alphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(10))


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class RedemptionRules:
    min_points: int
    max_points: int
    multiple_of: int


@dataclass(frozen=True)
class MemberView:
    id: int
    name: str
    mobile: str | None
    email: str | None
    external_id: str | None
    customer_type: str
    fraud_status: str
    current_points: int
    lifetime_points: int
    lifetime_purchases: Decimal
    created_at: datetime


@dataclass(frozen=True)
class Balance:
    member: MemberView
    current_points: int
    lifetime_points: int
    lifetime_purchases: Decimal
    value: Decimal  # the currency value of the current points
    rules: RedemptionRules
    suggestions: tuple[int, ...]  # a few amounts the member could redeem now


@dataclass(frozen=True)
class Redeemable:
    points: int
    points_redeem_value: Decimal
    status: Status = CAN_REDEEM


@dataclass(frozen=True)
class CodeToDeliver:
    """A code issued (or to be resent) and not sent yet: `deliver_validation_code` sends it."""

    message: CodeMessage = field(repr=False)  # holds the code: never in a log
    record_id: int
    resent: bool
    sends_left: int
    expires_at: datetime


@dataclass(frozen=True)
class CodeIssued:
    points: int
    value: Decimal
    channels: tuple[str, ...]  # where it went, e.g. ("sms", "email")
    destinations: tuple[str, ...]  # masked: "+91•••••43210"
    resent: bool
    sends_left: int
    expires_at: datetime

    @property
    def message(self) -> str:
        names = {"sms": "SMS", "email": "Email", "chat": "chat", "log": "log"}
        return "Validation Code Issued by " + " and ".join(names.get(c, c)
                                                           for c in self.channels)


@dataclass(frozen=True)
class RedemptionResult:
    redemption_id: str
    points_redeemed: int
    redeemed_value: Decimal
    balance: int  # current points right after this redemption
    transaction_number: str
    external_reference: str
    redemption_time: datetime
    # Today's truth, for a replay: how much of the redemption has been reversed since, and
    # the member's current points now (for a new redemption: 0, and `balance`).
    points_reversed: int
    current_points: int
    replayed: bool = False  # a retry answered from the first result; nothing new debited
    status: Status = REDEEMED


@dataclass(frozen=True)
class ReversalResult:
    reversal_ids: tuple[str, ...]
    redemption_ids: tuple[str, ...]
    points_reversed: int
    balance: int


@dataclass(frozen=True)
class HistoryItem:
    kind: str  # "redemption" or "reversal"
    id: str
    points: int
    at: datetime
    transaction_number: str
    redemption_id: str
    points_reversed: int = 0  # for a redemption: how much of it has been reversed


@dataclass(frozen=True)
class Issued:
    """Points that came in (earning, goodwill): how many, and the balance after."""

    points: int
    balance: int
    reference: str
    replayed: bool = False


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ImportRejected(InputError):
    """A Data Import file with bad rows: nothing was imported."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} bad row(s); nothing was imported")


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int
    updated: int
    points: int
    already_imported: bool = False
    batch_id: int | None = None


@dataclass(frozen=True)
class StaffLine:
    staff: str
    action: str
    target: str
    allowed: bool
    detail: str
    at: datetime


@dataclass(frozen=True)
class _ImportRow:
    line: int
    identifiers: tuple[Identifier, ...]
    name: str
    customer_type: str
    fraud_status: str
    current_points: int
    lifetime_points: int
    lifetime_purchases: Decimal


_PROFILE = ("mobile", "email", "external_id", "name", "customer_type", "fraud_status",
            "lifetime_purchases")


@dataclass
class _ImportPlan:
    """What an import writes, decided under the lock before anything is written."""

    matches: dict[int, int] = field(default_factory=dict)  # line -> existing member id
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)  # member id -> after
    balances: dict[int, tuple[int, int]] = field(default_factory=dict)  # as read
    new: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # line, profile
    problems: list[RowError] = field(default_factory=list)


IMPORT_COLUMNS = ("mobile", "email", "external_id", "name", "type", "fraud_status",
                  "current_points", "lifetime_points", "lifetime_purchases")


def view(member: Member) -> MemberView:
    assert member.id is not None
    return MemberView(member.id, member.name, member.mobile, member.email, member.external_id,
                      member.customer_type, member.fraud_status, member.current_points,
                      member.lifetime_points, Decimal(member.lifetime_purchases),
                      member.created_at)


def _text(value: str | None, what: str, *, code: int, max_length: int = 64) -> str:
    text = (value or "").strip()
    if not text or len(text) > max_length or not set(text) <= _REFERENCE_CHARS:
        raise PointsError(code, f"{what} must be 1 to {max_length} letters, digits or -_./:#")
    return text


# ---------------------------------------------------------------- the service


class PointsService:
    """The points engine for one database and one set of settings."""

    def __init__(self, settings: Settings, db: Database | None = None,
                 senders: Sequence[CodeSender] = (), clock: Clock = utcnow) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url, retries=settings.db_retry_attempts,
                                 lock_timeout=settings.db_lock_timeout_seconds)
        self.db.migrate()
        self.senders = list(senders)
        self.clock = clock

    # -- reading

    def identify(self, text: str) -> Identifier:
        return parse_identifier(text, self.settings.default_phone_region)

    def member(self, identifier: str) -> MemberView:
        ident = self.identify(identifier)
        return self.db.run(lambda s: view(ledger.find_member(s, ident)), write=False)

    def member_by_id(self, member_id: int) -> MemberView:
        def unit(session: Session) -> MemberView:
            member = session.get(Member, member_id)
            if member is None:
                raise PointsError(816)
            return view(member)
        return self.db.run(unit, write=False)

    def rules(self) -> RedemptionRules:
        s = self.settings
        return RedemptionRules(s.redemption_min_points, s.redemption_max_points,
                               s.redemption_multiple_of)

    def balance(self, identifier: str) -> Balance:
        ident = self.identify(identifier)
        member = self.db.run(lambda s: view(ledger.find_member(s, ident)), write=False)
        return self.balance_for(member)

    def balance_of(self, member_id: int) -> Balance:
        return self.balance_for(self.member_by_id(member_id))

    def balance_for(self, member: MemberView) -> Balance:
        """The balance of a member just read (no second read of the database)."""
        suggestions = tuple(self.settings.redeemable_amounts(4, up_to=member.current_points))
        return Balance(member, member.current_points, member.lifetime_points,
                       member.lifetime_purchases,
                       self.settings.points_value(member.current_points), self.rules(),
                       suggestions)

    def history(self, identifier: str, limit: int = 10) -> list[HistoryItem]:
        ident = self.identify(identifier)
        return self.db.run(lambda s: self._history(s, ledger.find_member(s, ident), limit),
                           write=False)

    def history_of(self, member_id: int, limit: int = 10) -> list[HistoryItem]:
        def unit(session: Session) -> list[HistoryItem]:
            member = session.get(Member, member_id)
            if member is None:
                raise PointsError(816)
            return self._history(session, member, limit)
        return self.db.run(unit, write=False)

    @staticmethod
    def _history(session: Session, member: Member, limit: int) -> list[HistoryItem]:
        redemptions = session.exec(
            select(Redemption).where(Redemption.member_id == member.id)
            .order_by(col(Redemption.created_at).desc()).limit(limit)).all()
        reversals = session.exec(
            select(Reversal, Redemption.transaction_number)
            .join(Redemption, col(Redemption.id) == col(Reversal.redemption_id))
            .where(Reversal.member_id == member.id)
            .order_by(col(Reversal.created_at).desc()).limit(limit)).all()
        items = [HistoryItem("redemption", r.id, r.points, r.created_at, r.transaction_number,
                             r.id, r.points_reversed) for r in redemptions]
        items += [HistoryItem("reversal", r.id, r.points, r.created_at, txn, r.redemption_id)
                  for r, txn in reversals]
        items.sort(key=lambda item: (item.at, item.kind == "reversal"), reverse=True)
        return items[:limit]

    def ledger_entries(self, identifier: str) -> list[LedgerEntry]:
        ident = self.identify(identifier)

        def unit(session: Session) -> list[LedgerEntry]:
            member = ledger.find_member(session, ident)
            return list(session.exec(select(LedgerEntry).where(
                LedgerEntry.member_id == member.id).order_by(col(LedgerEntry.id))).all())
        return self.db.run(unit, write=False)

    def audit(self) -> list[str]:
        return self.db.run(ledger.audit, write=False)

    # -- the redemption flow

    def is_redeemable(self, identifier: str, points: object,
                      validation_code: str | None = None) -> Redeemable:
        """Whether `points` can be redeemed now; a given code is checked (not used up)."""
        amount = rules.parse_points(points)
        ident = self.identify(identifier)
        now = self.clock()
        # A blank code is no code (as on redeem): it must not count as a wrong attempt.
        code = (validation_code or "").strip() or None

        def unit(session: Session) -> Redeemable:
            member = ledger.find_member(session, ident)
            validate = None
            if code is not None:
                def validate() -> None:
                    assert code is not None
                    codes.verify(session, self.settings, member, amount, code, now)
            rules.check(self.settings, member, amount, rules.Stage.CHECK, validate)
            return Redeemable(amount, self.settings.points_value(amount))
        # A wrong code counts as an attempt, so a check with a code writes.
        return self.db.run(unit, write=code is not None)

    def issue_validation_code(self, identifier: str, points: object,
                              reply_to: str | None = None) -> CodeIssued:
        """Check the amount, then send the member a code for it on every channel."""
        return self.deliver_validation_code(
            self.prepare_validation_code(identifier, points, reply_to))

    def prepare_validation_code(self, identifier: str, points: object,
                                reply_to: str | None = None) -> CodeToDeliver:
        """The first half of `issue_validation_code`: check the amount and issue (or resend)
        the code, in one transaction. An entry point may run the second half,
        `deliver_validation_code`, on threads of its own: a slow gateway then holds no
        thread that engine calls need."""
        amount = rules.parse_points(points)
        ident = self.identify(identifier)
        now = self.clock()

        def unit(session: Session) -> tuple[codes.Issued, MemberView]:
            member = ledger.find_member(session, ident, lock=True)
            rules.check(self.settings, member, amount, rules.Stage.CHECK, None)
            return codes.issue(session, self.settings, member, amount, now), view(member)

        issued, member = self.db.run(unit)
        assert issued.record.id is not None
        value = self.settings.points_value(amount)
        text = CodeMessage(member.id, member.name, member.mobile, member.email, issued.code,
                           amount, value, max(1, self.settings.otp_ttl_seconds // 60), reply_to)
        return CodeToDeliver(text, issued.record.id, issued.resent,
                             self.settings.otp_max_sends - issued.record.sends,
                             issued.record.expires_at)

    def deliver_validation_code(self, code: CodeToDeliver) -> CodeIssued:
        """The second half: send the code on every channel; none delivered voids it (860)."""
        text = code.message
        channels: list[str] = []
        destinations: list[str] = []
        # Delivery happens outside the transaction: a slow SMS gateway holds no lock.
        for sender in self.senders:
            try:
                destination = sender.send(text)
            except DeliveryFailed as error:
                log.warning("validation code for member %s not sent by %s: %s",
                            text.member_id, sender.channel, error)
                continue
            except Exception:
                log.exception("validation code sender %s failed", sender.channel)
                continue
            channels.append(sender.channel)
            destinations.append(mask(destination) if destination != sender.channel
                                else destination)
        if not channels:
            self.db.run(lambda s: codes.void(s, code.record_id))
            raise PointsError(860, "the code could not be delivered on any channel",
                              reason="delivery")
        return CodeIssued(text.points, text.value, tuple(channels), tuple(destinations),
                          code.resent, code.sends_left, code.expires_at)

    def redeem(self, identifier: str, points: object, validation_code: str | None, *,
               transaction_number: str, external_reference: str, notes: str = "",
               redemption_time: str | datetime | None = None) -> RedemptionResult:
        """Redeem `points` against a bill; idempotent on `external_reference`."""
        amount = rules.parse_points(points)
        ident = self.identify(identifier)
        when = self._redemption_time(redemption_time)
        txn = _text(transaction_number, "the transaction number", code=811)
        reference = _text(external_reference, "the external reference number", code=817,
                          max_length=128)
        notes = _storable(notes or "").strip()[:500]
        code = (validation_code or "").strip() or None

        def unit(session: Session) -> RedemptionResult:
            member = ledger.find_member(session, ident, lock=True)
            assert member.id is not None
            prior = session.exec(select(Redemption).where(
                Redemption.external_reference == reference)).first()
            if prior is not None:
                # The same request is the same member, amount and transaction number, however
                # the member was named. Compared on the row's columns, so rows written when
                # the fingerprint hashed the identifier's text are still recognised.
                if (prior.member_id, prior.points, prior.transaction_number) == (
                        member.id, amount, txn):
                    return self._result(prior, replayed=True,
                                        current_points=member.current_points)
                raise PointsError(817, "this external reference number was already used for "
                                       "a different redemption", reason="reference_conflict")
            # REDEMPTION_MAX_POINTS caps a transaction: what this member already redeemed on
            # it, net of reversals, counts (the member's row is locked, so this stays true).
            already = session.exec(select(func.coalesce(
                func.sum(col(Redemption.points) - col(Redemption.points_reversed)), 0)).where(
                Redemption.member_id == member.id, Redemption.transaction_number == txn)).one()
            now = self.clock()
            record = None
            validate: Callable[[], None] | None = None
            if code is not None:
                def validate() -> None:
                    nonlocal record
                    assert code is not None
                    record = codes.verify(session, self.settings, member, amount, code, now)
            elif self.settings.validation_code_required:
                def validate() -> None:
                    raise PointsError(824)
            rules.check(self.settings, member, amount, rules.Stage.REDEEM, validate,
                        already_redeemed=int(already))
            redemption = Redemption(
                id=new_id("R"), member_id=member.id, points=amount,
                redeemed_value=self.settings.points_value(amount),
                balance_after=member.current_points - amount, transaction_number=txn,
                external_reference=reference, fingerprint=_fingerprint(member.id, amount, txn),
                notes=notes,
                redemption_time=when or now, created_at=now)
            session.add(redemption)
            ledger.post(session, member, Source.REDEMPTION, -amount, reference=redemption.id,
                        now=now)
            if record is not None:
                codes.use(session, record, redemption.id)
            return self._result(redemption)

        try:
            return self.db.run(unit)
        except SQLAlchemyError as error:
            # Not transient (those answer 815): nothing was written. The error id is what
            # the caller is shown and what staff search the log for.
            error_id = new_id("E")
            log.error("redemption failed on a database error, error id %s (reference %s)",
                      error_id, reference, exc_info=True)
            raise PointsError(903, f"error id {error_id}", error_id=error_id) from error

    def _redemption_time(self, value: str | datetime | None) -> datetime | None:
        """When the redemption happened: ``YYYY-MM-DD HH:MM:SS``, optionally with a UTC
        offset (``+05:30``, ``Z``); without one it is the organisation's local time
        (ORG_TIMEZONE). 859 when it does not parse or is in the future."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=self.settings.zone)
        else:
            text = value.strip()
            try:
                moment = datetime.strptime(text, TIME_FORMAT + "%z")
            except ValueError:
                try:
                    moment = datetime.strptime(text, TIME_FORMAT).replace(
                        tzinfo=self.settings.zone)
                except ValueError:
                    raise PointsError(859, "expected YYYY-MM-DD HH:MM:SS, optionally with "
                                           "a UTC offset such as +05:30") from None
        if moment > self.clock():
            raise PointsError(859, "the redemption time is in the future")
        return moment.astimezone(UTC)

    @staticmethod
    def _result(redemption: Redemption, replayed: bool = False,
                current_points: int | None = None) -> RedemptionResult:
        """The outcome of `redemption`; for a replay, with what was reversed of it since and
        the member's `current_points` now."""
        return RedemptionResult(
            redemption.id, redemption.points, Decimal(redemption.redeemed_value),
            redemption.balance_after, redemption.transaction_number,
            redemption.external_reference, redemption.redemption_time,
            points_reversed=redemption.points_reversed,
            current_points=(redemption.balance_after if current_points is None
                            else current_points),
            replayed=replayed)

    # -- reversal

    def revert(self, identifier: str | None, transaction_number: str, points: object = None,
               *, staff: str | None = None, reason: str | None = None) -> ReversalResult:
        """Give back all the points redeemed on a transaction number (810, 811, 812, 814).

        `points`, when given, must be what is left to revert (810 otherwise); None reverts
        all of it. `identifier` None: the member who redeemed on the transaction number."""
        amount = None if points is None or points == "" else rules.parse_points(points)
        ident = None if identifier is None else self.identify(identifier)
        txn = _text(transaction_number, "the transaction number", code=811)

        def unit(session: Session) -> ReversalResult:
            if ident is None:
                member = ledger.lock(session, self._owner(session, txn))
            else:
                member = ledger.find_member(session, ident, lock=True)
            redemptions = session.exec(select(Redemption).where(
                Redemption.member_id == member.id, Redemption.transaction_number == txn)
                .order_by(col(Redemption.created_at))).all()
            if not redemptions:
                bill = session.get(Bill, txn)
                if bill is not None and bill.member_id == member.id:
                    raise PointsError(814)
                raise PointsError(811)
            remaining = sum(r.points - r.points_reversed for r in redemptions)
            if remaining == 0:
                raise PointsError(812)
            if amount is not None and amount != remaining:
                raise PointsError(810, f"{remaining} points can be reverted on {txn}, "
                                       f"not {amount}", remaining=remaining)
            return self._reverse(session, member, [(r, r.points - r.points_reversed)
                                                   for r in redemptions if r.points_reversed
                                                   < r.points], "revert", staff, reason)
        return self.db.run(unit)

    @staticmethod
    def _owner(session: Session, txn: str) -> int:
        """The id of the one member who redeemed on `txn`; 811 for nobody or several."""
        owners = session.exec(select(Redemption.member_id).where(
            Redemption.transaction_number == txn).distinct().limit(2)).all()
        if len(owners) != 1:
            raise PointsError(811, "several members redeemed on this transaction number; "
                                   "name the member" if owners else "")
        return owners[0]

    def member_of_transaction(self, transaction_number: str) -> MemberView:
        """The member who redeemed on `transaction_number`, for a revert that names only the
        transaction; 811 when nobody did, or when several members did (name the member)."""
        txn = _text(transaction_number, "the transaction number", code=811)

        def unit(session: Session) -> MemberView:
            member = session.get(Member, self._owner(session, txn))
            assert member is not None
            return view(member)
        return self.db.run(unit, write=False)

    def reverse(self, redemption: str, points: object = None, *, identifier: str | None = None,
                staff: str | None = None, reason: str | None = None) -> ReversalResult:
        """Reverse a redemption by its id or external reference, all or part of what is left
        (901, 902, 904, 3802)."""
        key = (redemption or "").strip()
        if not key or len(key) > 128 or not set(key) <= _REFERENCE_CHARS:
            raise PointsError(901)
        amount = None if points is None or points == "" else _points_or(points, 901)
        ident = None
        if identifier:
            try:
                ident = self.identify(identifier)
            except PointsError:
                raise PointsError(904) from None

        def unit(session: Session) -> ReversalResult:
            found = session.get(Redemption, key) or session.exec(select(Redemption).where(
                Redemption.external_reference == key)).first()
            if found is None:
                raise PointsError(902)
            member = ledger.lock(session, found.member_id)
            if ident is not None and ledger.find_member(session, ident).id != member.id:
                raise PointsError(904)
            session.refresh(found)
            remaining = found.points - found.points_reversed
            if remaining == 0:
                raise PointsError(3802)
            wanted = remaining if amount is None else amount
            if wanted > remaining:
                raise PointsError(901, f"only {remaining} points of {found.id} are left to "
                                       "reverse", remaining=remaining)
            return self._reverse(session, member, [(found, wanted)], "reverse", staff, reason)
        return self.db.run(unit)

    def _reverse(self, session: Session, member: Member, parts: list[tuple[Redemption, int]],
                 kind: str, staff: str | None, reason: str | None) -> ReversalResult:
        now = self.clock()
        staff, reason = _storable(staff or "") or None, _storable(reason or "") or None
        reversal_ids = []
        for redemption, points in parts:
            reversal = Reversal(id=new_id("V"), redemption_id=redemption.id,
                                member_id=redemption.member_id, points=points, kind=kind,
                                staff=staff, reason=reason[:500] if reason else None,
                                created_at=now)
            redemption.points_reversed += points
            session.add(redemption)
            session.add(reversal)
            ledger.post(session, member, Source.REVERSAL, points, reference=reversal.id,
                        now=now, staff=staff, reason=reason[:500] if reason else None)
            reversal_ids.append(reversal.id)
            if staff:
                session.add(StaffAction(
                    staff=staff[:128], action=kind, target=redemption.id, allowed=True,
                    detail=(f"{points} points" + (f": {reason}" if reason else ""))[:500],
                    created_at=now))
        return ReversalResult(tuple(reversal_ids), tuple(r.id for r, _ in parts),
                              sum(p for _, p in parts), member.current_points)

    # -- points coming in

    def earn(self, identifier: str, bill_number: str, amount: object) -> Issued:
        """Loyalty Manager: a purchase on a bill raises lifetime purchases and issues points
        at EARN_RATE; the same bill twice issues once."""
        ident = self.identify(identifier)
        bill_no = _text(bill_number, "the bill number", code=811)
        money = _money(amount, "the purchase amount")
        if money <= 0:
            raise InputError("the purchase amount must be more than zero")
        points = int(money * self.settings.earn_rate)
        if points > limits.MAX_OPERATION_POINTS:
            raise InputError(f"a purchase of {money:,} would issue {points:,} points; one "
                             f"earning issues at most {limits.MAX_OPERATION_POINTS:,}")

        def unit(session: Session) -> Issued:
            member = ledger.find_member(session, ident, lock=True)
            bill = session.get(Bill, bill_no)
            if bill is not None:
                if bill.member_id == member.id and Decimal(bill.amount) == money:
                    return Issued(bill.points, member.current_points, bill_no, replayed=True)
                raise InputError(f"bill {bill_no} was already recorded for another purchase")
            if member.customer_type == CustomerType.CAMPAIGN:
                raise PointsError(686)
            if member.customer_type != CustomerType.LOYALTY:
                raise PointsError(881)
            now = self.clock()
            assert member.id is not None
            session.add(Bill(bill_number=bill_no, member_id=member.id, amount=money,
                             points=points, created_at=now))
            purchases = Decimal(member.lifetime_purchases) + money
            why = limits.money_over_balance(purchases)
            if why is not None:
                raise InputError(f"member {member.id}: {why}; nothing was issued")
            member.lifetime_purchases = purchases
            ledger.post(session, member, Source.EARN, points, lifetime_points=points,
                        reference=bill_no, now=now)
            return Issued(points, member.current_points, bill_no)
        return self.db.run(unit, transient_code=889)

    def goodwill(self, identifier: str, points: object, *, reason: str, staff: str) -> Issued:
        """Member Care: goodwill points, recorded with who gave them and why."""
        amount = rules.parse_points(points, limit=limits.MAX_OPERATION_POINTS)
        ident = self.identify(identifier)
        why = _storable(reason or "").strip()
        who = _storable(staff or "").strip()
        if not why or len(why) > 500:
            raise InputError("goodwill needs a reason (up to 500 characters)")
        if not who or len(who) > 128:
            raise InputError("goodwill needs the name or id of the staff member giving it")

        def unit(session: Session) -> Issued:
            member = ledger.find_member(session, ident, lock=True)
            reference = new_id("G")
            ledger.post(session, member, Source.GOODWILL, amount, lifetime_points=amount,
                        reference=reference, now=self.clock(), staff=who, reason=why)
            session.add(StaffAction(staff=who, action="goodwill", target=ident.value,
                                    allowed=True, detail=f"{amount} points: {why}"[:500],
                                    created_at=self.clock()))
            return Issued(amount, member.current_points, reference)
        return self.db.run(unit, transient_code=889)

    def import_file(self, path: str | Path) -> ImportResult:
        file = Path(path)
        try:
            data = file.read_bytes()
        except OSError as error:
            raise InputError(f"cannot read {file}: {error.strerror}") from None
        return self.import_csv(data, filename=file.name)

    def import_csv(self, data: bytes, filename: str = "import.csv") -> ImportResult:
        """Data Import: every row is checked first; one bad row and nothing changes. The
        same file twice imports once. New members open with the row's balances; for a
        member who exists, the profile is updated and the row's points are added.

        The file is read and checked before the write transaction begins; inside it, the
        rows are matched to members and written in a few bulk statements (a lookup per
        500 identifiers, one insert of the new members, then the ledger's `post_many`:
        the entries, and each member's totals and profile in one update), so the write
        lock is held only for that."""
        digest = hashlib.sha256(data).hexdigest()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected([RowError(1, "the file is not UTF-8 text")]) from None
        rows, errors = self._parse_import(text)
        if errors:
            raise ImportRejected(errors)
        name = _storable(filename)[:255]

        def unit(session: Session) -> ImportResult:
            done = session.exec(select(ImportBatch).where(ImportBatch.digest == digest)).first()
            if done is not None:
                return ImportResult(done.rows, 0, 0, 0, already_imported=True,
                                    batch_id=done.id)
            plan = self._match_import(session, rows)
            if plan.problems:
                raise ImportRejected(plan.problems)
            now = self.clock()
            batch = ImportBatch(digest=digest, filename=name, rows=len(rows), created_at=now)
            session.add(batch)
            session.flush()
            connection = session.connection()
            members = ledger.MEMBERS
            member_of = dict(plan.matches)
            balances = dict(plan.balances)
            if plan.new:
                # One executemany, then their ids by one identifier each (RETURNING in
                # parameter order would insert one row per statement on SQLite).
                executemany(connection, insert(members), [
                    {**profile, "current_points": 0, "lifetime_points": 0, "created_at": now}
                    for _, profile in plan.new])
                first = {row.line: row.identifiers[0] for row in rows
                         if row.line not in plan.matches}
                inserted = {key: row["id"] for key, row in ledger.find_members(
                    session, first.values(), ids_only=True).items()}
                member_of.update({line: inserted[i.kind, i.value] for line, i in first.items()})
                balances.update({member_id: (0, 0) for member_id in inserted.values()})
            ledger.post_many(session, Source.IMPORT, [
                ledger.Posting(member_of[row.line], row.current_points, row.lifetime_points,
                               f"import:{batch.id}:{row.line}")
                for row in rows if row.current_points or row.lifetime_points],
                balances=balances, now=now, columns=plan.profiles)
            return ImportResult(len(rows), len(plan.new), len(plan.matches),
                                sum(row.current_points for row in rows), batch_id=batch.id)
        return self.db.run(unit, transient_code=889)

    def _parse_import(self, text: str) -> tuple[list[_ImportRow], list[RowError]]:
        reader = csv.reader(io.StringIO(text))
        errors: list[RowError] = []
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            return [], [RowError(1, "the file is empty")]
        except csv.Error as error:
            return [], [RowError(1, f"not CSV: {error}")]
        missing = [c for c in IMPORT_COLUMNS if c not in header]
        if missing:
            return [], [RowError(1, f"missing column(s): {', '.join(missing)}")]
        rows: list[_ImportRow] = []
        seen: dict[tuple[str, str], int] = {}
        line = 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                errors.append(RowError(reader.line_num, f"not CSV: {error}"))
                break
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                errors.append(RowError(line, f"{len(values)} fields, expected {len(header)}"))
                continue
            try:
                row = self._import_row(line, dict(zip(header, values, strict=True)))
            except (PointsError, InputError) as error:
                reason = error.detail or error.status.message if isinstance(
                    error, PointsError) else str(error)
                errors.append(RowError(line, reason))
                continue
            clash = [f"{i.kind.value} {i.value} is also on line {seen[(i.kind, i.value)]}"
                     for i in row.identifiers if (i.kind, i.value) in seen]
            if clash:
                errors.append(RowError(line, "; ".join(clash)))
                continue
            seen.update({(i.kind, i.value): line for i in row.identifiers})
            rows.append(row)
        if not rows and not errors:
            errors.append(RowError(1, "the file has no rows"))
        return rows, errors

    def _import_row(self, line: int, fields: dict[str, str]) -> _ImportRow:
        if any("\x00" in value for value in fields.values()):
            raise InputError("the row contains a NUL character")
        region = self.settings.default_phone_region
        identifiers: list[Identifier] = []
        # Each column says what its value is: nothing is guessed (an external id may be a
        # number).
        for kind in (Kind.MOBILE, Kind.EMAIL, Kind.EXTERNAL_ID):
            raw = fields[kind.value].strip()
            if not raw:
                continue
            try:
                identifiers.append(parse_as(kind, raw, region))
            except PointsError:
                raise InputError(f"{kind.value} {raw!r} is not a valid {kind.value}") from None
        if not identifiers:
            raise InputError("a row needs a mobile, an email or an external id")
        name = fields["name"].strip()
        if len(name) > 200:
            raise InputError("name is longer than 200 characters")
        kind_ = fields["type"].strip().lower()
        if kind_ and kind_ not in set(CustomerType):
            raise InputError(f"type {kind_!r} is not one of "
                             f"{', '.join(t.value for t in CustomerType)}")
        fraud = fields["fraud_status"].strip().upper()
        if fraud and fraud not in set(FraudStatus):
            raise InputError(f"fraud_status {fraud!r} is not one of "
                             f"{', '.join(f.value for f in FraudStatus)}")
        current = _count(fields["current_points"], "current_points")
        lifetime = _count(fields["lifetime_points"], "lifetime_points")
        if current > lifetime:
            raise InputError(f"current_points ({current}) exceed lifetime_points ({lifetime})")
        purchases = _money(fields["lifetime_purchases"] or "0", "lifetime_purchases")
        if purchases < 0:
            raise InputError("lifetime_purchases must not be negative")
        return _ImportRow(line, tuple(identifiers), name, kind_, fraud, current, lifetime,
                          purchases)

    @staticmethod
    def _match_import(session: Session, rows: list[_ImportRow]) -> _ImportPlan:
        """Which member each row is (all looked up at once, row-locked), each member's
        profile after every row is applied in file order, and the rows that cannot be
        written: identifiers of different members, an identifier the member already holds
        another value of, or a total past `core.limits`."""
        found = ledger.find_members(session, (i for row in rows for i in row.identifiers),
                                    lock=True)
        plan = _ImportPlan()
        totals: dict[int, tuple[int, int, Decimal]] = {}
        for row in rows:
            hits = {found[key]["id"]: found[key] for key in
                    ((i.kind, i.value) for i in row.identifiers) if key in found}
            if len(hits) > 1:
                plan.problems.append(RowError(row.line, "its identifiers belong to different "
                                                        "members"))
                continue
            if hits:
                member = next(iter(hits.values()))
                held = [(i.kind.value, member[i.kind.value]) for i in row.identifiers
                        if member[i.kind.value] and member[i.kind.value] != i.value]
                if held:
                    plan.problems.append(RowError(row.line, f"member {member['id']} already "
                                                            f"has {held[0][0]} {held[0][1]}"))
                    continue
                member_id: int = member["id"]
                plan.matches[row.line] = member_id
                if member_id not in plan.profiles:
                    plan.profiles[member_id] = {k: member[k] for k in _PROFILE}
                    plan.balances[member_id] = (member["current_points"],
                                                member["lifetime_points"])
                    totals[member_id] = (*plan.balances[member_id],
                                         Decimal(member["lifetime_purchases"]))
                profile = plan.profiles[member_id]
                current, lifetime, purchases = totals[member_id]
                who = f"member {member_id}"
            else:
                profile = {"mobile": None, "email": None, "external_id": None, "name": "",
                           "customer_type": CustomerType.LOYALTY.value,
                           "fraud_status": FraudStatus.NONE.value,
                           "lifetime_purchases": Decimal(0)}
                plan.new.append((row.line, profile))
                current, lifetime, purchases = 0, 0, Decimal(0)
                member_id, who = 0, "the new member"
            for ident in row.identifiers:
                profile[ident.kind.value] = ident.value
            profile["name"] = row.name or profile["name"]
            # A blank type or fraud status keeps what the member has (a new member's
            # defaults: loyalty, NONE); a top-up file must not clear a fraud flag.
            profile["customer_type"] = row.customer_type or profile["customer_type"]
            profile["fraud_status"] = row.fraud_status or profile["fraud_status"]
            current += row.current_points
            lifetime += row.lifetime_points
            purchases += row.lifetime_purchases
            profile["lifetime_purchases"] = purchases
            why = (limits.points_over_balance(current, lifetime)
                   or limits.money_over_balance(purchases))
            if why is not None:
                plan.problems.append(RowError(row.line, f"{who}: {why}"))
            if member_id:
                totals[member_id] = (current, lifetime, purchases)
        return plan

    # -- staff audit

    def record_staff_action(self, staff: str, action: str, target: str, allowed: bool,
                            detail: str = "") -> None:
        self._audit_staff(staff, action, target, allowed, detail)

    def _audit_staff(self, staff: str, action: str, target: str, allowed: bool,
                     detail: str) -> None:
        line = StaffAction(staff=_storable(staff)[:128], action=_storable(action)[:32],
                           target=_storable(target)[:254], allowed=allowed,
                           detail=_storable(detail)[:500], created_at=self.clock())
        self.db.run(lambda s: s.add(line))

    def staff_actions(self, limit: int = 50) -> list[StaffLine]:
        def unit(session: Session) -> list[StaffLine]:
            lines = session.exec(select(StaffAction).order_by(col(StaffAction.id).desc())
                                 .limit(limit)).all()
            return [StaffLine(a.staff, a.action, a.target, a.allowed, a.detail, a.created_at)
                    for a in lines]
        return self.db.run(unit, write=False)

    def member_count(self) -> int:
        return self.db.run(lambda s: s.exec(select(func.count()).select_from(Member)).one(),
                           write=False)


def _fingerprint(member_id: int, points: int, transaction_number: str) -> str:
    """What a redemption request asked for: the member (not how they were named), the
    points and the transaction number."""
    return hashlib.sha256(f"member:{member_id}|{points}|{transaction_number}".encode()
                          ).hexdigest()


def _storable(text: str) -> str:
    """Free text as every database keeps it: PostgreSQL refuses NUL characters, and a lone
    surrogate cannot be encoded (it becomes "?")."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _points_or(value: object, code: int) -> int:
    try:
        return rules.parse_points(value)
    except PointsError:
        raise PointsError(code) from None


def _count(value: str, what: str) -> int:
    text = value.strip() or "0"
    most = limits.MAX_OPERATION_POINTS
    if not text.isdecimal() or len(text) > 15 or int(text) > most:
        raise InputError(f"{what} {value!r} is not a whole number of points from 0 to "
                         f"{most:,}")
    return int(text)


_AMOUNT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")
_EXPONENT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def _money(value: object, what: str) -> Decimal:
    """An amount of money as people write it: digits, commas between thousands if wanted,
    at most two decimals (2500, 2,500.50). Exponent notation (1e3), NaN and Infinity are
    refused, each with the reason."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        text = format(value, "f") if isinstance(value, int) or value.is_finite() else "nan"
    else:
        text = str(value).strip().replace(",", "")
    if not _AMOUNT.fullmatch(text):
        if _EXPONENT.fullmatch(text):
            raise InputError(f"{what} {value!r} is in exponent notation: write it in digits "
                             "(1000.00, not 1e3)")
        raise InputError(f"{what} {value!r} is not an amount of money: write digits with at "
                         "most two decimals (2500.00)")
    money = Decimal(text)
    if money.as_tuple().exponent < -2:  # type: ignore[operator]
        raise InputError(f"{what} {value!r} has more than two decimals")
    if abs(money) >= limits.MAX_OPERATION_MONEY:
        raise InputError(f"{what} {value!r} is not below {limits.MAX_OPERATION_MONEY:,}")
    return money.quantize(Decimal("0.01"))


__all__ = ["Balance", "CodeIssued", "CodeToDeliver", "HistoryItem", "ImportRejected",
           "ImportResult", "Issued", "MemberView", "PointsService", "Redeemable",
           "RedemptionResult", "ReversalResult", "RowError"]
