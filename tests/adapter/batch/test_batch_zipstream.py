"""The streaming zip reader agrees with zipfile, member by member, and refuses bad members one at a time."""

from __future__ import annotations

import os
import random
import struct
import zipfile
from pathlib import Path

import pytest

from adapter.batch.zipstream import (
    ZipFormatError,
    ZipMemberError,
    count_entries,
    is_zip,
    iter_entries,
    read_member,
)


def _payloads(seed: int, count: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {
        f"dir/étude-{i}.json": rng.randbytes(rng.randint(0, 2000)) + b"x" * rng.randint(0, 6000) for i in range(count)
    }


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_members_equal_zipfile(tmp_path: Path, method: int) -> None:
    path = tmp_path / "a.zip"
    payloads = _payloads(method, 40)
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("dir/", b"")
        for name, data in payloads.items():
            archive.writestr(name, data)
    entries = list(iter_entries(path))
    assert [e.name for e in entries] == zipfile.ZipFile(path).namelist()  # same order, UTF-8 names
    assert entries[0].is_dir and count_entries(path) == 41
    with open(path, "rb") as f:
        assert {e.name: read_member(f, e) for e in entries if not e.is_dir} == payloads


def test_streamed_member_written_without_sizes_up_front(tmp_path: Path) -> None:
    # ZipFile.open(..., "w") writes a data descriptor after the data: sizes only in the central directory.
    path = tmp_path / "stream.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("s.json", "w") as member:
        member.write(b'{"a": 1}' * 1000)
    (entry,) = iter_entries(path)
    with open(path, "rb") as f:
        assert read_member(f, entry) == b'{"a": 1}' * 1000


def test_prefixed_archive(tmp_path: Path) -> None:
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.json", b"[1]")
        archive.writestr("y.json", b"[2]")
    path = tmp_path / "sfx.zip"
    path.write_bytes(b"#!/bin/sh\necho self-extracting stub\n" * 20 + inner.read_bytes())
    with open(path, "rb") as f:
        assert [read_member(f, e) for e in iter_entries(path)] == [b"[1]", b"[2]"]


def test_zip64_end_records_beyond_65535_members(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(70_000):
            archive.writestr(f"{i}.json", str(i).encode())
    assert count_entries(path) == 70_000
    last = None
    for last in iter_entries(path):  # noqa: B007 - only the last one is read
        pass
    assert last is not None and last.name == "69999.json"
    with open(path, "rb") as f:
        assert read_member(f, last) == b"69999"


def test_corrupt_member_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("good.json", b'{"good": true}')
        archive.writestr("bad.json", b'{"flipped": 0}')
    data = bytearray(path.read_bytes())
    data[data.index(b'{"flipped": 0}') + 12] ^= 0x01
    path.write_bytes(bytes(data))
    good, bad = iter_entries(path)
    with open(path, "rb") as f:
        assert read_member(f, good) == b'{"good": true}'
        with pytest.raises(ZipMemberError, match="CRC"):
            read_member(f, bad)


def test_encrypted_and_unknown_methods_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("x.json", b"{}")
    (entry,) = iter_entries(path)
    with open(path, "rb") as f:
        with pytest.raises(ZipMemberError, match="encrypted"):
            read_member(f, entry.__class__(**{**_fields(entry), "flags": entry.flags | 1}))
        with pytest.raises(ZipMemberError, match="method 99"):
            read_member(f, entry.__class__(**{**_fields(entry), "method": 99}))
        with pytest.raises(ZipMemberError, match="limit"):
            read_member(f, entry, max_size=1)


def _fields(entry: object) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__slots__}  # type: ignore[attr-defined]


def test_deflate_bomb_is_bounded_by_declared_size(tmp_path: Path) -> None:
    # A member whose directory claims 10 bytes but inflates to 10 MB is refused without inflating it all.
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("b.json", b"0" * 10_000_000)
    (entry,) = iter_entries(path)
    lying = entry.__class__(**{**_fields(entry), "size": 10})
    with open(path, "rb") as f, pytest.raises(ZipMemberError, match="inflates"):
        read_member(f, lying)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04 but truncated")
    assert is_zip(path.read_bytes())
    with pytest.raises(ZipFormatError):
        list(iter_entries(path))
    assert not is_zip(b'{"studies": []}')


def test_truncated_central_directory(tmp_path: Path) -> None:
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(10):
            archive.writestr(f"{i}.json", b"{}")
    data = bytearray(path.read_bytes())
    # Claim more entries than the directory holds.
    eocd = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 11, 11)
    path.write_bytes(bytes(data))
    with pytest.raises(ZipFormatError, match="central directory"):
        list(iter_entries(path))


def test_entries_are_small_and_picklable(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.json", os.urandom(10))
    (entry,) = iter_entries(path)
    assert pickle.loads(pickle.dumps(entry)) == entry
