"""Sandbox databases: the mark that makes a database the sandbox's, and the only way to
empty one.

The sandbox (`bot.sandbox`, `bot.terminal`) seeds demo members and its `/reset` deletes
every row. Its guard against being pointed at production compares database URLs; this is
the second layer, by content: a database the sandbox may seed or empty carries a
`SandboxMark` row, written by `claim` when the sandbox first takes the database while it
holds no member. A database with members and no mark (a production one, however its URL
was spelt) is refused with 899 by `claim` and by `wipe`, and nothing in it changes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, SQLModel, select

from core.db import Database
from core.models import Member, SandboxMark
from core.status import PointsError

NOT_A_SANDBOX = ("this database holds members and is not a sandbox database (it has no "
                 "sandbox mark): the sandbox seeds demo members and /reset empties its "
                 "database, so it refuses a database that may be production's. Give the "
                 "sandbox a database of its own (SANDBOX_DATABASE_URL; a sandbox database "
                 "made before sandboxes marked theirs must be started afresh)")


def _claim(session: Session) -> None:
    """Inside a unit of work: mark the database as the sandbox's if it has no member yet;
    899 if it has members and no mark."""
    if session.exec(select(SandboxMark.id)).first() is not None:
        return
    if session.exec(select(Member.id).limit(1)).first() is not None:
        raise PointsError(899, NOT_A_SANDBOX)
    session.add(SandboxMark(id=1, created_at=datetime.now(UTC)))


def claim(db: Database) -> None:
    """Make sure `db` is a sandbox database: one already marked, or one without members,
    which is marked now (the check and the mark are one transaction). Refuses with 899 a
    database that holds members and has no mark."""
    db.run(_claim)


def is_sandbox(db: Database) -> bool:
    """Whether `db` carries the sandbox mark."""
    return db.run(lambda s: s.exec(select(SandboxMark.id)).first() is not None, write=False)


def wipe(db: Database) -> None:
    """Delete every row of every table except the mark (the schema and its migrations
    stay), in one transaction that first checks the mark like `claim`: a database with
    members and no mark is refused with 899 and left as it was."""
    def unit(session: Session) -> None:
        _claim(session)
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name != SandboxMark.__tablename__:
                session.exec(table.delete())
    db.run(unit)


__all__ = ["NOT_A_SANDBOX", "claim", "is_sandbox", "wipe"]
