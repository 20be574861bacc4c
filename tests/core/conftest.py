"""Fixtures of the core suite: a real database per test (a SQLite file, and PostgreSQL when
LOYALTY_TEST_POSTGRES_URL is set; `db_url` runs a test on both), a clock the test moves,
and an `Env` (see points_harness.py) on them. Settings never leak in from the environment
or a `.env` file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.points_harness import Env, requires_postgres, sqlite_file_url
from tests.support.clock import Clock
from tests.support.databases import own_database
from tests.support.settings import hermetic


@pytest.fixture(autouse=True)
def _hermetic_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the environment or a developer's `.env` file."""
    hermetic(monkeypatch, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return sqlite_file_url(tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own on the PostgreSQL server, dropped afterwards."""
    with own_database("postgres", Path()) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres,
                                                                  requires_postgres])])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for this runs on a SQLite file and on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def env(db_url: str, clock: Clock) -> Iterator[Env]:
    with Env(db_url, clock) as environment:
        yield environment


@pytest.fixture
def sqlite_env(sqlite_url: str, clock: Clock) -> Iterator[Env]:
    """An `Env` on a SQLite file only (for SQLite-specific behaviour)."""
    with Env(sqlite_url, clock) as environment:
        yield environment
