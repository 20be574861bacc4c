"""Member care in the chat: only STAFF_TELEGRAM_IDS may, every action is recorded with the
staff member's Telegram id, and anyone else is refused, logged and recorded."""

from __future__ import annotations

import logging

import pytest

from tests.bot.bot_harness import ASHA, RAVI, Chat, World, text_of

STAFF_ID = 900  # in the world's STAFF_TELEGRAM_IDS


async def redeemed(world: World) -> tuple[Chat, str, str]:
    """Asha redeems 500 points; answers her chat, the redemption id and transaction no."""
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    lines = text_of(await chat.say(chat.chat_code())).splitlines()
    return chat, lines[1].split(": ")[1], lines[4].split(": ")[1]


@pytest.mark.parametrize("command", [f"/member {ASHA['mobile']}",
                                     f"/goodwill {ASHA['mobile']} 100 because",
                                     "/revert TG-20260301-AAAAAAAA 500",
                                     "/reverse RABCDEFGHJK", "/goodwill"])
async def test_staff_commands_are_refused_for_anyone_else_and_logged(
        world: World, caplog: pytest.LogCaptureFixture, command: str) -> None:
    chat = await world.chat()
    await chat.link()
    with caplog.at_level(logging.WARNING, logger="core.chat_staff"):
        replies = await chat.say(command)
    assert replies[-1].text == "This command is for member care staff only."
    name = command.split()[0][1:]
    assert f"refused /{name}: the sender is not staff" in caplog.text
    assert str(chat.user.id) not in caplog.text  # the id is in the staff audit, not the log
    [line] = world.services[0].staff_actions()
    assert (line.staff, line.action, line.allowed) == (f"telegram:{chat.user.id}", name, False)
    assert world.member(ASHA["mobile"]).current_points == 2000


async def test_staff_look_a_member_up(world: World) -> None:
    await redeemed(world)
    staff = await world.chat(STAFF_ID, "Priya")
    replies = await staff.say(f"/member {ASHA['mobile']}")
    text = replies[-1].text
    assert "Member 1: Asha" in text
    assert "Fraud status: NONE" in text
    assert "Linked Telegram account: 1001 (Asha), verified " in text  # the chat that redeemed
    assert "Their current points: 1,500" in text
    assert "redeemed -500" in text
    line = world.services[0].staff_actions()[0]
    assert (line.staff, line.action, line.allowed) == ("telegram:900", "member", True)
    replies = await staff.say("/member ravi@example.com")
    assert "Linked Telegram account: none\n" in replies[-1].text


async def test_staff_give_goodwill_points(world: World) -> None:
    staff = await world.chat(STAFF_ID, "Priya")
    replies = await staff.say(f"/goodwill {ASHA['mobile']} 200 late delivery")
    assert replies[-1].text.startswith("Issued 200 goodwill points (G")
    assert world.member(ASHA["mobile"]).current_points == 2200
    line = world.services[0].staff_actions()[0]
    assert (line.staff, line.action) == ("telegram:900", "goodwill")
    assert "late delivery" in line.detail


async def test_staff_revert_by_transaction_number(world: World) -> None:
    _, _, txn = await redeemed(world)
    staff = await world.chat(STAFF_ID, "Priya")
    replies = await staff.say(f"/revert {txn} 400")
    assert replies[-1].text.startswith("810 Mismatch in points for revert API call")
    replies = await staff.say(f"/revert {txn} 500")
    assert replies[-1].text.startswith("Reverted 500 points (V")
    assert world.member(ASHA["mobile"]).current_points == 2000
    replies = await staff.say(f"/revert {txn} 500")
    assert replies[-1].text.startswith("812 ")
    actions = [(a.action, a.allowed, a.detail[:11]) for a in world.services[0].staff_actions()]
    assert actions == [("revert", True, "refused: 81"), ("revert", True, "500 points"),
                       ("revert", True, "refused: 81")]
    assert all(a.staff == "telegram:900" for a in world.services[0].staff_actions())


async def test_staff_revert_in_the_order_of_the_command_line(world: World) -> None:
    """/revert TRANSACTION_NUMBER [POINTS] [MEMBER], as `loyalty-bot revert`: all of it
    without POINTS; the member, when named, must be the one who redeemed on it."""
    _, _, txn = await redeemed(world)
    staff = await world.chat(STAFF_ID, "Priya")
    replies = await staff.say(f"/revert {txn}")
    assert replies[-1].text.startswith("Reverted 500 points (V")
    assert world.member(ASHA["mobile"]).current_points == 2000
    _, _, txn = await redeemed(world)
    replies = await staff.say(f"/revert {txn} 500 {RAVI['mobile']}")
    assert replies[-1].text.startswith("811 ")
    replies = await staff.say(f"/revert {txn} 500 {ASHA['mobile']}")
    assert replies[-1].text.startswith("Reverted 500 points (V")
    assert world.member(ASHA["mobile"]).current_points == 2000


async def test_staff_reverse_a_redemption_in_part(world: World) -> None:
    chat, redemption_id, _ = await redeemed(world)
    staff = await world.chat(STAFF_ID, "Priya")
    replies = await staff.say(f"/reverse {redemption_id} 200")
    assert replies[-1].text.startswith("Reversed 200 points (V")
    assert world.member(ASHA["mobile"]).current_points == 1700
    replies = await staff.say("/reverse RNOSUCHTHING")
    assert replies[-1].text.startswith("902 Redemption ID does not exist.")
    replies = await chat.say("/history")  # the member sees the reversal
    assert "reversed 200 points" in replies[-1].text


async def test_staff_commands_explain_their_usage(world: World) -> None:
    staff = await world.chat(STAFF_ID, "Priya")
    for command in ("/member", "/goodwill 9812345678", "/revert", "/revert X 5 Y Z",
                    "/reverse"):
        replies = await staff.say(command)
        assert replies[-1].text.startswith("Usage: /"), command
    replies = await staff.say(f"/goodwill {ASHA['mobile']} lots because")
    assert replies[-1].text.startswith("No goodwill points were issued.\n901 ")
    replies = await staff.say("/help")
    assert "/goodwill IDENTIFIER POINTS REASON" in replies[-1].text


async def test_refused_reversals_are_about_their_member_in_the_staff_log(world: World) -> None:
    """A refused /reverse names the redemption's member, a refused /revert the member of
    its transaction, so the staff log's member filter finds them."""
    _, redemption_id, txn = await redeemed(world)
    staff = await world.chat(STAFF_ID, "Priya")
    replies = await staff.say(f"/reverse {redemption_id} 900")  # more than was redeemed
    assert replies[-1].text.startswith("901 ")
    replies = await staff.say(f"/revert {txn} 900")
    assert replies[-1].text.split()[0].isdigit()  # refused with a status code
    about = world.services[0].staff_actions(member=ASHA["mobile"])
    assert [(a.action, a.allowed) for a in about[:2]] == [("revert", True), ("reverse", True)]
    assert all(a.refused for a in about[:2])
    assert world.services[0].staff_actions(member=RAVI["mobile"]) == []
