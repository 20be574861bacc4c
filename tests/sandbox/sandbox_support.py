"""What the sandbox tests share: the repository's root, an environment for a child process
with no setting leaking in, and `loyalty-bot sandbox` started under a pseudo-terminal.

Kept out of a conftest.py on purpose (tests/bot/conftest.py explains why the module name
`conftest` is taken): the tests import it by name.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot.sandbox import SandboxSettings

REPO = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "LOYALTY_TEST_POSTGRES_URL"
PROMPT = " › "  # the end of the sandbox's prompt: "Asha Rao › "


def clean_environment(**extra: str) -> dict[str, str]:
    """os.environ without any loyalty-bot setting, this checkout first on the import path,
    plus `extra`."""
    names = {name.upper() for name in SandboxSettings.model_fields}
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in names and k not in ("NO_COLOR", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TERM", "xterm")
    env.update(extra)
    return env


def spawn_sandbox(cwd: Path, *args: str, timeout: float = 30, **env: str) -> pexpect.spawn:
    """`loyalty-bot sandbox ARGS` (this checkout's) under a pseudo-terminal in `cwd`."""
    child = pexpect.spawn(sys.executable, ["-m", "bot.cli", "sandbox", *args], cwd=str(cwd),
                          env=clean_environment(**env), encoding="utf-8", timeout=timeout,
                          dimensions=(50, 220))
    child.logfile_read = (cwd / "terminal.log").open("w", encoding="utf-8")
    return child


def isolate(monkeypatch: pytest.MonkeyPatch, directory: Path) -> Path:
    """No loyalty-bot setting from the environment or a `.env` (the test runs in
    `directory`, which has none); answers `directory`."""
    for name in SandboxSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(directory)
    return directory


def postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """A database of the test's own on the PostgreSQL server of `base_url`: its URL, and
    how to drop it."""
    base = make_url(base_url)
    name = f"tsbx_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop
