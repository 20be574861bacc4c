"""SIGKILL at every step of a redemption through the bot: a worker process (its own
`Application` and stand-in Bot API) is killed at each point of an update's handling (before
and after each commit, after each message the Bot API took), the same update is delivered
again to a fresh worker, as Telegram does when its webhook got no 200, and the member goes
on. `benchmarks.drills.kill_every_step` (what benchmarks/reliability.py runs too); these
tests hold it to zero updates lost, zero double redemptions and balanced books.
"""

from __future__ import annotations

import re

import pytest

from benchmarks.drills import (
    FLOW,
    KILL_BALANCE,
    KILL_POINTS,
    KILL_USERS,
    KillRun,
    drill_mobile,
    engine_settings,
    judge_run,
    kill_every_step,
    members_csv,
)
from core.service import PointsService

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def test_a_worker_killed_at_every_point_of_confirm_and_the_code_loses_nothing(
        database_url: str) -> None:
    """Confirm (the code issued, committed, sent in the chat after commit) and the code
    entry (the redemption): 7 + 3 points, each killed once."""
    outcome = kill_every_step(database_url, steps=("confirm", "code"))
    assert outcome.violations == []
    assert (outcome.lost, outcome.doubles) == (0, 0)
    # Every point of the two updates was reached and killed once (how many there are
    # follows the statements the engine spends: before and after each write's commit,
    # after each message the Bot API took).
    found = re.match(r"(\d+) kills at (\d+) points of 5 updates \(contact \d+, /redeem \d+, "
                     r"amount \d+, confirm (\d+), code (\d+)\)", outcome.detail)
    assert found, outcome.detail
    kills, points, confirm, code = map(int, found.groups())
    assert kills == points == confirm + code == outcome.crashes
    assert confirm >= 4 and code >= 3


@pytest.mark.slow
def test_a_worker_killed_at_every_point_of_every_update_loses_nothing(
        database_url: str) -> None:
    outcome = kill_every_step(database_url, steps=FLOW)
    assert outcome.violations == []
    assert (outcome.lost, outcome.doubles) == (0, 0)
    found = re.match(r"(\d+) kills at (\d+) points", outcome.detail)
    assert found and int(found[1]) == int(found[2]) == outcome.crashes >= 15, outcome.detail


@pytest.mark.parametrize("redemptions", [0, 2])
def test_the_drill_sees_a_lost_flow_and_a_double_redemption(
        database_url: str, redemptions: int) -> None:
    """The judge of each member's way: no redemption is a lost flow, two are a double
    redemption, even when the chat ended in an 800."""
    service = PointsService(engine_settings(database_url, validation_code_required=False,
                                            redemption_min_points=500,
                                            redemption_multiple_of=500))
    phone = drill_mobile(2000)
    service.import_csv(members_csv([{"mobile": phone, "points": KILL_BALANCE}]))
    for n in range(redemptions):
        service.redeem(phone, KILL_POINTS, None, transaction_number=f"T{n}",
                       external_reference=f"E{n}")
    run = KillRun(KILL_USERS, phone, (5, 2), killed=True)
    problems, lost, double = judge_run(service, run, ["800 Points redeemed successfully"])
    service.db.dispose()
    assert (lost, double) == (True, redemptions == 2)
    assert any("did not end in 800" in p for p in problems)
    assert any("redeemed twice" in p for p in problems) == (redemptions == 2)


def test_a_run_whose_worker_was_never_killed_is_a_violation(database_url: str) -> None:
    service = PointsService(engine_settings(database_url, validation_code_required=False))
    phone = drill_mobile(2001)
    service.import_csv(members_csv([{"mobile": phone, "points": KILL_BALANCE}]))
    service.redeem(phone, KILL_POINTS, None, transaction_number="T", external_reference="E")
    problems, lost, double = judge_run(service, KillRun(KILL_USERS, phone, (1, 1)),
                                       ["800 Points redeemed successfully"])
    service.db.dispose()
    assert (lost, double) == (False, False)
    assert problems == ["the kill point was never reached"]
