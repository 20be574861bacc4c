"""Row 6, API overhead: `GET /v1.1/points/isredeemable` requests per second through our
app (`api.app.create_app`: HTTP Basic as a till, the adapter, `core`, a SQLite file in WAL
mode) against a minimal FastAPI endpoint served the same way, in the same run.

Served the same way: each app runs alone in a spawned process of its own, on uvicorn with
the same `uvicorn.Config` (one worker, the same event loop and HTTP implementation, access
log off, the API's own bounds), on 127.0.0.1; the same client (a few lines of HTTP/1.1
over asyncio streams, `CONCURRENCY` connections kept alive, each sending its next request
when the last is answered) sends the same requests to both: every request names one of
`MEMBERS` members and 100 points.

The baseline authenticates the same way on the wire (HTTP Basic, the MD5 hex of the
password) and answers an envelope of the same shape, but compares the credentials with a
constant in memory: no till looked up, no slow hash, no database, no engine. So the ratio
is what our whole path costs against FastAPI's floor for an authenticated GET, and the
profile after the table says where the difference goes (uvicorn/starlette/fastapi, our
adapter, core, SQLAlchemy, the driver, the scrypt check).

A till's password is checked with scrypt (tens of ms) only when its process has not seen
that password yet: `core.tills` remembers a verified login in memory (keyed by the till and
its stored hash), so the row also counts scrypt calls during the timed phase (expected: 0,
the warm-up pays the one).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    SECRET_KEY,
    STORAGE_LAYERS,
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
    process_cpu,
    sqlite_url,
)
from core.staff_audit import FLUSH_SECONDS

GOAL = Goal(">=", 0.5)
MEMBERS = 200
POINTS = 100
CONCURRENCY = 16
TILL = "bench-till"
MINIMAL_PASSWORD = "minimal-password"
PATH = "/v1.1/points/isredeemable"


@dataclass(frozen=True)
class Size:
    requests: int  # timed requests per run, all connections together
    runs: int  # runs of each app, alternating minimal and ours
    profiled: int  # requests sent one at a time to a profiled server afterwards


QUICK = Size(requests=400, runs=1, profiled=100)
FULL = Size(requests=3000, runs=2, profiled=500)


# Layers of the stack for an HTTP request: the first marker found in "file:function"
# names the layer (the more specific first). `_markers()` adds our adapter's directory.
API_LAYERS: tuple[tuple[str, str], ...] = (
    (WAITING, "<method 'poll' of 'select.epoll'"),
    (WAITING, "<method 'acquire' of '_thread.lock'"),
    (WAITING, "<method 'run' of 'uvloop.loop.Loop'"),
    (THREADS := "anyio + asyncio + threads (event loop, thread hand-offs)",
     "<method 'release' of '_thread.lock'"),
    (SCRYPT := "the scrypt check (hashlib.scrypt)", "scrypt"),
    ("driver: sqlite3 commit (WAL write + fsync)", "<method 'commit' of 'sqlite3.Connection'"),
    (SOCKET := "socket send/recv (the GIL taken back after it included)",
     "<method 'send' of '_socket.socket'"),
    (SOCKET, "<method 'recv' of '_socket.socket'"),
    ("driver: sqlite3 statements (SQLite's C code)", "<method 'execute' of 'sqlite3."),
    ("uvicorn (HTTP parsing, protocol)", "/uvicorn/"),
    ("uvicorn (HTTP parsing, protocol)", "/h11/"),
    ("uvicorn (HTTP parsing, protocol)", "/httptools/"),
    ("starlette (routing, requests, responses)", "/starlette/"),
    ("fastapi (dependencies, validation, serialising)", "/fastapi/"),
    ("core.tills (authentication, the call's audit line)", "/core/tills"),
    ("core.staff_audit (the call's audit line)", "/core/staff_audit"),
    ("engine operations (the rest of core/)", "/core/"),
    *STORAGE_LAYERS,
    ("json (encoding the response)", "/json/"),
    (THREADS, "/anyio/"),
    (THREADS, "/asyncio/"),
    (THREADS, "/concurrent/"),
    (THREADS, "/threading.py"),
)
ADAPTER = "our adapter (api/)"
OTHER = "other (stdlib, builtins)"


def _markers() -> tuple[tuple[str, str], ...]:
    """`API_LAYERS` with our adapter's directory (`api/` of this checkout) before core's."""
    import api

    where = str(Path(api.__file__).resolve().parent) + os.sep
    return (*API_LAYERS[:9], (ADAPTER, where), *API_LAYERS[9:])


def layers_of(stats: Any) -> dict[str, float]:
    """Own profiled seconds by layer (`_markers()`), unknown functions as OTHER."""
    markers = _markers()
    layers = dict.fromkeys([name for name, _ in markers] + [OTHER], 0.0)
    for (filename, _line, function), entry in stats.stats.items():
        where = f"{filename}:{function}" if filename != "~" else function
        layers[next((name for name, marker in markers if marker in where), OTHER)] += entry[2]
    return layers


def scrypt_calls(stats: Any) -> int:
    return sum(entry[1] for (_f, _l, function), entry in stats.stats.items()
               if "scrypt" in function)


def api_available() -> str:
    """Empty when the API can be measured; otherwise what is missing."""
    try:
        from api.app import create_app  # noqa: F401
        from api.settings import load_api_settings  # noqa: F401
    except ImportError as error:
        return f"the API is not available ({error})"
    return ""


def basic(user: str, password: str) -> str:
    """The Authorization header a till sends: its name and the MD5 hex of its password."""
    secret = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


# ---------------------------------------------------------------- the two apps


def minimal_app() -> Any:
    """The baseline: one FastAPI endpoint on the same path, HTTP Basic checked against a
    constant (constant time), the same envelope's shape; a sync endpoint (run on the
    thread pool) as ours is, so the thread hand-off is in both."""
    import secrets

    from fastapi import Depends, FastAPI, HTTPException, Query
    from fastapi.security import HTTPBasic, HTTPBasicCredentials

    app = FastAPI(title="minimal")
    security = HTTPBasic()
    expected = hashlib.md5(MINIMAL_PASSWORD.encode(), usedforsecurity=False).hexdigest()

    @app.get(PATH)
    def isredeemable(credentials: HTTPBasicCredentials = Depends(security),  # noqa: B008
                     mobile: str = Query(), points: int = Query()) -> dict[str, Any]:
        if not (secrets.compare_digest(credentials.username, TILL)
                and secrets.compare_digest(credentials.password, expected)):
            raise HTTPException(401, headers={"WWW-Authenticate": "Basic"})
        return {"response": {
            "status": {"success": "true", "code": 200, "message": "Success"},
            "points": {"redeemable": {"mobile": mobile, "points": points,
                                      "is_redeemable": "true", "points_redeem_value": points,
                                      "points_currency_ratio": 1,
                                      "item_status": {"success": "true", "code": 800,
                                                      "message": "Points can be redeemed"}}}}}

    return app


def _our_app(path: Path) -> Any:
    from api.app import create_app

    return create_app(_api_settings(path))


def _api_settings(path: Path) -> Any:
    from api.settings import load_api_settings

    return load_api_settings(_env_file=None, database_url=sqlite_url(path),
                             secret_key=SECRET_KEY)


def uvicorn_config(app: Any, settings: Any) -> Any:
    """The one uvicorn configuration both apps are served with: `loyalty-bot api`'s
    (`api.app.server_options`: keep-alive, header and concurrency bounds, no server header,
    no access log), on the socket given instead of API_LISTEN:API_PORT, logging warnings
    only."""
    import uvicorn

    from api.app import server_options

    return uvicorn.Config(app, **server_options(settings), log_level="warning",
                          lifespan="on")


def _serve(kind: str, path: str, sock: socket.socket, events: tuple[Any, ...],
           profile: str) -> None:
    """A spawned process: serve `kind` ("ours" or "minimal") on `sock` until the `stop`
    event is set (uvicorn then shuts down as on SIGTERM). With `profile`: once `measure`
    is set, every thread profiles itself under cProfile from its next call on (`measuring`
    says so to the parent); the stats are written to `profile` at exit."""
    import cProfile
    import logging
    import sys
    import threading

    import uvicorn

    ready, stop, measure, measuring = events
    logging.disable(logging.WARNING)  # a log line a request would be measured
    settings = _api_settings(Path(path))
    app = _our_app(Path(path)) if kind == "ours" else minimal_app()
    counts = {"statements": 0, "reads": 0, "writes": 0}
    counting = threading.Event()
    if kind == "ours" and profile:
        from sqlalchemy import event

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not counting.is_set():
                return
            head = statement.lstrip()[:16].upper()
            key = ("writes" if head.startswith("BEGIN IMMEDIATE") else "reads"
                   if head.startswith("BEGIN") else "statements")
            counts[key] += 1
        event.listen(app.state.service.db.engine, "before_cursor_execute", count)
    config = uvicorn_config(app, settings)
    server = uvicorn.Server(config)

    def stopper() -> None:
        stop.wait()
        server.should_exit = True
    threading.Thread(target=stopper, daemon=True).start()
    profiles: list[cProfile.Profile] = []
    if profile:
        on = threading.Event()

        def hook(*_args: Any) -> None:  # each thread's first call once measuring
            if on.is_set():
                profiler = cProfile.Profile()
                profiles.append(profiler)
                profiler.enable()  # replaces this hook in this thread

        def switch() -> None:
            measure.wait()
            on.set()
            counting.set()
            measuring.set()
        threading.setprofile(hook)
        sys.setprofile(hook)
        threading.Thread(target=switch, daemon=True).start()
    ready.set()
    try:
        server.run(sockets=[sock])
    finally:
        if profile:
            import pstats

            sys.setprofile(None)
            if profiles:
                profiles[0].disable()
                stats = pstats.Stats(profiles[0])
                for profiler in profiles[1:]:
                    stats.add(profiler)
                stats.dump_stats(profile)
            import json

            Path(profile + ".counts").write_text(json.dumps(counts))


class Served:
    """One app in a spawned process on a free port of 127.0.0.1. The listening socket is
    made here with IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only when
    their socket says so, and without it every kept-alive answer after the first waits
    ~40 ms for a delayed ACK (uvicorn's own `bind_socket`, used with `--workers` > 1,
    leaves it 0: Kludex/uvicorn#3149)."""

    def __init__(self, kind: str, path: Path, profile: Path | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)  # connections wait in the backlog until the app serves
        self.port = self.sock.getsockname()[1]
        ready, self.stopping = context.Event(), context.Event()
        self.measure, self.measuring = context.Event(), context.Event()
        self.process = context.Process(
            target=_serve, name=f"bench-api-{kind}",
            args=(kind, str(path), self.sock,
                  (ready, self.stopping, self.measure, self.measuring), str(profile or "")))
        self.process.start()
        if not ready.wait(120):
            self.stop()
            raise RuntimeError(f"the {kind} app did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_up(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Until the first request is answered 200 (scrypt's one check is paid here)."""
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(self.url + PATH, headers=headers, params=params, timeout=30)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            if answer.status_code != 200:
                raise RuntimeError(f"{self.url}{PATH} answered {answer.status_code}: "
                                   f"{answer.text[:300]}")
            return

    def start_profiling(self) -> None:
        self.measure.set()
        if not self.measuring.wait(30):
            raise RuntimeError("the server did not start profiling")

    def cpu(self) -> float:
        return process_cpu(self.process.pid or 0) or 0.0

    def stop(self) -> None:
        self.stopping.set()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.sock.close()


# ---------------------------------------------------------------- the client


@dataclass
class Outcome:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    solo: list[float] = field(default_factory=list)
    layers: dict[str, float] = field(default_factory=dict)
    scrypt_calls: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # SQL during the profiled requests


def _params(i: int) -> dict[str, Any]:
    return {"mobile": mobile(1 + i % MEMBERS), "points": POINTS, "format": "json"}


def _request(port: int, headers: dict[str, str], i: int) -> bytes:
    """The bytes of isredeemable request `i` (HTTP/1.1, kept alive)."""
    from urllib.parse import urlencode

    lines = [f"GET {PATH}?{urlencode(_params(i))} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes]:
    """Send one request on a kept-alive connection; its status and body (uvicorn always
    sends Content-Length for these answers)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _load(port: int, headers: dict[str, str], requests: int,
                connections: int = CONCURRENCY) -> tuple[float, list[float]]:
    """`requests` isredeemable calls over `connections` kept-alive connections, each
    sending its next request when the last is answered; seconds taken and each call's
    latency. The client is a few lines over asyncio streams, so that it costs little next
    to either server (httpx costs about as much CPU per request as the minimal app). Every
    answer must be 200 with an envelope."""
    latencies: list[float] = []
    counter = iter(range(requests))
    prepared = [_request(port, headers, i) for i in range(MEMBERS)]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                start = time.perf_counter()
                status, body = await _exchange(reader, writer, prepared[i % MEMBERS])
                latencies.append(time.perf_counter() - start)
                if status != 200 or not body.startswith(b'{"response"'):
                    raise RuntimeError(f"answered {status}: {body[:300]!r}")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - start, latencies


def _one_at_a_time(port: int, headers: dict[str, str], count: int) -> list[float]:
    """`count` requests on one connection, one after another: each one's latency."""
    return asyncio.run(_load(port, headers, count, connections=1))[1]


def _timed_run(kind: str, path: Path, headers: dict[str, str], size: Size) -> Outcome:
    served = Served(kind, path)
    try:
        served.wait_up(headers, _params(0))
        # Warm-up: every member once, through the same client.
        asyncio.run(_load(served.port, headers, min(MEMBERS, size.requests)))
        cpu = served.cpu()
        seconds, latencies = asyncio.run(_load(served.port, headers, size.requests))
        return Outcome(size.requests, seconds, latencies, served.cpu() - cpu)
    finally:
        served.stop()


def _profiled_run(kind: str, path: Path, headers: dict[str, str], size: Size,
                  directory: Path) -> tuple[list[float], dict[str, float], int, dict[str, int]]:
    """`size.profiled` requests one at a time, unprofiled (latency), then as many again
    with the server under cProfile in a server of its own: own time by layer, and the
    scrypt calls of the profiled requests (the warm-up's first check excluded)."""
    import pstats

    served = Served(kind, path)
    try:
        served.wait_up(headers, _params(0))
        _one_at_a_time(served.port, headers, min(MEMBERS, size.profiled))
        solo = _one_at_a_time(served.port, headers, size.profiled)
    finally:
        served.stop()
    dump = directory / f"{kind}.prof"
    served = Served(kind, path, profile=dump)
    try:
        served.wait_up(headers, _params(0))
        _one_at_a_time(served.port, headers, min(MEMBERS, size.profiled))
        served.start_profiling()
        _one_at_a_time(served.port, headers, size.profiled)
    finally:
        served.stop()
    stats = pstats.Stats(str(dump))
    counts = json.loads(Path(str(dump) + ".counts").read_text())
    return solo, layers_of(stats), scrypt_calls(stats), counts


def _create_till(path: Path) -> str:
    """A till on the database; its password (the client sends its MD5 hex)."""
    from core.service import PointsService

    service = PointsService(_api_settings(path))
    try:
        return str(service.add_till(TILL).password)
    finally:
        service.close()


def run(quick: bool) -> Section:
    missing = api_available()
    if missing:
        return Section([not_measured("6", "API isredeemable throughput", GOAL, missing)],
                       [f"row 6 not measured: {missing}"])
    size = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-api-") as tmp:
        directory = Path(tmp)
        path = directory / "api.db"
        populate_sqlite(path, MEMBERS, 10)
        headers = {"ours": {"Authorization": basic(TILL, _create_till(path))},
                   "minimal": {"Authorization": basic(TILL, MINIMAL_PASSWORD)}}
        runs: dict[str, list[Outcome]] = {"minimal": [], "ours": []}
        for number in range(size.runs):
            for kind in ("minimal", "ours"):
                log(f"row 6: run {number + 1} of {size.runs}: {kind} app, {size.requests} "
                    f"requests over {CONCURRENCY} connections")
                runs[kind].append(_timed_run(kind, path, headers[kind], size))
        merged = {kind: _merge(outcomes) for kind, outcomes in runs.items()}
        for kind in ("minimal", "ours"):
            log(f"row 6: {kind} app, {size.profiled} requests one at a time, then profiled")
            solo, layers, scrypts, counts = _profiled_run(kind, path, headers[kind], size,
                                                          directory)
            merged[kind].solo, merged[kind].layers = solo, layers
            merged[kind].scrypt_calls, merged[kind].counts = scrypts, counts
        return _section(merged["minimal"], merged["ours"], size, quick)


def _merge(outcomes: list[Outcome]) -> Outcome:
    return Outcome(sum(o.requests for o in outcomes), sum(o.seconds for o in outcomes),
                   [v for o in outcomes for v in o.latencies],
                   sum(o.server_cpu for o in outcomes))


def _section(minimal: Outcome, ours: Outcome, size: Size, quick: bool) -> Section:
    ours_rate, minimal_rate = ours.requests / ours.seconds, minimal.requests / minimal.seconds
    ratio = ours_rate / minimal_rate
    cpu_ours = 1000 * ours.server_cpu / ours.requests
    cpu_minimal = 1000 * minimal.server_cpu / minimal.requests
    profiled = size.profiled
    extra = {name: ours.layers.get(name, 0.0) - minimal.layers.get(name, 0.0)
             for name in ours.layers if name != WAITING}
    biggest = sorted(((n, v) for n, v in extra.items() if v > 0), key=lambda i: -i[1])[:4]
    between = ", ".join(f"{name} {1000 * v / profiled:.2f} ms" for name, v in biggest)
    counts = {key: value / profiled for key, value in ours.counts.items()}
    sql = (f"{counts.get('reads', 0):.2f} read and {counts.get('writes', 0):.2f} write "
           f"transaction(s), {counts.get('statements', 0):.2f} SQL statement(s)")
    why = (f"the server spends {cpu_ours:.2f} ms of CPU per isredeemable against the minimal "
           f"endpoint's {cpu_minimal:.2f} ms, and one server process's CPU bounds both. An "
           f"isredeemable is {sql} on average (BEGIN not counted): the till's row and the "
           f"check in one read transaction, the call's audit line deferred to a batch "
           f"written every {FLUSH_SECONDS:g} s in one write transaction (with the lines of "
           f"the other checks that came meanwhile); one thread hand-off (the endpoint: the "
           f"till dependency is async and touches no database). Beyond the minimal "
           f"endpoint, by the profile (own time per request under cProfile): {between}")
    p50 = (percentile(ours.latencies, 50), percentile(minimal.latencies, 50))
    p99 = (percentile(ours.latencies, 99), percentile(minimal.latencies, 99))
    rows = [
        Row("6a", "API isredeemable throughput", f"{ours_rate:,.0f} requests/s",
            f"{minimal_rate:,.0f} requests/s (minimal FastAPI endpoint, HTTP Basic)",
            ratio, GOAL, why=why),
        Row("6b", "API isredeemable p50 latency", ms(p50[0]), f"{ms(p50[1])} (minimal)",
            p50[0] / p50[1], None),
        Row("6c", "API isredeemable p99 latency", ms(p99[0]), f"{ms(p99[1])} (minimal)",
            p99[0] / p99[1], None),
    ]
    notes = [f"row 6: {size.requests} requests x {size.runs} run(s) of each app over "
             f"{CONCURRENCY} kept-alive connections (a lean asyncio client), each app alone in "
             f"its own process on the same uvicorn configuration; {MEMBERS} members named in "
             f"turn, "
             f"{POINTS} points, no validation code; server CPU per request: ours "
             f"{cpu_ours:.2f} ms, minimal {cpu_minimal:.2f} ms",
             f"row 6: {sql} per isredeemable (one at a time, BEGIN not counted)",
             f"row 6: scrypt calls during {profiled} profiled requests after the first: "
             f"{ours.scrypt_calls} (a verified login is remembered by the process, so only "
             f"a new or a wrong password pays the slow hash)"]
    if quick:
        notes.append(f"row 6 (--quick): {size.requests} requests, 1 run; the full run does "
                     f"{FULL.requests} x {FULL.runs}")
    solo_ours = sum(ours.solo) / len(ours.solo)
    solo_minimal = sum(minimal.solo) / len(minimal.solo)
    details = [f"Row 6 profile: where an isredeemable goes, one request at a time "
               f"({ms(solo_ours)} against the minimal endpoint's {ms(solo_minimal)} "
               f"unprofiled), under cProfile ({profiled} requests of each app; every thread "
               f"of the server merged; own time per request, ours | minimal):"]
    for name in sorted(ours.layers, key=lambda n: -ours.layers[n]):
        if name == WAITING:
            continue
        ours_ms = 1000 * ours.layers[name] / profiled
        minimal_ms = 1000 * minimal.layers.get(name, 0.0) / profiled
        if ours_ms >= 0.005 or minimal_ms >= 0.005:
            details.append(f"    {ours_ms:7.3f} ms | {minimal_ms:7.3f} ms  {name}")
    return Section(rows, notes, details)
