"""The staff audit: who did what to whom, allowed or refused, and when.

Session-level: `record` writes one line in the caller's transaction (a goodwill grant, a
fraud status, an unlink or a reversal by staff writes its line with what it changes), and
`lines` reads them back, filtered by staff member and by member. `StaffAudit` holds the
public methods: `record_staff_action` (one line, its own transaction) and `staff_actions`.

A line names the member it concerns (`member_id`) when it is known: a lookup that found
nobody, or a command refused before its member was read, has none. A refused command is
recorded with `allowed` true (staff may) and a detail starting "refused:"; `allowed` false
means the sender was not staff.

`DeferredLines` writes lines in batches, off the caller's thread: the HTTP API's read-only
checks (an isredeemable without a validation code) queue their line there instead of
paying a durable write each (see `core.tills`). A line queued is written within
`FLUSH_SECONDS` (or at once when `MAX_PENDING` wait), and when the engine closes; a process
killed in between loses those lines, and only those: nothing that changes points or
codes is ever deferred. `StaffAudit.staff_actions` writes what its process has queued
before reading, so a reader in the same process sees every line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlmodel import Session, col, select

from core import ledger
from core.db import Database
from core.models import StaffAction
from core.status import PointsError
from core.text import storable
from core.work import Engine, Work

log = logging.getLogger(__name__)
STAFF_ACTIONS: Table = StaffAction.__table__  # type: ignore[attr-defined]
FLUSH_SECONDS = 0.1  # a deferred line waits at most this long (plus the write) to be written
MAX_PENDING = 1000  # more deferred lines than this are written by the caller, at once
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


def line(staff: str, action: str, target: str, allowed: bool, detail: str, at: datetime,
         member_id: int | None = None) -> dict[str, Any]:
    """One line's column values, cut to the columns' lengths."""
    return {"staff": storable(staff)[:128], "action": storable(action)[:32],
            "target": storable(target)[:254], "allowed": allowed,
            "detail": storable(detail)[:500], "created_at": at, "member_id": member_id}


def record(work: Work, staff: str, action: str, target: str, allowed: bool,
           detail: str = "", *, member_id: int | None = None) -> None:
    """Add one line to the staff audit, at the unit's now (cut to the columns' lengths)."""
    work.session.add(StaffAction(**line(staff, action, target, allowed, detail, work.now,
                                        member_id)))


def record_lines(work: Work, lines_: list[Mapping[str, Any]]) -> None:
    """Add `line`s to the staff audit, in one statement."""
    if lines_:
        work.session.execute(insert(STAFF_ACTIONS), list(lines_))


class DeferredLines:
    """Staff audit lines written in batches by a thread of their own (started on the
    first line): every `FLUSH_SECONDS`, all that wait in one transaction. Bounded: with
    `MAX_PENDING` waiting, the caller writes them itself. A batch the database refuses
    after its retries is logged as errors, line by line, as `Tills` does for one line."""

    def __init__(self, db: Database, work: Callable[[Session], Work],
                 flush_seconds: float | None = None) -> None:
        self.db, self._work = db, work
        self.flush_seconds = FLUSH_SECONDS if flush_seconds is None else flush_seconds
        self._pending: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()  # guards _pending
        self._writing = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, values: Mapping[str, Any]) -> None:
        with self._lock:
            if self._closed:
                pending = None
            else:
                self._pending.append(values)
                pending = len(self._pending)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, daemon=True,
                                                    name="audit-lines")
                    self._thread.start()
        if pending is None:
            self._write([values])  # closed: written now, by the caller
        elif pending >= MAX_PENDING:
            self.flush()
        elif pending == 1:
            self._wake.set()

    def flush(self) -> None:
        """Write every line queued so far (on the caller's thread)."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
            self._write(batch)

    def close(self) -> None:
        """Write what waits and stop the thread; later lines are written by their caller."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(30)
        self.flush()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            # Gather what comes during the interval (cut short by `close`), write it whole.
            self._stop.wait(self.flush_seconds)
            self.flush()
            with self._lock:
                if self._pending:
                    self._wake.set()

    def _write(self, batch: list[Mapping[str, Any]]) -> None:
        if not batch:
            return
        try:
            self.db.run(lambda s: record_lines(self._work(s), batch))
        except Exception as failure:  # never lose them silently
            reason = failure.status if isinstance(failure, PointsError) else type(
                failure).__name__
            for values in batch:
                log.error("API call not recorded in the staff audit (%s): %s %s %s %s %s",
                          reason, values["staff"], values["action"], values["target"],
                          "allowed" if values["allowed"] else "refused", values["detail"])


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


_MAKING = threading.Lock()


class StaffAudit(Engine):
    """The staff audit operations of `PointsService`."""

    _deferred_lines: DeferredLines | None = None

    @property
    def deferred_lines(self) -> DeferredLines:
        """This engine's `DeferredLines` (made on first use, once)."""
        with _MAKING:
            if self._deferred_lines is None:
                self._deferred_lines = DeferredLines(self.db, self.work)
            return self._deferred_lines

    def flush_staff_actions(self) -> None:
        """Write the lines this engine has deferred (`DeferredLines`) now."""
        if self._deferred_lines is not None:
            self._deferred_lines.flush()

    def close_staff_actions(self) -> None:
        if self._deferred_lines is not None:
            self._deferred_lines.close()

    def record_staff_action(self, staff: str, action: str, target: str, allowed: bool,
                            detail: str = "") -> None:
        self.db.run(lambda s: record(self.work(s), staff, action, target, allowed, detail))

    def staff_actions(self, limit: int = 50, *, staff: str | None = None,
                      member: str | None = None, action: str | None = None,
                      ) -> list[StaffLine]:
        """The latest `limit` lines, newest first; only `staff`'s (as the audit names
        them), only those about `member` (an identifier as typed: 802, 816), only those of
        `action`, when given."""
        ident = self.identify(member) if member is not None else None
        self.flush_staff_actions()  # what this process deferred is read too

        def unit(session: Session) -> list[StaffLine]:
            member_id = (ledger.find_member(session, ident).id if ident is not None
                         else None)
            return lines(self.work(session), limit, staff=staff, member_id=member_id,
                         action=action)
        return self.db.run(unit, write=False)
