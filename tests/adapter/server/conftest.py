"""Live servers for the server tests: real uvicorn on a free port, SQLite and (when reachable) PostgreSQL.

``loaded``: one read-mostly server per database with the repository fixtures loaded (session scope).
``writable``: a fresh, empty server per test, with write tokens configured.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.store import open_store
from adapter.store.loader import default_fixture_paths, load_paths

# The suite runs with --import-mode=importlib: make the helpers module beside this file importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pg_support import drop
from server_helpers import READ_TOKEN, REPO, WRITE_TOKEN, Running, db_url, start


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Fixtures loaded; snapshot_limit at its minimum so long searches also page beyond the snapshot."""
    url = db_url(request.param, tmp_path_factory.mktemp("loaded"))
    store = open_store(url)
    report = load_paths(store, default_fixture_paths(REPO), workers=1)
    assert not report.failures, report.failures
    running = start(store, request.param, write_tokens=[WRITE_TOKEN], snapshot_limit=100, gzip=False)
    yield running
    running.server.stop()
    store.close()
    drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def writable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    url = db_url(request.param, tmp_path)
    store = open_store(url)
    running = start(store, request.param, write_tokens=[WRITE_TOKEN, "second-token"], read_tokens=[READ_TOKEN])
    yield running
    running.server.stop()
    store.close()
    drop(url)


@pytest.fixture
def sqlite_writable(tmp_path: Path) -> Iterator[Running]:
    """For tests about HTTP behaviour that the database cannot change (run once)."""
    store = open_store(db_url("sqlite", tmp_path))
    running = start(store, "sqlite", write_tokens=[WRITE_TOKEN], max_body_bytes=64 * 1024, max_json_depth=40)
    yield running
    running.server.stop()
    store.close()
