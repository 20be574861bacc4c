"""No setting leaks into a test from the environment or a developer's `.env`: shared by the
suites' autouse fixtures (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import BotSettings


def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unset every bot and engine setting and work in `tmp_path` (so no `.env` is read)."""
    for name in BotSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)
