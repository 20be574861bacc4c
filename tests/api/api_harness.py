"""What the API tests build on: the real app (`api.app.create_app`) served by uvicorn on a
free port in a thread of the test, over a real database (a SQLite file, or PostgreSQL),
called with httpx over real HTTP; members enrolled through Data Import; tills made through
the engine, as `loyalty-bot api-client add` does.

Codes go to a `RecordingSender` (the machine's edge); the engine's clock is the test's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from api.app import create_app, server_options
from api.settings import ApiSettings, load_api_settings
from bot.api_server import listening_socket
from core.delivery import CodeSender, RecordingSender
from core.service import MemberView, PointsService
from core.tills import md5hex
from tests.support.clock import Clock
from tests.support.members import member_csv

STRONG_KEY = "an-api-test-key-that-is-long-enough-0123456789"
START_TIMEOUT = 30.0  # seconds a server may take to start (a migration on PostgreSQL)


@contextmanager
def serving(settings: ApiSettings, service: PointsService,
            sweep_every: float = 15.0) -> Iterator[str]:
    """The app on `service`, served by uvicorn in a thread on a free port; its base URL.
    Stopped (and waited for) afterwards."""
    sock = listening_socket("127.0.0.1", 0)  # as `api` serves: TCP_NODELAY on each connection
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, service, sweep_every=sweep_every),
                            log_level="warning",
                            lifespan="on", **server_options(settings))  # as `api` serves
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


@dataclass
class Api:
    """One test's API: the engine (`service`), the served app (`url`), the code sender,
    the clock, and a client per till."""

    url: str
    service: PointsService
    sender: RecordingSender
    clock: Clock
    clients: list[httpx.Client] = field(default_factory=list)
    _mobiles: int = 0

    def client(self, till: str | None = None, password: str | None = None, *,
               raw_secret: str | None = None) -> httpx.Client:
        """A client authenticating as the platform's do (the MD5 hex of the password);
        `raw_secret`: send exactly that instead."""
        auth = None
        if till is not None:
            auth = (till, raw_secret if raw_secret is not None else md5hex(password or ""))
        client = httpx.Client(base_url=self.url, auth=auth, timeout=30)
        self.clients.append(client)
        return client

    def till(self, name: str = "till-1", *, skip: bool = False) -> httpx.Client:
        """A new till, and a client logged in as it."""
        made = self.service.add_till(name, skip_validation_allowed=skip)
        return self.client(name, made.password)

    def member(self, *, points: int = 5000, mobile: str | None = None,
               **row: Any) -> MemberView:
        """Enrol a member through Data Import; a fresh mobile number unless given."""
        if mobile is None and "email" not in row and "external_id" not in row:
            self._mobiles += 1
            mobile = f"+9198{self._mobiles:08d}"
        result = self.service.import_csv(member_csv([{
            "mobile": mobile, "name": "Test Member", "type": "loyalty",
            "fraud_status": "NONE", "points": points, **row}]),
            filename=f"member-{self._mobiles}-{len(row)}.csv")
        assert result.rows == 1
        found = self.service.member(mobile or row.get("email") or row["external_id"])
        return found

    def close(self) -> None:
        for client in self.clients:
            client.close()


@contextmanager
def api(url: str, *, senders: list[CodeSender] | None = None, sweep_every: float = 15.0,
        **overrides: Any) -> Iterator[Api]:
    """An `Api` on database `url` with settings `overrides` (lower case)."""
    clock = Clock()
    sender = RecordingSender("sms")
    settings = load_api_settings(database_url=url, secret_key=STRONG_KEY, **overrides)
    service = PointsService(settings, senders=[sender] if senders is None else senders,
                            clock=clock)
    try:
        with serving(settings, service, sweep_every) as base:
            served = Api(base, service, sender, clock)
            try:
                yield served
            finally:
                served.close()
    finally:
        service.close()


def status(body: dict[str, Any]) -> dict[str, Any]:
    """The request-level status of an envelope."""
    result: dict[str, Any] = body["response"]["status"]
    return result
