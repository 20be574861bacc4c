"""Row 1, bot overhead: balance checks from 200 simulated members through the full bot
stack against a minimal python-telegram-bot echo bot on the same Bot API stand-in.

Not measured yet: it needs the bot (`bot.app.build_application`, `bot.standin`).
"""

from __future__ import annotations

import importlib.util

from benchmarks.common import Goal, Section, not_measured

GOAL = Goal(">=", 0.8)


def run(quick: bool) -> Section:
    del quick
    if importlib.util.find_spec("bot.app") is None or importlib.util.find_spec(
            "bot.standin") is None:
        return Section([not_measured("1", "bot overhead", GOAL, "bot not available")],
                       ["row 1 not measured: the bot (bot/app.py, bot/standin.py) is not "
                        "available yet"])
    return Section([not_measured("1", "bot overhead", GOAL, "bot benchmark not written yet")])
