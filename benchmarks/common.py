"""What every benchmark row shares: the row and goal types, the table and report printer,
percentiles, machine facts, and fast bulk loading of members and ledger entries.

Bulk loading writes straight into the engine's tables (after `Database.migrate()` made
them), keeping the ledger's invariant: a member's `current_points` and `lifetime_points`
are the sums of their ledger entries. Members are named by Indian mobile numbers
(+91 9000000000 + id), which `core.identifiers` accepts as typed.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import pstats
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.db import Database
from core.settings import Settings, load_settings
from tests.support.databases import DEFAULT_POSTGRES_URL, POSTGRES_ENV

BULK_TIME = "2026-01-01 00:00:00.000000"
SECRET_KEY = "benchmark-secret-key"  # a throwaway database's key


# ---------------------------------------------------------------- rows and the table


@dataclass(frozen=True)
class Goal:
    """A bound on a ratio: at least (`>=`) or at most (`<=`) `value`."""

    op: str
    value: float

    def met(self, ratio: float) -> bool:
        return ratio >= self.value if self.op == ">=" else ratio <= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass
class Row:
    """One measurement: the figure, its same-run baseline, their ratio and the goal.

    `ratio` is None when the row was not measured (then `figure` says why); `goal` is None
    for a figure reported without one. `why` is printed only when the goal is missed: why,
    and what would close the gap.
    """

    number: str
    name: str
    figure: str
    baseline: str
    ratio: float | None
    goal: Goal | None
    why: str = ""

    @property
    def met(self) -> bool | None:
        if self.ratio is None or self.goal is None:
            return None
        return self.goal.met(self.ratio)

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.met]


@dataclass
class Section:
    """What one benchmark module hands back: its rows, notes, and extra detail lines."""

    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    # CPU seconds the row caused outside this process tree (a database server's), so that
    # it does not count as interference from other processes.
    server_cpu_seconds: float = 0.0


def not_measured(number: str, name: str, goal: Goal | None, reason: str) -> Row:
    return Row(number, name, f"not measured: {reason}", "-", None, goal)


def format_table(rows: Sequence[Row]) -> str:
    header = ("#", "measurement", "figure", "baseline (same run)", "ratio", "goal", "met")
    cells = [header] + [
        (r.number, r.name, r.figure, r.baseline,
         "-" if r.ratio is None else f"{r.ratio:.2f}", "-" if r.goal is None else str(r.goal),
         r.verdict)
        for r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def format_report(sections: Sequence[Section], *, quick: bool, facts: str) -> str:
    rows = [row for section in sections for row in section.rows]
    out = [f"Loyalty benchmarks ({'--quick' if quick else 'full run'}); {facts}", "",
           format_table(rows)]
    missed = [r for r in rows if r.met is False]
    if missed:
        out += ["", "Goals missed:"]
        out += [f"  row {r.number} ({r.name}): {r.why or 'no explanation recorded'}"
                for r in missed]
    notes = [n for s in sections for n in s.notes]
    if notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in notes]
    for section in sections:
        if section.details:
            out += ["", *section.details]
    return "\n".join(out)


# ---------------------------------------------------------------- figures


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def machine_facts() -> str:
    model = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


def cpu_jiffies(cpus: Collection[int] | None = None) -> tuple[int, int]:
    """(busy, total) CPU time so far, in clock ticks, from /proc/stat: of the whole machine,
    or of the CPUs numbered in `cpus` only (summed)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return 0, 0
    wanted = {"cpu"} if cpus is None else {f"cpu{n}" for n in cpus}
    busy = total = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if name not in wanted:
            continue
        try:
            fields = [int(v) for v in rest.split()]
        except ValueError:
            return 0, 0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        busy, total = busy + sum(fields) - idle, total + sum(fields)
    return busy, total


def available_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity), or all of them where that is not
    known."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def own_cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (worker processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of process `pid` from /proc, or None if not visible."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Interference:
    """How busy other processes kept the machine while a row ran: the machine's busy CPU
    time minus this process tree's (and minus the row's own server work)."""

    def __init__(self) -> None:
        self.busy, _ = cpu_jiffies()
        self.own = own_cpu_seconds()
        self.start = time.perf_counter()

    def cores(self, server_cpu_seconds: float = 0.0) -> float:
        """Other processes' mean CPU use in cores (0 for a run under 2 s: too coarse)."""
        elapsed = time.perf_counter() - self.start
        if elapsed < 2:
            return 0.0
        busy, _ = cpu_jiffies()
        machine = (busy - self.busy) / os.sysconf("SC_CLK_TCK")
        other = machine - (own_cpu_seconds() - self.own) - server_cpu_seconds
        return max(other, 0.0) / elapsed


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# ---------------------------------------------------------------- where the time goes

# Layers of the stack, by where a profiled function lives: the first marker found in
# "file:function" names its layer (so the more specific markers come first).
# The layers under the engine that every row's profile shares (after core/'s own).
STORAGE_LAYERS: tuple[tuple[str, str], ...] = (
    ("SQLAlchemy ORM (sessions, unit of work, loading)", "/sqlalchemy/orm/"),
    ("SQLAlchemy Core (SQL compilation, engine, pool)", "/sqlalchemy/"),
    ("sqlmodel + pydantic (model construction, validation)", "/sqlmodel/"),
    ("sqlmodel + pydantic (model construction, validation)", "/pydantic"),
    ("phonenumbers (parsing a mobile number)", "/phonenumbers/"),
)
LAYERS: tuple[tuple[str, str], ...] = (
    # Not work: the event loop's thread waiting for the next event, a thread for a lock.
    (WAITING := "waiting (idle event loop, lock waits; not work)",
     "<method 'poll' of 'select.epoll'"),
    (WAITING, "<method 'acquire' of '_thread.lock'"),
    ("driver: sqlite3 commit (WAL write + fsync)", "<method 'commit' of 'sqlite3.Connection'"),
    ("driver: sqlite3 statements (SQLite's C code)", "<method 'execute' of 'sqlite3."),
    ("python-telegram-bot", "/telegram/"),
    ("our adapter (bot/)", "/bot/"),
    ("core.chat (the chat use case)", "/core/chat"),
    ("engine operations (the rest of core/)", "/core/"),
    *STORAGE_LAYERS,
    ("pyotp + hmac (deriving the code)", "/pyotp/"),
    ("asyncio + threads (event loop, hand-offs)", "/asyncio/"),
    ("asyncio + threads (event loop, hand-offs)", "/concurrent/"),
    ("asyncio + threads (event loop, hand-offs)", "/threading.py"),
)
OTHER = "other (stdlib, builtins)"


def by_layer(stats: pstats.Stats) -> tuple[dict[str, float], float]:
    """Own (not cumulative) profiled seconds by layer (`LAYERS`), and the total."""
    raw = stats.stats  # type: ignore[attr-defined]
    layers = dict.fromkeys([name for name, _ in LAYERS] + [OTHER], 0.0)
    for (filename, _line, function), entry in raw.items():
        where = f"{filename}:{function}" if filename != "~" else function
        layers[next((name for name, marker in LAYERS if marker in where), OTHER)] += entry[2]
    return layers, sum(layers.values())


def layer_lines(stats: pstats.Stats, units: int, unit: str) -> list[str]:
    """The profile by layer, one line each, largest first, in ms per `unit` and share."""
    layers, total = by_layer(stats)
    lines = [f"  by layer (own time under cProfile, {units} {unit}s, "
             f"{total / units * 1000:.2f} ms/{unit} profiled; cProfile slows Python calls, "
             f"not SQLite's C code or fsync, so Python's share is overstated):"]
    total -= layers.pop(WAITING)
    lines += [f"    {seconds / total:6.1%}  {seconds / units * 1000:6.3f} ms  {name}"
              for name, seconds in sorted(layers.items(), key=lambda item: -item[1])
              if seconds]
    return lines


def top_functions(stats: pstats.Stats, units: int, unit: str, marker: str,
                  count: int = 8) -> list[str]:
    """The `count` functions under `marker` ("/core/") with the most cumulative time."""
    raw = stats.stats  # type: ignore[attr-defined]
    chosen = sorted(((key, entry) for key, entry in raw.items() if marker in key[0]),
                    key=lambda item: -item[1][3])[:count]
    lines = []
    for (filename, line, function), entry in chosen:
        short = filename[filename.rindex(marker) + 1:]
        lines.append(f"    {entry[3] / units * 1000:6.2f} ms/{unit}  {entry[1]:>6} calls  "
                     f"{short}:{line}({function})")
    return lines


@contextlib.contextmanager
def counted_fsyncs() -> Iterator[list[int | None]]:
    """Count this process's fsync and fdatasync calls while the block runs, with strace
    attached to the calling thread: yields a list whose one item is the count afterwards,
    or None when strace is missing or may not attach. Slows each traced syscall: use it
    on a few cycles outside the timed runs."""
    result: list[int | None] = [None]
    strace = shutil.which("strace")
    if strace is None:
        yield result
        return
    tracer = subprocess.Popen(
        [strace, "-c", "-e", "trace=fsync,fdatasync", "-p", str(threading_id())],
        stderr=subprocess.PIPE, text=True)
    assert tracer.stderr is not None
    attached = tracer.stderr.readline()  # "strace: Process N attached", or why not
    try:
        yield result
    finally:
        tracer.send_signal(signal.SIGINT)
        out = attached + tracer.communicate(timeout=30)[1]
    if "attached" not in attached:
        return
    # strace -c: "% time, seconds, usecs/call, calls, [errors,] syscall" a line.
    rows = [line.split() for line in out.splitlines()]
    result[0] = sum(int(row[3]) for row in rows
                    if len(row) in (5, 6) and row[-1] in ("fsync", "fdatasync"))


def threading_id() -> int:
    """The kernel's id of the calling thread (strace -p traces that thread)."""
    import threading

    return threading.get_native_id()


# ---------------------------------------------------------------- members and settings


def mobile(member_id: int) -> str:
    """The mobile number of bulk-loaded member `member_id`, as a person would type it."""
    return f"+91{9_000_000_000 + member_id}"


def bench_settings(database_url: str, **overrides: object) -> Settings:
    return load_settings(database_url=database_url, secret_key=SECRET_KEY, **overrides)


def postgres_url() -> str:
    """The PostgreSQL server the benchmarks use: POSTGRES_ENV's, else the default one (a
    throwaway database on it comes from `tests.support.databases`)."""
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def points_sql(member: str, k: str) -> str:
    """Points of entry `k` of member `member` in the bulk load: 100 to 1,000, varied."""
    return f"(100 + 10 * (({member} * 7 + {k} * 13) % 91))"


def populate_sqlite(path: Path, members: int, entries_per_member: int) -> None:
    """Create the schema in a new SQLite file and fill it in bulk: `members` loyalty
    members, each with `entries_per_member` issuing ledger entries whose sums are the
    member's current and lifetime points. Leaves the file in WAL mode."""
    database = Database(sqlite_url(path))
    database.migrate()
    database.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading
        con.execute("BEGIN")
        con.execute("CREATE TEMP TABLE k(k INTEGER PRIMARY KEY)")
        con.executemany("INSERT INTO k VALUES (?)", [(k,) for k in range(entries_per_member)])
        total = f"(SELECT coalesce(sum({points_sql('n.i', 'k.k')}), 0) FROM k)"
        con.execute(
            f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO member (id, mobile, email, external_id, name, customer_type,
                                fraud_status, current_points, lifetime_points,
                                lifetime_purchases, created_at)
            SELECT n.i, '+91' || (9000000000 + n.i), NULL, NULL, 'Member ' || n.i, 'loyalty',
                   'NONE', {total}, {total}, 0, ? FROM n""",
            (members, BULK_TIME))
        points = points_sql("m.id", "k.k")
        con.execute(
            f"""INSERT INTO ledger_entry (member_id, source, points, lifetime_points, reference,
                                          created_at)
            SELECT m.id, CASE k.k % 2 WHEN 0 THEN 'import' ELSE 'goodwill' END,
                   {points}, {points}, 'bulk:' || m.id || ':' || k.k, ?
            FROM member m CROSS JOIN k ORDER BY m.id, k.k""", (BULK_TIME,))
        con.execute("COMMIT")
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def ledger_mismatches(path: Path, up_to: int | None = None) -> int:
    """How many members (all, or those with id <= `up_to`) disagree with their ledger."""
    con = sqlite3.connect(path)
    try:
        (count,) = con.execute(
            """SELECT count(*) FROM member m WHERE m.id <= ? AND (
                 m.current_points != (SELECT coalesce(sum(points), 0) FROM ledger_entry
                                      WHERE member_id = m.id)
                 OR m.lifetime_points != (SELECT coalesce(sum(lifetime_points), 0)
                                          FROM ledger_entry WHERE member_id = m.id))""",
            (2**62 if up_to is None else up_to,)).fetchone()
        return int(count)
    finally:
        con.close()


__all__ = ["Goal", "Row", "Section", "format_report", "format_table", "ledger_mismatches",
           "machine_facts", "mobile", "percentile", "populate_sqlite"]
