"""What the sandbox tests share: the repository's root, an environment for a child process
with no setting leaking in, and `loyalty-bot sandbox` started under a pseudo-terminal.

Not a conftest: the tests import it (`tests.sandbox.sandbox_support`), and so does the
reliability suite.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest

from bot.sandbox import SandboxSettings
from tests.support.settings import hermetic

REPO = Path(__file__).resolve().parents[2]
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


def spawn_sandbox(cwd: Path, *args: str, timeout: float = 30,
                  preexec_fn: Callable[[], None] | None = None, **env: str) -> pexpect.spawn:
    """`loyalty-bot sandbox ARGS` (this checkout's) under a pseudo-terminal in `cwd`;
    `preexec_fn` runs in the child before it starts (to set what it inherits)."""
    child = pexpect.spawn(sys.executable, ["-m", "bot.cli", "sandbox", *args], cwd=str(cwd),
                          env=clean_environment(**env), encoding="utf-8", timeout=timeout,
                          dimensions=(50, 220), preexec_fn=preexec_fn)
    child.logfile_read = (cwd / "terminal.log").open("w", encoding="utf-8")
    return child


def isolate(monkeypatch: pytest.MonkeyPatch, directory: Path) -> Path:
    """No loyalty-bot setting from the environment or a `.env` (the test runs in
    `directory`, which has none); answers `directory`."""
    return hermetic(monkeypatch, directory, SandboxSettings)


def letter_of(screen: str, label: str) -> str:
    """The letter shown before the button `label` on this screen (the last one shown)."""
    found = re.findall(rf"\[([a-z]+)\] (?:📱 )?{re.escape(label)}", screen)
    assert found, f"no [letter] {label} on screen:\n{screen}"
    return str(found[-1])
