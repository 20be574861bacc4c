"""Points coming in outside a Data Import: earning on a purchase (Loyalty Manager) and
goodwill points (Member Care).

Goodwill has guard rails: at most GOODWILL_MAX_POINTS a grant (901, in goodwill's words),
and an optional reference that makes a grant idempotent (`goodwill_grant`). The staff chat
also asks for a Confirm press above GOODWILL_CONFIRM_ABOVE (`core.chat_staff`).

Session-level: `earn`, `goodwill` (parsed values; the member row-locked by the caller).
`PointsIn` holds the public methods, which parse text as a person typed it. A goodwill grant
writes its staff audit line in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session

from core import ledger, limits, rules, staff_audit
from core.models import Bill, CustomerType, GoodwillGrant, Member, Source
from core.results import Issued
from core.settings import Settings
from core.status import InputError, PointsError
from core.text import REFERENCE_CHARS, money, reference, storable
from core.work import Engine, Work, new_id


def earned_points(settings: Settings, amount: Decimal) -> int:
    """The points a purchase of `amount` issues at EARN_RATE; refused past what one
    earning may issue."""
    points = int(amount * settings.earn_rate)
    if points > limits.MAX_OPERATION_POINTS:
        raise InputError(f"a purchase of {amount:,} would issue {points:,} points; one "
                         f"earning issues at most {limits.MAX_OPERATION_POINTS:,}")
    return points


def earn(work: Work, member: Member, bill_number: str, amount: Decimal) -> Issued:
    """A purchase of `amount` (more than zero) on bill `bill_number`: raises the member's
    lifetime purchases and issues points at EARN_RATE; the same bill again is answered
    from the first (a replay), a bill recorded for another purchase is refused."""
    session = work.session
    points = earned_points(work.settings, amount)
    bill = session.get(Bill, bill_number)
    if bill is not None:
        if bill.member_id == member.id and Decimal(bill.amount) == amount:
            return Issued(bill.points, member.current_points, bill_number, replayed=True)
        raise InputError(f"bill {bill_number} was already recorded for another purchase")
    if member.customer_type == CustomerType.CAMPAIGN:
        raise PointsError(686)
    if member.customer_type != CustomerType.LOYALTY:
        raise PointsError(881)
    assert member.id is not None
    session.add(Bill(bill_number=bill_number, member_id=member.id, amount=amount,
                     points=points, created_at=work.now))
    purchases = Decimal(member.lifetime_purchases) + amount
    why = limits.money_over_balance(purchases)
    if why is not None:
        raise InputError(f"member {member.id}: {why}; nothing was issued")
    member.lifetime_purchases = purchases
    ledger.post(session, member, Source.EARN, points, lifetime_points=points,
                reference=bill_number, now=work.now)
    return Issued(points, member.current_points, bill_number)


def goodwill(work: Work, member: Member, points: int, *, reason: str, staff: str,
             target: str | None = None, reference: str | None = None) -> Issued:
    """Goodwill `points` for `member`, recorded with who gave them and why, in the ledger
    and in the staff audit (`target`: how staff named the member; by default their first
    identifier). More than GOODWILL_MAX_POINTS is refused (901). With a `reference`, the
    grant issues once: the same reference again for the same member and points answers
    the first grant (a replay, nothing issued); for another member or amount it is
    refused. The database backs it (the reference is `goodwill_grant`'s key)."""
    goodwill_limit(work.settings, points)
    session = work.session
    named = target or member.mobile or member.email or member.external_id or str(member.id)
    if reference is not None:
        earlier = session.get(GoodwillGrant, reference)
        if earlier is not None:
            if earlier.member_id != member.id or earlier.points != points:
                raise InputError(f"goodwill reference {reference} was already used for "
                                 f"{earlier.points:,} points to member {earlier.member_id}; "
                                 "nothing was issued")
            staff_audit.record(work, staff, "goodwill", named, True,
                               f"{points} points again with reference {reference}: "
                               f"nothing issued (already {earlier.entry_reference})",
                               member_id=member.id)
            return Issued(points, member.current_points, earlier.entry_reference,
                          replayed=True)
    reference_ = new_id("G")
    ledger.post(session, member, Source.GOODWILL, points, lifetime_points=points,
                reference=reference_, now=work.now, staff=staff, reason=reason)
    if reference is not None:
        assert member.id is not None
        session.add(GoodwillGrant(reference=reference, member_id=member.id, points=points,
                                  entry_reference=reference_, staff=staff, reason=reason,
                                  created_at=work.now))
    ref = f" (reference {reference})" if reference is not None else ""
    staff_audit.record(work, staff, "goodwill", named, True,
                       f"{points} points{ref}: {reason}", member_id=member.id)
    return Issued(points, member.current_points, reference_)


def goodwill_points(settings: Settings, value: object) -> int:
    """Goodwill points as typed: a positive whole number up to GOODWILL_MAX_POINTS; 901
    otherwise, saying so in goodwill's words (801's message speaks of redeeming)."""
    try:
        points = rules.parse_points(value, limit=limits.MAX_OPERATION_POINTS)
    except PointsError:
        raise PointsError(901, f"goodwill points must be a whole number from 1 to "
                               f"{settings.goodwill_max_points:,}, not {str(value)[:40]!r}"
                          ) from None
    goodwill_limit(settings, points)
    return points


def goodwill_limit(settings: Settings, points: int) -> None:
    """Refuse (901) a grant of more than GOODWILL_MAX_POINTS."""
    most = settings.goodwill_max_points
    if points > most:
        raise PointsError(901, f"one goodwill grant issues at most {most:,} points "
                               f"(GOODWILL_MAX_POINTS); {points:,} were asked",
                          goodwill_max=most)


def goodwill_reference(value: str | None) -> str | None:
    """A goodwill grant's reference (a ticket number, say), or None when not given: 1 to
    64 letters, digits or -_./:#."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > 64 or not set(text) <= REFERENCE_CHARS:
        raise InputError("a goodwill reference must be 1 to 64 letters, digits or -_./:#")
    return text


def goodwill_reason(reason: str | None) -> str:
    """Why goodwill is given, as the ledger keeps it; refused when missing or too long."""
    why = storable(reason or "").strip()
    if not why or len(why) > 500:
        raise InputError("goodwill needs a reason (up to 500 characters)")
    return why


def goodwill_staff(staff: str | None) -> str:
    """Who gives goodwill, as the ledger keeps it; refused when missing or too long."""
    who = storable(staff or "").strip()
    if not who or len(who) > 128:
        raise InputError("goodwill needs the name or id of the staff member giving it")
    return who


class PointsIn(Engine):
    """Earning and goodwill, the operations of `PointsService` that issue points."""

    def earn(self, identifier: str, bill_number: str, amount: object) -> Issued:
        """Loyalty Manager: a purchase on a bill raises lifetime purchases and issues points
        at EARN_RATE; the same bill twice issues once."""
        ident = self.identify(identifier)
        bill_no = reference(bill_number, "the bill number", code=811)
        spent = money(amount, "the purchase amount")
        if spent <= 0:
            raise InputError("the purchase amount must be more than zero")
        earned_points(self.settings, spent)  # refused before any transaction

        def unit(session: Session) -> Issued:
            member = ledger.find_member(session, ident, lock=True)
            return earn(self.work(session), member, bill_no, spent)
        return self.db.run(unit, transient_code=889)

    def goodwill(self, identifier: str, points: object, *, reason: str, staff: str,
                 reference: str | None = None) -> Issued:
        """Member Care: goodwill points, recorded with who gave them and why; at most
        GOODWILL_MAX_POINTS (901); with a `reference`, once (the same reference again
        answers the first grant)."""
        amount = goodwill_points(self.settings, points)
        ident = self.identify(identifier)
        why, who = goodwill_reason(reason), goodwill_staff(staff)
        ref = goodwill_reference(reference)

        def unit(session: Session) -> Issued:
            member = ledger.find_member(session, ident, lock=True)
            return goodwill(self.work(session), member, amount, reason=why, staff=who,
                            target=ident.value, reference=ref)
        return self.db.run(unit, transient_code=889)
