"""The engine's numeric limits, in one place: how many points one operation may issue or
redeem, how many a balance may hold, and how much money one amount or a lifetime total may
be. Both databases store what these allow (points are BIGINT, money NUMERIC(20, 2)), so an
amount past a limit is refused with the same answer on SQLite and PostgreSQL instead of
overflowing a column on one of them.

Code reads these as `limits.NAME` at the moment it checks, not copied at import time.
"""

from __future__ import annotations

from decimal import Decimal

# The most points one operation may issue (an earning, a goodwill, an import row's current
# or lifetime points) or redeem (REDEMPTION_MAX_POINTS may not be set above it).
MAX_OPERATION_POINTS = 1_000_000_000
# The most points a member's current or lifetime points may reach: an issuing operation
# that would take either past it is refused. Far below BIGINT's 9.2 * 10^18, so a sum of a
# member's ledger entries never overflows either database.
MAX_BALANCE_POINTS = 1_000_000_000_000_000
# Points typed in a request are read up to this (15 digits); a larger number is not a
# number of points at all (801). Between MAX_OPERATION_POINTS and this, a redemption gets
# the rule's own answer (819 over the maximum), a revert or reversal its mismatch code.
MAX_POINTS_INPUT = 1_000_000_000_000
# One amount of money (a purchase, an import row's lifetime purchases) is below this, with
# at most two decimals.
MAX_OPERATION_MONEY = Decimal(10) ** 12
# A member's lifetime purchases stay below this: 15 significant digits with the cents, the
# most SQLite (which keeps NUMERIC as a double) stores exactly. NUMERIC(20, 2) on
# PostgreSQL holds more; the limit keeps both databases giving the same answer.
MAX_BALANCE_MONEY = Decimal(10) ** 13


def points_over_balance(current: int, lifetime: int) -> str | None:
    """Why a balance of `current` and `lifetime` points may not be held, or None."""
    for what, value in (("current", current), ("lifetime", lifetime)):
        if value > MAX_BALANCE_POINTS:
            return (f"{what} points would be {value:,}, above the most a balance may hold "
                    f"({MAX_BALANCE_POINTS:,})")
    return None


def money_over_balance(lifetime_purchases: Decimal) -> str | None:
    """Why lifetime purchases of `lifetime_purchases` may not be held, or None."""
    if lifetime_purchases >= MAX_BALANCE_MONEY:
        return (f"lifetime purchases would be {lifetime_purchases:,}, not below the most "
                f"they may reach ({MAX_BALANCE_MONEY:,})")
    return None
