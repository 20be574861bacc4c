"""Row 1, bot overhead: /balance from 200 simulated members through the full stack (the
python-telegram-bot `Application` from `bot.app.build_application`, its handlers, `core`,
a SQLite file) against a minimal python-telegram-bot echo bot, each on its own
`bot.standin.StandInRequest` (the local Bot API stand-in), in the same run.

Both bots get the same concurrency settings: BOT_CONCURRENT_UPDATES updates at once
through `bot.app.PerChatUpdateProcessor`, and the same `AIORateLimiter`. Both are built
with TELEGRAM_MAX_MESSAGES_PER_SECOND=0, which lifts the limiter's overall cap (30 messages
a second by default, Telegram's documented broadcast limit), or both would answer exactly
30 a second and the benchmark would measure the limiter; with the cap, the bot keeps up
with Telegram as long as its throughput stays above 30 a second.

Each member is verified first the way a member does it (/start, then sharing their own
contact), then every member sends /balance, waits for the answer and sends the next one,
all 200 at once. Updates go in through `application.update_queue` with the application
started, as a webhook server hands them over. Latency is from putting the update in the
queue to the stand-in receiving the reply. Each bot runs in a spawned process of its own,
so its peak RSS (imports included) is its own, and the runs do not share a heap.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    SECRET_KEY,
    WAITING,
    Goal,
    Row,
    Section,
    log,
    mobile,
    ms,
    not_measured,
    percentile,
    populate_sqlite,
    sqlite_url,
)

THROUGHPUT_GOAL = Goal(">=", 0.5)  # issue 10's goal; its aim is THROUGHPUT_AIM
THROUGHPUT_AIM = 0.8
P99_GOAL = Goal("<=", 3.0)
MEMBERS = 200
FIRST_USER_ID = 50_000
TELEGRAM_CAP = 30  # messages a second: TELEGRAM_MAX_MESSAGES_PER_SECOND's default
SOLO = 200  # updates sent one at a time after the timed phase, to see where the time goes


@dataclass(frozen=True)
class Size:
    checks_per_member: int  # timed /balance messages per member, per run
    runs: int  # runs of each bot, alternating echo and full


QUICK = Size(checks_per_member=3, runs=1)
FULL = Size(checks_per_member=25, runs=2)


@dataclass(frozen=True)
class Outcome:
    updates: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float
    peak_rss_kib: int
    statements: int = 0  # SQL statements during the timed phase (full bot only)
    transactions: int = 0
    # One update at a time, after the timed phase: latencies, and the seconds each engine
    # call took (full bot only), by the call's name.
    solo_latencies: list[float] = field(default_factory=list)
    engine_seconds: dict[str, float] = field(default_factory=dict)
    # SOLO more updates under cProfile: own seconds by layer (`benchmarks.common.LAYERS`).
    layers: dict[str, float] = field(default_factory=dict)
    error: str = ""


def bot_available() -> str:
    """Empty when the bot can be measured; otherwise what is missing."""
    try:
        from bot.app import PerChatUpdateProcessor, build_application  # noqa: F401
        from bot.standin import StandInRequest  # noqa: F401
    except ImportError as error:
        return f"bot not available ({error})"
    return ""


def _settings(path: Path) -> Any:
    from bot.settings import load_bot_settings

    return load_bot_settings(require_token=False, database_url=sqlite_url(path),
                             otp_channel="chat", secret_key=SECRET_KEY,
                             telegram_max_messages_per_second=0)  # the overall cap lifted


def _full_bot(settings: Any, stand_in: Any) -> tuple[Any, Any]:
    """The bot exactly as `build_application` builds it (with `settings`, so the limiter's
    overall cap lifted: see the module docstring); and its engine."""
    from bot.app import build_application
    from bot.senders import make_senders
    from core.service import PointsService

    service = PointsService(settings, senders=make_senders(settings))
    return build_application(settings, service, request=stand_in), service


def _echo_bot(settings: Any, stand_in: Any) -> Any:
    """A minimal echo bot with the same concurrency and rate-limiter settings."""
    from telegram import Update
    from telegram.ext import AIORateLimiter, Application, ContextTypes, MessageHandler, filters

    from bot.app import STAND_IN_TOKEN, PerChatUpdateProcessor

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    application = (
        Application.builder().token(STAND_IN_TOKEN).request(stand_in)
        .get_updates_request(stand_in)
        .rate_limiter(AIORateLimiter(
            overall_max_rate=settings.telegram_max_messages_per_second,
            max_retries=settings.telegram_max_retries))
        .concurrent_updates(PerChatUpdateProcessor(settings.bot_concurrent_updates))
        .build())
    application.add_handler(MessageHandler(filters.TEXT, echo))
    return application


async def _scenario(kind: str, path: Path, checks: int) -> Outcome:
    from sqlalchemy import event
    from telegram import Update

    from bot.standin import StandInRequest

    settings = _settings(path)
    stand_in = StandInRequest()
    service = None
    if kind == "bot":
        application, service = _full_bot(settings, stand_in)
    else:
        application = _echo_bot(settings, stand_in)
    loop = asyncio.get_running_loop()
    waiting: dict[int, tuple[asyncio.Future[tuple[float, str]], float]] = {}
    send_message: Callable[[dict[str, Any]], Any] = stand_in.responders["sendMessage"]

    def answered(params: dict[str, Any]) -> Any:
        result = send_message(params)
        now = time.perf_counter()
        pending = waiting.pop(int(params["chat_id"]), None)
        if pending is not None:
            loop.call_soon_threadsafe(_resolve, pending[0], (now, str(params["text"])))
        return result

    stand_in.responders["sendMessage"] = answered
    users = [stand_in.user(FIRST_USER_ID + i, f"Member {i}") for i in range(MEMBERS)]

    async def exchange(user: Any, update: dict[str, Any]) -> tuple[float, str]:
        future: asyncio.Future[tuple[float, str]] = loop.create_future()
        start = time.perf_counter()
        waiting[user.id] = (future, start)
        await application.update_queue.put(Update.de_json(update, application.bot))
        done, text = await asyncio.wait_for(future, timeout=120)
        return done - start, text

    counted = [0, 0]

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counted[0] += 1
        counted[1] += statement.lstrip().upper().startswith("BEGIN")

    await application.initialize()
    await application.start()
    try:
        if kind == "bot":
            for i, user in enumerate(users):  # verify each member, as a member does
                await exchange(user, user.says("/start"))
                _, text = await exchange(user, user.shares_contact(mobile(i + 1).lstrip("+")))
                if "Welcome" not in text:
                    raise RuntimeError(f"member {i + 1} was not verified: {text!r}")
        expected = "Current points" if kind == "bot" else "/balance"
        for _, text in await asyncio.gather(*(exchange(u, u.says("/balance")) for u in users)):
            if expected not in text:  # the warm-up round checks the answers
                raise RuntimeError(f"unexpected answer to /balance: {text!r}")

        async def member(user: Any) -> list[float]:
            return [(await exchange(user, user.says("/balance")))[0] for _ in range(checks)]

        if service is not None:
            event.listen(service.db.engine, "before_cursor_execute", count)
        cpu, start = time.process_time(), time.perf_counter()
        per_member = await asyncio.gather(*(member(u) for u in users))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        if service is not None:
            event.remove(service.db.engine, "before_cursor_execute", count)
        solo, engine_seconds, layers = await _one_at_a_time(users, exchange,
                                                            timed=service is not None)
    finally:
        await application.stop()
        await application.shutdown()
        if service is not None:
            service.db.dispose()
    latencies = [value for values in per_member for value in values]
    return Outcome(len(latencies), seconds, latencies, cpu,
                   peak_rss_kib(), counted[0], counted[1],
                   solo, engine_seconds, layers)


async def _one_at_a_time(users: list[Any], exchange: Callable[..., Any], *, timed: bool
                         ) -> tuple[list[float], dict[str, float], Any]:
    """SOLO /balance updates, one at a time; with `timed`, each engine call the handlers
    make (through `bot.runtime.in_thread`, so `bot.runtime.core` and its metrics stay as
    they are) is timed inside its worker thread. Then SOLO more under cProfile: the event
    loop's thread and each engine call in its worker thread, merged (the profile by layer)."""
    import cProfile
    import pstats
    from unittest import mock

    import bot.runtime

    spent: dict[str, float] = {}
    profiles: list[cProfile.Profile] = []
    profiling = [False]
    plain_in_thread = bot.runtime.in_thread

    async def timed_in_thread(pool: Any, call: Callable[..., Any], *args: Any,
                              **kwargs: Any) -> Any:
        def work(*inner: Any, **named: Any) -> Any:
            profiler = cProfile.Profile() if profiling[0] else None
            start = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            try:
                return call(*inner, **named)
            finally:
                if profiler is not None:
                    profiler.disable()
                    profiles.append(profiler)
                else:
                    name = getattr(call, "__qualname__", repr(call))
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
        return await plain_in_thread(pool, work, *args, **kwargs)

    latencies = []
    with mock.patch.object(bot.runtime, "in_thread", timed_in_thread) if timed else _nothing():
        for i in range(SOLO):
            user = users[i % len(users)]
            latencies.append((await exchange(user, user.says("/balance")))[0])
        profiling[0] = True
        loop_profiler = cProfile.Profile()
        loop_profiler.enable()
        for i in range(SOLO):
            user = users[i % len(users)]
            await exchange(user, user.says("/balance"))
        loop_profiler.disable()
    stats = pstats.Stats(loop_profiler)
    for profiler in profiles:
        stats.add(profiler)
    return latencies, spent, _layers(stats)


def _layers(stats: Any) -> dict[str, float]:
    """Profiled seconds by layer (`benchmarks.common.LAYERS`), for the parent process."""
    from benchmarks.common import by_layer

    return by_layer(stats)[0]


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


def peak_rss_kib() -> int:
    """This process's peak resident set size: VmHWM, which (unlike ru_maxrss) starts
    afresh at exec, so a spawned child does not inherit its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _resolve(future: asyncio.Future[tuple[float, str]], value: tuple[float, str]) -> None:
    if not future.done():
        future.set_result(value)


def _child(kind: str, path: str, checks: int, results: Any) -> None:
    """A spawned process: one bot's whole run, the outcome sent back on `results`."""
    import logging

    logging.disable(logging.WARNING)  # a flood of per-update log lines would be measured
    try:
        results.put(asyncio.run(_scenario(kind, Path(path), checks)))
    except BaseException as error:
        import traceback

        results.put(Outcome(0, 0.0, [], 0.0, 0, error=f"{type(error).__name__}: {error}\n"
                            f"{traceback.format_exc()}"))


def _in_process(kind: str, path: Path, checks: int) -> Outcome:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_child, name=f"bench-{kind}",
                              args=(kind, str(path), checks, results))
    process.start()
    try:
        outcome: Outcome = results.get(timeout=600)
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.terminate()
            process.join()
    if outcome.error:
        raise RuntimeError(f"the {kind} run failed: {outcome.error}")
    return outcome


def _merge(outcomes: list[Outcome]) -> Outcome:
    engine: dict[str, float] = {}
    layers: dict[str, float] = {}
    for outcome in outcomes:
        for name, seconds in outcome.engine_seconds.items():
            engine[name] = engine.get(name, 0.0) + seconds
        for name, seconds in outcome.layers.items():
            layers[name] = layers.get(name, 0.0) + seconds
    return Outcome(sum(o.updates for o in outcomes), sum(o.seconds for o in outcomes),
                   [v for o in outcomes for v in o.latencies],
                   sum(o.cpu_seconds for o in outcomes), max(o.peak_rss_kib for o in outcomes),
                   sum(o.statements for o in outcomes), sum(o.transactions for o in outcomes),
                   [v for o in outcomes for v in o.solo_latencies], engine, layers)


def run(quick: bool) -> Section:
    missing = bot_available()
    if missing:
        rows = [not_measured("1", "bot overhead", THROUGHPUT_GOAL, "bot not available")]
        return Section(rows, [f"row 1 not measured: {missing}"])
    size = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-bot-") as tmp:
        path = Path(tmp) / "bot.db"
        populate_sqlite(path, MEMBERS, 10)
        echo_runs: list[Outcome] = []
        bot_runs: list[Outcome] = []
        for number in range(size.runs):
            log(f"row 1: run {number + 1} of {size.runs}: echo bot, then the full bot "
                f"({MEMBERS} members x {size.checks_per_member} /balance)")
            echo_runs.append(_in_process("echo", path, size.checks_per_member))
            # The full bot's database starts each run as the first one did.
            bot_runs.append(_in_process("bot", _fresh_copy(path, Path(tmp), number),
                                        size.checks_per_member))
    echo, full = _merge(echo_runs), _merge(bot_runs)
    return _section(echo, full, size, quick)


def _fresh_copy(path: Path, directory: Path, number: int) -> Path:
    import shutil

    copy = directory / f"bot-{number}.db"
    shutil.copyfile(path, copy)
    return copy


def _section(echo: Outcome, full: Outcome, size: Size, quick: bool) -> Section:
    echo_rate, bot_rate = echo.updates / echo.seconds, full.updates / full.seconds
    p50 = (percentile(full.latencies, 50), percentile(echo.latencies, 50))
    p99 = (percentile(full.latencies, 99), percentile(echo.latencies, 99))
    cpu_bot = 1000 * full.cpu_seconds / full.updates
    cpu_echo = 1000 * echo.cpu_seconds / echo.updates
    transactions = full.transactions / full.updates
    statements = full.statements / full.updates - transactions  # BEGINs not counted
    solo = len(full.solo_latencies)
    solo_bot = sum(full.solo_latencies) / solo
    solo_echo = sum(echo.solo_latencies) / len(echo.solo_latencies)
    calls = sorted(full.engine_seconds.items(), key=lambda item: -item[1])
    engine_ms = 1000 * sum(full.engine_seconds.values()) / solo
    split = ", ".join(f"{name.rsplit('.', 1)[-1]} {1000 * sec / solo:.2f} ms"
                      for name, sec in calls)
    profiled = len(full.solo_latencies)  # as many profiled updates as timed ones
    extra = {name: full.layers.get(name, 0.0) - echo.layers.get(name, 0.0)
             for name in full.layers if name != WAITING}
    biggest = sorted(((n, v) for n, v in extra.items() if v > 0), key=lambda i: -i[1])[:3]
    between = ", ".join(f"{name} {1000 * v / profiled:.2f} ms" for name, v in biggest)
    cost = (f"the bot's process spends {cpu_bot:.1f} ms of CPU per /balance against the echo "
            f"bot's {cpu_echo:.1f} ms (simulated members and stand-in included in both), and "
            f"one process's CPU is what bounds both. One update at a time, a /balance takes "
            f"{ms(solo_bot)} on average against the echo's {ms(solo_echo)}; {engine_ms:.2f} ms "
            f"of it are the engine call, in a worker thread ({split}; {statements:.0f} SQL "
            f"statement(s) in {transactions:.0f} read transaction, no claim)")
    fix = (f"What stands between the figure and the goal, by the profile (what the bot "
           f"spends per update beyond the echo bot, under cProfile): {between}")
    rows = [
        Row("1a", "bot overhead, throughput", f"{bot_rate:,.0f} updates/s",
            f"{echo_rate:,.0f} updates/s (echo bot; both with no overall cap)",
            bot_rate / echo_rate, THROUGHPUT_GOAL,
            why=f"{cost}. {fix}"),
        Row("1b", "bot overhead, p50 latency", ms(p50[0]), f"{ms(p50[1])} (echo bot)",
            p50[0] / p50[1], None),
        Row("1c", "bot overhead, p99 latency", ms(p99[0]), f"{ms(p99[1])} (echo bot)",
            p99[0] / p99[1], P99_GOAL,
            why=(f"with {MEMBERS} members sending at once, an update's latency is mostly "
                 f"its wait behind the others, so it grows with the cost per update: see row "
                 f"1a")),
        Row("1d", "bot overhead, peak memory (RSS)", f"{full.peak_rss_kib / 1024:,.0f} MiB",
            f"{echo.peak_rss_kib / 1024:,.0f} MiB (echo bot)",
            full.peak_rss_kib / echo.peak_rss_kib, None),
    ]
    cap = ("keeps up with" if bot_rate >= TELEGRAM_CAP else "falls short of")
    notes = [f"row 1: {MEMBERS} members x {size.checks_per_member} /balance per run, "
             f"{size.runs} run(s) of each bot in its own process; BOT_CONCURRENT_UPDATES and "
             f"the rate limiter the same in both, both built with "
             f"TELEGRAM_MAX_MESSAGES_PER_SECOND=0 (the overall cap of {TELEGRAM_CAP} "
             f"messages/s lifted), so they are compared without it; with that cap (Telegram's "
             f"broadcast limit, the default) "
             f"the bot's {bot_rate:,.0f} updates/s {cap} the {TELEGRAM_CAP}/s Telegram "
             f"allows; peak RSS includes each process's imports; the throughput goal is "
             f"{THROUGHPUT_GOAL} (aim {THROUGHPUT_AIM:g})",
             f"row 1: {statements:.0f} SQL statement(s) per /balance in {transactions:.0f} "
             f"read transaction(s) (BEGIN not counted), no durable write"]
    if quick:
        notes.append(f"row 1 (--quick): {size.checks_per_member} /balance per member, 1 run; "
                     f"the full run does {FULL.checks_per_member} x {FULL.runs}")
    details = [f"Row 1 profile: where a /balance goes, one update at a time, under cProfile "
               f"({profiled} updates of each bot; the event loop's thread and the engine's "
               f"worker thread merged; own time per update, full bot | echo bot):"]
    for name in sorted(full.layers, key=lambda n: -full.layers[n]):
        bot_ms = 1000 * full.layers[name] / profiled
        echo_ms = 1000 * echo.layers.get(name, 0.0) / len(echo.solo_latencies)
        if bot_ms >= 0.005 or echo_ms >= 0.005:
            details.append(f"    {bot_ms:7.3f} ms | {echo_ms:7.3f} ms  {name}")
    return Section(rows, notes, details)
