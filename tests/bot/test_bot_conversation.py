"""The member's conversation as issue 10 designed it, through the real python-telegram-bot
Application and the stand-in Bot API on a real database: /cancel voids the pending code,
members who cannot redeem are told why before any amount, amount buttons from the member's
own range, a bare number at the menu, 807's nearest amounts, codes typed as people type
them, the send limit, back at the menu after 800, exactly once (updates and code
deliveries left by a dead worker), and digits in the terminal sandbox."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from bot import demo
from bot.handlers import send_overdue
from bot.sandbox import sandbox_overrides
from bot.senders import make_senders
from bot.settings import load_bot_settings
from bot.standin import BotMessage
from bot.terminal import TERMINAL_USER_ID, SandboxTerminal
from core.chat import Chats
from core.chat_io import Press, Sender
from core.outbox import LEASE
from core.service import PointsService
from core.status import PointsError, Reason
from tests.bot.bot_harness import ASHA, RAVI, Chat, World, member_csv, shown, text_of

CANCEL_ONLY = ["Cancel"]
CODE_BUTTONS = ["Resend code", "Cancel"]


def amounts(reply: BotMessage) -> list[int]:
    """The amounts offered as buttons under `reply`."""
    return [int(text.replace(",", "")) for text in reply.button_texts]


def code_messages(chat: Chat) -> list[str]:
    """The validation code messages the chat channel sent to this chat, oldest first."""
    return [m.text for m in chat.world.stand_in.messages(chat.user.id)
            if "validation code is" in m.text]


def wrong_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def redemptions(world: World, mobile: str = ASHA["mobile"]) -> list[Any]:
    return [i for i in world.services[0].history(mobile) if i.kind == "redemption"]


async def enrol(world: World, chat: Chat, row: dict[str, Any]) -> None:
    """Import `row` as a member, and link `chat` to it with its contact."""
    world.services[0].import_csv(member_csv([row]), filename=f"{row['mobile']}.csv")
    await chat.link(row)


# ---------------------------------------------------------------- 1. /cancel at the code step


async def test_cancel_at_the_code_step_voids_the_code_and_a_new_confirm_sends_a_new_one(
        world: World) -> None:
    chat = await world.chat(otp_max_sends=3)
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    old = chat.chat_code()

    replies = await chat.say("/cancel")
    assert replies[-1].text == "Cancelled: nothing was redeemed."
    # The old code is void: the engine refuses it with 808, "no longer valid".
    with pytest.raises(PointsError) as refused:
        world.services[0].is_redeemable(ASHA["mobile"], 500, old)
    assert refused.value.status.code == 808
    assert refused.value.reason is Reason.VOIDED
    assert "no longer valid" in str(refused.value.detail)

    await chat.say("/redeem 500")
    replies = await chat.press("Confirm")
    assert "sent to chat" in replies[-1].text and "sent again" not in replies[-1].text
    new = chat.chat_code()
    assert new != old
    # A new code has its whole resend allowance: OTP_MAX_SENDS - 1 resends, then 860.
    for _ in range(2):
        replies = await chat.press("Resend code")
        assert "sent again to chat" in replies[-1].text, replies[-1].text
        assert chat.chat_code() == new
    replies = await chat.press("Resend code")
    assert replies[-1].text.startswith("860 ")

    replies = await chat.say(old)  # the old code never redeems
    assert replies[-1].text.startswith("808 ")
    replies = await chat.say(new)
    assert replies[-1].text.startswith("800 ")
    assert world.member(ASHA["mobile"]).current_points == 1500
    assert len(redemptions(world)) == 1


# ---------------------------------------------------------------- 2. nothing can be redeemed


async def _blocked_chat(world: World, case: str) -> Chat:
    """A chat linked to a member who cannot redeem any amount, for `case`."""
    overrides: dict[str, Any] = {
        "disabled": {"redemption_enabled": False},
        "current": {"redemption_min_current_points": 2500},
        "lifetime": {"redemption_min_lifetime_points": 5000},
        "purchases": {"redemption_min_lifetime_purchases": "20000"},
    }.get(case, {})
    chat = await world.chat(**overrides)
    if case == "fraud":
        await chat.link(RAVI)
    elif case == "few_points":
        await enrol(world, chat, {"mobile": "+919812300001", "name": "Few", "points": 80})
    elif case in ("not_enrolled", "campaign"):
        await chat.link()
        # The member's type changes after they verified: the next import says so.
        kind = "non_loyalty" if case == "not_enrolled" else "campaign"
        world.services[0].import_csv(member_csv([{**ASHA, "type": kind, "points": 0,
                                                  "purchases": "0"}]), filename="type.csv")
        assert world.member(ASHA["mobile"]).customer_type == kind
    else:
        await chat.link()
    return chat


BLOCKED = [("not_enrolled", 881), ("campaign", 686), ("fraud", 809), ("disabled", 827),
           ("current", 804), ("lifetime", 805), ("purchases", 806), ("few_points", 803)]


@pytest.mark.parametrize(("case", "code"), BLOCKED)
async def test_a_member_who_cannot_redeem_is_told_why_at_balance_and_redeem(
        world: World, case: str, code: int) -> None:
    chat = await _blocked_chat(world, case)
    replies = await chat.say("/balance")
    text = replies[-1].text
    assert f"You cannot redeem points now.\n{shown(code)}" in text, text
    assert "You can redeem" not in text
    assert replies[-1].buttons == []

    for asking in ("/redeem", "Redeem"):  # the command and the menu word
        replies = await chat.say(asking)
        text = replies[-1].text
        assert text.startswith(f"You cannot redeem points now.\n{shown(code)}"), text
        assert "How many" not in text_of(replies)
        assert all(m.buttons == [] for m in replies)  # no amount buttons
    # Still at the menu: a number is refused with the same reason, and nothing changes.
    replies = await chat.say("500")
    assert f"\n{code} " in replies[-1].text and replies[-1].buttons == []
    assert redemptions(world, chat_mobile(case)) == []


def chat_mobile(case: str) -> str:
    return {"fraud": RAVI["mobile"], "few_points": "+919812300001"}.get(case, ASHA["mobile"])


# ---------------------------------------------------------------- 3. amount buttons


@pytest.mark.parametrize(("points", "rules", "expected"), [
    (2000, {}, [100, 750, 1350, 2000]),
    (300, {}, [100, 150, 250, 300]),
    (200, {}, [100, 150, 200]),
    (100, {}, [100]),
    (8000, {}, [100, 1750, 3350, 5000]),  # the maximum per redemption caps the range
    (1000, {"redemption_min_points": 120}, [150, 450, 700, 1000]),  # min up to a multiple
    (1030, {"redemption_multiple_of": 1, "redemption_min_points": 1}, None),
])
async def test_amount_buttons_come_from_the_members_own_range(
        world: World, points: int, rules: dict[str, Any], expected: list[int] | None
) -> None:
    chat = await world.chat(**rules)
    mobile = "+919812300002"
    await enrol(world, chat, {"mobile": mobile, "name": "Range", "points": points})
    settings = world.settings(**rules)
    step = settings.redemption_multiple_of
    low = -(-settings.redemption_min_points // step) * step
    high = min(settings.redemption_max_points, points) // step * step

    replies = await chat.say("/redeem")
    assert "How many do you want to redeem?" in replies[-1].text
    offered = amounts(replies[-1])
    if expected is not None:
        assert offered == expected
    assert 1 <= len(offered) <= 4
    assert offered == sorted(set(offered))
    assert offered[0] == low and offered[-1] == high
    assert all(low <= p <= high and p % step == 0 for p in offered)
    if (high - low) // step + 1 >= 4:
        assert len(offered) == 4
    engine = world.service(**rules)
    for amount in offered:  # each one the engine would redeem for this member now
        assert engine.is_redeemable(mobile, amount).points == amount

    replies = await chat.press(f"{offered[-1]:,}")
    assert replies[-1].text.startswith(f"Redeem {offered[-1]:,} points worth ")
    assert replies[-1].button_texts == ["Confirm", "Cancel"]


# ---------------------------------------------------------------- 4. a bare number


@pytest.mark.parametrize("typed", ["500", "1,000"])
async def test_a_bare_number_at_the_menu_starts_a_redemption(world: World, typed: str) -> None:
    chat = await world.chat()
    await chat.link()
    replies = await chat.say(typed)
    assert replies[-1].text == f"Redeem {typed} points worth ₹{typed}.00?"
    assert replies[-1].button_texts == ["Confirm", "Cancel"]
    await chat.press("Confirm")
    replies = await chat.say(chat.chat_code())
    assert replies[-1].text.startswith("800 ")
    assert world.member(ASHA["mobile"]).current_points == 2000 - int(typed.replace(",", ""))


# ---------------------------------------------------------------- 5. 807's nearest amounts


@pytest.mark.parametrize("how", ["/redeem", "bare"])
async def test_807_suggests_the_nearest_valid_amounts_as_text_and_buttons(
        world: World, how: str) -> None:
    chat = await world.chat()
    await chat.link()
    if how == "/redeem":
        await chat.say("/redeem")
    replies = await chat.say("520")
    text = replies[-1].text
    assert text.startswith("807 "), text
    assert "The nearest amounts you can redeem: 500 or 550." in text
    assert replies[-1].button_texts == ["500", "550"]
    replies = await chat.press("550")
    assert replies[-1].text == "Redeem 550 points worth ₹550.00?"
    assert replies[-1].button_texts == ["Confirm", "Cancel"]


async def test_807_near_the_top_offers_only_amounts_the_member_can_redeem(
        world: World) -> None:
    chat = await world.chat()
    await chat.link()
    replies = await chat.say("1990")  # 2,000 points: 1,950 or 2,000
    assert replies[-1].text.startswith("807 ")
    assert replies[-1].button_texts == ["1,950", "2,000"]
    replies = await chat.say("2010")  # 2,050 is more than the member has
    assert replies[-1].text.startswith("807 ")
    assert replies[-1].button_texts == ["2,000"]
    replies = await chat.press("2,000")
    assert replies[-1].text == "Redeem 2,000 points worth ₹2,000.00?"


# ---------------------------------------------------------------- 6. codes as people type them


@pytest.mark.parametrize("shape", ["spaces", "dashes", "full_width", "padded"])
async def test_a_code_typed_with_spaces_dashes_or_full_width_digits_redeems(
        world: World, shape: str) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    typed = {"spaces": f"{code[:3]} {code[3:]}",
             "dashes": f"{code[:3]}-{code[3:]}",
             "full_width": "".join(chr(ord(d) - ord("0") + 0xFF10) for d in code),
             "padded": f"  {code[:2]} {code[2:4]} {code[4:]} "}[shape]
    assert typed != code
    replies = await chat.say(typed)
    assert replies[-1].text.startswith("800 "), replies[-1].text
    assert world.member(ASHA["mobile"]).current_points == 1500


async def test_a_text_that_cannot_be_a_code_costs_no_attempt_and_gets_a_hint(
        world: World) -> None:
    chat = await world.chat(otp_max_attempts=3)
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    for left in (2, 1):  # OTP_MAX_ATTEMPTS - 1 wrong codes
        replies = await chat.say(wrong_code(code))
        assert replies[-1].text.startswith("808 ")
        assert f"{left} attempt" in replies[-1].text
    for text in ("hello", code[:5], code + "1", "12 34", "１２３", "-"):
        replies = await chat.say(text)
        assert replies[-1].text == ("Enter the 6-digit validation code you received, or "
                                    "press Cancel."), (text, replies[-1].text)
        assert replies[-1].button_texts == CODE_BUTTONS
    replies = await chat.say(code)  # the last attempt was never spent
    assert replies[-1].text.startswith("800 "), replies[-1].text
    assert world.member(ASHA["mobile"]).current_points == 1500


# ---------------------------------------------------------------- 7. the send limit, validity


async def test_past_the_send_limit_the_reply_has_no_resend_button(world: World) -> None:
    chat = await world.chat(otp_max_sends=3)
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    presses = 0
    while True:
        replies = await chat.press("Resend code")
        presses += 1
        if replies[-1].text.startswith("860 "):
            break
        assert presses < 5, "Resend was never refused"
    assert presses == 3  # two resends, the third refused
    assert replies[-1].button_texts == CANCEL_ONLY
    assert len(code_messages(chat)) == 3
    replies = await chat.say(code)  # the code still works
    assert replies[-1].text.startswith("800 ")


async def test_a_resent_code_gives_its_real_remaining_validity(world: World) -> None:
    chat = await world.chat(otp_ttl_seconds=600)
    await chat.link()
    await chat.say("/redeem 500")
    first = await chat.press("Confirm")
    assert "valid for 10 minutes" in code_messages(chat)[-1]
    until = re.search(r"valid until (.+)\.", first[-1].text)
    assert until, first[-1].text
    for seconds, minutes in ((240, 6), (150, 4), (200, 1)):  # 360 s, 210 s, 10 s left
        world.clock.advance(seconds)
        replies = await chat.press("Resend code")
        assert "sent again" in replies[-1].text
        assert f"valid for {minutes} minutes" in code_messages(chat)[-1], \
            code_messages(chat)[-1]
        assert f"valid until {until.group(1)}." in replies[-1].text  # the same expiry
    replies = await chat.say(chat.chat_code())
    assert replies[-1].text.startswith("800 ")


# ---------------------------------------------------------------- 8. back at the menu after 800


async def test_after_a_redemption_a_number_is_a_new_amount_never_the_old_code(
        world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    code = chat.chat_code()
    replies = await chat.say(code)
    assert replies[-1].text.startswith("800 ")

    replies = await chat.say("300")
    assert replies[-1].text == "Redeem 300 points worth ₹300.00?"
    await chat.say("/cancel")

    replies = await chat.say(code)  # the used code, typed again: an amount now
    text = text_of(replies)
    assert "already done" not in text and "808" not in text, text
    assert "Type another amount" in text or text.startswith("Redeem "), text
    assert len(redemptions(world)) == 1
    assert world.member(ASHA["mobile"]).current_points == 1500


# ---------------------------------------------------------------- 9. exactly once


async def test_the_same_update_twice_is_answered_again_and_changes_nothing(
        world: World) -> None:
    """A redelivery (the worker died after commit, before its reply) gets the kept answer
    again; nothing is done twice."""
    chat = await world.chat(otp_max_sends=2)
    await chat.link()
    amount = chat.user.says("500")
    replies = await chat.deliver(amount)
    assert replies[-1].text == "Redeem 500 points worth ₹500.00?"
    first_data = replies[-1].button("Confirm").callback_data
    again = await chat.deliver(amount)
    assert [m.text for m in again] == ["Redeem 500 points worth ₹500.00?"]
    summary = chat.last()
    assert summary.button("Confirm").callback_data == first_data  # the same redemption

    confirm = chat.user.presses(summary, "Confirm")
    replies = await chat.deliver(confirm)
    assert "sent to chat" in replies[-1].text
    assert await chat.deliver(confirm) == []
    assert len(code_messages(chat)) == 1
    # The second delivery spent no send: one resend is still allowed.
    replies = await chat.press("Resend code")
    assert "sent again to chat" in replies[-1].text
    replies = await chat.press("Resend code")
    assert replies[-1].text.startswith("860 ")

    entry = chat.user.says(chat.chat_code())
    first = text_of(await chat.deliver(entry))
    assert first.startswith("800 ")
    assert text_of(await chat.deliver(entry)) == first  # the same answer, nothing redone
    assert len(redemptions(world)) == 1
    assert world.member(ASHA["mobile"]).current_points == 1500


async def test_a_code_left_unsent_by_a_dead_worker_is_sent_once_the_lease_passed(
        world: World) -> None:
    chat = await world.chat()
    await chat.link()
    await chat.say("/redeem 500")
    summary = chat.last()
    data = summary.button("Confirm").callback_data
    assert data
    # The worker commits the Confirm and dies before running the DeliverCode effect.
    user = str(chat.user.id)
    outcome = Chats(world.service()).handle(Sender(user, user), "dead-worker:1", Press(data))
    assert outcome.effects and not outcome.replies
    assert code_messages(chat) == []

    app = chat.application
    runtime = app.bot_data["runtime"]
    world.clock.advance(LEASE.total_seconds() - 1)
    assert await send_overdue(app.bot, runtime) == 0  # its worker may still be sending
    assert code_messages(chat) == []

    world.clock.advance(2)
    mark = world.stand_in.mark()
    assert await send_overdue(app.bot, runtime) == 1
    told = world.stand_in.messages_since(mark, chat.user.id)
    assert len(code_messages(chat)) == 1
    assert "sent to chat" in told[-1].text, text_of(told)
    assert told[-1].button_texts == CODE_BUTTONS
    assert await send_overdue(app.bot, runtime) == 0  # sent once

    replies = await chat.say(chat.chat_code())
    assert replies[-1].text.startswith("800 ")
    assert world.member(ASHA["mobile"]).current_points == 1500


# ---------------------------------------------------------------- 10. the terminal sandbox


@pytest.fixture
def terminal(tmp_path: Path) -> Any:
    database = tmp_path / "terminal.db"
    settings = load_bot_settings(require_token=False, telegram_bot_token="", webhook_url="",
                                 staff_telegram_ids=str(TERMINAL_USER_ID),
                                 **sandbox_overrides(f"sqlite:///{database}"))
    service = PointsService(settings, senders=make_senders(settings))
    demo.seed_if_empty(service)
    session = SandboxTerminal(settings, service, database, tmp_path, True, io.StringIO())
    session.start()
    try:
        yield session
    finally:
        session.close()


def typed(session: SandboxTerminal, line: str) -> str:
    """What the terminal prints after `line` is typed."""
    out = session.out
    assert isinstance(out, io.StringIO)
    mark = len(out.getvalue())
    session.handle(line)
    return out.getvalue()[mark:]


def test_in_the_terminal_digits_at_the_code_step_are_a_code_and_letters_press(
        terminal: SandboxTerminal) -> None:
    asha = demo.DEMO_MEMBERS[0]
    assert "You are now" in typed(terminal, f"/as {asha.mobile}")
    before = terminal.service.member(asha.mobile).current_points
    screen = typed(terminal, "/redeem 500")
    assert "Redeem 500 points worth ₹500.00?" in screen
    assert "[a] Confirm" in screen and "[b] Cancel" in screen
    screen = typed(terminal, "a")
    assert "pressed Confirm" in screen
    code = re.search(r"validation code is (\d+)", screen)
    assert code, screen
    assert "[a] Resend code" in screen and "[b] Cancel" in screen

    for digits in ("1", "2"):  # as many buttons as there are: never a press
        screen = typed(terminal, digits)
        assert "pressed" not in screen, screen
        assert "Enter the 6-digit validation code" in screen, screen
    screen = typed(terminal, code.group(1))
    assert "pressed" not in screen
    assert "800 Points redeemed successfully" in screen, screen
    assert terminal.service.member(asha.mobile).current_points == before - 500

    screen = typed(terminal, "500")  # back at the menu: an amount
    assert "Redeem 500 points worth ₹500.00?" in screen
    screen = typed(terminal, "b")
    assert "pressed Cancel" in screen and "Cancelled: nothing was redeemed." in screen
