"""Members read their own language, through the real Application and the stand-in Bot API
on a real database: a Hindi-speaking member (Telegram's language_code "hi") verifies,
checks the balance and redeems in Hindi; /language switches with buttons and the choice is
kept with the chat (a new application, another language_code, still the member's choice);
an app language no catalogue has falls back to DEFAULT_LANGUAGE; a fraud code reaches the
member as a neutral text with MEMBER_CARE_CONTACT; the code's e-mail comes from the
operators' templates, through a local SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session

from bot import app as bot_app
from core.models import ChatState
from core.status import message
from tests.bot.bot_harness import ASHA, RAVI, Chat, World, telegram_phone, text_of
from tests.bot.test_bot_channels import Mailbox, free_port

DEVANAGARI = re.compile(r"[\u0900-\u097F]")


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A local SMTP server (aiosmtpd) keeping what it receives."""
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def hindi(text: str) -> bool:
    """The text is written in Devanagari (and holds no English sentence of ours)."""
    return bool(DEVANAGARI.search(text)) and not re.search(
        r"\b(points|redeem|Welcome|Current|code)\b", text)


def kept_language(world: World, user_id: int) -> str | None:
    with Session(world.services[0].db.engine) as session:
        state = session.get(ChatState, str(user_id))
        return state.language if state is not None else None


async def hindi_chat(world: World, **overrides: object) -> Chat:
    chat = await world.chat(**overrides)
    chat.user.user["language_code"] = "hi"
    return chat


def chat_code(chat: Chat) -> str:
    """The newest code the chat channel sent here, in whatever language."""
    for sent in reversed(chat.world.stand_in.messages(chat.user.id)):
        if sent.text.startswith("🧪 SANDBOX CODE"):
            found = re.search(r"\b(\d{6})\b", sent.text)
            assert found, sent.text
            return found.group(1)
    raise LookupError("no code in the chat")


async def test_a_hindi_speaking_member_verifies_checks_and_redeems_in_hindi(
        world: World) -> None:
    chat = await hindi_chat(world, org_timezone="Asia/Kolkata")
    replies = await chat.say("/start")
    assert hindi(replies[-1].text), replies[-1].text
    [[button]] = replies[-1].keyboard or [[]]
    assert button.text == "मेरा फ़ोन नंबर भेजें" and button.request_contact

    replies = await chat.share_contact(telegram_phone(ASHA))
    assert replies[-1].text.startswith("स्वागत है, Asha! आपके पास 2,000 पॉइंट हैं।")
    assert replies[-1].keyboard_texts == ["बैलेंस", "रिडीम करें", "इतिहास", "मदद"]
    assert kept_language(world, chat.user.id) == "hi"  # kept when the member verified

    replies = await chat.say("बैलेंस")  # the Hindi menu word is /balance
    assert text_of(replies) == ("मौजूदा पॉइंट: 2,000 (मूल्य ₹2,000.00)\n"
                                "कुल अर्जित पॉइंट: 2,000\n"
                                "कुल ख़रीदारी: ₹12,000.00\n"
                                "आप एक बार में 100 से 5,000 पॉइंट, 50 के गुणकों में, रिडीम "
                                "कर सकते हैं।")

    replies = await chat.say("रिडीम करें")
    assert hindi(replies[-1].text) and replies[-1].button_texts == ["100", "750", "1,350",
                                                                     "2,000"]
    replies = await chat.say("120")
    assert replies[-1].text.startswith("807 पॉइंट सिर्फ़ 50 के गुणकों में रिडीम किए जा सकते हैं।")
    replies = await chat.say("500")
    assert replies[-1].text == "500 पॉइंट (₹500.00 मूल्य के) रिडीम करें?"
    assert replies[-1].button_texts == ["पुष्टि करें", "रद्द करें"]

    replies = await chat.press("पुष्टि करें")
    sms = replies[0].text
    assert sms.startswith("🧪 SANDBOX CODE") and "Loyalty: आपका सत्यापन कोड" in sms, sms
    assert "10 मिनट तक मान्य है" in sms
    assert replies[-1].text.startswith("सत्यापन कोड चैट से चैट पर भेजा गया।")
    assert "1 मार्च 2026 2:40 pm IST" in replies[-1].text.replace("\u202f", " ")
    assert replies[-1].button_texts == ["कोड फिर से भेजें", "रद्द करें"]

    code = chat_code(chat)
    replies = await chat.say("000000" if code != "000000" else "111111")
    assert replies[-1].text.startswith("808 सत्यापन कोड मान्य नहीं है।\n4 प्रयास बाकी हैं।")

    replies = await chat.say(code)
    text = text_of(replies)
    assert text.startswith("800 पॉइंट सफलतापूर्वक रिडीम हो गए।\nरिडेम्पशन आईडी: R"), text
    assert "रिडीम किए गए पॉइंट: 500 (मूल्य ₹500.00)\nनया बैलेंस: 1,500 पॉइंट" in text
    assert hindi(text.replace("TG-", "")), text
    assert world.member(ASHA["mobile"]).current_points == 1500

    replies = await chat.say("/history")
    assert replies[-1].text.startswith("आपके पिछले रिडेम्पशन और वापसियाँ:")
    assert "500 पॉइंट रिडीम किए" in replies[-1].text


async def test_language_switches_with_buttons_and_is_kept_with_the_chat(world: World) -> None:
    chat = await world.chat()  # Telegram says "en"
    await chat.link()
    assert kept_language(world, chat.user.id) == "en"
    replies = await chat.say("/language")
    assert replies[-1].text == "Choose your language:"
    assert replies[-1].button_texts == ["English", "हिन्दी"]

    replies = await chat.press("हिन्दी")
    assert replies[-1].text == "अब से मैं आपसे हिन्दी में बात करूँगा।"
    assert replies[-1].keyboard_texts == ["बैलेंस", "रिडीम करें", "इतिहास", "मदद"]
    assert kept_language(world, chat.user.id) == "hi"

    # Another worker (a new application), and the app still says "en": the choice holds.
    again = Chat(world, chat.user, await world.application())
    replies = await again.say("/balance")
    assert replies[-1].text.startswith("मौजूदा पॉइंट: 2,000"), replies[-1].text

    replies = await again.say("/language en")  # typed with the language: at once
    assert replies[-1].text == "I will write to you in English from now on."
    replies = await again.say("Balance")
    assert replies[-1].text.startswith("Current points: 2,000")
    assert kept_language(world, chat.user.id) == "en"

    # Button data naming no shipped language is not understood, and changes nothing.
    replies = await again.deliver(again.user.sends_callback(again.last(), "l:fr"))
    assert kept_language(world, chat.user.id) == "en"
    assert "did not understand" in text_of(replies)


async def test_an_app_language_without_a_catalogue_falls_back_to_default_language(
        world: World) -> None:
    french = await world.chat()
    french.user.user["language_code"] = "fr"
    assert "share your phone number" in (await french.say("/start"))[-1].text

    hindi_default = await world.chat(default_language="hi")
    hindi_default.user.user["language_code"] = "fr"
    replies = await hindi_default.say("/start")
    assert hindi(replies[-1].text), replies[-1].text

    regional = await world.chat()  # a regional tag reads as its language
    regional.user.user["language_code"] = "hi-IN"
    assert hindi((await regional.say("/start"))[-1].text)


async def test_a_fraud_code_reaches_the_member_as_a_neutral_text_with_the_care_contact(
        world: World) -> None:
    chat = await world.chat(member_care_contact="+91 80 4567 8900 (9am to 6pm)")
    await chat.link(RAVI)  # fraud status MARKED
    replies = await chat.say("/redeem 500")
    text = replies[-1].text
    assert text == ("You cannot redeem points now.\n809 Your account needs a check before "
                    "points can be redeemed. Please contact member care.\n"
                    "Member care: +91 80 4567 8900 (9am to 6pm)")
    assert "fraud" not in text.lower() and message(809) not in text

    hindi_fraud = await hindi_chat(world, member_care_contact="care@example.com")
    await hindi_fraud.say("/start")
    await hindi_fraud.share_contact(telegram_phone(RAVI))
    replies = await hindi_fraud.say("/balance")
    assert ("809 पॉइंट रिडीम करने से पहले आपके खाते की जाँच ज़रूरी है। कृपया मेंबर केयर से "
            "संपर्क करें।\nमेंबर केयर: care@example.com") in replies[-1].text

    # Sharing a number that is not in the program: contact member care, with the contact.
    stranger = await world.chat(member_care_contact="https://example.com/care")
    await stranger.say("/start")
    replies = await stranger.share_contact("919811111111")
    assert replies[-1].text.endswith("please contact member care.\n"
                                     "Member care: https://example.com/care")


async def test_the_command_menu_is_described_in_every_language(world: World) -> None:
    chat = await world.chat()
    app = chat.application
    await bot_app._post_init(app)
    try:
        english = {c["command"]: c["description"] for c in world.stand_in.commands}
        hindi_menu = {c["command"]: c["description"]
                      for c in world.stand_in.commands_by_language["hi"]}
    finally:
        app.bot_data["sweeper"].cancel()
    assert english["language"] == "Choose your language"
    assert hindi_menu["language"] == "अपनी भाषा चुनें" and set(hindi_menu) == set(english)


async def test_the_codes_email_comes_from_the_operators_templates(
        world: World, smtp_server: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp_server
    template = tmp_path / "email.txt"
    template.write_text("Namaste {name},\n{brand} code {code}: {points} points, worth {value}, "
                        "for {minutes} minutes.\n", encoding="utf-8")
    chat = await hindi_chat(world, otp_channel="email", smtp_host="127.0.0.1",
                            smtp_port=port, smtp_from="points@example.com",
                            smtp_starttls=False, brand_name="Acme Rewards",
                            email_subject="{brand}: your code", email_template_file=str(template))
    await chat.say("/start")
    await chat.share_contact(telegram_phone(ASHA))
    await chat.say("/redeem 1500")
    replies = await chat.press("पुष्टि करें")
    assert replies[-1].text.startswith("सत्यापन कोड ईमेल से a•••@example.com पर भेजा गया।")
    [mail] = mailbox.messages
    assert mail["Subject"] == "Acme Rewards: your code"
    body = mail.get_payload(decode=True).decode()
    found = re.fullmatch(r"Namaste Asha,\nAcme Rewards code (\d{6}): 1,500 points, worth "
                         r"₹1,500.00, for 10 minutes.", body.replace("\r\n", "\n").strip())
    assert found, body
    replies = await chat.say(found.group(1))
    assert text_of(replies).startswith("800 पॉइंट सफलतापूर्वक रिडीम हो गए।")

    # Without templates, the catalogue's e-mail in the member's language.
    default = await hindi_chat(world, otp_channel="email", smtp_host="127.0.0.1",
                               smtp_port=port, smtp_from="points@example.com",
                               smtp_starttls=False)
    await default.say("/start")
    await default.share_contact(telegram_phone(ASHA))
    await default.say("/redeem 100")
    await default.press("पुष्टि करें")
    latest = mailbox.messages[-1]
    assert str(make_header(decode_header(latest["Subject"]))) == "आपका Loyalty सत्यापन कोड"
    assert latest.get_payload(decode=True).decode().replace("\r\n", "\n").startswith(
        "नमस्ते Asha,\n\nआपका Loyalty सत्यापन कोड ")
