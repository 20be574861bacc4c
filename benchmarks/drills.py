"""The reliability drills: load, crash and hostile input against the real engine and the
real bot, each answering how much it tried and every broken invariant it found.

Shared by the tests in tests/reliability/ and by `benchmarks/reliability.py` (the table of
figures), so that both run exactly the same drills:

- `concurrent_redemptions(url, processes)`: many processes redeem from one member at once.
- `bot_load(url, members, workers)`: worker processes, each with its own `Application` and
  stand-in Bot API, take members through contact, /redeem, Confirm and the code, all at once.
- `crash_drill(url, kills)`: a process redeeming, importing, earning and issuing codes in a
  loop is killed with SIGKILL at random moments and restarted; the books are audited after
  every kill.
- `kill_every_step(url, steps)`: a bot worker process is killed with SIGKILL at every point
  of the handling of every update of a member's redemption (before and after each commit,
  after each message the Bot API took), the update delivered again to a fresh worker, and
  the flow goes on; a code the dead worker never sent reaches the member through the sweep
  of overdue codes. No update may be lost, no amount redeemed twice.
- `concurrent_guesses(url, guessers)`: threads enter wrong validation codes for one
  member's code at the same moment, through isredeemable and redeem; at most
  OTP_MAX_ATTEMPTS of them may be compared, and the code is void afterwards.
- `contact_drill(url, examples)`: contact numbers drawn by Hypothesis (members' numbers
  without their country code, with another's, mangled, or anything) are shared against a
  database of members from many countries; each links nothing or exactly the member whose
  mobile is the contact's international reading.
- `BotRig` and the `hostile_*` strategies: hostile updates into the real `Application`
  (`BotRig.check` says what went wrong with one of them); `import_check` does the same for
  Data Import files; `fuzz_drill(url, examples)` runs them all under Hypothesis.

`violations(service)` is what "the books balance" means here: `PointsService.audit()` (every
ledger invariant of the engine) plus the check that each Data Import batch has exactly one
ledger entry per row (every row a drill imports carries points), so a half-applied import
shows. Hostile files may have rows without points, which post no entry: `import_check`
counts the rows of its file that carry points instead. Settings never come from a `.env`
file: each drill passes the rules it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import logging
import multiprocessing
import os
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, select

from core.chat import Chats
from core.models import ChatLink, ChatState, ImportBatch, LedgerEntry, Member, Redemption, Source
from core.service import IMPORT_COLUMNS, ImportRejected, PointsService
from core.settings import Settings, load_settings
from core.status import CATALOGUE, InputError, PointsError
from tests.support.members import NEW_MEMBER, member_csv

if TYPE_CHECKING:  # gone from core on main (issue 10): imported where used, so that the
    # module (and the drills that do not need it) still imports
    pass

SECRET_KEY = "drill-secret-key-not-for-production"
BOT_TOKEN = "7000000001:DRILL-token-never-logged"
INSUFFICIENT = frozenset({818, 813})
# Every rule the drills depend on, so that nothing leaks in from the environment.
RULES: dict[str, Any] = {
    "redemption_enabled": True, "validation_code_required": True,
    "fraud_statuses_blocking": "MARKED,CONFIRMED,RECONFIRMED", "redemption_min_points": 1,
    "redemption_min_current_points": 0, "redemption_min_lifetime_points": 0,
    "redemption_min_lifetime_purchases": "0", "redemption_multiple_of": 1,
    "redemption_max_points": 100_000, "otp_length": 6, "otp_ttl_seconds": 600,
    "otp_max_attempts": 5, "otp_max_sends": 5, "otp_period_seconds": 3600,
    "otp_period_max_sends": 10, "db_retry_attempts": 5, "default_phone_region": "IN",
    "points_currency_ratio": "1", "earn_rate": "1",
}
# Imported once in the fork server, so each worker process starts at once (the bot's
# workers too: importing telegram and the bot takes seconds, and kill_every_step starts
# a worker after every kill).
PRELOAD = ["core.service", "core.settings", "core.status", "benchmarks.drills", "bot.app",
           "bot.handlers", "bot.senders", "bot.standin", "alembic.runtime.migration",
           "alembic.script"]


# ---------------------------------------------------------------- databases and settings


def unreachable(url: str) -> str | None:
    """Why the PostgreSQL server at `url` cannot be used, or None when it answers."""
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    return None


def engine_settings(url: str, **overrides: Any) -> Settings:
    return load_settings(_env_file=None, database_url=url, secret_key=SECRET_KEY,
                         **{**RULES, **overrides})


def bot_settings(url: str, **overrides: Any) -> Any:
    from bot.settings import load_bot_settings

    values: dict[str, Any] = {"telegram_bot_token": BOT_TOKEN, "otp_channel": "chat",
                              "staff_telegram_ids": str(STAFF_ID), "telegram_send_retries": 2,
                              "telegram_max_retries": 1}
    return load_bot_settings(_env_file=None, database_url=url, secret_key=SECRET_KEY,
                             **{**RULES, **values, **overrides})


def drill_mobile(n: int) -> str:
    """A valid Indian mobile number, distinct for each `n` below 10**7."""
    return f"+91986{n:07d}"


def members_csv(rows: list[dict[str, Any]]) -> bytes:
    """A Data Import file (`tests.support.members`) with a new member's values written out
    where a row leaves them out: type loyalty, fraud status NONE, 0 points (`points` sets
    both current and lifetime points)."""
    return member_csv(rows, NEW_MEMBER)


# ---------------------------------------------------------------- the invariants


def _import_problems(session: Session, every_row_has_points: bool) -> list[str]:
    batches = {b.id: b.rows for b in session.exec(select(ImportBatch)).all()}
    entries: Counter[int] = Counter()
    lines: Counter[tuple[int, str]] = Counter()
    problems: list[str] = []
    for reference in session.exec(select(LedgerEntry.reference).where(
            LedgerEntry.source == Source.IMPORT)).all():
        parts = reference.split(":")
        if len(parts) != 3 or not parts[1].isdecimal():
            problems.append(f"import ledger entry with a malformed reference {reference!r}")
            continue
        entries[int(parts[1])] += 1
        lines[(int(parts[1]), parts[2])] += 1
    for batch_id, count in entries.items():
        if batch_id not in batches:
            problems.append(f"{count} import ledger entries of batch {batch_id}, which does "
                            "not exist")
    problems += [f"import batch {batch_id}: line {line} applied {count} times"
                 for (batch_id, line), count in lines.items() if count > 1]
    for batch_id, rows in batches.items():
        count = entries.get(batch_id or 0, 0)
        # A row without points posts no entry, so only files whose every row carries
        # points (the drills' own) must have one entry per row.
        if count > rows or (every_row_has_points and count != rows):
            problems.append(f"import batch {batch_id}: {rows} rows but {count} ledger "
                            "entries (half applied)")
    return problems


def violations(service: PointsService, *, every_row_has_points: bool = True) -> list[str]:
    """Every broken invariant: the engine's audit, and whole import batches. With
    `every_row_has_points` (every file imported into this database carried points on each
    row, as the drills' own files do) a batch must have exactly one ledger entry per row;
    without it, at most one (`import_check` checks the exact count of the file it
    imports)."""
    return service.audit() + service.db.run(
        lambda session: _import_problems(session, every_row_has_points), write=False)


def rows_with_points(data: bytes) -> int:
    """How many rows of an imported (so valid) Data Import file carry points: each of them,
    and only they, post a ledger entry."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    header = [h.strip().lower() for h in next(reader)]
    carrying = 0
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        row = dict(zip(header, values, strict=True))
        points = (int(row[name].strip() or "0") for name in ("current_points",
                                                            "lifetime_points"))
        carrying += any(points)
    return carrying


def _batch_entries(service: PointsService, batch_id: int) -> int:
    def unit(session: Session) -> int:
        return len(session.exec(select(LedgerEntry.id).where(
            LedgerEntry.source == Source.IMPORT,
            col(LedgerEntry.reference).startswith(f"import:{batch_id}:"))).all())
    return service.db.run(unit, write=False)


def money_snapshot(service: PointsService) -> tuple[Any, ...]:
    """Everything that is points or money: each member's balances, the ledger, the
    redemptions (a refused input must leave all of it as it was)."""
    def unit(session: Session) -> tuple[Any, ...]:
        members = tuple(
            (m.id, m.mobile, m.email, m.external_id, m.name, m.customer_type, m.fraud_status,
             m.current_points, m.lifetime_points, str(m.lifetime_purchases))
            for m in session.exec(select(Member).order_by(col(Member.id))).all())
        ledger = session.exec(select(LedgerEntry.id).order_by(col(LedgerEntry.id).desc())
                              .limit(1)).first()
        redemptions = len(session.exec(select(Redemption.id)).all())
        batches = len(session.exec(select(ImportBatch.id)).all())
        return members, ledger, redemptions, batches
    return service.db.run(unit, write=False)


# ---------------------------------------------------------------- outcomes


@dataclass
class Outcome:
    """What one drill did on one database."""

    drill: str
    database: str
    requests: int = 0  # requests (redemptions, updates, operations) that were served
    crashes: int = 0  # SIGKILLs survived
    hostile: int = 0  # hostile inputs tried
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    detail: str = ""
    lost: int | None = None  # updates lost (drills that deliver updates through kills)
    doubles: int | None = None  # double redemptions (likewise)


def database_name(url: str) -> str:
    return "SQLite" if url.startswith("sqlite") else "PostgreSQL"


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


# ---------------------------------------------------------------- load: one member, N processes


def _redeem_once(url: str, mobile: str, index: int, points: int, barrier: Any,
                 results: Any) -> None:
    """One contender: its own engine and connections, then one redemption at the signal."""
    try:
        service = PointsService(engine_settings(url, validation_code_required=False))
        service.balance(mobile)  # connected and ready before the start
    except Exception as error:
        barrier.abort()
        results.put((index, "error", f"{type(error).__name__}: {error}"))
        return
    try:
        barrier.wait(timeout=300)
        result = service.redeem(mobile, points, None, transaction_number=f"LOAD-{index}",
                                external_reference=f"LOAD-{uuid.uuid4().hex}")
        results.put((index, "ok", result.points_redeemed))
    except PointsError as error:
        results.put((index, "refused", error.code))
    except Exception as error:
        results.put((index, "error", f"{type(error).__name__}: {error}"))
    finally:
        service.db.dispose()


def concurrent_redemptions(url: str, processes: int = 50, balance: int = 2000,
                           seed: int = 5) -> Outcome:
    """`processes` processes redeem from one member at the same moment, each an amount of
    50 to 300 points. Holds when: the total debited never exceeds the balance and is exactly
    what left it; every refusal is 818 (or 813); no refused amount would have fitted the
    balance that was left (the debits were serialised, not lost); the books balance."""
    started = time.perf_counter()
    outcome = Outcome("concurrent redemptions, one member", database_name(url))
    service = PointsService(engine_settings(url, validation_code_required=False))
    try:
        target = drill_mobile(1)
        service.import_csv(members_csv([
            {"mobile": target, "name": "Target", "points": balance},
            {"mobile": drill_mobile(2), "name": "Bystander", "points": 500}]))
        rng = random.Random(seed)
        amounts = [rng.randint(50, 300) for _ in range(processes)]
        context = _context()
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [context.Process(target=_redeem_once,
                                   args=(url, target, i, amounts[i], barrier, results))
                   for i in range(processes)]
        for worker in workers:
            worker.start()
        answers = [results.get(timeout=600) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        outcome.requests = len(answers)
        problems = outcome.violations
        problems += [f"contender {i} failed: {what}" for i, kind, what in answers
                     if kind == "error"]
        problems += [f"contender {i} refused with {code}, not 818/813" for i, kind, code
                     in answers if kind == "refused" and code not in INSUFFICIENT]
        debited = sum(points for _, kind, points in answers if kind == "ok")
        after = service.balance(target).current_points
        if debited > balance:
            problems.append(f"{debited} points debited from a balance of {balance}")
        if balance - after != debited:
            problems.append(f"the balance went from {balance} to {after} but the redemptions "
                            f"add up to {debited}")
        unserved = [amounts[i] for i, kind, _ in answers if kind == "refused"
                    and amounts[i] <= after]
        if unserved:
            problems.append(f"refused {unserved} though {after} points were left")
        redeemed = [i for i, kind, _ in answers if kind == "ok"]
        history = [h for h in service.history(target, limit=processes + 1)
                   if h.kind == "redemption"]
        if len(history) != len(redeemed):
            problems.append(f"{len(redeemed)} redemptions answered, {len(history)} recorded")
        problems += violations(service)
        outcome.detail = (f"{len(redeemed)} redeemed ({debited} of {balance} points), "
                          f"{processes - len(redeemed)} refused")
    finally:
        service.db.dispose()
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- load: members through the bot

STAFF_ID = 900
BOT_USERS = 500_000  # Telegram user ids of the bot drill's members start here
CODE_TEXT = re.compile(r"validation code is (\d+)")


async def _send(application: Any, data: dict[str, Any]) -> None:
    """An update the way a webhook worker takes it: through the update processor."""
    from telegram import Update

    update = Update.de_json(data, application.bot)
    await application.update_processor.process_update(update,
                                                      application.process_update(update))


async def _member_flow(application: Any, stand_in: Any, user: Any, phone: str,
                       next_id: Callable[[], int], points: int) -> str:
    """contact -> /redeem -> Confirm -> the code (delivered twice at once) -> 800, the same
    answer to both deliveries; answers "" or what went wrong."""
    def numbered(update: dict[str, Any]) -> dict[str, Any]:
        update["update_id"] = next_id()  # unique across the workers, as Telegram's are
        return update

    def last() -> str:
        messages = stand_in.messages(user.id)
        return messages[-1].text if messages else ""

    await _send(application, numbered(user.says("/start")))
    if "share your phone number" not in last():
        return f"/start: {last()!r}"
    await _send(application, numbered(user.shares_contact(phone.lstrip("+"))))
    if not last().startswith("Welcome"):
        return f"contact: {last()!r}"
    await _send(application, numbered(user.says(f"/redeem {points}")))
    summary = stand_in.last_message(user.id)
    if not summary.text.startswith(f"Redeem {points:,} points"):
        return f"/redeem: {summary.text!r}"
    await _send(application, numbered(user.presses(summary, "Confirm")))
    codes = [m.group(1) for m in map(CODE_TEXT.search, stand_in.texts(user.id)) if m]
    if len(codes) != 1:
        return f"Confirm: {len(codes)} codes, last message {last()!r}"
    entry = numbered(user.says(codes[0]))
    await asyncio.gather(_send(application, entry), _send(application, dict(entry)))
    # Both deliveries are answered with the one outcome (the second from the update's
    # claim); one redemption is checked by the drill's books.
    answers = [t for t in stand_in.texts(user.id) if re.match(r"^\d{3} |^This redemption", t)]
    if len(answers) != 2 or len(set(answers)) != 1 or not answers[0].startswith("800 "):
        return f"code: {answers!r}"
    return ""


def _bot_worker(url: str, first: int, count: int, points: int, barrier: Any,
                results: Any) -> None:
    """One worker process: its own engine, Application and stand-in Bot API."""
    from bot.app import build_application
    from bot.senders import make_senders
    from bot.standin import StandInRequest

    async def main() -> list[tuple[int, str]]:
        settings = bot_settings(url)
        service = PointsService(settings, senders=make_senders(settings))
        stand_in = StandInRequest()
        application = build_application(settings, service, request=stand_in)
        await application.initialize()
        ids = itertools.count(10_000_000 * (first + 1))
        try:
            await asyncio.to_thread(barrier.wait, 300)
            flows = [_member_flow(application, stand_in, stand_in.user(BOT_USERS + n, f"M{n}"),
                                  drill_mobile(1000 + n), ids.__next__, points)
                     for n in range(first, first + count)]
            answers = await asyncio.gather(*flows, return_exceptions=True)
        finally:
            await application.shutdown()
            service.db.dispose()
        return [(first + i, a if isinstance(a, str) else f"{type(a).__name__}: {a}")
                for i, a in enumerate(answers)]

    try:
        results.put(("ok", asyncio.run(main())))
    except BaseException as error:
        barrier.abort()
        results.put(("error", f"{type(error).__name__}: {error}"))


def bot_load(url: str, members: int = 200, workers: int = 4, points: int = 500,
             balance: int = 1000) -> Outcome:
    """`members` members redeem through the bot at once, spread over `workers` worker
    processes (each its own `Application` and stand-in) on one database. Holds when every
    member reached 800 exactly once, each balance went down by exactly `points`, each member
    has exactly one redemption, and the books balance."""
    started = time.perf_counter()
    outcome = Outcome(f"bot: {members} members, {workers} Applications", database_name(url))
    service = PointsService(engine_settings(url))
    try:
        service.import_csv(members_csv([{"mobile": drill_mobile(1000 + n), "name": f"M{n}",
                                         "points": balance} for n in range(members)]))
        context = _context()
        barrier = context.Barrier(workers)
        results = context.Queue()
        share = -(-members // workers)
        processes = [context.Process(target=_bot_worker,
                                     args=(url, w * share, min(share, members - w * share),
                                           points, barrier, results))
                     for w in range(workers) if w * share < members]
        for process in processes:
            process.start()
        answers = [results.get(timeout=900) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        problems = outcome.violations
        flows: list[tuple[int, str]] = []
        for kind, value in answers:
            if kind == "error":
                problems.append(f"a worker failed: {value}")
            else:
                flows += value
        problems += [f"member {n}: {what}" for n, what in flows if what]
        outcome.requests = sum(1 for _, what in flows if not what) * 6  # updates per flow

        def per_member(session: Session) -> list[tuple[str | None, int, int]]:
            rows = session.exec(select(Member.mobile, Member.current_points)).all()
            counts = Counter(session.exec(select(Redemption.member_id)).all())
            ids = dict(session.exec(select(Member.mobile, Member.id)).all())
            return [(m, p, counts.get(ids[m], 0)) for m, p in rows]
        for mobile, current, redeemed in service.db.run(per_member, write=False):
            if (current, redeemed) != (balance - points, 1):
                problems.append(f"member {mobile}: {current} points, {redeemed} redemptions "
                                f"(expected {balance - points} and 1)")
        problems += violations(service)
        outcome.detail = f"{len([f for f in flows if not f[1]])} of {members} redeemed once"
    finally:
        service.db.dispose()
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- crash: SIGKILL at random


CRASH_MEMBERS = 8


def _crash_child(url: str, seed: int, ready: Any, done: Any) -> None:
    """Works until killed: redemptions with codes (and retries of them), Data Imports of
    several rows, earnings on bills, reversals and goodwill, as fast as it can."""
    from core.delivery import RecordingSender

    sender = RecordingSender()
    service = PointsService(engine_settings(url, otp_max_sends=10**6,
                                            otp_period_max_sends=10**6), senders=[sender])
    ready.set()
    rng = random.Random(seed)
    members = [drill_mobile(n) for n in range(CRASH_MEMBERS)]
    recent: list[tuple[str, int, str, str]] = []
    while True:
        who = rng.choice(members)
        roll = rng.random()
        tag = uuid.uuid4().hex[:12]
        try:
            if roll < 0.45:
                points = rng.randint(1, 400)
                service.issue_validation_code(who, points)
                code = sender.sent[-1].code
                sender.sent.clear()
                service.redeem(who, points, code, transaction_number=f"C-{tag}",
                               external_reference=f"C-{tag}")
                recent = [*recent[-20:], (who, points, f"C-{tag}", f"C-{tag}")]
            elif roll < 0.55 and recent:
                who, points, txn, reference = rng.choice(recent)
                service.redeem(who, points, None, transaction_number=txn,
                               external_reference=reference)  # a retry: replayed
            elif roll < 0.7:
                rows = [{"mobile": drill_mobile(rng.randint(10**6, 9 * 10**6)),
                         "name": f"new {tag}", "points": rng.randint(1, 500)},
                        *({"mobile": m, "points": rng.randint(1, 50)}
                          for m in rng.sample(members, 3))]
                service.import_csv(members_csv(rows), filename=f"{tag}.csv")
            elif roll < 0.82:
                service.earn(who, f"B-{tag}", f"{rng.randint(100, 99_999) / 100:.2f}")
            elif roll < 0.92 and recent:
                _, _, _, reference = rng.choice(recent)
                service.reverse(reference, rng.randint(1, 50))
            else:
                service.goodwill(who, rng.randint(1, 100), reason="drill", staff="drill")
        except (PointsError, InputError):
            pass  # a refusal (too few points, reversed already): the books must still balance
        done.value += 1


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll `condition` until it holds (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def crash_drill(url: str, kills: int = 20, seed: int = 11,
                on_kill: Callable[[int, list[str]], None] | None = None) -> Outcome:
    """Kill a busy engine process with SIGKILL `kills` times at random moments (sometimes
    while it is still starting), restarting it each time, and audit the books after every
    kill. `on_kill(k, problems)` is told each audit."""
    started = time.perf_counter()
    outcome = Outcome("SIGKILL while redeeming/importing", database_name(url))
    service = PointsService(engine_settings(url))
    rng = random.Random(seed)
    try:
        service.import_csv(members_csv([{"mobile": drill_mobile(n), "name": f"C{n}",
                                         "points": 1_000_000} for n in range(CRASH_MEMBERS)]))
        context = _context()
        done = context.RawValue("q", 0)
        for k in range(kills):
            ready = context.Event()
            child = context.Process(target=_crash_child, args=(url, seed * 1000 + k, ready,
                                                               done), daemon=True)
            child.start()
            if rng.random() < 0.15:
                time.sleep(rng.uniform(0.0, 0.3))  # perhaps while it starts
            else:
                if not ready.wait(timeout=120):
                    outcome.violations.append(f"kill {k}: the engine did not start again")
                # Killed only once it has got work done since it started, however slow
                # the machine: the count of operations between kills does not depend on
                # the load (it did, and the test asserting progress failed at random).
                if not _wait_for(lambda before=done.value: done.value >= before + 2, 120):
                    outcome.violations.append(f"kill {k}: the engine did no work in 120 s")
                time.sleep(rng.uniform(0.02, 0.6))
            alive = child.is_alive()
            child.kill()
            child.join(timeout=30)
            if alive:
                outcome.crashes += 1
            elif child.exitcode not in (None, -9):
                outcome.violations.append(f"kill {k}: the worker had died by itself "
                                          f"(exit code {child.exitcode})")
            problems = violations(service)
            if on_kill is not None:
                on_kill(k, problems)
            outcome.violations += [f"after kill {k}: {p}" for p in problems]
        outcome.requests = int(done.value)
        if outcome.requests == 0:
            outcome.violations.append("the worker never completed an operation")
        outcome.detail = f"{outcome.requests} operations committed between kills"
    finally:
        service.db.dispose()
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- connections held

WEBHOOK_SECRET = "drill-webhook-secret"
WEBHOOK_PATH = "/telegram/drill"
UPDATE_BOUND = 5.0  # seconds within which each real update must be answered
MAX_LOG_LINES = 20  # lines above INFO a worker may log in the drill (a flood: thousands)


def raise_fd_limit(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (as far as the hard limit lets)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY
                                                    else min(needed, hard), hard))


def _webhook_child(url: str, fd_limit: int, hog: bool, idle_timeout: float, log_path: str,
                   ready: Any, hog_now: Any, hogged: Any, stop: Any) -> None:
    """A webhook worker in a process of its own, its soft RLIMIT_NOFILE `fd_limit`, logging
    to `log_path`. With `hog`, once told, it takes every file descriptor but a few (a leak
    somewhere else), so that accepting connections fails with EMFILE."""
    import resource

    from bot.app import build_application
    from bot.standin import StandInRequest
    from bot.webhook import serve_webhook

    logging.basicConfig(filename=log_path, level=logging.INFO,
                        format="%(levelname)s %(name)s %(message)s")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, hard))
    hogs: list[int] = []

    async def main() -> None:
        settings = bot_settings(url, webhook_url=f"https://drill.example.com{WEBHOOK_PATH}",
                                webhook_secret=WEBHOOK_SECRET, webhook_listen="127.0.0.1",
                                webhook_port=0, webhook_idle_timeout_seconds=idle_timeout)
        application = build_application(settings, request=StandInRequest())
        stopping = asyncio.Event()
        server = asyncio.create_task(serve_webhook(application, settings, stop=stopping,
                                                   on_ready=ready.put))
        if hog and await asyncio.to_thread(hog_now.wait, 120):
            try:
                while True:
                    hogs.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                for _ in range(8):
                    os.close(hogs.pop())
            hogged.set()
        await asyncio.to_thread(stop.wait, 600)
        stopping.set()
        await server

    asyncio.run(main())


def _hold(port: int, count: int, within: float = 10.0) -> list[Any]:
    """`count` connections to the worker: every other one sends nothing, the rest half a
    request's headers. Each is given up to `within` seconds in all to connect (a worker
    that stops accepting leaves the rest in its backlog, and that must not stop the
    drill)."""
    import selectors
    import socket

    held = []
    with selectors.DefaultSelector() as pending:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            held.append(sock)
            pending.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + within
        while pending.get_map() and time.monotonic() < deadline:
            for key, _ in pending.select(timeout=max(0.0, deadline - time.monotonic())):
                pending.unregister(key.fileobj)
    for sock in held[1::2]:
        # Not connected, or closed by the worker already: it counts as held all the same.
        with contextlib.suppress(OSError):
            sock.send(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: bot\r\nContent-Le".encode())
    return held


def held_connections(url: str, held: int = 300, updates: int = 20, fd_limit: int = 256,
                     hog: bool = False, idle_timeout: float = 2.0) -> Outcome:
    """A webhook worker whose file-descriptor limit is `fd_limit` (below `held`) while
    `held` connections to it are open, idle or half-sent, and real updates come in. With
    `hog` the worker has used up its descriptors besides (accepting fails with EMFILE).
    Holds when every real update is answered 200 within UPDATE_BOUND seconds and the
    worker logs at most MAX_LOG_LINES lines above INFO (a line or a traceback a refused
    connection would be thousands)."""
    import tempfile

    import httpx

    from bot.standin import StandInRequest

    started = time.perf_counter()
    name = "connections held while real updates are served"
    outcome = Outcome(name + (" (no descriptors left)" if hog else ""), database_name(url))
    raise_fd_limit(held + 256)
    context = _context()
    ready, stop = context.Queue(), context.Event()
    hog_now, hogged = context.Event(), context.Event()
    users = StandInRequest()
    slowest = 0.0
    with tempfile.TemporaryDirectory(prefix="held-") as directory:
        log_path = os.path.join(directory, "worker.log")
        worker = context.Process(target=_webhook_child, daemon=True, args=(
            url, fd_limit, hog, idle_timeout, log_path, ready, hog_now, hogged, stop))
        worker.start()
        sockets: list[Any] = []
        try:
            port = ready.get(timeout=120)
            # A new connection for each update: one kept alive from before the connections
            # were held would go round the accept queue they fill.
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=UPDATE_BOUND,
                              headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
                              limits=httpx.Limits(max_keepalive_connections=0)) as client:
                def send(n: int) -> str:
                    nonlocal slowest
                    update = users.user(BOT_USERS + n, f"U{n}").says("/help")
                    update["update_id"] = 900_000 + n
                    began = time.perf_counter()
                    try:
                        answer = client.post(WEBHOOK_PATH, json=update)
                    except httpx.HTTPError as error:
                        return f"update {n}: {type(error).__name__} after " \
                               f"{time.perf_counter() - began:.1f} s"
                    slowest = max(slowest, time.perf_counter() - began)
                    return "" if answer.status_code == 200 else \
                        f"update {n}: answered {answer.status_code}"

                problems = [p for p in [send(0)] if p]  # the worker is up and serving
                if hog:
                    hog_now.set()
                    if not hogged.wait(60):
                        problems.append("the worker did not use up its descriptors")
                sockets = _hold(port, held)
                answers = []
                for n in range(1, updates + 1):
                    answers.append(send(n))
                    if len(answers) >= 3 and all(answers[-3:]):  # failing: enough said
                        problems.append(f"updates {n + 1} to {updates} not tried after three "
                                        "failures in a row")
                        break
                problems += [a for a in answers if a]
                outcome.requests = held + answers.count("")
        finally:
            for sock in sockets:
                sock.close()
            stop.set()
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=10)
                problems.append("the worker did not stop when asked")
        with open(log_path, "rb") as handle:
            # Start-up chatter (INFO) aside: warnings, errors and tracebacks.
            logged = sum(1 for line in handle.read(50 << 20).splitlines()
                         if not line.startswith(b"INFO "))
    if logged > MAX_LOG_LINES:
        problems.append(f"the worker wrote {logged:,} lines above INFO (at most {MAX_LOG_LINES})")
    outcome.violations = problems[:50]
    outcome.detail = (f"{held} connections held against a worker limited to {fd_limit} file "
                      f"descriptors{' (all used up)' if hog else ''}; "
                      f"{answers.count('')} of {updates} updates answered within "
                      f"{UPDATE_BOUND:.0f} s (slowest {slowest:.2f} s); {logged} lines logged "
                      "above INFO")
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- hostile input into the bot

STEPS = ("unlinked", "menu", "amount", "confirm", "code")
# Replies that mean the input was taken (a new amount, a code sent, a welcome...).
ACCEPTED = ("Redeem ", "Welcome", "Validation Code Issued", "You have ", "Current points:",
            "Cancelled", "Your last redemptions", "No redemptions yet", "Member ", "Issued ",
            "Reverted ", "Reversed ", "This redemption was already done", "🧪 SANDBOX CODE",
            "How many do you want")


class ErrorWatch(logging.Handler):
    """Keeps every log record that says the application's error handler was reached (or
    any error with a traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "bot.app" or record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)

    def take(self) -> list[str]:
        taken = [f"{r.name} {r.levelname}: {r.getMessage()}"
                 + (f" ({r.exc_info[0].__name__}: {r.exc_info[1]})" if r.exc_info and
                    r.exc_info[0] else "") for r in self.records]
        self.records.clear()
        return taken


def reply_kind(text: str) -> str | None:
    """What a reply of the bot is: "code" (a documented status code first), "help" (it
    carries the help), "prompt" (a step's own question), "accepted"; None: unknown."""
    from bot import replies

    found = re.match(r"^(?:This redemption was already done; nothing more was redeemed\.\n"
                     r"|You cannot redeem points now\.\n)?(\d{3,4}) ", text)
    if found and int(found.group(1)) in CATALOGUE:
        return "accepted" if found.group(1) == "800" else "code"
    if text.startswith(ACCEPTED):  # a welcome carries the help too
        return "accepted"
    if replies.HELP in text:
        return "help"
    prompts = (replies.CONFIRM_OR_CANCEL, replies.NOT_YOUR_CONTACT,
               replies.PRIVATE_ONLY, replies.STAFF_ONLY, replies.NOTHING_TO_CANCEL,
               replies.ASK_CONTACT)
    if text in prompts or text.startswith(("Usage: /", replies.NOT_LINKED,
                                           replies.VERIFIED_ELSEWHERE, "Enter the ")):
        return "prompt"
    return None


@dataclass(frozen=True)
class Hostile:
    """One hostile input: what to send, from which step of a chat."""

    kind: str  # "text", "command", "callback", "contact", "update"
    step: str
    payload: Any  # the text, the callback data, (phone, owner), or an update builder's name
    extra: Any = None


class BotRig:
    """The real `Application` on a stand-in Bot API and a real database, driven from plain
    (synchronous) code: one chat per step of the member's way, each linked to a member of
    its own, put back into its step before each input."""

    def __init__(self, url: str, **overrides: Any) -> None:
        from bot.app import build_application
        from bot.senders import make_senders
        from bot.standin import StandInRequest

        self.loop = asyncio.new_event_loop()
        self.settings = bot_settings(url, otp_max_sends=10**6, otp_period_max_sends=10**6,
                                     **overrides)
        self.service = PointsService(self.settings, senders=make_senders(self.settings))
        self.service.import_csv(members_csv(
            [{"mobile": drill_mobile(100 + i), "name": step, "points": 10_000_000}
             for i, step in enumerate(STEPS)]), filename="rig.csv")
        self.stand_in = StandInRequest()
        self.application = build_application(self.settings, self.service,
                                             request=self.stand_in)
        self.watch = ErrorWatch()
        logging.getLogger().addHandler(self.watch)
        self.run(self.application.initialize())
        self.users = {step: self.stand_in.user(700_000 + i, step.title())
                      for i, step in enumerate(STEPS)}
        self.phones = {step: drill_mobile(100 + i) for i, step in enumerate(STEPS)}
        self.tried = 0
        self._message_ids = itertools.count(1)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        logging.getLogger().removeHandler(self.watch)
        self.run(self.application.shutdown())
        self.service.db.dispose()
        self.loop.close()

    def deliver(self, data: dict[str, Any]) -> list[Any]:
        """Process one update; the bot's messages it caused, in every chat."""
        from telegram import Update

        mark = self.stand_in.mark()
        self.run(self.application.process_update(Update.de_json(data, self.application.bot)))
        return self.stand_in.messages_since(mark)

    # -- the chat's state

    def chat_state(self, step: str) -> tuple[Any, ...]:
        key = str(self.users[step].id)

        def unit(session: Session) -> tuple[Any, ...]:
            link = session.get(ChatLink, key)
            state = session.get(ChatState, key)
            return ((link.member_id if link else None),
                    (state.step, state.points, state.external_reference,
                     state.transaction_number, state.token) if state else None)
        return self.service.db.run(unit, write=False)

    def snapshot(self, step: str) -> tuple[Any, ...]:
        return money_snapshot(self.service), self.chat_state(step)

    def goto(self, step: str) -> None:
        """Put the chat of `step` into that step, through the bot (or the database, for
        a chat a hostile contact happened to link)."""
        user = self.users[step]
        key = str(user.id)
        link, state = self.chat_state(step)
        current = state[0] if state else "menu"
        if step == "unlinked":
            if link is not None:
                Chats(self.service).unlink(key)
            return
        if link is None or link != self.service.member(self.phones[step]).id:
            self.deliver(user.shares_contact(self.phones[step].lstrip("+")))
            link, state = self.chat_state(step)
            current = state[0] if state else "menu"
        if current == step:
            return
        self.deliver(user.says("/cancel"))
        if step == "menu":
            return
        if step == "amount":
            self.deliver(user.says("/redeem"))
            return
        self.deliver(user.says("/redeem 100"))
        if step == "confirm":
            return
        self.deliver(user.presses(self.stand_in.last_message(user.id), "Confirm"))
        if self.chat_state(step)[1][0] != step:
            raise RuntimeError(f"could not put the chat into step {step}")

    # -- hostile updates

    def update_for(self, hostile: Hostile) -> tuple[dict[str, Any], bool]:
        """The update JSON for `hostile`, and whether the bot owes it a reply."""
        user = self.users[hostile.step]
        if hostile.kind in ("text", "command"):
            return user.says(hostile.payload), True
        if hostile.kind == "callback":
            messages = self.stand_in.messages(user.id)
            target = next((m for m in reversed(messages) if m.buttons), None)
            if target is None:
                from bot.standin import BotMessage
                target = BotMessage(user.id, next(self._message_ids), "old", 0)
            return user.sends_callback(target, hostile.payload), True
        if hostile.kind == "contact":
            phone, owner = hostile.payload
            return user.shares_contact(phone, user_id=user.id if owner == "own" else owner), True
        return UPDATE_KINDS[hostile.payload](self, user, hostile.extra or "")

    def check(self, hostile: Hostile) -> list[str]:
        """Send one hostile input from its step; every way the bot misbehaved with it."""
        from bot import replies

        self.goto(hostile.step)
        before = self.snapshot(hostile.step)
        self.watch.take()
        data, owed = self.update_for(hostile)
        answers = self.deliver(data)
        self.tried += 1
        after = self.snapshot(hostile.step)
        what = f"{hostile.kind} {str(hostile.payload)[:80]!r} at step {hostile.step}"
        problems = [f"{what}: error handler reached: {line}" for line in self.watch.take()]
        texts = [m.text for m in answers]
        if owed and not texts:
            problems.append(f"{what}: no reply")
        kinds = [reply_kind(t) for t in texts]
        problems += [f"{what}: reply is neither a status code nor the help: {t[:120]!r}"
                     for t, k in zip(texts, kinds, strict=True) if k is None]
        problems += [f"{what}: something went wrong" for t in texts
                     if t.startswith(replies.SOMETHING_WRONG[:30])]
        if before[0] != after[0]:
            problems.append(f"{what}: points, members or the ledger changed")
        if "accepted" not in kinds and before[1] != after[1]:
            # A refused new request (/redeem X, an amount button) asks for another amount.
            asks_again = (after[1][1] is not None and after[1][1][0] == "amount"
                          and after[1][1][1] is None and after[1][0] == before[1][0])
            if not (_new_request(hostile) and asks_again):
                problems.append(f"{what}: the chat's state changed: {before[1]} -> {after[1]}")
        return problems


def _new_request(hostile: Hostile) -> bool:
    """Whether the input asks for a new redemption: an amount button, /redeem, or a bare
    number typed at the menu."""
    from core import rules

    if hostile.kind == "callback":
        return bool(re.fullmatch(r"p:[1-9][0-9]{0,11}", str(hostile.payload)))
    if hostile.kind == "text" and hostile.step == "menu":
        try:
            rules.parse_points(str(hostile.payload))
            return True
        except PointsError:
            pass
    return hostile.kind in ("text", "command") and bool(
        re.match(r"^/redeem(@\w+)?(\s|$)", str(hostile.payload)))


def _message(user: Any, chat: dict[str, Any] | None = None, sender: bool = True,
             **content: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": user.stand_in.next_update_id(),
                               "date": int(time.time()), "chat": chat or dict(user.chat),
                               **content}
    if sender:
        message["from"] = dict(user.user)
    return message


def _private(content: Callable[[str], dict[str, Any]]) -> Callable[..., tuple[dict[str, Any],
                                                                                bool]]:
    def build(rig: BotRig, user: Any, extra: str) -> tuple[dict[str, Any], bool]:
        return {"update_id": rig.stand_in.next_update_id(),
                "message": _message(user, **content(extra))}, True
    return build


def _silent(build: Callable[[BotRig, Any, str], dict[str, Any]]
            ) -> Callable[..., tuple[dict[str, Any], bool]]:
    def wrapped(rig: BotRig, user: Any, extra: str) -> tuple[dict[str, Any], bool]:
        return {"update_id": rig.stand_in.next_update_id(), **build(rig, user, extra)}, False
    return wrapped


_FILE = {"file_id": "AgAD-file", "file_unique_id": "uniq"}
GROUP = {"id": -100_123, "type": "supergroup", "title": "Friends"}
# Update kinds the bot did not ask for or that no member sends in a private chat. Private
# messages it cannot read get the help; the rest are ignored (no reply, nothing changes).
UPDATE_KINDS: dict[str, Callable[..., tuple[dict[str, Any], bool]]] = {
    "sticker": _private(lambda e: {"sticker": {**_FILE, "width": 512, "height": 512,
                                               "is_animated": False, "is_video": False,
                                               "type": "regular", "emoji": e[:2] or "🙂"}}),
    "photo": _private(lambda e: {"photo": [{**_FILE, "width": 90, "height": 90}],
                                 "caption": e[:1024]}),
    "document": _private(lambda e: {"document": {**_FILE, "file_name": "points.csv"},
                                    "caption": e[:1024]}),
    "location": _private(lambda e: {"location": {"latitude": 12.97, "longitude": 77.59}}),
    "voice": _private(lambda e: {"voice": {**_FILE, "duration": 3}}),
    "dice": _private(lambda e: {"dice": {"emoji": "🎲", "value": 6}}),
    "empty message": _private(lambda e: {}),
    "edited message": _silent(lambda rig, user, e: {"edited_message": _message(
        user, text=e or "500", edit_date=int(time.time()))}),
    "group message": _silent(lambda rig, user, e: {"message": _message(
        user, chat=dict(GROUP), text=e or "500")}),
    "group command": lambda rig, user, e: ({"update_id": rig.stand_in.next_update_id(),
                                            "message": _message(
        user, chat=dict(GROUP), text="/redeem 500",
        entities=[{"type": "bot_command", "offset": 0, "length": 7}])}, False),
    "channel post": _silent(lambda rig, user, e: {"channel_post": _message(
        user, chat={"id": -100_999, "type": "channel", "title": "News"}, sender=False,
        text=e or "/balance")}),
    "message without a user": _silent(lambda rig, user, e: {"message": _message(
        user, sender=False, text=e or "/balance")}),
    "inline query": _silent(lambda rig, user, e: {"inline_query": {
        "id": "q1", "from": dict(user.user), "query": e[:256], "offset": ""}}),
    "callback without a message": _silent(lambda rig, user, e: {"callback_query": {
        "id": "cb1", "from": dict(user.user), "chat_instance": "ci",
        "inline_message_id": "im1", "data": e[:64] or "c:ABCDEFGH"}}),
    "poll": _silent(lambda rig, user, e: {"poll": {
        "id": "p1", "question": e[:300] or "?", "options": [
            {"persistent_id": "a", "text": "a", "voter_count": 0},
            {"persistent_id": "b", "text": "b", "voter_count": 0}],
        "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
        "type": "regular", "allows_multiple_answers": False, "allows_revoting": False,
        "members_only": False}}),
    "my_chat_member": _silent(lambda rig, user, e: {"my_chat_member": {
        "chat": dict(user.chat), "from": dict(user.user), "date": int(time.time()),
        "old_chat_member": {"status": "member", "user": dict(rig.stand_in.bot_user)},
        "new_chat_member": {"status": "kicked", "user": dict(rig.stand_in.bot_user),
                            "until_date": 0}}}),
}


# ---------------------------------------------------------------- hostile Data Import files


def import_check(service: PointsService, data: bytes) -> list[str]:
    """Import `data`: a refusal must be an `ImportRejected` that names its lines and
    changes nothing; never another exception; the books balance either way."""
    before = money_snapshot(service)
    problems: list[str] = []
    try:
        result = service.import_csv(data, filename="hostile.csv")
        if not result.already_imported and result.batch_id is not None:
            expected, posted = rows_with_points(data), _batch_entries(service, result.batch_id)
            if posted != expected:
                problems.append(f"import batch {result.batch_id}: {expected} rows with "
                                f"points but {posted} ledger entries (half applied)")
    except ImportRejected as rejected:
        if not rejected.errors or any(e.line < 1 or not e.reason for e in rejected.errors):
            problems.append(f"a rejection without its lines: {rejected.errors}")
        if money_snapshot(service) != before:
            problems.append(f"a rejected file changed the data: {data[:120]!r}")
    except PointsError as error:
        problems.append(f"import refused with {error.code} instead of naming bad rows: "
                        f"{data[:120]!r}")
    except Exception as error:
        problems.append(f"unhandled {type(error).__name__}: {error} for {data[:120]!r}")
    return problems + violations(service, every_row_has_points=False)


# ---------------------------------------------------------------- Hypothesis strategies


def strategies() -> Any:
    """The hostile inputs as Hypothesis strategies, in a namespace: `numbers`, `texts`,
    `callback_data`, `phones`, `updates`, `hostile` (any of them from any step),
    `csv_files`."""
    from types import SimpleNamespace

    from hypothesis import strategies as st

    digits_of = st.sampled_from(["0123456789", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "０１２３４５６７８９",
                                 "²³¹", "①②③"])
    foreign = st.builds(lambda d, n: "".join(d[int(c) % len(d)] for c in str(n)), digits_of,
                        st.integers(0, 10**7))
    numbers = st.one_of(
        st.integers(-10**20, 10**20).map(str),
        st.sampled_from(["0", "-0", "+100", "00100", "1e3", "1E5", "0x64", "NaN", "inf",
                         "100.0", "99.99", "1,000", "1.000", "1 000", "1_000", "10,00",
                         "1,0000", ",100", "100,", "1\u00a0000", "½", "Ⅻ", "", " ", "-",
                         "9" * 40, "1" + "0" * 400]),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
        foreign,
        st.tuples(st.integers(1, 999), st.lists(st.integers(0, 999), max_size=4),
                  st.sampled_from([",", ".", " ", "_", "'", "\u00a0", "\u202f"])).map(
            lambda t: t[2].join([str(t[0]), *(f"{n:03d}" for n in t[1])])),
    )
    long_texts = st.builds(lambda c, n: (c or "x") * n, st.text(min_size=1, max_size=3),
                           st.integers(4090, 9000))
    texts = st.one_of(st.text(max_size=200), numbers, long_texts,
                      st.text(alphabet=st.characters(codec="utf-8"), max_size=50))
    commands = st.builds(lambda c, a: f"/{c} {a}", st.sampled_from(
        ["redeem", "balance", "history", "start", "cancel", "help", "member", "goodwill",
         "revert", "reverse", "as", "reset", "redeem@LoyaltyTestBot"]), st.one_of(numbers,
                                                                              texts))
    callback_data = st.one_of(
        st.text(max_size=80),
        st.from_regex(r"^[pcrxz]:[A-Z0-9a-z:-]{0,14}$", fullmatch=True),
        st.builds(lambda n: f"p:{n}", numbers),
        st.sampled_from(["", "p:", "c:", "p:0", "p:-1", "c:ABCDEFGH", "r:ABCDEFGH",
                         "x:ABCDEFGH", "p:1" + "0" * 11, "p:99999999999999"]))
    phones = st.one_of(st.text(max_size=40), numbers,
                       st.sampled_from(["919860000100", "+919860000101", "00919860000102",
                                        "9860000103", "+1", "", "+" + "9" * 31]))
    owners = st.sampled_from(["own", None, 1, 700_001, -5, 2**40])
    steps = st.sampled_from(STEPS)
    hostile = st.one_of(
        st.builds(Hostile, st.just("text"), steps, texts),
        st.builds(Hostile, st.just("command"), steps, commands),
        st.builds(Hostile, st.just("callback"), steps, callback_data),
        st.builds(Hostile, st.just("contact"), steps, st.tuples(phones, owners)),
        st.builds(Hostile, st.just("update"), steps, st.sampled_from(sorted(UPDATE_KINDS)),
                  st.text(max_size=30)))
    field_values = st.one_of(st.just(""), numbers, st.text(max_size=30),
                             st.sampled_from(["loyalty", "campaign", "LOYALTY", "gold",
                                              "MARKED", "none", "a@b.co", "not-an-email@",
                                              "+919861111111", "X1", "12.345", "-5"]))
    header = st.one_of(st.just(list(IMPORT_COLUMNS)), st.just(list(IMPORT_COLUMNS)),
                       st.permutations(list(IMPORT_COLUMNS)),
                       st.lists(st.sampled_from([*IMPORT_COLUMNS, "bonus", ""]), max_size=10))
    # A valid row with a few fields made hostile (so the later fields are reached too),
    # or a row of anything, of any length.
    valid = {"mobile": "", "email": "", "name": "Fuzz", "type": "loyalty",
             "fraud_status": "NONE", "current_points": "10", "lifetime_points": "20",
             "lifetime_purchases": "0"}
    mutated = st.builds(
        lambda n, changes: {c: changes.get(c, valid.get(c, f"FUZZ{n}")) for c in IMPORT_COLUMNS},
        st.integers(0, 10**6), st.dictionaries(st.sampled_from(IMPORT_COLUMNS), field_values,
                                               min_size=1, max_size=3))
    anything = st.lists(field_values, min_size=len(IMPORT_COLUMNS) - 2,
                        max_size=len(IMPORT_COLUMNS) + 1)
    rows = st.lists(st.one_of(mutated, mutated, anything), max_size=5)

    def written(head: list[str], body: list[Any], quoting: int) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n", quoting=quoting)
        writer.writerow(head)
        writer.writerows([[row.get(h, "") for h in head] if isinstance(row, dict) else row
                          for row in body])
        return out.getvalue().encode()

    csv_files = st.one_of(
        st.builds(written, header, rows, st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        st.builds(lambda h, body: (",".join(h) + "\n" + body).encode(), header,
                  st.text(max_size=300)),
        st.binary(max_size=300),
        st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe" + "mobile".encode("utf-16-le"),
                         b'mobile,"unterminated\n1,2', b"\x00" * 10]))
    return SimpleNamespace(numbers=numbers, texts=texts, commands=commands,
                           callback_data=callback_data, phones=phones, owners=owners,
                           steps=steps, hostile=hostile, csv_files=csv_files)


def fuzz_drill(url: str, examples: int = 200, seed: int = 3) -> Outcome:
    """`examples` hostile updates into the bot and `examples // 2` hostile Data Import
    files, drawn by Hypothesis; every misbehaviour is a violation."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    started = time.perf_counter()
    outcome = Outcome("hostile input (Hypothesis)", database_name(url))
    rig = BotRig(url)
    found = outcome.violations
    every = strategies()
    quiet = settings(max_examples=examples, deadline=None, database=None,
                     phases=[Phase.generate], suppress_health_check=list(HealthCheck))

    @with_seed(seed)
    @quiet
    @given(every.hostile)
    def updates(hostile: Hostile) -> None:
        found.extend(rig.check(hostile))

    @with_seed(seed)
    @settings(quiet, max_examples=max(1, examples // 2))
    @given(every.csv_files)
    def files(data: bytes) -> None:
        outcome.hostile += 1
        found.extend(import_check(rig.service, data))

    try:
        updates()
        files()
        outcome.hostile += rig.tried
        outcome.requests = outcome.hostile
    finally:
        rig.close()
    outcome.detail = f"{rig.tried} updates, {outcome.hostile - rig.tried} import files"
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- guessing a code at once


def concurrent_guesses(url: str, guessers: int = 40, rounds: int = 1, seed: int = 17
                       ) -> Outcome:
    """`guessers` threads, each with a different wrong validation code, enter it for one
    member's code at the same moment, half through isredeemable and half through redeem;
    `rounds` times, a new code each time. Holds when at most OTP_MAX_ATTEMPTS guesses
    were compared with each code (the rest found it void), every answer is 808, the right
    code is refused afterwards, nothing was redeemed, and the books balance."""
    from concurrent.futures import ThreadPoolExecutor

    from core.delivery import RecordingSender

    started = time.perf_counter()
    outcome = Outcome("concurrent guesses compared", database_name(url))
    sender = RecordingSender()
    settings = engine_settings(url, otp_period_max_sends=10**6)
    service = PointsService(settings, senders=[sender])
    limit = settings.otp_max_attempts
    rng = random.Random(seed)
    target = drill_mobile(3)
    compared_most = 0
    try:
        service.import_csv(members_csv([{"mobile": target, "name": "Guessed",
                                         "points": 10_000}]))
        for r in range(rounds):
            points = 100 + r
            service.issue_validation_code(target, points)
            right = sender.sent[-1].code
            wrong = [f"{(int(right) + rng.randrange(1, 10**6)) % 10**6:06d}"
                     for _ in range(guessers)]
            barrier = threading.Barrier(guessers)

            def guess(i: int, points: int = points, wrong: list[str] = wrong,
                      barrier: threading.Barrier = barrier) -> str:
                try:
                    barrier.wait(timeout=120)
                    if i % 2:
                        service.is_redeemable(target, points, wrong[i])
                    else:
                        service.redeem(target, points, wrong[i], transaction_number=f"G-{i}",
                                       external_reference=f"G-{uuid.uuid4().hex}")
                except PointsError as error:
                    return f"{error.code} {error.reason or ''}".strip()
                except Exception as error:
                    return f"{type(error).__name__}: {error}"
                return "accepted"

            with ThreadPoolExecutor(guessers) as pool:
                answers = list(pool.map(guess, range(guessers)))
            compared = sum(a in ("808 wrong", "808 attempts") for a in answers)
            compared_most = max(compared_most, compared)
            outcome.hostile += guessers
            outcome.requests += sum(a.startswith("808 ") for a in answers)
            problems = outcome.violations
            problems += [f"code {r + 1}: a wrong guess answered {a!r}, not 808"
                         for a in answers if not a.startswith("808 ")]
            if compared > limit:
                problems.append(f"code {r + 1}: {compared} wrong guesses were compared; "
                                f"the limit is {limit}")
            try:
                service.is_redeemable(target, points, right)
                problems.append(f"code {r + 1}: the right code was accepted after "
                                f"{guessers} wrong guesses")
            except PointsError as error:
                if error.code != 808:
                    problems.append(f"code {r + 1}: the right code answered {error.code} "
                                    "after the guesses, not 808")
        if service.history(target):
            outcome.violations.append("a wrong guess redeemed")
        outcome.violations += violations(service)
        outcome.detail = (f"at most {compared_most} of {guessers} simultaneous wrong guesses "
                          f"compared with a code (limit {limit}), {rounds} code(s); the "
                          "right code refused afterwards")
    finally:
        service.db.dispose()
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- shared contacts


CONTACT_REGIONS = ("IN", "US", "GB", "IR", "AE", "SG", "DE", "FR", "BR", "NG", "ID", "PK",
                   "BD", "LK", "NP", "AU", "CN", "RU", "ZA", "KE")


def contact_members(per_region: int = 8) -> list[str]:
    """Valid mobile numbers (E.164) from many countries, Indian ones first and most: the
    example mobile of each region with its last digits varied."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    found = [drill_mobile(n) for n in range(per_region * 4)]
    for region in CONTACT_REGIONS:
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if example is None:
            continue
        nsn = str(example.national_number)
        for n in range(per_region * 3):
            candidate = phonenumbers.parse(f"+{example.country_code}{nsn[:-3]}{n:03d}", None)
            if phonenumbers.is_valid_number(candidate):
                found.append(phonenumbers.format_number(candidate, PhoneNumberFormat.E164))
            if len(found) % per_region == 0:
                break
    return sorted(set(found))


def international_reading(contact: str) -> str | None:
    """What a contact's number is (E.164) when read as Telegram sends it: international,
    with or without the +. Written apart from the engine's reading, to judge it."""
    import phonenumbers

    text = contact.strip()
    digits = text[1:] if text.startswith("+") else text
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def contact_strategy(mobiles: list[str]) -> Any:
    """Contact numbers as a Hypothesis strategy: members' numbers as Telegram sends them,
    without their country code (the digits of a valid local number), with a trunk 0, with
    another country's code, with 00, with a digit changed, dropped or added, spaced; and
    digit strings and text of any kind."""
    import phonenumbers
    from hypothesis import strategies as st

    def national(mobile: str) -> str:
        return str(phonenumbers.parse(mobile, None).national_number)

    member = st.sampled_from(mobiles)
    codes = st.sampled_from(["1", "7", "44", "49", "91", "92", "98", "971", "880", "94"])

    def mangle(mobile: str, where: int, digit: int, how: str) -> str:
        digits = mobile.lstrip("+")
        i = where % len(digits)
        if how == "change":
            return digits[:i] + str(digit) + digits[i + 1:]
        if how == "drop":
            return digits[:i] + digits[i + 1:]
        return digits[:i] + str(digit) + digits[i:]

    return st.one_of(
        member,
        member.map(lambda m: m.lstrip("+")),
        member.map(national),
        member.map(lambda m: "+" + national(m)),
        member.map(lambda m: "0" + national(m)),
        member.map(lambda m: "00" + m.lstrip("+")),
        st.builds(lambda c, m: c + national(m), codes, member),
        st.builds(mangle, member, st.integers(0, 20), st.integers(0, 9),
                  st.sampled_from(["change", "drop", "add"])),
        st.builds(lambda m, sep: sep.join([m[:3], m[3:8], m[8:]]), member,
                  st.sampled_from([" ", "-", ".", "  "])),
        st.from_regex(r"^\+?[0-9]{1,17}$", fullmatch=True),
        st.text(max_size=40),
    )


def contact_check(chats: Chats, channel_user: str, contact: str
                  ) -> tuple[bool, list[str]]:
    """Share `contact` as `channel_user`: whether it linked the chat, and what went wrong
    (a link to anyone but the member whose mobile is the contact's international reading,
    or a refusal that linked anyway)."""
    try:
        linked = chats.verify_contact(channel_user, contact)
    except PointsError:
        if chats.member_id(channel_user) is not None:
            return True, [f"contact {contact!r} was refused but linked the chat"]
        return False, []
    reading = international_reading(contact)
    problems = []
    if linked.mobile != reading:
        problems.append(f"contact {contact!r} (read internationally: {reading}) linked the "
                        f"member with mobile {linked.mobile}")
    held = chats.member_id(channel_user)
    if held != linked.id:
        problems.append(f"contact {contact!r} answered member {linked.id} but the chat is "
                        f"linked to {held}")
    return True, problems


def contact_drill(url: str, examples: int = 300, seed: int = 7) -> Outcome:
    """`examples` contact numbers drawn by Hypothesis shared against a database of members
    from many countries, each by a chat user of its own. Holds when every contact links
    nothing or links exactly the member whose mobile is its international reading."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    started = time.perf_counter()
    outcome = Outcome("contact numbers tried", database_name(url))
    service = PointsService(engine_settings(url))
    chats = Chats(service)
    mobiles = contact_members()
    linked: Counter[str] = Counter()
    try:
        service.import_csv(members_csv([{"mobile": m, "name": f"K{n}", "points": 10}
                                        for n, m in enumerate(mobiles)]))

        @with_seed(seed)
        @settings(max_examples=examples, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(contact_strategy(mobiles))
        def share(contact: str) -> None:
            outcome.hostile += 1
            was_linked, found = contact_check(chats, f"contact-drill:{outcome.hostile}",
                                              contact)
            outcome.violations.extend(found)
            linked["linked"] += was_linked
            outcome.requests += 1

        share()
        outcome.violations += violations(service)
        outcome.detail = (f"{outcome.hostile} contacts against {len(mobiles)} members of "
                          f"{len(CONTACT_REGIONS)} countries: {linked['linked']} linked "
                          "their own member, the rest nothing; 0 wrong links allowed")
    finally:
        service.db.dispose()
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- SIGKILL at every step


# The member's way through the bot, one update each: share the contact, /redeem, press the
# suggested 500 (or type it when the buttons never arrived), Confirm, type the code.
FLOW = ("contact", "/redeem", "amount", "confirm", "code")
KILL_POINTS = 500  # the amount redeemed in the drill (a suggested amount: see KILL_RULES)
# 500 to the whole balance in steps of 500: /redeem suggests 500, 1,000, 1,500 and 2,000.
KILL_RULES: dict[str, Any] = {"redemption_min_points": 500, "redemption_multiple_of": 500,
                              "allow_chat_codes": True, "otp_channel": "chat"}
KILL_BALANCE = 2000
KILL_USERS = 600_000  # Telegram user ids of the drill's members start here
_BOT = {"id": 7000000001, "is_bot": True, "first_name": "Loyalty Points",
        "username": "LoyaltyTestBot"}


def _kill_worker(url: str, journal: str, connection: Any) -> None:
    """One bot worker: its own engine (on a clock the driver sets), `Application` and
    stand-in Bot API, taking commands from the driver one at a time:

    - ("update", data, kill_at, offset, chat, transcript): process the update as a webhook
      worker does; with `kill_at` = n, SIGKILL itself at the n-th point of its handling;
    - ("sweep", offset, chat, transcript): send the overdue validation codes
      (`bot.handlers.send_overdue`), as the sweeper of a live worker does;
    - ("stop",).

    The points of an update's handling, in order, are the commits of units of work that
    wrote ("before commit", "after commit": SQLAlchemy session events) and the messages
    the Bot API took ("code delivered", "reply sent", "buttons dropped"). Each message is
    written to `journal` (the member's chat as it stands, one JSON line per change) before
    any kill, as Telegram would keep it; the answer to each command is the points passed.
    `transcript` seeds a chat this worker has not seen (what Telegram shows the member)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session as OrmSession

    from bot.app import build_application
    from bot.handlers import send_overdue
    from bot.senders import make_senders
    from bot.standin import ApiCall, BotMessage, Button, StandInRequest
    from core.work import utcnow

    offset = [0.0]
    armed: dict[str, Any] = {"at": None, "points": []}
    lock = threading.Lock()

    def point(name: str) -> None:
        with lock:
            armed["points"].append(name)
            if armed["at"] is not None and len(armed["points"]) == armed["at"]:
                os.kill(os.getpid(), signal.SIGKILL)

    def before_commit(session: OrmSession) -> None:
        if session.in_nested_transaction():
            return  # a savepoint of the update's unit, not its commit
        wrote = bool(session.new or session.dirty or session.deleted
                     or session.info.pop("flushed", False))
        session.info["writing"] = wrote
        if wrote:
            point("before commit")

    def after_flush(session: OrmSession, _context: Any) -> None:
        session.info["flushed"] = True

    def after_commit(session: OrmSession) -> None:
        if session.info.pop("writing", False):
            point("after commit")

    def after_rollback(session: OrmSession) -> None:
        session.info.pop("flushed", None)
        session.info.pop("writing", None)

    event.listen(OrmSession, "before_commit", before_commit)
    event.listen(OrmSession, "after_flush", after_flush)
    event.listen(OrmSession, "after_commit", after_commit)
    event.listen(OrmSession, "after_soft_rollback", lambda s, _t: after_rollback(s))

    stand_in = StandInRequest()
    seeded: set[int] = set()

    def seed(chat: int, transcript: list[dict[str, Any]]) -> None:
        """The chat as the member sees it, for a worker that has not seen it (Telegram
        keeps the messages; a fresh worker's stand-in would not know them)."""
        if chat in seeded:
            return
        seeded.add(chat)
        with stand_in._lock:  # the stand-in has no public way to be given a history
            stand_in._chats[chat] = {"id": chat, "type": "private", "first_name": "K"}
            for data in transcript:
                stand_in._sent.append(BotMessage(chat, data["message_id"], data["text"],
                                                 data["date"], [[
                    Button(b["text"], b.get("callback_data")) for b in row]
                    for row in (data.get("reply_markup") or {}).get("inline_keyboard", [])]))
            stand_in._message_ids[chat] = itertools.count(
                max([m["message_id"] for m in transcript], default=0) + 1)

    def journal_call(call: ApiCall) -> None:
        if not isinstance(call.result, dict) or "message_id" not in call.result:
            return
        with open(journal, "a", encoding="utf-8") as out:
            out.write(json.dumps(call.result) + "\n")
        if call.method == "sendMessage":
            point("code delivered" if CODE_TEXT.search(call.result.get("text", ""))
                  else "reply sent")
        else:
            point("buttons dropped")

    stand_in.subscribe(journal_call)

    async def main() -> None:
        settings = bot_settings(url, **KILL_RULES)
        service = PointsService(settings, senders=make_senders(settings),
                                clock=lambda: utcnow() + timedelta(seconds=offset[0]))
        application = build_application(settings, service, request=stand_in)
        await application.initialize()
        runtime = application.bot_data["runtime"]
        connection.send(("ready",))
        try:
            while True:
                command = await asyncio.to_thread(connection.recv)
                if command[0] == "stop":
                    return
                with lock:
                    armed["points"] = []
                    armed["at"] = command[2] if command[0] == "update" else None
                offset[0] = command[-3]
                seed(command[-2], command[-1])
                if command[0] == "update":
                    await _send(application, command[1])
                else:
                    await send_overdue(application.bot, runtime)
                with lock:
                    connection.send(("done", list(armed["points"])))
        finally:
            await application.shutdown()
            service.db.dispose()

    asyncio.run(main())


class _Worker:
    """The driver's handle on one bot worker process; a new one after each kill."""

    def __init__(self, context: Any, url: str, journal: str) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_kill_worker, args=(url, journal, child),
                                       daemon=True)
        self.process.start()
        child.close()
        if self._answer(120) != ("ready",):
            raise RuntimeError("a bot worker did not start")

    def _answer(self, seconds: float) -> tuple[Any, ...] | None:
        """The worker's answer, or None when it died first."""
        try:
            if not self.connection.poll(seconds):
                raise RuntimeError(f"a bot worker did not answer in {seconds:.0f} s")
            return tuple(self.connection.recv())
        except (EOFError, ConnectionError):
            return None

    def ask(self, *command: Any) -> list[str] | None:
        """The points the command passed, or None when the worker was killed."""
        self.connection.send(command)
        answer = self._answer(300)
        if answer is None:
            self.process.join(timeout=30)
            return None
        return list(answer[1])

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.connection.send(("stop",))
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)
        self.connection.close()


@dataclass
class KillRun:
    """One member's way through the flow, with at most one kill."""

    member: int
    phone: str
    kill: tuple[int, int] | None  # (update of FLOW, point of its handling), 1-based point
    updates: int = 0  # updates delivered, redeliveries included
    killed: bool = False
    silent: list[str] = field(default_factory=list)  # updates whose answer never came
    again: list[str] = field(default_factory=list)  # inputs the member had to repeat
    problems: list[str] = field(default_factory=list)
    points: list[list[str]] = field(default_factory=list)  # per update of FLOW: its points


class _KillDrill:
    """The driver: members, updates as Telegram sends them, redelivery after a kill."""

    def __init__(self, url: str, directory: str) -> None:
        self.url = url
        self.context = _context()
        self.journal = os.path.join(directory, "journal.jsonl")
        self.worker: _Worker | None = None
        self.offset = 0.0  # seconds the workers' clock is ahead of the real one
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(10**6)
        self.kills = 0

    def _worker(self) -> _Worker:
        if self.worker is None:
            self.worker = _Worker(self.context, self.url, self.journal)
        return self.worker

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def transcript(self, chat: int) -> list[dict[str, Any]]:
        """The member's chat as it stands: each message of the bot, last version."""
        found: dict[int, dict[str, Any]] = {}
        with contextlib.suppress(FileNotFoundError), open(self.journal, encoding="utf-8") as f:
            for line in f:
                data = json.loads(line)
                if data["chat"]["id"] == chat:
                    found[data["message_id"]] = data
        return [found[k] for k in sorted(found)]

    # -- the member's updates

    def _message(self, chat: int, **content: Any) -> dict[str, Any]:
        person = {"id": chat, "is_bot": False, "first_name": "K", "language_code": "en"}
        return {"update_id": next(self.update_ids), "message": {
            "message_id": next(self.message_ids), "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "K"}, "from": person,
            **content}}

    def says(self, chat: int, text: str) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(text.split()[0])}]
        return self._message(chat, **content)

    def presses(self, chat: int, message: dict[str, Any], data: str) -> dict[str, Any]:
        update_id = next(self.update_ids)
        return {"update_id": update_id, "callback_query": {
            "id": str(update_id * 1000 + chat % 1000),
            "from": {"id": chat, "is_bot": False, "first_name": "K"},
            "chat_instance": f"ci-{chat}", "message": {**message, "from": dict(_BOT)},
            "data": data}}

    @staticmethod
    def button(transcript: list[dict[str, Any]], prefix: str
               ) -> tuple[dict[str, Any], str] | None:
        """The newest message with a button whose data starts with `prefix`."""
        for message in reversed(transcript):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for b in row:
                    if str(b.get("callback_data", "")).startswith(prefix):
                        return message, b["callback_data"]
        return None

    # -- delivering

    def deliver(self, run: KillRun, data: dict[str, Any], kill_at: int | None = None
                ) -> list[str]:
        """Deliver `data` to a worker; if the worker dies, start another and deliver the
        same update again (same update_id), as Telegram does when its webhook got no 200.
        The points the (last) delivery passed."""
        chat = run.member
        run.updates += 1
        points = self._worker().ask("update", data, kill_at, self.offset, chat,
                                    self.transcript(chat))
        if points is not None:
            return points
        worker = self.worker
        assert worker is not None
        if worker.process.exitcode != -signal.SIGKILL:
            run.problems.append(f"the worker died by itself (exit code "
                                f"{worker.process.exitcode})")
        else:
            run.killed = True
            self.kills += 1
        worker.stop()
        self.worker = None
        run.updates += 1
        again = self._worker().ask("update", data, None, self.offset, chat,
                                   self.transcript(chat))
        if again is None:
            run.problems.append("the redelivered update killed its worker too")
            self.close()
            return []
        return again

    def sweep(self, run: KillRun) -> None:
        """Past the outbox's lease: the codes a dead worker left are sent now."""
        from core.outbox import LEASE

        self.offset += LEASE.total_seconds() + 1
        if self._worker().ask("sweep", self.offset, run.member,
                              self.transcript(run.member)) is None:
            run.problems.append("the worker died while sending overdue codes")
            self.worker = None

    # -- one member

    def flow(self, run: KillRun) -> None:
        chat = run.member
        for index, step in enumerate(FLOW, start=1):
            kill_at = run.kill[1] if run.kill is not None and run.kill[0] == index else None
            before = len(self.transcript(chat))
            seen = self._json_of(chat)
            data = self.update_for(run, step)
            if data is None:
                return
            run.points.append(self.deliver(run, data, kill_at))
            if self._json_of(chat) == seen:
                run.silent.append(step)
            if step == "amount" and self.button(self.transcript(chat)[before:], "c:") is None:
                # No summary came (its worker died after commit): the member does it again.
                run.again.append(step)
                self.deliver(run, dict(data, update_id=next(self.update_ids)))

    def _json_of(self, chat: int) -> str:
        return json.dumps(self.transcript(chat))

    def update_for(self, run: KillRun, step: str) -> dict[str, Any] | None:
        chat = run.member
        if step == "contact":
            return self._message(chat, contact={"phone_number": run.phone.lstrip("+"),
                                                "first_name": "K", "user_id": chat})
        if step == "/redeem":
            return self.says(chat, "/redeem")
        transcript = self.transcript(chat)
        if step == "amount":
            found = self.button(transcript, f"p:{KILL_POINTS}")
            return self.presses(chat, *found) if found else self.says(chat, str(KILL_POINTS))
        if step == "confirm":
            found = self.button(transcript, "c:")
            if found is None:
                run.problems.append("no Confirm button reached the member")
                return None
            return self.presses(chat, *found)
        codes = [m.group(1) for m in (CODE_TEXT.search(t["text"]) for t in transcript) if m]
        if not codes:
            # Confirm's worker died before the code went out: the sweep sends it.
            self.sweep(run)
            codes = [m.group(1) for m in (CODE_TEXT.search(t["text"])
                                          for t in self.transcript(chat)) if m]
        if not codes:
            run.problems.append("the validation code never reached the member")
            return None
        return self.says(chat, codes[-1])


def kill_every_step(url: str, *, steps: tuple[str, ...] = FLOW, every: int = 1) -> Outcome:
    """SIGKILL a bot worker at every point of the handling of every update of a member's
    redemption (`FLOW`: contact, /redeem, the amount, Confirm, the code), then deliver the
    same update again to a fresh worker and go on with the flow, a fresh member each time.

    The points of each update are found by a first run without kills: every commit of a
    unit of work that wrote (before it, after it), every message the Bot API took (a reply,
    the validation code in the chat, buttons dropped). `steps` limits the updates killed
    in; `every` takes every n-th point only (small drills).

    Holds when, for every kill: the member redeemed exactly once (one redemption, the
    balance down by exactly the amount: 0 double redemptions); the flow went on to 800
    (0 updates lost): the member's last message is the 800 reply, or, when the worker
    died after the code's commit, the chat is back at the menu with the redemption done;
    the code of a worker that died before sending it reached the member (the sweep of
    overdue codes, past the outbox's lease on the workers' clock); no "something went
    wrong"; and the books balance (`violations`). Updates whose answer never came (a
    duplicate after commit answers nothing) are counted in the detail."""
    import tempfile

    started = time.perf_counter()
    outcome = Outcome("SIGKILL at every step of a redemption", database_name(url))
    service = PointsService(engine_settings(url, **{k: v for k, v in KILL_RULES.items()
                                                  if k.startswith("redemption")}))
    runs: list[KillRun] = []
    with tempfile.TemporaryDirectory(prefix="kill-steps-") as directory:
        drill = _KillDrill(url, directory)
        try:
            def member(n: int) -> tuple[int, str]:
                phone = drill_mobile(2000 + n)
                service.import_csv(members_csv([{"mobile": phone, "name": f"K{n}",
                                                 "points": KILL_BALANCE}]),
                                   filename=f"kill-{n}.csv")
                return KILL_USERS + n, phone

            chat, phone = member(0)
            dry = KillRun(chat, phone, None)
            drill.flow(dry)
            plan = [(i, p) for i, points in enumerate(dry.points, start=1)
                    if FLOW[i - 1] in steps for p in range(1, len(points) + 1)][::every]
            runs.append(dry)
            for n, kill in enumerate(plan, start=1):
                chat, phone = member(n)
                run = KillRun(chat, phone, kill)
                drill.flow(run)
                drill.sweep(run)  # a code left by the dead worker is dropped, not sent
                runs.append(run)
            labels = {(i, p): f"{FLOW[i - 1]} / {name}" for i, points
                      in enumerate(dry.points, start=1) for p, name in enumerate(points, 1)}
        finally:
            drill.close()
        lost = doubles = 0
        for run in runs:
            where = ("no kill" if run.kill is None
                     else f"kill at {labels.get(run.kill, run.kill)}")
            texts = [m["text"] for m in drill.transcript(run.member)]
            problems, was_lost, double = judge_run(service, run, texts)
            lost += was_lost
            doubles += double
            outcome.violations += [f"{where}: {p}" for p in problems]
        outcome.violations += violations(service)
        outcome.crashes = drill.kills
        outcome.requests = sum(run.updates for run in runs)
        outcome.lost, outcome.doubles = lost, doubles
        silent = Counter(f"{s}" for run in runs for s in run.silent)
        outcome.detail = (
            f"{drill.kills} kills at {len(plan)} points of {len(FLOW)} updates "
            f"({', '.join(f'{FLOW[i - 1]} {len(p)}' for i, p in enumerate(dry.points, 1))});"
            f" {lost} flows lost, {doubles} double redemptions; answers that never came "
            f"(a redelivery is answered from its claim, so none should be): "
            f"{', '.join(f'{k} {v}' for k, v in silent.items()) or 'none'}; repeated by the "
            f"member: {sum(len(r.again) for r in runs)}")
    service.db.dispose()
    outcome.seconds = time.perf_counter() - started
    return outcome


def judge_run(service: PointsService, run: KillRun, texts: list[str]
              ) -> tuple[list[str], bool, bool]:
    """What went wrong with one member's way through the flow (`texts`: the bot's messages
    in their chat): the problems, whether the flow was lost (it did not end in 800, nor,
    after a kill after the code's commit, in the redemption done and the chat at the
    menu), whether the amount was redeemed twice."""
    from bot import replies

    problems = list(run.problems)
    if run.kill is not None and not run.killed:
        problems.append("the kill point was never reached")
    problems += [f"the member was told: {t[:80]!r}" for t in texts
                 if t.startswith(replies.SOMETHING_WRONG[:30])]
    current, redeemed, step = _member_after(service, run.phone, str(run.member))
    double = redeemed > 1 or KILL_BALANCE - current > KILL_POINTS
    if double:
        problems.append(f"{redeemed} redemptions, {KILL_BALANCE - current} points debited: "
                        "redeemed twice")
    answered = bool(texts) and texts[-1].startswith("800 ")
    done = redeemed == 1 and current == KILL_BALANCE - KILL_POINTS and step == "menu"
    silent_at_the_end = bool(run.silent) and run.silent[-1] == "code"
    lost = not (done and (answered or silent_at_the_end))
    if lost:
        problems.append(f"the flow did not end in 800: last message "
                        f"{texts[-1][:80] if texts else None!r}, {redeemed} redemption(s), "
                        f"{current} points, step {step}")
    return problems, lost, double


def _member_after(service: PointsService, mobile: str, chat: str) -> tuple[int, int, str]:
    """A member's current points, how many redemptions they have, their chat's step."""
    def unit(session: Session) -> tuple[int, int, str]:
        member = session.exec(select(Member).where(Member.mobile == mobile)).one()
        redeemed = len(session.exec(select(Redemption.id).where(
            Redemption.member_id == member.id)).all())
        state = session.get(ChatState, chat)
        return member.current_points, redeemed, state.step if state else "menu"
    return service.db.run(unit, write=False)


__all__ = ["STEPS", "UPDATE_KINDS", "BotRig", "Hostile",
           "KillRun", "Outcome", "bot_load", "bot_settings", "concurrent_guesses",
           "concurrent_redemptions", "contact_check", "contact_drill", "contact_members",
           "contact_strategy", "crash_drill", "drill_mobile", "engine_settings",
           "fuzz_drill", "held_connections", "import_check", "international_reading",
           "judge_run", "kill_every_step",
           "members_csv", "money_snapshot",
           "reply_kind", "rows_with_points", "strategies", "unreachable", "violations"]
