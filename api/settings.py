"""The HTTP API's settings: the engine's settings plus where the API listens, how many
workers serve it, and the server's bounds (as the bot's hardened webhook has them).

`load_api_settings()` is the only way in, like `core.settings.load_settings()`: a value
that does not parse is refused with 888, a combination that cannot work with 899, each
with a message naming the setting. The code channels (OTP_CHANNEL, SMTP_*, SMS_*) are the
bot's settings: `loyalty-bot api` reads them there and hands the senders to the app.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import field_validator

from core.settings import Settings, checked, read


class ApiSettings(Settings):
    """Settings of `loyalty-bot api`. Field names are the environment variable names."""

    api_listen: str = "127.0.0.1"  # behind a TLS proxy on the same machine
    api_port: int = 8080
    # Worker processes (uvicorn's); more than one only on PostgreSQL, as for the bot.
    api_workers: int = 1
    # Bounds: a kept-alive connection may wait this long for its next request; a request's
    # body must arrive within API_BODY_TIMEOUT_SECONDS and be at most API_MAX_BODY_BYTES;
    # headers at most API_MAX_HEADER_BYTES; at most API_MAX_CONNECTIONS connections and
    # requests at once per worker (beyond it: 503).
    api_idle_timeout_seconds: float = 30
    api_body_timeout_seconds: float = 10
    api_max_body_bytes: int = 64 << 10  # a redemption is a few hundred bytes
    api_max_header_bytes: int = 16 << 10
    api_max_connections: int = 1000
    # Proxies whose X-Forwarded-For names the client (addresses, comma-separated): the
    # address failed logins are counted against. Anyone else's header is ignored.
    api_trusted_proxies: str = ""

    @field_validator("api_trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        for part in parts:
            try:
                ipaddress.ip_address(part)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address") from None
        return ",".join(parts)

    @property
    def on_postgres(self) -> bool:
        return self.database_url.strip().lower().startswith(("postgresql", "postgres:"))

    def problems(self) -> list[str]:
        found = super().problems()
        if not 0 <= self.api_port <= 65535:
            found.append(f"API_PORT must be a port number (it is {self.api_port})")
        positive = {"API_WORKERS": self.api_workers,
                    "API_IDLE_TIMEOUT_SECONDS": self.api_idle_timeout_seconds,
                    "API_BODY_TIMEOUT_SECONDS": self.api_body_timeout_seconds,
                    "API_MAX_CONNECTIONS": self.api_max_connections}
        found += [f"{name} must be more than 0 (it is {value})"
                  for name, value in positive.items() if value <= 0]
        if self.api_workers > 1 and not self.on_postgres:
            found.append(f"API_WORKERS above 1 needs DATABASE_URL on PostgreSQL (it is "
                         f"{self.api_workers}; SQLite has one writer at a time)")
        if not 1 << 10 <= self.api_max_body_bytes <= 16 << 20:
            found.append("API_MAX_BODY_BYTES must be between 1024 and 16777216 (it is "
                         f"{self.api_max_body_bytes}; a redemption is a few hundred bytes)")
        if not 1 << 10 <= self.api_max_header_bytes <= 1 << 20:
            found.append("API_MAX_HEADER_BYTES must be between 1024 and 1048576 (it is "
                         f"{self.api_max_header_bytes})")
        return found


def load_api_settings(**overrides: Any) -> ApiSettings:
    """Read and check the API's settings; 888 for a bad value, 899 for a bad combination."""
    return checked(read(ApiSettings, **overrides))
