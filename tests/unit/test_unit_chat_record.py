"""The replies kept with an update's claim (`core.chat_record`): every kind of value a reply
carries comes back as it was, so a redelivered update is answered word for word."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot import replies
from core import chat_record, i18n
from core.chat_io import Keyboard, Outcome, Reply, amount_button, code_buttons, reply
from core.results import (
    Balance,
    CodeView,
    FraudChange,
    HistoryItem,
    Issued,
    LedgerLine,
    LinkedAccount,
    MemberReport,
    MemberView,
    Redeemable,
    RedemptionResult,
    RedemptionRules,
    ReversalResult,
    Unlinked,
)
from core.staff_audit import StaffLine
from core.status import InputError, PointsError, Reason, WrongCode

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ASHA = MemberView(1, "Asha", "+919812345678", "asha@example.com", None, "loyalty", "NONE",
                  2000, 2000, Decimal("12000.00"), AT)
BALANCE = Balance(ASHA, 2000, 2000, Decimal("12000.00"), Decimal("2000.00"),
                  RedemptionRules(100, 5000, 50), (100, 750, 1350, 2000))
RESULT = RedemptionResult("RABCDEFGHJK", 500, Decimal("500.00"), 1500, "TG-20260301-ABCDEFGH",
                          "tg-abc", AT, points_reversed=0, current_points=1500)
ITEMS = [HistoryItem("redemption", "RABCDEFGHJK", 500, AT, "TG-1", "RABCDEFGHJK", 200),
         HistoryItem("reversal", "VABCDEFGHJK", 200, AT, "TG-1", "RABCDEFGHJK")]
LINKED = LinkedAccount("1001", "Asha Rao", AT)
FRAUD = FraudChange("telegram:900", AT, "NONE", "MARKED", "chargebacks")
REPORT = MemberReport(BALANCE, LINKED, CodeView(500, "pending", AT, AT, 4, 3), FRAUD, (
    LedgerLine(AT, "reversal", 200, "VABCDEFGHJK", "telegram:900", "sorry", "TG-1",
               "RABCDEFGHJK"),
    LedgerLine(AT, "redemption", -500, "RABCDEFGHJK", reason="chat user 1001",
               transaction_number="TG-1"),
    LedgerLine(AT, "goodwill", 50, "GABCDEFGHJK", "telegram:900", "late"),
    LedgerLine(AT, "earn", 25, "BILL-1", transaction_number="BILL-1"),
    LedgerLine(AT, "import", 2000, "import:1:2", reason="members.csv")))

KEPT = [
    reply("welcome", member=ASHA, staff=True, keyboard=Keyboard.MENU),
    reply("balance", balance=BALANCE, blocked=None, keyboard=Keyboard.MENU),
    reply("balance", balance=BALANCE, blocked=PointsError(809, customer_id=1)),
    reply("cannot_redeem", refusal=PointsError(804, "redeeming needs at least 200")),
    reply("ask_amount", balance=BALANCE, buttons=((amount_button(100), amount_button(750)),)),
    reply("try_another", refusal=PointsError(807, multiple=50), nearest=(500, 550)),
    reply("summary", redeemable=Redeemable(500, Decimal("500.00")),
          buttons=code_buttons("ABCDEFGH")),
    reply("code_refused", refusal=WrongCode(808, "2 attempts left", reason=Reason.WRONG,
                                            attempts_left=2)),
    reply("code_refused", refusal=PointsError(808, "expired", reason=Reason.EXPIRED)),
    reply("redeemed", result=RESULT, keyboard=Keyboard.MENU),
    reply("history", items=ITEMS),
    reply("member_profile", report=REPORT),
    reply("member_profile", report=MemberReport(BALANCE, None, None, None, ())),
    reply("staff_refused", refusal=InputError("goodwill needs a reason"), usage="/goodwill",
          action="goodwill"),
    reply("staff_refused", refusal=PointsError(901, "too many", goodwill_max=10_000),
          usage="/goodwill", action="goodwill"),
    reply("goodwill_issued", issued=Issued(50, 2050, "GABCDEFGHJK")),
    reply("goodwill_issued", issued=Issued(50, 2050, "GABCDEFGHJK", replayed=True),
          member=ASHA, reference="T-1"),
    reply("goodwill_confirm", member=ASHA, points=5000, reason="fridge", reference=None,
          buttons=code_buttons("ABCDEFGH")),
    reply("goodwill_cancelled", points=5000),
    reply("unlinked", unlinked=Unlinked(ASHA, LINKED)),
    reply("unlinked", unlinked=Unlinked(ASHA, None)),
    reply("fraud_set", member=ASHA, change=FRAUD),
    reply("staff_log", lines=[StaffLine("telegram:900", "goodwill", "+91981", True,
                                        "refused: 901", AT, 1)],
          filters={"member": "+91981"}),
    reply("reversed", result=ReversalResult(("VABCDEFGHJK",), ("RABCDEFGHJK",), 200, 1700)),
    reply("enter_code", length=6),
]


@pytest.mark.parametrize("kept", KEPT, ids=lambda r: r.key)
def test_a_kept_reply_reads_back_word_for_word(kept: Reply) -> None:
    outcome = Outcome((kept,), settled=True, transition="choose_amount", language="hi")
    again = chat_record.loads(chat_record.dumps(outcome))
    assert again.duplicate and again.settled and again.transition == "choose_amount"
    assert again.language == "hi"
    [back] = again.replies
    for language in i18n.shipped():
        texts = i18n.texts(language, zone=ZoneInfo("Asia/Kolkata"), currency="INR",
                           region="IN")
        text, _ = replies.render(kept, texts)
        assert replies.render(back, texts)[0] == text
    assert back.keyboard == kept.keyboard
    assert [[b.data for b in row] for row in back.buttons] == \
        [[b.data for b in row] for row in kept.buttons]


def test_a_wrong_code_stays_a_wrong_code() -> None:
    kept = reply("code_refused", refusal=WrongCode(808, reason=Reason.ATTEMPTS,
                                                   attempts_left=0))
    [back] = chat_record.loads(chat_record.dumps(Outcome((kept,)))).replies
    refusal = back.values["refusal"]
    assert isinstance(refusal, WrongCode) and refusal.reason is Reason.ATTEMPTS
    assert refusal.facts == {"attempts_left": 0}


def test_a_value_not_kept_is_refused_at_once() -> None:
    @dataclass(frozen=True)
    class Stray:
        x: int

    with pytest.raises(TypeError):
        chat_record.dumps(Outcome((reply("x", thing=Stray(1)),)))
