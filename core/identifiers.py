"""How a member is named: a mobile number (E.164), an email address or an external id.

`parse_identifier` decides which of the three a piece of text is and normalises it; text
that is none of them is refused with 802. The kind may be given (``mobile:…``, ``email:…``,
``external_id:…``); otherwise it is guessed: text with ``@`` is an email, a mobile-looking
text a mobile, anything else an external id. Purely numeric text is ambiguous: it is tried
as a mobile first and, when no member has that mobile, as an external id (`Identifier.
fallback`). `parse_as` reads text as one given kind (the columns of a Data Import file).
`mask` hides most of a destination when it is shown back to a person ("+91•••••43210",
"a•••@example.com").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

from core.status import PointsError

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# External ids are what another system calls the member: letters, digits and _.:- (a number
# too: only guessing prefers a mobile).
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_LENGTH = 254


class Kind(StrEnum):
    MOBILE = "mobile"
    EMAIL = "email"
    EXTERNAL_ID = "external_id"


@dataclass(frozen=True)
class Identifier:
    kind: Kind
    value: str
    # What to look up when no member has this one: the external id a purely numeric text
    # may also be.
    fallback: Identifier | None = None

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


def parse_as(kind: Kind, text: str, region: str) -> Identifier:
    """`text` read as an identifier of `kind`, normalised; 802 when it is not one."""
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_LENGTH or not raw.isprintable():
        raise PointsError(802)
    if kind is Kind.EMAIL:
        if _EMAIL.fullmatch(raw):
            return Identifier(Kind.EMAIL, raw.lower())
    elif kind is Kind.MOBILE:
        mobile = normalise_mobile(raw, region) if looks_like_mobile(raw) else None
        if mobile is not None:
            return Identifier(Kind.MOBILE, mobile)
    elif _EXTERNAL_ID.fullmatch(raw):
        return Identifier(Kind.EXTERNAL_ID, raw)
    raise PointsError(802)


def parse_identifier(text: str, region: str) -> Identifier:
    """Which identifier `text` is, normalised; 802 when it is none of them.

    ``mobile:``, ``email:`` or ``external_id:`` in front names the kind. Without it: an
    email when there is an ``@``; a mobile when the text looks like a phone number; else an
    external id. Purely numeric text that is a valid mobile is the mobile with the external
    id as its fallback; one that is not a valid mobile is an external id.
    """
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_LENGTH or not raw.isprintable():
        raise PointsError(802)
    prefix, colon, rest = raw.partition(":")
    if colon and prefix.strip().lower() in set(Kind):
        return parse_as(Kind(prefix.strip().lower()), rest, region)
    if "@" in raw:
        return parse_as(Kind.EMAIL, raw, region)
    if raw.isascii() and raw.isdigit():
        mobile = normalise_mobile(raw, region)
        external = Identifier(Kind.EXTERNAL_ID, raw) if _EXTERNAL_ID.fullmatch(raw) else None
        if mobile is not None:
            return Identifier(Kind.MOBILE, mobile, fallback=external)
        if external is not None:
            return external
        raise PointsError(802)
    if looks_like_mobile(raw):
        return parse_as(Kind.MOBILE, raw, region)
    return parse_as(Kind.EXTERNAL_ID, raw, region)


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
