"""SQLite back-end: one file, WAL journal, zero set-up.

WAL lets readers run while one writer commits; ``synchronous=NORMAL`` keeps the database consistent
whenever the process is killed (a committed transaction is in the WAL before COMMIT returns; only
an operating-system crash can lose the last few commits, never corrupt the file).  Writers are
serialised by ``BEGIN IMMEDIATE`` across processes and by a lock across the threads of this one,
so there is no lost update and no deadlock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapter.store.base import SCHEMA_VERSION, Pool, SqlStore, StoreError, schema_statements


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/path`` (relative), ``sqlite:////abs/path`` or a plain file path."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
    elif url.startswith("sqlite:"):
        raise ValueError(f"{url!r}: write sqlite:///relative/path or sqlite:////absolute/path")
    else:
        path = url
    if not path or path == ":memory:":
        raise ValueError("the SQLite store needs a file (several connections share it)")
    return Path(path)


class SQLiteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, url: str, pool_size: int = 8, busy_timeout_s: float = 30.0) -> None:
        self.path = sqlite_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout = busy_timeout_s
        self._write_lock = threading.Lock()
        super().__init__(url, Pool(self._connect, pool_size, busy_timeout_s, lambda conn: True))
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-32000")
        except sqlite3.Error as error:
            raise StoreError(f"cannot open SQLite database {self.path}: {error}") from error
        return conn

    def _migrate(self) -> None:
        def work(tx: Any) -> None:
            for statement in schema_statements("TEXT", "BLOB", "INTEGER"):
                tx.execute(statement)
            row = tx.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                tx.execute("INSERT INTO store_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer trial2fhir (schema {row[0]})")

        try:
            self.transact(work)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a usable SQLite database: {error}") from error

    def execute(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return conn.execute(sql, params)

    def executemany(self, conn: sqlite3.Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    def begin_write(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def retryable(self, error: Exception) -> bool:
        message = str(error).lower()
        return isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message)

    def broken(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.ProgrammingError)

    @contextmanager
    def write_guard(self) -> Iterator[None]:
        with self._write_lock:
            yield
