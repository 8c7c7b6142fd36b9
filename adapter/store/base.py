"""The storage interface and the SQL both back-ends share.

Design (the same tables in SQLite and PostgreSQL):

* ``resources``: the current version of every resource, keyed by (FHIR version, type, id), with its
  JSON (``meta.versionId``/``meta.lastUpdated`` included, so a read is one row fetch and no
  re-serialisation), a content hash (a write that changes nothing creates no version), and a
  ``deleted`` flag (a delete is a version too: reads answer 410, history shows it).
* ``history``: every earlier version, moved there when it is superseded (the current one is never
  stored twice).
* ``idx_token``, ``idx_string``, ``idx_ref``, ``idx_date``: search index rows of the current
  version (see :mod:`adapter.store.params`), replaced in the same transaction as the resource.
* ``search_pages``: snapshots of search results, so paging links stay stable while writers work.
* ``ingest_log``: registry files already loaded (by content hash), so a restart does not reload.

R4 and R5 resources are separate rows (``fv`` = ``"4.0"``/``"5.0"``): converting a registry record
stores both, and a client writing to one base changes only that base.  Every write runs inside
:meth:`SqlStore.transact`, which retries the whole unit on serialisation conflicts, so concurrent
writers never lose an update; crash safety is the database's own (SQLite WAL, PostgreSQL MVCC).
"""

from __future__ import annotations

import hashlib
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from adapter.store.params import index_rows

IndexTuple = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]
"""A resource's index rows (tokens, strings, refs, dates) as plain lists: cheap to pickle."""
Prepared = tuple[str, IndexTuple]
"""What ``Tx.put_many`` computes per resource besides SQL: the content hash and the index rows."""


def index_tuple(fhir_version: str, resource: dict[str, Any]) -> IndexTuple:
    rows = index_rows(fhir_version, resource)
    return (rows.tokens, rows.strings, rows.refs, rows.dates)


def prepare(fhir_version: str, resource: dict[str, Any]) -> Prepared:
    """The part of a write that needs no database (run it where the CPU is free: conversion workers)."""
    return (content_hash(resource), index_tuple(fhir_version, resource))


INDEX_TABLES = ("idx_token", "idx_string", "idx_ref", "idx_date")
ARCHIVE_SQL = (
    "INSERT INTO history (fv, rtype, rid, version, updated_us, deleted, method, content) "
    "SELECT fv, rtype, rid, version, updated_us, deleted, method, content FROM resources "
    "WHERE fv = ? AND rtype = ? AND rid = ?"
)
"""Copies the current version of one resource into ``history`` before it is replaced."""

PUT_MANY_CHUNK = 500
"""Resources looked up by one statement in ``Tx.put_many`` (two parameters each: far below SQLite's limit)."""

T = TypeVar("T")

SCHEMA_VERSION = 1
IN_CHUNK = 500
"""Largest ``IN (...)`` list sent at once (SQLite's variable limit, PostgreSQL plan size)."""


class StoreError(Exception):
    """A storage failure a client can be told about (``str`` is the message)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is busy beyond the configured wait."""


class VersionConflict(StoreError):
    """``If-Match`` named a version that is not the current one (HTTP 412)."""

    def __init__(self, message: str, current: int | None) -> None:
        super().__init__(message)
        self.current = current


@dataclass(frozen=True, slots=True)
class Stored:
    """One version of a resource as stored."""

    rtype: str
    rid: str
    version: int
    updated_us: int
    deleted: bool
    method: str
    content: bytes | None = None

    @property
    def last_updated(self) -> str:
        return format_instant(self.updated_us)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def resource(self) -> dict[str, Any]:
        if self.content is None:
            raise ValueError(f"{self.rtype}/{self.rid} version {self.version} holds no content")
        return orjson.loads(self.content)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: ``created``, ``updated``, ``unchanged``, ``kept`` (create-only and present),
    ``deleted``, or ``absent`` (delete of nothing)."""

    outcome: str
    stored: Stored | None


@dataclass(slots=True)
class Query:
    """A search over one type: SQL conditions on ``resources r`` (``?`` placeholders) and an order."""

    fv: str
    rtype: str
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    order_params: list[Any] = field(default_factory=list)

    def add(self, sql: str, *params: Any) -> None:
        self.where.append(sql)
        self.params.extend(params)


def format_instant(us: int) -> str:
    moment = datetime.fromtimestamp(us // 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{(us % 1_000_000) // 1000:03d}Z"


def now_us() -> int:
    # Millisecond precision: what meta.lastUpdated shows is exactly what _lastUpdated compares.
    return time.time_ns() // 1_000_000 * 1000


def content_hash(resource: dict[str, Any]) -> str:
    """Hash of a resource ignoring ``meta.versionId``/``meta.lastUpdated`` (the store sets those)."""
    body = dict(resource)
    meta = body.pop("meta", None)
    if isinstance(meta, dict):
        rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        if rest:
            body["meta"] = rest
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def with_meta(resource: dict[str, Any], version: int, updated_us: int) -> dict[str, Any]:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    out: dict[str, Any] = {
        "resourceType": resource["resourceType"],
        "id": resource["id"],
        "meta": {"versionId": str(version), "lastUpdated": format_instant(updated_us), **meta},
    }
    out.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    return out


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int) -> str:
    return ", ".join("?" * count)


class Pool:
    """A small blocking connection pool (stdlib only): connections are made on demand up to ``size``."""

    def __init__(self, factory: Callable[[], Any], size: int, timeout: float, healthy: Callable[[Any], bool]) -> None:
        self._factory = factory
        self._size = size
        self._timeout = timeout
        self._healthy = healthy
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._made = 0
        self._lock = threading.Lock()
        self._all: list[Any] = []
        self.closed = False

    def get(self) -> Any:
        if self.closed:
            raise StoreUnavailable("the store is closed")
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = None
            with self._lock:
                if self._made < self._size:
                    self._made += 1
                    make = True
                else:
                    make = False
            if make:
                try:
                    conn = self._factory()
                except Exception:
                    with self._lock:
                        self._made -= 1
                    raise
                with self._lock:
                    self._all.append(conn)
                return conn
            try:
                conn = self._idle.get(timeout=self._timeout)
            except queue.Empty:
                raise StoreUnavailable("all database connections are busy; try again") from None
        if not self._healthy(conn):
            self.discard(conn)
            return self.get()
        return conn

    def put(self, conn: Any) -> None:
        if self.closed:
            self._close(conn)
            return
        self._idle.put(conn)

    def discard(self, conn: Any) -> None:
        with self._lock:
            self._made -= 1
            if conn in self._all:
                self._all.remove(conn)
        self._close(conn)

    @staticmethod
    def _close(conn: Any) -> None:
        with suppress(Exception):  # closing a broken connection may itself fail; nothing left to do
            conn.close()

    def close(self) -> None:
        self.closed = True
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            self._close(conn)


class Store(ABC):
    """What the server and the loader need from storage; :class:`SqlStore` implements it for both databases."""

    url: str
    dialect: str

    @abstractmethod
    def read(self, fv: str, rtype: str, rid: str) -> Stored | None: ...

    @abstractmethod
    def vread(self, fv: str, rtype: str, rid: str, version: int) -> Stored | None: ...

    @abstractmethod
    def history(self, fv: str, rtype: str, rid: str, limit: int) -> list[Stored]: ...

    @abstractmethod
    def search_ids(self, query: Query, limit: int, offset: int = 0) -> list[str]: ...

    @abstractmethod
    def count(self, query: Query) -> int: ...

    @abstractmethod
    def fetch(self, fv: str, rtype: str, rids: Sequence[str]) -> dict[str, Stored]: ...

    @abstractmethod
    def refs_from(self, fv: str, rtype: str, rids: Sequence[str], params: Sequence[str]) -> list[tuple[str, str]]: ...

    @abstractmethod
    def refs_to(
        self, fv: str, source_type: str, param: str, ttype: str, tids: Sequence[str], limit: int
    ) -> list[str]: ...

    @abstractmethod
    def transact(self, work: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def save_page(self, token: str, ids: Sequence[str], total: int) -> None: ...

    @abstractmethod
    def load_page(self, token: str, max_age_s: float) -> tuple[list[str], int] | None: ...

    @abstractmethod
    def has_page(self, token: str, max_age_s: float) -> bool: ...

    @abstractmethod
    def generation(self, fv: str, rtype: str) -> int:
        """Changes whenever a resource of the type is written (the latest ``updated_us``)."""

    @abstractmethod
    def is_ingested(self, source_key: str) -> bool: ...

    @abstractmethod
    def counts(self) -> dict[tuple[str, str], int]: ...

    @abstractmethod
    def analyze(self) -> None:
        """Refresh the planner's statistics (after bulk loads: without them PostgreSQL picks nested loops)."""

    @abstractmethod
    def close(self) -> None: ...


class Tx:
    """One write transaction (see :meth:`SqlStore.transact`): every method runs on the same connection."""

    def __init__(self, store: SqlStore, conn: Any, timestamp_us: int) -> None:
        self.store = store
        self.conn = conn
        self.now_us = timestamp_us

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.store.execute(self.conn, sql, params)

    def lock(self, key: str) -> None:
        """Serialise transactions that use the same key (conditional creates of the same criteria)."""
        self.store.lock_key(self.conn, key)

    def current(self, fv: str, rtype: str, rid: str) -> Stored | None:
        """The current version's metadata (no content), locked until the transaction ends."""
        row = self.execute(
            "SELECT version, updated_us, deleted, method, hash FROM resources WHERE fv = ? AND rtype = ? AND rid = ?"
            + self.store.for_update,
            (fv, rtype, rid),
        ).fetchone()
        if row is None:
            return None
        return Stored(rtype, rid, row[0], row[1], bool(row[2]), row[3])

    def read(self, fv: str, rtype: str, rid: str) -> Stored | None:
        return self.store.read_on(self.conn, fv, rtype, rid)

    def find(self, query: Query, limit: int) -> list[str]:
        return self.store.search_ids_on(self.conn, query, limit)

    def put(
        self,
        fv: str,
        resource: dict[str, Any],
        *,
        method: str = "PUT",
        if_match: int | None = None,
        create_only: bool = False,
    ) -> WriteResult:
        """Create or update ``resource`` (its ``resourceType``/``id`` are the key).

        No new version when the content (ignoring meta.versionId/lastUpdated) is unchanged;
        ``create_only`` leaves an existing resource alone; ``if_match`` raises VersionConflict
        unless the current version is that one.
        """
        rtype, rid = resource["resourceType"], resource["id"]
        digest = content_hash(resource)
        cur = self.execute(
            "SELECT version, updated_us, deleted, method, hash FROM resources WHERE fv = ? AND rtype = ? AND rid = ?"
            + self.store.for_update,
            (fv, rtype, rid),
        ).fetchone()
        live = cur is not None and not cur[2]
        if if_match is not None and (not live or cur[0] != if_match):
            current = cur[0] if live else None
            raise VersionConflict(
                f"{rtype}/{rid}: If-Match names version {if_match}, but the current version is "
                + (str(current) if current is not None else "none (the resource does not exist)"),
                current,
            )
        if live and (create_only or cur[4] == digest):
            return WriteResult(
                "kept" if create_only else "unchanged", Stored(rtype, rid, cur[0], cur[1], False, cur[3])
            )
        version = cur[0] + 1 if cur is not None else 1
        content = orjson.dumps(with_meta(resource, version, self.now_us))
        if cur is not None:
            self._archive(fv, rtype, rid)
            self.execute(
                "UPDATE resources SET version = ?, updated_us = ?, deleted = 0, method = ?, hash = ?, content = ? "
                "WHERE fv = ? AND rtype = ? AND rid = ?",
                (version, self.now_us, method, digest, content, fv, rtype, rid),
            )
            self._unindex(fv, rtype, rid)
        else:
            self.execute(
                "INSERT INTO resources (fv, rtype, rid, version, updated_us, deleted, method, hash, content) "
                "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (fv, rtype, rid, version, self.now_us, method, digest, content),
            )
        self._index(fv, rtype, rid, resource)
        stored = Stored(rtype, rid, version, self.now_us, False, method, content)
        return WriteResult("created" if not live else "updated", stored)

    def put_many(
        self,
        fv: str,
        resources: Sequence[dict[str, Any]],
        *,
        create_only: Collection[str] = (),
        prepared: Sequence[Prepared] | None = None,
    ) -> list[WriteResult]:
        """``put`` of each resource in order (``create_only`` for the types named), in a few statements.

        Bulk loads write thousands of resources per transaction; one ``put`` costs several round
        trips to the database, this costs one lookup per ``PUT_MANY_CHUNK`` resources plus one
        pipelined ``executemany`` per table.  The outcome is the same as calling ``put`` for each
        resource in turn: a resource written twice in one call is written in order.  ``prepared``
        (from :func:`prepare`, aligned with ``resources``) lets bulk loaders compute the costly
        part in their conversion processes.
        """
        results: list[WriteResult] = []
        for start in range(0, len(resources), PUT_MANY_CHUNK):
            end = start + PUT_MANY_CHUNK
            ready = prepared[start:end] if prepared is not None else None
            results.extend(self._put_chunk(fv, resources[start:end], create_only, ready))
        return results

    def _put_chunk(
        self,
        fv: str,
        resources: Sequence[dict[str, Any]],
        create_only: Collection[str],
        prepared: Sequence[Prepared] | None,
    ) -> list[WriteResult]:
        keys = list(dict.fromkeys((r["resourceType"], r["id"]) for r in resources))
        rows = self.execute(
            "SELECT rtype, rid, version, updated_us, deleted, method, hash FROM resources WHERE fv = ? AND "
            f"(rtype, rid) IN (VALUES {', '.join(['(?, ?)'] * len(keys))})" + self.store.for_update,
            (fv, *(part for key in keys for part in key)),
        ).fetchall()
        current = {(row[0], row[1]): row[2:] for row in rows}
        archived: list[tuple[str, str, str]] = []
        updates: list[tuple[Any, ...]] = []
        inserts: list[tuple[Any, ...]] = []
        indexed: list[tuple[str, dict[str, Any], IndexTuple | None]] = []
        written: set[tuple[str, str]] = set()
        results: list[WriteResult] = []

        def flush() -> None:
            if archived:
                self.store.executemany(self.conn, ARCHIVE_SQL, archived)
                self.store.executemany(
                    self.conn,
                    "UPDATE resources SET version = ?, updated_us = ?, deleted = 0, method = 'PUT', hash = ?, "
                    "content = ? WHERE fv = ? AND rtype = ? AND rid = ?",
                    updates,
                )
                for table in INDEX_TABLES:
                    self.store.executemany(
                        self.conn, f"DELETE FROM {table} WHERE fv = ? AND rtype = ? AND rid = ?", archived
                    )
            if inserts:
                self.store.executemany(
                    self.conn,
                    "INSERT INTO resources (fv, rtype, rid, version, updated_us, deleted, method, hash, content) "
                    "VALUES (?, ?, ?, ?, ?, 0, 'PUT', ?, ?)",
                    inserts,
                )
            self._index_many(fv, indexed)
            for batch in (archived, updates, inserts, indexed):
                batch.clear()
            written.clear()

        for position, resource in enumerate(resources):
            key = (resource["resourceType"], resource["id"])
            if key in written:
                # Written earlier in this chunk: its new row must exist before it is archived again.
                flush()
            rtype, rid = key
            ready = prepared[position] if prepared is not None else None
            digest = ready[0] if ready is not None else content_hash(resource)
            cur = current.get(key)
            live = cur is not None and not cur[2]
            keep = rtype in create_only
            if cur is not None and live and (keep or cur[4] == digest):
                results.append(
                    WriteResult("kept" if keep else "unchanged", Stored(rtype, rid, cur[0], cur[1], False, cur[3]))
                )
                continue
            version = cur[0] + 1 if cur is not None else 1
            content = orjson.dumps(with_meta(resource, version, self.now_us))
            if cur is not None:
                archived.append((fv, rtype, rid))
                updates.append((version, self.now_us, digest, content, fv, rtype, rid))
            else:
                inserts.append((fv, rtype, rid, version, self.now_us, digest, content))
            indexed.append((rid, resource, ready[1] if ready is not None else None))
            written.add(key)
            current[key] = (version, self.now_us, 0, "PUT", digest)
            results.append(
                WriteResult(
                    "updated" if live else "created", Stored(rtype, rid, version, self.now_us, False, "PUT", content)
                )
            )
        flush()
        return results

    def delete(self, fv: str, rtype: str, rid: str, *, if_match: int | None = None) -> WriteResult:
        cur = self.current(fv, rtype, rid)
        live = cur is not None and not cur.deleted
        if if_match is not None and (not live or cur is None or cur.version != if_match):
            current = cur.version if live and cur else None
            raise VersionConflict(f"{rtype}/{rid}: If-Match names version {if_match}, current is {current}", current)
        if cur is None:
            return WriteResult("absent", None)
        if cur.deleted:
            return WriteResult("absent", cur)
        version = cur.version + 1
        self._archive(fv, rtype, rid)
        self.execute(
            "UPDATE resources SET version = ?, updated_us = ?, deleted = 1, method = 'DELETE', hash = '', "
            "content = NULL WHERE fv = ? AND rtype = ? AND rid = ?",
            (version, self.now_us, fv, rtype, rid),
        )
        self._unindex(fv, rtype, rid)
        return WriteResult("deleted", Stored(rtype, rid, version, self.now_us, True, "DELETE"))

    def mark_ingested(self, source_key: str, source: str, records: int) -> None:
        self.execute(
            "INSERT INTO ingest_log (source_key, source, loaded_us, records) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (source_key) DO NOTHING",
            (source_key, source[:1000], self.now_us, records),
        )

    def _archive(self, fv: str, rtype: str, rid: str) -> None:
        self.execute(ARCHIVE_SQL, (fv, rtype, rid))

    def _unindex(self, fv: str, rtype: str, rid: str) -> None:
        for table in INDEX_TABLES:
            self.execute(f"DELETE FROM {table} WHERE fv = ? AND rtype = ? AND rid = ?", (fv, rtype, rid))

    def _index_many(self, fv: str, resources: list[tuple[str, dict[str, Any], IndexTuple | None]]) -> None:
        tokens: list[tuple[Any, ...]] = []
        strings: list[tuple[Any, ...]] = []
        refs: list[tuple[Any, ...]] = []
        dates: list[tuple[Any, ...]] = []
        for rid, resource, ready in resources:
            rows = ready if ready is not None else index_tuple(fv, resource)
            key = (fv, resource["resourceType"], rid)
            tokens.extend(key + row for row in rows[0])
            strings.extend(key + row for row in rows[1])
            refs.extend(key + row for row in rows[2])
            dates.extend(key + row for row in rows[3])
        self._insert_index(tokens, strings, refs, dates)

    def _insert_index(
        self,
        tokens: list[tuple[Any, ...]],
        strings: list[tuple[Any, ...]],
        refs: list[tuple[Any, ...]],
        dates: list[tuple[Any, ...]],
    ) -> None:
        insert = self.store.insert_rows
        if tokens:
            insert(self.conn, "idx_token", ("fv", "rtype", "rid", "param", "sys", "code"), tokens)
        if strings:
            insert(self.conn, "idx_string", ("fv", "rtype", "rid", "param", "norm", "raw"), strings)
        if refs:
            insert(self.conn, "idx_ref", ("fv", "rtype", "rid", "param", "ttype", "tid"), refs)
        if dates:
            insert(self.conn, "idx_date", ("fv", "rtype", "rid", "param", "lo", "hi"), dates)

    def _index(self, fv: str, rtype: str, rid: str, resource: dict[str, Any]) -> None:
        rows = index_rows(fv, resource)
        key = (fv, rtype, rid)
        self._insert_index(
            [key + row for row in rows.tokens],
            [key + row for row in rows.strings],
            [key + row for row in rows.refs],
            [key + row for row in rows.dates],
        )


def schema_statements(text: str, blob: str, bigint: str) -> list[str]:
    """The DDL, with the column types of the dialect (``text`` must compare bytewise for prefix ranges)."""
    ddl = f"""
    CREATE TABLE IF NOT EXISTS store_meta (key {text} PRIMARY KEY, value {text} NOT NULL);
    CREATE TABLE IF NOT EXISTS resources (
        fv {text} NOT NULL, rtype {text} NOT NULL, rid {text} NOT NULL,
        version INTEGER NOT NULL, updated_us {bigint} NOT NULL, deleted SMALLINT NOT NULL,
        method {text} NOT NULL, hash {text} NOT NULL, content {blob},
        PRIMARY KEY (fv, rtype, rid));
    CREATE INDEX IF NOT EXISTS resources_updated ON resources (fv, rtype, updated_us);
    CREATE TABLE IF NOT EXISTS history (
        fv {text} NOT NULL, rtype {text} NOT NULL, rid {text} NOT NULL,
        version INTEGER NOT NULL, updated_us {bigint} NOT NULL, deleted SMALLINT NOT NULL,
        method {text} NOT NULL, content {blob},
        PRIMARY KEY (fv, rtype, rid, version));
    CREATE TABLE IF NOT EXISTS idx_token (
        fv {text} NOT NULL, rtype {text} NOT NULL, rid {text} NOT NULL, param {text} NOT NULL,
        sys {text} NOT NULL, code {text} NOT NULL);
    CREATE INDEX IF NOT EXISTS idx_token_code ON idx_token (fv, rtype, param, code, sys);
    CREATE INDEX IF NOT EXISTS idx_token_rid ON idx_token (fv, rtype, rid);
    CREATE TABLE IF NOT EXISTS idx_string (
        fv {text} NOT NULL, rtype {text} NOT NULL, rid {text} NOT NULL, param {text} NOT NULL,
        norm {text} NOT NULL, raw {text} NOT NULL);
    CREATE INDEX IF NOT EXISTS idx_string_norm ON idx_string (fv, rtype, param, norm);
    CREATE INDEX IF NOT EXISTS idx_string_rid ON idx_string (fv, rtype, rid);
    CREATE TABLE IF NOT EXISTS idx_ref (
        fv {text} NOT NULL, rtype {text} NOT NULL, rid {text} NOT NULL, param {text} NOT NULL,
        ttype {text} NOT NULL, tid {text} NOT NULL);
    CREATE INDEX IF NOT EXISTS idx_ref_target ON idx_ref (fv, ttype, tid, rtype, param);
    CREATE INDEX IF NOT EXISTS idx_ref_rid ON idx_ref (fv, rtype, rid);
    CREATE TABLE IF NOT EXISTS idx_date (
        fv {text} NOT NULL, rtype {text} NOT NULL, rid {text} NOT NULL, param {text} NOT NULL,
        lo {bigint} NOT NULL, hi {bigint} NOT NULL);
    CREATE INDEX IF NOT EXISTS idx_date_lo ON idx_date (fv, rtype, param, lo);
    CREATE INDEX IF NOT EXISTS idx_date_rid ON idx_date (fv, rtype, rid);
    CREATE TABLE IF NOT EXISTS search_pages (
        token {text} PRIMARY KEY, created_us {bigint} NOT NULL, total INTEGER NOT NULL, ids {text} NOT NULL);
    CREATE INDEX IF NOT EXISTS search_pages_created ON search_pages (created_us);
    CREATE TABLE IF NOT EXISTS ingest_log (
        source_key {text} PRIMARY KEY, source {text} NOT NULL, loaded_us {bigint} NOT NULL, records INTEGER NOT NULL);
    """
    return [s.strip() for s in ddl.split(";") if s.strip()]


class SqlStore(Store):
    """Everything but connection handling, locking and retry rules, which the dialects provide."""

    for_update = ""
    """Row-lock suffix for ``SELECT`` inside write transactions (PostgreSQL: ``FOR UPDATE``)."""
    max_attempts = 8

    def __init__(self, url: str, pool: Pool) -> None:
        self.url = url
        self.pool = pool
        self._last_cleanup = 0.0

    # --- dialect hooks ------------------------------------------------------------------------

    @abstractmethod
    def execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...

    @abstractmethod
    def executemany(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def insert_rows(self, conn: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Append rows to ``table`` (the search index: hundreds of rows per study)."""
        marks = ", ".join("?" * len(columns))
        self.executemany(conn, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    @abstractmethod
    def begin_write(self, conn: Any) -> None: ...

    @abstractmethod
    def commit(self, conn: Any) -> None: ...

    @abstractmethod
    def rollback(self, conn: Any) -> None: ...

    @abstractmethod
    def retryable(self, error: Exception) -> bool: ...

    @abstractmethod
    def broken(self, error: Exception) -> bool:
        """True when the connection is unusable after ``error`` (it is discarded, not pooled)."""

    def lock_key(self, conn: Any, key: str) -> None:
        """Default: nothing (SQLite write transactions are already serial)."""

    @contextmanager
    def write_guard(self) -> Iterator[None]:
        """Held around each write transaction (SQLite serialises the threads of one process here)."""
        yield

    # --- connections --------------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[Any]:
        conn = self.pool.get()
        ok = True
        try:
            yield conn
        except Exception as error:
            ok = not self.broken(error)
            raise
        finally:
            if ok:
                self.pool.put(conn)
            else:
                self.pool.discard(conn)

    def transact(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one atomic transaction, retrying the whole of it on write conflicts.

        ``work`` must not have effects outside the transaction: it may run more than once.
        """
        delay = 0.005
        for attempt in range(self.max_attempts):
            with self.write_guard(), self.connection() as conn:
                try:
                    self.begin_write(conn)
                    result = work(Tx(self, conn, now_us()))
                    self.commit(conn)
                    return result
                except Exception as error:
                    with suppress(Exception):  # the connection is gone; the pool discards it below
                        self.rollback(conn)
                    if not self.retryable(error) or attempt == self.max_attempts - 1:
                        if self.retryable(error):
                            raise StoreUnavailable("the database stayed busy; try again") from error
                        raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)
        raise StoreUnavailable("the database stayed busy; try again")  # pragma: no cover - loop always returns

    # --- reads --------------------------------------------------------------------------------

    def read_on(self, conn: Any, fv: str, rtype: str, rid: str) -> Stored | None:
        row = self.execute(
            conn,
            "SELECT version, updated_us, deleted, method, content FROM resources "
            "WHERE fv = ? AND rtype = ? AND rid = ?",
            (fv, rtype, rid),
        ).fetchone()
        if row is None:
            return None
        return Stored(rtype, rid, row[0], row[1], bool(row[2]), row[3], _bytes(row[4]))

    def read(self, fv: str, rtype: str, rid: str) -> Stored | None:
        with self.connection() as conn:
            return self.read_on(conn, fv, rtype, rid)

    def vread(self, fv: str, rtype: str, rid: str, version: int) -> Stored | None:
        with self.connection() as conn:
            current = self.read_on(conn, fv, rtype, rid)
            if current is None:
                return None
            if current.version == version:
                return current
            row = self.execute(
                conn,
                "SELECT version, updated_us, deleted, method, content FROM history "
                "WHERE fv = ? AND rtype = ? AND rid = ? AND version = ?",
                (fv, rtype, rid, version),
            ).fetchone()
        if row is None:
            return None
        return Stored(rtype, rid, row[0], row[1], bool(row[2]), row[3], _bytes(row[4]))

    def history(self, fv: str, rtype: str, rid: str, limit: int) -> list[Stored]:
        with self.connection() as conn:
            current = self.read_on(conn, fv, rtype, rid)
            if current is None:
                return []
            rows = self.execute(
                conn,
                "SELECT version, updated_us, deleted, method, content FROM history "
                "WHERE fv = ? AND rtype = ? AND rid = ? ORDER BY version DESC LIMIT ?",
                (fv, rtype, rid, max(limit - 1, 0)),
            ).fetchall()
        return [current] + [Stored(rtype, rid, r[0], r[1], bool(r[2]), r[3], _bytes(r[4])) for r in rows]

    def _search_sql(self, query: Query, select: str) -> tuple[str, list[Any]]:
        where = " AND ".join(["r.fv = ?", "r.rtype = ?", "r.deleted = 0", *query.where])
        return f"SELECT {select} FROM resources r WHERE {where}", [query.fv, query.rtype, *query.params]

    def search_ids_on(self, conn: Any, query: Query, limit: int, offset: int = 0) -> list[str]:
        sql, params = self._search_sql(query, "r.rid")
        order = ", ".join([*query.order, "r.rid"])
        rows = self.execute(
            conn, f"{sql} ORDER BY {order} LIMIT ? OFFSET ?", [*params, *query.order_params, limit, offset]
        ).fetchall()
        return [row[0] for row in rows]

    def search_ids(self, query: Query, limit: int, offset: int = 0) -> list[str]:
        with self.connection() as conn:
            return self.search_ids_on(conn, query, limit, offset)

    def count(self, query: Query) -> int:
        sql, params = self._search_sql(query, "COUNT(*)")
        with self.connection() as conn:
            return int(self.execute(conn, sql, params).fetchone()[0])

    def fetch(self, fv: str, rtype: str, rids: Sequence[str]) -> dict[str, Stored]:
        out: dict[str, Stored] = {}
        unique = list(dict.fromkeys(rids))
        with self.connection() as conn:
            for part in chunks(unique):
                rows = self.execute(
                    conn,
                    "SELECT rid, version, updated_us, method, content FROM resources "
                    f"WHERE fv = ? AND rtype = ? AND deleted = 0 AND rid IN ({marks(len(part))})",
                    (fv, rtype, *part),
                ).fetchall()
                for row in rows:
                    out[row[0]] = Stored(rtype, row[0], row[1], row[2], False, row[3], _bytes(row[4]))
        return out

    def refs_from(self, fv: str, rtype: str, rids: Sequence[str], params: Sequence[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        with self.connection() as conn:
            for part in chunks(list(rids)):
                param_sql = f" AND param IN ({marks(len(params))})" if params else ""
                rows = self.execute(
                    conn,
                    "SELECT DISTINCT ttype, tid FROM idx_ref "
                    f"WHERE fv = ? AND rtype = ? AND rid IN ({marks(len(part))}){param_sql}",
                    (fv, rtype, *part, *params),
                ).fetchall()
                out.extend((row[0], row[1]) for row in rows)
        return list(dict.fromkeys(out))

    def refs_to(self, fv: str, source_type: str, param: str, ttype: str, tids: Sequence[str], limit: int) -> list[str]:
        out: list[str] = []
        with self.connection() as conn:
            for part in chunks(list(tids)):
                param_sql = " AND param = ?" if param != "*" else ""
                extra = (param,) if param != "*" else ()
                rows = self.execute(
                    conn,
                    "SELECT DISTINCT rid FROM idx_ref "
                    f"WHERE fv = ? AND ttype = ? AND tid IN ({marks(len(part))}) AND rtype = ?{param_sql} "
                    "ORDER BY rid LIMIT ?",
                    (fv, ttype, *part, source_type, *extra, limit),
                ).fetchall()
                out.extend(row[0] for row in rows)
        return list(dict.fromkeys(out))[:limit]

    # --- paging snapshots ---------------------------------------------------------------------

    def save_page(self, token: str, ids: Sequence[str], total: int) -> None:
        stamp = now_us()

        def work(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO search_pages (token, created_us, total, ids) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (token) DO UPDATE SET created_us = excluded.created_us, total = excluded.total, "
                "ids = excluded.ids",
                (token, stamp, total, "\n".join(ids)),
            )

        self.transact(work)

    def load_page(self, token: str, max_age_s: float) -> tuple[list[str], int] | None:
        cutoff = now_us() - int(max_age_s * 1_000_000)
        with self.connection() as conn:
            row = self.execute(
                conn, "SELECT total, ids, created_us FROM search_pages WHERE token = ?", (token,)
            ).fetchone()
        # Stamps have millisecond precision: a page saved in the same millisecond as the cutoff has
        # reached its age, so equality counts as expired (max_age_s=0 always expires).
        if row is None or row[2] <= cutoff:
            return None
        ids = str(row[1])
        return (ids.split("\n") if ids else []), int(row[0])

    def has_page(self, token: str, max_age_s: float) -> bool:
        cutoff = now_us() - int(max_age_s * 1_000_000)
        with self.connection() as conn:
            row = self.execute(
                conn, "SELECT 1 FROM search_pages WHERE token = ? AND created_us > ?", (token, cutoff)
            ).fetchone()
        return row is not None

    def generation(self, fv: str, rtype: str) -> int:
        with self.connection() as conn:
            row = self.execute(
                conn, "SELECT MAX(updated_us) FROM resources WHERE fv = ? AND rtype = ?", (fv, rtype)
            ).fetchone()
        return int(row[0] or 0)

    def expire_pages(self, max_age_s: float, every_s: float = 60.0) -> None:
        """Delete expired snapshots (at most once per ``every_s`` per process)."""
        now = time.monotonic()
        if now - self._last_cleanup < every_s:
            return
        self._last_cleanup = now
        cutoff = now_us() - int(max_age_s * 1_000_000)
        self.transact(lambda tx: tx.execute("DELETE FROM search_pages WHERE created_us < ?", (cutoff,)))

    # --- bookkeeping --------------------------------------------------------------------------

    def is_ingested(self, source_key: str) -> bool:
        with self.connection() as conn:
            row = self.execute(conn, "SELECT 1 FROM ingest_log WHERE source_key = ?", (source_key,)).fetchone()
        return row is not None

    def counts(self) -> dict[tuple[str, str], int]:
        with self.connection() as conn:
            rows = self.execute(
                conn,
                "SELECT fv, rtype, COUNT(*) FROM resources WHERE deleted = 0 GROUP BY fv, rtype ORDER BY fv, rtype",
            ).fetchall()
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def analyze(self) -> None:
        with self.connection() as conn:
            self.execute(conn, "ANALYZE")

    def close(self) -> None:
        self.pool.close()


def _bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return bytes(value)  # PostgreSQL may hand back memoryview
