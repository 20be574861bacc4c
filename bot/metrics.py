"""What the bot is doing, as Prometheus metrics: updates, replies, redemptions, outcomes by
status code, validation codes by channel, engine latency, database retries, chat queues.

Each process keeps its own counters (prometheus_client's default registry) and serves
them: `GET /metrics` on the webhook server (`MetricsEndpoint`), or on METRICS_PORT in long
polling (`start_metrics_server`). Labels carry kinds, operations, channels and status
codes, never a member's or a chat's identifier. The engine (`core`) knows nothing of this
module: the bot times and counts its calls (`observe_engine_call`), wraps the code senders
(`counted`), and listens to the database's retries (`watch_database`). Every metric is
listed in the README ("Metrics").
"""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar, cast
from wsgiref.simple_server import WSGIServer

import tornado.web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from telegram import Update

from bot import logsafe
from core.chat_io import Outcome
from core.delivery import CodeMessage, CodeSender
from core.service import PointsService, RedemptionResult
from core.status import PointsError, Status

log = logging.getLogger(__name__)
# How the bot runs an engine call: `bot.runtime.core(call, *args, **kwargs)`.
Run = TypeVar("Run", bound=Callable[..., Awaitable[Any]])
disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                    30)

UPDATES = Counter("loyalty_updates", "Updates handled, by kind", ["kind"])
UPDATE_SECONDS = Histogram("loyalty_update_seconds",
                           "Time from an update's arrival to its end (waiting for its chat "
                           "included)", ["kind"], buckets=_LATENCY_BUCKETS)
REPLIES = Counter("loyalty_replies_sent", "Messages the bot sent in reply")
REPLY_FAILURES = Counter("loyalty_reply_failures",
                         "Replies not delivered (after retries) or refused by Telegram",
                         ["reason"])
REDEMPTIONS = Counter("loyalty_redemptions", "Redemptions made (a retry answered from the "
                                             "first result is not counted)")
REDEEMED_POINTS = Counter("loyalty_redeemed_points", "Points redeemed")
OUTCOMES = Counter("loyalty_outcomes", "Engine answers by status code (800 success, the "
                                       "others refusals)", ["operation", "code"])
ENGINE_SECONDS = Histogram("loyalty_engine_call_seconds", "Engine call latency, by operation",
                           ["operation"], buckets=_LATENCY_BUCKETS)
CODES_SENT = Counter("loyalty_validation_codes_sent", "Validation codes delivered, by channel",
                     ["channel"])
DELIVERY_FAILURES = Counter("loyalty_validation_code_delivery_failures",
                            "Validation code deliveries that failed, by channel", ["channel"])
SMS_RETRIES = Counter("loyalty_sms_retries", "SMS requests sent again after a 5xx or a "
                                             "timeout, by provider", ["provider"])
DB_RETRIES = Counter("loyalty_db_retries", "Units of work run again, by reason (transient "
                                           "failure, unique key taken)", ["reason"])
DB_TRANSIENT = Counter("loyalty_db_transient_failures", "Transient database failures (locked, "
                                                        "serialization, lost connection)")


# ---------------------------------------------------------------- updates


def update_kind(update: object) -> str:
    """A short name for what an update is (a label: never who sent it)."""
    if not isinstance(update, Update):
        return "other"
    if update.callback_query is not None:
        return "button"
    message = update.message
    if message is None:
        return "other"
    if message.contact is not None:
        return "contact"
    if message.text is not None:
        return "command" if message.text.startswith("/") else "text"
    return "other_message"


@contextmanager
def observe_update(update: object, chat: int | None) -> Iterator[None]:
    """Around one update's processing: counts and times it, and logs one line saying how
    it ended (its id, the chat as a tag, the last status code, the duration). Everything
    logged inside carries the update id and the chat tag (bot.logsafe)."""
    kind = update_kind(update)
    update_id = update.update_id if isinstance(update, Update) else None
    trace = logsafe.UpdateTrace(update_id, logsafe.chat_tag(chat) if chat is not None else None)
    token = logsafe.TRACE.set(trace)
    started = time.perf_counter()
    try:
        yield
    finally:
        duration = time.perf_counter() - started
        UPDATES.labels(kind).inc()
        UPDATE_SECONDS.labels(kind).observe(duration)
        log.info("update %s handled (%s, code %s) in %.1f ms", update_id, kind,
                 trace.code if trace.code is not None else "-", duration * 1000,
                 extra={"event": "update handled", "kind": kind, "code": trace.code,
                        "duration_ms": round(duration * 1000, 1)})
        logsafe.TRACE.reset(token)


# ---------------------------------------------------------------- engine calls


def observe_engine_call(operation: str, seconds: float, result: object = None,
                        error: BaseException | None = None) -> None:
    """One engine call ended: its latency, its status code, a redemption it made. A chat
    outcome is labelled by the transition that decided it."""
    code: int | None = None
    if isinstance(result, Outcome):  # the chat use case: what its replies carry
        operation = result.transition or operation
        carried = [v for reply in result.replies for v in reply.values.values()
                   if isinstance(v, PointsError) or isinstance(getattr(v, "status", None),
                                                                 Status)]
        result = carried[0] if carried else None
    ENGINE_SECONDS.labels(operation).observe(seconds)
    if isinstance(error, PointsError):
        code = error.code
    elif isinstance(result, PointsError):
        code = result.code
    elif isinstance(getattr(result, "status", None), Status):
        code = result.status.code  # type: ignore[attr-defined]
    if code is not None:
        OUTCOMES.labels(operation, str(code)).inc()
        trace = logsafe.TRACE.get()
        if trace is not None:
            trace.code = code
    if isinstance(result, RedemptionResult) and not result.replayed:
        REDEMPTIONS.inc()
        REDEEMED_POINTS.inc(result.points_redeemed)


def observed(run: Run) -> Run:
    """Decorates the bot's way of running an engine call (`bot.runtime.core`): each call
    is timed, and its status code counted, under the name of the engine's method."""

    @functools.wraps(run)
    async def timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        operation = getattr(call, "__name__", "other")
        started = time.perf_counter()
        try:
            result = await run(call, *args, **kwargs)
        except BaseException as error:
            observe_engine_call(operation, time.perf_counter() - started, error=error)
            raise
        observe_engine_call(operation, time.perf_counter() - started, result)
        return result

    return cast(Run, timed)


def reply_sent() -> None:
    REPLIES.inc()


def reply_failed(reason: str) -> None:
    REPLY_FAILURES.labels(reason).inc()


# ---------------------------------------------------------------- code delivery


class CountedSender:
    """A code sender whose deliveries and failures are counted by channel."""

    def __init__(self, sender: CodeSender) -> None:
        self.sender = sender
        self.channel = sender.channel

    def send(self, message: CodeMessage) -> str:
        try:
            where = self.sender.send(message)
        except Exception:  # DeliveryFailed, or a sender's bug: the engine logs it
            DELIVERY_FAILURES.labels(self.channel).inc()
            raise
        CODES_SENT.labels(self.channel).inc()
        return where


def counted(sender: CodeSender) -> CodeSender:
    return sender if isinstance(sender, CountedSender) else CountedSender(sender)


def sms_retry(provider: str) -> None:
    SMS_RETRIES.labels(provider).inc()


# ---------------------------------------------------------------- the database


def _database_event(event: str, reason: str) -> None:
    if reason == "transient":
        DB_TRANSIENT.inc()
    if event == "retry":
        DB_RETRIES.labels(reason).inc()


def watch_database(service: PointsService) -> None:
    """Count the engine's database retries and transient failures (once, however often it
    is called)."""
    service.watch(_database_event)


# ---------------------------------------------------------------- per-chat queues


class Queues(Protocol):
    def queue_depth(self) -> tuple[int, int]:
        """(updates waiting behind another update of their chat, chats being served)"""
        ...


class _QueueCollector(Collector):
    """Reads the per-chat queues of every live update processor when scraped."""

    def __init__(self) -> None:
        self.processors: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        waiting = busy = 0
        for processor in list(self.processors):
            queued, chats = processor.queue_depth()
            waiting += queued
            busy += chats
        yield GaugeMetricFamily("loyalty_chat_queue_depth",
                                "Updates waiting for an earlier update of their chat",
                                value=waiting)
        yield GaugeMetricFamily("loyalty_chats_in_progress",
                                "Chats with an update being handled or waiting", value=busy)


_QUEUES = _QueueCollector()
REGISTRY.register(_QUEUES)


def watch_queues(processor: Queues) -> None:
    _QUEUES.processors.add(processor)


# ---------------------------------------------------------------- serving


def render() -> bytes:
    """Every metric of this process in Prometheus' text format."""
    return generate_latest(REGISTRY)


class MetricsEndpoint(tornado.web.RequestHandler):
    """GET /metrics on the webhook server: this worker's metrics."""

    SUPPORTED_METHODS = ("GET",)

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(render())


def start_metrics_server(listen: str, port: int) -> WSGIServer:
    """Serve GET /metrics on `listen:port` from a background thread (long polling's
    METRICS_PORT) until the server's `shutdown()`."""
    server, _thread = start_http_server(port, addr=listen)
    log.info("metrics served on http://%s:%s/metrics", listen, server.server_address[1])
    return server


__all__ = ["MetricsEndpoint", "counted", "observe_engine_call", "observe_update", "observed",
           "render",
           "reply_failed", "reply_sent", "sms_retry", "start_metrics_server",
           "update_kind", "watch_database", "watch_queues"]
