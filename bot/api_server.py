"""`loyalty-bot api`: the HTTP API (`api.app`) served by uvicorn, with the code channels
the bot has (OTP_CHANNEL's senders: SMS, email).

This is where the two adapters meet: the API may not import the bot, so the senders are
made here and handed to `api.app.create_app`. Every uvicorn worker process builds its own
app through `app_factory` from the same settings (the environment and `.env`), each with
its own engine; several workers share one PostgreSQL database, as the bot's do.
"""

from __future__ import annotations

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


def serve(settings: ServeSettings) -> None:
    """Serve the API until stopped (Ctrl-C, SIGTERM), bounded (`api.app.server_options`,
    bodies by `api.app.BoundedBody`)."""
    import uvicorn

    options: dict[str, Any] = {"host": settings.api_listen, "port": settings.api_port,
                               "log_level": "info", **server_options(settings)}
    if settings.api_workers > 1:
        uvicorn.run(FACTORY, factory=True, workers=settings.api_workers, **options)
    else:
        uvicorn.run(build(settings), **options)


__all__ = ["ApiSettings", "ServeSettings", "app_factory", "build", "load_serve_settings",
           "serve"]
