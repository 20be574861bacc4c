"""Validation codes: bound to the member and the amount, OTP_LENGTH digits, expire after
OTP_TTL_SECONDS, used once, voided by OTP_MAX_ATTEMPTS wrong entries, resent (the same
code) at most OTP_MAX_SENDS times, voided by a request for another amount, capped per
period, never left pending when no channel delivers, and never stored in plain text.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select, text
from sqlmodel import SQLModel, col
from sqlmodel import select as sm_select

from core.code_texts import CodeTexts
from core.delivery import CodeMessage, CodeSender, DeliveryFailed, RecordingSender
from core.models import CodeState, ValidationCode
from core.service import PointsService
from core.status import PointsError
from tests.core.points_harness import Env


def wrong(code: str) -> str:
    """A code that differs from `code` in its last digit."""
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def refused(action: Any) -> PointsError:
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def code_rows(service: PointsService) -> list[ValidationCode]:
    return service.db.run(lambda s: list(s.exec(sm_select(ValidationCode)
                                                .order_by(col(ValidationCode.id))).all()),
                          write=False)


def redeem(service: PointsService, who: str, points: int, code: str | None,
           ref: str) -> int:
    return service.redeem(who, points, code, transaction_number="T-" + ref,
                          external_reference=ref).balance


def test_code_has_otp_length_digits(env: Env) -> None:
    for length in (4, 5, 6, 8, 10):
        service = env.service(otp_length=length)
        who = env.add_member(service, points=900).mobile
        assert who is not None
        issued = service.issue_validation_code(who, 200)
        code = env.sender.last_code()
        assert len(code) == length and code.isdigit()
        assert issued.channels == ("log",) and not issued.resent
        assert issued.message == "Validation Code Issued by log"
        message = env.sender.sent[-1]
        assert (message.points, message.mobile, message.valid_minutes) == (200, who, 10)
        assert code in CodeTexts.of(service.settings).sms(message)
        assert redeem(service, who, 200, code, f"LEN{length}") == 700


def test_code_is_bound_to_member(env: Env) -> None:
    service = env.service()
    alice = env.add_member(service, points=900)
    bob = env.add_member(service, points=900)
    assert alice.mobile is not None and bob.mobile is not None
    service.issue_validation_code(alice.mobile, 200)
    service.issue_validation_code(bob.mobile, 200)
    alice_code = env.sender.last_code(alice.id)
    bob_code = env.sender.last_code(bob.id)
    if alice_code == bob_code:  # one chance in a million: nothing to tell apart
        pytest.skip("both members drew the same code")
    error = refused(lambda: redeem(service, bob.mobile or "", 200, alice_code, "R1"))
    assert (error.code, error.reason) == (808, "wrong")
    assert service.balance(bob.mobile).current_points == 900
    assert redeem(service, bob.mobile, 200, bob_code, "R2") == 700
    assert redeem(service, alice.mobile, 200, alice_code, "R3") == 700


def test_code_is_bound_to_amount(env: Env) -> None:
    service = env.service()
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.issue_validation_code(who, 200)
    code = env.sender.last_code()
    for points in (100, 300):
        error = refused(lambda points=points: service.is_redeemable(who, points, code))
        assert (error.code, error.reason, error.facts["code_points"]) == (808,
                                                                                     "amount",
                                                                                     200)
        error = refused(lambda points=points: redeem(service, who, points, code, f"A{points}"))
        assert error.code == 808
    assert service.is_redeemable(who, 200, code).points == 200  # a check does not use it
    assert redeem(service, who, 200, code, "A200") == 700


def test_code_expires_after_ttl(env: Env) -> None:
    service = env.service(otp_ttl_seconds=120)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    issued = service.issue_validation_code(who, 200)
    assert issued.expires_at == env.clock() + timedelta(seconds=120)
    code = env.sender.last_code()
    env.clock.advance(119)
    assert service.is_redeemable(who, 200, code).points == 200
    env.clock.advance(1)
    error = refused(lambda: redeem(service, who, 200, code, "EXP"))
    assert (error.code, error.reason) == (808, "expired")
    assert service.balance(who).current_points == 900
    # Asking again after expiry issues a fresh code, which works.
    again = service.issue_validation_code(who, 200)
    assert not again.resent
    assert redeem(service, who, 200, env.sender.last_code(), "EXP2") == 700


def test_code_is_used_once(env: Env) -> None:
    service = env.service()
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.issue_validation_code(who, 200)
    code = env.sender.last_code()
    assert redeem(service, who, 200, code, "ONCE-1") == 700
    error = refused(lambda: redeem(service, who, 200, code, "ONCE-2"))
    assert (error.code, error.reason) == (808, "used")
    assert refused(lambda: service.is_redeemable(who, 200, code)).code == 808
    assert service.balance(who).current_points == 700
    used = code_rows(service)
    assert [row.state for row in used] == [CodeState.USED]
    assert used[0].redemption_id == service.history(who)[0].id


def test_wrong_entries_void_the_code(env: Env) -> None:
    service = env.service(otp_max_attempts=3)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.issue_validation_code(who, 200)
    code = env.sender.last_code()
    # Two wrong entries leave the code usable ...
    first = refused(lambda: redeem(service, who, 200, wrong(code), "W1"))
    assert (first.code, first.facts["attempts_left"], first.detail) == (808, 2,
                                                                          "2 attempts left")
    second = refused(lambda: service.is_redeemable(who, 200, wrong(code)))
    assert (second.code, second.facts["attempts_left"]) == (808, 1)
    assert service.is_redeemable(who, 200, code).points == 200
    # ... the third voids it, and then even the right code is refused.
    third = refused(lambda: redeem(service, who, 200, wrong(code), "W3"))
    assert (third.code, third.reason, third.facts["attempts_left"]) == (808,
                                                                                   "attempts",
                                                                                   0)
    after = refused(lambda: redeem(service, who, 200, code, "W4"))
    assert (after.code, after.reason) == (808, "voided")
    assert [row.state for row in code_rows(service)] == [CodeState.VOIDED]
    assert service.balance(who).current_points == 900


def test_right_code_after_fewer_wrong_entries_redeems(env: Env) -> None:
    service = env.service(otp_max_attempts=3)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.issue_validation_code(who, 200)
    code = env.sender.last_code()
    for attempt in range(2):
        refused(lambda attempt=attempt: redeem(service, who, 200, wrong(code), f"X{attempt}"))
    assert code_rows(service)[0].attempts == 2  # wrong entries count though they fail
    assert redeem(service, who, 200, code, "X-OK") == 700


def test_same_amount_resends_same_code_until_max_sends(env: Env) -> None:
    service = env.service(otp_max_sends=3)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    answers = [service.issue_validation_code(who, 200) for _ in range(3)]
    assert [a.resent for a in answers] == [False, True, True]
    assert [a.sends_left for a in answers] == [2, 1, 0]
    sent = [m.code for m in env.sender.sent]
    assert len(sent) == 3 and len(set(sent)) == 1
    error = refused(lambda: service.issue_validation_code(who, 200))
    assert (error.code, error.reason) == (860, "send_limit")
    assert len(env.sender.sent) == 3  # nothing sent past the limit
    rows = code_rows(service)
    assert [(r.state, r.sends) for r in rows] == [(CodeState.ACTIVE, 3)]
    # The code already sent still works.
    assert redeem(service, who, 200, sent[0], "SENDS") == 700


def test_other_amount_voids_earlier_code(env: Env) -> None:
    service = env.service()
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.issue_validation_code(who, 200)
    first = env.sender.last_code()
    service.issue_validation_code(who, 300)
    second = env.sender.last_code()
    assert [r.state for r in code_rows(service)] == [CodeState.VOIDED, CodeState.ACTIVE]
    assert refused(lambda: redeem(service, who, 200, first, "V1")).code == 808
    # Asking for the first amount again does not bring the voided code back.
    service.issue_validation_code(who, 200)
    third = env.sender.last_code()
    assert [r.state for r in code_rows(service)] == [CodeState.VOIDED, CodeState.VOIDED,
                                                     CodeState.ACTIVE]
    assert refused(lambda: redeem(service, who, 300, second, "V2")).code == 808
    assert redeem(service, who, 200, third, "V3") == 700


def test_period_limit_caps_codes_sent(env: Env) -> None:
    service = env.service(otp_period_max_sends=3, otp_period_seconds=600, otp_max_sends=5)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.issue_validation_code(who, 100)
    service.issue_validation_code(who, 100)  # a resend counts too
    service.issue_validation_code(who, 200)
    error = refused(lambda: service.issue_validation_code(who, 300))
    assert (error.code, error.reason) == (860, "period_limit")
    assert refused(lambda: service.issue_validation_code(who, 200)).code == 860
    assert len(env.sender.sent) == 3
    # The cap is per member.
    other = env.add_member(service, points=900).mobile
    assert other is not None
    service.issue_validation_code(other, 100)
    # Once the period has passed, codes can be sent again.
    env.clock.advance(601)
    service.issue_validation_code(who, 300)
    assert redeem(service, who, 300, env.sender.last_code(who_id(service, who)), "P1") == 600


def who_id(service: PointsService, who: str) -> int:
    return service.member(who).id


class Exploding:
    """A sender that fails in a way no sender should (not DeliveryFailed)."""

    channel = "broken"

    def send(self, message: CodeMessage) -> str:
        raise RuntimeError("gateway crashed")


def test_every_sender_failing_leaves_no_code_pending(env: Env) -> None:
    failing: list[CodeSender] = [RecordingSender("sms", fail=True), Exploding(),
                                 RecordingSender("email", fail=True)]
    service = env.service(senders=failing)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    error = refused(lambda: service.issue_validation_code(who, 200))
    assert (error.code, error.reason) == (860, "delivery")
    rows = code_rows(service)
    assert [r.state for r in rows] == [CodeState.VOIDED]
    # No code could be guessed into use either: a redemption finds none active.
    for guess in ("000000", "123456"):
        assert refused(lambda g=guess: redeem(service, who, 200, g, "G" + g)).code == 808
    assert service.balance(who).current_points == 900


def test_one_channel_delivering_is_enough(env: Env) -> None:
    sms = RecordingSender("sms", fail=True)
    email = RecordingSender("email")
    service = env.service(senders=[sms, Exploding(), email])
    who = env.add_member(service, email="Member@Example.com", points=900)
    issued = service.issue_validation_code("member@example.com", 200)
    assert issued.channels == ("email",)
    assert issued.destinations == ("m•••@example.com",)
    assert issued.message == "Validation Code Issued by Email"
    assert sms.sent == [] and len(email.sent) == 1
    assert redeem(service, "member@example.com", 200, email.last_code(who.id), "CH") == 700


def test_delivery_failed_is_a_sender_contract() -> None:
    sender = RecordingSender("sms", fail=True)
    with pytest.raises(DeliveryFailed):
        sender.send(CodeMessage(1, "n", None, None, "123456", 100, Decimal("1"), 10))
    assert sender.sent == []


def _all_values(service: PointsService) -> list[str]:
    """Every value in every table of the database, as text."""
    metadata = MetaData()
    values: list[str] = []
    with service.db.engine.connect() as connection:
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                values.extend(str(value) for value in row)
    return values


def test_code_never_stored_in_plain_text(env: Env, tmp_path: Path) -> None:
    service = env.service(otp_length=10, otp_max_attempts=10)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    codes: list[str] = []
    for points in (100, 200, 300):  # one voided, one used, one left active
        service.issue_validation_code(who, points)
        codes.append(env.sender.last_code())
        if points == 200:
            redeem(service, who, 200, codes[-1], "PLAIN-1")
    service.is_redeemable(who, 300, codes[-1])
    refused(lambda: service.is_redeemable(who, 300, wrong(codes[-1])))
    rows = code_rows(service)
    assert len(rows) == 3
    columns = list(SQLModel.metadata.tables["validation_code"].columns.keys())
    for row in rows:
        for column in columns:
            stored = str(getattr(row, column))
            assert all(code not in stored for code in codes), column
    everything = _all_values(service)
    assert everything  # the scan saw the data
    assert not [v for v in everything if any(code in v for code in codes)]
    if env.url.startswith("sqlite"):
        with service.db.engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(FULL)"))
        files = list(tmp_path.glob("loyalty.db*"))
        assert files
        for file in files:
            data = file.read_bytes()
            assert all(code.encode() not in data for code in codes), file.name


def test_blank_code_is_no_code_and_costs_no_attempt(env: Env) -> None:
    service = env.service(otp_max_attempts=2)
    who = env.add_member(service, points=900).mobile
    assert who is not None
    service.issue_validation_code(who, 200)
    code = env.sender.last_code()
    for blank in ("", "   ", "", "\t"):
        assert service.is_redeemable(who, 200, blank).points == 200
    assert refused(lambda: redeem(service, who, 200, "  ", "BLANK")).code == 824
    assert code_rows(service)[0].attempts == 0
    assert redeem(service, who, 200, f" {code} ", "BLANK-OK") == 700
