"""Settings isolation: no setting leaks into a test from the environment or a developer's
`.env` file. Shared by the suites' autouse fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from core.settings import Settings


def hermetic(monkeypatch: pytest.MonkeyPatch, directory: Path,
             settings: type[BaseSettings] = Settings) -> Path:
    """Unset every setting of `settings` (the engine's by default; pass the bot's or the
    sandbox's class for theirs) and work in `directory`, which has no `.env`; answers
    `directory`."""
    for name in settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(directory)
    return directory
