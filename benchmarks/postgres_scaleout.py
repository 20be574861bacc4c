"""Row 4, PostgreSQL scale-out: redemption cycles (is_redeemable + issue_validation_code +
redeem through `PointsService`) per second from 4 worker processes against 1, each worker
on its own members of one PostgreSQL database. Goal: at least 2.5x.

The database is created fresh (`bench_<random>`) on the server named by
LOYALTY_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test), loaded
in bulk with `generate_series`, and dropped at the end whatever happens. When the server
cannot be reached the row is skipped with a note.

Workers are spawned processes that build their own engine, warm up, then start together
at a barrier and run for a fixed time. The machine's CPU use is sampled from /proc/stat
around each run: with one worker it shows how many cores a single stream of cycles keeps
busy (the Python worker plus its PostgreSQL backend), and so the most that N cores can give.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from benchmarks.common import (
    Goal,
    Row,
    Section,
    bench_settings,
    cpu_jiffies,
    log,
    mobile,
    postgres_url,
    process_cpu,
)
from tests.support.databases import postgres_database

GOAL = Goal(">=", 2.5)
WORKERS = 4
POINTS = 100
START_POINTS = 1_000_000
NOISY_CORES = 0.25


@dataclass(frozen=True)
class Size:
    seconds: float  # per run
    rounds: int  # rounds of (1 worker, then 4), so that drift hits both
    members_per_worker: int  # per round


QUICK = Size(seconds=3.0, rounds=1, members_per_worker=1_500)
FULL = Size(seconds=10.0, rounds=2, members_per_worker=3_000)


@dataclass(frozen=True)
class Outcome:
    cycles: int
    seconds: float
    cpu_seconds: float  # the worker process's own CPU time
    server_cpu_seconds: float | None = None  # its PostgreSQL backend's, when local
    error: str = ""


def _worker(url: str, first: int, count: int, seconds: float, tag: str, barrier: Barrier,
            results: Any) -> None:
    """One worker process: cycles on members first .. first+count-1 until time is up."""
    try:
        from core.delivery import RecordingSender
        from core.service import PointsService

        sender = RecordingSender()
        service = PointsService(bench_settings(url), senders=[sender])
        done = 0

        def cycle() -> None:
            nonlocal done
            who = mobile(first + done % count)
            service.is_redeemable(who, POINTS)
            service.issue_validation_code(who, POINTS)
            code = sender.last_code()
            sender.sent.clear()
            service.redeem(who, POINTS, code, transaction_number=f"B{tag}-{done}",
                           external_reference=f"X{tag}-{first}-{done}")
            done += 1

        for _ in range(3):
            cycle()
        warm = done
        # Cycles run one at a time, so the pool holds one connection: this backend's.
        with service.db.engine.connect() as connection:
            backend = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        barrier.wait(timeout=120)
        server_cpu = process_cpu(backend)
        cpu, start = time.process_time(), time.perf_counter()
        while time.perf_counter() - start < seconds:
            cycle()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        server_after = process_cpu(backend)
        server = (None if server_cpu is None or server_after is None
                  else server_after - server_cpu)
        results.put(Outcome(done - warm, elapsed, cpu, server))
        service.db.dispose()
    except BaseException as error:  # reported to the parent, which fails the row
        results.put(Outcome(0, 0.0, 0.0, None, f"{type(error).__name__}: {error}"))
        barrier.abort()


@dataclass(frozen=True)
class Run:
    rate: float  # cycles per second, all workers together
    cores_busy: float  # the machine's busy cores during the run (every process on it)
    worker_cpu_ms: float  # client CPU per cycle
    server_cpu_ms: float | None  # PostgreSQL backend CPU per cycle, when visible
    server_cpu_seconds: float  # all the run's backends together (0 when not visible)
    seconds: float

    @property
    def other_cores(self) -> float:
        """Cores other processes kept busy during the run (machine minus workers and
        backends)."""
        own = self.rate * self.seconds * (self.worker_cpu_ms + (self.server_cpu_ms or 0.0))
        return max(self.cores_busy - own / 1000 / self.seconds, 0.0)

    @property
    def stream_cores(self) -> float | None:
        """Cores one stream of cycles keeps busy: its worker plus its backend."""
        if self.server_cpu_ms is None:
            return None
        return self.rate * (self.worker_cpu_ms + self.server_cpu_ms) / 1000


def _run(url: str, workers: int, first: int, size: Size, tag: str) -> Run:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, name=f"bench-worker-{i}",
                        args=(url, first + i * size.members_per_worker,
                              size.members_per_worker, size.seconds, f"{tag}{i}",
                              barrier, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    outcomes: list[Outcome] = []
    try:
        barrier.wait(timeout=120)
        busy0, total0 = cpu_jiffies()
        outcomes = [results.get(timeout=size.seconds + 120) for _ in processes]
        busy1, total1 = cpu_jiffies()
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
    errors = [o.error for o in outcomes if o.error]
    if errors:
        raise RuntimeError(f"a worker failed: {errors[0]}")
    cores = os.cpu_count() or 1
    cores_busy = cores * (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    cycles = max(sum(o.cycles for o in outcomes), 1)
    server = [o.server_cpu_seconds for o in outcomes]
    server_ms = (None if any(v is None for v in server)
                 else 1000 * sum(v or 0.0 for v in server) / cycles)
    return Run(sum(o.cycles / o.seconds for o in outcomes), cores_busy,
               1000 * sum(o.cpu_seconds for o in outcomes) / cycles, server_ms,
               sum(v or 0.0 for v in server), max(o.seconds for o in outcomes))


def _combine(runs: list[Run]) -> Run:
    """Several runs of the same kind as one: rates and CPU shares weighted by time."""
    seconds = sum(r.seconds for r in runs)
    cycles = sum(r.rate * r.seconds for r in runs)

    def per_cycle(values: list[float]) -> float:
        return sum(v * r.rate * r.seconds for v, r in zip(values, runs, strict=True)) / cycles

    server = [r.server_cpu_ms for r in runs]
    return Run(cycles / seconds, sum(r.cores_busy * r.seconds for r in runs) / seconds,
               per_cycle([r.worker_cpu_ms for r in runs]),
               None if any(v is None for v in server)
               else per_cycle([v or 0.0 for v in server]),
               sum(r.server_cpu_seconds for r in runs), seconds)


def _load(url: str, members: int) -> None:
    """The schema, then `members` members with START_POINTS each and the ledger entry that
    gives them, in bulk on the server."""
    from core.db import Database

    database = Database(url)
    database.migrate()
    with database.engine.begin() as connection:
        connection.execute(text(
            """INSERT INTO member (id, mobile, email, external_id, name, customer_type,
                                   fraud_status, current_points, lifetime_points,
                                   lifetime_purchases, created_at)
               SELECT i, '+91' || (9000000000 + i), NULL, NULL, 'Member ' || i, 'loyalty',
                      'NONE', :p, :p, 0, now()
               FROM generate_series(1, :n) AS i"""), {"p": START_POINTS, "n": members})
        connection.execute(text(
            "SELECT setval(pg_get_serial_sequence('member', 'id'), :n)"), {"n": members})
        connection.execute(text(
            """INSERT INTO ledger_entry (member_id, source, points, lifetime_points, reference,
                                         created_at)
               SELECT i, 'import', :p, :p, 'bulk:' || i, now()
               FROM generate_series(1, :n) AS i"""), {"p": START_POINTS, "n": members})
        connection.execute(text("ANALYZE"))
    database.dispose()


def run(quick: bool) -> Section:
    size = QUICK if quick else FULL
    base = make_url(postgres_url())
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool,
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
    except Exception as error:
        admin.dispose()
        reason = f"PostgreSQL unreachable at {base.render_as_string(hide_password=True)}"
        log(f"row 4: skipped: {reason}: {type(error).__name__}")
        return Section([Row("4", "PostgreSQL scale-out, 4 vs 1 process",
                            "not measured: PostgreSQL unreachable", "-", None, GOAL)],
                       [f"row 4 skipped: {reason} ({type(error).__name__}); set "
                        f"LOYALTY_TEST_POSTGRES_URL to measure it"])
    admin.dispose()
    with postgres_database(postgres_url(), prefix="bench") as url:
        name = make_url(url).database
        per_round = (1 + WORKERS) * size.members_per_worker
        log(f"row 4: database {name}, {per_round * size.rounds:,} members")
        _load(url, per_round * size.rounds)
        ones: list[Run] = []
        fours: list[Run] = []
        for r in range(size.rounds):
            first = 1 + r * per_round
            log(f"row 4: round {r + 1} of {size.rounds}: 1 worker, then {WORKERS}, "
                f"{size.seconds:g} s each")
            ones.append(_run(url, 1, first, size, f"a{r}-"))
            fours.append(_run(url, WORKERS, first + size.members_per_worker, size, f"b{r}-"))
        one, four = _combine(ones), _combine(fours)
    log(f"row 4: dropped {name}")
    cores = os.cpu_count() or 1
    ratio = four.rate / one.rate
    stream = one.stream_cores
    if stream is not None and one.server_cpu_ms is not None:
        ceiling = cores / stream
        cost = (f"one worker's stream of cycles keeps {stream:.2f} cores busy "
                f"({one.worker_cpu_ms:.1f} ms of Python CPU in the worker plus "
                f"{one.server_cpu_ms:.1f} ms in its PostgreSQL backend per cycle)")
        if ceiling < GOAL.value:
            why = (f"the goal cannot be met on {cores} cores: {cost}, so {cores} cores give "
                   f"at most ~{ceiling:.1f}x however many workers run, and the workers "
                   f"share those cores with the server. It needs at least "
                   f"{math.ceil(GOAL.value * stream)} cores for workers and server (measure "
                   f"on a larger machine, or with PostgreSQL on its own host), or a cheaper "
                   f"cycle (less ORM work in the worker, see row 2)")
        else:
            why = (f"{cost}, so {cores} cores allow up to ~{ceiling:.1f}x; the rest is lost "
                   f"to contention: {WORKERS} processes time-sharing {cores} cores with the "
                   f"server, and commits waiting on WAL flushes. More cores, or a cheaper "
                   f"cycle (see row 2), would close the gap")
    else:
        why = (f"this machine has {cores} cores and the {WORKERS} workers kept "
               f"{four.cores_busy:.2f} of them busy; the PostgreSQL server's CPU is not "
               f"visible from here, so the ceiling cannot be computed. More cores for the "
               f"workers and the server, or a cheaper cycle (see row 2), would close the gap")
    if one.other_cores > NOISY_CORES:
        why = (f"other processes kept ~{one.other_cores:.1f} cores busy during the "
               f"1-worker run, which slowed it and makes the ceiling below optimistic; "
               + why)
    elif four.cores_busy < 0.85 * cores:
        why = (f"the {WORKERS} workers left the CPUs partly idle ({four.cores_busy:.2f} of "
               f"{cores} cores busy), so they also wait on something shared (row locks, WAL "
               f"flushes at commit); " + why)
    row = Row("4", f"PostgreSQL scale-out, {WORKERS} vs 1 process",
              f"{four.rate:,.0f} cycles/s ({WORKERS} processes)",
              f"{one.rate:,.0f} cycles/s (1 process)", ratio, GOAL, why=why)
    notes = [f"row 4: PostgreSQL {version} on {base.host}:{base.port}, fresh database "
             f"dropped afterwards; {size.rounds} round(s) of {size.seconds:g} s with 1 worker "
             f"then {size.seconds:g} s with {WORKERS}; the whole machine's CPU was busy "
             f"{one.cores_busy:.2f} of {cores} cores with 1 worker, {four.cores_busy:.2f} with "
             f"{WORKERS} (other processes included)"]
    if quick:
        notes.append(f"row 4 (--quick): 1 round of {size.seconds:g} s per run instead of "
                     f"{FULL.rounds} of {FULL.seconds:g} s")
    return Section([row], notes,
                   server_cpu_seconds=one.server_cpu_seconds + four.server_cpu_seconds)
