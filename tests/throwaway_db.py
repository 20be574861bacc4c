"""Databases a test owns: where the PostgreSQL tests find their server, and a fresh
database on it that is dropped afterwards. Shared by every suite under tests/ (tests/ is
on sys.path through its conftest)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

POSTGRES_ENV = "LOYALTY_TEST_POSTGRES_URL"


def postgres_base_url() -> str | None:
    """The PostgreSQL server the tests may use, or None: PostgreSQL tests are skipped."""
    return os.environ.get(POSTGRES_ENV) or None


def postgres_database(base_url: str, prefix: str = "t") -> tuple[str, Callable[[], None]]:
    """Create a uniquely named database on `base_url`'s server; return its URL and a
    function that drops it (forcefully: a test may leave connections behind)."""
    base = make_url(base_url)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


@contextlib.contextmanager
def own_database(kind: str, directory: Path, filename: str = "loyalty.db") -> Iterator[str]:
    """A database of a test's own: a SQLite file in `directory` (kind "sqlite"), or a fresh
    database on PostgreSQL (kind "postgres"; the test is skipped without POSTGRES_ENV)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / filename}"
        return
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    url, drop = postgres_database(base)
    try:
        yield url
    finally:
        drop()
