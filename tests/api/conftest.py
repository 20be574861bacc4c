"""Fixtures of the API suite: a real database per test (a SQLite file, and PostgreSQL when
LOYALTY_TEST_POSTGRES_URL is set: `db_url` runs a test on both), settings that never leak
in from the environment or a `.env` file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.api_server import ServeSettings
from tests.core.points_harness import requires_postgres
from tests.support.databases import own_database
from tests.support.settings import hermetic


@pytest.fixture(autouse=True)
def _hermetic_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, ServeSettings)  # the API's, the bot's, the engine's


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'loyalty.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with own_database("postgres", Path()) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres,
                                                                  requires_postgres])])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for this runs on a SQLite file and on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
