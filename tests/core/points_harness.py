"""What the core tests build on: real databases (a SQLite file; a PostgreSQL database of
the test's own, created for it and dropped afterwards), a clock the tests move by hand,
and `Env`, which builds `PointsService`s on them with a recording code sender and enrols
members through Data Import.

Nothing here mocks the database session. Imported by name (`points_harness`) from the
tests and from the processes the concurrency test starts, so it is not a conftest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from throwaway_db import POSTGRES_ENV, postgres_base_url, postgres_database  # noqa: F401

from core.delivery import CodeSender, RecordingSender
from core.service import IMPORT_COLUMNS, MemberView, PointsService
from core.settings import Settings, load_settings

START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


requires_postgres = pytest.mark.skipif(
    postgres_base_url() is None, reason=f"{POSTGRES_ENV} is not set")


class Clock:
    """A clock the test moves: `clock()` is now; `advance()` moves it forward."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def sqlite_file_url(directory: Path) -> str:
    """A SQLite database file in `directory` (never an in-memory database)."""
    return f"sqlite:///{directory / 'loyalty.db'}"




def member_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    """A Data Import file with the documented columns; missing fields are empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(IMPORT_COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else str(row[c]) for c in IMPORT_COLUMNS])
    return out.getvalue().encode()


@dataclass
class Env:
    """One test's database, clock and code sender, and the services built on them."""

    url: str
    clock: Clock
    sender: RecordingSender = field(default_factory=RecordingSender)
    services: list[PointsService] = field(default_factory=list)
    _mobiles: int = 0

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(database_url=self.url, **overrides)

    def service(self, *, senders: Sequence[CodeSender] | None = None,
                **overrides: Any) -> PointsService:
        """A service on this test's database; `overrides` are settings (lower case)."""
        service = PointsService(self.settings(**overrides),
                                senders=[self.sender] if senders is None else senders,
                                clock=self.clock)
        self.services.append(service)
        return service

    def next_mobile(self) -> str:
        """A valid Indian mobile number no other member of this test has."""
        self._mobiles += 1
        return f"+9198{self._mobiles:08d}"

    def add_member(self, service: PointsService, *, mobile: str | None = None,
                   email: str | None = None, external_id: str | None = None,
                   name: str = "Test Member", customer_type: str = "loyalty",
                   fraud_status: str = "NONE", points: int = 0,
                   lifetime_points: int | None = None,
                   purchases: Decimal | str = "0") -> MemberView:
        """Enrol a member through Data Import (the only way members come in) and return
        them; with no identifier given, a fresh mobile number is used."""
        if mobile is None and email is None and external_id is None:
            mobile = self.next_mobile()
        row = {"mobile": mobile, "email": email, "external_id": external_id, "name": name,
               "type": customer_type, "fraud_status": fraud_status,
               "current_points": points,
               "lifetime_points": points if lifetime_points is None else lifetime_points,
               "lifetime_purchases": purchases}
        result = service.import_csv(member_csv([row]), filename="member.csv")
        assert result.rows == 1 and not result.already_imported
        return service.member(mobile or email or external_id or "")

    def close(self) -> None:
        for service in self.services:
            service.db.dispose()


