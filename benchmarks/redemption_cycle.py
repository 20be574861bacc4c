"""Row 2, the redemption cycle: a member's whole redemption in the chat, through the chat
use case itself (`core.chat.Chats.handle`, no bot in front: row 1 measures the bot), on a
SQLite file in WAL mode: /redeem, the amount, Confirm (a validation code issued and its
delivery written), the delivery (`Chats.deliver`: the code sent, the delivery marked
sent), and the code typed (the redemption). Against plain `sqlite3` doing the same durable
writes by hand with the same durability settings (WAL, synchronous=FULL, BEGIN IMMEDIATE):
the same rows written in the same number of write transactions.

The baseline is the floor the chat cannot beat: the durable commits, with no parsing, no
ORM, no reads and no rules. The ratio says how much of the chat's time is that floor; the
profile after the table says where the rest goes. Commits are counted on both sides, and
fsyncs too (with strace, on a few cycles after the timed rounds) where strace is there.

Each member is used once per round (the default limit is 10 codes per member per hour), so
the database holds as many members as a round has cycles, each already linked to its chat.
Rounds alternate baseline and chat so that drift in the machine hits both.
"""

from __future__ import annotations

import cProfile
import pstats
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.common import (
    BULK_TIME,
    WAITING,
    Goal,
    Row,
    Section,
    bench_settings,
    by_layer,
    counted_fsyncs,
    layer_lines,
    log,
    ms,
    populate_sqlite,
    sqlite_url,
    top_functions,
)
from core.chat import Chats
from core.chat_io import Command, DeliverCode, Outcome, Press, Sender, Text
from core.delivery import RecordingSender
from core.service import PointsService

GOAL = Goal(">=", 0.3)
POINTS = 100
# /redeem, amount, Confirm (code issued, delivery written), delivery sent, code (redeemed)
STEPS = ("/redeem", "amount", "Confirm", "delivery", "code")
WRITES_PER_CYCLE = 5
FSYNC_SAMPLE = 30  # cycles of each side run under strace to count fsyncs


@dataclass(frozen=True)
class Size:
    cycles: int  # per round
    rounds: int
    profiled: int  # cycles run under cProfile, after the timed rounds


QUICK = Size(cycles=300, rounds=1, profiled=100)
FULL = Size(cycles=3000, rounds=3, profiled=300)


@dataclass
class Counts:
    """SQL statements and transactions seen by the engine (BEGINs not counted as
    statements)."""

    statements: int = 0
    writes: int = 0  # BEGIN IMMEDIATE: write transactions, each a durable commit
    reads: int = 0  # BEGIN: read transactions (their COMMIT writes nothing)
    by_step: list[int] = field(default_factory=lambda: [0] * len(STEPS))


class ChatCycle:
    """The cycle as a member chats it, through `Chats.handle` and `Chats.deliver`."""

    def __init__(self, path: Path) -> None:
        self.sender = RecordingSender()
        self.service = PointsService(bench_settings(sqlite_url(path)), senders=[self.sender])
        self.chats = Chats(self.service)
        self.phases = [0.0] * len(STEPS)
        self.counts = Counts()
        self._step = 0
        event.listen(self.service.db.engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.lstrip()[:16].upper()
        if head.startswith("BEGIN"):
            if head.startswith("BEGIN IMMEDIATE"):
                self.counts.writes += 1
            else:
                self.counts.reads += 1
            return
        self.counts.statements += 1
        self.counts.by_step[self._step] += 1

    def run(self, member_id: int, tag: str) -> None:
        user = str(member_id)
        sender = Sender(user, user)
        clock = time.perf_counter
        times = [clock()]

        def step(number: int, outcome: Outcome, expected: str) -> Outcome:
            keys = [r.key for r in outcome.replies]
            if expected not in keys and not (expected == "effect" and outcome.effects):
                raise RuntimeError(f"member {member_id}, {STEPS[number]}: {keys}")
            times.append(clock())
            self._step = min(number + 1, len(STEPS) - 1)
            return outcome

        self._step = 0
        step(0, self.chats.handle(sender, f"{tag}:1", Command("redeem")), "ask_amount")
        summary = step(1, self.chats.handle(sender, f"{tag}:2", Text(str(POINTS))), "summary")
        confirm = summary.replies[0].buttons[0][0].data
        issued = step(2, self.chats.handle(sender, f"{tag}:3", Press(confirm)), "effect")
        effect = issued.effects[0]
        assert isinstance(effect, DeliverCode)
        step(3, self.chats.deliver(effect.delivery_id), "code_sent")
        code = self.sender.last_code()
        self.sender.sent.clear()
        step(4, self.chats.handle(sender, f"{tag}:5", Text(code)), "redeemed")
        for i in range(len(STEPS)):
            self.phases[i] += times[i + 1] - times[i]

    def close(self) -> None:
        self.service.db.dispose()


class PlainCycle:
    """The same durable writes by hand: five BEGIN IMMEDIATE transactions per cycle, each
    writing the rows the chat's transaction for that step writes."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path, isolation_level=None, timeout=30)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=30000"):
            self.con.execute(f"PRAGMA {pragma}")
        self.commits = 0

    def _claim(self, key: str) -> None:
        self.con.execute("BEGIN IMMEDIATE")
        self.con.execute("INSERT INTO handled_update (key, created_at) VALUES (?, ?)",
                         (key, BULK_TIME))

    def _commit(self) -> None:
        self.con.execute("COMMIT")
        self.commits += 1

    def run(self, member_id: int, tag: str) -> None:
        con, user = self.con, str(member_id)
        self._claim(f"{tag}:1")  # /redeem: the claim, the chat at the amount step
        con.execute(
            "INSERT INTO chat_state (channel_user, step, updated_at) VALUES (?, 'amount', ?) "
            "ON CONFLICT (channel_user) DO UPDATE SET step = 'amount', points = NULL, "
            "external_reference = NULL, transaction_number = NULL, token = NULL, "
            "updated_at = excluded.updated_at", (user, BULK_TIME))
        self._commit()
        self._claim(f"{tag}:2")  # the amount: the pending redemption
        con.execute(
            "UPDATE chat_state SET step = 'confirm', points = ?, transaction_number = ?, "
            "external_reference = ?, token = 'ABCDEFGH', updated_at = ? "
            "WHERE channel_user = ?",
            (POINTS, f"TG-{tag}", f"tg-{tag}", BULK_TIME, user))
        self._commit()
        self._claim(f"{tag}:3")  # Confirm: the code and its delivery
        code_id = con.execute(
            "INSERT INTO validation_code (member_id, points, nonce, state, sends, attempts, "
            "issued_at, expires_at) VALUES (?, ?, ?, 'active', 1, 0, ?, ?)",
            (member_id, POINTS, "0123456789abcdef", BULK_TIME, BULK_TIME)).lastrowid
        delivery_id = con.execute(
            "INSERT INTO code_delivery (code_id, resent, channel_user, reply_to, token, "
            "state, created_at, claimed_at) VALUES (?, 0, ?, ?, 'ABCDEFGH', 'sending', ?, ?)",
            (code_id, user, user, BULK_TIME, BULK_TIME)).lastrowid
        con.execute("UPDATE chat_state SET step = 'code', updated_at = ? "
                    "WHERE channel_user = ?", (BULK_TIME, user))
        self._commit()
        con.execute("BEGIN IMMEDIATE")  # the delivery sent
        con.execute("UPDATE code_delivery SET state = 'sent', done_at = ? WHERE id = ?",
                    (BULK_TIME, delivery_id))
        self._commit()
        self._claim(f"{tag}:5")  # the code: the redemption
        con.execute("UPDATE member SET current_points = current_points - ? WHERE id = ?",
                    (POINTS, member_id))
        redemption_id = f"R{tag}"[:16]
        con.execute(
            "INSERT INTO redemption (id, member_id, points, redeemed_value, balance_after, "
            "transaction_number, external_reference, fingerprint, notes, redemption_time, "
            "points_reversed, created_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, '', ?, 0, ?)",
            (redemption_id, member_id, POINTS, POINTS, f"TG-{tag}", f"tg-{tag}", "f" * 64,
             BULK_TIME, BULK_TIME))
        con.execute(
            "INSERT INTO ledger_entry (member_id, source, points, lifetime_points, reference, "
            "created_at) VALUES (?, 'redemption', ?, 0, ?, ?)",
            (member_id, -POINTS, redemption_id, BULK_TIME))
        con.execute("UPDATE validation_code SET state = 'used', redemption_id = ? WHERE id = ?",
                    (redemption_id, code_id))
        con.execute(
            "UPDATE chat_state SET step = 'menu', points = NULL, external_reference = NULL, "
            "transaction_number = NULL, token = NULL, updated_at = ? WHERE channel_user = ?",
            (BULK_TIME, user))
        self._commit()

    def close(self) -> None:
        self.con.close()


PLAIN_STATEMENTS = 15  # the baseline's statements per cycle, BEGINs not counted


def _link_chats(path: Path, members: int) -> None:
    """Each bulk-loaded member's chat user (its id, as text) linked to it, as after a
    verified contact."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN")
        con.executemany("INSERT INTO chat_link (channel_user, member_id, created_at) "
                        "VALUES (?, ?, ?)",
                        [(str(i), i, BULK_TIME) for i in range(1, members + 1)])
        con.execute("COMMIT")
    finally:
        con.close()


def _rounds(size: Size, chat: ChatCycle, plain: PlainCycle) -> tuple[float, float]:
    """Seconds spent by the chat and by the baseline on size.rounds * size.cycles each."""
    chat_time = plain_time = 0.0
    for r in range(size.rounds):
        start = time.perf_counter()
        for i in range(size.cycles):
            plain.run(i + 1, f"{r}-{i}")
        plain_time += time.perf_counter() - start
        start = time.perf_counter()
        for i in range(size.cycles):
            chat.run(i + 1, f"{r}-{i}")
        chat_time += time.perf_counter() - start
    return chat_time, plain_time


def _profile(chat: ChatCycle, size: Size) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(size.profiled):
        chat.run(i + 1, f"p-{i}")
    profiler.disable()
    return pstats.Stats(profiler)


def _fsyncs(chat: ChatCycle, plain: PlainCycle, cycles: int) -> tuple[float, float] | None:
    """fsyncs per cycle of each side, counted with strace on `cycles` cycles each."""
    with counted_fsyncs() as plain_count:
        for i in range(cycles):
            plain.run(i + 1, f"s-{i}")
    with counted_fsyncs() as chat_count:
        for i in range(cycles):
            chat.run(i + 1, f"s-{i}")
    if chat_count[0] is None or plain_count[0] is None:
        return None
    return chat_count[0] / cycles, plain_count[0] / cycles


def run(quick: bool) -> Section:
    size = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-cycle-") as tmp:
        chat_db, plain_db = Path(tmp) / "chat.db", Path(tmp) / "plain.db"
        log(f"row 2: loading {size.cycles:,} members twice")
        for path in (chat_db, plain_db):
            populate_sqlite(path, size.cycles, 10)  # >= 1,000 points each
            _link_chats(path, size.cycles)
        chat, plain = ChatCycle(chat_db), PlainCycle(plain_db)
        try:
            warm = min(50, size.cycles)
            for i in range(warm):  # both warm: caches, imports, statement caches
                chat.run(size.cycles - i, f"w-{i}")
                plain.run(size.cycles - i, f"w-{i}")
            chat.phases = [0.0] * len(STEPS)
            chat.counts, plain.commits = Counts(), 0
            log(f"row 2: {size.rounds} round(s) of {size.cycles:,} chat redemptions, "
                f"baseline and chat")
            chat_time, plain_time = _rounds(size, chat, plain)
            counts, plain_commits = chat.counts, plain.commits
            chat.counts = Counts()  # what follows is not counted
            phase_times = list(chat.phases)
            log(f"row 2: counting fsyncs ({FSYNC_SAMPLE} cycles each), then profiling "
                f"{size.profiled} cycles")
            fsyncs = _fsyncs(chat, plain, min(FSYNC_SAMPLE, size.cycles))
            stats = _profile(chat, size)
        finally:
            chat.close()
            plain.close()
    return _section(size, quick, chat_time, plain_time, counts, plain_commits, phase_times,
                    fsyncs, stats)


def _section(size: Size, quick: bool, chat_time: float, plain_time: float, counts: Counts,
             plain_commits: int, phase_times: list[float], fsyncs: tuple[float, float] | None,
             stats: pstats.Stats) -> Section:
    cycles = size.rounds * size.cycles
    chat_rate, plain_rate = cycles / chat_time, cycles / plain_time
    per_cycle, floor = chat_time / cycles, plain_time / cycles
    statements = counts.statements / cycles
    writes, reads = counts.writes / cycles, counts.reads / cycles
    by_step = ", ".join(f"{name} {n / cycles:.0f}" for name, n in
                        zip(STEPS, counts.by_step, strict=True))
    synced = ("fsyncs not counted (no strace)" if fsyncs is None else
              f"{fsyncs[0]:.1f} fsyncs per cycle against the baseline's {fsyncs[1]:.1f} "
              f"(strace, {min(FSYNC_SAMPLE, size.cycles)} cycles each)")
    durable = (f"{writes:.0f} durable commits (write transactions) and {reads:.0f} read "
               f"transaction(s) per cycle against the baseline's {plain_commits / cycles:.0f} "
               f"commits; {synced}")
    phases = [p / cycles for p in phase_times]
    details = [f"Row 2 profile: where a chat redemption's {ms(per_cycle)} go "
               f"(the baseline's {plain_commits / cycles:.0f} durable transactions take "
               f"{ms(floor)})",
               "  by step (timed run): " + ", ".join(
                   f"{name} {ms(p)} ({p / per_cycle:.0%})"
                   for name, p in zip(STEPS, phases, strict=True)),
               f"  SQL statements per cycle: {statements:.0f} (BEGINs not counted; by step: "
               f"{by_step}); the baseline: {PLAIN_STATEMENTS}",
               f"  durability: {durable}"]
    details += layer_lines(stats, size.profiled, "cycle")
    details.append("  core's functions by cumulative time (cProfile):")
    details += top_functions(stats, size.profiled, "cycle", "/core/")
    row = Row(
        "2", "redemption cycle (chat), SQLite WAL",
        f"{chat_rate:,.0f} cycles/s",
        f"{plain_rate:,.0f} cycles/s (sqlite3, {plain_commits / cycles:.0f} txns)",
        chat_rate / plain_rate, GOAL, why=_why(per_cycle, floor, statements, stats, size))
    notes = [f"row 2: {size.rounds} round(s) x {size.cycles:,} chat redemptions through "
             f"core.chat.Chats.handle and Chats.deliver (/redeem, amount, Confirm, delivery, "
             f"code); {durable}; {statements:.0f} SQL statements per cycle against the "
             f"baseline's {PLAIN_STATEMENTS}; SQLite file on "
             f"{_filesystem(Path(tempfile.gettempdir()))}"]
    if quick:
        notes.append(f"row 2 (--quick): {size.cycles} cycles, 1 round; the full run does "
                     f"{FULL.rounds} x {FULL.cycles:,}")
    return Section([row], notes, details)


def _why(per_cycle: float, floor: float, statements: float, stats: pstats.Stats,
         size: Size) -> str:
    layers, total = by_layer(stats)
    layers.pop(WAITING, None)
    python = sorted(((name, seconds) for name, seconds in layers.items()
                     if not name.startswith("driver")), key=lambda item: -item[1])[:4]
    top = ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in python)
    return (f"a chat redemption costs {ms(per_cycle)}, where the baseline's hand-written "
            f"durable transactions take {ms(floor)} on this disk, whose fsync is fast. What "
            f"stands between the figure and the goal is Python in front of SQLite, not "
            f"durability (the same commits and fsyncs on both sides): {statements:.0f} "
            f"statements per cycle against the baseline's {PLAIN_STATEMENTS}, and by the "
            f"profile {top} of the profiled time. What is left to take: the ORM's unit of "
            f"work (each step loads the chat as objects and flushes them back), a savepoint "
            f"(SAVEPOINT and RELEASE) around each engine operation that writes, statements "
            f"built again on every call (only the chat's and the delivery's queries are built "
            f"once), and redeem's two reads before it writes; on a disk with slower fsync the "
            f"ratio rises by itself")


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
