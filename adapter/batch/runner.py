"""Run a batch: plan the inputs, convert in worker processes, write in input order, publish.

Determinism: tasks are planned in a fixed order, each task's outcomes are consumed strictly in
task order (a sliding window of futures, never "as completed"), and everything written is a
function of the records alone; so the bytes of every output file are the same for any ``--jobs``.

Crash safety and ``--resume``: see ``journal`` and ``output``.  A checkpoint (every
``CHECKPOINT_SECONDS``) fsyncs the part files and then commits the journal with the part sizes,
the index of the next task and the digest of the plan so far.  A resumed run re-plans the inputs,
checks that the plan up to that point is unchanged, truncates the parts to the committed sizes and
continues; the records after the checkpoint are converted again and appended exactly once.

Incremental runs: when ``DIR`` holds a complete export made with the same options and the same
converter code (``converter_fingerprint``), a study whose record digest is unchanged is not
converted again: its lines are copied from the previous output files.  Studies of the previous
export that are no longer in the input are reported as removed; ``deleted/Bundle.ndjson`` (the
manifest's Bulk Data ``deleted`` list) holds one DELETE transaction Bundle per removed study and
one per changed study that lost resources (a closed site, a dropped contact), so a system applying
only the changes stays in step with a full re-import.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import gc
import hashlib
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

import adapter
import mappings
from adapter.batch.inputs import Planner, Task, UsageError
from adapter.batch.journal import Journal, PreviousState
from adapter.batch.outcome import failure_line
from adapter.batch.output import (
    DELETED,
    ERRORS,
    MANIFEST,
    PartFiles,
    fsync_dir,
    manifest_bytes,
    manifest_digest,
    output_name,
    publish,
    type_sort_key,
)
from adapter.batch.progress import Progress, QuietProgress
from adapter.batch.worker import (
    CONVERTED,
    FAILED,
    UNCHANGED,
    Outcome,
    Worker,
    WorkerConfig,
    init_process,
    run_in_process,
    tune_gc,
)
from adapter.pipeline import FHIR_VERSIONS
from mappings.bundle import DEFAULT_BASE_URL

CHECKPOINT_SECONDS = float(os.environ.get("TRIAL2FHIR_CHECKPOINT_SECONDS", 2.0))
"""At most this much work is redone after a crash; each checkpoint costs a few fsyncs."""
MAX_PRINTED_FAILURES = 20
"""Failures echoed on stderr as they happen; all of them are in the errors file."""
WORK_DIR = ".trial2fhir"
CRASH_ENV = "TRIAL2FHIR_CRASH_AT"
"""Test hook: ``checkpoint:N`` / ``commit:N`` (SIGKILL just before / after the N-th journal
commit), ``publish:K`` (after K files were moved into place), ``state`` (after the manifest, before
the state is kept).  Used by the kill-and-resume tests; unset in normal use."""


class FailFast(Exception):
    """``--fail-fast`` stopped the run at a failed record."""

    def __init__(self, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics


class WorkerCrashed(Exception):
    """A worker process died (killed, out of memory): the run stops and can be resumed."""


@dataclass(slots=True)
class BatchOptions:
    inputs: list[str]
    out: Path
    fhir_version: str = "4.0"
    output_format: str = "ndjson"
    """``ndjson`` (one file per resource type) or ``bundles`` (one Bundle per record)."""
    bundle_type: str = "transaction"
    base_url: str = DEFAULT_BASE_URL
    jobs: int | None = None
    validate: bool = True
    invariants: bool = True
    """With ``validate``: False checks structure, bindings and references only (``--validate structure``)."""
    fail_fast: bool = False
    resume: bool = False


@dataclass(slots=True)
class BatchSummary:
    read: int = 0
    converted: int = 0
    failed: int = 0
    failed_by: dict[str, int] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)
    """Resources produced per type (Organization: once per record naming it, before de-duplication)."""
    written: dict[str, int] = field(default_factory=dict)
    """Lines per output file (manifest ``count``)."""
    incremental: bool = False
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    unmapped: list[tuple[str, int]] = field(default_factory=list)
    elapsed: float = 0.0
    converted_now: int = 0
    """Records converted (mapped) by this invocation, excluding reused and resumed ones."""
    notes: list[str] = field(default_factory=list)
    out: Path = Path()
    validator: str = "none"


_NOT_CONVERTER = ("adapter/server/", "adapter/store/", "adapter/cli.py")
"""Code that cannot change what a record converts to (serving, storing, the command line)."""
_VALIDATOR = "adapter/validation/"


@functools.cache
def converter_fingerprint(validating: bool = True) -> str:
    """Digest of the converter's code and code tables: any change invalidates incremental reuse and
    refuses a resume (its output would mix two converters).  The validator counts only when used.
    Computed once per process: a process runs the code it imported, whatever changes on disk later."""
    digest = hashlib.sha256()
    skipped = _NOT_CONVERTER if validating else (*_NOT_CONVERTER, _VALIDATOR)
    for package in (adapter, mappings):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root.parent).as_posix()
            if relative.startswith(skipped):
                continue
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                digest.update(relative.encode())
                digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def _transaction_time() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds convention) pins it, e.g. to compare two exports byte for byte.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _chain(previous: str, task: Task) -> str:
    return hashlib.sha256(previous.encode() + b"\0" + task.describe()).hexdigest()


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Sink:
    """Consumes outcomes in order: appends lines, records studies, counts; the only writer."""

    def __init__(
        self,
        journal: Journal,
        parts: PartFiles,
        previous: PreviousState | None,
        out: Path,
        counters: dict[str, Any],
        fail_fast: bool,
        echo: Callable[[str], None],
    ) -> None:
        self.journal, self.parts, self.previous, self.out = journal, parts, previous, out
        self.c = counters
        self.fail_fast = fail_fast
        self.echo = echo
        self._previous_files: dict[str, BinaryIO] = {}

    def _previous_file(self, resource_type: str) -> BinaryIO:
        f = self._previous_files.get(resource_type)
        if f is None:
            f = self._previous_files[resource_type] = open(self.out / output_name(resource_type), "rb")  # noqa: SIM115
        return f

    def close(self) -> None:
        for f in self._previous_files.values():
            f.close()

    def _count(self, key: str, name: str, n: int = 1) -> None:
        table = self.c[key]
        table[name] = table.get(name, 0) + n

    def _fail(self, line: bytes, reason: str, study: str | None) -> None:
        self.parts.append(ERRORS, line)
        self.c["failed"] += 1
        self._count("failed_by", reason)
        if study is not None:
            self.journal.add_failed_study(study)
        if self.fail_fast or self.c["failed"] <= MAX_PRINTED_FAILURES:
            diagnostics = orjson.loads(line)["issue"][0]["diagnostics"]
            if self.fail_fast:
                raise FailFast(diagnostics)
            self.echo(f"error: {diagnostics}")
            if self.c["failed"] == MAX_PRINTED_FAILURES:
                self.echo(f"further failures are only written to {self.out / ERRORS}")

    def consume(self, outcome: Outcome) -> None:
        self.c["read"] += 1
        kind, locator, study = outcome[0], outcome[1], outcome[2]
        if kind == FAILED:
            self._fail(outcome[3], outcome[4], study)
            return
        first = self.journal.study_locator(study)
        if first is not None:
            message = f"{locator}: study {study} was already converted from {first}; this copy is not written"
            self._fail(failure_line(locator, message, "duplicate"), "duplicate", None)
            return
        if kind == UNCHANGED:
            assert self.previous is not None
            found = self.previous.study(study)
            assert found is not None, f"previous state lost study {study}"
            digest, old_extents, counts, orgs, unmapped = found
            extents = {}
            for resource_type, (offset, length) in old_extents.items():
                data = os.pread(self._previous_file(resource_type).fileno(), length, offset)
                if len(data) != length:
                    raise RuntimeError(f"previous output {output_name(resource_type)} is shorter than its state says")
                extents[resource_type] = self.parts.append(output_name(resource_type), data)
            change = "unchanged"
        else:
            assert kind == CONVERTED
            _, _, _, digest, lines, counts, orgs, unmapped, known = outcome
            extents = {t: self.parts.append(output_name(t), data) for t, data in lines.items()}
            change = "changed" if known else "added"
            self.c["converted_now"] += 1
        self.journal.add_study(study, locator, digest, extents, counts, orgs, unmapped, change)
        self.c["converted"] += 1
        self.c[change] += 1
        for resource_type, n in counts.items():
            self._count("resources", resource_type, n)
        for resource_type in extents:
            n = counts.get(resource_type, 1) if resource_type != "Bundle" else 1
            self._count("written", output_name(resource_type), n)


_COUNTERS: dict[str, Any] = {
    "read": 0,
    "converted": 0,
    "failed": 0,
    "added": 0,
    "changed": 0,
    "unchanged": 0,
    "converted_now": 0,
    "failed_by": {},
    "resources": {},
    "written": {},
    "bytes": 0,
}


class Batch:
    def __init__(self, options: BatchOptions, progress: Progress | None = None) -> None:
        self.options = options
        self.progress = progress or QuietProgress()
        self.out = options.out
        self.work = self.out / WORK_DIR
        self.run_dir = self.work / "run"
        self.parts_root = self.run_dir / "parts"
        self.run_db = self.run_dir / "run.sqlite"
        self.state_db = self.work / "state.sqlite"
        self.notes: list[str] = []
        self._commits = 0

    # -- set-up --------------------------------------------------------------------------------

    def _settings(self, validator: str) -> dict[str, Any]:
        o = self.options
        return {
            "fhirVersion": FHIR_VERSIONS[o.fhir_version],
            "format": o.output_format,
            "bundleType": o.bundle_type if o.output_format == "bundles" else None,
            "baseUrl": o.base_url if o.output_format == "bundles" else None,
            "validation": validator,
            "converter": converter_fingerprint(o.validate),
        }

    def _previous(self, settings: dict[str, Any]) -> PreviousState | None:
        """The previous complete export's state, if it exists, matches the settings and is intact."""
        if not self.state_db.exists():
            return None
        try:
            previous = PreviousState(self.state_db)
            recorded = previous.get("settings")
            published = previous.get("published", {})
            sha = previous.get("manifest_sha")
        except Exception:
            self.notes.append("the state of the previous export is unreadable; converting everything")
            return None
        reason = None
        if recorded != settings:
            changed = sorted(k for k in settings if (recorded or {}).get(k) != settings[k])
            what = ", ".join("converter code" if k == "converter" else k for k in changed)
            reason = f"the previous export was made with a different {what}"
        elif sha is None or manifest_digest(self.out) != sha:
            reason = "the previous export is incomplete or its manifest was modified"
        else:
            for name, size in published.items():
                path = self.out / name
                if not path.exists() or path.stat().st_size != size:
                    reason = f"{name} of the previous export was modified"
                    break
        if reason:
            previous.close()
            self.notes.append(f"{reason}; converting everything")
            return None
        return previous

    def _lock(self) -> int:
        fd = os.open(self.work / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"another trial2fhir run is writing {self.out}") from None
        return fd

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> BatchSummary:
        o = self.options
        planner = Planner(o.inputs, exclude=str(self.out))
        planner.check()
        if o.resume and "-" in o.inputs:
            raise UsageError("--resume cannot re-read stdin; give the input as a file")
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} exists and is not a directory")
        self.work.mkdir(parents=True, exist_ok=True)
        lock = self._lock()
        try:
            return self._run(planner)
        finally:
            os.close(lock)

    def _run(self, planner: Planner) -> BatchSummary:
        o = self.options
        started = time.monotonic()
        self._finish_published_run()
        validator = "none"
        if o.validate:
            from adapter.batch.validate import validator_name

            validator = validator_name(o.fhir_version, o.invariants)
        settings = self._settings(validator)
        previous = self._previous(settings)
        previous_id = previous.get("manifest_sha") if previous else None
        journal = self._open_journal(settings, previous_id)
        try:
            counters = {k: (dict(v) if isinstance(v, dict) else v) for k, v in _COUNTERS.items()}
            counters.update(journal.get("counters", {}))
            if journal.get("phase") == "publishing":
                self.notes.append("finishing the interrupted publication")
            else:
                self._convert(planner, journal, previous, counters)
                self._finalize(journal, previous, counters)
            self._publish(journal)
        except BaseException:
            journal.close()
            raise
        finally:
            if previous is not None:
                previous.close()
        summary = self._summary(journal, counters, validator)
        journal.close()
        self._keep_state()
        summary.elapsed = time.monotonic() - started
        return summary

    def _finish_published_run(self) -> None:
        """A run killed after publishing but before keeping its state: keep it now (no work lost).

        Published means the journal says so, or the manifest in DIR is the one this run wrote (it
        is written last, after every file is in place)."""
        if not self.run_db.exists():
            return
        journal = Journal(self.run_db)
        phase, sha = journal.get("phase"), journal.get("manifest_sha")
        journal.close()
        if phase == "done" or (phase == "publishing" and sha and manifest_digest(self.out) == sha):
            self._keep_state()

    def _open_journal(self, settings: dict[str, Any], previous_id: str | None) -> Journal:
        o = self.options
        identity = {"settings": settings, "inputs": o.inputs, "previous": previous_id}
        if self.run_db.exists():
            journal = Journal(self.run_db)
            recorded = {k: journal.get(k) for k in identity}
            if journal.get("phase") == "publishing":
                # Everything is converted; the previous export may already be half replaced, so
                # only the settings must match.
                identity["previous"] = recorded["previous"]
            if recorded["settings"] is None:
                journal.close()  # created but never committed: no run to continue
            elif not o.resume:
                journal.close()
                raise UsageError(
                    f"{self.out} holds an interrupted run: add --resume to continue it, "
                    f"or delete {self.run_dir} to start over"
                )
            elif recorded != identity:
                journal.close()
                what = [k for k in identity if recorded[k] != identity[k]]
                if "settings" in what:
                    settings_now, settings_then = identity["settings"], recorded["settings"] or {}
                    what = [k for k in settings_now if settings_now[k] != settings_then.get(k)] + [
                        k for k in what if k != "settings"
                    ]
                names = ", ".join("converter code" if k == "converter" else k for k in what)
                raise UsageError(
                    f"cannot resume: the {names} differ from the interrupted run's "
                    f"(delete {self.run_dir} to start over)"
                )
            else:
                return journal
        elif o.resume:
            self.notes.append("no interrupted run to resume; starting a new run")
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.parts_root.mkdir(parents=True)
        journal = Journal(self.run_db, create=True)
        for key, value in identity.items():
            journal.set(key, value)
        journal.set("transactionTime", _transaction_time())
        journal.set("phase", "running")
        journal.set("next_task", 0)
        journal.set("plan_digest", "")
        journal.set("parts", {})
        journal.commit()
        return journal

    def _commit(self, journal: Journal) -> None:
        self._commits += 1
        _crash_point(f"checkpoint:{self._commits}")
        journal.commit()
        _crash_point(f"commit:{self._commits}")

    def _worker_config(self, previous: PreviousState | None) -> WorkerConfig:
        o = self.options
        return WorkerConfig(
            fhir_version=o.fhir_version,
            output=o.output_format,
            bundle_type=o.bundle_type,
            base_url=o.base_url,
            validate=o.validate,
            invariants=o.invariants,
            previous_state=str(previous.path) if previous else None,
        )

    def _convert(
        self, planner: Planner, journal: Journal, previous: PreviousState | None, counters: dict[str, Any]
    ) -> None:
        o = self.options
        parts = PartFiles(self.parts_root, journal.get("parts", {}))
        sink = _Sink(journal, parts, previous, self.out, counters, o.fail_fast, self.progress.message)
        tasks = planner.tasks()
        next_task = journal.get("next_task", 0)
        plan_digest = ""
        for _ in range(next_task):
            task = next(tasks, None)
            if task is None:
                break
            plan_digest = _chain(plan_digest, task)
        if plan_digest != journal.get("plan_digest", ""):
            parts.close()
            raise UsageError("cannot resume: the inputs changed since the interrupted run")
        total = planner.total_bytes()
        self.progress.start(total, counters["read"], counters["failed"])
        jobs = o.jobs or default_jobs()
        config = self._worker_config(previous)
        last_checkpoint = time.monotonic()
        try:
            for task, outcomes in self._results(tasks, jobs, config):
                for outcome in outcomes:
                    sink.consume(outcome)
                plan_digest = _chain(plan_digest, task)
                next_task = task.index + 1
                counters["bytes"] += task.weight
                self.progress.advance(counters["bytes"], counters["read"], counters["failed"])
                if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                    self._checkpoint(journal, parts, counters, next_task, plan_digest)
                    last_checkpoint = time.monotonic()
            self._checkpoint(journal, parts, counters, next_task, plan_digest)
        finally:
            self.progress.stop()
            sink.close()
            parts.close()

    def _checkpoint(
        self, journal: Journal, parts: PartFiles, counters: dict[str, Any], next_task: int, plan_digest: str
    ) -> None:
        journal.set("parts", parts.sync())
        journal.set("counters", counters)
        journal.set("next_task", next_task)
        journal.set("plan_digest", plan_digest)
        self._commit(journal)

    def _results(self, tasks: Iterator[Task], jobs: int, config: WorkerConfig) -> Iterator[tuple[Task, list[Outcome]]]:
        """(task, outcomes) in task order, computed inline (``--jobs 1``) or by ``jobs`` processes."""
        if jobs <= 1:
            worker = Worker(config)
            thresholds = gc.get_threshold()
            tune_gc()
            try:
                for task in tasks:
                    yield task, worker.run(task)
            finally:
                worker.close()
                gc.set_threshold(*thresholds)
            return
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["adapter.batch.worker"])
        window: deque[tuple[Task, Future[list[Outcome]]]] = deque()

        with ProcessPoolExecutor(
            jobs, mp_context=context, initializer=init_process, initargs=(config, os.getpid())
        ) as pool:
            try:
                exhausted = False
                while True:
                    # A few tasks per worker in flight keeps every worker busy while the parent
                    # writes, and bounds memory to that many tasks' input and output.
                    while not exhausted and len(window) < 3 * jobs:
                        task = next(tasks, None)
                        if task is None:
                            exhausted = True
                        else:
                            window.append((task, pool.submit(run_in_process, task)))
                    if not window:
                        return
                    task, future = window.popleft()
                    try:
                        outcomes = future.result()
                    except BrokenProcessPool:
                        raise WorkerCrashed(
                            "a worker process died (killed, or out of memory); the run can be resumed with --resume"
                        ) from None
                    yield task, outcomes
            finally:
                for _, future in window:
                    future.cancel()

    # -- finishing -------------------------------------------------------------------------------

    def _finalize(self, journal: Journal, previous: PreviousState | None, counters: dict[str, Any]) -> None:
        """Organizations, DELETE Bundles and the manifest; then the journal says 'publishing'."""
        o = self.options
        parts = PartFiles(self.parts_root, journal.get("parts", {}))
        try:
            if o.output_format == "ndjson":
                name = output_name("Organization")
                parts.reset(name)
                count = 0
                for line in journal.organization_winners():
                    parts.append(name, line + b"\n")
                    count += 1
                counters["written"][name] = count
            removed = deletions = 0
            if previous is not None:
                parts.reset(DELETED)
                for _study, extents in previous.removed(journal):
                    parts.append(DELETED, _delete_bundle(self._resource_ids(self.out, extents)))
                    removed += 1
                    deletions += 1
                parts.sync()  # the changed studies' new lines are read back from the parts below
                for study, extents in journal.changed_studies():
                    found = previous.study(study)
                    assert found is not None
                    kept = set(self._resource_ids(self.parts_root, extents))
                    dropped = [r for r in self._resource_ids(self.out, found[1]) if r not in kept]
                    if dropped:
                        parts.append(DELETED, _delete_bundle(dropped))
                        deletions += 1
            counters["removed"] = removed
            counters["written"][DELETED] = deletions
            sizes = parts.sync()
        finally:
            parts.close()
        files = {name: size for name, size in sizes.items() if size > 0}
        for name, size in sizes.items():
            if size == 0:
                (self.parts_root / name).unlink(missing_ok=True)
        manifest = self._manifest(journal, counters, files, previous)
        data = manifest_bytes(manifest)
        journal.set("counters", counters)
        journal.set("parts", sizes)
        journal.set("published", files)
        journal.set("stale", self._stale())
        journal.set("manifest", data.decode())
        journal.set("manifest_sha", hashlib.sha256(data).hexdigest())
        journal.set("phase", "publishing")
        self._commit(journal)

    def _resource_ids(self, root: Path, extents: dict[str, list[int]]) -> list[str]:
        """``Type/id`` of every non-Organization resource a study has in the files under ``root``.

        Organizations are left out: they are shared by other studies (and other systems)."""
        found = []
        for resource_type, (offset, length) in extents.items():
            with open(root / output_name(resource_type), "rb") as f:
                data = os.pread(f.fileno(), length, offset)
            for line in data.splitlines():
                resource = orjson.loads(line)
                inner = [e["resource"] for e in resource.get("entry", [])] if resource_type == "Bundle" else [resource]
                found.extend(f"{r['resourceType']}/{r['id']}" for r in inner if r["resourceType"] != "Organization")
        return found

    def _stale(self) -> list[str]:
        """Files listed by the export currently in DIR (removed at publication if not produced again)."""
        try:
            old = orjson.loads((self.out / MANIFEST).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return []
        names = []
        for key in ("output", "error", "deleted"):
            for item in old.get(key, []) if isinstance(old, dict) else []:
                url = item.get("url") if isinstance(item, dict) else None
                # Only plain relative names this tool writes; never a path leaving DIR.
                if isinstance(url, str) and ".." not in url.split("/") and not url.startswith("/"):
                    names.append(url)
        return names

    def _manifest(
        self, journal: Journal, c: dict[str, Any], files: dict[str, int], previous: PreviousState | None
    ) -> dict[str, Any]:
        o = self.options
        output = []
        for name in sorted((n for n in files if "/" not in n), key=lambda n: type_sort_key(n.removesuffix(".ndjson"))):
            output.append({"type": name.removesuffix(".ndjson"), "url": name, "count": c["written"].get(name, 0)})
        manifest: dict[str, Any] = {
            "transactionTime": journal.get("transactionTime"),
            "requiresAccessToken": False,
            "output": output,
            "error": [{"type": "OperationOutcome", "url": ERRORS, "count": c["failed"]}] if ERRORS in files else [],
        }
        if DELETED in files:
            manifest["deleted"] = [{"type": "Bundle", "url": DELETED, "count": c["written"][DELETED]}]
        unmapped = journal.unmapped_fields()
        details: dict[str, Any] = {
            "fhirVersion": FHIR_VERSIONS[o.fhir_version],
            "format": o.output_format,
            "validation": journal.get("settings")["validation"],
            "inputs": o.inputs,
            "records": {"read": c["read"], "converted": c["converted"], "failed": c["failed"]},
            "failedByReason": dict(sorted(c["failed_by"].items())),
            "resources": dict(sorted(c["resources"].items(), key=lambda kv: type_sort_key(kv[0]))),
        }
        if previous is not None:
            details["incremental"] = {
                "previousTransactionTime": previous.get("transactionTime"),
                "added": c["added"],
                "changed": c["changed"],
                "unchanged": c["unchanged"],
                "removed": c["removed"],
            }
        if unmapped:
            details["unmappedSourceFields"] = [{"field": p, "records": n} for p, n in unmapped[:100]]
            if len(unmapped) > 100:
                details["unmappedSourceFieldsNotListed"] = len(unmapped) - 100
        manifest["extension"] = {"trial2fhir": details}
        return manifest

    def _publish(self, journal: Journal) -> None:
        files: dict[str, int] = journal.get("published")
        manifest = journal.get("manifest").encode()
        moved = 0

        def after_each(_: str) -> None:
            nonlocal moved
            moved += 1
            _crash_point(f"publish:{moved}")

        publish(self.out, self.parts_root, files, journal.get("stale", []), manifest, after_each)
        _crash_point("state")
        journal.set("phase", "done")
        journal.commit()

    def _keep_state(self) -> None:
        """The published run's journal becomes the state the next incremental run starts from."""
        from adapter.batch.journal import connect

        db = connect(self.run_db)
        db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, readable read-only
        db.close()
        os.replace(self.run_db, self.state_db)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        fsync_dir(self.work)

    def _summary(self, journal: Journal, c: dict[str, Any], validator: str) -> BatchSummary:
        incremental = "incremental" in orjson.loads(journal.get("manifest"))["extension"]["trial2fhir"]
        return BatchSummary(
            read=c["read"],
            converted=c["converted"],
            failed=c["failed"],
            failed_by=dict(c["failed_by"]),
            resources=dict(c["resources"]),
            written=dict(c["written"]),
            incremental=incremental,
            added=c["added"],
            changed=c["changed"],
            unchanged=c["unchanged"],
            removed=c.get("removed", 0),
            unmapped=journal.unmapped_fields(),
            converted_now=c["converted_now"],
            notes=self.notes,
            out=self.out,
            validator=validator,
        )


def _delete_bundle(references: list[str]) -> bytes:
    """A transaction Bundle deleting resources of the previous export that this one no longer has."""
    entries = [{"request": {"method": "DELETE", "url": reference}} for reference in references]
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}) + b"\n"


def run_batch(options: BatchOptions, progress: Progress | None = None) -> BatchSummary:
    """Convert ``options.inputs`` into ``options.out``; raises ``UsageError``, ``FailFast``, ``WorkerCrashed``."""
    if options.fhir_version not in FHIR_VERSIONS:
        raise UsageError(f"unsupported FHIR version {options.fhir_version!r}")
    if options.output_format not in ("ndjson", "bundles"):
        raise UsageError(f"unsupported batch format {options.output_format!r}")
    previous_term = signal.getsignal(signal.SIGTERM)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    in_main = _is_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, terminate)
    try:
        return Batch(options, progress).run()
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous_term)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


__all__ = ["BatchOptions", "BatchSummary", "FailFast", "UsageError", "WorkerCrashed", "run_batch"]
