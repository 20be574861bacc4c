"""Member care through the real bot: what staff see of a member (/member), unlinking a lost
phone (/unlink), fraud status (/fraud), goodwill's guard rails (GOODWILL_MAX_POINTS, a
Confirm press above GOODWILL_CONFIRM_ABOVE, a reference that issues once) and the staff log
(/stafflog). Staff texts speak to staff about the member."""

from __future__ import annotations

import pytest

from core.status import message
from tests.bot.bot_harness import ASHA, RAVI, Chat, World, text_of

STAFF_ID = 900  # in the world's STAFF_TELEGRAM_IDS


async def staff_chat(world: World, user_id: int = STAFF_ID, **overrides: object) -> Chat:
    return await world.chat(user_id, "Priya", **overrides)


async def test_member_shows_link_code_state_fraud_and_every_kind_of_entry(world: World
                                                                          ) -> None:
    service = world.services[0]
    asha = await world.chat(name="Asha")  # her Telegram name, kept with the link
    await asha.link()
    service.earn(ASHA["mobile"], "BILL-7", "25.00")
    staff = await staff_chat(world)
    await staff.say(f"/goodwill {ASHA['mobile']} 200 late delivery")
    await asha.say("/redeem 500")
    await asha.press("Confirm")
    lines = text_of(await asha.say(asha.chat_code())).splitlines()
    redemption_id = lines[1].split(": ")[1]
    await staff.say(f"/reverse {redemption_id} 100")
    await asha.say("/redeem 300")
    await asha.press("Confirm")  # a code is pending now
    code = asha.chat_code()
    wrong = "000000" if code != "000000" else "111111"
    await asha.say(wrong)  # one attempt spent

    text = (await staff.say(f"/member {ASHA['mobile']}"))[-1].text
    assert f"Linked Telegram account: {asha.user.id} (Asha), verified 2026-" in text
    assert "Validation code: pending, for 300 points, issued 2026-" in text
    assert "4 attempts left, 4 sends left" in text
    assert code not in text  # never the code itself
    assert "Fraud status: NONE" in text
    assert "Their current points: 1,825" in text
    assert "Their last ledger entries:" in text and "your" not in text.casefold()
    entries = text.split("Their last ledger entries:\n")[1].splitlines()
    kinds = [line.split("  ")[1].split()[0] for line in entries]
    assert kinds == ["reversed", "redeemed", "goodwill", "earned", "imported"]
    assert "reversed +100  V" in entries[0] and f"of {redemption_id} by telegram:900" \
        in entries[0]
    assert f"redeemed -500  {redemption_id} on TG-" in entries[1]
    assert f"(chat user {asha.user.id})" in entries[1]
    assert "goodwill +200  G" in entries[2] and "by telegram:900: late delivery" in entries[2]
    assert "earned +25  on bill BILL-7" in entries[3]
    assert entries[4].endswith(": members.csv")


async def test_member_shows_the_latest_of_each_kind_among_many(world: World) -> None:
    """Twelve goodwill grants do not push the import out of the view."""
    staff = await staff_chat(world)
    for n in range(12):
        await staff.say(f"/goodwill {ASHA['mobile']} {n + 1} sorry number {n}")
    text = (await staff.say(f"/member {ASHA['mobile']}"))[-1].text
    entries = text.split("Their last ledger entries:\n")[1].splitlines()
    assert len(entries) == 11
    assert sum("goodwill" in line for line in entries) == 10
    assert "imported +2,000" in entries[-1]


async def test_unlink_makes_the_member_verify_again(world: World) -> None:
    asha = await world.chat(name="Asha")
    await asha.link()
    await asha.say("/redeem 500")
    await asha.press("Confirm")  # a pending code
    code = asha.chat_code()
    staff = await staff_chat(world)
    reply = (await staff.say(f"/unlink {ASHA['mobile']}"))[-1].text
    assert reply.startswith(f"Unlinked Telegram account {asha.user.id} (Asha) from member 1")
    assert "They must share their phone number again" in reply
    replies = await asha.say("/balance")  # her next message asks for her number
    assert replies[-1].text.startswith("First share your phone number")
    assert replies[-1].keyboard_texts == ["Share my phone number"]
    replies = await asha.say(code)  # the code she had is no use now
    assert replies[-1].text.startswith("First share your phone number")
    assert world.member(ASHA["mobile"]).current_points == 2000
    text = (await staff.say(f"/member {ASHA['mobile']}"))[-1].text
    assert "Linked Telegram account: none" in text
    assert "Validation code: voided" in text
    reply = (await staff.say(f"/unlink {ASHA['mobile']}"))[-1].text
    assert reply == ("No Telegram account was linked to member 1 (Asha, +919812345678): "
                     "nothing changed.")
    await asha.link()  # verifying again works
    lines = [(a.action, a.detail, a.member_id) for a in world.services[0].staff_actions()
             if a.action == "unlink"]
    assert lines == [("unlink", "no chat account was linked: nothing changed", 1),
                     ("unlink", f"unlinked chat user {asha.user.id}", 1)]


async def test_fraud_status_is_set_with_who_and_why(world: World) -> None:
    asha = await world.chat()
    await asha.link()
    staff = await staff_chat(world)
    reply = (await staff.say(f"/fraud {ASHA['mobile']} marked refunds look odd"))[-1].text
    assert reply == ("Fraud status of member 1 (Asha, +919812345678): NONE -> MARKED. "
                     "Recorded: refunds look odd")
    assert world.member(ASHA["mobile"]).fraud_status == "MARKED"
    replies = await asha.say("/redeem 500")  # blocked by FRAUD_STATUSES_BLOCKING
    assert "809" in replies[-1].text
    text = (await staff.say(f"/member {ASHA['mobile']}"))[-1].text
    assert "Fraud status: MARKED (set from NONE by telegram:900 at 2026-" in text
    assert text.split("Fraud status: ")[1].splitlines()[0].endswith(": refunds look odd)")
    reply = (await staff.say(f"/fraud {ASHA['mobile']} BOGUS because"))[-1].text
    assert reply.startswith("The fraud status was not changed.\nunknown fraud status 'BOGUS'; "
                            "known: NONE, MARKED, CONFIRMED, RECONFIRMED, NOT_FRAUD, INTERNAL")
    assert "Usage: /fraud IDENTIFIER STATUS REASON" in reply
    assert world.member(ASHA["mobile"]).fraud_status == "MARKED"
    await staff.say(f"/fraud {ASHA['mobile']} NOT_FRAUD checked with the store")
    assert world.member(ASHA["mobile"]).fraud_status == "NOT_FRAUD"
    lines = [(a.staff, a.detail, a.member_id) for a in world.services[0].staff_actions()
             if a.action == "fraud"]
    assert lines == [
        ("telegram:900", "MARKED -> NOT_FRAUD: checked with the store", 1),
        ("telegram:900", "refused: unknown fraud status 'BOGUS'; known: NONE, MARKED, "
                         "CONFIRMED, RECONFIRMED, NOT_FRAUD, INTERNAL", 1),
        ("telegram:900", "NONE -> MARKED: refunds look odd", 1)]


@pytest.mark.parametrize("command", [f"/unlink {ASHA['mobile']}",
                                     f"/fraud {ASHA['mobile']} NONE because", "/stafflog"])
async def test_the_new_staff_commands_are_refused_for_anyone_else(world: World,
                                                                  command: str) -> None:
    chat = await world.chat()
    await chat.link()
    replies = await chat.say(command)
    assert replies[-1].text == "This command is for member care staff only."
    [line] = world.services[0].staff_actions()
    assert (line.allowed, line.action) == (False, command.split()[0][1:])
    assert world.member(ASHA["mobile"]).fraud_status == "NONE"
    assert (await chat.say("/balance"))[-1].text.startswith("Current points")  # still linked


async def test_goodwill_above_the_most_one_grant_may_issue_is_refused(world: World) -> None:
    staff = await staff_chat(world)
    reply = (await staff.say(f"/goodwill {ASHA['mobile']} 10,001 typo"))[-1].text
    assert reply == (f"No goodwill points were issued.\n901 {message(901)}\n(one goodwill "
                     "grant issues at most 10,000 points (GOODWILL_MAX_POINTS); 10,001 were "
                     "asked)")
    reply = (await staff.say(f"/goodwill {ASHA['mobile']} 1000000000 typo"))[-1].text
    assert "at most 10,000 points" in reply and "redeem" not in reply
    assert world.member(ASHA["mobile"]).current_points == 2000
    lines = world.services[0].staff_actions()
    assert [(a.action, a.refused, a.member_id) for a in lines] == [("goodwill", True, 1)] * 2
    staff = await staff_chat(world, goodwill_max_points=50_000, goodwill_confirm_above=50_000)
    reply = (await staff.say(f"/goodwill {ASHA['mobile']} 10001 agreed"))[-1].text
    assert reply.startswith("Issued 10,001 goodwill points (G")


async def test_large_goodwill_waits_for_confirm_and_issues_once(world: World) -> None:
    staff = await staff_chat(world)
    prompt = (await staff.say(f"/goodwill {ASHA['mobile']} 5,000 broken fridge"))[-1]
    assert prompt.text == ("Give 5,000 goodwill points to member 1 (Asha, +919812345678)?\n"
                           "Reason: broken fridge\nPress Confirm to issue them, or Cancel.")
    assert prompt.button_texts == ["Confirm", "Cancel"]
    assert world.member(ASHA["mobile"]).current_points == 2000
    assert (await staff.say("hello"))[-1].text == (
        "Press Confirm to issue 5,000 goodwill points, or Cancel.")
    press = staff.user.presses(prompt, "Confirm")
    first = await staff.deliver(press)
    assert first[-1].text.startswith("Issued 5,000 goodwill points (G")
    assert "their current points now 7,000" in first[-1].text
    again = await staff.deliver(press)  # Telegram delivers the press again
    assert again[-1].text == first[-1].text  # answered again, nothing issued again
    late = await staff.deliver(staff.user.presses(prompt, "Confirm"))  # pressed again later
    assert "no longer pending" in late[-1].text
    assert world.member(ASHA["mobile"]).current_points == 7000
    [line] = [a for a in world.services[0].staff_actions() if a.action == "goodwill"]
    assert (line.staff, line.detail, line.member_id) == ("telegram:900",
                                                         "5000 points: broken fridge", 1)


async def test_large_goodwill_can_be_cancelled(world: World) -> None:
    staff = await staff_chat(world)
    await staff.say(f"/goodwill {ASHA['mobile']} 1001 maybe")
    replies = await staff.press("Cancel")
    assert replies[-1].text == "Cancelled: the 1,001 goodwill points were not issued."
    await staff.say(f"/goodwill {ASHA['mobile']} 2000 maybe")
    replies = await staff.say("/cancel")
    assert replies[-1].text == "Cancelled: the 2,000 goodwill points were not issued."
    assert world.member(ASHA["mobile"]).current_points == 2000
    replies = await staff.say(f"/goodwill {ASHA['mobile']} 1000 at the threshold")
    assert replies[-1].text.startswith("Issued 1,000 goodwill points")  # no Confirm needed
    assert world.member(ASHA["mobile"]).current_points == 3000


async def test_a_confirm_press_from_someone_no_longer_staff_is_refused(world: World) -> None:
    staff = await staff_chat(world)
    prompt = (await staff.say(f"/goodwill {ASHA['mobile']} 5000 big"))[-1]
    demoted = await staff_chat(world, staff_telegram_ids="901")  # same user, new settings
    replies = await demoted.deliver(demoted.user.presses(prompt, "Confirm"))
    assert replies[-1].text == "This command is for member care staff only."
    assert world.member(ASHA["mobile"]).current_points == 2000
    assert world.services[0].staff_actions()[0].allowed is False


async def test_a_goodwill_reference_issues_once(world: World) -> None:
    staff = await staff_chat(world)
    first = (await staff.say(f"/goodwill {ASHA['mobile']} 300 parcel lost ref:TICKET-42"))[-1]
    assert first.text.startswith("Issued 300 goodwill points (G")
    assert ", reference TICKET-42) to member 1" in first.text
    again = (await staff.say(f"/goodwill {ASHA['mobile']} 300 parcel lost ref:TICKET-42"))[-1]
    assert again.text.startswith("Reference TICKET-42 was already used for this grant (G")
    assert "nothing more was issued" in again.text
    other = (await staff.say(f"/goodwill {RAVI['mobile']} 300 parcel lost ref:TICKET-42"))[-1]
    assert other.text.startswith("No goodwill points were issued.\ngoodwill reference "
                                 "TICKET-42 was already used for 300 points to member 1")
    assert world.member(ASHA["mobile"]).current_points == 2300
    assert world.member(RAVI["mobile"]).current_points == 1000
    # Above the confirm threshold, the reference waits with the grant.
    prompt = (await staff.say(f"/goodwill {ASHA['mobile']} 2000 refund ref:TICKET-43"))[-1]
    assert "Reference: TICKET-43" in prompt.text
    await staff.press("Confirm")
    await staff.say(f"/goodwill {ASHA['mobile']} 2000 refund ref:TICKET-43")
    replies = await staff.press("Confirm")
    assert replies[-1].text.startswith("Reference TICKET-43 was already used for this grant")
    assert world.member(ASHA["mobile"]).current_points == 4300
    replies = await staff.say(f"/goodwill {ASHA['mobile']} 20 why ref:")
    assert "ref: needs a reference" in replies[-1].text


async def test_the_staff_log_lists_who_did_what_refusals_included(world: World) -> None:
    member = await world.chat()
    await member.link()
    await member.say(f"/goodwill {ASHA['mobile']} 100 me")  # refused: not staff
    priya = await staff_chat(world, staff_telegram_ids="900,901")
    arjun = await staff_chat(world, 901, staff_telegram_ids="900,901")
    await priya.say(f"/goodwill {ASHA['mobile']} 100 late")
    await arjun.say(f"/fraud {RAVI['mobile']} NOT_FRAUD cleared")
    await arjun.say(f"/goodwill {ASHA['mobile']} 99999 typo")  # refused: over the most

    text = (await priya.say("/stafflog"))[-1].text
    lines = text.splitlines()
    assert lines[0] == "Staff log, newest first:"
    assert "telegram:901  REFUSED goodwill" in lines[1]
    assert "telegram:901  fraud +919812345679: MARKED -> NOT_FRAUD: cleared" in lines[2]
    assert "telegram:900  goodwill +919812345678: 100 points: late" in lines[3]
    assert f"telegram:{member.user.id}  REFUSED goodwill" in lines[4]
    text = (await priya.say("/stafflog staff=telegram:901 limit=1"))[-1].text
    assert text.splitlines()[0] == "Staff log (staff telegram:901, limit 1), newest first:"
    assert len(text.splitlines()) == 2 and "REFUSED goodwill" in text
    text = (await priya.say(f"/stafflog member={RAVI['mobile']}"))[-1].text
    assert len(text.splitlines()) == 2 and "NOT_FRAUD" in text
    text = (await priya.say(f"/stafflog member={ASHA['mobile']}"))[-1].text
    assert [line.split("  ")[1] for line in text.splitlines()[1:]] == [
        "telegram:901", "telegram:900", f"telegram:{member.user.id}"]
    reply = (await priya.say("/stafflog everything"))[-1].text
    assert reply.endswith("Usage: /stafflog [member=IDENTIFIER] [staff=WHO] [limit=N]")
    reply = (await priya.say("/stafflog limit=500"))[-1].text
    assert reply.startswith("limit must be a number from 1 to 50")


async def test_staff_texts_fit_one_message(world: World) -> None:
    staff = await staff_chat(world)
    for n in range(30):
        await staff.say(f"/goodwill {ASHA['mobile']} 1 {'very long reason ' * 25}{n}")
    text = (await staff.say("/stafflog limit=50"))[-1].text
    assert len(text) <= 4096 and text.count("\n") >= 20
    text = (await staff.say(f"/member {ASHA['mobile']}"))[-1].text
    assert len(text) <= 4096


async def test_staff_help_lists_the_new_commands(world: World) -> None:
    staff = await staff_chat(world)
    text = (await staff.say("/help"))[-1].text
    for usage in ("/member IDENTIFIER", "/goodwill IDENTIFIER POINTS REASON [ref:REFERENCE]",
                  "/unlink IDENTIFIER", "/fraud IDENTIFIER STATUS REASON",
                  "/stafflog [member=IDENTIFIER] [staff=WHO] [limit=N]"):
        assert usage in text, usage
    member = await world.chat()
    await member.link()
    assert "/unlink" not in (await member.say("/help"))[-1].text
