"""Fixtures of the reliability suite: a database of the test's own (a SQLite file, and
PostgreSQL when LOYALTY_TEST_POSTGRES_URL is set; `database_url` runs a test on both), and
the bot suite's `World` on it (tests/bot/bot_harness.py, reused as it is). The drills
themselves live in `benchmarks/drills.py`, shared with `benchmarks/reliability.py`.
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
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A database of this test's own on PostgreSQL (skipped without the server)."""
    with own_database("postgres", tmp_path) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: a SQLite file, or one on PostgreSQL."""
    with own_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    environment = World(database_url, Clock())
    try:
        yield environment
    finally:
        await environment.close()
