"""Incremental re-runs: only changed studies are converted again, and the export equals a full run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import EPOCH, export_files, many_studies, ndjson, write_ndjson

from adapter.batch.runner import BatchOptions, BatchSummary, run_batch


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def convert(source: Path, out: Path, **options: Any) -> BatchSummary:
    settings = {"jobs": 2, "validate": False, **options}
    return run_batch(BatchOptions(inputs=[str(source)], out=out, **settings))


def sites_of(study: dict[str, Any]) -> list[dict[str, Any]]:
    return study["protocolSection"].get("contactsLocationsModule", {}).get("locations", [])


@pytest.fixture
def downloads(tmp_path: Path) -> tuple[Path, Path, dict[str, set[str]]]:
    """An old and a newer "download": 3 changed (one loses two sites), 4 removed, 5 added."""
    studies = many_studies(40)
    old = write_ndjson(tmp_path / "old.ndjson", studies)
    newer = [json.loads(json.dumps(s)) for s in studies[4:]] + many_studies(5, start=100)
    site_index = next(i for i, s in enumerate(newer) if i > 0 and len(sites_of(s)) >= 3)
    changed = [newer[0], newer[site_index], newer[site_index + 1]]
    for study in changed:
        status = study["protocolSection"]["statusModule"]
        status["lastUpdatePostDateStruct"] = {"date": "2030-01-02", "type": "ACTUAL"}
        study["protocolSection"]["identificationModule"]["briefTitle"] = "Amended title"
    with_sites = newer[site_index]
    with_sites["protocolSection"]["contactsLocationsModule"]["locations"] = sites_of(with_sites)[:-2]
    new = write_ndjson(tmp_path / "new.ndjson", newer)
    ids = {
        "changed": {s["protocolSection"]["identificationModule"]["nctId"].lower() for s in changed},
        "removed": {s["protocolSection"]["identificationModule"]["nctId"].lower() for s in studies[:4]},
        "dropped_sites_of": {with_sites["protocolSection"]["identificationModule"]["nctId"].lower()},
    }
    return old, new, ids


def test_only_changed_studies_are_converted_and_the_export_equals_a_full_run(
    downloads: tuple[Path, Path, dict[str, set[str]]], tmp_path: Path
) -> None:
    old, new, ids = downloads
    out = tmp_path / "out"
    first = convert(old, out)
    assert (first.converted, first.incremental) == (40, False)
    second = convert(new, out)
    assert second.incremental
    assert (second.added, second.changed, second.unchanged, second.removed) == (5, 3, 33, 4)
    assert second.converted_now == 8  # 33 studies were copied, not converted
    assert second.read == second.converted == 41

    fresh = tmp_path / "fresh"
    convert(new, fresh)
    incremental_files, fresh_files = export_files(out), export_files(fresh)
    manifest = json.loads(incremental_files.pop("manifest.json"))
    deleted = incremental_files.pop("deleted/Bundle.ndjson")
    fresh_manifest = json.loads(fresh_files.pop("manifest.json"))
    assert incremental_files == fresh_files
    assert manifest["extension"]["trial2fhir"]["incremental"] == {
        "previousTransactionTime": "2023-11-14T22:13:20Z",
        "added": 5,
        "changed": 3,
        "unchanged": 33,
        "removed": 4,
    }
    assert manifest["output"] == fresh_manifest["output"]

    # Removed studies and the dropped sites of a changed one become DELETE transaction Bundles.
    bundles = [json.loads(line) for line in deleted.splitlines()]
    assert manifest["deleted"] == [{"type": "Bundle", "url": "deleted/Bundle.ndjson", "count": len(bundles)}]
    assert len(bundles) == 5
    deleted_refs = [e["request"]["url"] for b in bundles for e in b["entry"]]
    assert all(b["type"] == "transaction" for b in bundles)
    assert all(e["request"]["method"] == "DELETE" for b in bundles for e in b["entry"])
    for study in ids["removed"]:
        assert f"ResearchStudy/{study}" in deleted_refs
    (changed_study,) = ids["dropped_sites_of"]
    dropped = [r for r in deleted_refs if r.startswith(f"Location/{changed_study}-")]
    assert len(dropped) == 2
    present = {f"Location/{r['id']}" for r in ndjson(out / "Location.ndjson")}
    assert not present & set(deleted_refs)
    assert not any(r.startswith("Organization/") for r in deleted_refs)  # shared: never deleted


def test_a_rerun_on_the_same_input_converts_nothing(
    downloads: tuple[Path, Path, dict[str, set[str]]], tmp_path: Path
) -> None:
    old = downloads[0]
    out = tmp_path / "out"
    convert(old, out)
    before = export_files(out)
    again = convert(old, out)
    assert (again.unchanged, again.converted_now, again.added, again.removed) == (40, 0, 0, 0)
    after = export_files(out)
    assert json.loads(after.pop("manifest.json"))["extension"]["trial2fhir"]["incremental"]["unchanged"] == 40
    before.pop("manifest.json")
    assert after == before


def test_other_options_or_a_modified_export_mean_a_full_conversion(
    downloads: tuple[Path, Path, dict[str, set[str]]], tmp_path: Path
) -> None:
    old = downloads[0]
    out = tmp_path / "out"
    convert(old, out)
    other = convert(old, out, fhir_version="5.0")
    assert not other.incremental and other.converted_now == 40
    assert any("fhirVersion" in note for note in other.notes)
    with open(out / "Group.ndjson", "ab") as f:
        f.write(b"\n")
    tampered = convert(old, out, fhir_version="5.0")
    assert not tampered.incremental and tampered.converted_now == 40
    assert any("Group.ndjson" in note for note in tampered.notes)


def test_registry_snapshot_marker_alone_is_not_a_change(tmp_path: Path) -> None:
    # A new download re-stamps every study (v2 versionHolder); that alone re-converts nothing.
    studies = many_studies(6)
    out = tmp_path / "out"
    convert(write_ndjson(tmp_path / "a.ndjson", studies), out)
    for study in studies:
        study.setdefault("derivedSection", {}).setdefault("miscInfoModule", {})["versionHolder"] = "2031-01-01"
    again = convert(write_ndjson(tmp_path / "b.ndjson", studies), out)
    assert (again.unchanged, again.changed) == (6, 0)
