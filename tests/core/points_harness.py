"""What the core tests build on: real databases (a SQLite file; a PostgreSQL database of
the test's own, created for it and dropped afterwards), a clock the tests move by hand,
and `Env`, which builds `PointsService`s on them with a recording code sender and enrols
members through Data Import.

Nothing here mocks the database session. Imported (`tests.core.points_harness`) by the
tests and by the processes the concurrency test starts, so it is not a conftest. The clock,
the Data Import writer and the databases are `tests.support`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.delivery import CodeSender, RecordingSender
from core.service import MemberView, PointsService
from core.settings import Settings, load_settings
from tests.support.clock import Clock
from tests.support.databases import POSTGRES_ENV, postgres_base_url
from tests.support.members import member_csv

requires_postgres = pytest.mark.skipif(
    postgres_base_url() is None, reason=f"{POSTGRES_ENV} is not set")


def sqlite_file_url(directory: Path) -> str:
    """A SQLite database file in `directory` (never an in-memory database)."""
    return f"sqlite:///{directory / 'loyalty.db'}"


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

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
