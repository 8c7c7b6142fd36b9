"""Worker side of a batch: one task of input units in, one list of per-record outcomes out.

Runs in a worker process (``--jobs N``) or inline (``--jobs 1``); the code path is the same, so
output does not depend on the number of jobs.  Workers read their own input (files, archive
members, NDJSON line ranges) so the parent only plans and writes.  Everything a record produces
is serialised here (orjson, the same bytes as ``adapter.serialize.to_ndjson_line``), so the parent
only appends bytes.

An outcome is a plain tuple (cheap to pickle):

- ``(CONVERTED, locator, study, digest, lines, counts, orgs, unmapped, known)``: ``lines`` maps a
  resource type to its NDJSON bytes (or ``"Bundle"`` to one Bundle line), ``orgs`` holds the
  Organization lines as ``id<TAB>json<LF>`` (de-duplicated by the parent), ``known`` says the
  study was in the previous output (incremental runs: changed rather than added);
- ``(UNCHANGED, locator, study, digest)``: same content as in the previous output, not converted;
- ``(FAILED, locator, study_or_None, operation_outcome_line, reason)``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from adapter.batch.inputs import BrokenUnit, BytesUnit, FileUnit, LinesUnit, MemberUnit, Task, Unit
from adapter.batch.outcome import MAX_VALIDATION_ISSUES, failure_line, validation_issues
from adapter.batch.zipstream import ZipMemberError, is_zip, read_member
from adapter.errors import Trial2FhirError
from adapter.pipeline import convert_record
from adapter.readers import ReadItem, read_items
from adapter.record import TrialRecord
from mappings import ids
from mappings.bundle import to_bundle

CONVERTED, UNCHANGED, FAILED = 0, 1, 2

Outcome = tuple[Any, ...]

_DIGEST_EXCLUDE = {"source": {"version"}}
"""The registry's snapshot marker (v2 ``versionHolder``, legacy download date, ICTRP refresh
date) changes on every download for every study, so it is left out of the change digest."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    fhir_version: str
    output: str
    """``ndjson`` or ``bundles``."""
    bundle_type: str
    base_url: str
    validate: bool
    previous_state: str | None = None
    """SQLite state of the previous complete run (incremental); read-only here."""
    invariants: bool = True
    """With ``validate``: False skips the FHIRPath invariants (``--validate structure``)."""


def record_digest(record: TrialRecord) -> str:
    """Content digest of a record, the registry's snapshot marker excluded (see ``_DIGEST_EXCLUDE``)."""
    return hashlib.sha256(record.model_dump_json(exclude=_DIGEST_EXCLUDE).encode()).hexdigest()[:32]


class Worker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._archives: dict[str, BinaryIO] = {}
        self._validator = None
        if config.validate:
            from adapter.batch.validate import load_validator

            self._validator = load_validator(config.fhir_version, config.invariants)[1]
        self._previous: sqlite3.Connection | None = None
        if config.previous_state:
            uri = f"file:{config.previous_state}?mode=ro"
            self._previous = sqlite3.connect(uri, uri=True, check_same_thread=False)

    def close(self) -> None:
        for f in self._archives.values():
            f.close()
        self._archives.clear()
        if self._previous is not None:
            self._previous.close()
            self._previous = None

    # -- reading -----------------------------------------------------------------------------

    def _archive(self, path: str) -> BinaryIO:
        f = self._archives.get(path)
        if f is None:
            f = self._archives[path] = open(path, "rb")  # noqa: SIM115 - kept open across tasks
        return f

    def _items(self, unit: Unit) -> Iterator[ReadItem]:
        """The records of one unit, every problem turned into a failed item naming its locator."""
        if isinstance(unit, BrokenUnit):
            yield ReadItem(unit.locator, error=_Unreadable(unit.message))
            return
        if isinstance(unit, LinesUnit | BytesUnit) and (isinstance(unit, LinesUnit) or unit.first_line is not None):
            yield from self._line_items(unit)
            return
        try:
            if isinstance(unit, FileUnit):
                with open(unit.path, "rb") as f:
                    data = f.read()
            elif isinstance(unit, MemberUnit):
                data = read_member(self._archive(unit.archive), unit.entry)
            else:
                data = unit.data
        except (OSError, ZipMemberError) as error:
            message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            yield ReadItem(unit.locator, error=_Unreadable(f"{unit.locator}: cannot read: {message}"))
            return
        if isinstance(unit, MemberUnit) and is_zip(data):
            message = f"{unit.locator}: an archive inside an archive is not read (extract the inner archive first)"
            yield ReadItem(unit.locator, error=_Unreadable(message))
            return
        yield from _safe_read(data, unit.locator)

    def _line_items(self, unit: LinesUnit | BytesUnit) -> Iterator[ReadItem]:
        if isinstance(unit, LinesUnit):
            try:
                with open(unit.path, "rb") as f:
                    data = os.pread(f.fileno(), unit.length, unit.offset)
            except OSError as error:
                yield ReadItem(unit.locator, error=_Unreadable(f"{unit.locator}: cannot read: {error.strerror}"))
                return
            number = unit.first_line
        else:
            data, number = unit.data, unit.first_line or 1
        for line in data.split(b"\n"):
            if line.strip():
                yield from _safe_read(line, f"{unit.locator}#{number}")
            number += 1

    # -- converting ----------------------------------------------------------------------------

    def run(self, task: Task) -> list[Outcome]:
        out: list[Outcome] = []
        for unit in task.units:
            for item in self._items(unit):
                out.append(self._convert(item))
        return out

    def _previous_digest(self, study: str) -> str | None:
        if self._previous is None:
            return None
        row = self._previous.execute("SELECT digest FROM studies WHERE study = ?", (study,)).fetchone()
        return row[0] if row else None

    def _convert(self, item: ReadItem) -> Outcome:
        locator = item.locator
        if item.record is None:
            error = item.error
            code = getattr(error, "code", "processing")
            return (FAILED, locator, None, failure_line(locator, str(error), code), code)
        record = item.record
        study: str | None = None
        try:
            study = ids.study_id(record)
            digest = record_digest(record)
            previous = self._previous_digest(study)
            if previous == digest:
                return (UNCHANGED, locator, study, digest)
            resources = convert_record(record, self.config.fhir_version)
            if self._validator is not None:
                failed = self._validation_failure(locator, record, resources)
                if failed is not None:
                    return (FAILED, locator, study, failed, "invalid")
            lines, counts, orgs = self._serialize(resources)
        except Exception as error:  # a mapping bug must cost one record, not the batch
            message = f"{locator}: internal error: {type(error).__name__}: {error} (please report this)"
            return (FAILED, locator, study, failure_line(locator, message, "exception"), "exception")
        return (CONVERTED, locator, study, digest, lines, counts, orgs, tuple(record.unmapped), previous is not None)

    def _validation_failure(self, locator: str, record: TrialRecord, resources: list[dict[str, Any]]) -> bytes | None:
        assert self._validator is not None
        extra: list[dict[str, Any]] = []
        bad = 0
        for resource in resources:
            issues = self._validator(resource)
            if issues:
                bad += 1
                extra.extend(validation_issues(resource, issues))
        if not bad:
            return None
        message = (
            f"{locator}: {record.registry_id}: {bad} of {len(resources)} resources do not validate "
            f"as FHIR {self.config.fhir_version}; nothing of this record was written"
        )
        if len(extra) > MAX_VALIDATION_ISSUES:
            dropped = len(extra) - MAX_VALIDATION_ISSUES
            extra = extra[:MAX_VALIDATION_ISSUES]
            message += f" ({dropped} further issues not listed)"
        return failure_line(locator, message, "invalid", extra)

    def _serialize(self, resources: list[dict[str, Any]]) -> tuple[dict[str, bytes], dict[str, int], bytes]:
        counts: dict[str, int] = {}
        for resource in resources:
            counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
        if self.config.output == "bundles":
            bundle = to_bundle(resources, self.config.bundle_type, self.config.base_url)
            return {"Bundle": orjson.dumps(bundle) + b"\n"}, counts, b""
        grouped: dict[str, list[bytes]] = {}
        orgs: list[bytes] = []
        for resource in resources:
            line = orjson.dumps(resource)
            resource_type = resource["resourceType"]
            if resource_type == "Organization":
                orgs.append(resource["id"].encode() + b"\t" + line + b"\n")
            else:
                grouped.setdefault(resource_type, []).append(line + b"\n")
        return {t: b"".join(parts) for t, parts in grouped.items()}, counts, b"".join(orgs)


class _Unreadable(Trial2FhirError):
    code = "structure"


def _safe_read(data: bytes, locator: str) -> Iterator[ReadItem]:
    """``read_items`` with whole-input failures (and reader bugs) turned into one failed item."""
    try:
        yield from read_items(data, locator)
    except Trial2FhirError as error:
        yield ReadItem(locator, error=error)
    except Exception as error:  # a reader bug must cost one input, not the batch
        yield ReadItem(locator, error=_Internal(f"{locator}: internal error: {type(error).__name__}: {error}"))


class _Internal(Trial2FhirError):
    code = "exception"


# -- process plumbing ------------------------------------------------------------------------

_worker: Worker | None = None


def _process_identity(pid: int) -> bytes | None:
    """(state, start time) of a process from /proc, or None when it is gone; b"" without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None
    except OSError:
        return b""
    state, start_time = fields[0], fields[19]
    return None if state in (b"Z", b"X") else start_time


def _watch_parent(parent: int) -> None:
    """Exit when the parent dies, SIGKILL included: a killed run must leave no busy orphans.

    Workers cannot notice by themselves: they hold the fork server's liveness pipe and both ends
    of their task queue, so nothing ever reaches EOF.  A SIGKILLed parent stays a zombie until
    whoever started it reaps it (``kill(pid, 0)`` still succeeds then), hence /proc: zombie, gone,
    or a recycled pid with another start time all mean the parent is dead.
    """
    identity = _process_identity(parent)
    while True:
        time.sleep(0.5)
        now = _process_identity(parent)
        if now is None or (identity and now != identity):
            os._exit(0)
        if now == b"":
            try:  # no /proc (not Linux): a missing pid is all that can be seen
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass


def init_process(config: WorkerConfig, parent: int) -> None:
    """Process-pool initializer: the parent handles Ctrl-C, workers just stop with it."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    tune_gc()
    _worker = Worker(config)


def run_in_process(task: Task) -> list[Outcome]:
    assert _worker is not None, "init_process was not called"
    return _worker.run(task)


def tune_gc() -> None:
    """Conversion allocates many short-lived acyclic dicts; the cyclic GC scanning them is ~9% of
    the time.  Freezing the long-lived import-time objects and collecting less often removes most
    of it while still bounding memory (cycles are rare and still collected)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
