"""Read ``.zip`` archives member by member with memory independent of the member count.

``zipfile.ZipFile`` loads the whole central directory into ``ZipInfo`` objects when it opens an
archive: about 550 bytes per member, so ~300 MB for ClinicalTrials.gov's 560,000-member
``ctg-studies.json.zip``, in every process that opens it.  Here the central directory is walked
as a stream (one 46-byte header at a time) and each member is located through its own local
header and inflated on demand, so a batch holds only the members in flight.

Supported: stored, deflate and bzip2 members, ZIP64 (needed beyond 65,535 members or 4 GiB),
data descriptors (sizes come from the central directory), archives with a prefix (self-extracting
stubs).  The CRC-32 of every member is checked.  Encrypted members and other compression methods
are refused per member (``ZipMemberError``), so one odd member does not stop a batch.
Constants and record layouts follow PKWARE's APPNOTE.TXT, as ``zipfile`` does.
"""

from __future__ import annotations

import bz2
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""First bytes of a zip archive (a local file header, or the end record of an empty archive)."""

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64_LOCATOR_SIG = b"PK\x06\x07"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD64_SIG = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIG = b"PK\x03\x04"
_ZIP64_EXTRA = 0x0001
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_STORED, _DEFLATED, _BZIP2 = 0, 8, 12
_MAX_COMMENT = 0xFFFF
_READ_SIZE = 1 << 20


class ZipFormatError(Exception):
    """The archive as a whole is unreadable (no end of central directory, truncated directory)."""


class ZipMemberError(Exception):
    """One member cannot be read (encrypted, unsupported method, corrupt data, CRC mismatch)."""


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """What is needed to read one member: small, picklable, sent to worker processes."""

    name: str
    header_offset: int
    """Offset of the member's local header, already corrected for any archive prefix."""
    method: int
    flags: int
    compressed_size: int
    size: int
    crc: int

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def is_zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGIC


def _end_records(f: BinaryIO) -> tuple[int, int, int, int]:
    """(entries, central directory size, its actual start, prefix length) from the end records."""
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    tail_size = min(file_size, _EOCD.size + _MAX_COMMENT)
    f.seek(file_size - tail_size)
    tail = f.read(tail_size)
    # The end record is the last signature whose comment length reaches exactly the end of file.
    pos = tail.rfind(_EOCD_SIG)
    while pos >= 0:
        if pos + _EOCD.size <= len(tail) and pos + _EOCD.size + _EOCD.unpack_from(tail, pos)[-1] == len(tail):
            break
        pos = tail.rfind(_EOCD_SIG, 0, pos)
    if pos < 0:
        raise ZipFormatError("not a zip archive, or truncated (no end of central directory record)")
    eocd_offset = file_size - tail_size + pos
    _sig, _disk, _cd_disk, _n_disk, entries, cd_size, cd_offset, _comment = _EOCD.unpack_from(tail, pos)
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        # ZIP64: the 64-bit end record sits right before its locator, which sits right before the
        # classic end record (no "extensible data" is written in practice; zipfile assumes the same).
        locator_offset = eocd_offset - _EOCD64_LOCATOR.size
        record_offset = locator_offset - _EOCD64.size
        if record_offset < 0:
            raise ZipFormatError("ZIP64 end of central directory record missing")
        f.seek(record_offset)
        block = f.read(_EOCD64.size + _EOCD64_LOCATOR.size)
        record, locator = block[: _EOCD64.size], block[_EOCD64.size :]
        if record[:4] != _EOCD64_SIG or locator[:4] != _EOCD64_LOCATOR_SIG:
            raise ZipFormatError("ZIP64 end of central directory record missing")
        claimed_record_offset = _EOCD64_LOCATOR.unpack(locator)[2]
        fields = _EOCD64.unpack(record)
        entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
        prefix = record_offset - claimed_record_offset
    else:
        prefix = eocd_offset - cd_size - cd_offset
    cd_start = cd_offset + prefix
    if prefix < 0 or cd_start + cd_size > file_size:
        raise ZipFormatError("central directory points outside the file")
    return entries, cd_size, cd_start, prefix


def _zip64_values(extra: bytes, needed: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    pos = 0
    while pos + 4 <= len(extra):
        header_id, length = struct.unpack_from("<2H", extra, pos)
        if header_id == _ZIP64_EXTRA:
            data = extra[pos + 4 : pos + 4 + length]
            for index, name in enumerate(needed):
                if 8 * index + 8 > len(data):
                    raise ZipFormatError("corrupt ZIP64 extra field")
                found[name] = struct.unpack_from("<Q", data, 8 * index)[0]
            return found
        pos += 4 + length
    if needed:
        raise ZipFormatError("ZIP64 sizes announced but no ZIP64 extra field")
    return found


class _Buffered:
    """Sequential reads from a file position, in large blocks (the central directory can be ~60 MB)."""

    def __init__(self, f: BinaryIO, start: int, size: int) -> None:
        self.f, self.pos, self.end = f, start, start + size
        self.buffer = b""
        self.offset = 0

    def read(self, n: int) -> bytes:
        if self.offset + n > len(self.buffer) and self.pos < self.end:
            # Refill: keep the unread tail, append the next block (a slice per block, not per read).
            self.f.seek(self.pos)
            block = self.f.read(min(max(_READ_SIZE, n), self.end - self.pos))
            self.pos += len(block)
            self.buffer = self.buffer[self.offset :] + block
            self.offset = 0
        data = self.buffer[self.offset : self.offset + n]
        self.offset += len(data)
        return data


def iter_entries(path: str | os.PathLike[str]) -> Iterator[ZipEntry]:
    """Every member of the archive, in central-directory order (the order ``zipfile`` lists them)."""
    with open(path, "rb") as f:
        entries, cd_size, cd_start, prefix = _end_records(f)
        reader = _Buffered(f, cd_start, cd_size)
        for _ in range(entries):
            header = reader.read(_CENTRAL.size)
            if len(header) != _CENTRAL.size or header[:4] != _CENTRAL_SIG:
                raise ZipFormatError("truncated or corrupt central directory")
            fields = _CENTRAL.unpack(header)
            flags, method, crc = fields[5], fields[6], fields[9]
            compressed, size = fields[10], fields[11]
            name_length, extra_length, comment_length = fields[12], fields[13], fields[14]
            offset = fields[18]
            raw_name = reader.read(name_length)
            extra = reader.read(extra_length)
            reader.read(comment_length)
            needed = [
                name
                for name, value in (("size", size), ("compressed", compressed), ("offset", offset))
                if value == 0xFFFFFFFF
            ]
            values = _zip64_values(extra, needed) if needed else {}
            name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", errors="replace")
            yield ZipEntry(
                name=name,
                header_offset=values.get("offset", offset) + prefix,
                method=method,
                flags=flags,
                compressed_size=values.get("compressed", compressed),
                size=values.get("size", size),
                crc=crc,
            )


def count_entries(path: str | os.PathLike[str]) -> int:
    """Number of central-directory records (members and directories), read from the end record only."""
    with open(path, "rb") as f:
        return _end_records(f)[0]


def read_member(f: BinaryIO, entry: ZipEntry, max_size: int | None = None) -> bytes:
    """The uncompressed bytes of one member, CRC-checked; ``f`` is the archive opened in binary mode."""
    if entry.flags & _FLAG_ENCRYPTED:
        raise ZipMemberError("encrypted member (not supported)")
    if max_size is not None and entry.size > max_size:
        raise ZipMemberError(f"member is {entry.size} bytes uncompressed, over the {max_size}-byte limit")
    f.seek(entry.header_offset)
    header = f.read(_LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != _LOCAL_SIG:
        raise ZipMemberError("local file header missing (corrupt archive)")
    fields = _LOCAL.unpack(header)
    name_length, extra_length = fields[10], fields[11]
    f.seek(entry.header_offset + _LOCAL.size + name_length + extra_length)
    raw = f.read(entry.compressed_size)
    if len(raw) != entry.compressed_size:
        raise ZipMemberError("member data truncated")
    if entry.method == _STORED:
        data = raw
    elif entry.method == _DEFLATED:
        inflater = zlib.decompressobj(-15)
        try:
            # The declared size bounds the output, so a forged member cannot inflate without limit.
            data = inflater.decompress(raw, entry.size + 1)
        except zlib.error as error:
            raise ZipMemberError(f"corrupt deflate data: {error}") from None
    elif entry.method == _BZIP2:
        try:
            data = bz2.BZ2Decompressor().decompress(raw, entry.size + 1)
        except (OSError, EOFError) as error:
            raise ZipMemberError(f"corrupt bzip2 data: {error}") from None
    else:
        raise ZipMemberError(f"compression method {entry.method} is not supported (stored, deflate, bzip2 are)")
    if len(data) != entry.size:
        raise ZipMemberError(f"member inflates to {len(data)} bytes, the directory says {entry.size}")
    if zlib.crc32(data) != entry.crc:
        raise ZipMemberError("CRC-32 mismatch (corrupt member)")
    return data
