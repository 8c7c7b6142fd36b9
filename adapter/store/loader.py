"""Registry records -> both FHIR versions -> the store (``trial2fhir load``, ``serve --load``, ``$ingest``).

Each record is mapped once (R5) and converted to R4 with ``mappings.r4.to_r4``, and both are
stored in one transaction, so the two bases never disagree about which trials exist.  Re-loading
the same trial creates no duplicates (ids come from registry ids) and no new version unless the
content changed.  Organizations are shared between trials and keyed by a case-insensitive name, so
the spelling stored first is kept (another trial's "UNIVERSITY OF X" does not flip-flop the
version of "University of X").

Files already loaded are recognised by content hash (``ingest_log``) and skipped, which is what
makes a second ``trial2fhir serve`` start at once.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.errors import InputError, Trial2FhirError
from adapter.store.base import Prepared, Store, Tx, WriteResult

RECORD_SUFFIXES = (".json", ".xml", ".ndjson", ".jsonl")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
MAX_MEMBER_BYTES = 256 * 1024 * 1024
"""An archive member larger than this is refused (a registry record is kilobytes; this is a zip bomb)."""
SHARED_TYPES = frozenset({"Organization"})
RECORDS_PER_TRANSACTION = 100


@dataclass(slots=True)
class RecordResources:
    """One converted record: its R5 and R4 resources, or the error that stopped it."""

    locator: str
    record_id: str | None = None
    r5: list[dict[str, Any]] = field(default_factory=list)
    r4: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    prepared: dict[str, list[Prepared]] | None = None
    """Per FHIR version, ``adapter.store.base.prepare`` of each resource, when the converter did it."""

    def resources(self, fhir_version: str) -> list[dict[str, Any]]:
        return self.r4 if fhir_version == "4.0" else self.r5


@dataclass(slots=True)
class LoadReport:
    files: int = 0
    skipped: int = 0
    records: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def convert_both(data: bytes, source: str) -> list[RecordResources]:
    """Every record of ``data`` in R5 and R4; raises InputError when the input as a whole is unreadable."""
    from adapter.readers import read_items
    from mappings.bundle import to_fhir_resources
    from mappings.r4 import to_r4

    out = []
    for item in read_items(data, source):
        if item.record is None:
            out.append(RecordResources(item.locator, error=str(item.error)))
            continue
        record = item.record
        try:
            r5 = to_fhir_resources(record)
            r4 = to_r4(r5)
        except Trial2FhirError as error:
            out.append(RecordResources(item.locator, record.registry_id, error=str(error)))
            continue
        warnings = [f"{record.registry_id}: source field not mapped: {path}" for path in record.unmapped]
        out.append(RecordResources(item.locator, record.registry_id, r5, r4, warnings=warnings))
    return out


def store_records(tx: Tx, records: Iterable[RecordResources]) -> list[tuple[str, WriteResult]]:
    """Write both versions of each converted record; ``(fhir version, result)`` per resource written."""
    results: list[tuple[str, WriteResult]] = []
    kept = [record for record in records if record.error is None]
    for fhir_version in ("5.0", "4.0"):
        resources = [resource for record in kept for resource in record.resources(fhir_version)]
        prepared = None
        if kept and all(record.prepared is not None for record in kept):
            prepared = [ready for record in kept for ready in record.prepared[fhir_version]]  # type: ignore[index]
        written = tx.put_many(fhir_version, resources, create_only=SHARED_TYPES, prepared=prepared)
        results.extend((fhir_version, result) for result in written)
    return results


def source_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _wanted(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(RECORD_SUFFIXES)


def _archive_members(path: Path) -> Iterator[tuple[str, bytes]]:
    name = str(path)
    if name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or not _wanted(info.filename):
                    continue
                if info.file_size > MAX_MEMBER_BYTES:
                    raise InputError(f"archive member {info.filename} is larger than {MAX_MEMBER_BYTES} bytes", name)
                with archive.open(info) as member:
                    yield f"{name}!{info.filename}", member.read(MAX_MEMBER_BYTES + 1)
        return
    with tarfile.open(path, "r:*") as archive:
        for info in sorted(archive.getmembers(), key=lambda i: i.name):
            if not info.isfile() or not _wanted(info.name):
                continue
            if info.size > MAX_MEMBER_BYTES:
                raise InputError(f"archive member {info.name} is larger than {MAX_MEMBER_BYTES} bytes", name)
            member = archive.extractfile(info)
            if member is not None:
                yield f"{name}!{info.name}", member.read()


def iter_inputs(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes | InputError]]:
    """``(source name, bytes)`` for each record file under ``paths`` (files, directories, archives).

    Directories are walked in sorted order and contribute registry-looking files only
    (``.json .xml .ndjson .jsonl`` and archives); a path named explicitly is always read.
    Unreadable inputs are yielded as an InputError so a batch can report them and go on.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            for file in files:
                if _is_archive(file.name):
                    yield from _archive_inputs(file)
                elif _wanted(file.name):
                    yield from _file_input(file)
        elif _is_archive(path.name):
            yield from _archive_inputs(path)
        else:
            yield from _file_input(path)


def _file_input(path: Path) -> Iterator[tuple[str, bytes | InputError]]:
    try:
        yield str(path), path.read_bytes()
    except OSError as error:
        yield str(path), InputError(f"cannot read: {error.strerror or error}", str(path))


def _archive_inputs(path: Path) -> Iterator[tuple[str, bytes | InputError]]:
    try:
        yield from _archive_members(path)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        yield str(path), InputError(f"cannot read archive: {error}", str(path))
    except InputError as error:
        yield str(path), error


def _convert_job(job: tuple[str, bytes]) -> tuple[str, str, list[RecordResources] | str]:
    source, data = job
    try:
        return source, source_key(data), convert_both(data, source)
    except Trial2FhirError as error:
        return source, source_key(data), str(error)
    except Exception as error:  # a converter bug must not stop a bulk load: report the file and go on
        return source, source_key(data), f"{source}: internal error: {type(error).__name__}: {error} (please report)"


def load_paths(
    store: Store,
    paths: Iterable[str | Path],
    *,
    force: bool = False,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    """Convert and store every record under ``paths``; files already loaded are skipped unless ``force``.

    Conversion runs in ``workers`` processes (default: the CPU count, none for a handful of
    files); writes happen here, one transaction per file (large files in chunks of
    ``RECORDS_PER_TRANSACTION`` records, the file marked loaded with the last chunk).
    """
    report = LoadReport()
    jobs: list[tuple[str, bytes]] = []
    for source, data in iter_inputs(paths):
        report.files += 1
        if isinstance(data, InputError):
            report.failures.append(str(data))
            continue
        if not force and store.is_ingested(source_key(data)):
            report.skipped += 1
            continue
        jobs.append((source, data))
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count > 1 and len(jobs) > 8:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=count) as pool:
            for converted in pool.map(_convert_job, jobs, chunksize=4):
                _write_converted(store, converted, report, progress)
    else:
        for job in jobs:
            _write_converted(store, _convert_job(job), report, progress)
    if report.outcomes.get("created", 0) + report.outcomes.get("updated", 0) > 0:
        store.analyze()
    return report


def _write_converted(
    store: Store,
    converted: tuple[str, str, list[RecordResources] | str],
    report: LoadReport,
    progress: Callable[[str], None] | None,
) -> None:
    source, key, records = converted
    if isinstance(records, str):
        report.failures.append(records)
        return
    for record in records:
        if record.error is not None:
            report.failures.append(record.error)
    good = [r for r in records if r.error is None]
    report.records += len(good)
    batches = [good[i : i + RECORDS_PER_TRANSACTION] for i in range(0, len(good), RECORDS_PER_TRANSACTION)] or [[]]
    for index, batch in enumerate(batches):
        last = index == len(batches) - 1

        def work(tx: Tx, batch: list[RecordResources] = batch, last: bool = last) -> list[tuple[str, WriteResult]]:
            results = store_records(tx, batch)
            if last:
                tx.mark_ingested(key, source, len(good))
            return results

        for _, result in store.transact(work):
            report.count(result.outcome)
    if progress is not None:
        progress(
            f"{source}: {len(good)} record(s)"
            + (f", {len(records) - len(good)} failed" if len(good) < len(records) else "")
        )


def default_fixture_paths(start: Path | None = None) -> list[Path]:
    """The repository's fixtures, in load order (legacy XML before API v2 JSON, so v2 wins for a trial in both).

    Looked up under the working directory first (the README runs ``serve`` from a checkout),
    then beside the installed package (editable installs).  Empty when neither has them.
    """
    candidates = [(start or Path.cwd()) / "fixtures", Path(__file__).resolve().parents[2] / "fixtures"]
    for root in candidates:
        seed = root / "seed"
        if not seed.is_dir():
            continue
        ordered = [
            root / "ctgov-xml",
            root / "who-ictrp-xml",
            *sorted(seed.glob("*.xml")),
            root / "ctgov-v2-json",
            *sorted(seed.glob("*.json")),
        ]
        return [p for p in ordered if p.exists()]
    return []
