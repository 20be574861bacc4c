"""Fixtures of the core suite: a real database per test (a SQLite file, and PostgreSQL when
LOYALTY_TEST_POSTGRES_URL is set; `db_url` runs a test on both), a clock the test moves,
and an `Env` (see points_harness.py) on them. Settings never leak in from the environment
or a `.env` file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.points_harness import Env
from tests.support.clock import Clock
from tests.support.settings import hermetic


@pytest.fixture(autouse=True)
def _hermetic_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the environment or a developer's `.env` file."""
    hermetic(monkeypatch, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def env(db_url: str, clock: Clock) -> Iterator[Env]:
    with Env(db_url, clock) as environment:
        yield environment


@pytest.fixture
def sqlite_env(sqlite_url: str, clock: Clock) -> Iterator[Env]:
    """An `Env` on a SQLite file only (for SQLite-specific behaviour)."""
    with Env(sqlite_url, clock) as environment:
        yield environment
