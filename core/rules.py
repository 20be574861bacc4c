"""The redemption rules, in the documented order; the first that fails decides the code.

1. enrolment and program (686 campaign-only, 881 not enrolled, 827 redemption disabled);
2. fraud status (809);
3. validation (824 no code where one is mandatory, 808 a wrong one);
4. minimum points per redemption (821);  5. minimum current points (804);
6. minimum lifetime points (805);  7. minimum lifetime purchases (806);
8. multiple of X (807);  9. maximum points per transaction (819: this redemption and what
   the member already redeemed on the transaction number, net of reversals);
10. more than the current points (803 on a check, 818 on a redemption).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from core import limits
from core.models import CustomerType, Member
from core.settings import Settings
from core.status import PointsError


class Stage(Enum):
    CHECK = "check"  # isredeemable, and before a validation code is issued
    REDEEM = "redeem"


def parse_points(value: object, *, limit: int | None = None) -> int:
    """Whole, positive points from what a person or a script gave; 801 otherwise.

    Accepts an int, or text of decimal digits (any script's), optionally grouped by
    thousands with commas, spaces or underscores ("1,000"). Refuses zero, negatives,
    fractions, and anything above `limit` (by default `limits.MAX_POINTS_INPUT`; an
    operation that issues points passes `limits.MAX_OPERATION_POINTS`).
    """
    if limit is None:
        limit = limits.MAX_POINTS_INPUT
    if isinstance(value, bool):
        raise PointsError(801)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        grouped = text.replace("_", ",").replace(" ", ",").replace("\u00a0", ",")
        parts = grouped.split(",")
        if len(parts) > 1 and not (1 <= len(parts[0]) <= 3
                                   and all(len(p) == 3 for p in parts[1:])):
            raise PointsError(801)
        digits = "".join(parts)
        if not digits or not digits.isdecimal() or len(digits) > 15:
            raise PointsError(801)
        number = int(digits)
    else:
        raise PointsError(801)
    if number <= 0:
        raise PointsError(801)
    if number > limit:
        raise PointsError(801, f"at most {limit:,} points at once", limit=limit)
    return number


def check(settings: Settings, member: Member, points: int, stage: Stage,
          validate: Callable[[], None] | None, *, already_redeemed: int = 0) -> None:
    """Raise the first rule `points` breaks for `member`; `validate` is rule 3, or None
    where no validation code is part of the request; `already_redeemed` is what the member
    has redeemed on this transaction number, net of reversals (0 where there is none)."""
    _enrolment(settings, member)  # 1, 2
    if validate is not None:
        validate()  # 3
    if points < settings.redemption_min_points:  # 4
        raise PointsError(821, f"the minimum is {settings.redemption_min_points} points",
                          minimum=settings.redemption_min_points)
    _standing(settings, member)  # 5, 6, 7
    if points % settings.redemption_multiple_of:  # 8
        raise PointsError(807, multiple=settings.redemption_multiple_of)
    if points + already_redeemed > settings.redemption_max_points:  # 9
        earlier = (f"; {already_redeemed} already redeemed on this transaction number"
                   if already_redeemed else "")
        raise PointsError(819, f"the maximum is {settings.redemption_max_points} points a "
                               f"transaction{earlier}",
                          maximum=settings.redemption_max_points, already=already_redeemed)
    if points > member.current_points:  # 10
        raise PointsError(803 if stage is Stage.CHECK else 818,
                          f"you have {member.current_points} points",
                          available=member.current_points)


def _enrolment(settings: Settings, member: Member) -> None:
    """Rules 1 and 2: enrolment and program, then fraud status."""
    if member.customer_type == CustomerType.CAMPAIGN:
        raise PointsError(686)
    if member.customer_type != CustomerType.LOYALTY:
        raise PointsError(881)
    if not settings.redemption_enabled:
        raise PointsError(827)
    if member.fraud_status in settings.blocking_fraud_statuses:
        raise PointsError(809, customer_id=member.id)


def _standing(settings: Settings, member: Member) -> None:
    """Rules 5 to 7: the member's current points, lifetime points and lifetime purchases."""
    if member.current_points < settings.redemption_min_current_points:
        raise PointsError(804, f"redeeming needs at least "
                               f"{settings.redemption_min_current_points} current points",
                          needed=settings.redemption_min_current_points)
    if member.lifetime_points < settings.redemption_min_lifetime_points:
        raise PointsError(805, f"redeeming needs at least "
                               f"{settings.redemption_min_lifetime_points} lifetime points",
                          needed=settings.redemption_min_lifetime_points)
    if member.lifetime_purchases < settings.redemption_min_lifetime_purchases:
        raise PointsError(806, f"redeeming needs lifetime purchases of at least "
                               f"{settings.redemption_min_lifetime_purchases}",
                          needed=settings.redemption_min_lifetime_purchases)


def blocker(settings: Settings, member: Member) -> PointsError | None:
    """The refusal `member` meets whatever amount they ask for, or None when some amount
    can be redeemed now: rules 1, 2 and 4 to 7 (which do not depend on the amount), then,
    when even the smallest amount the rules allow is more than their current points (or
    the maximum), 803. What a chat tells a member at their balance, before any amount."""
    try:
        _enrolment(settings, member)
        _standing(settings, member)
    except PointsError as refusal:
        return refusal
    low, high = _range(settings, member)
    if low > high:
        return PointsError(803, f"the smallest amount you can redeem is {low} points; "
                                f"you have {member.current_points}",
                           smallest=low, available=member.current_points)
    return None


def _range(settings: Settings, member: Member) -> tuple[int, int]:
    """The smallest and the largest amount the amount rules (821, 807, 819, 803) allow
    `member` now; low > high when there is none."""
    step = max(settings.redemption_multiple_of, 1)
    low = -(-max(settings.redemption_min_points, 1) // step) * step
    high = min(settings.redemption_max_points, member.current_points) // step * step
    return low, high


def suggest(settings: Settings, member: Member, count: int = 4) -> tuple[int, ...]:
    """Up to `count` amounts `member` can redeem now, spread from the smallest the rules
    allow to the most they can (both included), each a valid multiple."""
    if blocker(settings, member) is not None:
        return ()
    low, high = _range(settings, member)
    step = max(settings.redemption_multiple_of, 1)
    steps = (high - low) // step
    if steps + 1 <= count:
        return tuple(range(low, high + 1, step))
    picks = {low + round(i * steps / (count - 1)) * step for i in range(count)}
    return tuple(sorted(picks))


def nearest(settings: Settings, member: Member, points: int) -> tuple[int, ...]:
    """The valid amounts closest to `points` on either side (for 807): at most two, each
    one `member` could redeem now."""
    low, high = _range(settings, member)
    step = max(settings.redemption_multiple_of, 1)
    below, above = points // step * step, -(-points // step) * step
    return tuple(sorted({p for p in (below, above) if low <= p <= high}))
