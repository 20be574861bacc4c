"""The redemption flow: whether points can be redeemed (isredeemable), a validation code
for an amount (issued in a transaction, delivered outside it), and the redemption itself,
idempotent on the external reference number.

Session-level: `check`, `issue_code`, `redeem` (parsed values; the member row-locked by the
caller where it says so). A comparison of a validation code may raise `WrongCode` after
counting the attempt: run them with ``keep_writes_on=(WrongCode,)``. `Redeeming` holds the
public methods, which parse text as a person typed it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from core import codes, ledger, outbox, rules
from core.delivery import CodeMessage, DeliveryFailed
from core.identifiers import mask
from core.models import Member, Redemption, Source
from core.results import CodeIssued, CodeToDeliver, Redeemable, RedemptionResult
from core.status import PointsError, Reason, WrongCode
from core.text import reference, storable
from core.work import Engine, Work, new_id

if TYPE_CHECKING:
    from core.service import PointsService

log = logging.getLogger(__name__)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def check(work: Work, member: Member, points: int, code: str | None = None) -> Redeemable:
    """Whether `points` can be redeemed by `member` now (isredeemable); a given code is
    compared (a wrong one counts: `WrongCode`), not used up."""
    validate = None
    if code is not None:
        def validate() -> None:
            assert code is not None
            codes.verify(work.session, work.settings, member, points, code, work.now)
    rules.check(work.settings, member, points, rules.Stage.CHECK, validate)
    return Redeemable(points, work.settings.points_value(points))


def issue_code(work: Work, member: Member, points: int,
               reply_to: str | None = None) -> CodeToDeliver:
    """Check `points` for `member` (row-locked by the caller) as isredeemable does, then
    issue (or resend) the code for them: not sent yet (`Redeeming.deliver_validation_code`
    sends it, outside any transaction)."""
    settings = work.settings
    rules.check(settings, member, points, rules.Stage.CHECK, None)
    issued = codes.issue(work.session, settings, member, points, work.now)
    assert issued.record.id is not None and member.id is not None
    text = CodeMessage(member.id, member.name, member.mobile, member.email, issued.code,
                       points, settings.points_value(points),
                       max(1, settings.otp_ttl_seconds // 60), reply_to)
    return CodeToDeliver(text, issued.record.id, issued.resent,
                         settings.otp_max_sends - issued.record.sends, issued.record.expires_at)


def redeem(work: Work, member: Member, points: int, code: str | None, *,
           transaction_number: str, external_reference: str, notes: str = "",
           redemption_time: datetime | None = None,
           skip_validation: bool = False) -> RedemptionResult:
    """Redeem `points` of `member` (row-locked by the caller) against a bill. The same
    external reference number again for the same member, points and transaction number is
    answered from the first redemption (a replay); for another request, 817.
    `skip_validation`: no code is needed even with VALIDATION_CODE_REQUIRED (a till allowed
    to skip it: `core.tills.Tills.skips_validation`); a code given is still compared."""
    session, settings = work.session, work.settings
    assert member.id is not None
    txn = transaction_number
    prior = session.exec(select(Redemption).where(
        Redemption.external_reference == external_reference)).first()
    if prior is not None:
        # The same request is the same member, amount and transaction number, however the
        # member was named. Compared on the row's columns, so rows written when the
        # fingerprint hashed the identifier's text are still recognised.
        if (prior.member_id, prior.points, prior.transaction_number) == (member.id, points, txn):
            return _result(prior, replayed=True, current_points=member.current_points)
        raise PointsError(817, "this external reference number was already used for a "
                               "different redemption", reason=Reason.REFERENCE_CONFLICT)
    # REDEMPTION_MAX_POINTS caps a transaction: what this member already redeemed on it,
    # net of reversals, counts (the member's row is locked, so this stays true).
    already = session.exec(select(func.coalesce(
        func.sum(col(Redemption.points) - col(Redemption.points_reversed)), 0)).where(
        Redemption.member_id == member.id, Redemption.transaction_number == txn)).one()
    record = None
    validate: Callable[[], None] | None = None
    if code is not None:
        def validate() -> None:
            nonlocal record
            assert code is not None
            record = codes.verify(session, settings, member, points, code, work.now)
    elif settings.validation_code_required and not skip_validation:
        def validate() -> None:
            raise PointsError(824)
    rules.check(settings, member, points, rules.Stage.REDEEM, validate,
                already_redeemed=int(already))
    redemption = Redemption(
        id=new_id("R"), member_id=member.id, points=points,
        redeemed_value=settings.points_value(points),
        balance_after=member.current_points - points, transaction_number=txn,
        external_reference=external_reference,
        fingerprint=_fingerprint(member.id, points, txn), notes=notes,
        redemption_time=redemption_time or work.now, created_at=work.now)
    session.add(redemption)
    ledger.post(session, member, Source.REDEMPTION, -points, reference=redemption.id,
                now=work.now)
    if record is not None:
        codes.use(session, record, redemption.id)
    return _result(redemption)


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


def _fingerprint(member_id: int, points: int, transaction_number: str) -> str:
    """What a redemption request asked for: the member (not how they were named), the
    points and the transaction number."""
    return hashlib.sha256(f"member:{member_id}|{points}|{transaction_number}".encode()
                          ).hexdigest()


def _code_text(validation_code: str | None) -> str | None:
    """A blank code is no code: it must not count as a wrong attempt."""
    return (validation_code or "").strip() or None


class Redeeming(Engine):
    """The redemption operations of `PointsService`."""

    def is_redeemable(self, identifier: str, points: object,
                      validation_code: str | None = None) -> Redeemable:
        """Whether `points` can be redeemed now; a given code is checked (not used up)."""
        amount = rules.parse_points(points)
        ident = self.identify(identifier)
        code = _code_text(validation_code)

        def unit(session: Session) -> Redeemable:
            return check(self.work(session), ledger.find_member(session, ident), amount, code)
        # A wrong code counts as an attempt, so a check with a code writes.
        return self.db.run(unit, write=code is not None, keep_writes_on=(WrongCode,))

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

        def unit(session: Session) -> CodeToDeliver:
            member = ledger.find_member(session, ident, lock=True)
            return issue_code(self.work(session), member, amount, reply_to)
        return self.db.run(unit)

    def send_validation_code(self, identifier: str, points: object) -> CodeIssued:
        """`issue_validation_code` through the outbox (`core.outbox`), as the chat sends
        codes: the code and its delivery row are written in one transaction, sent after it
        commits; a worker that dies in between leaves the delivery to any worker's sweeper
        (the bot's), so the code still goes out. 860 when no channel delivered it."""
        amount = rules.parse_points(points)
        ident = self.identify(identifier)

        def unit(session: Session) -> int:
            work = self.work(session)
            member = ledger.find_member(session, ident, lock=True)
            issued = issue_code(work, member, amount)
            return outbox.enqueue(work, issued.record_id, resent=issued.resent,
                                  channel_user=None, chat=None, token=None)
        delivery_id = self.db.run(unit)
        sent = outbox.send(cast("PointsService", self), delivery_id)
        if sent is None or (sent.issued is None and sent.refusal is None):
            raise PointsError(860, "the code was no longer wanted when it was to be sent",
                              reason=Reason.DELIVERY)
        if sent.refusal is not None:
            raise sent.refusal
        assert sent.issued is not None
        return sent.issued

    def send_overdue_codes(self) -> int:
        """Send the validation codes a worker took and never finished (it died between
        commit and sending, `core.outbox.LEASE` ago or more); how many went out. Every
        entry point without a chat to tell (the HTTP API) sweeps with this now and then."""
        sent = 0
        for delivery_id, _ in outbox.overdue(self.db, self.clock()):
            done = outbox.send(cast("PointsService", self), delivery_id, take_over=True)
            sent += done is not None and done.issued is not None
        return sent

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
                              reason=Reason.DELIVERY)
        return CodeIssued(text.points, text.value, tuple(channels), tuple(destinations),
                          code.resent, code.sends_left, code.expires_at)

    def redeem(self, identifier: str, points: object, validation_code: str | None, *,
               transaction_number: str, external_reference: str, notes: str = "",
               redemption_time: str | datetime | None = None,
               skip_validation: bool = False) -> RedemptionResult:
        """Redeem `points` against a bill; idempotent on `external_reference`.
        `skip_validation` (decided by `Tills.skips_validation`): no code needed."""
        amount = rules.parse_points(points)
        ident = self.identify(identifier)
        when = self._redemption_time(redemption_time)
        txn = reference(transaction_number, "the transaction number", code=811)
        ref = reference(external_reference, "the external reference number", code=817,
                        max_length=128)
        note = storable(notes or "").strip()[:500]
        code = _code_text(validation_code)

        def unit(session: Session) -> RedemptionResult:
            member = ledger.find_member(session, ident, lock=True)
            return redeem(self.work(session), member, amount, code, transaction_number=txn,
                          external_reference=ref, notes=note, redemption_time=when,
                          skip_validation=skip_validation)
        try:
            return self.db.run(unit, keep_writes_on=(WrongCode,))
        except SQLAlchemyError as error:
            # Not transient (those answer 815): nothing was written. The error id is what
            # the caller is shown and what staff search the log for.
            error_id = new_id("E")
            log.error("redemption failed on a database error, error id %s (reference %s)",
                      error_id, ref, exc_info=True)
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

