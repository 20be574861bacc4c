"""The staff audit: who did what to whom, allowed or refused, and when.

Session-level: `record` writes one line in the caller's transaction (a goodwill grant, a
fraud status, an unlink or a reversal by staff writes its line with what it changes), and
`lines` reads them back, filtered by staff member and by member. `StaffAudit` holds the
public methods: `record_staff_action` (one line, its own transaction) and `staff_actions`.

A line names the member it concerns (`member_id`) when it is known: a lookup that found
nobody, or a command refused before its member was read, has none. A refused command is
recorded with `allowed` true (staff may) and a detail starting "refused:"; `allowed` false
means the sender was not staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core import ledger
from core.models import StaffAction
from core.text import storable
from core.work import Engine, Work

REFUSED = "refused: "  # how the detail of a refused staff command starts
MAX_LINES = 1000  # the most one listing returns


@dataclass(frozen=True)
class StaffLine:
    staff: str
    action: str
    target: str
    allowed: bool
    detail: str
    at: datetime
    member_id: int | None = None

    @property
    def refused(self) -> bool:
        """Refused: the sender was not staff, or the command was refused."""
        return not self.allowed or self.detail.startswith(REFUSED)


def record(work: Work, staff: str, action: str, target: str, allowed: bool,
           detail: str = "", *, member_id: int | None = None) -> None:
    """Add one line to the staff audit, at the unit's now (cut to the columns' lengths)."""
    work.session.add(StaffAction(
        staff=storable(staff)[:128], action=storable(action)[:32],
        target=storable(target)[:254], allowed=allowed, detail=storable(detail)[:500],
        created_at=work.now, member_id=member_id))


def lines(work: Work, limit: int = 50, *, staff: str | None = None,
          member_id: int | None = None, action: str | None = None) -> list[StaffLine]:
    """The latest `limit` lines (at most `MAX_LINES`), newest first: all, or those of one
    staff member (as the audit names them: "telegram:900", "cli"), about one member, of
    one action."""
    query = select(StaffAction)
    if staff is not None:
        query = query.where(StaffAction.staff == staff)
    if member_id is not None:
        query = query.where(StaffAction.member_id == member_id)
    if action is not None:
        query = query.where(StaffAction.action == action)
    found = work.session.exec(query.order_by(col(StaffAction.id).desc())
                              .limit(max(1, min(limit, MAX_LINES)))).all()
    return [StaffLine(a.staff, a.action, a.target, a.allowed, a.detail, a.created_at,
                      a.member_id) for a in found]


class StaffAudit(Engine):
    """The staff audit operations of `PointsService`."""

    def record_staff_action(self, staff: str, action: str, target: str, allowed: bool,
                            detail: str = "") -> None:
        self.db.run(lambda s: record(self.work(s), staff, action, target, allowed, detail))

    def staff_actions(self, limit: int = 50, *, staff: str | None = None,
                      member: str | None = None) -> list[StaffLine]:
        """The latest `limit` lines, newest first; only `staff`'s (as the audit names
        them), only those about `member` (an identifier as typed: 802, 816), when given."""
        ident = self.identify(member) if member is not None else None

        def unit(session: Session) -> list[StaffLine]:
            member_id = (ledger.find_member(session, ident).id if ident is not None
                         else None)
            return lines(self.work(session), limit, staff=staff, member_id=member_id)
        return self.db.run(unit, write=False)
