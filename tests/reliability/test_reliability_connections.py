"""A webhook worker with few file descriptors (a soft RLIMIT_NOFILE of 256, in a process of
its own) while hundreds of idle or half-sent connections are held against it: every real
update is still answered within a few seconds, and the worker's log stays a handful of
lines, whether the connection cap keeps it clear of EMFILE or its descriptors are all used
up anyway (accepting fails with EMFILE). The drill is `benchmarks.drills.held_connections`,
the "connections held" row of benchmarks/reliability.py; the old server, which read every
connection to its end and logged a traceback per failed accept, answered none of the
updates and wrote hundreds of thousands of lines."""

from __future__ import annotations

import pytest

from benchmarks.drills import MAX_LOG_LINES, held_connections


@pytest.mark.parametrize("hog", [False, True], ids=["under the cap", "no descriptors left"])
def test_a_worker_short_of_file_descriptors_serves_real_updates_and_logs_little(
        database_url: str, hog: bool) -> None:
    outcome = held_connections(database_url, held=300, updates=10, fd_limit=256, hog=hog,
                               idle_timeout=2.0)
    assert outcome.violations == []
    assert outcome.requests == 310
    assert "10 of 10 updates answered" in outcome.detail
    lines = int(outcome.detail.split("; ")[-1].split()[0])
    assert lines <= MAX_LOG_LINES
