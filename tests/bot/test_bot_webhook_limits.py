"""The webhook server cannot be worn out without the secret: the secret is checked from the
headers before any body is read, hundreds of idle or half-sent connections delay no real
update, other methods and bodies that are not updates get a plain 4xx (no traceback), and
X-Forwarded-For names the client only behind a trusted proxy. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import resource
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from bot.settings import load_bot_settings
from bot.webhook import client_address, connection_budget
from core.status import PointsError
from tests.bot.bot_harness import World, webhook_served

SECRET = "s3cret-Token_1"
PATH = "/telegram/hook"
WEBHOOK = {"webhook_url": f"https://bot.example.com{PATH}", "webhook_secret": SECRET,
           "webhook_listen": "127.0.0.1", "webhook_port": 0,
           "secret_key": "a-real-secret-for-production"}
RIGHT = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
HELD = 300
Serve = Callable[..., Awaitable[int]]


@pytest.fixture
async def serve(world: World) -> AsyncIterator[Serve]:
    """Starts the bot's webhook server with settings `overrides`; answers its port."""
    async with contextlib.AsyncExitStack() as servers:
        async def start(**overrides: Any) -> int:
            return await servers.enter_async_context(
                webhook_served(world, {**WEBHOOK, **overrides}, WEBHOOK))

        yield start


def enough_file_descriptors(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to `needed` if it is lower (both ends of every
    held connection live in this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes this connection within `within` seconds."""
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except ConnectionError:  # reset: closed too
        return True
    except TimeoutError:
        return False


async def test_a_request_without_the_secret_is_refused_before_its_body_is_sent(
        serve: Serve) -> None:
    port = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST {PATH} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
                     "Content-Length: 500000\r\n\r\n".encode())
        await writer.drain()
        # Not one byte of the body: the answer comes from the headers alone.
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 403"), status
    finally:
        writer.close()


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe{}", b"[1, 2]", b'"an update"',
                                  b"null", b"42", b"{}", b'{"update_id": "7"}',
                                  b'{"update_id": 1.5}', b'{"update_id": true}',
                                  b'{"update_id": 7, "message": []}'])
async def test_a_body_that_is_not_an_update_gets_400(serve: Serve, body: bytes,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    port = await serve()
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        answer = await client.post(PATH, content=body, headers=RIGHT)
    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "error": "not an update"}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_other_methods_get_405_without_a_traceback(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    port = await serve()
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
            answer = await client.request(method, PATH, headers=RIGHT)
            assert answer.status_code == 405, method
        answer = await client.post("/healthz", json={})
        assert answer.status_code == 405
        answer = await client.get("/elsewhere")
        assert answer.status_code == 404
        assert answer.json() == {"ok": False, "error": "not found"}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_body_over_the_limit_gets_413(serve: Serve) -> None:
    port = await serve(webhook_max_body_bytes=4096)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        answer = await client.post(PATH, content=b"x" * 5000, headers=RIGHT)
        assert answer.status_code == 413
        answer = await client.post(PATH, content=b"x" * 5000)  # the secret comes first
        assert answer.status_code == 403


@pytest.mark.parametrize(("trusted", "forwarded", "logged"), [
    ("", "203.0.113.7", "127.0.0.1"),  # nobody trusted: the header is ignored
    ("10.0.0.0/8", "203.0.113.7", "127.0.0.1"),  # the peer is not a trusted proxy
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),
    ("127.0.0.0/8,10.0.0.0/8", "198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7"),
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
])
async def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(
        serve: Serve, caplog: pytest.LogCaptureFixture, trusted: str, forwarded: str,
        logged: str) -> None:
    port = await serve(trusted_proxies=trusted)
    caplog.set_level(logging.INFO, logger="bot.webhook")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        answer = await client.post(PATH, json={}, headers={"X-Forwarded-For": forwarded})
    assert answer.status_code == 403
    [line] = [r.getMessage() for r in caplog.records if "refused (403)" in r.getMessage()]
    assert f"the first from {logged};" in line


def test_client_address_walks_x_forwarded_for_from_the_right() -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert client_address("10.0.0.2", "1.2.3.4, 10.0.0.9", proxies) == "1.2.3.4"
    assert client_address("10.0.0.2", "5.6.7.8, 1.2.3.4", proxies) == "1.2.3.4"
    assert client_address("::1", "2001:db8::5", proxies) == "2001:db8::5"
    assert client_address("10.0.0.2", None, proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", "10.0.0.7", proxies) == "10.0.0.7"
    assert client_address("1.2.3.4", "5.6.7.8", proxies) == "1.2.3.4"
    assert client_address("10.0.0.2", "5.6.7.8, junk\n", proxies) == "10.0.0.2"


async def test_hundreds_of_idle_and_half_sent_connections_delay_no_real_update(
        serve: Serve, world: World) -> None:
    """300 connections that send nothing or half their headers, against a server that
    holds at most 200: a real update is answered at once (the longest-waiting connection
    makes room), and the held ones are closed when their idle timeout runs out."""
    enough_file_descriptors(4 * HELD)
    port = await serve(webhook_max_connections=200, webhook_idle_timeout_seconds=2)
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for n in range(HELD):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if n % 2:  # half-sent: a request line and part of the headers, then nothing
                writer.write(f"POST {PATH} HTTP/1.1\r\nHost: bot\r\nContent-Le".encode())
                await writer.drain()
            held.append((reader, writer))
        user = world.stand_in.user(1001, "Asha")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     timeout=10) as client:
            for n in range(3):
                answer = await asyncio.wait_for(
                    client.post(PATH, json=user.says(f"/help {n}"), headers=RIGHT), 5)
                assert answer.status_code == 200
        assert len(world.stand_in.messages(1001)) == 3
        # The 100 over the limit were closed at once, the oldest first ...
        early = await asyncio.gather(*(closed_by_server(r, 1) for r, _ in held[:100]))
        assert all(early)
        # ... and every other one once its idle timeout (2 s) ran out.
        late = await asyncio.gather(*(closed_by_server(r, 10) for r, _ in held[100:]))
        assert all(late)
    finally:
        for _, writer in held:
            with contextlib.suppress(Exception):
                writer.close()


PRODUCTION: dict[str, Any] = {"telegram_bot_token": "1:x", "otp_channel": "chat", **WEBHOOK}


@pytest.mark.parametrize(("values", "code", "names"), [
    ({"trusted_proxies": "10.0.0.0/8, proxy.example.com"}, 888, "TRUSTED_PROXIES"),
    ({"trusted_proxies": "10.0.0.0/33"}, 888, "TRUSTED_PROXIES"),
    ({"webhook_idle_timeout_seconds": 0}, 899, "WEBHOOK_IDLE_TIMEOUT_SECONDS"),
    ({"webhook_body_timeout_seconds": -1}, 899, "WEBHOOK_BODY_TIMEOUT_SECONDS"),
    ({"webhook_max_connections": 0}, 899, "WEBHOOK_MAX_CONNECTIONS"),
    ({"webhook_max_body_bytes": 100}, 899, "WEBHOOK_MAX_BODY_BYTES"),
    ({"webhook_max_header_bytes": 10 << 20}, 899, "WEBHOOK_MAX_HEADER_BYTES"),
    ({"chat_queue_max": 0}, 899, "CHAT_QUEUE_MAX"),
    ({"bot_engine_threads": 0}, 899, "BOT_ENGINE_THREADS"),
    ({"bot_delivery_threads": 0}, 899, "BOT_DELIVERY_THREADS"),
    ({"webhook_max_connections": "many"}, 888, "WEBHOOK_MAX_CONNECTIONS"),
])
def test_limits_that_cannot_work_are_refused(values: dict[str, Any], code: int,
                                             names: str) -> None:
    with pytest.raises(PointsError) as refused:
        load_bot_settings(**{**PRODUCTION, **values})
    assert refused.value.code == code
    assert names in refused.value.detail


def test_the_limits_have_sane_defaults() -> None:
    settings = load_bot_settings(**PRODUCTION, trusted_proxies=" 10.0.0.0/8 , ::1 ")
    assert settings.trusted_proxies == "10.0.0.0/8,::1"
    assert settings.webhook_max_body_bytes == 1 << 20  # Telegram's updates fit easily
    assert settings.webhook_idle_timeout_seconds == 30
    assert settings.webhook_body_timeout_seconds == 10
    assert settings.chat_queue_max == 10


@pytest.mark.parametrize(("soft", "budget"), [(256, 156), (100_000, 1000), (50, 16)])
def test_the_connection_cap_fits_the_file_descriptor_limit(
        monkeypatch: pytest.MonkeyPatch, soft: int, budget: int) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, 1 << 20))
    assert connection_budget(1000) == budget
