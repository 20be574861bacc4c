"""The member's language: the message catalogues (gettext, through Babel), which language a
chat speaks, and numbers, money and times as the member's locale writes them.

Every text a member reads has a message key (`balance`, `status.809`, `code.sms`...) and
one catalogue per language, `core/locales/<language>/LC_MESSAGES/messages.po`, compiled to
`messages.mo` when the project is installed (setup.py). English (`en`) is the reference:
every other catalogue has the same keys and, in each text, the same `{placeholders}`
(tests/unit/test_unit_i18n.py checks both). Adding a language is adding one catalogue:
the shipped languages are the catalogues there are.

The `.mo` compiled at install is what is read; a catalogue that was never compiled (a
checkout run without installing) is compiled from its `.po` in memory when first used. A
`.po` edited since the last install needs `pip install -e .` (or `pybabel compile -d
core/locales -D messages`) again: tests/unit/test_unit_i18n.py fails until the `.mo`
says what the `.po` says.

Formatting follows the member's language in the organisation's country
(`DEFAULT_PHONE_REGION`): `hi` in India is `hi_IN`, whose numbers are grouped the Indian
way (12,34,567), money carries `CURRENCY`'s symbol (₹500.00), times are the organisation's
(`ORG_TIMEZONE`) with the zone's abbreviation.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from string import Formatter
from typing import TYPE_CHECKING, Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, list_currencies

from core.times import local

if TYPE_CHECKING:
    from core.settings import Settings

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"
REFERENCE = "en"  # the catalogue every other one is checked against

# Status codes the member is not told as such: what they say is for staff (a fraud
# review), so the member reads a neutral text with the member care contact.
NEUTRAL_CODES = frozenset({809, 820, 3045})
# Status texts that send the member to member care: MEMBER_CARE_CONTACT follows them.
CARE_CODES = NEUTRAL_CODES | {826, 888, 899}


def shipped() -> tuple[str, ...]:
    """The languages there is a catalogue for, sorted ("en", "hi")."""
    return tuple(sorted(path.parent.parent.name
                        for path in LOCALES.glob(f"*/LC_MESSAGES/{DOMAIN}.po")))


def catalogue_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext.GNUTranslations:
    """The compiled catalogue of `language` (shipped), the reference catalogue behind it."""
    po = catalogue_path(language)
    mo = po.with_suffix(".mo")
    if mo.exists():
        with mo.open("rb") as compiled:
            found = gettext.GNUTranslations(compiled)
    else:
        found = gettext.GNUTranslations(io.BytesIO(compile_po(po)))
    if language != REFERENCE:
        found.add_fallback(translations(REFERENCE))
    return found


def compile_po(po: Path) -> bytes:
    """The `.mo` bytes of a `.po` catalogue (what `pybabel compile` writes)."""
    with po.open("rb") as source:
        catalog = read_po(source)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def choose(code: str | None, default: str) -> str:
    """The shipped language a messaging app's language tag names ("hi", "hi-IN", "en_US"),
    or `default` when it names none."""
    if code:
        tag = code.strip().replace("_", "-").lower()
        languages = shipped()
        if tag in languages:
            return tag
        base = tag.split("-")[0]
        if base in languages:
            return base
    return default


def known_language(value: str) -> str:
    """`value` as a shipped language; ValueError when it is none (the caller names the
    setting)."""
    language = value.strip().replace("_", "-").lower()
    if language not in shipped():
        raise ValueError(f"{value!r} is not a shipped language; shipped: "
                         f"{', '.join(shipped())} (a language is a catalogue in "
                         "core/locales)")
    return language


def known_currency(value: str) -> str:
    code = value.strip().upper()
    if code not in list_currencies():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code such as INR, USD or "
                         "EUR")
    return code


def locale_of(language: str, region: str) -> Locale:
    """The Babel locale for `language` in `region` ("hi", "IN" -> hi_IN); the language
    alone when that pair is no locale."""
    try:
        return Locale.parse(f"{language}_{region}")
    except (UnknownLocaleError, ValueError):
        return Locale.parse(language)


def placeholders(text: str) -> set[str]:
    """The `{names}` a text fills in."""
    return {name for _, name, _, _ in Formatter().parse(text) if name}


@dataclass(frozen=True)
class Texts:
    """One language's texts and formats: what a reply is written with."""

    language: str
    locale: Locale
    zone: tzinfo
    currency: str
    region: str
    care_contact: str = ""

    def __call__(self, key: str, **values: Any) -> str:
        """The text of `key` in this language, `{placeholders}` filled from `values`."""
        return translations(self.language).gettext(key).format(**values)

    def plural(self, key: str, count: int, **values: Any) -> str:
        """The text of `key` for `count` (`{count}` is filled in, formatted)."""
        text = translations(self.language).ngettext(key, key, count)
        return text.format(count=self.number(count), **values)

    def number(self, value: int | Decimal) -> str:
        return format_decimal(value, locale=self.locale)

    def money(self, value: Decimal) -> str:
        return format_currency(value, self.currency, locale=self.locale)

    def time(self, moment: datetime) -> str:
        """A moment in the organisation's zone, as the locale writes a date and a time,
        with the zone's abbreviation: "1 Mar 2026 2:30 PM IST"."""
        there = local(moment, self.zone)
        return (f"{format_date(there, 'medium', locale=self.locale)} "
                f"{format_time(there, 'short', locale=self.locale)} "
                f"{there.tzname() or ''}").rstrip()

    def care(self) -> str:
        """How to reach member care (MEMBER_CARE_CONTACT) on a line of its own, or
        nothing when no contact is set."""
        return f"\n{self('care.contact', contact=self.care_contact)}" if self.care_contact \
            else ""

    def status(self, code: int, facts: Mapping[str, Any] | None = None) -> str:
        """A status code as a member reads it: the code and a plain text written for
        members (the seed's message stays for the CLI, the staff view and the logs); a
        fraud code reads as a neutral text that their account needs a check. A text that
        sends the member to member care is followed by the contact."""
        key = "status.neutral" if code in NEUTRAL_CODES else f"status.{code}"
        text = translations(self.language).gettext(key).format_map(
            _Keep({k: self.number(v) if isinstance(v, int | Decimal) and not isinstance(
                v, bool) else v for k, v in (facts or {}).items()}))
        return f"{code} {text}{self.care() if code in CARE_CODES else ''}"

    def in_language(self, language: str) -> Texts:
        """The same formats and contact in another language."""
        return texts(language, zone=self.zone, currency=self.currency, region=self.region,
                     care_contact=self.care_contact)


class _Keep(dict[str, Any]):
    """Leaves a placeholder as it is when no value was given for it."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def texts(language: str, *, zone: tzinfo, currency: str, region: str,
          care_contact: str = "") -> Texts:
    return Texts(language, locale_of(language, region), zone, currency, region,
                 care_contact)


def for_settings(settings: Settings, language: str = "") -> Texts:
    """The texts of `language` (empty: DEFAULT_LANGUAGE) with the settings' formats: zone,
    CURRENCY, the region (DEFAULT_PHONE_REGION) and MEMBER_CARE_CONTACT."""
    return texts(language or settings.default_language, zone=settings.zone,
                 currency=settings.currency, region=settings.default_phone_region,
                 care_contact=settings.member_care_contact)


__all__ = ["CARE_CODES", "DOMAIN", "LOCALES", "NEUTRAL_CODES", "REFERENCE", "Texts",
           "catalogue_path", "choose", "compile_po", "for_settings", "known_currency",
           "known_language", "locale_of", "placeholders", "shipped", "texts", "translations"]
