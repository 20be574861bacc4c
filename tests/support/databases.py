"""Databases a test or a benchmark owns: where the PostgreSQL server is, and one helper
that gives a fresh SQLite file or a fresh PostgreSQL database and drops it afterwards."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

POSTGRES_ENV = "LOYALTY_TEST_POSTGRES_URL"
# Where the benchmarks look when POSTGRES_ENV is not set (the tests skip instead).
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str | None:
    """The PostgreSQL server the tests may use, or None: PostgreSQL tests are skipped."""
    return os.environ.get(POSTGRES_ENV) or None


@contextlib.contextmanager
def postgres_database(base_url: str, prefix: str = "t") -> Iterator[str]:
    """A uniquely named database created on `base_url`'s server; its URL. Dropped
    afterwards whatever happens (forcefully: a test may leave connections behind)."""
    base = make_url(base_url)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def own_database(kind: str, directory: Path, filename: str = "loyalty.db",
                 base_url: str | None = None) -> Iterator[str]:
    """A database of the caller's own: a SQLite file `filename` in `directory` (kind
    "sqlite"), or a fresh database on PostgreSQL (kind "postgres"), dropped afterwards. The
    server is `base_url`, else POSTGRES_ENV's; without either the test is skipped."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / filename}"
        return
    if kind != "postgres":
        raise ValueError(f"no database of kind {kind!r}: sqlite or postgres")
    base = base_url or postgres_base_url()
    if base is None:
        import pytest

        pytest.skip(f"{POSTGRES_ENV} is not set")
    with postgres_database(base) as url:
        yield url
