"""A member's way through the bot, end to end: the real Application, the stand-in Bot
API, a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core import reads
from tests.bot.bot_harness import (
    ASHA,
    CAMPAIGN,
    NON_LOYALTY,
    RAVI,
    World,
    shown,
    telegram_phone,
    text_of,
)
from tests.support.clock import Clock
from tests.support.databases import own_database


async def test_the_whole_happy_path(world: World) -> None:
    chat = await world.chat()
    replies = await chat.say("/start")
    assert "share your phone number" in replies[-1].text
    [[button]] = replies[-1].keyboard or [[]]
    assert button.request_contact

    replies = await chat.share_contact(telegram_phone(ASHA))
    assert "Welcome, Asha! You have 2,000 points." in replies[-1].text
    assert replies[-1].keyboard_texts == ["Balance", "Redeem", "History", "Help"]

    replies = await chat.say("/balance")
    assert text_of(replies) == ("Current points: 2,000 (worth ₹2,000.00)\n"
                                "Lifetime points: 2,000\n"
                                "Lifetime purchases: ₹12,000.00\n"
                                "You can redeem 100 to 5,000 points at a time, in multiples "
                                "of 50.")

    replies = await chat.say("Redeem")  # the menu button
    assert "How many do you want to redeem?" in replies[-1].text
    # Four amounts spread over what Asha can redeem: the minimum to all 2,000.
    assert replies[-1].button_texts == ["100", "750", "1,350", "2,000"]

    replies = await chat.say("500")
    assert replies[-1].text == "Redeem 500 points worth ₹500.00?"
    assert replies[-1].button_texts == ["Confirm", "Cancel"]

    replies = await chat.press("Confirm")
    assert replies[0].text.startswith("🧪 SANDBOX CODE")
    assert "Validation Code Issued by chat: sent to chat." in replies[-1].text
    assert replies[-1].button_texts == ["Resend code", "Cancel"]
    assert chat.with_button("Resend").message_id == replies[-1].message_id
    summary = next(m for m in world.stand_in.messages(chat.user.id) if "Redeem 500" in m.text)
    assert summary.buttons == []  # Confirm and Cancel were taken off once pressed

    replies = await chat.say(chat.chat_code())
    text = text_of(replies)
    assert text.startswith("800 Points redeemed successfully\nRedemption id: R")
    assert "Points redeemed: 500 (worth ₹500.00)\nNew balance: 1,500 points" in text
    assert "Transaction number: TG-20260301-" in text
    assert world.member(ASHA["mobile"]).current_points == 1500

    replies = await chat.say("/history")
    assert "redeemed 500 points  R" in replies[-1].text
    assert "(TG-20260301-" in replies[-1].text


async def test_redeem_with_an_amount_goes_straight_to_the_summary(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    replies = await chat.say("/redeem 1,000")
    assert replies[-1].text == "Redeem 1,000 points worth ₹1,000.00?"


async def test_a_suggested_amount_button_gives_the_summary(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem")
    replies = await chat.press("750")
    assert replies[-1].text == "Redeem 750 points worth ₹750.00?"


@pytest.mark.parametrize(("overrides", "amount", "code"), [
    ({}, "abc", 801),
    ({}, "50", 821),
    ({}, "120", 807),
    ({}, "6000", 819),
    ({}, "3000", 803),
    ({"redemption_min_current_points": 2500}, "500", 804),
    ({"redemption_min_lifetime_points": 5000}, "500", 805),
    ({"redemption_min_lifetime_purchases": "20000"}, "500", 806),
    ({"redemption_enabled": False}, "500", 827),
])
async def test_each_rule_failure_shows_its_code(world: World, overrides: dict[str, Any],
                                                amount: str, code: int) -> None:
    chat = await world.chat(**overrides)
    await chat.link()
    await chat.say("/redeem")
    replies = await chat.say(amount)
    if code in (804, 805, 806, 827):
        # No amount would do: the member is told so, with the code, and is not asked again.
        assert replies[-1].text.startswith(f"You cannot redeem points now.\n{code} ")
        assert replies[-1].button_texts == []
        return
    assert replies[-1].text.startswith(f"{code} "), replies[-1].text
    assert "Type another amount, or /cancel." in replies[-1].text
    # The member may try another amount straight away.
    replies = await chat.say("500")
    assert replies[-1].text == "Redeem 500 points worth ₹500.00?"


async def test_a_fraud_member_is_refused_with_809(world: World) -> None:
    chat = await world.chat(name="Ravi")
    await chat.link(RAVI)
    replies = await chat.say("/redeem 500")
    assert replies[-1].text.startswith(
        "You cannot redeem points now.\n809 Your account needs a check before points can be "
        "redeemed.")


async def test_a_contact_of_someone_else_is_refused(world: World) -> None:
    chat = await world.chat()
    await chat.say("/start")
    for owner in (chat.user.id + 1, None):
        replies = await chat.share_contact(telegram_phone(ASHA), user_id=owner)
        assert "not your own contact" in replies[-1].text
    replies = await chat.say("/balance")
    assert "First share your phone number" in replies[-1].text


async def test_a_number_verified_from_another_account_unlinks_the_older_one(
        world: World) -> None:
    """One Telegram account per member: the newest verification wins, and the older chat
    is told why on its next message and asked to share its number again."""
    old = await world.chat()
    await old.link()
    await old.say("/redeem 500")
    new = await world.chat(name="Asha's new phone")
    await new.link()
    for attempt in ("/balance", "Confirm", "/start"):
        replies = await (old.press(attempt) if attempt == "Confirm" else old.say(attempt))
        assert "verified from another Telegram account" in replies[-1].text
        assert "share your phone number again" in replies[-1].text
        [[button]] = replies[-1].keyboard or [[]]
        assert button.request_contact
    assert "Current points: 2,000" in (await new.say("/balance"))[-1].text
    await old.share_contact(telegram_phone(ASHA))  # back again: now the new one is out
    assert "Current points: 2,000" in (await old.say("/balance"))[-1].text
    assert "verified from another" in (await new.say("/balance"))[-1].text
    assert world.member(ASHA["mobile"]).current_points == 2000


@pytest.mark.parametrize(("member", "code"), [
    ({"mobile": "+919812300000"}, 816), (CAMPAIGN, 686), (NON_LOYALTY, 881)])
async def test_a_number_that_cannot_redeem_is_refused_with_its_code(
        world: World, member: dict[str, str], code: int) -> None:
    chat = await world.chat()
    await chat.say("/start")
    replies = await chat.share_contact(telegram_phone(member))
    assert replies[-1].text.startswith(f"{code} "), replies[-1].text
    assert replies[-1].keyboard == []  # the contact button is taken away
    replies = await chat.say("/balance")
    assert "First share your phone number" in replies[-1].text


async def test_a_wrong_code_shows_808_with_attempts_left_then_voids(world: World) -> None:
    chat = await world.chat(otp_max_attempts=3)
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    wrong = "000000" if code != "000000" else "111111"
    replies = await chat.say(wrong)
    assert replies[-1].text.startswith("808 The validation code is not valid.\n"
                                       "2 attempts left.")
    assert replies[-1].button_texts == ["Resend code", "Cancel"]
    replies = await chat.say(wrong)
    assert "1 attempt left." in replies[-1].text
    replies = await chat.say(wrong)
    assert "Too many wrong attempts" in replies[-1].text
    assert replies[-1].button_texts == ["Send a new code", "Cancel"]
    replies = await chat.say(code)  # even the right code: it is void now
    assert "The code is no longer valid." in replies[-1].text
    assert world.member(ASHA["mobile"]).current_points == 2000

    await chat.press("Send a new code")
    new_code = chat.chat_code()
    replies = await chat.say(new_code)
    assert replies[-1].text.startswith("800 ")
    assert world.member(ASHA["mobile"]).current_points == 1500


async def test_an_expired_code_says_so_and_offers_a_new_one(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    world.clock.advance(601)
    replies = await chat.say(code)
    assert replies[-1].text.startswith("808 ")
    assert "The code has expired." in replies[-1].text
    await chat.press("Send a new code")
    replies = await chat.say(chat.chat_code())
    assert replies[-1].text.startswith("800 ")


async def test_a_used_code_redeems_nothing_more(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    first = text_of(await chat.say(code))
    assert first.startswith("800 ")

    # Back at the menu: the code typed again is an amount (not a multiple of 50 here),
    # never the finished redemption's code.
    again = text_of(await chat.say(code))
    assert not again.startswith(("800", "808", "This redemption")), again
    await chat.say("/cancel")
    assert world.member(ASHA["mobile"]).current_points == 1500

    # In a new redemption the old code is just wrong.
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    replies = await chat.say(code)
    assert replies[-1].text.startswith("808 ") and "attempts left" in replies[-1].text
    assert world.member(ASHA["mobile"]).current_points == 1500


async def test_resend_sends_the_same_code_within_the_limit(world: World) -> None:
    chat = await world.chat(otp_max_sends=2)
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    replies = await chat.press("Resend code")
    assert "sent again to chat" in replies[-1].text
    assert chat.chat_code() == code
    replies = await chat.press("Resend code")
    assert replies[-1].text.startswith("860 We could not send a validation code.")
    replies = await chat.say(code)
    assert replies[-1].text.startswith("800 ")


async def test_cancel_leaves_any_step(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    replies = await chat.say("/cancel")
    assert replies[-1].text == "Cancelled: nothing was redeemed."
    replies = await chat.press("Confirm")  # the old summary's button
    assert "no longer pending" in replies[-1].text
    replies = await chat.say("/cancel")
    assert replies[-1].text == "There is nothing to cancel."

    await chat.say("/redeem 500")
    await chat.press("Confirm")
    replies = await chat.press("Cancel")
    assert replies[-1].text == "Cancelled: nothing was redeemed."
    replies = await chat.say(chat.chat_code())  # back at the menu: a number is an amount
    assert not replies[-1].text.startswith(("800", "808")), replies[-1].text
    assert world.member(ASHA["mobile"]).current_points == 2000


async def test_anything_not_understood_gets_a_short_help(world: World) -> None:
    chat = await world.chat()
    for text in ("hello", "/nonsense", "/start extra"):
        replies = await chat.say(text)
        assert replies, text
    await chat.link()
    replies = await chat.say("what is this")
    assert replies[-1].text.startswith("Sorry, I did not understand that.")
    replies = await chat.say("/frobnicate")
    assert replies[-1].text.startswith("Sorry, I did not understand that.")


async def test_malformed_callback_data_gets_help_not_an_exception(world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    summary = chat.last()
    for data in ("", "c:", "c:short", "p:0", "p:-5", "z:ABCDEFGH", "c:ABCDEFGH", "x" * 64,
                 "p:99999999999999999"):
        replies = await chat.deliver(chat.user.sends_callback(summary, data))
        assert replies, data
        assert "Traceback" not in replies[-1].text
        assert ("did not understand" in replies[-1].text
                or "no longer pending" in replies[-1].text
                or replies[-1].text.startswith("801 ")), (data, replies[-1].text)
    assert world.stand_in.callback_answers  # every press was answered


async def test_members_see_only_their_own_data(world: World) -> None:
    asha = await world.chat()
    await asha.link()
    await asha.say("/redeem 500")
    await asha.press("Confirm")
    await asha.say(asha.chat_code())

    other = await world.chat(name="Mallory")
    for text in ("/balance", "/history", f"/history {ASHA['mobile']}", "/redeem 500"):
        replies = await other.say(text)
        assert "First share your phone number" in replies[-1].text, text
    replies = await other.say(f"/member {ASHA['mobile']}")
    assert replies[-1].text == "This command is for member care staff only."
    await other.link(RAVI)
    replies = await other.say(f"/history {ASHA['mobile']}")
    assert replies[-1].text == "No redemptions yet."


async def test_group_chats_get_pointed_to_a_private_chat(world: World) -> None:
    chat = await world.chat()
    update = chat.user.says("/balance")
    update["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Friends"}
    await chat.deliver(update)
    [message] = world.stand_in.messages(-100123)
    assert "private chat" in message.text


async def test_an_unexpected_error_gets_a_short_help_and_no_traceback(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    chat = await world.chat()
    await chat.link()

    def broken(work: object, member: object) -> None:
        raise RuntimeError("the disk caught fire at /var/lib/secret/path")

    monkeypatch.setattr(reads, "balance", broken)
    replies = await chat.say("/balance")
    assert replies[-1].text.startswith("Sorry, something went wrong on my side.")
    assert "fire" not in replies[-1].text and "Traceback" not in replies[-1].text
    assert "the disk caught fire" in caplog.text  # the operator's log has it


async def test_engine_calls_never_run_on_the_event_loop(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    chat = await world.chat()
    service = world.services[-1]
    on_loop: list[str] = []
    calls = 0
    run = service.db.run

    def watched(unit: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        try:
            asyncio.get_running_loop()
            on_loop.append(getattr(unit, "__qualname__", str(unit)))
        except RuntimeError:
            pass  # a worker thread: as it should be
        return run(unit, **kw)

    monkeypatch.setattr(service.db, "run", watched)
    await chat.link()
    await chat.say("/balance")
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    replies = await chat.say(chat.chat_code())
    assert replies[-1].text.startswith("800 ")
    await chat.say("/history")
    assert calls >= 6 and on_loop == []


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_database_that_cannot_be_reached_answers_815_in_the_chat(
        kind: str, tmp_path: Path, clock: Clock) -> None:
    """The database goes away under a running bot (SQLite: its directory is gone;
    PostgreSQL: it refuses connections, and the open ones are closed): the member gets 815
    and its message, not a generic error, and the bot carries on once it is back."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    home = tmp_path / "data"
    home.mkdir()
    with own_database(kind, home) as url:
        world = World(url, clock)
        try:
            chat = await world.chat(db_retry_attempts=2)
            await chat.link()
            admin = create_engine(make_url(url).set(database="postgres"),
                                  isolation_level="AUTOCOMMIT", poolclass=NullPool)

            def reachable(yes: bool) -> None:
                if kind == "sqlite":
                    if yes:
                        home.unlink()
                        (tmp_path / "moved").rename(home)
                    else:
                        home.rename(tmp_path / "moved")
                        home.write_text("not a directory any more")
                else:
                    name = make_url(url).database
                    with admin.connect() as connection:
                        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS '
                                                f"{'true' if yes else 'false'}"))
                        if not yes:
                            connection.execute(text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :name"), {"name": name})
                for service in world.services:
                    service.db.dispose()  # its open connections are gone too

            reachable(False)
            try:
                replies = await chat.say("/balance")
            finally:
                reachable(True)
                admin.dispose()
            assert replies[-1].text.startswith(shown(815)), replies[-1].text
            replies = await chat.say("/balance")
            assert "2,000" in text_of(replies)
        finally:
            await world.close()
