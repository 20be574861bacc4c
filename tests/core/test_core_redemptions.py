"""Redeeming, retrying, reverting and reversing, and the history they leave.

Redemption is idempotent on the external reference number; a revert gives back what was
redeemed on a transaction number; a reversal gives back all or part of one redemption,
named by its id or its external reference. Every test ends with the ledger audited.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.models import Source
from core.service import PointsService, RedemptionResult
from core.status import PointsError
from tests.core.points_harness import Env


def refused(action: Callable[[], object]) -> PointsError:
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def setup(env: Env, points: int = 1000) -> tuple[PointsService, str]:
    service = env.service(validation_code_required=False)
    who = env.add_member(service, points=points).mobile
    assert who is not None
    return service, who


def redeem(service: PointsService, who: str, points: object, *, txn: str = "T-1",
           ref: str = "REF-1", code: str | None = None, notes: str = "") -> RedemptionResult:
    return service.redeem(who, points, code, transaction_number=txn, external_reference=ref,
                          notes=notes)


def redemption_entries(service: PointsService, who: str) -> list[int]:
    return [e.points for e in service.ledger_entries(who) if e.source == Source.REDEMPTION]


def test_redeem_debits_and_reports(env: Env) -> None:
    service = env.service(points_currency_ratio="0.25")
    who = env.add_member(service, points=1000).mobile
    assert who is not None
    service.issue_validation_code(who, 300)
    result = service.redeem(who, "300", env.sender.last_code(), transaction_number="BILL-9",
                            external_reference="EXT-9", notes="  at the till  ")
    assert (result.points_redeemed, result.balance, str(result.redeemed_value)) == (300, 700,
                                                                                    "75.00")
    assert (result.transaction_number, result.external_reference) == ("BILL-9", "EXT-9")
    assert result.redemption_id.startswith("R") and not result.replayed
    balance = service.balance(who)
    assert (balance.current_points, balance.lifetime_points, str(balance.value)) == (
        700, 1000, "175.00")
    assert redemption_entries(service, who) == [-300]
    assert service.audit() == []


def test_retry_with_same_reference_debits_once(env: Env) -> None:
    service = env.service()
    who = env.add_member(service, points=1000).mobile
    assert who is not None
    service.issue_validation_code(who, 300)
    code = env.sender.last_code()
    first = redeem(service, who, 300, code=code, ref="EXT-RETRY")
    # The code is used up, yet the retry (with it, or with none) is answered from the
    # first result: the caller may not know whether the first attempt went through.
    for again in (code, None, "999999"):
        retry = redeem(service, who, 300, code=again, ref="EXT-RETRY")
        assert retry.replayed
        assert (retry.redemption_id, retry.balance, retry.points_redeemed) == (
            first.redemption_id, 700, 300)
    # Same member, amount and bill, written differently: still the same request.
    retry = service.redeem(f" {who} ", " 300 ", None, transaction_number="T-1",
                           external_reference=" EXT-RETRY ")
    assert retry.replayed and retry.redemption_id == first.redemption_id
    assert service.balance(who).current_points == 700
    assert redemption_entries(service, who) == [-300]
    assert len(service.history(who)) == 1
    assert service.audit() == []


def test_reference_reused_with_other_parameters_is_817(env: Env) -> None:
    service, who = setup(env)
    other = env.add_member(service, points=1000).mobile
    assert other is not None
    first = redeem(service, who, 300, txn="T-1", ref="EXT-1")
    for attempt in (lambda: redeem(service, who, 301, txn="T-1", ref="EXT-1"),
                    lambda: redeem(service, who, 300, txn="T-2", ref="EXT-1"),
                    lambda: redeem(service, other, 300, txn="T-1", ref="EXT-1")):
        error = refused(attempt)
        assert error.code == 817
        assert error.reason == "reference_conflict"
        assert "different redemption" in error.detail
    assert service.balance(who).current_points == 700
    assert service.balance(other).current_points == 1000
    assert [h.id for h in service.history(who)] == [first.redemption_id]
    assert service.history(other) == []
    assert service.audit() == []


def test_revert_gives_back_everything_on_the_transaction(env: Env) -> None:
    service, who = setup(env)
    a = redeem(service, who, 200, txn="BILL-7", ref="E1")
    env.clock.advance()
    b = redeem(service, who, 300, txn="BILL-7", ref="E2")
    env.clock.advance()
    redeem(service, who, 100, txn="BILL-8", ref="E3")
    assert service.balance(who).current_points == 400
    # The points must match what is left on the transaction: 500.
    assert refused(lambda: service.revert(who, "BILL-7", 200)).facts["remaining"] == 500
    result = service.revert(who, "BILL-7", 500, staff="desk-1", reason="bill cancelled")
    assert result.points_reversed == 500 and result.balance == 900
    assert set(result.redemption_ids) == {a.redemption_id, b.redemption_id}
    assert len(result.reversal_ids) == 2
    assert refused(lambda: service.revert(who, "BILL-7", 500)).code == 812
    assert service.balance(who).current_points == 900
    reversals = [e for e in service.ledger_entries(who) if e.source == Source.REVERSAL]
    assert sorted(e.points for e in reversals) == [200, 300]
    assert {(e.staff, e.reason) for e in reversals} == {("desk-1", "bill cancelled")}
    assert [(s.staff, s.action) for s in service.staff_actions()][:2] == [
        ("desk-1", "revert"), ("desk-1", "revert")]
    assert service.audit() == []


def test_revert_after_partial_reverse_asks_for_what_is_left(env: Env) -> None:
    service, who = setup(env)
    done = redeem(service, who, 300, txn="BILL-P", ref="EP")
    service.reverse(done.redemption_id, 100)
    assert refused(lambda: service.revert(who, "BILL-P", 300)).code == 810
    assert service.revert(who, "BILL-P", 200).balance == 1000
    assert refused(lambda: service.revert(who, "BILL-P", 200)).code == 812
    assert service.audit() == []


def test_revert_refusals(env: Env) -> None:
    service, who = setup(env)
    redeem(service, who, 300, txn="BILL-R", ref="ER")
    service.earn(who, "BILL-EARNED", "50")
    assert refused(lambda: service.revert(who, "BILL-EARNED", 50)).code == 814
    assert refused(lambda: service.revert(who, "BILL-NONE", 300)).code == 811
    assert refused(lambda: service.revert(who, "BILL-R", 299)).code == 810
    assert refused(lambda: service.revert(who, "BILL-R", "all")).code == 801
    assert refused(lambda: service.revert("+919999999999", "BILL-R", 300)).code == 816
    assert service.balance(who).current_points == 750
    assert service.audit() == []


def test_revert_all_that_is_left_and_by_transaction_number_alone(env: Env) -> None:
    """No points: all that is left on the transaction; no member: whoever redeemed on it."""
    service, who = setup(env)
    done = redeem(service, who, 300, txn="BILL-A", ref="EA")
    service.reverse(done.redemption_id, 100)
    result = service.revert(who, "BILL-A")
    assert (result.points_reversed, result.balance) == (200, 1000)
    redeem(service, who, 400, txn="BILL-B", ref="EB")
    assert service.revert(None, "BILL-B", 400).balance == 1000
    assert refused(lambda: service.revert(None, "BILL-B")).code == 812
    assert refused(lambda: service.revert(None, "BILL-NONE")).code == 811
    assert service.audit() == []


def test_a_code_with_a_lone_surrogate_is_a_wrong_code(env: Env) -> None:
    """Text no code can be (here a lone surrogate, which cannot even be encoded) answers
    808 and counts as a wrong attempt, on a check and on a redemption."""
    service = env.service()
    who = env.add_member(service, points=1000).mobile
    assert who is not None
    service.issue_validation_code(who, 200)
    checked = refused(lambda: service.is_redeemable(who, 200, "12\ud80034"))
    assert (checked.code, checked.facts["attempts_left"]) == (808, 4)
    wrong = refused(lambda: redeem(service, who, 200, code="\udfff" * 6))
    assert (wrong.code, wrong.facts["attempts_left"]) == (808, 3)
    done = redeem(service, who, 200, code=env.sender.last_code())
    assert done.balance == 800
    assert service.audit() == []


def test_reverse_by_id_in_full(env: Env) -> None:
    service, who = setup(env)
    done = redeem(service, who, 300, ref="EXT-F")
    result = service.reverse(done.redemption_id, identifier=who, staff="care-2",
                             reason="customer complaint")
    assert (result.points_reversed, result.balance) == (300, 1000)
    assert result.redemption_ids == (done.redemption_id,)
    assert result.reversal_ids[0].startswith("V")
    assert refused(lambda: service.reverse(done.redemption_id)).code == 3802
    assert refused(lambda: service.reverse("EXT-F")).code == 3802
    assert service.history(who)[-1].points_reversed == 300
    assert ("care-2", "reverse", done.redemption_id) in [
        (s.staff, s.action, s.target) for s in service.staff_actions()]
    assert service.audit() == []


def test_reverse_by_external_reference(env: Env) -> None:
    service, who = setup(env)
    done = redeem(service, who, 300, ref="EXT-BY-REF")
    result = service.reverse("EXT-BY-REF", "120")
    assert (result.redemption_ids, result.points_reversed, result.balance) == (
        (done.redemption_id,), 120, 820)
    assert service.reverse("EXT-BY-REF").points_reversed == 180
    assert service.balance(who).current_points == 1000
    assert service.audit() == []


def test_repeated_partial_reversals_until_3802(env: Env) -> None:
    service, who = setup(env)
    done = redeem(service, who, 300)
    balances = []
    for _ in range(3):
        env.clock.advance()
        balances.append(service.reverse(done.redemption_id, 100).balance)
    assert balances == [800, 900, 1000]
    for points in (None, 1, 100):
        assert refused(lambda p=points: service.reverse(done.redemption_id, p)).code == 3802
    assert service.history(who)[-1].points_reversed == 300
    assert service.balance(who).current_points == 1000
    assert service.audit() == []


def test_reverse_too_many_points_is_901(env: Env) -> None:
    service, who = setup(env)
    done = redeem(service, who, 300)
    service.reverse(done.redemption_id, 250)
    error = refused(lambda: service.reverse(done.redemption_id, 51))
    assert (error.code, error.facts["remaining"]) == (901, 50)
    assert service.balance(who).current_points == 950
    assert service.reverse(done.redemption_id, 50).balance == 1000
    assert service.audit() == []


def test_reverse_for_wrong_member_is_904(env: Env) -> None:
    service, who = setup(env)
    other = env.add_member(service, points=1000, email="other@example.com")
    done = redeem(service, who, 300)
    assert refused(lambda: service.reverse(done.redemption_id,
                                           identifier="other@example.com")).code == 904
    assert refused(lambda: service.reverse(done.redemption_id,
                                           identifier="+919999999999")).code == 816
    assert service.balance(who).current_points == 700
    assert service.balance(other).current_points == 1000
    assert refused(lambda: service.reverse("RNOTATHING1")).code == 902
    assert service.audit() == []


def test_history_newest_first(env: Env) -> None:
    service, who = setup(env, points=2000)
    first = redeem(service, who, 100, txn="T-A", ref="H1")
    env.clock.advance(60)
    second = redeem(service, who, 200, txn="T-B", ref="H2")
    env.clock.advance(60)
    reversal = service.reverse(first.redemption_id, 40)
    env.clock.advance(60)
    third = redeem(service, who, 300, txn="T-C", ref="H3")
    items = service.history(who)
    assert [(i.kind, i.id) for i in items] == [
        ("redemption", third.redemption_id),
        ("reversal", reversal.reversal_ids[0]),
        ("redemption", second.redemption_id),
        ("redemption", first.redemption_id),
    ]
    assert [i.at for i in items] == sorted((i.at for i in items), reverse=True)
    assert items[1].redemption_id == first.redemption_id
    assert items[1].transaction_number == "T-A"
    assert items[3].points_reversed == 40
    assert [i.id for i in service.history(who, limit=2)] == [i.id for i in items[:2]]
    assert service.history(service.member(who)) == items
    assert service.history(env.add_member(service).mobile or "") == []


def test_redemptions_of_one_member_leave_others_alone(env: Env) -> None:
    service, who = setup(env)
    other = env.add_member(service, points=500).mobile
    assert other is not None
    redeem(service, who, 400, ref="SOLO")
    assert service.balance(other).current_points == 500
    assert service.history(other) == []
    assert service.audit() == []
