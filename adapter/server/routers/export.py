"""FHIR Bulk Data ``$export``: kick-off, status polling, NDJSON file download, cancellation.

- ``GET /fhir/{R4|R5}/$export`` (system level) and ``GET /fhir/{R4|R5}/{type}/$export`` (one
  type), with ``Prefer: respond-async``; parameters ``_type`` (comma-separated), ``_since``
  (instant: only resources changed after it), ``_outputFormat`` (``application/fhir+ndjson``,
  ``application/ndjson`` or ``ndjson``).  Answer: ``202 Accepted`` with ``Content-Location``, the
  status URL.  Parameters this server does not support (``_typeFilter``, ``_elements``,
  ``patient``, ``includeAssociatedData``) are an error, or ignored with ``Prefer: handling=lenient``.
- ``GET .../$export-poll-status/{job}``: ``202`` with ``X-Progress`` and ``Retry-After`` while
  running, ``200`` with the Bulk Data manifest when done, ``500`` with an OperationOutcome if
  the export failed; ``DELETE`` cancels a job and removes its files (``202``).
- ``GET .../$export-file/{job}/{Type}.ndjson``: one file, ``application/fhir+ndjson``, streamed.

The export runs in a thread of the server process that accepted it and reads the store in
primary-key order in pages of ``PAGE`` resources, so memory stays flat whatever the size.  Job
state lives on disk (``TRIAL2FHIR_EXPORT_DIR``, default ``<tmp>/trial2fhir-export``): every server
process can answer status and file requests.  ``transactionTime`` is the kick-off time and
resources changed after it are left out (the next ``_since`` export picks them up).  Finished
jobs are removed after ``RETENTION_S``.  When reads need a token, so do status and files
(``requiresAccessToken: true``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from adapter.server.context import ServerContext, check_type, fhir_version, get_context
from adapter.server.fhir_io import FhirError, info_outcome
from adapter.server.openapi import FHIR_RESPONSES
from adapter.store import Store
from adapter.store.base import SqlStore
from adapter.store.params import RESOURCE_TYPES

router = APIRouter(tags=["bulk data"])

PAGE = 1000
"""Resources read per query (keyset pagination over the primary key)."""
RETENTION_S = 24 * 3600.0
STALE_S = 120.0
"""A running job whose heartbeat is older than this lost its process (restart, crash): failed."""
RETRY_AFTER_S = 2
NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
UNSUPPORTED = ("_typeFilter", "_elements", "patient", "includeAssociatedData", "organizeOutputBy")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_FILE = re.compile(r"^[A-Za-z]+\.ndjson$")
_cancelled: set[str] = set()
_cancel_lock = threading.Lock()


def export_root() -> Path:
    return Path(os.environ.get("TRIAL2FHIR_EXPORT_DIR") or Path(tempfile.gettempdir()) / "trial2fhir-export")


def _instant(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_since(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, f"_since={value!r} is not a FHIR instant (e.g. 2024-01-01T00:00:00Z)", "invalid") from None
    if moment.tzinfo is None:
        raise FhirError(400, f"_since={value!r} needs a time zone (FHIR instant)", "invalid")
    return int(moment.timestamp() * 1_000_000)


def _write_status(job_dir: Path, status: dict[str, Any]) -> None:
    tmp = job_dir / f".status.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_bytes(orjson.dumps(status))
    os.replace(tmp, job_dir / "status.json")


def _read_status(job_dir: Path) -> dict[str, Any] | None:
    try:
        status: dict[str, Any] = orjson.loads((job_dir / "status.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return status


def _sweep(root: Path) -> None:
    """Remove jobs older than RETENTION_S (finished or not): exports are for collecting, not keeping."""
    now = time.time()
    with contextlib.suppress(OSError):
        for job_dir in root.iterdir():
            with contextlib.suppress(OSError):
                if _JOB_ID.match(job_dir.name) and now - (job_dir / "status.json").stat().st_mtime > RETENTION_S:
                    shutil.rmtree(job_dir, ignore_errors=True)


def _scan(store: Store, fv: str, rtype: str, since_us: int | None, until_us: int) -> Iterator[bytes]:
    """Current, non-deleted resources of one type changed in (since, until], by id, page by page."""
    if not isinstance(store, SqlStore):
        raise RuntimeError("$export needs an SQL store")
    last = ""
    sql = (
        "SELECT rid, content FROM resources WHERE fv = ? AND rtype = ? AND deleted = 0 AND rid > ? "
        "AND updated_us <= ?" + (" AND updated_us > ?" if since_us is not None else "") + " ORDER BY rid LIMIT ?"
    )
    while True:
        params: list[Any] = [fv, rtype, last, until_us]
        if since_us is not None:
            params.append(since_us)
        params.append(PAGE)
        with store.connection() as conn:
            rows = store.execute(conn, sql, params).fetchall()
        for _rid, content in rows:
            yield bytes(content)
        if len(rows) < PAGE:
            return
        last = rows[-1][0]


def _run_job(
    store: Store, job_dir: Path, fv: str, types: list[str], since_us: int | None, status: dict[str, Any]
) -> None:
    job = job_dir.name
    try:
        counts: dict[str, int] = {}
        last_beat = 0.0
        for rtype in types:
            count = 0
            part = job_dir / f".{rtype}.ndjson.part"
            with open(part, "wb") as out:
                for content in _scan(store, fv, rtype, since_us, status["until_us"]):
                    out.write(content)
                    out.write(b"\n")
                    count += 1
                    if count % PAGE == 0:
                        if job in _cancelled:
                            return
                        if time.monotonic() - last_beat > 1.0:
                            last_beat = time.monotonic()
                            done = sum(counts.values()) + count
                            _write_status(job_dir, {**status, "progress": f"{rtype}: {done} resources exported"})
            if count:
                os.replace(part, job_dir / f"{rtype}.ndjson")
                counts[rtype] = count
            else:
                part.unlink()
        if job in _cancelled:
            return
        _write_status(job_dir, {**status, "state": "complete", "counts": counts, "finished": time.time()})
    except Exception as error:  # reported to the client polling the job, and logged
        import logging

        if job not in _cancelled:  # a cancelled job's directory is gone: nothing to report to
            logging.getLogger("trial2fhir.server").exception("export %s failed", job)
            with contextlib.suppress(OSError):
                _write_status(job_dir, {**status, "state": "error", "error": f"{type(error).__name__}: {error}"})
    finally:
        with _cancel_lock:
            _cancelled.discard(job)


def _prefer(request: Request) -> dict[str, str]:
    out = {}
    for header in request.headers.getlist("prefer"):
        for item in header.split(","):
            key, _, value = item.partition("=")
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def _kick_off(request: Request, release: str, only_type: str | None) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    prefer = _prefer(request)
    if "respond-async" not in prefer:
        raise FhirError(400, "$export runs asynchronously: send 'Prefer: respond-async'", "invalid")
    accept = request.headers.get("accept", "application/fhir+json")
    if not any(m in accept for m in ("application/fhir+json", "application/json", "*/*")):
        raise FhirError(400, f"Accept: {accept} is not supported: use application/fhir+json", "not-supported")
    params = request.query_params
    lenient = prefer.get("handling") == "lenient"
    for name in UNSUPPORTED:
        if name in params and not lenient:
            raise FhirError(400, f"$export parameter {name} is not supported here", "not-supported")
    output_format = params.get("_outputFormat", "application/fhir+ndjson")
    if output_format not in NDJSON_FORMATS:
        raise FhirError(400, f"_outputFormat={output_format!r}: only application/fhir+ndjson", "not-supported")
    if only_type is not None:
        types = [check_type(only_type)]
    elif params.get("_type"):
        types = [t.strip() for raw in params.getlist("_type") for t in raw.split(",") if t.strip()]
        for rtype in types:
            check_type(rtype)
        types = [t for t in RESOURCE_TYPES if t in types]  # served order, no repeats
    else:
        types = list(RESOURCE_TYPES)
    ctx.require(request, "read", tuple(types))
    since_us = _parse_since(params["_since"]) if params.get("_since") else None
    root = export_root()
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    job = uuid.uuid4().hex
    job_dir = root / job
    job_dir.mkdir()
    now_us = int(time.time() * 1_000_000)
    status = {
        "state": "in-progress",
        "fv": fv,
        "types": types,
        "request": str(request.url),
        "transactionTime": _instant(now_us),
        "until_us": now_us,
        "requiresAccessToken": not ctx.settings.open_reads,
        "progress": "started",
    }
    _write_status(job_dir, status)
    worker = threading.Thread(
        target=_run_job, args=(ctx.store, job_dir, fv, types, since_us, status), name=f"export-{job}", daemon=True
    )
    worker.start()
    location = f"{ctx.base_url(request, fv)}/$export-poll-status/{job}"
    outcome = info_outcome(f"export of {', '.join(types)} started; poll {location}")
    return JSONResponse(outcome, status_code=202, headers={"Content-Location": location})


@router.get("/fhir/{release}/$export", summary="Bulk Data export (kick-off)", responses=FHIR_RESPONSES)
def export_system(release: str, request: Request) -> Response:
    return _kick_off(request, release, None)


@router.get("/fhir/{release}/{rtype}/$export", summary="Bulk Data export of one type", responses=FHIR_RESPONSES)
def export_type(release: str, rtype: str, request: Request) -> Response:
    return _kick_off(request, release, rtype)


def _job(request: Request, release: str, job: str) -> tuple[ServerContext, str, Path, dict[str, Any]]:
    fv = fhir_version(release)
    ctx = get_context(request)
    ctx.require(request, "read")
    job_dir = export_root() / job
    status = _read_status(job_dir) if _JOB_ID.match(job) else None
    if status is None or status.get("fv") != fv:
        raise FhirError(404, f"no export job {job} on this base (finished jobs are kept {RETENTION_S / 3600:g} h)")
    return ctx, fv, job_dir, status


@router.get("/fhir/{release}/$export-poll-status/{job}", summary="Bulk Data export status", responses=FHIR_RESPONSES)
def export_status(release: str, job: str, request: Request) -> Response:
    ctx, fv, job_dir, status = _job(request, release, job)
    state = status["state"]
    if state == "in-progress":
        beat = (job_dir / "status.json").stat().st_mtime
        if time.time() - beat > STALE_S:
            state, status["error"] = "error", "the server process running this export stopped; start a new export"
        else:
            headers = {"X-Progress": str(status.get("progress", "in progress")), "Retry-After": str(RETRY_AFTER_S)}
            return Response(status_code=202, headers=headers)
    if state == "error":
        raise FhirError(500, f"the export failed: {status.get('error')}", "exception")
    base = ctx.base_url(request, fv)
    manifest = {
        "transactionTime": status["transactionTime"],
        "request": status["request"],
        "requiresAccessToken": status["requiresAccessToken"],
        "output": [
            {"type": rtype, "url": f"{base}/$export-file/{job}/{rtype}.ndjson", "count": count}
            for rtype, count in status["counts"].items()
        ],
        "error": [],
    }
    return JSONResponse(manifest, headers={"Expires": _http_date(status["finished"] + RETENTION_S)})


@router.delete("/fhir/{release}/$export-poll-status/{job}", summary="cancel a Bulk Data export")
def export_cancel(release: str, job: str, request: Request) -> Response:
    _, _, job_dir, _ = _job(request, release, job)
    with _cancel_lock:
        _cancelled.add(job)
    shutil.rmtree(job_dir, ignore_errors=True)
    return JSONResponse(info_outcome(f"export {job} cancelled and its files deleted"), status_code=202)


@router.get("/fhir/{release}/$export-file/{job}/{name}", summary="Bulk Data export file")
def export_file(release: str, job: str, name: str, request: Request) -> Response:
    _, _, job_dir, status = _job(request, release, job)
    if status["state"] != "complete" or not _FILE.match(name) or name.removesuffix(".ndjson") not in status["counts"]:
        raise FhirError(404, f"no file {name} in export {job}", "not-found")
    path = job_dir / name

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/fhir+ndjson",
        headers={"Content-Length": str(path.stat().st_size)},
    )


def _http_date(epoch: float) -> str:
    from email.utils import formatdate

    return formatdate(epoch, usegmt=True)
