"""Reading a member: who they are (`view`), their balance, and their history of
redemptions and reversals; plus the read-only views of the ledger an operator uses.

Session-level: `view`, `balance`, `history` (and `redemption_rules`). `Reads` holds the
public methods; a member is named by an identifier as typed, by id, or by a `MemberView`
read earlier (read again, by id).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import ledger
from core.models import LedgerEntry, Member, Redemption, Reversal
from core.results import Balance, HistoryItem, MemberView, RedemptionRules
from core.settings import Settings
from core.status import PointsError
from core.work import Engine, Work


def view(member: Member) -> MemberView:
    assert member.id is not None
    return MemberView(member.id, member.name, member.mobile, member.email, member.external_id,
                      member.customer_type, member.fraud_status, member.current_points,
                      member.lifetime_points, Decimal(member.lifetime_purchases),
                      member.created_at)


def redemption_rules(settings: Settings) -> RedemptionRules:
    return RedemptionRules(settings.redemption_min_points, settings.redemption_max_points,
                           settings.redemption_multiple_of)


def balance(work: Work, member: Member) -> Balance:
    """The balance of `member` as its row says (no statement runs)."""
    settings = work.settings
    suggestions = tuple(settings.redeemable_amounts(4, up_to=member.current_points))
    return Balance(view(member), member.current_points, member.lifetime_points,
                   Decimal(member.lifetime_purchases),
                   settings.points_value(member.current_points), redemption_rules(settings),
                   suggestions)


def history(work: Work, member: Member, limit: int = 10) -> list[HistoryItem]:
    """The member's latest `limit` redemptions and reversals, newest first."""
    session = work.session
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


def by_id(session: Session, member_id: int) -> Member:
    """The member with id `member_id`; 816 when there is none."""
    member = session.get(Member, member_id)
    if member is None:
        raise PointsError(816)
    return member


class Reads(Engine):
    """The read-only operations of `PointsService`."""

    def _finder(self, who: str | int | MemberView) -> Callable[[Session], Member]:
        """How to find `who` in a session: an identifier is parsed here, before any
        transaction (802 when it is none)."""
        if isinstance(who, MemberView):
            return lambda session: by_id(session, who.id)
        if isinstance(who, int):
            return lambda session: by_id(session, who)
        ident = self.identify(who)
        return lambda session: ledger.find_member(session, ident)

    def member(self, who: str | int) -> MemberView:
        """The member an identifier (as typed) or an id names; 816 when nobody."""
        find = self._finder(who)
        return self.db.run(lambda s: view(find(s)), write=False)

    def balance(self, who: str | MemberView) -> Balance:
        """The balance of the member an identifier names, or of a member read earlier
        (read again)."""
        find = self._finder(who)
        return self.db.run(lambda s: balance(self.work(s), find(s)), write=False)

    def history(self, who: str | MemberView, limit: int = 10) -> list[HistoryItem]:
        find = self._finder(who)
        return self.db.run(lambda s: history(self.work(s), find(s), limit), write=False)

    def ledger_entries(self, identifier: str) -> list[LedgerEntry]:
        ident = self.identify(identifier)

        def unit(session: Session) -> list[LedgerEntry]:
            member = ledger.find_member(session, ident)
            return list(session.exec(select(LedgerEntry).where(
                LedgerEntry.member_id == member.id).order_by(col(LedgerEntry.id))).all())
        return self.db.run(unit, write=False)

    def audit(self) -> list[str]:
        return self.db.run(ledger.audit, write=False)

    def member_count(self) -> int:
        return self.db.run(lambda s: s.exec(select(func.count()).select_from(Member)).one(),
                           write=False)
