"""The tables: members, the points ledger, redemptions and reversals, validation codes,
bills, imports, and the conversation state entry points keep through the engine.

Times are timezone-aware UTC. Points are whole numbers stored as BIGINT; money (purchases,
redeemed value) is a decimal with two places, NUMERIC(20, 2): both hold what `core.limits`
allows, on SQLite and PostgreSQL alike. Ledger entries, redemptions and reversals are
written once and never edited, except the running `points_reversed` on a redemption, which
always equals the sum of its reversals.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Numeric,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

MONEY = Numeric(20, 2)
POINTS = BigInteger


class CustomerType(StrEnum):
    LOYALTY = "loyalty"
    NON_LOYALTY = "non_loyalty"
    CAMPAIGN = "campaign"


class FraudStatus(StrEnum):
    NONE = "NONE"
    MARKED = "MARKED"
    CONFIRMED = "CONFIRMED"
    RECONFIRMED = "RECONFIRMED"
    NOT_FRAUD = "NOT_FRAUD"
    INTERNAL = "INTERNAL"


class Source(StrEnum):
    """Why a ledger entry exists."""

    EARN = "earn"  # Loyalty Manager: points earned on a bill
    IMPORT = "import"  # Data Import
    GOODWILL = "goodwill"  # Member Care
    REDEMPTION = "redemption"
    REVERSAL = "reversal"


class CodeState(StrEnum):
    ACTIVE = "active"
    USED = "used"
    VOIDED = "voided"


class Member(SQLModel, table=True):
    # The last line of defence: whatever a bug or a race does, no balance goes below zero.
    __table_args__ = (CheckConstraint("current_points >= 0", name="ck_member_current_points"),)

    id: int | None = Field(default=None, primary_key=True)
    mobile: str | None = Field(default=None, unique=True, max_length=20)
    email: str | None = Field(default=None, unique=True, max_length=254)
    external_id: str | None = Field(default=None, unique=True, max_length=64)
    name: str = Field(default="", max_length=200)
    customer_type: str = Field(default=CustomerType.LOYALTY, max_length=16)
    fraud_status: str = Field(default=FraudStatus.NONE, max_length=16)
    current_points: int = Field(default=0, sa_type=POINTS)
    lifetime_points: int = Field(default=0, sa_type=POINTS)
    lifetime_purchases: Decimal = Field(default=Decimal("0"), sa_column=Column(MONEY,
                                                                               nullable=False))
    created_at: datetime


class LedgerEntry(SQLModel, table=True):
    """One change to a member's points. `points` moves current points; `lifetime_points`
    moves lifetime points (only issuing sources do)."""

    __tablename__ = "ledger_entry"
    __table_args__ = (Index("ix_ledger_member_id_id", "member_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    source: str = Field(max_length=16)
    points: int = Field(sa_type=POINTS)
    lifetime_points: int = Field(default=0, sa_type=POINTS)
    reference: str = Field(max_length=128)
    staff: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime


class Bill(SQLModel, table=True):
    """A purchase recorded by the Loyalty Manager; the bill number issues points once."""

    bill_number: str = Field(primary_key=True, max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    points: int = Field(sa_type=POINTS)
    created_at: datetime


class ImportBatch(SQLModel, table=True):
    """A Data Import file, by the digest of its content: one file imports once."""

    __tablename__ = "import_batch"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(unique=True, max_length=64)
    filename: str = Field(max_length=255)
    rows: int
    created_at: datetime


class Redemption(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=16)
    member_id: int = Field(foreign_key="member.id")
    points: int = Field(sa_type=POINTS)
    redeemed_value: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    balance_after: int = Field(sa_type=POINTS)
    transaction_number: str = Field(max_length=64, index=True)
    external_reference: str = Field(unique=True, max_length=128)
    # What the request asked for, to tell a retry from a different redemption.
    fingerprint: str = Field(max_length=64)
    notes: str = Field(default="", max_length=500)
    redemption_time: datetime
    points_reversed: int = Field(default=0, sa_type=POINTS)
    created_at: datetime

    __table_args__ = (Index("ix_redemption_member_id_created", "member_id", "created_at"),)


class Reversal(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=16)
    redemption_id: str = Field(foreign_key="redemption.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    points: int = Field(sa_type=POINTS)
    kind: str = Field(max_length=8)  # "revert" (by transaction number) or "reverse" (by id)
    staff: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime


class ValidationCode(SQLModel, table=True):
    """A validation code as issued: never the code itself, only what derives it with the
    server's secret key."""

    __tablename__ = "validation_code"
    # The member's newest code, and the codes sent lately: neither reads the whole history.
    __table_args__ = (Index("ix_validation_code_member_id", "member_id", "id"),
                      Index("ix_validation_code_member_issued", "member_id", "issued_at"))

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    points: int = Field(sa_type=POINTS)
    nonce: str = Field(max_length=32)
    state: str = Field(default=CodeState.ACTIVE, max_length=8)
    sends: int = 1
    attempts: int = 0
    issued_at: datetime
    expires_at: datetime
    redemption_id: str | None = Field(default=None, max_length=16)


class ChatLink(SQLModel, table=True):
    """A chat user (a Telegram user id, say) verified as a member: at most one per member.
    When another chat user verifies the same member, this one loses the member and keeps
    its row with `replaced_at` set, so that its chat can be told why."""

    __tablename__ = "chat_link"
    __table_args__ = (UniqueConstraint("member_id", name="uq_chat_link_member_id"),)

    channel_user: str = Field(primary_key=True, max_length=64)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime  # when it was (last) verified
    replaced_at: datetime | None = None
    # The chat user's name as the messaging app gave it at verification (for staff).
    display_name: str | None = Field(default=None, max_length=200)


class ChatState(SQLModel, table=True):
    """Where a chat is in a conversation: kept here, not in a process, so any worker can
    take the next message."""

    __tablename__ = "chat_state"

    channel_user: str = Field(primary_key=True, max_length=64)
    step: str = Field(default="menu", max_length=32)
    # The pending redemption (none at the menu): its points, the external reference number
    # that makes it idempotent, its transaction number, and the token its buttons carry.
    points: int | None = Field(default=None, sa_type=POINTS)
    external_reference: str | None = Field(default=None, max_length=128)
    transaction_number: str | None = Field(default=None, max_length=64)
    token: str | None = Field(default=None, max_length=8)
    # A staff chat's pending goodwill grant (step "goodwill"): the member, and why; its
    # points and reference are `points` and `external_reference`.
    member_id: int | None = Field(default=None)
    reason: str | None = Field(default=None, max_length=500)
    # The language the chat speaks (a shipped catalogue, "en", "hi"): from the messaging
    # app's language, kept when the member verifies (or the chat's state is first written),
    # or the member's choice (/language). None: not yet.
    language: str | None = Field(default=None, max_length=16)
    updated_at: datetime


class DeliveryState(StrEnum):
    PENDING = "pending"  # written with the code; not sent yet
    SENDING = "sending"  # taken by a worker (until `claimed_at` + the lease)
    SENT = "sent"
    FAILED = "failed"  # no channel delivered it: the code was voided (860)
    DROPPED = "dropped"  # the code was used, voided or expired before it was sent


class CodeDelivery(SQLModel, table=True):
    """A validation code waiting to be sent: written in the transaction that issued it,
    sent after that transaction commits by whichever worker is alive (`core.outbox`)."""

    __tablename__ = "code_delivery"
    __table_args__ = (Index("ix_code_delivery_state_created", "state", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    code_id: int = Field(foreign_key="validation_code.id")
    resent: bool = False
    channel_user: str | None = Field(default=None, max_length=64)  # the chat to tell
    reply_to: str | None = Field(default=None, max_length=64)  # the chat channel's address
    token: str | None = Field(default=None, max_length=8)  # the redemption it is for
    state: str = Field(default=DeliveryState.PENDING, max_length=8)
    created_at: datetime
    claimed_at: datetime | None = None
    done_at: datetime | None = None


class HandledUpdate(SQLModel, table=True):
    """An incoming update already handled, so a second delivery of it changes nothing; its
    outcome's replies are kept to answer that delivery again (`core.chat_record`)."""

    __tablename__ = "handled_update"

    key: str = Field(primary_key=True, max_length=64)
    created_at: datetime
    outcome: str | None = Field(default=None, sa_type=Text)


class StaffAction(SQLModel, table=True):
    """An audit line for every staff action and every refused attempt at one. `member_id`:
    the member it concerns, when known (a lookup that found nobody has none)."""

    __tablename__ = "staff_action"
    __table_args__ = (Index("ix_staff_action_member_id", "member_id", "id"),
                      Index("ix_staff_action_staff", "staff", "id"))

    id: int | None = Field(default=None, primary_key=True)
    staff: str = Field(max_length=128)
    action: str = Field(max_length=32)
    target: str = Field(default="", max_length=254)
    allowed: bool
    detail: str = Field(default="", max_length=500)
    created_at: datetime
    member_id: int | None = Field(default=None)


class GoodwillGrant(SQLModel, table=True):
    """A goodwill grant given with a reference (a ticket number, say): the reference
    issues once. A second grant with it answers the first; one for another member or
    amount is refused."""

    __tablename__ = "goodwill_grant"

    reference: str = Field(primary_key=True, max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    points: int = Field(sa_type=POINTS)
    entry_reference: str = Field(max_length=128)  # the ledger entry's (G...)
    staff: str = Field(max_length=128)
    reason: str = Field(max_length=500)
    created_at: datetime


class SandboxMark(SQLModel, table=True):
    """Present in a sandbox's database only: what lets the sandbox seed demo members and
    empty the database (`core.sandbox`). A production database never has it."""

    __tablename__ = "sandbox_mark"

    id: int = Field(default=1, primary_key=True)  # one row at most
    created_at: datetime


class Till(SQLModel, table=True):
    """An API client (a till at a shop counter, a web shop's checkout): its name, a slow
    hash of what it sends as its password, what it may do, and its failed logins, counted
    here so that every worker sees them (`core.tills`)."""

    __tablename__ = "till"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    # "scrypt$n$r$p$salt$hash" of the MD5 hex of the password (what the client sends);
    # never the MD5 itself.
    password_hash: str = Field(max_length=255)
    enabled: bool = True
    skip_validation_allowed: bool = False
    failed_logins: int = 0  # wrong passwords since the last success or lockout
    locked_until: datetime | None = None
    created_at: datetime
    rotated_at: datetime | None = None
