"""Kill a writing process (SIGKILL, at arbitrary moments) and check the store reopens consistent."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import orjson
import pytest

from adapter.store import open_store
from adapter.store.params import index_rows

WRITER = r"""
import itertools, sys
from adapter.store import open_store
store = open_store(sys.argv[1])
start = int(sys.argv[2])
print("ready", flush=True)
for n in itertools.count(start):
    def work(tx, n=n):
        for i in range(20):
            tx.put("4.0", {"resourceType": "Organization", "id": f"o{i}", "name": f"Org {i} round {n}",
                           "extension": [{"url": "urn:round", "valueInteger": n}]})
    store.transact(work)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_writer_leaves_a_consistent_store(store_url: str) -> None:
    rounds = 0
    for kill_after in (0.7, 1.1, 0.4):
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, str(rounds + 1)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready", process.stderr.read() if process.stderr else ""
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

        store = open_store(store_url)
        try:
            current = [store.read("4.0", "Organization", f"o{i}") for i in range(20)]
            assert all(c is not None for c in current)
            bodies = [orjson.loads(c.content) for c in current if c is not None]
            found = {b["extension"][0]["valueInteger"] for b in bodies}
            assert len(found) == 1, f"a transaction was half applied: rounds {sorted(found)}"
            rounds = found.pop()
            for stored, body in zip(current, bodies, strict=True):
                assert stored is not None
                assert stored.version == rounds == int(body["meta"]["versionId"])
                versions = [s.version for s in store.history("4.0", "Organization", stored.rid, 10_000)]
                assert versions == list(range(rounds, 0, -1))
            with store.connection() as conn:
                rows = store.execute(
                    conn, "SELECT rid, norm FROM idx_string WHERE fv = '4.0' AND param = 'name' ORDER BY rid"
                ).fetchall()
                if store.dialect == "sqlite":
                    assert store.execute(conn, "PRAGMA integrity_check").fetchone()[0] == "ok"
            expected = sorted(
                (b["id"], row[1]) for b in bodies for row in index_rows("4.0", b).strings if row[0] == "name"
            )
            assert sorted((r[0], r[1]) for r in rows) == expected, "the index matches the committed content"
        finally:
            store.close()
    assert rounds > 1, "the writer committed something before it was killed"
