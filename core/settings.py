"""The engine's settings: one validated object read from the environment and `.env`.

Every number an operator may want to change lives here. `load_settings()` is the only way
in: a value that does not parse is refused with 888, a combination that cannot work (a
maximum below the minimum, say) with 899, each with a message that names the setting.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import code_texts, i18n, limits, times
from core.status import PointsError

FRAUD_STATUSES = ("NONE", "MARKED", "CONFIRMED", "RECONFIRMED", "NOT_FRAUD", "INTERNAL")
DEV_SECRET_KEY = "dev-only-secret-change-me"  # noqa: S105  (refused in production)
EXAMPLE_SECRET_KEY = "change-me-to-a-long-random-string"  # noqa: S105  (.env.example's)
MIN_SECRET_KEY_LENGTH = 32
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class Settings(BaseSettings):
    """Engine settings. Field names are the environment variable names, case-insensitive."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = "sqlite:///loyalty.db"
    # Key that validation codes are derived from; codes are never stored, so the database
    # alone cannot reveal one.
    secret_key: str = DEV_SECRET_KEY
    default_phone_region: str = "IN"
    # The organisation's time zone (IANA name): a redemption time without an offset is read
    # in it, and every time shown to members, staff and the CLI is in it.
    org_timezone: str = "UTC"
    points_currency_ratio: Decimal = Decimal("1")
    # The ISO 4217 code of the currency the points are worth: money is shown with its
    # symbol, as the member's locale writes it (INR in hi_IN: ₹1,00,000.00).
    currency: str = "INR"
    # What members read: the language a chat starts in when Telegram names none that is
    # shipped (a catalogue in core/locales), how to reach member care (a phone number, an
    # address or a link, shown wherever a member is told to contact member care), and the
    # program's name in the code's SMS and e-mail.
    default_language: str = "en"
    member_care_contact: str = ""
    brand_name: str = "Loyalty"
    # The code's SMS (also the chat channel's) and e-mail texts; empty: the catalogue's,
    # in the member's language. A template needs {code}; it may use {points}, {value},
    # {minutes}, {brand} and {name} (core.code_texts). The *_FILE settings read it from a
    # file (UTF-8) instead.
    sms_template: str = ""
    sms_template_file: str = ""
    email_subject: str = ""
    email_template: str = ""
    email_template_file: str = ""
    earn_rate: Decimal = Decimal("1")

    redemption_enabled: bool = True
    validation_code_required: bool = True
    fraud_statuses_blocking: str = "MARKED,CONFIRMED,RECONFIRMED"
    redemption_min_points: int = 100
    redemption_min_current_points: int = 0
    redemption_min_lifetime_points: int = 0
    redemption_min_lifetime_purchases: Decimal = Decimal("0")
    redemption_multiple_of: int = 1
    redemption_max_points: int = 100_000

    otp_length: int = 6
    otp_ttl_seconds: int = 600
    otp_max_attempts: int = 5
    otp_max_sends: int = 5
    otp_period_seconds: int = 3600
    otp_period_max_sends: int = 10

    # Goodwill guard rails: the most one grant may issue (more is refused, 901), and the
    # amount above which the staff chat asks for a Confirm press before issuing.
    goodwill_max_points: int = 10_000
    goodwill_confirm_above: int = 1_000

    db_retry_attempts: int = 5
    # PostgreSQL: how long a unit of work waits, in all, for a row lock held by another
    # transaction before the caller gets "try again later" (815, 889 for points coming in).
    db_lock_timeout_seconds: float = 5.0

    # The HTTP API's tills (`core.tills`): this many wrong passwords in a row lock a till
    # for TILL_LOCKOUT_SECONDS (counted in the database: every worker sees them); one
    # address may fail TILL_ADDRESS_MAX_FAILED_LOGINS times (any till names) in that time
    # before it is refused too (counted in each worker's memory).
    till_max_failed_logins: int = 5
    till_lockout_seconds: int = 300
    till_address_max_failed_logins: int = 20

    @field_validator("fraud_statuses_blocking")
    @classmethod
    def _known_statuses(cls, value: str) -> str:
        names = [part.strip().upper() for part in value.split(",") if part.strip()]
        unknown = [name for name in names if name not in FRAUD_STATUSES]
        if unknown:
            raise ValueError(f"unknown fraud status {', '.join(unknown)}; known: "
                             f"{', '.join(FRAUD_STATUSES)}")
        return ",".join(names)

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a phone region such as IN, GB or US")
        return region

    @field_validator("org_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return times.zone(value).key

    @field_validator("default_language")
    @classmethod
    def _shipped_language(cls, value: str) -> str:
        return i18n.known_language(value)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return i18n.known_currency(value)

    @field_validator("member_care_contact", "brand_name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return " ".join(value.split())

    @field_validator("sms_template", "email_template")
    @classmethod
    def _template(cls, value: str) -> str:
        return code_texts.check(value) if value.strip() else ""

    @field_validator("email_subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return code_texts.check(value, needs_code=False) if value.strip() else ""

    @field_validator("sms_template_file", "email_template_file")
    @classmethod
    def _template_file(cls, value: str) -> str:
        if value.strip():
            code_texts.read_template(value.strip())
        return value.strip()

    @property
    def sms_template_text(self) -> str:
        """SMS_TEMPLATE, or the template in SMS_TEMPLATE_FILE; empty: the catalogue's."""
        if self.sms_template_file:
            return code_texts.read_template(self.sms_template_file)
        return self.sms_template

    @property
    def email_template_text(self) -> str:
        if self.email_template_file:
            return code_texts.read_template(self.email_template_file)
        return self.email_template

    @property
    def zone(self) -> ZoneInfo:
        return times.zone(self.org_timezone)

    @property
    def blocking_fraud_statuses(self) -> frozenset[str]:
        return frozenset(self.fraud_statuses_blocking.split(",")) - {""}

    def problems(self) -> list[str]:
        """Combinations of values that cannot work together (each one refuses with 899)."""
        found: list[str] = []
        positive = {
            "REDEMPTION_MULTIPLE_OF": self.redemption_multiple_of,
            "REDEMPTION_MAX_POINTS": self.redemption_max_points,
            "OTP_TTL_SECONDS": self.otp_ttl_seconds,
            "OTP_MAX_ATTEMPTS": self.otp_max_attempts,
            "OTP_MAX_SENDS": self.otp_max_sends,
            "OTP_PERIOD_SECONDS": self.otp_period_seconds,
            "OTP_PERIOD_MAX_SENDS": self.otp_period_max_sends,
            "DB_RETRY_ATTEMPTS": self.db_retry_attempts,
            "TILL_MAX_FAILED_LOGINS": self.till_max_failed_logins,
            "TILL_LOCKOUT_SECONDS": self.till_lockout_seconds,
            "TILL_ADDRESS_MAX_FAILED_LOGINS": self.till_address_max_failed_logins,
        }
        found += [f"{name} must be at least 1 (it is {value})"
                  for name, value in positive.items() if value < 1]
        not_negative: dict[str, int | Decimal] = {
            "REDEMPTION_MIN_POINTS": self.redemption_min_points,
            "REDEMPTION_MIN_CURRENT_POINTS": self.redemption_min_current_points,
            "REDEMPTION_MIN_LIFETIME_POINTS": self.redemption_min_lifetime_points,
            "REDEMPTION_MIN_LIFETIME_PURCHASES": self.redemption_min_lifetime_purchases,
            "POINTS_CURRENCY_RATIO": self.points_currency_ratio,
            "EARN_RATE": self.earn_rate,
        }
        found += [f"{name} must not be negative (it is {value})"
                  for name, value in not_negative.items() if value < 0]
        if self.redemption_max_points < self.redemption_min_points:
            found.append(f"REDEMPTION_MAX_POINTS ({self.redemption_max_points}) is below "
                         f"REDEMPTION_MIN_POINTS ({self.redemption_min_points})")
        elif self.redemption_multiple_of >= 1 and not self.redeemable_amounts(1):
            found.append(
                f"no amount between REDEMPTION_MIN_POINTS ({self.redemption_min_points}) and "
                f"REDEMPTION_MAX_POINTS ({self.redemption_max_points}) is a multiple of "
                f"REDEMPTION_MULTIPLE_OF ({self.redemption_multiple_of})")
        if not 0 < self.db_lock_timeout_seconds <= 3600:
            found.append(f"DB_LOCK_TIMEOUT_SECONDS must be more than 0 and at most 3600 "
                         f"(it is {self.db_lock_timeout_seconds})")
        if not 1 <= self.goodwill_max_points <= limits.MAX_OPERATION_POINTS:
            found.append(f"GOODWILL_MAX_POINTS must be 1 to {limits.MAX_OPERATION_POINTS:,} "
                         f"(it is {self.goodwill_max_points})")
        if self.goodwill_confirm_above < 0:
            found.append(f"GOODWILL_CONFIRM_ABOVE must not be negative "
                         f"(it is {self.goodwill_confirm_above})")
        if not 4 <= self.otp_length <= 10:
            found.append(f"OTP_LENGTH must be between 4 and 10 digits (it is {self.otp_length})")
        for name, text, path in (("SMS_TEMPLATE", self.sms_template, self.sms_template_file),
                                 ("EMAIL_TEMPLATE", self.email_template,
                                  self.email_template_file)):
            if text and path:
                found.append(f"set {name} or {name}_FILE, not both")
        if not self.secret_key.strip():
            found.append("SECRET_KEY must not be empty")
        if self.redemption_max_points > limits.MAX_OPERATION_POINTS:
            found.append(f"REDEMPTION_MAX_POINTS must be at most "
                         f"{limits.MAX_OPERATION_POINTS:,}")
        elif self.points_value(self.redemption_max_points) >= limits.MAX_OPERATION_MONEY:
            found.append(f"POINTS_CURRENCY_RATIO ({self.points_currency_ratio}) makes "
                         f"REDEMPTION_MAX_POINTS ({self.redemption_max_points}) worth "
                         f"{limits.MAX_OPERATION_MONEY:,} or more; one redemption's value "
                         f"must stay below it")
        return found

    def redeemable_amounts(self, limit: int, up_to: int | None = None) -> list[int]:
        """Up to `limit` amounts the amount rules allow, smallest first, none above `up_to`."""
        step = self.redemption_multiple_of
        low = max(self.redemption_min_points, 1)
        first = -(-low // step) * step
        high = self.redemption_max_points if up_to is None else min(up_to,
                                                                    self.redemption_max_points)
        # Slice the range, not a list of it: the maximum may be a billion points.
        return list(range(first, high + 1, step)[:limit]) if step >= 1 else []

    def points_value(self, points: int) -> Decimal:
        """The currency value of `points` at POINTS_CURRENCY_RATIO, to two decimals."""
        return (Decimal(points) * self.points_currency_ratio).quantize(Decimal("0.01"))


def secret_key_weakness(key: str) -> str | None:
    """Why `key` is too weak to derive validation codes from outside the sandbox (anyone
    could know or guess it), or None when it is not."""
    if key == DEV_SECRET_KEY:
        return "is the built-in development key"
    if key.strip() == EXAMPLE_SECRET_KEY:
        return "is the placeholder from .env.example"
    if len(key.strip()) < MIN_SECRET_KEY_LENGTH:
        return (f"is {len(key.strip())} characters long; it needs at least "
                f"{MIN_SECRET_KEY_LENGTH}")
    return None


def require_strong_key(settings: Settings) -> None:
    """Refuse with 899 a weak SECRET_KEY (`secret_key_weakness`): called before anything
    that delivers validation codes outside the sandbox starts."""
    weakness = secret_key_weakness(settings.secret_key)
    if weakness is not None:
        raise PointsError(899, f"SECRET_KEY {weakness}: validation codes are derived from "
                               "it, so a key anyone could know or guess lets them make "
                               f"codes. Make one with: {MAKE_A_KEY}")


SettingsT = TypeVar("SettingsT", bound=Settings)


def read(kind: type[SettingsT], **overrides: Any) -> SettingsT:
    """Settings of `kind` from the environment and `overrides`; 888 for a value that cannot
    be read, naming the setting."""
    try:
        return kind(**overrides)
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        )
        raise PointsError(888, reasons) from None


def checked(settings: SettingsT) -> SettingsT:
    """`settings` if they hold together; 899 with every problem found otherwise."""
    problems = settings.problems()
    if problems:
        raise PointsError(899, "; ".join(problems))
    return settings


def load_settings(**overrides: Any) -> Settings:
    """Read and check the settings; refuse with 888 (bad value) or 899 (bad combination)."""
    return checked(read(Settings, **overrides))
