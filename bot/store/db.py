"""The SQLite connection: the one module that imports sqlite_utils.

The store runs every query on a single dedicated thread: SQLite work never blocks the event loop,
and writes are serialised, which makes check-and-set operations (locks, approvals) atomic.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlite_utils import Database, Migrations

from bot.store.schema import MIGRATIONS

P = ParamSpec("P")
T = TypeVar("T")
Row = dict[str, Any]

# SQLite's primary result codes for a write the storage refused: the disk or the file size limit is reached
# (SQLITE_FULL, or SQLITE_IOERR for a write(2) that failed outright), the file or its directory is read-only,
# or the journal or WAL cannot be opened.
_WRITE_FAILURES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}
)

_migrations = Migrations("release-bot")
for _name, _sql in MIGRATIONS:

    def _apply(db: Database, sql: str = _sql) -> None:
        db.executescript(sql)

    _apply.__name__ = _name
    _migrations(name=_name)(_apply)


class Sql:
    """A thin, typed face over one SQLite connection (WAL, busy timeout, foreign keys)."""

    def __init__(self, path: Path | str, *, read_only: bool = False, nowait: bool = False) -> None:
        memory = str(path) == ":memory:"
        conn = sqlite3.connect(
            ":memory:" if memory else str(path), check_same_thread=False, isolation_level=None, timeout=5.0
        )
        conn.execute("PRAGMA busy_timeout = 5000")
        if read_only:  # a reader beside the writer (WAL lets it read while the writer writes)
            conn.execute("PRAGMA query_only = ON")
            self._lock = threading.RLock()
            self.db = Database(conn)
            return
        if nowait:
            # A second writer for tiny writes made on the event loop (AsyncStore.claim_now): it never waits
            # for the write lock (busy → the caller goes through the store thread instead) and never runs a
            # checkpoint itself (the store thread's connection does), so a write here is an append to the WAL.
            # The database is already migrated by the store's own connection.
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._lock = threading.RLock()
            self.db = Database(conn)
            return
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        # One connection, used from the store thread and (in tools and tests) directly: every statement
        # and every transaction holds this lock, so uses never interleave.
        self._lock = threading.RLock()
        self.db = Database(conn)
        if not memory:
            self.db.enable_wal()
        _migrations.apply(self.db)

    def applied_migrations(self) -> list[str]:
        """Names of the schema migrations applied to this database, oldest first."""
        return [m.name for m in _migrations.applied(self.db)]

    def pending_migrations(self) -> list[str]:
        """Names of migrations this code knows and the database does not have yet."""
        return [m.name for m in _migrations.pending(self.db)]

    # Reads go to the connection directly. sqlite-utils' Database.query wraps every statement in a savepoint
    # (SAVEPOINT, the statement, RELEASE: three statements where one does) and re-parses its first keyword, so
    # that a statement returning no rows can be refused and rolled back; every statement here is written to
    # return rows, and one that does not is still refused below. The hottest read (`/release status`, in the
    # ack) spent most of its store time in that wrapping (bench/ack.py).
    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[Row]:
        """All rows of a SELECT (or a write ``… RETURNING``, run to completion) as dicts."""
        with self._lock:
            cursor = self.db.conn.execute(sql, params)
            try:
                if cursor.description is None:
                    raise ValueError("query() is for statements that return rows; use execute()")
                keys = [d[0] for d in cursor.description]
                return [dict(zip(keys, row, strict=True)) for row in cursor]
            finally:
                cursor.close()

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Row | None:
        """The first row of a SELECT, or None."""
        with self._lock:
            cursor = self.db.conn.execute(sql, params)
            try:
                if cursor.description is None:
                    raise ValueError("one() is for statements that return rows; use execute()")
                row = cursor.fetchone()
                return None if row is None else dict(zip([d[0] for d in cursor.description], row, strict=True))
            finally:
                cursor.close()  # a half-read SELECT would keep its read snapshot open

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement (autocommit unless inside :meth:`transaction`)."""
        with self._lock:
            return self.db.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT: takes the write lock up front so check-then-write is atomic."""
        with self._lock:
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.conn.execute("ROLLBACK")
                raise
            self.db.conn.execute("COMMIT")

    def integrity_check(self) -> str:
        """SQLite's own integrity check ('ok' when healthy)."""
        row = self.one("PRAGMA integrity_check")
        return str(next(iter(row.values()))) if row else "no answer"

    def backup_to(self, target: Path) -> None:
        """Online backup (SQLite backup API) to another file while the bot keeps running."""
        dest = sqlite3.connect(str(target))
        try:
            self.db.conn.backup(dest)
        finally:
            dest.close()

    def close(self) -> None:
        self.db.close()


class StoreWriteError(Exception):
    """The storage refused a write (full disk, I/O error, read-only file): the call's transaction is not
    written. The engine remembers what it could not record and records it once writes work again."""


def _write_failure(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _WRITE_FAILURES


def busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused because another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Runner:
    """Runs store calls on the store's own thread and awaits them."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the store thread; a write the storage refused raises StoreWriteError."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        except sqlite3.Error as exc:
            if _write_failure(exc):
                raise StoreWriteError(str(exc)) from exc
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
