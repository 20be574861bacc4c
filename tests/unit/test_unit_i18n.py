"""The message catalogues and the member's formats: every message translated in every
shipped language with the same placeholders, a member text for every status code, the
compiled catalogues in step with their sources, the chat's language from an app's tag,
numbers, money and times in the member's locale, and the fraud codes' neutral text."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from bot import replies
from core import i18n
from core.settings import load_settings
from core.status import CATALOGUE, PointsError, message


def catalogue(language: str) -> dict[str, tuple[str, ...]]:
    """The catalogue's messages: key -> its text (each plural form), the header left out."""
    with i18n.catalogue_path(language).open("rb") as source:
        read = read_po(source, locale=language)
    found: dict[str, tuple[str, ...]] = {}
    for entry in read:
        if not entry.id:
            continue
        key = entry.id[0] if isinstance(entry.id, tuple) else entry.id
        texts = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert not entry.fuzzy, f"{language}: {key} is marked fuzzy"
        found[key] = tuple(texts)
    return found


REFERENCE = catalogue(i18n.REFERENCE)


def test_english_and_hindi_are_shipped() -> None:
    assert set(i18n.shipped()) >= {"en", "hi"}


@pytest.mark.parametrize("language", i18n.shipped())
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    found = catalogue(language)
    assert set(found) == set(REFERENCE), (
        f"{language}: missing {sorted(set(REFERENCE) - set(found))}, "
        f"unknown {sorted(set(found) - set(REFERENCE))}")
    for key, texts in found.items():
        assert all(text.strip() for text in texts), f"{language}: {key} is not translated"
        wanted = set().union(*(i18n.placeholders(t) for t in REFERENCE[key]))
        for text in texts:
            assert i18n.placeholders(text) == wanted, (
                f"{language}: {key} has {sorted(i18n.placeholders(text))}, "
                f"English has {sorted(wanted)}")


@pytest.mark.parametrize("language", i18n.shipped())
def test_the_compiled_catalogue_is_its_source(language: str) -> None:
    """What the install compiled (setup.py) says what the .po says. Failing here: the .po
    was edited since the last install; `pip install -e .` (or `pybabel compile -d
    core/locales -D messages`) compiles it again."""
    po = i18n.catalogue_path(language)
    mo = po.with_suffix(".mo")
    if not mo.exists():  # never compiled: i18n.translations compiles the .po in memory
        assert i18n.translations(language).gettext("language.name") == \
            catalogue(language)["language.name"][0]
        return
    with mo.open("rb") as compiled:
        read = {m.id[0] if isinstance(m.id, list | tuple) else m.id:
                tuple(m.string) if isinstance(m.string, list | tuple) else (m.string,)
                for m in read_mo(compiled) if m.id}
    assert read == catalogue(language)


def test_every_status_code_has_a_text_for_members_and_the_seed_message_stays() -> None:
    for code in CATALOGUE:
        assert f"status.{code}" in REFERENCE, code
        for language in i18n.shipped():
            text = replies.ENGLISH.in_language(language).status(code, {"multiple": 50})
            assert text.startswith(f"{code} ") and "{" not in text, (language, text)
    # The seed's text is the engine's, word for word (CLI, staff, logs).
    assert PointsError(809).status.message == "Unable to process. Customer is marked as fraud"
    assert str(PointsError(816)) == f"816 {message(816)}"


@pytest.mark.parametrize("code", sorted(i18n.NEUTRAL_CODES))
def test_the_fraud_codes_read_as_a_neutral_check_with_the_care_contact(code: int) -> None:
    for language in i18n.shipped():
        texts = replies.ENGLISH.in_language(language)
        with_contact = i18n.texts(language, zone=UTC, currency="INR", region="IN",
                                  care_contact="1800 123 4567")
        plain = texts.status(code, {"customer_id": 42})
        shown = with_contact.status(code, {"customer_id": 42})
        assert "fraud" not in shown.lower() and "42" not in shown
        assert shown.startswith(f"{code} ") and shown.endswith("1800 123 4567")
        assert plain == shown.rsplit("\n", 1)[0]  # no contact set: no contact line
    english = replies.refusal(PointsError(code, customer_id=7),
                              replies.ENGLISH.in_language("en"))
    assert english == (f"{code} Your account needs a check before points can be redeemed. "
                       "Please contact member care.")


def test_a_chat_speaks_its_apps_language_when_shipped_else_the_default() -> None:
    assert i18n.choose("hi", "en") == "hi"
    assert i18n.choose("hi-IN", "en") == "hi"
    assert i18n.choose("en_US", "hi") == "en"
    assert i18n.choose("fr", "hi") == "hi"
    assert i18n.choose("", "en") == "en"
    assert i18n.choose(None, "hi") == "hi"


def test_default_language_is_checked_and_its_error_names_the_setting() -> None:
    assert load_settings(default_language="HI").default_language == "hi"
    with pytest.raises(PointsError) as refused:
        load_settings(default_language="fr")
    assert refused.value.status.code == 888
    assert "DEFAULT_LANGUAGE" in refused.value.detail and "en, hi" in refused.value.detail


def test_currency_is_an_iso_code_and_its_error_names_the_setting() -> None:
    assert load_settings(currency="usd").currency == "USD"
    with pytest.raises(PointsError) as refused:
        load_settings(currency="RUPEES")
    assert refused.value.status.code == 888 and "CURRENCY" in refused.value.detail


def test_numbers_money_and_times_in_the_members_locale() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    english = i18n.texts("en", zone=kolkata, currency="INR", region="IN")
    hindi = i18n.texts("hi", zone=kolkata, currency="INR", region="IN")
    assert str(english.locale) == "en_IN" and str(hindi.locale) == "hi_IN"
    # Indian grouping: lakhs and crores.
    assert english.number(12345678) == hindi.number(12345678) == "1,23,45,678"
    assert english.money(Decimal("150000.5")) == "₹1,50,000.50"
    assert hindi.money(Decimal("500")) == "₹500.00"
    # The same language elsewhere groups by thousands; another currency has its symbol.
    british = i18n.texts("en", zone=UTC, currency="GBP", region="GB")
    assert british.number(12345678) == "12,345,678"
    assert british.money(Decimal("1234.5")) == "£1,234.50"
    # A stored moment (UTC) in ORG_TIMEZONE, as the locale writes it, with the zone.
    moment = datetime(2026, 3, 1, 9, 0)
    assert english.time(moment).replace("\u202f", " ") == "1 Mar 2026 2:30 PM IST"
    assert hindi.time(moment).replace("\u202f", " ") == "1 मार्च 2026 2:30 pm IST"
    assert british.time(moment) == "1 Mar 2026 09:00 UTC"
    # A region with no locale for the language: the language alone.
    assert str(i18n.locale_of("hi", "GB")) == "hi"


def test_plural_forms_follow_the_language() -> None:
    english = i18n.texts("en", zone=UTC, currency="INR", region="IN")
    hindi = i18n.texts("hi", zone=UTC, currency="INR", region="IN")
    assert english.plural("attempts_left", 1) == "1 attempt left."
    assert english.plural("attempts_left", 2) == "2 attempts left."
    assert hindi.plural("attempts_left", 1) == "1 प्रयास बाकी है।"
    assert hindi.plural("attempts_left", 3) == "3 प्रयास बाकी हैं।"


def test_the_menu_words_of_every_language_read_back_as_commands() -> None:
    assert replies.menu_command("Balance") == "balance"
    assert replies.menu_command("बैलेंस") == "balance"
    assert replies.menu_command(" रिडीम करें ") == "redeem"
    assert replies.menu_command("इतिहास") == "history"
    assert replies.menu_command("Balances") is None
