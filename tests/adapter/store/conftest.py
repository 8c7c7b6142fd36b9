"""Store fixtures: every store test runs on SQLite and, when reachable, on PostgreSQL (own schema per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import drop, fresh_pg_url

from adapter.store import Store, open_store


def store_url_for(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite3"
    return fresh_pg_url("t2f_test")


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
