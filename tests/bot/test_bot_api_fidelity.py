"""Closer to the points API, in the chat: times in the organisation's zone (ORG_TIMEZONE)
for members and staff, a replayed redemption that tells today's truth, and staff naming a
member with a typed identifier."""

from __future__ import annotations

from sqlmodel import Session, select

from bot import replies
from core.chat_io import Reply
from core.models import Redemption
from tests.bot.bot_harness import ASHA, World, text_of

STAFF_ID = 900  # in the world's STAFF_TELEGRAM_IDS
INDIA = {"org_timezone": "Asia/Kolkata"}  # the world's clock: 2026-03-01 09:00 UTC


async def test_members_and_staff_see_times_in_the_organisations_zone(world: World) -> None:
    chat = await world.chat(**INDIA)
    await chat.link()
    await chat.say("/redeem 500")
    sent = text_of(await chat.press("Confirm"))
    # As en_IN writes a date and a time (Babel; a narrow no-break space before PM).
    assert "It is valid until 1 Mar 2026 2:40\u202fPM IST." in sent
    redeemed = text_of(await chat.say(chat.chat_code()))
    assert redeemed.startswith("800 ")
    assert redeemed.splitlines()[-1] == "Redeemed at: 1 Mar 2026 2:30\u202fPM IST"
    history = text_of(await chat.say("/history"))
    assert "1 Mar 2026 2:30\u202fPM IST  redeemed 500 points" in history
    staff = await world.chat(STAFF_ID, "Priya", **INDIA)
    profile = text_of(await staff.say(f"/member {ASHA['mobile']}"))
    assert "2026-03-01 14:30 IST  redeemed -500" in profile
    assert "verified 2026-03-01 14:30 IST" in profile


async def test_a_replayed_redemption_tells_what_was_reversed_and_the_balance_now(
        world: World) -> None:
    """The chat itself never replays (after 800 it is back at the menu); an engine replay
    (the same external reference number again) is shown with today's truth."""
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    first = text_of(await chat.say(code)).splitlines()
    redemption_id = first[1].split(": ")[1]
    staff = await world.chat(STAFF_ID, "Priya")
    assert text_of(await staff.say(f"/reverse {redemption_id} 200")).startswith("Reversed 200")

    first_result = world.services[0].history(ASHA["mobile"])
    txn = next(i.transaction_number for i in first_result if i.id == redemption_id)
    with Session(world.services[0].db.engine) as session:
        reference = session.exec(select(Redemption.external_reference).where(
            Redemption.id == redemption_id)).one()
    replay = world.services[0].redeem(ASHA["mobile"], 500, None, transaction_number=txn,
                                      external_reference=reference)
    again, _ = replies.render(Reply("redeemed", {"result": replay}), replies.ENGLISH)
    assert again.startswith("This redemption was already done; nothing more was redeemed.")
    assert f"Redemption id: {redemption_id}" in again
    assert "Reversed since: 200 points\nCurrent balance: 1,700 points" in again
    assert "New balance" not in again
    assert world.member(ASHA["mobile"]).current_points == 1700


async def test_staff_name_a_member_by_a_typed_numeric_external_id(world: World) -> None:
    world.services[0].import_csv(
        b"mobile,email,external_id,name,type,fraud_status,current_points,lifetime_points,"
        b"lifetime_purchases\n,,9812345678,Numbered,loyalty,NONE,300,300,0\n")
    staff = await world.chat(STAFF_ID, "Priya")
    # Guessed, the number is Asha's mobile; typed, it is the external id.
    assert "Asha" in text_of(await staff.say("/member 9812345678"))
    profile = text_of(await staff.say("/member external_id:9812345678"))
    assert "Numbered" in profile and "Their current points: 300" in profile
    issued = text_of(await staff.say("/goodwill external_id:9812345678 50 welcome"))
    assert issued.startswith("Issued 50 goodwill points")
    assert world.member("external_id:9812345678").current_points == 350
    assert world.member(ASHA["mobile"]).current_points == 2000
