"""Bulk loading into the store: registry records (same result as the store's loader) and exports."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from batch_helpers import FIXTURES, many_studies, ndjson, write_ndjson, write_zip
from pg_support import fresh_pg_url

from adapter.batch.load import load_export, load_inputs
from adapter.batch.runner import BatchOptions, run_batch
from adapter.store import Store, open_store
from adapter.store.loader import load_paths


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    opened: list[tuple[Store, str]] = []

    def make() -> Store:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:8]}.sqlite3"
        else:
            url = fresh_pg_url("t2f_load")
        store = open_store(url)
        opened.append((store, url))
        return store

    yield make
    for store, url in opened:
        if url.startswith("postgresql"):
            store.drop_schema()  # type: ignore[attr-defined]
        store.close()


def content(store: Store) -> dict[tuple[str, str, str], str]:
    """Every current resource's content hash, by (FHIR version, type, id)."""
    from adapter.store.base import SqlStore

    assert isinstance(store, SqlStore)
    with store.connection() as conn:
        rows = store.execute(conn, "SELECT fv, rtype, rid, hash FROM resources WHERE deleted = 0").fetchall()
    return {(fv, rtype, rid): digest for fv, rtype, rid, digest in rows}


def test_records_load_like_the_store_loader(new_store: Callable[[], Store], tmp_path: Path) -> None:
    archive = write_zip(
        tmp_path / "records.zip",
        {f"NCT9{n:07d}.json": orjson.dumps(s) for n, s in enumerate(many_studies(30, start=300), 300)},
    )
    inputs = [str(FIXTURES / "ctgov-v2-json"), str(FIXTURES / "who-ictrp-xml"), str(archive)]
    fast, reference = new_store(), new_store()
    summary = load_inputs(fast, inputs, jobs=2)
    report = load_paths(reference, inputs, workers=1)
    assert summary.failed == len(report.failures) == 0
    assert (
        summary.records
        == report.records
        == 30
        + sum(1 for _ in (FIXTURES / "ctgov-v2-json").glob("*.json"))
        + sum(1 for _ in (FIXTURES / "who-ictrp-xml").glob("*.xml"))
    )
    assert summary.outcomes == report.outcomes
    assert content(fast) == content(reference)
    again = load_inputs(fast, inputs, jobs=1)  # idempotent: nothing new
    assert set(again.outcomes) <= {"unchanged", "kept"}


def test_export_directory_loads_its_version_and_applies_deletions(
    new_store: Callable[[], Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    studies = many_studies(20, start=700)
    out = tmp_path / "export"
    run_batch(BatchOptions(inputs=[str(write_ndjson(tmp_path / "a.ndjson", studies))], out=out, validate=False))
    store = new_store()
    summary = load_inputs(store, [str(out)])
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    expected = {("4.0", r["resourceType"], r["id"]) for item in manifest["output"] for r in ndjson(out / item["url"])}
    assert set(content(store)) == expected
    assert summary.records == 20 and summary.outcomes == {"created": len(expected)}
    # An incremental export drops 5 studies: loading it deletes what they had (not shared organizations).
    run_batch(BatchOptions(inputs=[str(write_ndjson(tmp_path / "b.ndjson", studies[5:]))], out=out, validate=False))
    second = load_export(store, out)
    assert second.outcomes["deleted"] > 5 and "created" not in second.outcomes
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    now = {("4.0", r["resourceType"], r["id"]) for item in manifest["output"] for r in ndjson(out / item["url"])}
    stored = set(content(store))
    assert {k for k in stored if k[1] != "Organization"} == {k for k in now if k[1] != "Organization"}
    assert now <= stored


def test_bundle_exports_and_unknown_versions(new_store: Callable[[], Store], tmp_path: Path) -> None:
    out = tmp_path / "bundles"
    source = write_ndjson(tmp_path / "a.ndjson", many_studies(4, start=800))
    run_batch(BatchOptions(inputs=[str(source)], out=out, validate=False, output_format="bundles", fhir_version="5.0"))
    store = new_store()
    summary = load_export(store, out)
    assert summary.records == 4 and {k[0] for k in content(store)} == {"5.0"}
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    del manifest["extension"]
    (out / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(ValueError, match="FHIR version"):
        load_export(store, out)
    again = load_export(store, out, fhir_version="5.0").outcomes
    assert set(again) <= {"unchanged", "kept"} and sum(again.values()) == summary.resources  # kept: shared orgs
