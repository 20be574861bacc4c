"""The README's first command, on a copy of this checkout: a fresh virtual environment
(`python -m venv`), `pip install -e .` from the package index, and `loyalty-bot sandbox`
reaching its prompt under a pseudo-terminal.

Slow (it installs every dependency; about 20 to 60 seconds with a warm pip cache): marked
`slow`, and skipped when LOYALTY_SKIP_VENV_TEST is set.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

from tests.sandbox.sandbox_support import REPO, clean_environment

SKIP = "LOYALTY_SKIP_VENV_TEST"
INSTALL_SECONDS = 240


def readme_first_command() -> str:
    """The first command line of the README's first ```sh block."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:sh|bash|console)\n(.*?)```", text, re.DOTALL)
    assert block, "the README has no ```sh block"
    lines = [line.strip() for line in block.group(1).splitlines()]
    return next(line for line in lines if line and not line.startswith("#"))


def copy_of_the_checkout(target: Path) -> Path:
    """What `pip install -e .` needs (the packages, pyproject.toml, setup.py, the README),
    without environments, caches, databases or compiled catalogues (the install compiles
    them)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-*", "*.egg-info",
                                    "*.mo")
    for name in ("core", "bot", "api"):
        shutil.copytree(REPO / name, target / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, target / name)
    return target


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_SECONDS + 60)
@pytest.mark.skipif(bool(os.environ.get(SKIP)), reason=f"{SKIP} is set")
def test_the_readme_first_command_reaches_the_sandbox_prompt(tmp_path: Path) -> None:
    command = readme_first_command()
    # Its essential part, whatever else the line says: a fresh venv, an editable install
    # of the checkout, and the sandbox.
    assert "-m venv .venv" in command and ". .venv/bin/activate" in command
    assert re.search(r"pip install( -q)? -e \.", command)
    assert command.endswith("loyalty-bot sandbox")
    checkout = copy_of_the_checkout(tmp_path / "checkout")

    # `python3` is this interpreter's base installation (3.11 or newer); nothing of this
    # test run's own environment (a virtualenv, PYTHONPATH at the checkout) leaks in.
    base_bin = Path(sys.base_exec_prefix) / "bin"
    assert (base_bin / "python3").exists(), f"no python3 in {base_bin}"
    env = clean_environment(NO_COLOR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.pathsep.join([str(base_bin), *[
        p for p in env.get("PATH", "").split(os.pathsep)
        if p and not (Path(p) / "activate").exists()]])

    child = pexpect.spawn("bash", ["-c", command], cwd=str(checkout), env=env,
                          encoding="utf-8", timeout=INSTALL_SECONDS, dimensions=(50, 200))
    child.logfile_read = (tmp_path / "readme-command.log").open("w", encoding="utf-8")
    try:
        child.expect("Pick a demo member to be")
        child.sendline("/quit")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    log = (tmp_path / "readme-command.log").read_text(encoding="utf-8")
    assert child.exitstatus == 0, log[-3000:]
    assert "Traceback" not in log
    assert (checkout / ".venv" / "bin" / "loyalty-bot").exists()  # the fresh venv's command
    # The install compiled every message catalogue (setup.py's build step).
    catalogues = sorted((checkout / "core" / "locales").glob("*/LC_MESSAGES/messages.po"))
    assert len(catalogues) >= 2
    assert all(po.with_suffix(".mo").exists() for po in catalogues)
