"""Fixtures of the API suite: a real database per test (a SQLite file, and PostgreSQL when
LOYALTY_TEST_POSTGRES_URL is set: `db_url` runs a test on both), settings that never leak
in from the environment or a `.env` file (`db_url` comes from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.api_server import ServeSettings
from tests.support.settings import hermetic


@pytest.fixture(autouse=True)
def _hermetic_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, ServeSettings)  # the API's, the bot's, the engine's
