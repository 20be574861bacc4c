"""The unit tier's guard: no test here touches a database. Every SQLAlchemy engine is
refused while a unit test runs (`sqlalchemy.create_engine` and `Engine` itself, so a module
that imported `create_engine` earlier is caught too), and a test that tried fails even if
it swallowed the error. Settings never leak in from the environment or a `.env` file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import sqlmodel
from sqlalchemy.engine import Engine

from tests.support.settings import hermetic

UNIT = Path(__file__).resolve().parent


class DatabaseUsed(AssertionError):
    """A unit test tried to create a database engine."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/unit is marked `unit` (`pytest -m unit`)."""
    for item in items:
        if UNIT in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """Refuse every engine; fail the test afterwards if it asked for one."""
    hermetic(monkeypatch, tmp_path)
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> None:
            attempts.append(what)
            raise DatabaseUsed(f"the unit tier has no database: this test called {what}")
        return refused

    monkeypatch.setattr(sqlalchemy, "create_engine", refuse("sqlalchemy.create_engine"))
    monkeypatch.setattr(sqlmodel, "create_engine", refuse("sqlmodel.create_engine"))
    monkeypatch.setattr(Engine, "__init__", refuse("Engine()"))
    yield attempts
    assert attempts == [], f"a unit test created a database engine: {attempts}"
