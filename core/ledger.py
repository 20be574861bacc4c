"""The points ledger: the one place where a member's points change, and the audit that
proves the books balance.

Every change is a new `LedgerEntry`; the member's `current_points` and `lifetime_points`
are running totals of those entries, updated in the same transaction, with the member's
row locked by whoever posts. No total may pass `limits.MAX_BALANCE_POINTS`. `post` records
one change; `post_many` records many in a few statements (Data Import), under the same
rules. `audit()` checks every invariant the system promises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, Table, bindparam, func, insert, update
from sqlalchemy.exc import NoResultFound
from sqlmodel import Session, col, select

from core import limits
from core.db import executemany
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
from core.status import InputError, PointsError

MEMBERS: Table = Member.__table__  # type: ignore[attr-defined]
ENTRIES: Table = LedgerEntry.__table__  # type: ignore[attr-defined]
# Values per IN (...) of a bulk lookup: well under every database's parameter limit.
_CHUNK = 500
# What a bulk lookup reads of a member.
_READ = ("id", "mobile", "email", "external_id", "name", "customer_type", "fraud_status",
         "current_points", "lifetime_points", "lifetime_purchases")


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
    """The member, row-locked (FOR UPDATE). On SQLite a write transaction (BEGIN
    IMMEDIATE) holds the whole database already: a member this session read is taken as
    it is, without a statement."""
    if session.get_bind().dialect.name == "sqlite":
        found = session.get(Member, member_id)
        if found is None:
            raise NoResultFound("no member with this id")
        return found
    member = session.exec(select(Member).where(Member.id == member_id).with_for_update()).one()
    return member


def find_members(session: Session, identifiers: Iterable[Identifier], *, lock: bool = False,
                 ids_only: bool = False) -> dict[tuple[Kind, str], RowMapping]:
    """The members `identifiers` name, in a few statements (IN lists of `_CHUNK`), as rows
    of their identifiers, profile and totals (`ids_only`: id alone), row-locked when
    `lock`, by (kind, value); an identifier nobody has is left out."""
    by_kind = {Kind.MOBILE: MEMBERS.c.mobile, Kind.EMAIL: MEMBERS.c.email,
               Kind.EXTERNAL_ID: MEMBERS.c.external_id}
    wanted: dict[Kind, list[str]] = {kind: [] for kind in by_kind}
    for ident in set(identifiers):
        wanted[ident.kind].append(ident.value)
    found: dict[tuple[Kind, str], RowMapping] = {}
    connection = session.connection()
    for kind, values in wanted.items():
        key = by_kind[kind]
        columns = [MEMBERS.c.id, key] if ids_only else [MEMBERS.c[name] for name in _READ]
        values.sort()
        for start in range(0, len(values), _CHUNK):
            query = select(*columns).where(key.in_(values[start:start + _CHUNK]))
            if lock:
                query = query.with_for_update()
            for row in connection.execute(query).mappings().all():
                found[kind, row[kind.value]] = row
    return found


def _within_limits(member_id: int | None, current: int, lifetime: int) -> None:
    if current < 0:
        raise PointsError(813)
    why = limits.points_over_balance(current, lifetime)
    if why is not None:
        raise InputError(f"member {member_id}: {why}; nothing was issued")


def post(session: Session, member: Member, source: Source, points: int, *, reference: str,
         now: datetime, lifetime_points: int = 0, staff: str | None = None,
         reason: str | None = None) -> LedgerEntry:
    """Record one change to `member`'s points. The caller holds the member's row lock."""
    _within_limits(member.id, member.current_points + points,
                   member.lifetime_points + lifetime_points)
    assert member.id is not None
    member.current_points += points
    member.lifetime_points += lifetime_points
    entry = LedgerEntry(member_id=member.id, source=source, points=points,
                        lifetime_points=lifetime_points, reference=reference, staff=staff,
                        reason=reason, created_at=now)
    session.add(member)
    session.add(entry)
    return entry


@dataclass(frozen=True)
class Posting:
    """One change of a bulk posting: what `post` takes, for a member known by id."""

    member_id: int
    points: int
    lifetime_points: int
    reference: str


def post_many(session: Session, source: Source, postings: Sequence[Posting], *,
              balances: Mapping[int, tuple[int, int]], now: datetime,
              columns: Mapping[int, Mapping[str, object]] | None = None) -> None:
    """Record many changes at once: every entry in one executemany insert, and each
    member's running totals in one executemany update. `balances` holds each member's
    current and lifetime points as read under the caller's lock (the SQLite write lock, or
    the member rows locked FOR UPDATE); a member may have several postings. `columns` are
    other values of members to write in the same update (an import's profile), so each
    member is written once. Every total is checked as `post` checks it before anything is
    written. The caller holds none of these members as ORM objects (they would be stale)."""
    columns = columns or {}
    changes: dict[int, tuple[int, int]] = {}
    for p in postings:
        points, lifetime = changes.get(p.member_id, (0, 0))
        changes[p.member_id] = points + p.points, lifetime + p.lifetime_points
        current, lifetime_total = balances[p.member_id]
        _within_limits(p.member_id, current + changes[p.member_id][0],
                       lifetime_total + changes[p.member_id][1])
    connection = session.connection()
    if postings:
        executemany(connection, insert(ENTRIES), [
            {"member_id": p.member_id, "source": source.value, "points": p.points,
             "lifetime_points": p.lifetime_points, "reference": p.reference, "staff": None,
             "reason": None, "created_at": now} for p in postings])
    # One statement for each set of columns written (executemany takes one shape).
    shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for member_id in changes.keys() | columns.keys():
        values = columns.get(member_id, {})
        points, lifetime = changes.get(member_id, (0, 0))
        shapes.setdefault(tuple(sorted(values)), []).append(
            {**values, "b_id": member_id, "b_points": points, "b_lifetime": lifetime})
    for shape, parameters in shapes.items():
        executemany(
            connection, update(MEMBERS).where(MEMBERS.c.id == bindparam("b_id"))
            .values(current_points=MEMBERS.c.current_points + bindparam("b_points"),
                    lifetime_points=MEMBERS.c.lifetime_points + bindparam("b_lifetime"),
                    **{name: bindparam(name) for name in shape}),
            parameters)


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
