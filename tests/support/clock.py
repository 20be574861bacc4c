"""A clock the test moves by hand: what the engine and the bot take as now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


class Clock:
    """Now, as the engine sees it: `clock()` is now; `advance()` moves it forward."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
