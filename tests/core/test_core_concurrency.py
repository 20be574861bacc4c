"""Many processes redeeming from one member at once never overdraw.

24 processes (the 'forkserver' start method: each a fresh interpreter state, none sharing a
connection with the parent) build their own `PointsService` on the same database, wait at
a barrier, then all redeem from the same member. On SQLite and on PostgreSQL: the total
debited never exceeds the starting balance, exactly as many succeed as the balance
allows, every refusal is 818 (or 813), and the ledger audit is clean afterwards. And the
same request retried by many processes at once debits once.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import pytest

from tests.core.points_harness import Env

PROCESSES = 24
POINTS_EACH = 150
START_BALANCE = 1000  # room for 6 redemptions of 150; 18 must be refused


def redeem_once(url: str, mobile: str, index: int, reference: str | None, barrier: Any,
                results: Any) -> None:
    """One contender: its own service and connections, then one redemption at the signal."""
    from core.service import PointsService
    from core.settings import load_settings
    from core.status import PointsError

    try:
        service = PointsService(load_settings(database_url=url, validation_code_required=False,
                                              redemption_min_points=1))
        service.balance(mobile)  # connected and ready before the start
    except Exception as error:  # the parent reports it
        barrier.abort()
        results.put((index, "error", f"{type(error).__name__}: {error}"))
        return
    try:
        barrier.wait(timeout=120)
        result = service.redeem(mobile, POINTS_EACH, None,
                                transaction_number="T-SAME" if reference else f"T-{index}",
                                external_reference=reference or f"CONC-{os.getpid()}-{index}")
        results.put((index, "ok", (result.points_redeemed, result.redemption_id,
                                   result.replayed)))
    except PointsError as error:
        results.put((index, "refused", error.code))
    except Exception as error:
        results.put((index, "error", f"{type(error).__name__}: {error}"))
    finally:
        service.db.dispose()


def contend(env: Env, mobile: str, processes: int, reference: str | None = None
            ) -> list[tuple[int, str, Any]]:
    """Start `processes` contenders at once; return what each one answered."""
    context = multiprocessing.get_context("forkserver")
    # The server imports the engine once; each contender is a fork of that clean process.
    context.set_forkserver_preload(["core.service", "core.settings", "core.status"])
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [context.Process(target=redeem_once,
                               args=(env.url, mobile, i, reference, barrier, results))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    outcomes: list[tuple[int, str, Any]] = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert [o for o in outcomes if o[1] == "error"] == []
    return outcomes


@pytest.mark.slow
def test_parallel_processes_never_overdraw(env: Env) -> None:
    service = env.service(validation_code_required=False, redemption_min_points=1)
    member = env.add_member(service, points=START_BALANCE)
    assert member.mobile is not None
    outcomes = contend(env, member.mobile, PROCESSES)

    redeemed = [o[2][0] for o in outcomes if o[1] == "ok"]
    refusals = [o[2] for o in outcomes if o[1] == "refused"]
    assert len(redeemed) + len(refusals) == PROCESSES
    assert set(refusals) <= {818, 813}, refusals
    debited = sum(redeemed)
    after = service.balance(member.mobile).current_points
    assert debited <= START_BALANCE
    assert debited == START_BALANCE - after
    # Serialised properly, everyone who could be served was served.
    assert len(redeemed) == START_BALANCE // POINTS_EACH
    assert after == START_BALANCE % POINTS_EACH
    assert len(service.history(member.mobile, limit=100)) == len(redeemed)
    assert service.audit() == []


@pytest.mark.slow
def test_parallel_retries_of_one_redemption_debit_once(env: Env) -> None:
    """The same request (same external reference) sent by many processes at once: one
    redemption, and every process is answered with it."""
    service = env.service(validation_code_required=False, redemption_min_points=1)
    member = env.add_member(service, points=START_BALANCE)
    assert member.mobile is not None
    outcomes = contend(env, member.mobile, 10, reference="EXT-SAME")
    assert {o[1] for o in outcomes} == {"ok"}
    answers = [o[2] for o in outcomes]
    assert len({rid for _, rid, _ in answers}) == 1
    assert sorted(replayed for _, _, replayed in answers) == [False] + [True] * 9
    assert service.balance(member.mobile).current_points == START_BALANCE - POINTS_EACH
    assert len(service.history(member.mobile)) == 1
    assert service.audit() == []
