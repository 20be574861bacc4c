"""Sandbox databases: whether two database URLs name the same database (`same_database`,
the sandbox's first guard), the mark that makes a database the sandbox's, and the only way
to empty one.

The sandbox (`bot.sandbox`, `bot.terminal`) seeds demo members and its `/reset` deletes
every row. Its guard against being pointed at production compares database URLs; this is
the second layer, by content: a database the sandbox may seed or empty carries a
`SandboxMark` row, written by `claim` when the sandbox first takes the database while it
holds no member. A database with members and no mark (a production one, however its URL
was spelt) is refused with 899 by `claim` and by `wipe`, and nothing in it changes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session, SQLModel, select

from core.db import Database
from core.models import Member, SandboxMark
from core.status import PointsError

NOT_A_SANDBOX = ("this database holds members and is not a sandbox database (it has no "
                 "sandbox mark): the sandbox seeds demo members and /reset empties its "
                 "database, so it refuses a database that may be production's. Give the "
                 "sandbox a database of its own (SANDBOX_DATABASE_URL; a sandbox database "
                 "made before sandboxes marked theirs must be started afresh)")


def _claim(session: Session) -> None:
    """Inside a unit of work: mark the database as the sandbox's if it has no member yet;
    899 if it has members and no mark."""
    if session.exec(select(SandboxMark.id)).first() is not None:
        return
    if session.exec(select(Member.id).limit(1)).first() is not None:
        raise PointsError(899, NOT_A_SANDBOX)
    session.add(SandboxMark(id=1, created_at=datetime.now(UTC)))


def claim(db: Database) -> None:
    """Make sure `db` is a sandbox database: one already marked, or one without members,
    which is marked now (the check and the mark are one transaction). Refuses with 899 a
    database that holds members and has no mark."""
    db.run(_claim)


def is_sandbox(db: Database) -> bool:
    """Whether `db` carries the sandbox mark."""
    return db.run(lambda s: s.exec(select(SandboxMark.id)).first() is not None, write=False)


def wipe(db: Database) -> None:
    """Delete every row of every table except the mark (the schema and its migrations
    stay), in one transaction that first checks the mark like `claim`: a database with
    members and no mark is refused with 899 and left as it was."""
    def unit(session: Session) -> None:
        _claim(session)
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name != SandboxMark.__tablename__:
                session.exec(table.delete())
    db.run(unit)


__all__ = ["NOT_A_SANDBOX", "claim", "is_sandbox", "wipe"]


# ---------------------------------------------------------------- which database

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433,
                 "oracle": 1521}


def same_database(first: str, second: str) -> bool:
    """Whether two database URLs may name the same database, compared by identity, not
    spelling. SQLite: the same real file (relative paths, `./`, `..` and symlinks
    resolved; hard links by inode). A server: the same database name on the same server,
    where a host is its addresses (names resolved; localhost, 127.0.0.1, ::1, this
    machine's own names and a Unix socket are all the local server), a missing port is the
    default one (5432 for PostgreSQL), and `?host=...&port=...&dbname=...` in the query
    counts as much as the URL's own parts. When in doubt (a URL that does not parse), two
    URLs are the same if their text is."""
    try:
        a, b = make_url(first.strip()), make_url(second.strip())
    except (ArgumentError, ValueError):
        return first.strip() == second.strip()
    backend_a, backend_b = a.get_backend_name(), b.get_backend_name()
    if backend_a != backend_b:
        return False
    if backend_a == "sqlite":
        return _same_sqlite_file(a, b)
    return _database_name(a) == _database_name(b) and bool(_servers(a) & _servers(b))


def _same_sqlite_file(a: URL, b: URL) -> bool:
    name_a, name_b = _sqlite_path(a.database), _sqlite_path(b.database)
    if name_a is None or name_b is None:  # memory: never shared by two processes
        return name_a == name_b
    path_a, path_b = Path(name_a).expanduser(), Path(name_b).expanduser()
    with contextlib.suppress(OSError):
        if path_a.exists() and path_b.exists():
            return os.path.samefile(path_a, path_b)
    return path_a.resolve() == path_b.resolve()


def _sqlite_path(database: str | None) -> str | None:
    """The file a SQLite URL's database part names (a `file:` URI's path), or None for
    memory."""
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        path = urlsplit(database).path
        return None if not path or path == ":memory:" else path
    return database


def _query(url: URL, name: str) -> list[str]:
    """A query parameter's values, comma-separated lists split (libpq's multiple hosts)."""
    value = url.query.get(name)
    values = [value] if isinstance(value, str) else list(value or ())
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _database_name(url: URL) -> str:
    """The database's name; libpq's default is the user's name."""
    return (url.database or next(iter(_query(url, "dbname")), "")
            or url.username or next(iter(_query(url, "user")), ""))


def _servers(url: URL) -> set[tuple[str, int]]:
    """The (address, port) pairs the URL may reach; the local server as ("local", port)."""
    hosts = [url.host] if url.host else _query(url, "host") or [""]
    ports = [url.port] if url.port else [int(p) for p in _query(url, "port") if p.isdecimal()]
    default = DEFAULT_PORTS.get(url.get_backend_name(), 0)
    found: set[tuple[str, int]] = set()
    for index, host in enumerate(hosts):
        port = ports[min(index, len(ports) - 1)] if ports else default
        found |= {(address, port) for address in _addresses(host)}
    return found


def _addresses(host: str) -> set[str]:
    """Where `host` leads: {"local"} for this machine (no host, a Unix socket directory, a
    loopback or own address), else its resolved addresses, else its name in lower case."""
    name = host.strip().strip("[]").lower()
    if not name or name.startswith("/") or name.startswith("@"):
        return {"local"}
    resolved = _resolve(name)
    if resolved & _local_addresses() or any(_is_loopback(a) for a in resolved):
        return {"local"}
    return resolved or {name}


def _resolve(name: str) -> set[str]:
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return set()
    return {str(info[4][0]).split("%")[0] for info in infos}


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _local_addresses() -> set[str]:
    """The addresses this machine's own names resolve to."""
    names = {socket.gethostname(), "localhost"}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn())
    found: set[str] = set()
    for name in names:
        found |= _resolve(name)
    return found


def safe_url(url: str) -> str:
    """A database URL as it may be shown: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "the same URL"
