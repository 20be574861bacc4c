"""The webhook server: Telegram POSTs each update to WEBHOOK_URL's path; anything without
the right `X-Telegram-Bot-Api-Secret-Token` is refused with 403 (compared in constant
time, from the headers, before any of the body is read) and never reaches the bot.
`GET /healthz` answers 200 while the database answers.

python-telegram-bot's own webhook server compares the secret with `!=`, logs a wrong one,
and has no health check, so this is a small tornado server of our own (tornado comes with
the `webhooks` extra). An update is processed before its request is answered, through the
application's update processor (each chat in order), so Telegram redelivers it if the
worker dies first; the database claim of each update makes a redelivery harmless. Several
workers on one database can serve one bot behind a load balancer: every worker registers
the same webhook.

Nobody without the secret can wear the server out (`GuardedHTTPServer`): a connection
gets WEBHOOK_IDLE_TIMEOUT_SECONDS to send a request's headers and
WEBHOOK_BODY_TIMEOUT_SECONDS for its body; headers and bodies are bounded
(WEBHOOK_MAX_HEADER_BYTES, WEBHOOK_MAX_BODY_BYTES); at most WEBHOOK_MAX_CONNECTIONS are
held (lowered to fit the file-descriptor limit), and when they are all taken the one that
has waited longest for a request's headers is closed to make room, so idle or half-sent
connections can delay a real update by nothing. Running out of file descriptors anyway
(EMFILE) closes such a connection too, or pauses accepting for a moment; refusals are
logged one line a burst, never one each. X-Forwarded-For names the client in the log
only when the peer is one of TRUSTED_PROXIES.

Routes are listed in `WebhookServer.routes()`: another GET endpoint is one `Endpoint`
subclass and one line there.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import json
import logging
import re
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

import tornado.web
from telegram import Update
from telegram.ext import Application
from tornado import httputil
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets

from bot.app import ALLOWED_UPDATES
from bot.burstlog import BurstLog
from bot.metrics import MetricsEndpoint
from bot.runtime import Runtime
from bot.settings import BotSettings

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)
HEALTH_TIMEOUT = 5.0  # seconds /healthz waits for the database before answering 503
FD_RESERVE = 100  # file descriptors kept for the database, Telegram and code delivery
ACCEPT_PAUSE = 0.5  # seconds without accepting when nothing can be closed to make room
AnyApplication = Application[Any, Any, Any, Any, Any, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# ---------------------------------------------------------------- who is asking


def client_address(peer: str, forwarded: str | None, trusted: Sequence[Network]) -> str:
    """The client's address for the log: the peer's own, unless the peer is a trusted
    proxy; then the nearest address in X-Forwarded-For that is not a trusted proxy (read
    from the right, as each proxy appends the one it saw). Anything that is not an address
    ends the walk."""
    client = peer
    if not _within(client, trusted):
        return client
    for hop in reversed((forwarded or "").split(",")):
        if _address(hop.strip()) is None:
            break
        client = hop.strip()
        if not _within(client, trusted):
            break
    return client


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _within(text: str, networks: Sequence[Network]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in networks)


# ---------------------------------------------------------------- endpoints


@dataclass
class Shared:
    """What the endpoints of one server share."""

    application: AnyApplication
    settings: BotSettings
    trusted: tuple[Network, ...]
    secret: bytes
    refused: BurstLog = field(default_factory=lambda: BurstLog(
        log, "webhook requests refused (403): %s secret token, the first from %s; further "
             "ones are summed up",
        "webhook requests refused (403), %s secret token: %d more in the last %.0f s"))
    # /healthz's own thread, apart from the engine's and delivery's (see `HealthEndpoint`).
    health_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        1, thread_name_prefix="webhook-health"))
    health_check: asyncio.Future[None] | None = None


class Endpoint(tornado.web.RequestHandler):
    """What every endpoint does: JSON answers, errors (404, 405, 413...) without a
    traceback, and the client's address for the log."""

    def initialize(self, shared: Shared) -> None:
        self.shared = shared

    @property
    def client(self) -> str:
        return client_address(self.request.remote_ip or "?",
                              self.request.headers.get("X-Forwarded-For"),
                              self.shared.trusted)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"ok": False, "error": self._reason.lower()})

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        if isinstance(value, tornado.web.HTTPError):  # a refusal, not a failure
            log.debug("webhook request from %s answered %d", self.client, value.status_code)
            return
        log.error("webhook request failed", exc_info=(typ, value, tb)  # type: ignore[arg-type]
                  if value is not None else None)


class NotFound(Endpoint):
    """Any other path: 404."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


@tornado.web.stream_request_body
class UpdateEndpoint(Endpoint):
    """POST: one update from Telegram. The secret is checked from the headers (`prepare`),
    so nobody without it can make the server read a body; the body is collected as it
    arrives and handled once whole."""

    SUPPORTED_METHODS = ("POST",)

    def prepare(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                   self.shared.secret):
            self.shared.refused.note("a wrong" if given else "no", self.client)
            self.set_status(403)
            self.finish({"ok": False, "error": "forbidden"})
            return
        length = self.request.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) > self.shared.settings.webhook_max_body_bytes:
            raise tornado.web.HTTPError(413)  # WEBHOOK_MAX_BODY_BYTES
        self.body = bytearray()

    def data_received(self, chunk: bytes) -> None:
        if not self._finished:
            self.body += chunk

    async def post(self) -> None:
        update = self._update()
        if update is None:
            log.warning("webhook request from %s is not an update", self.client)
            self.set_status(400)
            self.finish({"ok": False, "error": "not an update"})
            return
        application = self.shared.application
        await application.update_processor.process_update(update,
                                                          application.process_update(update))
        self.finish({"ok": True})

    def _update(self) -> Update | None:
        """The body as an update: a JSON object with a whole-number update_id."""
        try:
            data = json.loads(self.body)
        except ValueError:  # not JSON, or not UTF-8
            return None
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            return None
        try:
            return Update.de_json(data, self.shared.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class HealthEndpoint(Endpoint):
    """GET /healthz: 200 when the database answers within HEALTH_TIMEOUT, 503 otherwise.
    The check runs on a thread of its own, never waiting behind engine calls or code
    delivery; while one check runs, other requests wait for the same one."""

    SUPPORTED_METHODS = ("GET",)

    async def get(self) -> None:
        shared = self.shared
        check = shared.health_check
        if check is None:
            rt: Runtime = shared.application.bot_data["runtime"]
            check = asyncio.get_running_loop().run_in_executor(
                shared.health_pool, _ping, rt)
            shared.health_check = check
            check.add_done_callback(lambda _: setattr(shared, "health_check", None))
        try:
            await asyncio.wait_for(asyncio.shield(check), HEALTH_TIMEOUT)
        except Exception as error:
            log.warning("health check: the database does not answer: %s",
                        type(error).__name__)
            self.set_status(503)
            self.finish({"ok": False, "database": "unavailable"})
            return
        self.finish({"ok": True})


def _ping(rt: Runtime) -> None:
    rt.service.ping()


# ---------------------------------------------------------------- the bounded server


class _Watched(httputil.HTTPMessageDelegate):
    """Passes a request through, telling the server when its headers have arrived."""

    def __init__(self, inner: httputil.HTTPMessageDelegate, server: GuardedHTTPServer,
                 stream: IOStream) -> None:
        self.inner, self.server, self.stream = inner, server, stream

    def headers_received(self, start_line: httputil.RequestStartLine |
                         httputil.ResponseStartLine, headers: httputil.HTTPHeaders
                         ) -> Awaitable[None] | None:
        self.server.busy(self.stream)
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


class _Acceptor:
    """Accepts connections on one listening socket, like tornado's accept handler, but a
    failed accept (EMFILE...) neither raises (a traceback each, many a second) nor spins."""

    def __init__(self, server: GuardedHTTPServer, sock: socket.socket) -> None:
        self.server, self.sock = server, sock
        self.loop = IOLoop.current()
        self.accepting = False
        self.timer: object | None = None
        self.resume()

    def resume(self) -> None:
        self.timer = None
        if not self.accepting and self.sock.fileno() >= 0:
            self.loop.add_handler(self.sock, self.accept, IOLoop.READ)
            self.accepting = True

    def pause(self) -> None:
        if self.accepting:
            self.loop.remove_handler(self.sock)
            self.accepting = False
        if self.timer is None:
            self.timer = self.loop.call_later(ACCEPT_PAUSE, self.resume)

    def close(self) -> None:
        if self.accepting:
            self.loop.remove_handler(self.sock)
            self.accepting = False
        if self.timer is not None:
            self.loop.remove_timeout(self.timer)
            self.timer = None
        self.sock.close()

    def accept(self, fd: Any, events: int) -> None:
        for _ in range(128):
            if not self.accepting:
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                name = errno.errorcode.get(error.errno or 0, str(error.errno))
                self.server.failed.note(name)
                if error.errno in (errno.EMFILE, errno.ENFILE) and self.server.make_room():
                    continue
                self.pause()
                return
            self.server.take(connection, address)


class GuardedHTTPServer(HTTPServer):
    """tornado's HTTPServer holding at most `max_connections` connections. Those waiting
    for a request's headers (idle, or half-sent) are kept oldest first: when the cap is
    reached, or the process runs out of file descriptors, the oldest of them is closed to
    make room (a real request's headers come at once; Telegram reconnects at will). With
    none of them, a new connection is refused. Both are logged one line a burst."""

    def initialize(self, *args: Any, max_connections: int = 1000, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self._open: dict[IOStream, str] = {}  # each connection's peer address
        self._waiting: dict[IOStream, None] = {}  # insertion order: oldest first
        self._acceptors: list[_Acceptor] = []
        self.closed_for_room = BurstLog(
            log, "webhook server: %s: closing the connections that waited longest for a "
                 "request (the first from %s); further ones are summed up",
            "webhook server: %s: %d more waiting connections closed in the last %.0f s")
        self.refused = BurstLog(
            log, "webhook server: %s: new connections refused; further ones are summed up",
            "webhook server: %s: %d more connections refused in the last %.0f s")
        self.failed = BurstLog(
            log, "webhook server: accepting a connection failed (%s); further failures are "
                 "summed up", "webhook server: accepting failed (%s) %d more times in the "
                              "last %.0f s")

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def add_sockets(self, sockets: Any) -> None:
        self._acceptors += [_Acceptor(self, sock) for sock in sockets]

    def stop(self) -> None:
        acceptors, self._acceptors = self._acceptors, []
        for acceptor in acceptors:
            acceptor.close()
        super().stop()

    def take(self, connection: socket.socket, address: Any) -> None:
        """A connection just accepted: served, or refused when there is no room."""
        if len(self._open) >= self.max_connections and not self.make_room(
                "WEBHOOK_MAX_CONNECTIONS reached"):
            connection.close()
            self.refused.note("WEBHOOK_MAX_CONNECTIONS reached by requests in progress")
            return
        stream = IOStream(connection, max_buffer_size=self.max_buffer_size,
                          read_chunk_size=self.read_chunk_size)
        self._open[stream] = str(address[0]) if isinstance(address, tuple) else "?"
        self._waiting[stream] = None
        self.handle_stream(stream, address)

    def make_room(self, why: str = "out of file descriptors") -> bool:
        """Close the connection that has waited longest for a request's headers."""
        oldest = next(iter(self._waiting), None)
        if oldest is None:
            return False
        peer = self._open.get(oldest, "?")
        self._forget(oldest)
        oldest.close()
        self.closed_for_room.note(why, peer)
        return True

    def busy(self, stream: IOStream) -> None:
        self._waiting.pop(stream, None)

    def _forget(self, stream: IOStream) -> None:
        self._open.pop(stream, None)
        self._waiting.pop(stream, None)

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection
                      ) -> httputil.HTTPMessageDelegate:
        stream = cast(HTTP1ServerConnection, server_conn).stream
        if stream in self._open:  # (again) waiting for a request's headers
            self._waiting.setdefault(stream, None)
        return _Watched(super().start_request(server_conn, request_conn), self, stream)

    def on_close(self, server_conn: object) -> None:
        self._forget(cast(HTTP1ServerConnection, server_conn).stream)
        super().on_close(server_conn)


def connection_budget(wanted: int) -> int:
    """WEBHOOK_MAX_CONNECTIONS, lowered to fit the soft file-descriptor limit."""
    try:
        import resource
    except ImportError:  # not on a Unix
        return wanted
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft - FD_RESERVE >= wanted:
        return wanted
    fitting = max(16, soft - FD_RESERVE)
    log.warning("WEBHOOK_MAX_CONNECTIONS %d lowered to %d: the file-descriptor limit is %d",
                wanted, fitting, soft)
    return fitting


class WebhookServer:
    """The HTTP server in front of one application. `start()` returns the port it listens
    on (WEBHOOK_PORT, or a free one when that is 0)."""

    def __init__(self, application: AnyApplication, settings: BotSettings, *,
                 listen: str | None = None, port: int | None = None) -> None:
        self.settings = settings
        self.listen = settings.webhook_listen if listen is None else listen
        self.port = settings.webhook_port if port is None else port
        self.shared = Shared(application, settings, settings.trusted_networks,
                             settings.webhook_secret.encode())
        self._app = tornado.web.Application(
            self.routes(), log_function=lambda _: None, default_handler_class=NotFound,
            default_handler_args={"shared": self.shared})
        self._server: GuardedHTTPServer | None = None

    def routes(self) -> list[Any]:
        shared = {"shared": self.shared}
        return [
            (r"/healthz", HealthEndpoint, shared),
            (rf"{_path(self.settings.webhook_path)}/?", UpdateEndpoint, shared),
            (r"/metrics", MetricsEndpoint),  # this worker's metrics (bot.metrics)
        ]

    @property
    def server(self) -> GuardedHTTPServer | None:
        return self._server

    async def start(self) -> int:
        s = self.settings
        sockets = bind_sockets(self.port, address=self.listen)
        self._server = GuardedHTTPServer(
            self._app, max_connections=connection_budget(s.webhook_max_connections),
            idle_connection_timeout=s.webhook_idle_timeout_seconds,
            body_timeout=s.webhook_body_timeout_seconds,
            max_body_size=s.webhook_max_body_bytes,
            max_header_size=s.webhook_max_header_bytes)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("webhook server listening on %s:%s", self.listen, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
        self.shared.health_pool.shutdown(wait=False, cancel_futures=True)


def _path(path: str) -> str:
    """WEBHOOK_URL's path as a tornado route (a regular expression), without the end /."""
    return re.escape(path.rstrip("/"))


async def serve_webhook(application: AnyApplication, settings: BotSettings, *,
                        stop: asyncio.Event | None = None,
                        on_ready: Callable[[int], None] | None = None) -> None:
    """Register the webhook with Telegram and serve it until `stop` is set (by default:
    until SIGINT or SIGTERM). `on_ready` is told the port once the server listens."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
    server = WebhookServer(application, settings)
    # The lifecycle run_polling gives an application, post_* callbacks included.
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        port = await server.start()
        await application.bot.set_webhook(url=settings.webhook_url,
                                          secret_token=settings.webhook_secret,
                                          allowed_updates=ALLOWED_UPDATES)
        log.info("webhook registered; serving until stopped")
        if on_ready is not None:
            on_ready(port)
        await stop.wait()
    finally:
        await server.stop()
        if application.running:
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
