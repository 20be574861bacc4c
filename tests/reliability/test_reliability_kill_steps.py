"""SIGKILL at every step of a redemption through the bot: a worker process (its own
`Application` and stand-in Bot API) is killed at each point of an update's handling (before
and after each commit, after each message the Bot API took), the same update is delivered
again to a fresh worker, as Telegram does when its webhook got no 200, and the member goes
on. `benchmarks.drills.kill_every_step` (what benchmarks/reliability.py runs too); these
tests hold it to zero updates lost, zero double redemptions and balanced books.
"""

from __future__ import annotations

import pytest

from benchmarks.drills import FLOW, kill_every_step

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def test_a_worker_killed_at_every_point_of_confirm_and_the_code_loses_nothing(
        database_url: str) -> None:
    """Confirm (the code issued, committed, sent in the chat after commit) and the code
    entry (the redemption): 7 + 3 points, each killed once."""
    outcome = kill_every_step(database_url, steps=("confirm", "code"))
    assert outcome.violations == []
    assert (outcome.crashes, outcome.lost, outcome.doubles) == (10, 0, 0)
    assert outcome.detail.startswith("10 kills at 10 points of 5 updates (contact 3, "
                                     "/redeem 3, amount 4, confirm 7, code 3)")


@pytest.mark.slow
def test_a_worker_killed_at_every_point_of_every_update_loses_nothing(
        database_url: str) -> None:
    outcome = kill_every_step(database_url, steps=FLOW)
    assert outcome.violations == []
    assert (outcome.crashes, outcome.lost, outcome.doubles) == (20, 0, 0)
