"""Fixtures for driving the real bot end to end: a real database (a SQLite file, and
PostgreSQL when LOYALTY_TEST_POSTGRES_URL is set, each test on a database of its own), a
clock the test moves, and a `World` (see bot_harness.py) on them.

Kept apart from tests/conftest.py on purpose (the core suite owns that file): what is
needed here is duplicated in small.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from bot_harness import POSTGRES_ENV, Clock, World, postgres_database

from bot.settings import BotSettings


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the environment or a developer's `.env`."""
    for name in BotSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: a SQLite file, or one on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loyalty.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    url, drop = postgres_database(base)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
async def world(database_url: str, clock: Clock) -> AsyncIterator[World]:
    environment = World(database_url, clock)
    try:
        yield environment
    finally:
        await environment.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Hand the module name `conftest` back to tests/conftest.py.

    Without packages in tests/, pytest imports every conftest.py as the module `conftest`,
    the last one loaded taking the name; the core tests import helpers with `from conftest
    import ...`, which would then find this file. pytest calls this hook for the files of
    tests/bot only, after loading this conftest and before it collects tests/core, so
    pointing `sys.modules["conftest"]` back at the very module pytest loaded from
    tests/conftest.py keeps their imports working whatever order the suites run in.
    """
    root = Path(__file__).resolve().parent.parent / "conftest.py"
    current = sys.modules.get("conftest")
    if current is not None and Path(getattr(current, "__file__", "")).resolve() == root:
        return
    for plugin in parent.config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "/").resolve() == root:
            sys.modules["conftest"] = plugin
            return
