"""Text as people and scripts give it to the engine: references (transaction, bill and
external reference numbers), free text the database keeps, money, and whole points in a
file. Each refuses what it cannot read, saying why."""

from __future__ import annotations

import re
from decimal import Decimal

from core import limits, rules
from core.status import InputError, PointsError

REFERENCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            "-_./:#")


def reference(value: str | None, what: str, *, code: int, max_length: int = 64) -> str:
    """A transaction, bill or external reference number: 1 to `max_length` letters,
    digits or -_./:# (`code` otherwise)."""
    text = (value or "").strip()
    if not text or len(text) > max_length or not set(text) <= REFERENCE_CHARS:
        raise PointsError(code, f"{what} must be 1 to {max_length} letters, digits or -_./:#")
    return text


def storable(text: str) -> str:
    """Free text as every database keeps it: PostgreSQL refuses NUL characters, and a lone
    surrogate cannot be encoded (it becomes "?")."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def points_or(value: object, code: int) -> int:
    """`rules.parse_points`, refused with `code` instead of 801."""
    try:
        return rules.parse_points(value)
    except PointsError:
        raise PointsError(code) from None


def count(value: str, what: str) -> int:
    """A whole number of points from 0 (blank) to `limits.MAX_OPERATION_POINTS`."""
    text = value.strip() or "0"
    most = limits.MAX_OPERATION_POINTS
    if not text.isdecimal() or len(text) > 15 or int(text) > most:
        raise InputError(f"{what} {value!r} is not a whole number of points from 0 to "
                         f"{most:,}")
    return int(text)


_AMOUNT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")
_EXPONENT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def money(value: object, what: str) -> Decimal:
    """An amount of money as people write it: digits, commas between thousands if wanted,
    at most two decimals (2500, 2,500.50). Exponent notation (1e3), NaN and Infinity are
    refused, each with the reason."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        text = format(value, "f") if isinstance(value, int) or value.is_finite() else "nan"
    else:
        text = str(value).strip().replace(",", "")
    if not _AMOUNT.fullmatch(text):
        if _EXPONENT.fullmatch(text):
            raise InputError(f"{what} {value!r} is in exponent notation: write it in digits "
                             "(1000.00, not 1e3)")
        raise InputError(f"{what} {value!r} is not an amount of money: write digits with at "
                         "most two decimals (2500.00)")
    amount = Decimal(text)
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise InputError(f"{what} {value!r} has more than two decimals")
    if abs(amount) >= limits.MAX_OPERATION_MONEY:
        raise InputError(f"{what} {value!r} is not below {limits.MAX_OPERATION_MONEY:,}")
    return amount.quantize(Decimal("0.01"))
