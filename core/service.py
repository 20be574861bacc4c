"""The points engine as one object: `PointsService`, composed of the parts that each hold
one responsibility's public methods (`reads`, `redemption`, `reversal`, `points_in`,
`imports`, `staff_audit`, `member_care`, `tills`). Entry points (the bot, the CLI, the
sandbox, the HTTP API, scripts) call these and show what they answer; nothing else changes
points.

Every method takes plain values (text as a person typed it is fine: parsing and its
refusals live in the methods), runs one transaction through `Database.run`, and returns a
frozen result or raises `PointsError` with the documented status code. The session-level
functions behind them (taking a `core.work.Work`) compose into one transaction of a
caller's own.

The names this module exported before the split are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text

from core.db import Database, DbObserver
from core.delivery import CodeSender
from core.imports import IMPORT_COLUMNS, Importing, ImportRejected, ImportResult, RowError
from core.member_care import MemberCare
from core.points_in import PointsIn
from core.reads import Reads, view
from core.redemption import TIME_FORMAT, Redeeming
from core.results import (
    CAN_REDEEM,
    REDEEMED,
    Balance,
    CodeIssued,
    CodeToDeliver,
    HistoryItem,
    Issued,
    MemberView,
    Redeemable,
    RedemptionResult,
    RedemptionRules,
    ReversalResult,
)
from core.reversal import Reversing
from core.settings import Settings
from core.staff_audit import StaffAudit, StaffLine
from core.tills import Tills
from core.work import Clock, new_id, utcnow


class PointsService(Reads, Redeeming, Reversing, PointsIn, Importing, StaffAudit,
                    MemberCare, Tills):
    """The points engine for one database and one set of settings."""

    def __init__(self, settings: Settings, db: Database | None = None,
                 senders: Sequence[CodeSender] = (), clock: Clock = utcnow) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url, retries=settings.db_retry_attempts,
                                 lock_timeout=settings.db_lock_timeout_seconds)
        self.db.migrate()
        self.senders = list(senders)
        self.clock = clock

    def ping(self) -> None:
        """A trivial read: raises when the database does not answer (for health checks)."""
        self.db.run(lambda s: s.connection().execute(text("SELECT 1")).all(), write=False)

    def watch(self, observer: DbObserver) -> None:
        """Tell `observer` of the database's retries and give-ups (once, however often it
        is called): `observer(event, reason)`."""
        if observer not in self.db.observers:
            self.db.observers.append(observer)

    def location(self) -> str:
        """Where the data is, for the operator (a SQLite file's path, or the server's URL
        without its password)."""
        return self.db.location()

    def close(self) -> None:
        """Write the deferred audit lines, then close the database's connections."""
        self.close_staff_actions()
        self.db.dispose()


__all__ = ["CAN_REDEEM", "IMPORT_COLUMNS", "REDEEMED", "TIME_FORMAT", "Balance", "Clock",
           "CodeIssued", "CodeToDeliver", "HistoryItem", "ImportRejected", "ImportResult",
           "Issued", "MemberView", "PointsService", "Redeemable", "RedemptionResult",
           "RedemptionRules", "ReversalResult", "RowError", "StaffLine", "new_id", "utcnow",
           "view"]
