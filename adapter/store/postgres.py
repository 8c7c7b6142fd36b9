"""PostgreSQL back-end (psycopg 3): the same tables, shared by any number of server processes.

Write transactions run at READ COMMITTED with row locks (``SELECT ... FOR UPDATE`` on the resource
being written, transaction-scoped advisory locks for conditional creates); a unique-key race
between two creators, a deadlock or a serialisation failure makes :meth:`SqlStore.transact` rerun
the whole transaction, so no update is lost and none is applied twice.  ``?schema=NAME`` in the
URL keeps the tables in their own schema (tests use one schema per run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adapter.store.base import SCHEMA_VERSION, Pool, SqlStore, StoreError, StoreUnavailable, schema_statements

MIGRATION_LOCK = 0x7472_6961_6C32  # "trial2": one advisory lock id for schema creation


def split_schema(url: str) -> tuple[str, str | None]:
    """The connection URL without our ``schema`` parameter, and that schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), schema or None


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    # The shared SQL uses qmark placeholders and never a literal '?' or '%'.
    return sql.replace("?", "%s")


class PostgresStore(SqlStore):
    dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str, pool_size: int = 10, timeout_s: float = 30.0) -> None:
        import psycopg

        self._psycopg = psycopg
        self.conninfo, self.schema = split_schema(url)
        self._timeout = timeout_s
        super().__init__(url, Pool(self._connect, pool_size, timeout_s, self._healthy))
        self._migrate()

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=int(max(self._timeout, 1)))
            # A runaway query (a pathological chain) must not hold a connection and a CPU for ever.
            conn.execute(f"SET statement_timeout = {int(self._timeout * 1000)}")
            if self.schema:
                conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(self.schema)))
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {str(error).strip()}") from error
        return conn

    def _healthy(self, conn: Any) -> bool:
        return not conn.closed and conn.info.transaction_status == self._psycopg.pq.TransactionStatus.IDLE

    def _migrate(self) -> None:
        psycopg = self._psycopg
        with self.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                if self.schema:
                    conn.execute(
                        psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(psycopg.sql.Identifier(self.schema))
                    )
                with conn.transaction():
                    for statement in schema_statements('TEXT COLLATE "C"', "BYTEA", "BIGINT"):
                        conn.execute(statement)
                    row = conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
                    if row is None:
                        conn.execute(
                            "INSERT INTO store_meta (key, value) VALUES ('schema_version', %s)", (str(SCHEMA_VERSION),)
                        )
                    elif int(row[0]) > SCHEMA_VERSION:
                        raise StoreError(f"the database was written by a newer trial2fhir (schema {row[0]})")
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    def execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return conn.execute(_pg(sql), params)
        except self._psycopg.errors.QueryCanceled as error:
            raise StoreError(f"the query took longer than {self._timeout:g} s and was cancelled") from error

    def executemany(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(_pg(sql), rows)

    def insert_rows(self, conn: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        # COPY: one stream instead of one protocol message per row (several times faster for the
        # hundreds of index rows a study has).
        sql = self._psycopg.sql
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        if not conn.closed and conn.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")

    def retryable(self, error: Exception) -> bool:
        errors = self._psycopg.errors
        return isinstance(
            error,
            errors.SerializationFailure
            | errors.DeadlockDetected
            | errors.UniqueViolation
            | errors.LockNotAvailable
            | self._psycopg.OperationalError,
        )

    def broken(self, error: Exception) -> bool:
        return isinstance(error, self._psycopg.OperationalError | self._psycopg.InterfaceError)

    def lock_key(self, conn: Any, key: str) -> None:
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (number,))

    def drop_schema(self) -> None:
        """Remove this store's schema and everything in it (tests)."""
        if not self.schema:
            raise StoreError("drop_schema needs a store opened with ?schema=NAME")
        psycopg = self._psycopg
        with self.connection() as conn:
            conn.execute(
                psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(self.schema))
            )
