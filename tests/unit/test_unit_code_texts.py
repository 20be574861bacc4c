"""The code's SMS and e-mail texts: the operators' templates (in a setting or a file),
checked when the settings are read (no {code}, or an unknown placeholder: 888 naming the
setting), filled in with the member's numbers in their locale; without a template, the
catalogue's text in the member's language."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.code_texts import CodeTexts
from core.delivery import CodeMessage
from core.settings import load_settings
from core.status import PointsError


def code_message(**overrides: object) -> CodeMessage:
    values: dict[str, object] = {
        "member_id": 1, "name": "Asha", "mobile": "+919812345678",
        "email": "asha@example.com", "code": "482913", "points": 150000,
        "value": Decimal("150000.00"), "valid_minutes": 10}
    return CodeMessage(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(("setting", "value", "says"), [
    ("sms_template", "Your points: {points}", "no {code} placeholder"),
    ("sms_template", "{code} for {member}", "unknown placeholder {member}"),
    ("sms_template", "{code} {points:>10}", "unknown placeholder {points:>10}"),
    ("sms_template", "{code} {", "not a template"),
    ("email_template", "Hello {name}", "no {code} placeholder"),
    ("email_subject", "{brand} {code.__class__}", "unknown placeholder"),
])
def test_a_template_without_the_code_or_with_an_unknown_placeholder_is_888(
        setting: str, value: str, says: str) -> None:
    with pytest.raises(PointsError) as refused:
        load_settings(**{setting: value})
    assert refused.value.status.code == 888
    assert setting.upper() in refused.value.detail and says in refused.value.detail


def test_a_template_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "sms.txt"
    good.write_text("{code} is your {brand} OTP for {points} pts ({value}). "
                    "Valid {minutes} min.\n", encoding="utf-8")
    settings = load_settings(sms_template_file=str(good), brand_name="Acme")
    assert CodeTexts.of(settings).sms(code_message()) == (
        "482913 is your Acme OTP for 1,50,000 pts (₹1,50,000.00). Valid 10 min.")

    bad = tmp_path / "bad.txt"
    bad.write_text("Your OTP is {otp}", encoding="utf-8")
    with pytest.raises(PointsError) as refused:
        load_settings(sms_template_file=str(bad))
    assert refused.value.status.code == 888 and "SMS_TEMPLATE_FILE" in refused.value.detail
    with pytest.raises(PointsError) as missing:
        load_settings(email_template_file=str(tmp_path / "nowhere.txt"))
    assert missing.value.status.code == 888
    assert "EMAIL_TEMPLATE_FILE" in missing.value.detail
    with pytest.raises(PointsError) as both:
        load_settings(sms_template="{code}", sms_template_file=str(good))
    assert both.value.status.code == 899
    assert "SMS_TEMPLATE or SMS_TEMPLATE_FILE" in both.value.detail


def test_a_template_is_sent_as_written_in_every_language() -> None:
    """In India the SMS must match the template registered with the operator."""
    settings = load_settings(sms_template="{brand}: OTP {code}. Do not share.",
                             brand_name="Acme Rewards", default_language="hi")
    texts = CodeTexts.of(settings)
    for language in ("en", "hi", ""):
        assert texts.sms(code_message(language=language)) == \
            "Acme Rewards: OTP 482913. Do not share."


def test_without_a_template_the_catalogue_text_in_the_members_language() -> None:
    texts = CodeTexts.of(load_settings(brand_name="Acme"))
    english = texts.sms(code_message(language="en", points=500, value=Decimal("500")))
    assert english == ("Acme: Your validation code is 482913. It confirms redeeming 500 "
                       "points (worth ₹500.00) and is valid for 10 minutes. Do not share it "
                       "with anyone.")
    hindi = texts.sms(code_message(language="hi", points=500, value=Decimal("500")))
    assert hindi.startswith("Acme: आपका सत्यापन कोड 482913 है।") and "10 मिनट" in hindi
    subject, body = texts.email(code_message(language="hi", name=""))
    assert subject == "आपका Acme सत्यापन कोड"
    assert body.startswith("नमस्ते सदस्य,\n\n") and "482913" in body
    # No language given: DEFAULT_LANGUAGE's.
    default = CodeTexts.of(load_settings(default_language="hi")).sms(code_message())
    assert default.startswith("Loyalty: आपका सत्यापन कोड 482913 है।")


def test_brand_name_and_member_care_contact_are_one_line() -> None:
    settings = load_settings(brand_name="  Acme\n Rewards ", member_care_contact="1800\t123")
    assert settings.brand_name == "Acme Rewards"
    assert settings.member_care_contact == "1800 123"
