"""Output files of a batch: append-only part files while running, published atomically at the end.

Layout of ``--out DIR``::

    DIR/manifest.json                    written last: DIR is complete iff it exists
    DIR/ResearchStudy.ndjson ...         one file per resource type (--format ndjson)
    DIR/Bundle.ndjson                    one transaction Bundle per record (--format bundles)
    DIR/errors/OperationOutcome.ndjson   one OperationOutcome per failed record
    DIR/deleted/Bundle.ndjson            incremental runs: DELETE Bundles (removed studies, dropped resources)
    DIR/.trial2fhir/                     journal and state (see ``journal``); not part of the export

Part files live in ``DIR/.trial2fhir/run/parts/`` and are only ever appended to; the journal
records their sizes at each checkpoint and a resumed run truncates them back to those sizes.
Publishing removes the old manifest first, moves each part into place with ``os.replace`` (atomic
on one file system), removes files of the previous export that this one does not have, and
writes the new manifest last (temporary file, fsync, rename).  A crash at any point therefore
leaves either the previous complete export, or files without a manifest, never a manifest that
describes files it does not match.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import orjson

TYPE_ORDER = (
    "ResearchStudy",
    "PlanDefinition",
    "Group",
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
)
"""Manifest order: the study first, then what it references; other types follow alphabetically."""

ERRORS = "errors/OperationOutcome.ndjson"
DELETED = "deleted/Bundle.ndjson"
MANIFEST = "manifest.json"


def output_name(resource_type: str) -> str:
    return f"{resource_type}.ndjson"


def type_sort_key(resource_type: str) -> tuple[int, str]:
    return (TYPE_ORDER.index(resource_type), "") if resource_type in TYPE_ORDER else (len(TYPE_ORDER), resource_type)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartFiles:
    """Append-only files under ``root``, opened lazily by relative name; sizes are tracked exactly."""

    def __init__(self, root: Path, sizes: dict[str, int] | None = None) -> None:
        self.root = root
        self.files: dict[str, BinaryIO] = {}
        self.sizes: dict[str, int] = {}
        recorded = sizes or {}
        # Resume: cut whatever was appended after the last checkpoint, including parts created
        # after it (not recorded at all: back to empty).
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            with open(path, "r+b") as f:
                f.truncate(recorded.get(name, 0))
        for name, size in recorded.items():
            if (root / name).stat().st_size != size:
                raise RuntimeError(f"part file {name} is shorter than the journal says: the run cannot be resumed")
            self.sizes[name] = size

    def _open(self, name: str) -> BinaryIO:
        f = self.files.get(name)
        if f is None:
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            f = self.files[name] = open(path, "ab", buffering=1 << 20)  # noqa: SIM115 - long-lived
            self.sizes.setdefault(name, 0)
            f.seek(self.sizes[name])
        return f

    def append(self, name: str, data: bytes) -> tuple[int, int]:
        """Append ``data``; returns its (offset, length) in the file."""
        f = self._open(name)
        offset = self.sizes[name]
        f.write(data)
        self.sizes[name] = offset + len(data)
        return offset, len(data)

    def reset(self, name: str) -> None:
        """Empty one part (finalisation steps that are redone from scratch after a crash)."""
        f = self._open(name)
        f.flush()
        f.truncate(0)
        self.sizes[name] = 0

    def sync(self) -> dict[str, int]:
        """Flush and fsync every part; returns the sizes now durable."""
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())
        return dict(self.sizes)

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


def manifest_bytes(manifest: dict[str, object]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def publish(
    out: Path,
    parts_root: Path,
    files: dict[str, int],
    stale: list[str],
    manifest: bytes,
    after_each: Callable[[str], None] | None = None,
) -> None:
    """Move the parts into ``out`` and write the manifest; idempotent, so a resume can redo it.

    ``files`` maps each output file (relative name) to its expected size; a part already moved
    by an interrupted publish is recognised by that size.  ``stale`` lists files of the previous
    export to remove when this export does not produce them.
    """
    with contextlib.suppress(FileNotFoundError):
        os.remove(out / MANIFEST)
    fsync_dir(out)
    for name, size in files.items():
        source, target = parts_root / name, out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.exists():
            os.replace(source, target)
            if after_each is not None:
                after_each(name)
        elif not (target.exists() and target.stat().st_size == size):
            raise RuntimeError(f"cannot publish {name}: its part file is gone and {target} does not match")
    for name in stale:
        if name not in files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(out / name)
    for sub in {Path(n).parent for n in files} | {Path(ERRORS).parent, Path(DELETED).parent}:
        if str(sub) != ".":
            with contextlib.suppress(OSError):
                fsync_dir(out / sub)
            with contextlib.suppress(OSError):
                (out / sub).rmdir()  # only succeeds when empty (a stale errors/ directory)
    fsync_dir(out)
    _write_atomic(out / MANIFEST, manifest)
    fsync_dir(out)


def manifest_digest(out: Path) -> str | None:
    try:
        return hashlib.sha256((out / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return None
