"""Row 2, the redemption cycle: is_redeemable + issue_validation_code + redeem per second
through `PointsService` on a SQLite file in WAL mode, against plain `sqlite3` doing the same
number of write transactions (two per cycle) with the same durability settings (WAL,
synchronous=FULL, BEGIN IMMEDIATE) and the same rows written by hand.

The baseline is the floor the engine cannot beat: the durable commits, with no parsing, no
ORM and no rules. The ratio says how much of the engine's time is that floor; the profile
after the table says where the rest goes.

Each member is used once per round (the default limit is 10 codes per member per hour), so
the database holds as many members as a round has cycles. Rounds alternate baseline and
engine so that drift in the machine hits both.
"""

from __future__ import annotations

import cProfile
import pstats
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event

from benchmarks.common import (
    BULK_TIME,
    Goal,
    Row,
    Section,
    bench_settings,
    log,
    ms,
    populate_sqlite,
    sqlite_url,
)
from benchmarks.common import mobile as member_mobile
from core.delivery import RecordingSender
from core.service import PointsService

GOAL = Goal(">=", 0.3)
POINTS = 100
WRITES_PER_CYCLE = 2  # issue_validation_code and redeem; is_redeemable only reads


@dataclass(frozen=True)
class Size:
    cycles: int  # per round
    rounds: int
    profiled: int  # cycles run under cProfile, after the timed rounds


QUICK = Size(cycles=300, rounds=1, profiled=100)
FULL = Size(cycles=3000, rounds=3, profiled=300)


class EngineCycle:
    """The cycle as a point of sale runs it, through the engine."""

    def __init__(self, path: Path) -> None:
        self.sender = RecordingSender()
        self.service = PointsService(bench_settings(sqlite_url(path)), senders=[self.sender])
        self.phases = [0.0, 0.0, 0.0]
        self.statements = 0
        event.listen(self.service.db.engine, "before_cursor_execute", self._count)

    def _count(self, *_args: object) -> None:
        self.statements += 1

    def run(self, member_id: int, tag: str) -> None:
        who = member_mobile(member_id)
        start = time.perf_counter()
        self.service.is_redeemable(who, POINTS)
        checked = time.perf_counter()
        self.service.issue_validation_code(who, POINTS)
        code = self.sender.last_code()
        self.sender.sent.clear()
        issued = time.perf_counter()
        self.service.redeem(who, POINTS, code, transaction_number=f"B{tag}",
                            external_reference=f"X{tag}")
        done = time.perf_counter()
        self.phases[0] += checked - start
        self.phases[1] += issued - checked
        self.phases[2] += done - issued

    def close(self) -> None:
        self.service.db.dispose()


class PlainCycle:
    """The same durable writes by hand: two BEGIN IMMEDIATE transactions per cycle."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path, isolation_level=None, timeout=30)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=30000"):
            self.con.execute(f"PRAGMA {pragma}")

    def run(self, member_id: int, tag: str) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        cursor = con.execute(
            "INSERT INTO validation_code (member_id, points, nonce, state, sends, attempts, "
            "issued_at, expires_at) VALUES (?, ?, ?, 'active', 1, 0, ?, ?)",
            (member_id, POINTS, "0123456789abcdef", BULK_TIME, BULK_TIME))
        code_id = cursor.lastrowid
        con.execute("COMMIT")
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE member SET current_points = current_points - ? WHERE id = ?",
                    (POINTS, member_id))
        redemption_id = f"R{tag}"[:16]
        con.execute(
            "INSERT INTO redemption (id, member_id, points, redeemed_value, balance_after, "
            "transaction_number, external_reference, fingerprint, notes, redemption_time, "
            "points_reversed, created_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, '', ?, 0, ?)",
            (redemption_id, member_id, POINTS, POINTS, f"B{tag}", f"X{tag}", "f" * 64,
             BULK_TIME, BULK_TIME))
        con.execute(
            "INSERT INTO ledger_entry (member_id, source, points, lifetime_points, reference, "
            "created_at) VALUES (?, 'redemption', ?, 0, ?, ?)",
            (member_id, -POINTS, redemption_id, BULK_TIME))
        con.execute("UPDATE validation_code SET state = 'used', redemption_id = ? WHERE id = ?",
                    (redemption_id, code_id))
        con.execute("COMMIT")

    def close(self) -> None:
        self.con.close()


def _rounds(size: Size, engine: EngineCycle, plain: PlainCycle) -> tuple[float, float]:
    """Seconds spent by the engine and by the baseline on size.rounds * size.cycles each."""
    engine_time = plain_time = 0.0
    for r in range(size.rounds):
        start = time.perf_counter()
        for i in range(size.cycles):
            plain.run(i + 1, f"{r}-{i}")
        plain_time += time.perf_counter() - start
        start = time.perf_counter()
        for i in range(size.cycles):
            engine.run(i + 1, f"{r}-{i}")
        engine_time += time.perf_counter() - start
    return engine_time, plain_time


def _profile(engine: EngineCycle, size: Size) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(size.profiled):
        engine.run(i + 1, f"p-{i}")
    profiler.disable()
    return pstats.Stats(profiler)


LAYERS = (
    ("sqlite3 commit (WAL write + fsync)", "<method 'commit' of 'sqlite3.Connection'"),
    ("sqlite3 statements (SQL engine)", "<method 'execute' of 'sqlite3."),
    ("SQLAlchemy (ORM, unit of work, SQL compilation)", "/sqlalchemy/"),
    ("sqlmodel (model construction, validation)", "/sqlmodel/"),
    ("pydantic", "/pydantic"),
    ("phonenumbers (parsing the mobile number)", "/phonenumbers/"),
    ("pyotp + hmac (deriving the code)", "/pyotp/"),
    ("core (the engine's own code)", "/core/"),
)


def _where_time_goes(stats: pstats.Stats, cycles: int) -> tuple[list[str], float]:
    """Own (not cumulative) profiled time grouped by layer, then the engine's functions by
    cumulative time; and SQLAlchemy's share of the time."""
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    layers = dict.fromkeys([name for name, _ in LAYERS] + ["other (stdlib, builtins)"], 0.0)
    for (filename, _line, function), entry in raw.items():
        where = f"{filename}:{function}" if filename != "~" else function
        for name, marker in LAYERS:
            if marker in where:
                layers[name] += entry[2]
                break
        else:
            layers["other (stdlib, builtins)"] += entry[2]
    lines = [f"  by layer (own time under cProfile, {cycles} cycles, "
             f"{total / cycles * 1000:.2f} ms/cycle profiled; cProfile slows Python calls, "
             f"not SQLite's C code, so Python's share is overstated):"]
    lines += [f"    {share / total:6.1%}  {name}" for name, share in
              sorted(layers.items(), key=lambda item: -item[1]) if share]
    engine_functions = sorted(
        ((key, entry) for key, entry in raw.items() if "/core/" in key[0]),
        key=lambda item: -item[1][3])[:8]
    lines.append("  the engine's functions by cumulative time (cProfile):")
    for (filename, line, function), entry in engine_functions:
        short = filename[filename.rindex("/core/") + 1:]
        lines.append(f"    {entry[3] / cycles * 1000:6.2f} ms/cycle  {entry[1]:>5} calls  "
                     f"{short}:{line}({function})")
    return lines, layers[LAYERS[2][0]] / total


def run(quick: bool) -> Section:
    size = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-cycle-") as tmp:
        engine_db, plain_db = Path(tmp) / "engine.db", Path(tmp) / "plain.db"
        log(f"row 2: loading {size.cycles:,} members twice")
        for path in (engine_db, plain_db):
            populate_sqlite(path, size.cycles, 10)  # >= 1,000 points each
        engine, plain = EngineCycle(engine_db), PlainCycle(plain_db)
        try:
            warm = min(50, size.cycles)
            for i in range(warm):  # both warm: caches, imports, statement caches
                engine.run(size.cycles - i, f"w-{i}")
                plain.run(size.cycles - i, f"w-{i}")
            engine.phases = [0.0, 0.0, 0.0]
            engine.statements = 0
            log(f"row 2: {size.rounds} round(s) of {size.cycles:,} cycles, baseline and engine")
            engine_time, plain_time = _rounds(size, engine, plain)
            statements = engine.statements / (size.rounds * size.cycles)
            phase_times = list(engine.phases)
            log(f"row 2: profiling {size.profiled} cycles")
            stats = _profile(engine, size)
        finally:
            engine.close()
            plain.close()

    cycles = size.rounds * size.cycles
    engine_rate, plain_rate = cycles / engine_time, cycles / plain_time
    ratio = engine_rate / plain_rate
    per_cycle = engine_time / cycles
    floor = plain_time / cycles
    phases = [p / cycles for p in phase_times]
    names = ("is_redeemable", "issue_validation_code", "redeem")
    details = [f"Row 2 profile: where a redemption cycle's {ms(per_cycle)} go "
               f"(the baseline's two durable transactions take {ms(floor)})",
               "  by phase (timed run): " + ", ".join(
                   f"{name} {ms(p)} ({p / per_cycle:.0%})"
                   for name, p in zip(names, phases, strict=True))]
    where, sqlalchemy_share = _where_time_goes(stats, size.profiled)
    details += where
    row = Row(
        "2", "redemption cycle, SQLite WAL",
        f"{engine_rate:,.0f} cycles/s", f"{plain_rate:,.0f} cycles/s (sqlite3, 2 txns)",
        ratio, GOAL,
        why=(f"a cycle costs {ms(per_cycle)}, where the baseline's two hand-written durable "
             f"transactions take {ms(floor)} on this disk, whose fsync is fast. The rest "
             f"is Python in front of SQLite: {statements:.0f} statements in 3 transactions "
             f"(the baseline: 7 in 2), each going through SQLAlchemy's ORM (sessions, "
             f"unit-of-work flushes, statement caching, row-to-object loading), which is "
             f"{sqlalchemy_share:.0%} of the profiled time; mobile number parsing on each of "
             f"the 3 calls adds a little. To close the gap: SQLAlchemy Core statements "
             f"instead of ORM objects on the hot path, fewer statements per cycle (codes.issue "
             f"runs two queries on the code table, redeem re-reads the code), parsing the "
             f"identifier once per cycle; on a disk with slower fsync the ratio rises by "
             f"itself"))
    notes = [f"row 2: {size.rounds} round(s) x {size.cycles:,} cycles, {WRITES_PER_CYCLE} write "
             f"transactions per cycle in the baseline; SQLite file on "
             f"{_filesystem(Path(tempfile.gettempdir()))}"]
    if quick:
        notes.append(f"row 2 (--quick): {size.cycles} cycles, 1 round; the full run does "
                     f"{FULL.rounds} x {FULL.cycles:,}")
    return Section([row], notes, details)


def _filesystem(path: Path) -> str:
    """The filesystem type under `path`, from /proc/mounts (fsync cost depends on it)."""
    best, kind = "", "an unknown filesystem"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for mount in mounts:
        parts = mount.split()
        if len(parts) >= 3 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], f"{parts[2]} ({parts[1]})"
    return kind
