"""The points ledger: the one place where a member's points change, and the audit that
proves the books balance.

Every change is a new `LedgerEntry`; the member's `current_points` and `lifetime_points`
are running totals of those entries, updated in the same transaction, with the member's
row locked by whoever posts. `audit()` checks every invariant the system promises.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.identifiers import Identifier, Kind
from core.models import (
    CodeState,
    LedgerEntry,
    Member,
    Redemption,
    Reversal,
    Source,
    ValidationCode,
)
from core.status import PointsError


def find_member(session: Session, identifier: Identifier, *, lock: bool = False) -> Member:
    """The member `identifier` names, row-locked when `lock`; 816 when there is none.
    When no member has it, its fallback (a numeric text's external id) is looked up."""
    column = {
        Kind.MOBILE: Member.mobile,
        Kind.EMAIL: Member.email,
        Kind.EXTERNAL_ID: Member.external_id,
    }[identifier.kind]
    query = select(Member).where(column == identifier.value)
    if lock:
        query = query.with_for_update()
    member = session.exec(query).first()
    if member is None:
        if identifier.fallback is not None:
            return find_member(session, identifier.fallback, lock=lock)
        raise PointsError(816)
    return member


def lock(session: Session, member_id: int) -> Member:
    member = session.exec(select(Member).where(Member.id == member_id).with_for_update()).one()
    return member


def post(session: Session, member: Member, source: Source, points: int, *, reference: str,
         now: datetime, lifetime_points: int = 0, staff: str | None = None,
         reason: str | None = None) -> LedgerEntry:
    """Record one change to `member`'s points. The caller holds the member's row lock."""
    if member.current_points + points < 0:
        raise PointsError(813)
    assert member.id is not None
    member.current_points += points
    member.lifetime_points += lifetime_points
    entry = LedgerEntry(member_id=member.id, source=source, points=points,
                        lifetime_points=lifetime_points, reference=reference, staff=staff,
                        reason=reason, created_at=now)
    session.add(member)
    session.add(entry)
    return entry


def audit(session: Session) -> list[str]:
    """Every broken invariant, one line each; an empty list means the books balance."""
    problems: list[str] = []
    sums = {
        member_id: (points or 0, lifetime or 0)
        for member_id, points, lifetime in session.exec(
            select(LedgerEntry.member_id, func.sum(LedgerEntry.points),
                   func.sum(LedgerEntry.lifetime_points)).group_by(col(LedgerEntry.member_id))
        ).all()
    }
    for member in session.exec(select(Member)).all():
        points, lifetime = sums.get(member.id or 0, (0, 0))
        if member.current_points != points:
            problems.append(f"member {member.id}: current points {member.current_points} "
                            f"!= ledger sum {points}")
        if member.lifetime_points != lifetime:
            problems.append(f"member {member.id}: lifetime points {member.lifetime_points} "
                            f"!= issued sum {lifetime}")
        if member.current_points < 0:
            problems.append(f"member {member.id}: negative current points")
    entries = {
        (source, reference): points
        for source, reference, points in session.exec(
            select(LedgerEntry.source, LedgerEntry.reference, LedgerEntry.points).where(
                col(LedgerEntry.source).in_([Source.REDEMPTION, Source.REVERSAL]))
        ).all()
    }
    reversed_sums = dict(session.exec(
        select(Reversal.redemption_id, func.sum(Reversal.points))
        .group_by(col(Reversal.redemption_id))).all())
    redemption_ids = set()
    for redemption in session.exec(select(Redemption)).all():
        redemption_ids.add(redemption.id)
        if entries.get((Source.REDEMPTION, redemption.id)) != -redemption.points:
            problems.append(f"redemption {redemption.id} has no matching ledger entry")
        if redemption.points_reversed != (reversed_sums.get(redemption.id) or 0):
            problems.append(f"redemption {redemption.id}: points reversed "
                            f"{redemption.points_reversed} != its reversals")
        if redemption.points_reversed > redemption.points:
            problems.append(f"redemption {redemption.id}: more reversed than redeemed")
    reversal_ids = set()
    for reversal in session.exec(select(Reversal)).all():
        reversal_ids.add(reversal.id)
        if entries.get((Source.REVERSAL, reversal.id)) != reversal.points:
            problems.append(f"reversal {reversal.id} has no matching ledger entry")
    for (source, reference) in entries:
        known = redemption_ids if source == Source.REDEMPTION else reversal_ids
        if reference not in known:
            problems.append(f"{source} ledger entry {reference} has no {source} record")
    for code in session.exec(select(ValidationCode).where(
            ValidationCode.state == CodeState.USED)).all():
        if code.redemption_id not in redemption_ids:
            problems.append(f"validation code {code.id} used without a redemption")
    return problems
