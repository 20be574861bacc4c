"""The engine stands alone: nothing in `core/` imports the bot, the HTTP API or Telegram.

Checked twice: by import-linter with the contract in pyproject.toml, and by reading every
module of `core/` with `ast` (which also catches imports inside functions).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import core

CORE = Path(core.__file__).parent
ROOT = CORE.parent
FORBIDDEN = ("telegram", "bot", "api")


def imported_modules(source: str) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_core_module_imports_bot_or_telegram() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 10  # the scan really read the package
    offending = [
        f"{file.relative_to(ROOT)} imports {name}"
        for file in files
        for name in imported_modules(file.read_text(encoding="utf-8"))
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offending == []


def test_the_scan_would_notice_an_offending_import() -> None:
    source = "import os\ndef f():\n    from telegram.ext import Application\nimport bot.cli\n"
    assert sorted(n for n in imported_modules(source) if n.split(".")[0] in FORBIDDEN) == [
        "bot.cli", "telegram.ext"]


def test_import_linter_contract_is_kept() -> None:
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not running from a source checkout")
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or \
        shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed")
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "core never imports the bot, the API or telegram KEPT" in result.stdout
    assert "api keeps to core's use cases: no models, no database, no sessions, no bot " \
           "KEPT" in result.stdout
