"""A SQLite database the engine creates, and the -wal and -shm files beside it, are
readable by their owner only (0600), even under a umask that lets everyone read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.service import PointsService
from core.settings import load_settings


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_wal_and_shm_are_the_owners_only(
        tmp_path: Path, open_umask: None) -> None:
    database = tmp_path / "loyalty.db"
    service = PointsService(load_settings(database_url=f"sqlite:///{database}"))
    try:
        assert service.member_count() == 0
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert {path.name: mode(path) for path in files} == {
            "loyalty.db": 0o600, "loyalty.db-wal": 0o600, "loyalty.db-shm": 0o600}
    finally:
        service.db.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path, open_umask: None) -> None:
    database = tmp_path / "shared.db"
    database.touch(mode=0o640)
    service = PointsService(load_settings(database_url=f"sqlite:///{database}"))
    service.db.dispose()
    assert mode(database) == 0o640  # an operator's choice is theirs
