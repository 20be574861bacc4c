"""Settings come from the environment and `.env` (the environment wins), are checked as a
whole on load, and stay cheap to check and use at the largest values they allow.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from core.settings import load_settings
from core.status import PointsError


def test_env_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite runs each test in its own temporary directory, so this `.env` is the one
    # read.
    assert Path.cwd() == tmp_path
    (tmp_path / ".env").write_text(textwrap.dedent("""\
        REDEMPTION_MIN_POINTS=250
        REDEMPTION_MULTIPLE_OF=50
        FRAUD_STATUSES_BLOCKING=marked, internal
        POINTS_CURRENCY_RATIO=0.25
        VALIDATION_CODE_REQUIRED=false
        """))
    settings = load_settings()
    assert (settings.redemption_min_points, settings.redemption_multiple_of) == (250, 50)
    assert settings.blocking_fraud_statuses == frozenset({"MARKED", "INTERNAL"})
    assert settings.points_value(3) == Decimal("0.75")
    assert settings.validation_code_required is False
    monkeypatch.setenv("REDEMPTION_MIN_POINTS", "300")
    assert load_settings().redemption_min_points == 300
    monkeypatch.setenv("REDEMPTION_MULTIPLE_OF", "0")
    with pytest.raises(PointsError) as caught:
        load_settings()
    assert caught.value.code == 899 and "REDEMPTION_MULTIPLE_OF" in caught.value.detail


def test_defaults_are_the_documented_ones() -> None:
    settings = load_settings()
    assert (settings.otp_length, settings.otp_ttl_seconds, settings.otp_max_attempts,
            settings.otp_max_sends) == (6, 600, 5, 5)
    assert settings.blocking_fraud_statuses == frozenset({"MARKED", "CONFIRMED",
                                                          "RECONFIRMED"})
    assert settings.redemption_enabled and settings.validation_code_required
    assert settings.database_url.startswith("sqlite:///")


def test_largest_maximum_is_cheap(tmp_path: Path) -> None:
    """REDEMPTION_MAX_POINTS may be a billion: loading the settings and suggesting amounts
    must not build a list of every amount. Run with a memory cap, so a regression fails
    here instead of exhausting the machine."""
    script = textwrap.dedent("""\
        import resource, time
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
        from core.settings import load_settings
        started = time.monotonic()
        settings = load_settings(redemption_max_points=10**9, redemption_min_points=1)
        print(settings.redeemable_amounts(4, up_to=10**9), settings.redeemable_amounts(2))
        print(round(time.monotonic() - started, 3))
        """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    amounts, seconds = result.stdout.splitlines()
    assert amounts == "[1, 2, 3, 4] [1, 2]"
    assert float(seconds) < 1.0


@pytest.mark.parametrize(("overrides", "code", "name"), [
    ({"db_lock_timeout_seconds": "soon"}, 888, "DB_LOCK_TIMEOUT_SECONDS"),
    ({"db_lock_timeout_seconds": 0}, 899, "DB_LOCK_TIMEOUT_SECONDS"),
    ({"db_lock_timeout_seconds": "nan"}, 899, "DB_LOCK_TIMEOUT_SECONDS"),
    ({"db_lock_timeout_seconds": 3601}, 899, "DB_LOCK_TIMEOUT_SECONDS"),
    ({"redemption_max_points": 10**9 + 1}, 899, "REDEMPTION_MAX_POINTS"),
    ({"redemption_max_points": 10**9, "points_currency_ratio": 1000}, 899,
     "POINTS_CURRENCY_RATIO"),
])
def test_lock_timeout_and_number_limits_are_checked(overrides: dict[str, object], code: int,
                                                    name: str) -> None:
    with pytest.raises(PointsError) as caught:
        load_settings(**overrides)
    assert caught.value.code == code and name in caught.value.detail, caught.value.detail
    assert load_settings().db_lock_timeout_seconds == 5.0
    assert load_settings(redemption_max_points=10**9, points_currency_ratio=999)
