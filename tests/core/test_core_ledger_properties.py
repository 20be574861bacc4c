"""Property-based: random sequences of earn / import (one member, or several members old
and new in one file: the bulk path) / goodwill / redeem (a validation code, then the
redemption) / retry / revert / reverse never break the ledger.

A Hypothesis state machine drives a real service on a fresh SQLite file per example and
keeps its own model of every member's balance. After every step: `audit()` finds nothing,
each member's current points equal the model's and the sum of their ledger entries and are
never negative, and lifetime points equal everything ever issued.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from core.delivery import RecordingSender
from core.service import PointsService
from core.settings import load_settings
from core.status import PointsError
from tests.core.points_harness import sqlite_file_url
from tests.support.clock import Clock
from tests.support.members import member_csv

EARN_RATE = Decimal("1.5")


@dataclass
class ModelRedemption:
    id: str
    member: str
    points: int
    reversed: int
    transaction: str
    reference: str


class LedgerMachine(RuleBasedStateMachine):
    members = Bundle("members")

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="ledger-"))
        self.clock = Clock()
        self.sender = RecordingSender()
        self.service = PointsService(
            load_settings(database_url=sqlite_file_url(self.directory), earn_rate=EARN_RATE,
                          redemption_min_points=1, otp_max_sends=1000,
                          otp_period_max_sends=100_000),
            senders=[self.sender], clock=self.clock)
        self.current: dict[str, int] = {}
        self.lifetime: dict[str, int] = {}
        self.redemptions: list[ModelRedemption] = []  # in the order they were made
        self.bills: dict[str, tuple[str, str]] = {}
        self.files: list[bytes] = []
        self.serial = 0

    def teardown(self) -> None:
        self.service.db.dispose()
        shutil.rmtree(self.directory, ignore_errors=True)

    def next(self, prefix: str) -> str:
        self.serial += 1
        self.clock.advance(1)
        return f"{prefix}{self.serial}"

    def expect_refusal(self, code: int, action: object) -> None:
        with pytest.raises(PointsError) as caught:
            action()  # type: ignore[operator]
        assert caught.value.code == code, str(caught.value)

    # -- points in

    def _import(self, rows: list[dict[str, object]]) -> bool:
        """Import `rows`; False when the very same file was imported before (then nothing
        changes: a file imports once)."""
        data = member_csv(rows)
        result = self.service.import_csv(data)
        if data in self.files:
            assert result.already_imported and result.points == 0
            return False
        assert not result.already_imported
        self.files.append(data)
        return True

    @initialize(target=members, points=st.integers(0, 3000))
    def first_member(self, points: int) -> str:
        return self._enrol(points, 0)

    @rule(target=members, points=st.integers(0, 3000), extra=st.integers(0, 500))
    def new_member(self, points: int, extra: int) -> str:
        return self._enrol(points, extra)

    def _enrol(self, points: int, extra: int) -> str:
        who = self.next("M")
        self._import([{"external_id": who, "name": who, "type": "loyalty",
                       "current_points": points, "lifetime_points": points + extra}])
        self.current[who], self.lifetime[who] = points, points + extra
        return who

    @rule(who=members, points=st.integers(0, 1000), extra=st.integers(0, 200))
    def import_more(self, who: str, points: int, extra: int) -> None:
        if not self._import([{"external_id": who, "name": f"{who} again", "type": "loyalty",
                              "current_points": points, "lifetime_points": points + extra,
                              "lifetime_purchases": "1.00"}]):
            return
        self.current[who] += points
        self.lifetime[who] += points + extra

    @rule(target=members, data=st.data(), new=st.integers(0, 3))
    def import_several(self, data: st.DataObject, new: int) -> object:
        """One file with top-ups of members who exist and new members, in any order."""
        known = sorted(self.current)
        old = data.draw(st.lists(st.sampled_from(known), unique=True, max_size=3))
        fresh = [self.next("N") for _ in range(new)]
        changes = []
        for who in old + fresh:
            points, extra = data.draw(st.integers(0, 800)), data.draw(st.integers(0, 100))
            changes.append((who, points, points + extra))
        order = data.draw(st.permutations(range(len(changes))))
        rows: list[dict[str, object]] = [
            {"external_id": who, "name": f"{who} bulk", "type": "loyalty",
             "current_points": points, "lifetime_points": lifetime,
             "lifetime_purchases": "2.00"}
            for who, points, lifetime in (changes[i] for i in order)]
        if not rows or not self._import(rows):
            return multiple()
        for who, points, lifetime in changes:
            self.current[who] = self.current.get(who, 0) + points
            self.lifetime[who] = self.lifetime.get(who, 0) + lifetime
        return multiple(*fresh)

    @rule(data=st.data())
    def import_same_file_again(self, data: st.DataObject) -> None:
        if not self.files:
            return
        file = data.draw(st.sampled_from(self.files))
        assert self.service.import_csv(file).already_imported

    @rule(who=members, cents=st.integers(1, 200_000))
    def earn(self, who: str, cents: int) -> None:
        bill = self.next("B")
        amount = f"{Decimal(cents) / 100:.2f}"
        points = int(Decimal(amount) * EARN_RATE)
        issued = self.service.earn(who, bill, amount)
        assert (issued.points, issued.replayed) == (points, False)
        self.bills[bill] = (who, amount)
        self.current[who] += points
        self.lifetime[who] += points

    @rule(data=st.data())
    def earn_same_bill_again(self, data: st.DataObject) -> None:
        if not self.bills:
            return
        bill = data.draw(st.sampled_from(list(self.bills)))
        who, amount = self.bills[bill]
        assert self.service.earn(who, bill, amount).replayed

    @rule(who=members, points=st.integers(1, 1000))
    def goodwill(self, who: str, points: int) -> None:
        self.next("G")
        assert self.service.goodwill(who, points, reason="sorry", staff="care").points == points
        self.current[who] += points
        self.lifetime[who] += points

    # -- points out

    @rule(who=members, points=st.integers(1, 4000), data=st.data())
    def redeem(self, who: str, points: int, data: st.DataObject) -> None:
        reference = self.next("E")
        if points > self.current[who]:
            self.expect_refusal(803, lambda: self.service.issue_validation_code(who, points))
            return
        self.service.issue_validation_code(who, points)
        member_id = self.service.member(who).id
        code = self.sender.last_code(member_id)
        # Share a transaction number with an earlier redemption of the member, sometimes.
        earlier = [r.transaction for r in self.redemptions if r.member == who]
        transaction = data.draw(st.sampled_from([f"T{reference}", *earlier]))
        result = self.service.redeem(who, points, code, transaction_number=transaction,
                                     external_reference=reference)
        self.current[who] -= points
        assert result.balance == self.current[who]
        self.redemptions.append(ModelRedemption(result.redemption_id, who, points, 0,
                                                transaction, reference))

    @rule(data=st.data())
    def retry_redemption(self, data: st.DataObject) -> None:
        if not self.redemptions:
            return
        r = data.draw(st.sampled_from(self.redemptions))
        again = self.service.redeem(r.member, r.points, None, transaction_number=r.transaction,
                                    external_reference=r.reference)
        assert again.replayed and again.redemption_id == r.id
        # Today's truth: what has been reversed of it since, and the balance now.
        assert (again.points_reversed, again.current_points) == (r.reversed,
                                                                 self.current[r.member])
        self.expect_refusal(817, lambda: self.service.redeem(
            r.member, r.points + 1, None, transaction_number=r.transaction,
            external_reference=r.reference))

    @rule(data=st.data(), off_by=st.sampled_from([0, 0, 0, 1, -1]))
    def revert(self, data: st.DataObject, off_by: int) -> None:
        if not self.redemptions:
            return
        chosen = data.draw(st.sampled_from(self.redemptions))
        who, transaction = chosen.member, chosen.transaction
        on_bill = [r for r in self.redemptions
                   if r.member == who and r.transaction == transaction]
        left = sum(r.points - r.reversed for r in on_bill)
        self.clock.advance(1)
        if left == 0:
            self.expect_refusal(812, lambda: self.service.revert(who, transaction, 1))
            return
        asked = left + off_by
        if off_by or asked <= 0:
            if asked > 0:
                self.expect_refusal(810, lambda: self.service.revert(who, transaction, asked))
            return
        result = self.service.revert(who, transaction, asked)
        assert result.points_reversed == left
        for r in on_bill:
            r.reversed = r.points
        self.current[who] += left
        assert result.balance == self.current[who]

    @rule(data=st.data(), by_reference=st.booleans())
    def reverse(self, data: st.DataObject, by_reference: bool) -> None:
        if not self.redemptions:
            return
        r = data.draw(st.sampled_from(self.redemptions))
        left = r.points - r.reversed
        points = data.draw(st.one_of(st.none(), st.integers(1, r.points + 10)))
        key = r.reference if by_reference else r.id
        self.clock.advance(1)
        if left == 0:
            self.expect_refusal(3802, lambda: self.service.reverse(key, points))
            return
        if points is not None and points > left:
            self.expect_refusal(901, lambda: self.service.reverse(key, points))
            return
        wanted = left if points is None else points
        result = self.service.reverse(key, points, identifier=r.member)
        assert result.points_reversed == wanted
        r.reversed += wanted
        self.current[r.member] += wanted
        assert result.balance == self.current[r.member]

    # -- what must always hold

    @invariant()
    def books_balance(self) -> None:
        assert self.service.audit() == []
        for who, expected in self.current.items():
            member = self.service.member(who)
            entries = self.service.ledger_entries(who)
            assert member.current_points == expected
            assert member.current_points == sum(e.points for e in entries)
            assert member.current_points >= 0
            assert member.lifetime_points == self.lifetime[who]
            assert member.lifetime_points == sum(e.lifetime_points for e in entries)


def test_random_operations_keep_the_ledger_invariants() -> None:
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        LedgerMachine, settings=settings(
            max_examples=40, stateful_step_count=25, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
