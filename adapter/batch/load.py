"""Bulk loading into the server's store: an export directory, or registry records converted on the fly.

``load_inputs(store, inputs)`` is the entry point for ``trial2fhir load DIR|INPUT...``:

- a directory holding a ``manifest.json`` is a Bulk Data export (``trial2fhir convert --out``, or
  a server's ``$export`` saved to disk): ``load_export`` streams its NDJSON files line by line
  into the store in transactions of ``RESOURCES_PER_TRANSACTION`` resources, and applies its
  ``deleted`` Bundles (incremental exports) as deletes.  Only the export's FHIR version is
  written (the manifest says which).
- anything else is registry records: ``load_records`` converts them with the batch machinery
  (streaming zip, NDJSON split into ranges, ``jobs`` worker processes, memory bounded whatever
  the input size) into both R5 and R4, and writes both in the same transaction, exactly as
  ``adapter.store.loader.store_records`` does for ``trial2fhir serve --load``, in transactions of
  ``RECORDS_PER_TRANSACTION`` records.

Both go through the store's own ``Tx.put``/``Tx.delete`` (versioning, search index, no new
version for unchanged content), so a load is idempotent and a server can serve while it runs.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from adapter.batch.inputs import Planner, Task
from adapter.batch.output import MANIFEST
from adapter.store.base import Store, Tx

RESOURCES_PER_TRANSACTION = 5_000
RECORDS_PER_TRANSACTION = 200
SHARED_TYPES = frozenset({"Organization"})
"""Shared by many studies: an existing one is kept (the store loader's rule), never flip-flopped."""


@dataclass(slots=True)
class LoadSummary:
    records: int = 0
    failed: int = 0
    resources: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    """The first failures (one line each); all of them are counted in ``failed``."""

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n


MAX_LISTED_FAILURES = 100


def is_export(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def load_inputs(
    store: Store, inputs: list[str], *, jobs: int | None = None, progress: Callable[[str], None] | None = None
) -> LoadSummary:
    """Load export directories and registry records (in the order given) into ``store``."""
    summary = LoadSummary()
    records = [i for i in inputs if not is_export(i)]
    for item in inputs:
        if is_export(item):
            _merge(summary, load_export(store, Path(item), progress=progress))
    if records:
        _merge(summary, load_records(store, records, jobs=jobs, progress=progress))
    return summary


def _merge(into: LoadSummary, part: LoadSummary) -> None:
    into.records += part.records
    into.failed += part.failed
    into.resources += part.resources
    for outcome, n in part.outcomes.items():
        into.count(outcome, n)
    into.failures.extend(part.failures[: MAX_LISTED_FAILURES - len(into.failures)])


# -- Bulk Data export directories -------------------------------------------------------------


def export_version(manifest: dict[str, Any]) -> str | None:
    full = manifest.get("extension", {}).get("trial2fhir", {}).get("fhirVersion", "")
    return {"4.0.1": "4.0", "5.0.0": "5.0"}.get(full)


def load_export(
    store: Store,
    directory: Path,
    *,
    fhir_version: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadSummary:
    """Stream an export's NDJSON into ``store`` (``fhir_version`` is needed when the manifest lacks it)."""
    manifest = orjson.loads((directory / MANIFEST).read_bytes())
    version = fhir_version or export_version(manifest)
    if version not in ("4.0", "5.0"):
        raise ValueError(f"{directory}: the manifest does not say the FHIR version; give it (4.0 or 5.0)")
    summary = LoadSummary()
    for item in manifest.get("output", []):
        path = _inside(directory, item["url"])
        for batch in _batches(_lines(path), RESOURCES_PER_TRANSACTION):
            resources = [r for line in batch for r in _resources(orjson.loads(line))]

            def work(tx: Tx, resources: list[dict[str, Any]] = resources) -> list[str]:
                return [r.outcome for r in tx.put_many(version, resources, create_only=SHARED_TYPES)]

            for outcome in store.transact(work):
                summary.count(outcome)
            summary.resources += len(resources)
            if item["type"] in ("ResearchStudy", "Bundle"):
                summary.records += len(batch)
        if progress is not None:
            progress(f"{path.name}: {item.get('count', '?')} lines loaded")
    for item in manifest.get("deleted", []):
        path = _inside(directory, item["url"])
        for batch in _batches(_lines(path), RESOURCES_PER_TRANSACTION // 10):
            targets = [
                e["request"]["url"].split("/", 1)
                for line in batch
                for e in orjson.loads(line).get("entry", [])
                if e.get("request", {}).get("method") == "DELETE"
            ]

            def delete(tx: Tx, targets: list[list[str]] = targets) -> list[str]:
                return [tx.delete(version, rtype, rid).outcome for rtype, rid in targets]

            for outcome in store.transact(delete):
                summary.count(outcome)
    if summary.outcomes.get("created", 0) + summary.outcomes.get("updated", 0):
        store.analyze()
    return summary


def _inside(directory: Path, url: str) -> Path:
    path = (directory / url).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise ValueError(f"{directory}/{MANIFEST}: {url} points outside the export")
    return path


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield line


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _resources(resource: dict[str, Any]) -> list[dict[str, Any]]:
    if resource.get("resourceType") == "Bundle":
        return [e["resource"] for e in resource.get("entry", []) if isinstance(e.get("resource"), dict)]
    return [resource]


# -- registry records -------------------------------------------------------------------------

_converter: Any = None


def _init_converter() -> None:
    global _converter
    from adapter.batch.worker import Worker, WorkerConfig, tune_gc

    tune_gc()
    _converter = Worker(WorkerConfig(fhir_version="5.0", output="ndjson", bundle_type="", base_url="", validate=False))


Converted = tuple[str, bytes | None, bytes | None, bytes | None, str | None]
"""(locator, R5 resources, R4 resources as JSON arrays, their pickled ``prepare`` results, error)."""


def _convert_task(task: Task) -> list[Converted]:
    """One outcome per record of the task; the store's per-resource work (hash, index rows) included."""
    from adapter.store.base import prepare
    from mappings.bundle import to_fhir_resources
    from mappings.r4 import to_r4

    if _converter is None:
        _init_converter()
    out = []
    for unit in task.units:
        for item in _converter._items(unit):
            if item.record is None:
                out.append((item.locator, None, None, None, str(item.error)))
                continue
            try:
                r5 = to_fhir_resources(item.record)
                r5_json = orjson.dumps(r5)
                ready = {"5.0": [prepare("5.0", r) for r in r5]}
                r4 = to_r4(r5, in_place=True)  # the R5 set is already serialised and prepared
                ready["4.0"] = [prepare("4.0", r) for r in r4]
            except Exception as error:  # one record, not the load
                out.append((item.locator, None, None, None, f"{item.locator}: {type(error).__name__}: {error}"))
                continue
            # orjson bytes cross the process boundary several times faster than pickled dicts.
            out.append((item.locator, r5_json, orjson.dumps(r4), pickle.dumps(ready, pickle.HIGHEST_PROTOCOL), None))
    return out


def _converted(tasks: Iterator[Task], jobs: int) -> Iterator[list[Converted]]:
    if jobs <= 1:
        for task in tasks:
            yield _convert_task(task)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["adapter.batch.worker"])
    window: deque[Future[list[Converted]]] = deque()
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_converter) as pool:
        exhausted = False
        while True:
            while not exhausted and len(window) < 3 * jobs:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                else:
                    window.append(pool.submit(_convert_task, task))
            if not window:
                return
            yield window.popleft().result()


def load_records(
    store: Store,
    inputs: list[str],
    *,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadSummary:
    """Convert registry records (files, directories, zips, NDJSON) and store R5 and R4 together."""
    from adapter.store.loader import RecordResources, store_records

    planner = Planner(inputs)
    planner.check()
    summary = LoadSummary()
    pending: list[RecordResources] = []

    def flush() -> None:
        if not pending:
            return
        batch = list(pending)
        pending.clear()
        for _, result in store.transact(lambda tx: store_records(tx, batch)):
            summary.count(result.outcome)
            summary.resources += 1
        if progress is not None:
            progress(f"{summary.records:,} records loaded, {summary.failed:,} failed")

    count = jobs if jobs is not None else (os.cpu_count() or 1)
    for outcomes in _converted(planner.tasks(), count):
        for locator, r5, r4, ready, error in outcomes:
            if error is not None:
                summary.failed += 1
                if len(summary.failures) < MAX_LISTED_FAILURES:
                    summary.failures.append(" ".join(error.split()))
                continue
            assert r5 is not None and r4 is not None and ready is not None
            prepared = pickle.loads(ready)
            pending.append(RecordResources(locator, None, orjson.loads(r5), orjson.loads(r4), prepared=prepared))
            summary.records += 1
            if len(pending) >= RECORDS_PER_TRANSACTION:
                flush()
    flush()
    if summary.outcomes.get("created", 0) + summary.outcomes.get("updated", 0):
        store.analyze()
    return summary
