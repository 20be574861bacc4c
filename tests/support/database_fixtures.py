"""The database fixtures the core and API suites share: `db_url` runs a test on a SQLite
file and, when LOYALTY_TEST_POSTGRES_URL is set, on a PostgreSQL database of its own.
tests/conftest.py makes them every suite's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.points_harness import requires_postgres, sqlite_file_url
from tests.support.databases import own_database


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
