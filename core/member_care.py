"""Member care for staff: what staff see of a member, and what they may correct.

- `report`: the member's balance, the linked chat account (id and name), the latest
  validation code's state (never the code: issued at, expires at, attempts and sends
  left), the fraud status with its last change by staff, and the latest ledger entries
  of every kind with who and why where known. One read serves `/member` in the chat and
  `loyalty-bot member`.
- `unlink`: the member's chat account loses the member (a lost phone): its chat is back
  at the start, a pending validation code is voided, and the member must share their
  number again.
- `set_fraud`: a fraud status from the known ones (`core.settings.FRAUD_STATUSES`),
  recorded with who and why in the staff audit.

Session-level functions take a `Work` and the member (row-locked by the caller for the
writes); `MemberCare` holds the public methods of `PointsService`.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import delete
from sqlmodel import Session, col, select

from core import codes, ledger, reads, staff_audit
from core.models import (
    Bill,
    ChatLink,
    ChatState,
    CodeState,
    ImportBatch,
    LedgerEntry,
    Member,
    Redemption,
    Reversal,
    Source,
)
from core.results import CodeView, FraudChange, LedgerLine, LinkedAccount, MemberReport, Unlinked
from core.settings import FRAUD_STATUSES
from core.status import InputError
from core.text import storable
from core.work import Engine, Work

REPORT_ENTRIES = 10  # the latest ledger entries a report shows (and the latest of each kind)


def linked(work: Work, member_id: int) -> LinkedAccount | None:
    link = work.session.exec(select(ChatLink).where(ChatLink.member_id == member_id)).first()
    if link is None:
        return None
    return LinkedAccount(link.channel_user, link.display_name, link.created_at)


def code_state(work: Work, member_id: int) -> CodeView | None:
    """The member's latest validation code as staff may see it, or None (never sent)."""
    record = codes.latest(work.session, member_id)
    if record is None:
        return None
    settings = work.settings
    state = record.state
    if state == CodeState.ACTIVE:
        state = "pending" if record.expires_at > work.now else "expired"
    return CodeView(record.points, str(state), record.issued_at, record.expires_at,
                     max(0, settings.otp_max_attempts - record.attempts),
                     sends_left(work, record.member_id, record.sends))


def sends_left(work: Work, member_id: int, sends: int) -> int:
    """How many more times a code may be sent now: the fewer of what the code has left
    (OTP_MAX_SENDS) and what the period has left (OTP_PERIOD_MAX_SENDS)."""
    settings = work.settings
    lately: int = work.session.exec(select(codes.sent_lately(settings, member_id, work.now))).one()
    return max(0, min(settings.otp_max_sends - sends, settings.otp_period_max_sends - lately))


def fraud_change(work: Work, member_id: int) -> FraudChange | None:
    """The member's fraud status as last set by staff, or None (never set by staff)."""
    for line in staff_audit.lines(work, 20, member_id=member_id, action="fraud"):
        if line.refused:
            continue
        before, _, rest = line.detail.partition(" -> ")
        after, _, why = rest.partition(": ")
        return FraudChange(line.staff, line.at, before, after, why)
    return None


def entries(work: Work, member_id: int, limit: int = REPORT_ENTRIES) -> tuple[LedgerLine, ...]:
    """The latest `limit` ledger entries, and the latest of each kind that is not among
    them, newest first, each with who and why where known."""
    session = work.session
    newest = select(LedgerEntry).where(LedgerEntry.member_id == member_id).order_by(
        col(LedgerEntry.id).desc())
    found = {e.id: e for e in session.exec(newest.limit(limit)).all()}
    for source in Source:
        if not any(e.source == source for e in found.values()):
            last = session.exec(newest.where(LedgerEntry.source == source).limit(1)).first()
            if last is not None:
                found[last.id] = last
    return tuple(_line(session, found[key]) for key in sorted(found, key=lambda k: -(k or 0)))


def _line(session: Session, entry: LedgerEntry) -> LedgerLine:
    line = LedgerLine(entry.created_at, entry.source, entry.points, entry.reference,
                      entry.staff, entry.reason)
    if entry.source == Source.REDEMPTION:
        redemption = session.get(Redemption, entry.reference)
        if redemption is not None:
            return replace(line, reason=redemption.notes or None,
                         transaction_number=redemption.transaction_number)
    elif entry.source == Source.REVERSAL:
        reversal = session.get(Reversal, entry.reference)
        if reversal is not None:
            redemption = session.get(Redemption, reversal.redemption_id)
            return replace(line, redemption_id=reversal.redemption_id,
                         transaction_number=redemption.transaction_number if redemption
                         else None)
    elif entry.source == Source.IMPORT:
        batch_id = entry.reference.split(":")[1] if entry.reference.count(":") == 2 else ""
        batch = session.get(ImportBatch, int(batch_id)) if batch_id.isdigit() else None
        if batch is not None:
            return replace(line, reason=batch.filename)
    elif entry.source == Source.EARN:
        bill = session.get(Bill, entry.reference)
        if bill is not None:
            return replace(line, transaction_number=bill.bill_number)
    return line


def report(work: Work, member: Member) -> MemberReport:
    """What staff see of `member`."""
    assert member.id is not None
    return MemberReport(reads.balance(work, member), linked(work, member.id),
                        code_state(work, member.id), fraud_change(work, member.id),
                        entries(work, member.id))


def unlink(work: Work, member: Member, staff: str, target: str) -> Unlinked:
    """Unlink the member's chat account (row-locked member): the chat user loses the
    member and its chat state, a pending validation code is voided; the member must share
    their number again. Recorded in the staff audit, also when none was linked."""
    assert member.id is not None
    session = work.session
    account = linked(work, member.id)
    if account is not None:
        latest = codes.latest(session, member.id)
        if latest is not None and latest.id is not None:
            codes.void(session, latest.id)
        session.exec(delete(ChatState).where(col(ChatState.channel_user) == account.user))
        session.exec(delete(ChatLink).where(col(ChatLink.channel_user) == account.user))
    detail = (f"unlinked chat user {account.user}" if account is not None
              else "no chat account was linked: nothing changed")
    staff_audit.record(work, staff, "unlink", target, True, detail, member_id=member.id)
    return Unlinked(reads.view(member), account)


def fraud_status(value: str) -> str:
    """A fraud status as typed, one of `FRAUD_STATUSES` (any case)."""
    status = value.strip().upper()
    if status not in FRAUD_STATUSES:
        raise InputError(f"unknown fraud status {value.strip()[:40]!r}; known: "
                         f"{', '.join(FRAUD_STATUSES)}")
    return status


def staff_reason(value: str | None, what: str) -> str:
    why = storable(value or "").strip()
    if not why or len(why) > 400:
        raise InputError(f"{what} needs a reason (up to 400 characters)")
    return why


def set_fraud(work: Work, member: Member, status: str, reason: str, staff: str,
              target: str) -> FraudChange:
    """Set the member's fraud status (row-locked member; `status` and `reason` checked),
    recorded with who and why in the staff audit."""
    before = member.fraud_status
    member.fraud_status = status
    work.session.add(member)
    staff_audit.record(work, staff, "fraud", target, True, f"{before} -> {status}: {reason}",
                       member_id=member.id)
    return FraudChange(staff, work.now, before, status, reason)


class MemberCare(Engine):
    """Member care for staff, the operations of `PointsService`: the member report,
    unlinking a chat account, fraud status (the staff log is `StaffAudit`'s)."""

    def member_report(self, identifier: str) -> MemberReport:
        ident = self.identify(identifier)
        return self.db.run(lambda s: report(self.work(s), ledger.find_member(s, ident)),
                           write=False)

    def unlink_member(self, identifier: str, *, staff: str) -> Unlinked:
        ident = self.identify(identifier)
        who = _staff(staff)
        return self.db.run(lambda s: unlink(self.work(s), ledger.find_member(
            s, ident, lock=True), who, ident.value))

    def set_fraud_status(self, identifier: str, status: str, *, reason: str,
                         staff: str) -> FraudChange:
        ident = self.identify(identifier)
        wanted, why, who = fraud_status(status), staff_reason(reason, "a fraud status"), \
            _staff(staff)
        return self.db.run(lambda s: set_fraud(self.work(s), ledger.find_member(
            s, ident, lock=True), wanted, why, who, ident.value))


def _staff(value: str | None) -> str:
    who = storable(value or "").strip()
    if not who or len(who) > 128:
        raise InputError("say who does it (--staff): a name or id of up to 128 characters")
    return who
