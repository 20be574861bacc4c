"""The sandbox's demo members and rules: who they are, what each one shows, and how they
are put into a sandbox database (through the engine, like real data).

The sandbox runs with its own redemption rules (`SANDBOX_RULES`), chosen so that between
them the demo members reach every rule: each member's `claims` say which status code an
action of theirs gets, and `tests/sandbox` checks every claim against the engine. The
sandbox decides nothing itself: the codes come from `core`, these are only the inputs.

Seeding goes through `core.service.PointsService` only: a Data Import file built in
memory, purchases (earn), goodwill, and for Asha one redemption and a partial reversal so
that /history has something to show. `reset` empties the sandbox database (every row of
every table, the schema stays) and seeds it again. Both go through `core.sandbox`, which
owns the sandbox mark: a database that holds members and has no mark (production's, say)
is refused with 899 and nothing in it changes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core import sandbox as sandbox_db
from core.delivery import RecordingSender
from core.service import IMPORT_COLUMNS, MemberView, PointsService
from core.status import PointsError

# The rules the sandbox runs with (settings overrides, lower case). They replace whatever
# REDEMPTION_* settings the environment has: the demo members are built for these.
SANDBOX_RULES: dict[str, Any] = {
    "redemption_enabled": True,
    "validation_code_required": True,
    "fraud_statuses_blocking": "MARKED,CONFIRMED,RECONFIRMED",
    "redemption_min_points": 100,
    "redemption_max_points": 5000,
    "redemption_multiple_of": 50,
    "redemption_min_current_points": 200,
    "redemption_min_lifetime_points": 1000,
    "redemption_min_lifetime_purchases": Decimal("5000"),
    "points_currency_ratio": Decimal("1"),
    "earn_rate": Decimal("1"),
    "default_phone_region": "IN",
}

RULES_TEXT = ("Sandbox rules: redeem 100 to 5,000 points at a time, in multiples of 50; to "
              "redeem at all a member needs 200 current points, 1,000 lifetime points and "
              "5,000.00 of lifetime purchases. Fraud statuses MARKED, CONFIRMED and "
              "RECONFIRMED block. One point is worth 1.00.")

# A valid Indian mobile that no demo member has: sharing it gets 816.
UNKNOWN_MOBILE = "+919811111111"


@dataclass(frozen=True)
class Claim:
    """What a demo member shows: doing `action` (redeem `points`, or share their contact)
    gets status `code`."""

    code: int
    action: str  # "redeem" or "contact"
    points: int = 0

    def __str__(self) -> str:
        what = f"redeem {self.points:,}" if self.action == "redeem" else "share the contact"
        return f"{what} → {self.code}"


@dataclass(frozen=True)
class DemoMember:
    """A demo member as imported, and what happens to their points before the sandbox
    opens (purchases, goodwill, one redemption and a partial reversal)."""

    name: str
    mobile: str  # E.164
    email: str
    story: str  # what this member is for, in a few words
    claims: tuple[Claim, ...]
    customer_type: str = "loyalty"
    fraud_status: str = "NONE"
    points: int = 0  # current points in the import file
    lifetime_points: int = 0
    purchases: str = "0.00"
    earn: tuple[tuple[str, str], ...] = ()  # (bill number, purchase amount)
    goodwill: int = 0
    redeemed: int = 0  # redeemed once before the sandbox opens...
    reversed_: int = 0  # ...and this much of it reversed by staff
    language: str = "en"  # the language their chat speaks (`/as` switches the chat to it)

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(claim.code for claim in self.claims))

    @property
    def telegram_phone(self) -> str:
        """The number as Telegram puts it in a shared contact (no plus)."""
        return self.mobile.lstrip("+")


DEMO_MEMBERS: tuple[DemoMember, ...] = (
    DemoMember(
        "Asha Rao", "+919800000001", "asha@example.com",
        "plenty of points: the happy path, and the maximum and the balance",
        (Claim(800, "redeem", 500), Claim(819, "redeem", 6000), Claim(803, "redeem", 4000)),
        points=2000, lifetime_points=2000, purchases="20000.00",
        earn=(("DEMO-BILL-1001", "1000.00"),), goodwill=200, redeemed=300, reversed_=100),
    DemoMember(
        "Ravi Kumar", "+919800000002", "ravi@example.com",
        "lifetime purchases 4,990.00, just under the 5,000.00 minimum",
        (Claim(806, "redeem", 500),),
        points=510, lifetime_points=510, purchases="4000.00",
        earn=(("DEMO-BILL-2001", "990.00"),)),
    DemoMember(
        "Priya Shah", "+919800000003", "priya@example.com",
        "150 current points, under the 200 minimum",
        (Claim(804, "redeem", 100),),
        points=150, lifetime_points=2000, purchases="8000.00"),
    DemoMember(
        "Arjun Mehta", "+919800000004", "arjun@example.com",
        "900 lifetime points, under the 1,000 minimum",
        (Claim(805, "redeem", 500),),
        points=900, lifetime_points=900, purchases="9000.00"),
    DemoMember(
        "Meera Iyer", "+919800000005", "meera@example.com",
        "1,234 points: redeeming them all is not a multiple of 50",
        (Claim(807, "redeem", 1234),),
        points=1234, lifetime_points=1234, purchases="7000.00"),
    DemoMember(
        "Kabir Singh", "+919800000006", "kabir@example.com",
        "a campaign-only customer, not enrolled in the loyalty program",
        (Claim(686, "contact"), Claim(686, "redeem", 100)),
        customer_type="campaign"),
    DemoMember(
        "Neha Joshi", "+919800000007", "neha@example.com",
        "not enrolled in the loyalty program",
        (Claim(881, "contact"), Claim(881, "redeem", 100)),
        customer_type="non_loyalty", points=500, lifetime_points=500, purchases="2500.00"),
    DemoMember(
        "Vikram Das", "+919800000008", "vikram@example.com",
        "marked as fraud",
        (Claim(809, "redeem", 500),),
        fraud_status="MARKED", points=5000, lifetime_points=5000, purchases="30000.00"),
    DemoMember(
        "Sunita Verma", "+919800000009", "sunita@example.com",
        "speaks Hindi: every reply, button and code message in Hindi, with Indian digit "
        "grouping and ₹",
        (Claim(800, "redeem", 500), Claim(807, "redeem", 1230)),
        points=150000, lifetime_points=150000, purchases="250000.00", language="hi"),
)

# Codes any linked member can reach, shown once (checked with the first demo member).
ANYONE: tuple[tuple[str, int], ...] = (
    ("redeem 50", 821),
    ("redeem 120", 807),
    ("a wrong validation code", 808),
    ("sharing a number that is not in the program", 816),
)


def find(text: str) -> DemoMember | None:
    """The demo member named by their number in the list (1, 2, ...), or None."""
    value = text.strip()
    if value.isdecimal() and 1 <= int(value) <= len(DEMO_MEMBERS):
        return DEMO_MEMBERS[int(value) - 1]
    return None


def by_mobile(mobile: str | None) -> DemoMember | None:
    return next((m for m in DEMO_MEMBERS if m.mobile == mobile), None)


def import_file() -> bytes:
    """The demo members as a Data Import file (the documented columns)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(IMPORT_COLUMNS)
    for m in DEMO_MEMBERS:
        writer.writerow([m.mobile, m.email, "", m.name, m.customer_type, m.fraud_status,
                         m.points, m.lifetime_points, m.purchases])
    return out.getvalue().encode()


def seed(service: PointsService) -> list[MemberView]:
    """Put the demo members into an empty database through the engine; answer them as
    they now stand, in the order of `DEMO_MEMBERS`. Marks the database as the sandbox's
    first; 899 for a database with members and no sandbox mark."""
    sandbox_db.claim(service.db)
    sender = RecordingSender("seed")
    seeder = PointsService(service.settings, db=service.db, senders=[sender],
                           clock=service.clock)
    seeder.import_csv(import_file(), filename="sandbox-demo-members.csv")
    for m in DEMO_MEMBERS:
        for bill, amount in m.earn:
            seeder.earn(m.mobile, bill, amount)
        if m.goodwill:
            seeder.goodwill(m.mobile, m.goodwill, reason="sandbox: welcome points",
                            staff="sandbox")
        if m.redeemed:
            issued = seeder.issue_validation_code(m.mobile, m.redeemed)
            member = seeder.member(m.mobile)
            result = seeder.redeem(m.mobile, issued.points, sender.last_code(member.id),
                                   transaction_number=f"DEMO-BILL-{member.id}-R1",
                                   external_reference=f"sandbox-seed-{member.id}-r1",
                                   notes="sandbox: an earlier redemption")
            if m.reversed_:
                seeder.reverse(result.redemption_id, m.reversed_, staff="sandbox",
                               reason="sandbox: part of an earlier redemption given back")
    return members(service)


def members(service: PointsService) -> list[MemberView]:
    """The demo members as they stand now (those that exist)."""
    found: list[MemberView] = []
    for m in DEMO_MEMBERS:
        try:
            found.append(service.member(m.mobile))
        except PointsError:  # not there (a kept database from an older sandbox)
            continue
    return found


def seed_if_empty(service: PointsService) -> bool:
    """Seed a database that has no members yet; True when it did. 899 for a database with
    members and no sandbox mark (nothing is seeded into it)."""
    sandbox_db.claim(service.db)
    if service.member_count():
        return False
    seed(service)
    return True


def wipe(service: PointsService) -> None:
    """Delete every row of every table but the sandbox mark (the schema and its migrations
    stay); 899 for a database with members and no sandbox mark."""
    sandbox_db.wipe(service.db)


def reset(service: PointsService) -> list[MemberView]:
    """Empty the sandbox database and seed the demo members again; 899 (and nothing
    changed) for a database with members and no sandbox mark."""
    wipe(service)
    return seed(service)


def listing(balances: dict[str, int] | None = None) -> str:
    """The demo members as plain text (for the bot's /demo): number, name, mobile,
    points now if known, and what they show."""
    lines = ["Demo members (/as NUMBER or /as MOBILE to be one):"]
    for number, m in enumerate(DEMO_MEMBERS, 1):
        points = (f", {balances[m.mobile]:,} points" if balances and m.mobile in balances
                  else "")
        lines.append(f"{number}. {m.name} {m.mobile}{points}: {m.story}; "
                     + ", ".join(str(c) for c in m.claims))
    lines.append("Anyone: " + ", ".join(f"{what} → {code}" for what, code in ANYONE))
    lines.append(RULES_TEXT)
    lines.append("Members speak English unless their line says otherwise; /language switches.")
    return "\n".join(lines)


__all__ = ["ANYONE", "DEMO_MEMBERS", "RULES_TEXT", "SANDBOX_RULES", "UNKNOWN_MOBILE", "Claim",
           "DemoMember", "by_mobile", "find", "import_file", "listing", "members", "reset",
           "seed", "seed_if_empty", "wipe"]
