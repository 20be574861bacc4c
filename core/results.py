"""What the engine's operations answer: frozen results, one type each, made by the module
of the operation (`reads`, `redemption`, `reversal`, `points_in`) and shown by the entry
points as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.delivery import CodeMessage
from core.status import SUCCESS, Status, message

CAN_REDEEM = Status(SUCCESS, "Points can be redeemed")
REDEEMED = Status(SUCCESS, message(SUCCESS))
REVERSED = Status(SUCCESS, "Points reversed successfully")


@dataclass(frozen=True)
class RedemptionRules:
    min_points: int
    max_points: int
    multiple_of: int


@dataclass(frozen=True)
class MemberView:
    id: int
    name: str
    mobile: str | None
    email: str | None
    external_id: str | None
    customer_type: str
    fraud_status: str
    current_points: int
    lifetime_points: int
    lifetime_purchases: Decimal
    created_at: datetime


@dataclass(frozen=True)
class Balance:
    member: MemberView
    current_points: int
    lifetime_points: int
    lifetime_purchases: Decimal
    value: Decimal  # the currency value of the current points
    rules: RedemptionRules
    suggestions: tuple[int, ...]  # a few amounts the member could redeem now


@dataclass(frozen=True)
class Redeemable:
    points: int
    points_redeem_value: Decimal
    status: Status = CAN_REDEEM


@dataclass(frozen=True)
class CodeToDeliver:
    """A code issued (or to be resent) and not sent yet: `deliver_validation_code` sends it."""

    message: CodeMessage = field(repr=False)  # holds the code: never in a log
    record_id: int
    resent: bool
    sends_left: int
    expires_at: datetime


@dataclass(frozen=True)
class CodeIssued:
    points: int
    value: Decimal
    channels: tuple[str, ...]  # where it went, e.g. ("sms", "email")
    destinations: tuple[str, ...]  # masked: "+91•••••43210"
    resent: bool
    sends_left: int
    expires_at: datetime

    @property
    def message(self) -> str:
        names = {"sms": "SMS", "email": "Email", "chat": "chat", "log": "log"}
        return "Validation Code Issued by " + " and ".join(names.get(c, c)
                                                           for c in self.channels)


@dataclass(frozen=True)
class RedemptionResult:
    redemption_id: str
    points_redeemed: int
    redeemed_value: Decimal
    balance: int  # current points right after this redemption
    transaction_number: str
    external_reference: str
    redemption_time: datetime
    # Today's truth, for a replay: how much of the redemption has been reversed since, and
    # the member's current points now (for a new redemption: 0, and `balance`).
    points_reversed: int
    current_points: int
    replayed: bool = False  # a retry answered from the first result; nothing new debited
    status: Status = REDEEMED


@dataclass(frozen=True)
class ReversalResult:
    reversal_ids: tuple[str, ...]
    redemption_ids: tuple[str, ...]
    points_reversed: int
    balance: int
    member_id: int | None = None  # whose points came back
    status: Status = REVERSED


@dataclass(frozen=True)
class HistoryItem:
    kind: str  # "redemption" or "reversal"
    id: str
    points: int
    at: datetime
    transaction_number: str
    redemption_id: str
    points_reversed: int = 0  # for a redemption: how much of it has been reversed


@dataclass(frozen=True)
class Issued:
    """Points that came in (earning, goodwill): how many, and the balance after."""

    points: int
    balance: int
    reference: str
    replayed: bool = False
