"""The staff audit: who did what to whom, allowed or refused, and when.

Session-level: `record` writes one line in the caller's transaction (a goodwill grant or a
reversal by staff writes its line with the points it moves). `StaffAudit` holds the public
methods: `record_staff_action` (one line, its own transaction) and `staff_actions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.models import StaffAction
from core.text import storable
from core.work import Engine, Work


@dataclass(frozen=True)
class StaffLine:
    staff: str
    action: str
    target: str
    allowed: bool
    detail: str
    at: datetime


def record(work: Work, staff: str, action: str, target: str, allowed: bool,
           detail: str = "") -> None:
    """Add one line to the staff audit, at the unit's now (cut to the columns' lengths)."""
    work.session.add(StaffAction(
        staff=storable(staff)[:128], action=storable(action)[:32],
        target=storable(target)[:254], allowed=allowed, detail=storable(detail)[:500],
        created_at=work.now))


class StaffAudit(Engine):
    """The staff audit operations of `PointsService`."""

    def record_staff_action(self, staff: str, action: str, target: str, allowed: bool,
                            detail: str = "") -> None:
        self.db.run(lambda s: record(self.work(s), staff, action, target, allowed, detail))

    def staff_actions(self, limit: int = 50) -> list[StaffLine]:
        """The latest `limit` lines, newest first."""
        def unit(session: Session) -> list[StaffLine]:
            lines = session.exec(select(StaffAction).order_by(col(StaffAction.id).desc())
                                 .limit(limit)).all()
            return [StaffLine(a.staff, a.action, a.target, a.allowed, a.detail, a.created_at)
                    for a in lines]
        return self.db.run(unit, write=False)
