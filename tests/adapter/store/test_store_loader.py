"""Loading registry records: both FHIR versions, idempotence, files loaded once, archives, failures."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import orjson

from adapter.store import Store, open_store
from adapter.store.loader import convert_both, default_fixture_paths, iter_inputs, load_paths

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "fixtures"
SEED_JSON = FIXTURES / "seed" / "NCT01854957.json"


def test_fixtures_load_in_both_versions_and_only_once(store: Store) -> None:
    paths = default_fixture_paths(REPO)
    assert paths and paths[-1] == SEED_JSON, "API v2 JSON loads after legacy XML"
    report = load_paths(store, paths, workers=1)
    assert report.failures == []
    assert report.records >= 20
    counts = store.counts()
    for rtype in ("ResearchStudy", "PlanDefinition", "Group", "Organization", "Location", "Practitioner"):
        assert counts[("4.0", rtype)] == counts[("5.0", rtype)] > 0
    seed = store.read("4.0", "ResearchStudy", "nct01854957")
    assert seed is not None and seed.version == 2, "XML first, then the v2 JSON of the same trial"
    stored = orjson.loads(seed.content)
    stored.pop("meta")
    assert stored == convert_both(SEED_JSON.read_bytes(), "seed")[0].r4[0], "the v2 JSON wins"

    again = load_paths(store, paths, workers=1)
    assert again.skipped == again.files and again.records == 0
    forced = load_paths(store, [SEED_JSON], force=True, workers=1)
    assert set(forced.outcomes) <= {"unchanged", "kept"}, "re-ingesting the same trial creates no version"
    assert store.read("4.0", "ResearchStudy", "nct01854957").version == 2
    assert store.counts() == counts, "no duplicates"


def test_parallel_conversion_gives_the_same_store(tmp_path: Path) -> None:
    files = sorted((FIXTURES / "ctgov-v2-json").glob("*.json"))
    serial = open_store(f"sqlite:///{tmp_path}/serial.sqlite3")
    parallel = open_store(f"sqlite:///{tmp_path}/parallel.sqlite3")
    load_paths(serial, files, workers=1)
    load_paths(parallel, files, workers=2)
    assert serial.counts() == parallel.counts()
    for rtype, rid in (("ResearchStudy", "nct00000410"), ("Group", "nct00000410-eligibility")):
        a, b = serial.read("5.0", rtype, rid), parallel.read("5.0", rtype, rid)
        assert a is not None and b is not None
        left, right = orjson.loads(a.content), orjson.loads(b.content)
        left.pop("meta"), right.pop("meta")
        assert left == right
    serial.close()
    parallel.close()


def test_archives_and_directories(tmp_path: Path) -> None:
    files = sorted((FIXTURES / "ctgov-v2-json").glob("*.json"))[:3]
    with zipfile.ZipFile(tmp_path / "records.zip", "w") as archive:
        for file in files:
            archive.write(file, f"batch/{file.name}")
        archive.writestr("batch/README.md", "not a record")
    with tarfile.open(tmp_path / "records.tar.gz", "w:gz") as archive:
        for file in files:
            archive.add(file, f"batch/{file.name}")
    zipped = [source for source, _ in iter_inputs([tmp_path / "records.zip"])]
    assert zipped == [f"{tmp_path / 'records.zip'}!batch/{f.name}" for f in files]
    store = open_store(f"sqlite:///{tmp_path}/a.sqlite3")
    report = load_paths(store, [tmp_path / "records.zip"], workers=1)
    assert report.records == 3 and report.failures == []
    tarred = load_paths(store, [tmp_path / "records.tar.gz"], workers=1)
    assert tarred.skipped == 3, "same bytes, already loaded"
    store.close()


def test_failures_are_reported_and_the_rest_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"protocolSection": ', encoding="utf-8")
    (tmp_path / "fhir.json").write_text('{"resourceType": "Patient"}', encoding="utf-8")
    (tmp_path / "dtd.xml").write_text('<!DOCTYPE x [<!ENTITY e "boom">]><clinical_study>&e;</clinical_study>')
    (tmp_path / "good.json").write_bytes(SEED_JSON.read_bytes())
    store = open_store(f"sqlite:///{tmp_path}/s.sqlite3")
    report = load_paths(store, [tmp_path, tmp_path / "missing.json"], workers=1)
    assert report.records == 1
    assert len(report.failures) == 4
    assert any("missing.json" in f for f in report.failures)
    assert any("DOCTYPE" in f or "DTD" in f or "entit" in f.lower() for f in report.failures)
    assert store.read("5.0", "ResearchStudy", "nct01854957") is not None
    store.close()


def test_convert_both_gives_r4_and_r5_of_the_same_resources() -> None:
    (record,) = convert_both(SEED_JSON.read_bytes(), "seed")
    assert record.error is None and record.record_id == "NCT01854957"
    assert [(r["resourceType"], r["id"]) for r in record.r4] == [(r["resourceType"], r["id"]) for r in record.r5]
    assert record.r4[0]["status"] != "active" or "progressStatus" not in record.r4[0]
