"""Shared by every suite under tests/: the Hypothesis profile.

tests/ is a package (`tests.core`, `tests.bot`, … and `tests.support`, what they share), so
`core` and `bot` are always the project's own packages, never a suite's folder; pytest's
`pythonpath` setting (pyproject.toml) puts the project root on the import path for the
tests and for the processes they start.
"""

from __future__ import annotations

import os

# In CI, property-based tests draw the same examples on every run: a red CI means a change
# broke something, not that this run's dice found an old problem. Locally they draw new
# examples each run and keep searching.
if os.environ.get("CI"):
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.load_profile("ci")

# `db_url` (a SQLite file, and PostgreSQL when LOYALTY_TEST_POSTGRES_URL is set) for every
# suite that asks for it.
from tests.support.database_fixtures import db_url, postgres_url, sqlite_url  # noqa: F401
