"""Where the transaction boundary lives: engines for SQLite and PostgreSQL, the unit of work
with bounded retries of transient failures, and schema migrations on start.

SQLite: WAL journal (readers beside the one writer), full sync, and writes that take the
write lock at `BEGIN IMMEDIATE`, so a transaction that reads a balance and then debits it
cannot be overtaken. PostgreSQL: READ COMMITTED with the member row locked
(`SELECT ... FOR UPDATE`) by whoever changes that member's points.

A transient failure (database locked, serialization failure, deadlock, lost connection, a
database that cannot be reached) rolls the whole unit back and runs it again, at most
DB_RETRY_ATTEMPTS times; after that the caller gets a "try again later" code (815, or 889
for points coming in). A unit either commits whole or not at all. A database URL that does
not parse is refused with 888.

On PostgreSQL a unit waits for row locks DB_LOCK_TIMEOUT_SECONDS in all, across its
attempts (`lock_timeout`: the whole budget on the connection, what is left of it on a
retry); a lock not granted when the budget is spent answers "try again later" at once.
The worst case for the caller is the budget plus the attempts' own work and the backoff
between them (under 0.5 s at the default 5 attempts), not attempts x timeout.

Migrations run only when the schema is behind: the current revision is read first, in a
read transaction (no write lock), so a read command answers while another process writes.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from core.status import PointsError

log = logging.getLogger(__name__)
T = TypeVar("T")
# Told of each retry and give-up of a unit of work: (event, reason), event "retry" or
# "gave_up", reason "transient" or "unique_key". The bot counts them (bot.metrics); core
# itself knows no metrics library.
DbObserver = Callable[[str, str], None]
MIGRATIONS = Path(__file__).parent / "migrations"
# SQLSTATEs worth a retry: serialization failure, deadlock, a lock not granted within the
# server's lock_timeout (PostgreSQL's "database is locked"), connection trouble.
_RETRY_SQLSTATES = {"40001", "40P01", "55P03", "08000", "08003", "08006", "57P01"}
_LOCK_NOT_AVAILABLE = "55P03"
_MIGRATION_LOCK = 727_001
_NOTHING = (object(), None)  # a PostgreSQL advisory lock id for migrations


# The databases the engine runs on (its locking and migrations are written for these).
DIALECTS = ("sqlite", "postgresql")
URL_EXAMPLES = "sqlite:///loyalty.db or postgresql+psycopg://user:password@host/loyalty"


class Retry(Exception):
    """Raised inside a unit of work to have it run again from the start."""


class Unreachable(Retry):
    """The database could not be opened or connected to (a transient failure: it may be
    back on the next attempt)."""


def url_problem(url: str) -> str | None:
    """Why `url` is not a database URL the engine can use, or None. Never echoes the URL
    (it may hold a password)."""
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError, TypeError) as error:
        reason = "the port is not a number" if "int()" in str(error) else "it does not parse"
        return f"not a database URL ({reason}); expected {URL_EXAMPLES}"
    if parsed.get_backend_name() not in DIALECTS:
        return (f"database {parsed.get_backend_name()!r} is not supported; expected "
                f"{URL_EXAMPLES}")
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return f"no database driver {parsed.drivername!r}; expected {URL_EXAMPLES}"
    except ImportError as error:
        return (f"the driver of {parsed.drivername!r} is not installed ({error.name}); "
                f"expected {URL_EXAMPLES}")
    return None


def is_transient(error: BaseException) -> bool:
    if isinstance(error, Retry):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OperationalError):
        text_ = str(error.orig).lower()
        if "locked" in text_ or "busy" in text_:
            return True
    orig = getattr(error, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate in _RETRY_SQLSTATES


def _create_owner_only(url: str) -> None:
    """Create a missing SQLite database file readable by its owner only (0600, whatever the
    umask); SQLite gives the -wal and -shm files it makes the database file's mode. An
    existing file is left as it is; a file that cannot be made is SQLite's to report."""
    database = make_url(url).database
    if not database or database.startswith("file:"):
        return
    try:
        handle = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # it exists, or its directory does not: SQLite says what is wrong
        return
    try:
        if hasattr(os, "fchmod"):  # POSIX (the umask may have taken bits off)
            os.fchmod(handle, 0o600)
    finally:
        os.close(handle)


def _pragma(connection: Connection, pragma: str) -> None:
    """Run a SQLite PRAGMA outside any transaction (some are ignored inside one)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA {pragma}")


class Database:
    """One database: its engine, its units of work, its migrations."""

    def __init__(self, url: str, *, retries: int = 5, pool: bool = True,
                 lock_timeout: float | None = None) -> None:
        problem = url_problem(url)
        if problem is not None:
            raise PointsError(888, f"DATABASE_URL: {problem}")
        self.url = url
        self.retries = retries
        self.is_sqlite = url.startswith("sqlite")
        # PostgreSQL: seconds a unit waits for locks in all (None: as long as it takes).
        self.lock_timeout = None if self.is_sqlite else lock_timeout
        self.engine = self._make_engine(url, pool, self.lock_timeout)
        self._write_engine = self.engine.execution_options(begin_immediate=True)
        self._migrated = False
        self._lock = threading.Lock()
        self.observers: list[DbObserver] = []

    @staticmethod
    def _make_engine(url: str, pool: bool, lock_timeout: float | None) -> Engine:
        if not url.startswith("sqlite"):
            options: dict[str, Any] = {"pool_pre_ping": True}
            if not pool:
                options["poolclass"] = NullPool
            if lock_timeout is not None:
                # Set when the connection opens: no statement on a unit's way.
                options["connect_args"] = {
                    "options": f"-c lock_timeout={max(1, round(lock_timeout * 1000))}"}
            return create_engine(url, **options)
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise PointsError(888, "DATABASE_URL must name a SQLite file, not memory: the "
                                   "bot, the CLI and the workers share it")
        _create_owner_only(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, say when a transaction begins.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            immediate = connection.get_execution_options().get("begin_immediate")
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def session(self, *, write: bool) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        engine = self._write_engine if write else self.engine
        with Session(engine, expire_on_commit=False) as session, session.begin():
            try:
                session.connection()  # connect and begin here, to tell "unreachable" apart
            except DBAPIError as error:
                if is_transient(error):
                    raise
                raise Unreachable(_reason(error)) from error
            yield session

    def run(self, unit: Callable[[Session], T], *, write: bool = True,
            transient_code: int = 815,
            keep_writes_on: tuple[type[PointsError], ...] = ()) -> T:
        """Run `unit` in one transaction, again from the start after a transient failure.

        A refusal rolls the transaction back, except one of `keep_writes_on`: then what the
        unit wrote is committed and the refusal raised after (a wrong validation code's
        counted attempt)."""
        deadline = None if self.lock_timeout is None else time.monotonic() + self.lock_timeout
        for attempt in range(1, self.retries + 1):
            try:
                with self.session(write=write) as session:
                    if deadline is not None and attempt > 1:
                        # A retry waits only for what is left of the lock budget.
                        left = max(1, round((deadline - time.monotonic()) * 1000))
                        session.connection().execute(
                            text("SELECT set_config('lock_timeout', :ms, true)"),
                            {"ms": f"{left}ms"})
                    try:
                        return unit(session)
                    except keep_writes_on as refusal:
                        kept = refusal
                raise kept
            except PointsError:
                raise
            except IntegrityError:
                # A concurrent writer took a unique key first (an external reference number,
                # a bill number): run again, and the unit sees what it wrote.
                if attempt == self.retries:
                    raise
                log.info("unique key taken by a concurrent writer; running again")
                self._tell("retry", "unique_key")
            except Exception as error:
                if not is_transient(error):
                    raise
                log.warning("transient database failure (attempt %d of %d): %s",
                            attempt, self.retries, _reason(error))
                spent = (deadline is not None and time.monotonic() >= deadline
                         and getattr(getattr(error, "orig", None), "sqlstate", None)
                         == _LOCK_NOT_AVAILABLE)
                if attempt == self.retries or spent:
                    self._tell("gave_up", "transient")
                    raise _refusal(transient_code, error) from error
                self._tell("retry", "transient")
            time.sleep(min(0.5, 0.01 * 2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _tell(self, event: str, reason: str) -> None:
        for observer in self.observers:
            try:
                observer(event, reason)
            except Exception:  # an observer never breaks a unit of work
                log.exception("database observer failed")

    def location(self) -> str:
        """Where the data is, for the operator: a SQLite file's absolute path, or the
        server's URL without its password."""
        url = make_url(self.url)
        if self.is_sqlite:
            return f"SQLite file {Path(url.database or '').resolve()}"
        return url.render_as_string(hide_password=True)

    def migrate(self, *, transient_code: int = 815) -> None:
        """Bring the schema to the newest migration (safe to call from several processes).

        The current revision is compared with the newest one first, in a read transaction:
        when the schema is up to date (the usual case) no write lock is taken."""
        with self._lock:
            if self._migrated:
                return
            if self.revision_behind(transient_code=transient_code):
                try:
                    self._upgrade()
                except DBAPIError as error:
                    log.warning("migration failed: %s", _reason(error))
                    if not (is_transient(error) or _connecting(error)):
                        raise
                    raise _refusal(transient_code, error) from error
            self._migrated = True

    def revision_behind(self, *, transient_code: int = 815) -> bool:
        """Whether the schema is older than the newest migration (a read; no write lock)."""
        from alembic.runtime.migration import MigrationContext

        heads = set(_scripts().get_heads())

        def unit(session: Session) -> bool:
            context = MigrationContext.configure(session.connection())
            return set(context.get_current_heads()) != heads
        return self.run(unit, write=False, transient_code=transient_code)

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        engine = self._write_engine if self.is_sqlite else self.engine
        with engine.connect() as connection:
            if self.is_sqlite:
                # Batch migrations rebuild a table (copy, drop, rename), and dropping a
                # parent table with foreign keys on would fail: off while migrating (it
                # cannot change inside a transaction), checked before committing.
                _pragma(connection, "foreign_keys=OFF")
            else:
                # A migration waits for its locks however long (a start waits for
                # another's migration): no DB_LOCK_TIMEOUT_SECONDS here.
                connection.execute(text("SET lock_timeout = 0"))
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                connection.commit()
            try:
                # On SQLite this begins IMMEDIATE: one process migrates, the others wait.
                with connection.begin():
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                    if self.is_sqlite and connection.exec_driver_sql(
                            "PRAGMA foreign_key_check").first() is not None:
                        raise RuntimeError("a migration broke a foreign key")
            finally:
                if self.is_sqlite:
                    _pragma(connection, "foreign_keys=ON")
                else:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": _MIGRATION_LOCK})
                    connection.execute(text("RESET lock_timeout"))
                    connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()


@functools.cache
def _scripts() -> Any:
    """The migration scripts (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def _reason(error: BaseException) -> str:
    """The driver's own words for a failure, on one line (no SQL, no parameters)."""
    if isinstance(error, Unreachable):
        return str(error)
    cause = getattr(error, "orig", None) or error
    words = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {words}"[:300] if words else type(cause).__name__


def _connecting(error: BaseException) -> bool:
    """A failure to open or connect to the database (before any statement ran)."""
    return isinstance(error, DBAPIError) and error.statement is None


def _refusal(code: int, error: BaseException) -> PointsError:
    """The "try again later" answer: a short detail anyone may see (a member in the chat),
    and the driver's words as the `cause` fact, for the operator's command line."""
    unreachable = isinstance(error, Unreachable) or (_connecting(error)
                                                     and not is_transient(error))
    detail = "the database cannot be reached" if unreachable else "the database is busy"
    return PointsError(code, detail, cause=_reason(error))


def executemany(connection: Connection, statement: Any,
                rows: Sequence[Mapping[str, Any]]) -> None:
    """Run `statement` (an insert or update with bind parameters) once per row of `rows`
    in one DBAPI `executemany`: compiled once, each value converted by its type's bind
    processor, without SQLAlchemy's per-row bookkeeping, which costs more than the
    database's own work in a large import. Every row has the keys of the first."""
    if not rows:
        return
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    memo: dict[int, tuple[Any, Any]] = {}
    processors = [(index, process) for index, name in enumerate(names)
                  if (process := compiled.binds[name].type.bind_processor(dialect))]
    params: list[Any] = []
    for row in rows:
        values = [row[name] for name in names]
        for index, process in processors:
            value = values[index]
            if value is not None:
                # The same object in every row (an import's moment) is converted once.
                if value is not memo.get(index, _NOTHING)[0]:
                    memo[index] = (value, process(value))
                values[index] = memo[index][1]
        params.append(tuple(values) if compiled.positional
                      else dict(zip(names, values, strict=True)))
    connection.exec_driver_sql(compiled.string, params)
