"""The bot's settings refuse what cannot work, with 888 (a bad value) or 899 (a bad
combination), naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import build_application
from bot.settings import load_bot_settings
from core.status import PointsError

PRODUCTION: dict[str, Any] = {"telegram_bot_token": "1:x", "webhook_url": "https://bot.example.com/hook",
              "webhook_secret": "secret_1", "secret_key": "real", "otp_channel": "chat"}


def refusal(**values: Any) -> PointsError:
    with pytest.raises(PointsError) as refused:
        load_bot_settings(**values)
    return refused.value


def test_a_production_webhook_configuration_loads() -> None:
    settings = load_bot_settings(**PRODUCTION, staff_telegram_ids=" 12, 34 ")
    assert settings.staff_ids == {12, 34}
    assert settings.webhook_path == "/hook"
    assert settings.channels == ("chat",)


@pytest.mark.parametrize(("values", "code", "names"), [
    ({"telegram_bot_token": ""}, 888, "TELEGRAM_BOT_TOKEN"),
    ({"otp_channel": "pigeon"}, 888, "OTP_CHANNEL"),
    ({"otp_channel": " , "}, 888, "OTP_CHANNEL"),
    ({"staff_telegram_ids": "12,abc"}, 888, "STAFF_TELEGRAM_IDS"),
    ({"webhook_secret": ""}, 899, "WEBHOOK_SECRET"),
    ({"webhook_secret": "has spaces"}, 899, "WEBHOOK_SECRET"),
    ({"secret_key": "dev-only-secret-change-me"}, 899, "SECRET_KEY"),
    ({"otp_channel": "chat,log"}, 899, "OTP_CHANNEL log"),
    ({"webhook_url": "http://bot.example.com/hook"}, 899, "WEBHOOK_URL"),
    ({"otp_channel": "email"}, 899, "SMTP_HOST"),
    ({"otp_channel": "sms"}, 899, "SMS_GATEWAY_URL"),
    ({"redemption_max_points": 10, "redemption_min_points": 100}, 899,
     "REDEMPTION_MAX_POINTS"),
])
def test_what_cannot_work_is_refused(values: dict[str, Any], code: int, names: str) -> None:
    error = refusal(**{**PRODUCTION, **values})
    assert error.code == code
    assert names in error.detail


def test_the_log_channel_is_for_development_only() -> None:
    assert load_bot_settings(telegram_bot_token="1:x", otp_channel="log").channels == ("log",)
    error = refusal(telegram_bot_token="1:x", otp_channel="log", secret_key="real")
    assert error.code == 899 and "OTP_CHANNEL log" in error.detail


def test_an_application_needs_a_token_unless_its_bot_api_is_a_stand_in() -> None:
    settings = load_bot_settings(require_token=False, otp_channel="chat")
    with pytest.raises(PointsError) as refused:
        build_application(settings)
    assert refused.value.code == 888


def overall_cap(**values: Any) -> float | None:
    """The overall messages-a-second cap of the rate limiter `build_application` builds
    (None: no overall cap), read off the real AIORateLimiter and its aiolimiter."""
    from telegram.ext import AIORateLimiter

    from bot.standin import StandInRequest

    settings = load_bot_settings(require_token=False, otp_channel="chat", **values)
    application = build_application(settings, request=StandInRequest())
    try:
        limiter = application.bot.rate_limiter
        assert isinstance(limiter, AIORateLimiter)
        base = limiter._base_limiter
        return None if base is None else base.max_rate / base.time_period
    finally:
        application.bot_data["runtime"].service.db.dispose()


def test_the_overall_message_cap_is_telegrams_30_a_second_by_default() -> None:
    assert load_bot_settings(require_token=False, otp_channel="chat"
                             ).telegram_max_messages_per_second == 30
    assert overall_cap() == 30


def test_an_overall_message_cap_of_0_lifts_it() -> None:
    assert overall_cap(telegram_max_messages_per_second=0) is None
    assert overall_cap(telegram_max_messages_per_second=100) == 100


def test_a_negative_overall_message_cap_is_refused() -> None:
    error = refusal(**PRODUCTION, telegram_max_messages_per_second=-1)
    assert error.code == 899
    assert "TELEGRAM_MAX_MESSAGES_PER_SECOND" in error.detail
