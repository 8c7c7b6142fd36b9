"""The run journal: one SQLite database per run, the crash-safety and incremental state of a batch.

While a run is in progress it lives in ``DIR/.trial2fhir/run/run.sqlite`` beside the part files it
describes; when the run is published it becomes ``DIR/.trial2fhir/state.sqlite``, the state the
next (incremental) run starts from.  It holds:

- ``meta``: options and converter fingerprint, the inputs, the resume point (``next_task`` and
  the digest of the plan up to it), counters, the committed size of every part file, the phase;
- ``studies``: one row per converted study: where its lines are in the output files (``extents``),
  its content digest, its resource counts, its Organization lines and its unmapped source fields,
  so a later run can reuse the output of an unchanged study without converting it again, and
  ``added``/``changed``/``unchanged`` relative to the previous run;
- ``failed_studies``: studies whose record failed (they are not "removed" in an incremental run);
- ``org_variant``: every distinct Organization line seen per id with the number of records that
  produced it, from which the published Organization file is chosen (see ``organization_winners``);
- ``unmapped``: source fields the readers did not map (by field, values left out), with the number
  of records naming each.

Everything is written inside one transaction per checkpoint, committed only after the part files
are flushed and fsynced, so after a crash the journal and the part-file sizes it records agree,
and anything appended after the last checkpoint is cut off on resume.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY,
    locator TEXT NOT NULL,
    digest TEXT NOT NULL,
    extents BLOB NOT NULL,
    counts BLOB NOT NULL,
    orgs BLOB NOT NULL,
    unmapped BLOB NOT NULL,
    change TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS failed_studies (study TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS org_variant (
    id TEXT NOT NULL, line BLOB NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (id, line)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unmapped (path TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
"""

_CACHE_KIB = 2 * 1024
"""SQLite page cache per connection: bounded whatever the number of studies (the operating
system's file cache serves the rest; lookups are by primary key)."""


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
    db.execute("PRAGMA temp_store=FILE")
    return db


class Journal:
    """The run database, used by the parent process only (workers read the previous state)."""

    def __init__(self, path: Path, create: bool = False) -> None:
        self.path = path
        if create and path.exists():
            raise FileExistsError(path)
        self.db = connect(path)
        if create:
            self.db.executescript(SCHEMA)
        self.db.execute("BEGIN")

    # -- meta --------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return orjson.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, orjson.dumps(value)))

    def commit(self) -> None:
        """Make everything since the last commit durable, then open the next transaction."""
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()

    # -- studies -----------------------------------------------------------------------------

    def study_locator(self, study: str) -> str | None:
        row = self.db.execute("SELECT locator FROM studies WHERE study = ?", (study,)).fetchone()
        return row[0] if row else None

    def add_study(
        self,
        study: str,
        locator: str,
        digest: str,
        extents: dict[str, tuple[int, int]],
        counts: dict[str, int],
        orgs: bytes,
        unmapped: tuple[str, ...] | list[str],
        change: str,
    ) -> None:
        self.db.execute(
            "INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (study, locator, digest, orjson.dumps(extents), orjson.dumps(counts), orgs, orjson.dumps(unmapped), change),
        )
        if orgs:
            self.add_orgs(orgs)
        if unmapped:
            # Readers write "field (problem: 'value')"; counting by field keeps the table as small
            # as the registry schema however many distinct values a batch holds.
            fields = {entry.split(" (", 1)[0] for entry in unmapped}
            self.db.executemany(
                "INSERT INTO unmapped VALUES (?, 1) ON CONFLICT (path) DO UPDATE SET n = n + 1",
                ((f,) for f in sorted(fields)),
            )

    def add_failed_study(self, study: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO failed_studies VALUES (?)", (study,))

    def add_orgs(self, orgs: bytes) -> None:
        rows = []
        for raw in orgs.split(b"\n"):
            if raw:
                org_id, line = raw.split(b"\t", 1)
                rows.append((org_id.decode(), line))
        self.db.executemany(
            "INSERT INTO org_variant VALUES (?, ?, 1) ON CONFLICT (id, line) DO UPDATE SET n = n + 1", rows
        )

    def organization_winners(self) -> Iterator[bytes]:
        """One Organization line per id, ordered by id.

        Organization content is only the name, which records spell differently under one id
        (``ids.organization_id`` ignores case and spacing).  The spelling produced by the most
        records wins; ties go to the smallest line in byte order.  The choice depends only on the
        set of records converted, never on input order, ``--jobs`` or resumes.  Streams over the
        primary-key index, holding one id's variants at a time.
        """
        current: str | None = None
        best: tuple[int, bytes] | None = None
        for org_id, line, n in self.db.execute("SELECT id, line, n FROM org_variant ORDER BY id, line"):
            if org_id != current:
                if best is not None:
                    yield best[1]
                current, best = org_id, None
            if best is None or n > best[0]:
                best = (n, line)
        if best is not None:
            yield best[1]

    def organization_count(self) -> int:
        return self.db.execute("SELECT COUNT(DISTINCT id) FROM org_variant").fetchone()[0]

    def unmapped_fields(self) -> list[tuple[str, int]]:
        return [(p, n) for p, n in self.db.execute("SELECT path, n FROM unmapped ORDER BY n DESC, path")]

    def changed_studies(self) -> Iterator[tuple[str, dict[str, list[int]]]]:
        query = "SELECT study, extents FROM studies WHERE change = 'changed' ORDER BY study"
        for study, extents in self.db.execute(query):
            yield study, orjson.loads(extents)

    def study_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM studies").fetchone()[0]


class PreviousState:
    """The state of the previous complete run, read-only: what an incremental run may reuse."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path, read_only=True)

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return orjson.loads(row[0]) if row else default

    def study(self, study: str) -> tuple[str, dict[str, list[int]], dict[str, int], bytes, list[str]] | None:
        row = self.db.execute(
            "SELECT digest, extents, counts, orgs, unmapped FROM studies WHERE study = ?", (study,)
        ).fetchone()
        if row is None:
            return None
        return row[0], orjson.loads(row[1]), orjson.loads(row[2]), row[3], orjson.loads(row[4])

    def removed(self, journal: Journal) -> Iterator[tuple[str, dict[str, list[int]]]]:
        """Studies of the previous output that this run neither converted nor saw fail, by id."""
        for study, extents in self.db.execute("SELECT study, extents FROM studies ORDER BY study"):
            seen = journal.db.execute(
                "SELECT 1 FROM studies WHERE study = ? UNION ALL SELECT 1 FROM failed_studies WHERE study = ?",
                (study, study),
            ).fetchone()
            if seen is None:
                yield study, orjson.loads(extents)

    def close(self) -> None:
        self.db.close()
