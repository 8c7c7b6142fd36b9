"""The PostgreSQL the store, load and server tests run against (127.0.0.1:5432 on the dev and CI machines).

Each test gets its own schema, so tests and concurrent runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from functools import cache

import pytest

PG_URL = os.environ.get("TRIAL2FHIR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def pg_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception:
        return False
    return True


def fresh_pg_url(prefix: str) -> str:
    """A URL naming a new, unused schema; skips the test when no PostgreSQL answers."""
    if not pg_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    return f"{PG_URL}?schema={prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def drop(url: str) -> None:
    """Remove the schema of a URL from ``fresh_pg_url`` (SQLite URLs: nothing to do, tmp_path goes)."""
    if url.startswith("postgresql"):
        from adapter.store.postgres import PostgresStore

        cleanup = PostgresStore(url)
        cleanup.drop_schema()
        cleanup.close()
