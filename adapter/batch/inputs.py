"""Input discovery: turn ``INPUT...`` into a deterministic stream of small conversion tasks.

Inputs are files, directories (walked recursively in sorted order; hidden entries and the output
directory are skipped), ``.zip`` archives (streamed member by member, see ``zipstream``), NDJSON
files (split into line ranges so one big file still spreads over all workers) and ``-`` (stdin).
What a file is comes from its content, never its name: ``PK\\x03\\x04`` is an archive; a file whose
first line is a complete JSON value followed by more lines is NDJSON; anything else is one
document handed whole to ``adapter.readers.read_items`` (JSON study, search page, array, legacy
XML, WHO ICTRP XML).

The plan is a pure function of the inputs, so a resumed run re-plans the same tasks and skips the
ones already done; ``Task.describe()`` feeds the digest that proves it (sizes and mtimes included).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from adapter.batch.zipstream import ZipEntry, ZipFormatError, is_zip, iter_entries

UNITS_PER_TASK = 32
"""Records (files, members, lines) per task: large enough to amortise process hand-off, small
enough that a checkpoint loses little work and workers stay evenly loaded."""
TASK_BYTES = 8 << 20
"""A task is also closed once it holds this many input bytes (big records, big NDJSON lines)."""
_SNIFF = 64 << 10


class UsageError(Exception):
    """An ``INPUT`` argument does not exist or cannot be read at all (CLI exit status 2)."""


@dataclass(frozen=True, slots=True)
class FileUnit:
    """A whole file, read by the worker and handed to ``read_items`` (one or more records)."""

    path: str
    locator: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class MemberUnit:
    """One archive member; locators are ``archive.zip!member/name.json``."""

    archive: str
    locator: str
    entry: ZipEntry


@dataclass(frozen=True, slots=True)
class LinesUnit:
    """A range of NDJSON lines of a file; each line is located as ``file#N`` (1-based)."""

    path: str
    locator: str
    offset: int
    length: int
    first_line: int


@dataclass(frozen=True, slots=True)
class BytesUnit:
    """Input already in memory (stdin): a document, or NDJSON lines when ``first_line`` is set."""

    locator: str
    data: bytes
    first_line: int | None = None


@dataclass(frozen=True, slots=True)
class BrokenUnit:
    """An input that cannot even be listed (corrupt archive directory): one failed record."""

    locator: str
    message: str


Unit = FileUnit | MemberUnit | LinesUnit | BytesUnit | BrokenUnit


@dataclass(slots=True)
class Task:
    index: int
    units: list[Unit] = field(default_factory=list)
    weight: int = 0
    """Input bytes covered, for progress and ETA."""

    def describe(self) -> bytes:
        """Identity of the task's inputs for the resume check (not their content: sizes and mtimes)."""
        parts: list[str] = []
        for unit in self.units:
            if isinstance(unit, FileUnit):
                parts.append(f"F|{unit.locator}|{unit.size}|{unit.mtime_ns}")
            elif isinstance(unit, MemberUnit):
                e = unit.entry
                parts.append(f"M|{unit.locator}|{e.header_offset}|{e.compressed_size}|{e.crc}")
            elif isinstance(unit, LinesUnit):
                parts.append(f"L|{unit.locator}|{unit.offset}|{unit.length}|{unit.first_line}")
            elif isinstance(unit, BytesUnit):
                parts.append(f"B|{unit.locator}|{hashlib.sha256(unit.data).hexdigest()}")
            else:
                parts.append(f"X|{unit.locator}")
        return "\n".join(parts).encode("utf-8", "surrogateescape")


def _hidden(name: str) -> bool:
    # Editor backups, .DS_Store, .git and macOS resource forks are not registry records.
    return name.startswith(".") or name == "__MACOSX"


class Planner:
    """Yields ``Task`` objects for the inputs; ``exclude`` is a directory never read (the output)."""

    def __init__(self, inputs: list[str], exclude: str | None = None) -> None:
        self.inputs = inputs
        self.exclude = os.path.realpath(exclude) if exclude else None
        self._index = 0
        self._task = Task(0)

    # -- checks ------------------------------------------------------------------------------

    def check(self) -> None:
        """Fail fast (usage error) on an input that does not exist, before any work starts."""
        stdin_count = sum(1 for i in self.inputs if i == "-")
        if stdin_count > 1:
            raise UsageError("'-' (stdin) can be given once")
        for item in self.inputs:
            if item == "-":
                continue
            try:
                mode = os.stat(item).st_mode
            except OSError as error:
                raise UsageError(f"cannot read {item}: {error.strerror or error}") from None
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise UsageError(f"{item} is neither a file nor a directory")
            if stat.S_ISDIR(mode) and not os.access(item, os.R_OK | os.X_OK):
                raise UsageError(f"cannot read directory {item}")

    def total_bytes(self) -> int:
        """Input size for the progress bar (a pre-walk: stat only, no reads)."""
        total = 0
        for item in self.inputs:
            if item == "-":
                continue
            if os.path.isdir(item):
                for path in self._walk(item):
                    with contextlib.suppress(OSError):
                        total += os.stat(path).st_size
            else:
                total += os.path.getsize(item)
        return total

    # -- planning ------------------------------------------------------------------------------

    def tasks(self) -> Iterator[Task]:
        for item in self.inputs:
            if item == "-":
                yield from self._stdin()
            elif os.path.isdir(item):
                for path in self._walk(item):
                    yield from self._file(path)
            else:
                yield from self._file(item)
        yield from self._flush()

    def _add(self, unit: Unit, weight: int) -> Iterator[Task]:
        task = self._task
        if task.units and (len(task.units) >= UNITS_PER_TASK or task.weight + weight > TASK_BYTES):
            yield from self._flush()
            task = self._task
        task.units.append(unit)
        task.weight += weight

    def _flush(self) -> Iterator[Task]:
        if self._task.units:
            yield self._task
            self._index += 1
            self._task = Task(self._index)

    def _walk(self, top: str) -> Iterator[str]:
        """Files under ``top`` in sorted order, depth first; symlinked directories once (no cycles)."""
        seen: set[tuple[int, int]] = set()

        def visit(directory: str) -> Iterator[str]:
            try:
                info = os.stat(directory)
            except OSError:
                return
            key = (info.st_dev, info.st_ino)
            if key in seen or (self.exclude and os.path.realpath(directory) == self.exclude):
                return
            seen.add(key)
            try:
                with os.scandir(directory) as it:
                    entries = sorted((e.name, _is_dir(e)) for e in it if not _hidden(e.name))
            except OSError:
                # An unreadable sub-directory becomes one failed record (the worker's read fails).
                yield directory
                return
            for name, is_dir in entries:
                path = os.path.join(directory, name)
                if is_dir:
                    yield from visit(path)
                else:
                    yield path

        yield from visit(top)

    def _file(self, path: str) -> Iterator[Task]:
        locator = path
        try:
            info = os.stat(path)
            with open(path, "rb") as f:
                head = f.read(_SNIFF)
        except OSError:
            # Reported by the worker, which tries to read it and records the error for this locator.
            yield from self._add(FileUnit(path, locator, 0, 0), 0)
            return
        if is_zip(head):
            yield from self._archive(path, locator)
            return
        if _is_ndjson(path, head):
            yield from self._ndjson(path, locator, info.st_size)
            return
        yield from self._add(FileUnit(path, locator, info.st_size, info.st_mtime_ns), info.st_size)

    def _archive(self, path: str, locator: str) -> Iterator[Task]:
        try:
            entries = iter_entries(path)
            for entry in entries:
                if entry.is_dir or any(_hidden(part) for part in entry.name.split("/")):
                    continue
                yield from self._add(MemberUnit(path, f"{locator}!{entry.name}", entry), entry.compressed_size)
        except (ZipFormatError, OSError) as error:
            yield from self._add(BrokenUnit(locator, f"unreadable zip archive: {error}"), 0)

    def _ndjson(self, path: str, locator: str, size: int) -> Iterator[Task]:
        """Cut the file into line ranges of at most UNITS_PER_TASK lines / TASK_BYTES bytes, one task each."""
        yield from self._flush()
        line = 1
        with open(path, "rb") as f:
            offset = 0
            carry = b""
            chunk_start, chunk_line, lines_in_chunk = 0, 1, 0
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                data = carry + block
                base = offset - len(carry)
                pos = 0
                while True:
                    nl = data.find(b"\n", pos)
                    if nl < 0:
                        break
                    lines_in_chunk += 1
                    line += 1
                    pos = nl + 1
                    end = base + pos
                    if lines_in_chunk >= UNITS_PER_TASK or end - chunk_start >= TASK_BYTES:
                        self._task.units.append(LinesUnit(path, locator, chunk_start, end - chunk_start, chunk_line))
                        self._task.weight = end - chunk_start
                        yield from self._flush()
                        chunk_start, chunk_line, lines_in_chunk = end, line, 0
                carry = data[pos:]
                offset += len(block)
            if offset > chunk_start:
                self._task.units.append(LinesUnit(path, locator, chunk_start, offset - chunk_start, chunk_line))
                self._task.weight = offset - chunk_start
        yield from self._flush()

    def _stdin(self) -> Iterator[Task]:
        stream = sys.stdin.buffer
        yield from self._flush()
        first = stream.readline()
        blank = 0
        while first and not first.strip():
            blank += 1
            first = stream.readline()
        if first and _complete_json(first) and stream.peek(1):
            # NDJSON on stdin: streamed in chunks of lines, never held whole.
            line = blank + 1
            chunk, chunk_line = [first], line
            for raw in stream:
                line += 1
                if not chunk:
                    chunk_line = line
                chunk.append(raw)
                if len(chunk) >= UNITS_PER_TASK:
                    yield from self._lines_task(chunk, chunk_line)
                    chunk = []
            if chunk:
                yield from self._lines_task(chunk, chunk_line)
        else:
            data = b"\n" * blank + first + stream.read()
            yield from self._add(BytesUnit("<stdin>", data, None), len(data))
            yield from self._flush()

    def _lines_task(self, chunk: list[bytes], first_line: int) -> Iterator[Task]:
        data = b"".join(chunk)
        self._task.units.append(BytesUnit("<stdin>", data, first_line))
        self._task.weight = len(data)
        yield from self._flush()


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _complete_json(line: bytes) -> bool:
    text = line.strip().lstrip(b"\xef\xbb\xbf")
    if not text or text[:1] not in (b"{", b"["):
        return False
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _is_ndjson(path: str, head: bytes) -> bool:
    """A complete JSON value on the first line, then another non-blank line.

    A pretty-printed document's first line (``{``) is not complete JSON, and a one-line document
    has no second line, so both stay documents, exactly as ``read_items`` would treat them.
    """
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] not in (b"{", b"["):
        return False
    with open(path, "rb") as f:
        first_seen = False
        for raw in f:
            if not raw.strip(b"\xef\xbb\xbf \t\r\n"):
                continue
            if first_seen:
                return True
            if not _complete_json(raw):
                return False
            first_seen = True
    return False
