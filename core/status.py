"""The status codes of the points API (seed v1.1): one message per code, and the error type.

The seed lists 46 distinct codes; twelve of them appear twice with different wording.
`CATALOGUE` keeps one message per code; `WHY` records, for each code the seed words twice,
which text was kept and why. Placeholders (`{multiple}`, `{customer_id}`) are real
parameters, filled in by `message()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SUCCESS = 800

CATALOGUE: dict[int, str] = {
    686: "User is from campaign and has not enrolled in the loyalty program. "
    "Points redemption is not applicable for the user.",
    800: "Points redeemed successfully",
    801: "Points you are trying to redeem are invalid",
    802: "Mobile number/email id/external id you have entered is invalid",
    803: "Unable to redeem. The points you are trying to redeem is more than the available points",
    804: "Insufficient current points.",
    805: "Insufficient lifetime points.",
    806: "Insufficient lifetime purchases amount.",
    807: "Unable to redeem. Make sure that the points you are trying to redeem is a multiple "
    "of {multiple}.",
    808: "Unable to redeem. Validation code is invalid",
    809: "Unable to process. Customer is marked as fraud",
    810: "Mismatch in points for revert API call",
    811: "The transaction number entered to redeem/revert points is invalid",
    812: "The points have been reverted already for this transaction number",
    813: "Insufficient current points available for redemption",
    814: "No points were redeemed on this transaction number",
    815: "Unable to process points at this moment. Please try again later",
    816: "Unable to find customer in this organization",
    817: "Points redemption failed.",
    818: "Points you are trying to redeem are more than the available points",
    819: "Points you are trying to redeem are more than the maximum allowed redemption limit "
    "for a transaction.",
    820: "Unable to process. Customer is marked as fraud",
    821: "Points you are trying to redeem are less than the minimum redemption limit",
    822: "Unable to find missed call from the registered mobile number",
    823: "Missed call redemption is disabled for your organization",
    824: "Mobile number validation is mandatory for redeeming points",
    825: "Client signature is required",
    826: "Invalid points category or invalid configuration",
    827: "Unable to redeem points. Points redemption is not enabled for your organization",
    859: "The redemption time you have passed is invalid",
    860: "Unable to issue OTP",
    881: "Customer is not registered into the loyalty program",
    886: "Unable to process points. Please try again later.",
    887: "Unable to process points. Please try again later.",
    888: "Configuration is invalid. Please report to Capillary Support",
    889: "Points processing failed. Please try again later.",
    894: "Unable to process points at this moment. Please try again later",
    895: "Loyalty program is not configured for your organization",
    898: "Unable to process points at this moment. Please try again later",
    899: "Configuration is invalid. Please report to Capillary Support",
    901: "Invalid points or points redemption Id passed.",
    902: "Redemption ID does not exist.",
    903: "Unable to redeem points.",
    904: "Invalid customer details passed.",
    3045: "Points Redemption is not allowed for the customer with id {customer_id} as the "
    "status is fraud.",
    3802: "Points reversal redeemed points already reversed.",
}

# Codes the seed words twice, and why the kept text won.
WHY: dict[int, str] = {
    801: "both texts are the same",
    802: "both texts are the same",
    803: "both texts are the same",
    804: "both texts are the same",
    805: "both texts are the same",
    806: "both texts are the same",
    807: "the second text tells the member what to do and carries the multiple X; "
    "'Redemptions points not divisible' does neither. The advice to check the "
    "organisation's configuration is meant for integrators, not members, so it is dropped",
    809: "'Unable to process. Customer is marked as fraud' is a sentence; the other is a fragment",
    818: "the second text says what is wrong in the member's terms (available points); "
    "the first repeats the request",
    819: "the second text names the maximum redemption limit, and 'for a transaction' keeps "
    "the first text's meaning (the maximum that can be redeemed in a transaction); its "
    "trailing 'Unable to send message to customer' is another message merged in by mistake "
    "and is dropped",
    821: "the second text says 'minimum redemption limit', the setting's own name",
    888: "the wording of 899, so the two configuration codes read alike",
}

def message(code: int, **params: Any) -> str:
    """The catalogue message of `code`, placeholders filled from `params`."""
    text = CATALOGUE[code]
    if params:
        text = text.format_map(_Keep(params))
    return text


class _Keep(dict[str, Any]):
    """Leaves a placeholder as it is when no value was given for it."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Status:
    """An outcome as the API reports it: the code and its message."""

    code: int
    message: str

    @property
    def success(self) -> bool:
        return self.code == SUCCESS

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


class Reason(StrEnum):
    """Why a validation code was refused (808, 860) or an external reference number was
    (817): the case an entry point words its answer for."""

    NONE = "none"  # no code was issued
    USED = "used"
    VOIDED = "voided"
    EXPIRED = "expired"
    AMOUNT = "amount"  # issued for other points
    WRONG = "wrong"  # a wrong entry; attempts are left
    ATTEMPTS = "attempts"  # a wrong entry that used the last attempt: the code is void
    DELIVERY = "delivery"  # no channel delivered the code
    PERIOD_LIMIT = "period_limit"  # OTP_PERIOD_MAX_SENDS reached
    SEND_LIMIT = "send_limit"  # OTP_MAX_SENDS of this code reached
    REFERENCE_CONFLICT = "reference_conflict"  # used for a different redemption


class PointsError(Exception):
    """A refusal with a documented status code.

    `detail` is extra context for the person (for example how many attempts are left on a
    validation code, or why an external reference number was refused); `reason` says which
    case of the code it is, where a code has several (`Reason`); `facts` carries other
    machine-readable values an entry point may use (``attempts_left``, ``remaining``) and
    fills the message's placeholders.
    """

    def __init__(self, code: int, detail: str = "", /, *, reason: Reason | None = None,
                 **facts: Any) -> None:
        self.code = code
        self.reason = reason
        self.facts: dict[str, Any] = facts
        self.detail = detail
        self.status = Status(code, message(code, **facts))
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.status}" + (f" ({self.detail})" if self.detail else "")


class WrongCode(PointsError):
    """808 for a wrong validation code: the attempt was counted (and, at the last one, the
    code voided) before the refusal, and those writes must be kept: a unit of work that
    compares a code runs with ``keep_writes_on=(WrongCode,)``."""


class InputError(ValueError):
    """Input no status code covers (an amount that is not money, an empty reason): the
    message says what is wrong and what is expected."""
