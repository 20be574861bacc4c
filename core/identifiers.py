"""How a member is named: a mobile number (E.164), an email address or an external id.

`parse_identifier` decides which of the three a piece of text is and normalises it; text
that is none of them is refused with 802. `mask` hides most of a destination when it is
shown back to a person ("+91•••••43210", "a•••@example.com").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

from core.status import PointsError

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# External ids are what another system calls the member: letters first, so that a number
# is always read as a mobile.
_EXTERNAL_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
MAX_LENGTH = 254


class Kind(StrEnum):
    MOBILE = "mobile"
    EMAIL = "email"
    EXTERNAL_ID = "external_id"


@dataclass(frozen=True)
class Identifier:
    kind: Kind
    value: str

    def __str__(self) -> str:
        return self.value


def normalise_mobile(text: str, region: str) -> str | None:
    """`text` as an E.164 number, or None when it is not a valid mobile number."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > 32:
        return None
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    try:
        number = phonenumbers.parse(cleaned, None if cleaned.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def looks_like_mobile(text: str) -> bool:
    return bool(text.strip()) and bool(re.fullmatch(r"[+0-9 ().-]+", text.strip()))


def parse_identifier(text: str, region: str) -> Identifier:
    """Which identifier `text` is, normalised; 802 when it is none of them."""
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_LENGTH or not raw.isprintable():
        raise PointsError(802)
    if "@" in raw:
        if _EMAIL.fullmatch(raw):
            return Identifier(Kind.EMAIL, raw.lower())
        raise PointsError(802)
    if looks_like_mobile(raw):
        mobile = normalise_mobile(raw, region)
        if mobile is None:
            raise PointsError(802)
        return Identifier(Kind.MOBILE, mobile)
    if _EXTERNAL_ID.fullmatch(raw):
        return Identifier(Kind.EXTERNAL_ID, raw)
    raise PointsError(802)


def mask(destination: str) -> str:
    """Hide most of a mobile number or email address for display."""
    if "@" in destination:
        local, _, domain = destination.partition("@")
        return f"{local[:1]}•••@{domain}"
    if destination.startswith("+") and len(destination) > 8:
        number = phonenumbers.parse(destination, None)
        country = f"+{number.country_code}"
        tail = destination[-5:]
        hidden = len(destination) - len(country) - len(tail)
        return country + "•" * max(hidden, 1) + tail
    return destination[:1] + "•••" + destination[-2:] if len(destination) > 4 else "•••"
