"""Data Import: a CSV file of members and their balances, checked whole before anything
is written (one bad row and nothing changes), the same file twice imported once.

`parse` reads and checks the file's text (no database); session-level, `load` matches the
rows to members under their row locks and writes them in a few bulk statements. `Importing`
holds the public methods, `import_file` and `import_csv`.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, select

from core import ledger, limits
from core.db import executemany
from core.identifiers import Identifier, Kind, parse_as
from core.models import CustomerType, FraudStatus, ImportBatch, Source
from core.status import InputError, PointsError
from core.text import count, money, storable
from core.work import Engine, Work

IMPORT_COLUMNS = ("mobile", "email", "external_id", "name", "type", "fraud_status",
                  "current_points", "lifetime_points", "lifetime_purchases")


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ImportRejected(InputError):
    """A Data Import file with bad rows: nothing was imported."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} bad row(s); nothing was imported")


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int
    updated: int
    points: int
    already_imported: bool = False
    batch_id: int | None = None


@dataclass(frozen=True)
class ImportRow:
    line: int
    identifiers: tuple[Identifier, ...]
    name: str
    customer_type: str
    fraud_status: str
    current_points: int
    lifetime_points: int
    lifetime_purchases: Decimal


_PROFILE = ("mobile", "email", "external_id", "name", "customer_type", "fraud_status",
            "lifetime_purchases")


@dataclass
class _Plan:
    """What an import writes, decided under the lock before anything is written."""

    matches: dict[int, int] = field(default_factory=dict)  # line -> existing member id
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)  # member id -> after
    balances: dict[int, tuple[int, int]] = field(default_factory=dict)  # as read
    new: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # line, profile
    problems: list[RowError] = field(default_factory=list)


def parse(text: str, region: str) -> tuple[list[ImportRow], list[RowError]]:
    """The rows of a Data Import file's text and its bad rows (a mobile without a country
    code is read in `region`); no database is involved."""
    reader = csv.reader(io.StringIO(text))
    errors: list[RowError] = []
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [RowError(1, "the file is empty")]
    except csv.Error as error:
        return [], [RowError(1, f"not CSV: {error}")]
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        return [], [RowError(1, f"missing column(s): {', '.join(missing)}")]
    rows: list[ImportRow] = []
    seen: dict[tuple[str, str], int] = {}
    line = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            errors.append(RowError(reader.line_num, f"not CSV: {error}"))
            break
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append(RowError(line, f"{len(values)} fields, expected {len(header)}"))
            continue
        try:
            row = _row(line, region, dict(zip(header, values, strict=True)))
        except (PointsError, InputError) as error:
            reason = error.detail or error.status.message if isinstance(
                error, PointsError) else str(error)
            errors.append(RowError(line, reason))
            continue
        clash = [f"{i.kind.value} {i.value} is also on line {seen[(i.kind, i.value)]}"
                 for i in row.identifiers if (i.kind, i.value) in seen]
        if clash:
            errors.append(RowError(line, "; ".join(clash)))
            continue
        seen.update({(i.kind, i.value): line for i in row.identifiers})
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(1, "the file has no rows"))
    return rows, errors

def _row(line: int, region: str, fields: dict[str, str]) -> ImportRow:
    if any("\x00" in value for value in fields.values()):
        raise InputError("the row contains a NUL character")
    identifiers: list[Identifier] = []
    # Each column says what its value is: nothing is guessed (an external id may be a
    # number).
    for kind in (Kind.MOBILE, Kind.EMAIL, Kind.EXTERNAL_ID):
        raw = fields[kind.value].strip()
        if not raw:
            continue
        try:
            identifiers.append(parse_as(kind, raw, region))
        except PointsError:
            raise InputError(f"{kind.value} {raw!r} is not a valid {kind.value}") from None
    if not identifiers:
        raise InputError("a row needs a mobile, an email or an external id")
    name = fields["name"].strip()
    if len(name) > 200:
        raise InputError("name is longer than 200 characters")
    kind_ = fields["type"].strip().lower()
    if kind_ and kind_ not in set(CustomerType):
        raise InputError(f"type {kind_!r} is not one of "
                         f"{', '.join(t.value for t in CustomerType)}")
    fraud = fields["fraud_status"].strip().upper()
    if fraud and fraud not in set(FraudStatus):
        raise InputError(f"fraud_status {fraud!r} is not one of "
                         f"{', '.join(f.value for f in FraudStatus)}")
    current = count(fields["current_points"], "current_points")
    lifetime = count(fields["lifetime_points"], "lifetime_points")
    if current > lifetime:
        raise InputError(f"current_points ({current}) exceed lifetime_points ({lifetime})")
    purchases = money(fields["lifetime_purchases"] or "0", "lifetime_purchases")
    if purchases < 0:
        raise InputError("lifetime_purchases must not be negative")
    return ImportRow(line, tuple(identifiers), name, kind_, fraud, current, lifetime,
                      purchases)


def load(work: Work, rows: Sequence[ImportRow], *, digest: str,
         filename: str) -> ImportResult:
    """Write the rows `parse` read from a file whose SHA-256 is `digest`: new members open
    with the row's balances; for a member who exists, the profile is updated and the row's
    points are added. A file imported before (the same digest) is answered as such, and a
    row that cannot be written refuses the whole file (`ImportRejected`).

    The rows are matched to members and written in a few bulk statements (a lookup per 500
    identifiers, one insert of the new members, then the ledger's `post_many`: the entries,
    and each member's totals and profile in one update), so the write lock is held only
    for that."""
    session, now = work.session, work.now
    done = session.exec(select(ImportBatch).where(ImportBatch.digest == digest)).first()
    if done is not None:
        return ImportResult(done.rows, 0, 0, 0, already_imported=True, batch_id=done.id)
    plan = _match(session, rows)
    if plan.problems:
        raise ImportRejected(plan.problems)
    batch = ImportBatch(digest=digest, filename=filename, rows=len(rows), created_at=now)
    session.add(batch)
    session.flush()
    connection = session.connection()
    members = ledger.MEMBERS
    member_of = dict(plan.matches)
    balances = dict(plan.balances)
    if plan.new:
        # One executemany, then their ids by one identifier each (RETURNING in parameter
        # order would insert one row per statement on SQLite).
        executemany(connection, insert(members), [
            {**profile, "current_points": 0, "lifetime_points": 0, "created_at": now}
            for _, profile in plan.new])
        first = {row.line: row.identifiers[0] for row in rows
                 if row.line not in plan.matches}
        inserted = {key: row["id"] for key, row in ledger.find_members(
            session, first.values(), ids_only=True).items()}
        member_of.update({line: inserted[i.kind, i.value] for line, i in first.items()})
        balances.update({member_id: (0, 0) for member_id in inserted.values()})
    ledger.post_many(session, Source.IMPORT, [
        ledger.Posting(member_of[row.line], row.current_points, row.lifetime_points,
                       f"import:{batch.id}:{row.line}")
        for row in rows if row.current_points or row.lifetime_points],
        balances=balances, now=now, columns=plan.profiles)
    return ImportResult(len(rows), len(plan.new), len(plan.matches),
                        sum(row.current_points for row in rows), batch_id=batch.id)


def _match(session: Session, rows: Sequence[ImportRow]) -> _Plan:
    """Which member each row is (all looked up at once, row-locked), each member's
    profile after every row is applied in file order, and the rows that cannot be
    written: identifiers of different members, an identifier the member already holds
    another value of, or a total past `core.limits`."""
    found = ledger.find_members(session, (i for row in rows for i in row.identifiers),
                                lock=True)
    plan = _Plan()
    totals: dict[int, tuple[int, int, Decimal]] = {}
    for row in rows:
        hits = {found[key]["id"]: found[key] for key in
                ((i.kind, i.value) for i in row.identifiers) if key in found}
        if len(hits) > 1:
            plan.problems.append(RowError(row.line, "its identifiers belong to different "
                                                    "members"))
            continue
        if hits:
            member = next(iter(hits.values()))
            held = [(i.kind.value, member[i.kind.value]) for i in row.identifiers
                    if member[i.kind.value] and member[i.kind.value] != i.value]
            if held:
                plan.problems.append(RowError(row.line, f"member {member['id']} already "
                                                        f"has {held[0][0]} {held[0][1]}"))
                continue
            member_id: int = member["id"]
            plan.matches[row.line] = member_id
            if member_id not in plan.profiles:
                plan.profiles[member_id] = {k: member[k] for k in _PROFILE}
                plan.balances[member_id] = (member["current_points"],
                                            member["lifetime_points"])
                totals[member_id] = (*plan.balances[member_id],
                                     Decimal(member["lifetime_purchases"]))
            profile = plan.profiles[member_id]
            current, lifetime, purchases = totals[member_id]
            who = f"member {member_id}"
        else:
            profile = {"mobile": None, "email": None, "external_id": None, "name": "",
                       "customer_type": CustomerType.LOYALTY.value,
                       "fraud_status": FraudStatus.NONE.value,
                       "lifetime_purchases": Decimal(0)}
            plan.new.append((row.line, profile))
            current, lifetime, purchases = 0, 0, Decimal(0)
            member_id, who = 0, "the new member"
        for ident in row.identifiers:
            profile[ident.kind.value] = ident.value
        profile["name"] = row.name or profile["name"]
        # A blank type or fraud status keeps what the member has (a new member's
        # defaults: loyalty, NONE); a top-up file must not clear a fraud flag.
        profile["customer_type"] = row.customer_type or profile["customer_type"]
        profile["fraud_status"] = row.fraud_status or profile["fraud_status"]
        current += row.current_points
        lifetime += row.lifetime_points
        purchases += row.lifetime_purchases
        profile["lifetime_purchases"] = purchases
        why = (limits.points_over_balance(current, lifetime)
               or limits.money_over_balance(purchases))
        if why is not None:
            plan.problems.append(RowError(row.line, f"{who}: {why}"))
        if member_id:
            totals[member_id] = (current, lifetime, purchases)
    return plan


class Importing(Engine):
    """Data Import, the operation of `PointsService` that loads a file."""

    def import_file(self, path: str | Path) -> ImportResult:
        file = Path(path)
        try:
            data = file.read_bytes()
        except OSError as error:
            raise InputError(f"cannot read {file}: {error.strerror}") from None
        return self.import_csv(data, filename=file.name)

    def import_csv(self, data: bytes, filename: str = "import.csv") -> ImportResult:
        """Data Import: every row is checked first (`parse`), before the write transaction
        begins; then `load` writes them in it. One bad row and nothing changes; the same
        file twice imports once."""
        digest = hashlib.sha256(data).hexdigest()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected([RowError(1, "the file is not UTF-8 text")]) from None
        rows, errors = parse(text, self.settings.default_phone_region)
        if errors:
            raise ImportRejected(errors)
        name = storable(filename)[:255]
        return self.db.run(lambda s: load(self.work(s), rows, digest=digest, filename=name),
                           transient_code=889)
