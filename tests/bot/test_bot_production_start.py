"""What `loyalty-bot run` refuses before it starts outside the sandbox (long polling and
webhook alike): a weak SECRET_KEY (the built-in development key, the .env.example
placeholder, fewer than 32 characters), and OTP_CHANNEL chat unless ALLOW_CHAT_CODES=true
(then a warning at start). The sandbox keeps its own rules: any key, codes in the chat."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import BotSettings, load_bot_settings, require_production_ready
from core.settings import DEV_SECRET_KEY, EXAMPLE_SECRET_KEY, MAKE_A_KEY
from core.status import PointsError

REPO = Path(__file__).resolve().parents[2]
STRONG = "k" * 32
WEAK = {"development": (DEV_SECRET_KEY, "built-in development key"),
        "example": (EXAMPLE_SECRET_KEY, "placeholder from .env.example"),
        "short": ("s" * 31, "31 characters long; it needs at least 32")}
WEBHOOK: dict[str, Any] = {"webhook_url": "https://bot.example.com/hook",
                           "webhook_secret": "secret_1"}


def settings(**values: Any) -> BotSettings:
    return load_bot_settings(**{"telegram_bot_token": "1:x", "otp_channel": "sms",
                                "sms_gateway_url": "https://sms.example.com/send",
                                "secret_key": STRONG, **values})


@pytest.mark.parametrize("mode", [{}, WEBHOOK], ids=["long polling", "webhook"])
@pytest.mark.parametrize("kind", sorted(WEAK))
def test_a_weak_secret_key_is_refused_and_the_refusal_says_how_to_make_one(
        kind: str, mode: dict[str, Any]) -> None:
    key, why = WEAK[kind]
    if kind == "development" and mode:
        # A webhook with the development key never even loads (an older, narrower rule).
        with pytest.raises(PointsError):
            settings(secret_key=key, **mode)
        return
    with pytest.raises(PointsError) as refused:
        require_production_ready(settings(secret_key=key, **mode))
    assert refused.value.code == 899
    assert "SECRET_KEY" in refused.value.detail and why in refused.value.detail
    assert MAKE_A_KEY in refused.value.detail


def test_a_strong_key_starts_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        require_production_ready(settings())
        require_production_ready(settings(secret_key="  " + STRONG, **WEBHOOK))
    assert caplog.records == []


def test_chat_codes_outside_the_sandbox_need_allow_chat_codes_and_warn(
        caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(PointsError) as refused:
        require_production_ready(settings(otp_channel="sms,chat"))
    assert refused.value.code == 899
    assert "OTP_CHANNEL chat" in refused.value.detail
    assert "ALLOW_CHAT_CODES=true" in refused.value.detail
    with caplog.at_level(logging.WARNING):
        require_production_ready(settings(otp_channel="chat", allow_chat_codes=True))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "ALLOW_CHAT_CODES=true" in caplog.records[0].getMessage()


# ---------------------------------------------------------------- the command itself


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on (held bound, so nobody else takes it)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    names = {name.upper() for name in BotSettings.model_fields} | {"SANDBOX_DATABASE_URL"}
    clean = {k: v for k, v in os.environ.items() if k.upper() not in names}
    clean["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [clean.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "bot.cli", "run", *args], cwd=cwd,
                          env={**clean, "TELEGRAM_BOT_TOKEN": "1:x", **env},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("mode", [{}, {"WEBHOOK_URL": "https://bot.example.com/hook",
                                       "WEBHOOK_SECRET": "s1"}],
                         ids=["long polling", "webhook"])
def test_run_refuses_a_weak_key_before_it_starts(tmp_path: Path, mode: dict[str, str]) -> None:
    done = run(tmp_path, SECRET_KEY=EXAMPLE_SECRET_KEY, OTP_CHANNEL="sms",
               SMS_GATEWAY_URL="https://sms.example.com/send", **mode)
    assert done.returncode == 1
    assert "899 " in done.stderr and "placeholder from .env.example" in done.stderr
    assert MAKE_A_KEY in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # refused before the database was opened


def test_run_with_allowed_chat_codes_warns_and_the_sandbox_keeps_any_key(
        tmp_path: Path, closed_port: int) -> None:
    """Both get past the checks to the Bot API (here a closed port: `cannot talk`)."""
    bot_api = {"TELEGRAM_BASE_URL": f"http://127.0.0.1:{closed_port}/bot"}
    allowed = run(tmp_path, SECRET_KEY=STRONG, OTP_CHANNEL="chat", ALLOW_CHAT_CODES="true",
                  **bot_api)
    assert "cannot talk to the Bot API" in allowed.stderr
    assert "ALLOW_CHAT_CODES=true: validation codes are sent in the chat" in allowed.stderr
    refused = run(tmp_path, SECRET_KEY=STRONG, OTP_CHANNEL="chat", **bot_api)
    assert refused.returncode == 1 and "899 " in refused.stderr
    sandbox = run(tmp_path, "--sandbox", **bot_api)  # the development key, codes in the chat
    assert "cannot talk to the Bot API" in sandbox.stderr, sandbox.stderr[-2000:]
    # The status code with its message (a bare "899" could be a log line's milliseconds).
    assert "899 Configuration is invalid" not in sandbox.stderr
