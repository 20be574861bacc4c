"""Fixtures of the benchmarks' suite: no setting leaks in from the environment or a
developer's `.env` (the benchmarks pass the settings they need; anything else read from
the checkout's `.env` changed what they measured, and failed them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import BotSettings
from tests.support.settings import hermetic


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, BotSettings)
