"""Data Import files for tests and benchmarks: members as rows of the documented columns
(`core.service.IMPORT_COLUMNS`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from core.service import IMPORT_COLUMNS

# Shorthands a row may use: `points` for both current and lifetime points (what an
# enrolment usually carries), `purchases` for lifetime purchases.
SHORTHANDS = {"points": ("current_points", "lifetime_points"),
              "purchases": ("lifetime_purchases",)}
# A new member's values written out (what a blank field means for a new member): for a
# file whose every row must say them, as the reliability drills' files do.
NEW_MEMBER: dict[str, Any] = {"type": "loyalty", "fraud_status": "NONE", "points": 0}


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` by column: shorthands first, then the columns it names itself."""
    fields = {column: row[short] for short, columns in SHORTHANDS.items() if short in row
              for column in columns}
    fields.update((c, row[c]) for c in IMPORT_COLUMNS if c in row)
    return fields


def member_csv(rows: Sequence[Mapping[str, Any]],
               defaults: Mapping[str, Any] | None = None) -> bytes:
    """A Data Import file with the documented columns, a row a member. A field a row
    leaves out takes its value from `defaults`, else it is empty; None is empty too (what
    the engine does with a blank field is the engine's rule)."""
    base = _fields(defaults or {})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(IMPORT_COLUMNS)
    for row in rows:
        values = {**base, **_fields(row)}
        writer.writerow(["" if values.get(c) is None else str(values[c])
                         for c in IMPORT_COLUMNS])
    return out.getvalue().encode()
