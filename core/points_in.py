"""Points coming in outside a Data Import: earning on a purchase (Loyalty Manager) and
goodwill points (Member Care).

Session-level: `earn`, `goodwill` (parsed values; the member row-locked by the caller).
`PointsIn` holds the public methods, which parse text as a person typed it. A goodwill grant
writes its staff audit line in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session

from core import ledger, limits, rules, staff_audit
from core.models import Bill, CustomerType, Member, Source
from core.results import Issued
from core.settings import Settings
from core.status import InputError, PointsError
from core.text import money, reference, storable
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
             target: str | None = None) -> Issued:
    """Goodwill `points` for `member`, recorded with who gave them and why, in the ledger
    and in the staff audit (`target`: how staff named the member; by default their first
    identifier)."""
    reference_ = new_id("G")
    ledger.post(work.session, member, Source.GOODWILL, points, lifetime_points=points,
                reference=reference_, now=work.now, staff=staff, reason=reason)
    named = target or member.mobile or member.email or member.external_id or str(member.id)
    staff_audit.record(work, staff, "goodwill", named, True, f"{points} points: {reason}")
    return Issued(points, member.current_points, reference_)


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

    def goodwill(self, identifier: str, points: object, *, reason: str, staff: str) -> Issued:
        """Member Care: goodwill points, recorded with who gave them and why."""
        amount = rules.parse_points(points, limit=limits.MAX_OPERATION_POINTS)
        ident = self.identify(identifier)
        why, who = goodwill_reason(reason), goodwill_staff(staff)

        def unit(session: Session) -> Issued:
            member = ledger.find_member(session, ident, lock=True)
            return goodwill(self.work(session), member, amount, reason=why, staff=who,
                            target=ident.value)
        return self.db.run(unit, transient_code=889)
