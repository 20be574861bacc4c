"""One log line for a burst of like events, not one each.

A flood (connections refused while out of file descriptors, a chat sending hundreds of
updates) must not flood the log too. `BurstLog.note(key)` logs the first event of a burst
at once; the ones that follow are only counted, and every `interval` seconds while they
keep coming one line sums them up. A burst ends with an interval without events.
Runs on the event loop (the summary is a `call_later`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable


class BurstLog:
    """`first` is logged when a burst of `key` starts, with the key and the first event's
    `args`; `more` once an interval with the key, the count of the events since and the
    interval. Both are %-format strings."""

    def __init__(self, logger: logging.Logger, first: str, more: str, *,
                 interval: float = 10.0, level: int = logging.WARNING) -> None:
        self.logger = logger
        self.first = first
        self.more = more
        self.interval = interval
        self.level = level
        self._counts: dict[Hashable, int] = {}
        self.total = 0  # every event noted, for tests and drills

    def note(self, key: Hashable = "", *args: object) -> None:
        self.total += 1
        if key in self._counts:
            self._counts[key] += 1
            return
        self.logger.log(self.level, self.first, key, *args)
        self._counts[key] = 0
        self._later(key)

    def _later(self, key: Hashable) -> None:
        try:
            asyncio.get_running_loop().call_later(self.interval, self._summary, key)
        except RuntimeError:  # no loop: the next event starts a new burst
            del self._counts[key]

    def _summary(self, key: Hashable) -> None:
        count = self._counts.pop(key, 0)
        if count:  # still going: sum up, and look again after another interval
            self.logger.log(self.level, self.more, key, count, self.interval)
            self._counts[key] = 0
            self._later(key)
