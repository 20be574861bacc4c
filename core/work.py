"""The unit of work of the points engine: `Work`, what every session-level operation takes
first (the open session, the settings, and the moment the unit runs at), and `Engine`, what
each part of `PointsService` holds to open one.

A session-level function (`reads.history`, `redemption.redeem`, `staff_audit.record`, ...)
never begins or commits: its caller does, once, through `Database.run`. So several of them
compose into one transaction: `PointsService`'s own methods run one each, and another use
case (a chat step) may run several in its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from core.db import Database
from core.delivery import CodeSender
from core.identifiers import Identifier, parse_identifier
from core.settings import Settings

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Work:
    """One unit of work: the open session and what the engine's operations need with it."""

    session: Session
    settings: Settings
    now: datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A short opaque id: a prefix letter and 10 random base32 characters."""
    alphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(10))


class Engine:
    """What the parts of `PointsService` share: the settings, the database, the code
    senders and the clock."""

    settings: Settings
    db: Database
    senders: list[CodeSender]
    clock: Clock

    def identify(self, text: str) -> Identifier:
        """A member identifier as typed (802 when it is none)."""
        return parse_identifier(text, self.settings.default_phone_region)

    def work(self, session: Session) -> Work:
        """The unit of work of `session`, at the clock's now."""
        return Work(session, self.settings, self.clock())
