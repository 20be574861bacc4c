"""Fixtures of the reliability suite: a database of the test's own (a SQLite file, and
PostgreSQL when LOYALTY_TEST_POSTGRES_URL is set; `database_url` runs a test on both), and
the bot suite's `World` on it (tests/bot/bot_harness.py, reused as it is). The drills
themselves live in `benchmarks/drills.py`, shared with `benchmarks/reliability.py`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hermetic import hermetic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bot"))

from bot_harness import Clock, World
from throwaway_db import own_database

from benchmarks.drills import POSTGRES_ENV, postgres_database


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the environment or a developer's `.env`."""
    hermetic(monkeypatch, tmp_path)


def postgres_or_skip() -> str:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    return base


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database(postgres_or_skip()) as url:
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
