"""The webhook server: Telegram POSTs each update to WEBHOOK_URL's path; anything without
the right `X-Telegram-Bot-Api-Secret-Token` is refused with 403 (compared in constant
time) and never reaches the bot. `GET /healthz` answers 200 while the database answers.

python-telegram-bot's own webhook server compares the secret with `!=`, logs a wrong one,
and has no health check, so this is a small tornado server of our own (tornado comes with
the `webhooks` extra). An update is processed before its request is answered, through the
application's update processor (each chat in order), so Telegram redelivers it if the
worker dies first; the database claim of each update makes a redelivery harmless. Several
workers on one database can serve one bot behind a load balancer: every worker registers
the same webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import signal
from collections.abc import Callable
from typing import Any

import tornado.web
from sqlalchemy import text
from telegram import Update
from telegram.ext import Application
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.app import ALLOWED_UPDATES
from bot.runtime import Runtime
from bot.settings import BotSettings

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)
MAX_BODY = 1 << 20  # an update is a few kilobytes
AnyApplication = Application[Any, Any, Any, Any, Any, Any]


class UpdateEndpoint(tornado.web.RequestHandler):
    """POST: one update from Telegram."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, bot_application: AnyApplication, secret: str) -> None:
        self.bot_application = bot_application
        self.secret = secret.encode()

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.secret):
            log.warning("webhook request from %s refused: %s secret token",
                        self.request.remote_ip, "wrong" if given else "no")
            self.set_status(403)
            self.finish({"ok": False, "error": "forbidden"})
            return
        bot = self.bot_application.bot
        try:
            update = Update.de_json(json.loads(self.request.body), bot)
        except (ValueError, TypeError, KeyError):
            log.warning("webhook request from %s is not an update", self.request.remote_ip)
            self.set_status(400)
            self.finish({"ok": False, "error": "not an update"})
            return
        processor = self.bot_application.update_processor
        await processor.process_update(update, self.bot_application.process_update(update))
        self.finish({"ok": True})

    def log_exception(self, *args: Any) -> None:
        log.error("webhook request failed", exc_info=args[1] if len(args) > 1 else None)


class HealthEndpoint(tornado.web.RequestHandler):
    """GET /healthz: 200 when the database answers, 503 otherwise."""

    SUPPORTED_METHODS = ("GET",)

    def initialize(self, bot_application: AnyApplication) -> None:
        self.bot_application = bot_application

    async def get(self) -> None:
        rt: Runtime = self.bot_application.bot_data["runtime"]
        try:
            await asyncio.to_thread(rt.service.db.run,
                                    lambda s: s.connection().execute(text("SELECT 1")).all(),
                                    write=False)
        except Exception as error:
            log.warning("health check: the database does not answer: %s",
                        type(error).__name__)
            self.set_status(503)
            self.finish({"ok": False, "database": "unavailable"})
            return
        self.finish({"ok": True})


class WebhookServer:
    """The HTTP server in front of one application. `start()` returns the port it listens
    on (WEBHOOK_PORT, or a free one when that is 0)."""

    def __init__(self, application: AnyApplication, settings: BotSettings, *,
                 listen: str | None = None, port: int | None = None) -> None:
        self.listen = settings.webhook_listen if listen is None else listen
        self.port = settings.webhook_port if port is None else port
        routes: list[Any] = [
            (r"/healthz", HealthEndpoint, {"bot_application": application}),
            (rf"{_path(settings.webhook_path)}/?", UpdateEndpoint,
             {"bot_application": application, "secret": settings.webhook_secret}),
        ]
        self._app = tornado.web.Application(routes, log_function=lambda _: None)
        self._server: HTTPServer | None = None

    async def start(self) -> int:
        sockets = bind_sockets(self.port, address=self.listen)
        self._server = HTTPServer(self._app, max_body_size=MAX_BODY, xheaders=True)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("webhook server listening on %s:%s", self.listen, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None


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
