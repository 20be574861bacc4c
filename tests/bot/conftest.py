"""Fixtures for driving the real bot end to end: a real database (a SQLite file, and
PostgreSQL when LOYALTY_TEST_POSTGRES_URL is set, each test on a database of its own), a
clock the test moves, and a `World` (see bot_harness.py) on them.

The clock, the databases and settings isolation are `tests.support`'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.settings import BotSettings
from tests.bot.bot_harness import World
from tests.support.clock import Clock
from tests.support.databases import own_database
from tests.support.settings import hermetic


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the environment or a developer's `.env`."""
    hermetic(monkeypatch, tmp_path, BotSettings)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: a SQLite file, or one on PostgreSQL."""
    with own_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def world(database_url: str, clock: Clock) -> AsyncIterator[World]:
    environment = World(database_url, clock)
    try:
        yield environment
    finally:
        await environment.close()

