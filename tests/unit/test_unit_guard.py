"""The unit tier's guard works: creating an engine, by either door, is refused."""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy.engine import create as engine_create

from tests.unit.conftest import DatabaseUsed


def test_create_engine_is_refused(no_database: list[str]) -> None:
    with pytest.raises(DatabaseUsed):
        sqlalchemy.create_engine("sqlite://")
    assert len(no_database) == 1
    no_database.clear()  # this test wanted the refusal; any other test fails on it


def test_an_engine_made_through_an_earlier_import_is_refused(no_database: list[str]) -> None:
    """`core.db` imported `create_engine` before the guard: the engine itself is refused."""
    with pytest.raises(DatabaseUsed):
        engine_create.create_engine("sqlite://")
    assert len(no_database) == 1
    no_database.clear()
