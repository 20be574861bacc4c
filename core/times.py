"""The organisation's time: its zone (`ORG_TIMEZONE`, an IANA name), reading a local time
a person typed, and the one way a moment is shown to members, staff and the CLI.

The database keeps every moment in UTC; what people type and read is the organisation's
local time, with the zone's abbreviation ("2026-11-29 14:05 IST").
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SHOWN = "%Y-%m-%d %H:%M"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("Asia/Kolkata", "UTC"); ValueError when there is none."""
    key = name.strip()
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone such as UTC, Asia/Kolkata or "
                         "Europe/London") from None


def local(moment: datetime, in_zone: tzinfo) -> datetime:
    """`moment` in `in_zone`; a moment without a zone is taken as UTC (as stored)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(in_zone)


def show(moment: datetime, in_zone: tzinfo, *, seconds: bool = False) -> str:
    """`moment` as people read it: local date and time with the zone's abbreviation,
    "2026-11-29 14:05 IST" (with `seconds`, "2026-11-29 14:05:09 IST")."""
    there = local(moment, in_zone)
    return f"{there:{SHOWN}{':%S' if seconds else ''}} {there.tzname() or ''}".rstrip()
