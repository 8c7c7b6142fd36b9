"""Versioned FHIR resource storage with a search index: SQLite (embedded default) or PostgreSQL.

``open_store(url)`` picks the back-end from the URL: ``sqlite:///path`` or a plain file path, or
``postgresql://...`` (optionally ``?schema=NAME``).  Both implement :class:`adapter.store.base.Store`.
"""

from __future__ import annotations

from adapter.store.base import (
    Query,
    Store,
    Stored,
    StoreError,
    StoreUnavailable,
    Tx,
    VersionConflict,
    WriteResult,
)

__all__ = [
    "Query",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Stored",
    "Tx",
    "VersionConflict",
    "WriteResult",
    "open_store",
]


def open_store(url: str, pool_size: int = 8, timeout_s: float = 30.0) -> Store:
    """Open (and create or migrate) the store at ``url``."""
    if url.startswith(("postgresql://", "postgres://")):
        from adapter.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size, timeout_s=timeout_s)
    from adapter.store.sqlite import SQLiteStore

    return SQLiteStore(url, pool_size=pool_size, busy_timeout_s=timeout_s)
