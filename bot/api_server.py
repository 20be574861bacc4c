"""`loyalty-bot api`: the HTTP API (`api.app`) served by uvicorn, with the code channels
the bot has (OTP_CHANNEL's senders: SMS, email).

This is where the two adapters meet: the API may not import the bot, so the senders are
made here and handed to `api.app.create_app`. Every uvicorn worker process builds its own
app through `app_factory` from the same settings (the environment and `.env`), each with
its own engine; several workers share one PostgreSQL database, as the bot's do.

The listening socket is made here (`listening_socket`), not by uvicorn: uvicorn's own
`bind_socket`, which it uses with several workers, makes it without IPPROTO_TCP, and asyncio
sets TCP_NODELAY on accepted connections only when their socket says it is TCP; without it
every kept-alive answer after the first waits some 40 ms for the client's delayed ACK
(Kludex/uvicorn#3149).
"""

from __future__ import annotations

import socket
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError

from api.app import create_app, server_options
from api.settings import ApiSettings
from bot.senders import make_senders
from bot.settings import BotSettings
from core.settings import require_strong_key
from core.status import PointsError

FACTORY = "bot.api_server:app_factory"


class ServeSettings(BotSettings, ApiSettings):
    """The API's settings and the bot's code channels, read together."""


def load_serve_settings(**overrides: Any) -> ServeSettings:
    """The settings of `loyalty-bot api`: 888 for a bad value, 899 for a bad combination,
    a weak SECRET_KEY, or a code channel the API cannot use (chat: there is no chat)."""
    try:
        serve = ServeSettings(**overrides)
    except ValidationError as error:
        raise PointsError(888, "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors())) from None
    problems = serve.problems()  # the bot's, the API's and the engine's
    if "chat" in serve.channels:
        problems.append("OTP_CHANNEL chat cannot be used by the API (there is no chat to "
                        "send the code to): use sms, email or both")
    if problems:
        raise PointsError(899, "; ".join(dict.fromkeys(problems)))
    require_strong_key(serve)
    return serve


def build(settings: ServeSettings) -> FastAPI:
    return create_app(settings, senders=make_senders(settings))


def app_factory() -> FastAPI:
    """What each uvicorn worker calls: the app on the settings of the environment."""
    return build(load_serve_settings())


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on `host`:`port` (IPv6 when `host` has a colon), made with
    IPPROTO_TCP so that asyncio sets TCP_NODELAY on every connection it accepts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)  # the workers are spawned with it
    except BaseException:
        sock.close()
        raise
    return sock


def serve(settings: ServeSettings) -> None:
    """Serve the API until stopped (Ctrl-C, SIGTERM), bounded (`api.app.server_options`,
    bodies by `api.app.BoundedBody`), on a socket of our own (`listening_socket`) handed
    to uvicorn, or to its supervisor of several worker processes."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    options: dict[str, Any] = {"host": settings.api_listen, "port": settings.api_port,
                               "log_level": "info", **server_options(settings)}
    sock = listening_socket(settings.api_listen, settings.api_port)
    try:
        if settings.api_workers > 1:
            config = uvicorn.Config(FACTORY, factory=True, workers=settings.api_workers,
                                    **options)
            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(uvicorn.Config(build(settings), **options)).run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["ApiSettings", "ServeSettings", "app_factory", "build", "load_serve_settings",
           "serve"]
