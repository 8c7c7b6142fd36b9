"""Input discovery: content decides the kind, walks are sorted, NDJSON splits by lines, memory stays flat."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import orjson
import pytest
from batch_helpers import SEED_XML, many_studies, write_ndjson, write_zip

from adapter.batch.inputs import (
    UNITS_PER_TASK,
    BrokenUnit,
    FileUnit,
    LinesUnit,
    MemberUnit,
    Planner,
    UsageError,
)


def units(*inputs: Path | str, exclude: Path | None = None) -> list[object]:
    planner = Planner([str(i) for i in inputs], exclude=str(exclude) if exclude else None)
    planner.check()
    return [unit for task in planner.tasks() for unit in task.units]


def test_kind_comes_from_content_not_name(tmp_path: Path) -> None:
    studies = many_studies(3)
    write_zip(tmp_path / "archive.txt", {"a.json": orjson.dumps(studies[0])})
    write_ndjson(tmp_path / "lines.json", studies[:2])
    (tmp_path / "pretty.ndjson").write_bytes(orjson.dumps(studies[0], option=orjson.OPT_INDENT_2))
    (tmp_path / "oneline.data").write_bytes(orjson.dumps({"studies": studies}) + b"\n")
    (tmp_path / "record.bin").write_bytes(SEED_XML.read_bytes())
    found = {Path(getattr(u, "path", getattr(u, "archive", ""))).name: type(u).__name__ for u in units(tmp_path)}
    assert found == {
        "archive.txt": "MemberUnit",
        "lines.json": "LinesUnit",
        "pretty.ndjson": "FileUnit",  # first line "{" is not complete JSON: a document
        "oneline.data": "FileUnit",  # one line only: a document, as read_items would see it
        "record.bin": "FileUnit",
    }


def test_walk_is_sorted_recursive_and_skips_hidden_and_output(tmp_path: Path) -> None:
    for name in ("b/2.json", "b/1.json", "a.json", "c/.git/x.json", ".DS_Store", "out/ResearchStudy.ndjson"):
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    found = [u.locator for u in units(tmp_path / "in", exclude=tmp_path / "in" / "out")]  # type: ignore[attr-defined]
    base = str(tmp_path / "in")
    assert found == [f"{base}/a.json", f"{base}/b/1.json", f"{base}/b/2.json"]


def test_archive_members_in_directory_order_without_dirs_or_resource_forks(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "a.zip",
        {"z/": b"", "z/2.json": b"{}", "z/1.json": b"{}", "__MACOSX/z/._1.json": b"x", "z/.hidden": b"x"},
    )
    found = units(path)
    assert all(isinstance(u, MemberUnit) for u in found)
    assert [u.locator for u in found] == [f"{path}!z/2.json", f"{path}!z/1.json"]  # type: ignore[attr-defined]


def test_broken_archive_is_one_failed_unit(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    (unit,) = units(path)
    assert isinstance(unit, BrokenUnit) and unit.locator == str(path) and "zip" in unit.message


def test_ndjson_is_cut_into_line_ranges_with_line_numbers(tmp_path: Path) -> None:
    count = UNITS_PER_TASK * 2 + 5
    path = write_ndjson(tmp_path / "big.ndjson", many_studies(count))
    planner = Planner([str(path)])
    tasks = list(planner.tasks())
    assert [len(t.units) for t in tasks] == [1, 1, 1]
    ranges = [t.units[0] for t in tasks]
    assert all(isinstance(r, LinesUnit) for r in ranges)
    assert [r.first_line for r in ranges] == [1, UNITS_PER_TASK + 1, 2 * UNITS_PER_TASK + 1]  # type: ignore[union-attr]
    data = path.read_bytes()
    assert b"".join(data[r.offset : r.offset + r.length] for r in ranges) == data  # type: ignore[union-attr]


def test_ndjson_without_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"{}\n{}")
    (unit,) = units(path)
    assert isinstance(unit, LinesUnit) and unit.length == 5


def test_plan_is_deterministic_and_describes_sizes(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "a.ndjson", many_studies(3))
    (tmp_path / "b.json").write_text("{}")
    first = [t.describe() for t in Planner([str(tmp_path)]).tasks()]
    assert first == [t.describe() for t in Planner([str(tmp_path)]).tasks()]
    (tmp_path / "b.json").write_text('{"changed": 1}')
    assert first != [t.describe() for t in Planner([str(tmp_path)]).tasks()]


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        Planner([str(tmp_path / "nope.zip")]).check()
    with pytest.raises(UsageError, match="once"):
        Planner(["-", "-"]).check()


def test_unreadable_file_is_planned_and_fails_in_the_worker(tmp_path: Path) -> None:
    link = tmp_path / "dangling.json"
    link.symlink_to(tmp_path / "gone.json")
    (unit,) = units(tmp_path)
    assert isinstance(unit, FileUnit) and unit.locator == str(link)


def test_planning_a_large_archive_keeps_memory_flat(tmp_path: Path) -> None:
    # zipfile.ZipFile would hold ~38 MB of ZipInfo for these 70,000 members; the planner streams them.
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(70_000):
            archive.writestr(f"studies/NCT9{i:07d}.json", b"{}")
    tracemalloc.start()
    try:
        count = 0
        for task in Planner([str(path)]).tasks():
            count += len(task.units)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 70_000
    assert peak < 4 * 1024 * 1024, f"planning peaked at {peak / 1e6:.1f} MB"
