"""Store fixtures: every store test runs on SQLite and, when reachable, on PostgreSQL (own schema per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from adapter.store import Store, open_store

PG_URL = os.environ.get("TRIAL2FHIR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def pg_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception:
        return False
    return True


def store_url_for(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite3"
    if not pg_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    return f"{PG_URL}?schema=t2f_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        from adapter.store.postgres import PostgresStore

        cleanup = PostgresStore(url)
        cleanup.drop_schema()
        cleanup.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = store_url_for(request.param, tmp_path)
    yield url
    drop(url)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def second_store_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty store on the same database server as ``store_url`` (to compare two write paths)."""
    url = f"sqlite:///{tmp_path}/second.sqlite3" if store_url.startswith("sqlite") else store_url + "_2"
    yield url
    drop(url)
