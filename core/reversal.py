"""Giving redeemed points back: a revert (all that is left on a transaction number) and a
reversal (all or part of one redemption, by its id or external reference number).

Session-level: `revert`, `reverse`, `member_of_transaction`. `Reversing` holds the public
methods, which parse text as a person typed it. A reversal made by staff writes its staff
audit line in the same transaction.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from core import ledger, rules, staff_audit
from core.identifiers import Identifier
from core.models import Bill, Member, Redemption, Reversal, Source
from core.reads import view
from core.results import MemberView, ReversalResult
from core.status import PointsError
from core.text import REFERENCE_CHARS, points_or, reference, storable
from core.work import Engine, Work, new_id


def revert(work: Work, member: Member | None, transaction_number: str,
           points: int | None = None, *, staff: str | None = None,
           reason: str | None = None) -> ReversalResult:
    """Give back all the points `member` (row-locked by the caller; None: the one member
    who redeemed on the transaction number, locked here) redeemed on `transaction_number`
    (810, 811, 812, 814). `points`, when given, must be what is left to revert."""
    session, txn = work.session, transaction_number
    if member is None:
        member = ledger.lock(session, _owner(session, txn))
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
    if points is not None and points != remaining:
        raise PointsError(810, f"{remaining} points can be reverted on {txn}, not {points}",
                          remaining=remaining)
    return _reverse(work, member, [(r, r.points - r.points_reversed) for r in redemptions
                                   if r.points_reversed < r.points], "revert", staff, reason)


def reverse(work: Work, redemption: str, points: int | None = None, *,
            identifier: Identifier | None = None, staff: str | None = None,
            reason: str | None = None) -> ReversalResult:
    """Reverse the redemption with id or external reference number `redemption`, all
    (`points` None) or part of what is left (901, 902, 3802); its member is row-locked
    here, and must be the one `identifier` names when given (904)."""
    session = work.session
    found = find_redemption(session, redemption)
    if found is None:
        raise PointsError(902)
    member = ledger.lock(session, found.member_id)
    if identifier is not None and ledger.find_member(session, identifier).id != member.id:
        raise PointsError(904)
    session.refresh(found)
    remaining = found.points - found.points_reversed
    if remaining == 0:
        raise PointsError(3802)
    wanted = remaining if points is None else points
    if wanted > remaining:
        raise PointsError(901, f"only {remaining} points of {found.id} are left to reverse",
                          remaining=remaining)
    return _reverse(work, member, [(found, wanted)], "reverse", staff, reason)


def find_redemption(session: Session, redemption: str) -> Redemption | None:
    """The redemption whose id or external reference number is `redemption`, or None."""
    return session.get(Redemption, redemption) or session.exec(select(Redemption).where(
        Redemption.external_reference == redemption)).first()


def member_of_transaction(work: Work, transaction_number: str) -> Member:
    """The member who redeemed on `transaction_number`; 811 when nobody did, or when
    several members did (name the member)."""
    member = work.session.get(Member, _owner(work.session, transaction_number))
    assert member is not None
    return member


def _owner(session: Session, txn: str) -> int:
    """The id of the one member who redeemed on `txn`; 811 for nobody or several."""
    owners = session.exec(select(Redemption.member_id).where(
        Redemption.transaction_number == txn).distinct().limit(2)).all()
    if len(owners) != 1:
        raise PointsError(811, "several members redeemed on this transaction number; "
                               "name the member" if owners else "")
    return owners[0]


def _reverse(work: Work, member: Member, parts: list[tuple[Redemption, int]], kind: str,
             staff: str | None, reason: str | None) -> ReversalResult:
    session, now = work.session, work.now
    staff, reason = storable(staff or "") or None, storable(reason or "") or None
    reason = reason[:500] if reason else None
    reversal_ids = []
    for redemption, points in parts:
        reversal = Reversal(id=new_id("V"), redemption_id=redemption.id,
                            member_id=redemption.member_id, points=points, kind=kind,
                            staff=staff, reason=reason, created_at=now)
        redemption.points_reversed += points
        session.add(redemption)
        session.add(reversal)
        ledger.post(session, member, Source.REVERSAL, points, reference=reversal.id,
                    now=now, staff=staff, reason=reason)
        reversal_ids.append(reversal.id)
        if staff:
            staff_audit.record(work, staff, kind, redemption.id, True,
                               f"{points} points" + (f": {reason}" if reason else ""),
                               member_id=member.id)
    return ReversalResult(tuple(reversal_ids), tuple(r.id for r, _ in parts),
                          sum(p for _, p in parts), member.current_points, member.id)


def redemption_key(text: str) -> str:
    """A redemption id or external reference number as typed, checked; 901 otherwise."""
    key = (text or "").strip()
    if not key or len(key) > 128 or not set(key) <= REFERENCE_CHARS:
        raise PointsError(901)
    return key


class Reversing(Engine):
    """The reversal operations of `PointsService`."""

    def revert(self, identifier: str | None, transaction_number: str, points: object = None,
               *, staff: str | None = None, reason: str | None = None) -> ReversalResult:
        """Give back all the points redeemed on a transaction number (810, 811, 812, 814).

        `points`, when given, must be what is left to revert (810 otherwise); None reverts
        all of it. `identifier` None: the member who redeemed on the transaction number."""
        amount = None if points is None or points == "" else rules.parse_points(points)
        ident = None if identifier is None else self.identify(identifier)
        txn = reference(transaction_number, "the transaction number", code=811)

        def unit(session: Session) -> ReversalResult:
            member = None if ident is None else ledger.find_member(session, ident, lock=True)
            return revert(self.work(session), member, txn, amount, staff=staff, reason=reason)
        return self.db.run(unit)

    def member_of_transaction(self, transaction_number: str) -> MemberView:
        """The member who redeemed on `transaction_number`, for a revert that names only the
        transaction; 811 when nobody did, or when several members did (name the member)."""
        txn = reference(transaction_number, "the transaction number", code=811)
        return self.db.run(lambda s: view(member_of_transaction(self.work(s), txn)),
                           write=False)

    def reverse(self, redemption: str, points: object = None, *, identifier: str | None = None,
                staff: str | None = None, reason: str | None = None) -> ReversalResult:
        """Reverse a redemption by its id or external reference, all or part of what is left
        (901, 902, 904, 3802)."""
        key = redemption_key(redemption)
        amount = None if points is None or points == "" else points_or(points, 901)
        ident = None
        if identifier:
            try:
                ident = self.identify(identifier)
            except PointsError:
                raise PointsError(904) from None
        return self.db.run(lambda s: reverse(self.work(s), key, amount, identifier=ident,
                                             staff=staff, reason=reason))
