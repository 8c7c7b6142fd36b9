"""Bulk Data $export: kick-off, polling, manifest, NDJSON files, _type/_since, cancel, access, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from pg_support import drop
from server_helpers import READ_TOKEN, REPO, WRITE_TOKEN, db_url, serving

from adapter.server.settings import Settings
from adapter.store import open_store
from adapter.store.loader import default_fixture_paths, load_paths

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = db_url(request.param, tmp_path_factory.mktemp("export"))
    store = open_store(url)
    report = load_paths(store, default_fixture_paths(REPO), workers=1)
    assert not report.failures
    store.close()
    yield url
    drop(url)


@pytest.fixture
def client(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.setenv("TRIAL2FHIR_EXPORT_DIR", str(tmp_path / "exports"))
    settings = Settings(db=store_url, write_tokens=[WRITE_TOKEN], fixtures=False, gzip=False)
    with serving(settings) as http:
        yield http


def wait_for(client: httpx.Client, location: str, headers: dict[str, str] | None = None) -> dict:
    for _ in range(600):
        response = client.get(location, headers=headers)
        if response.status_code == 202:
            assert response.headers["Retry-After"] and response.headers["X-Progress"]
            time.sleep(0.05)
            continue
        assert response.status_code == 200, response.text
        return response.json()
    pytest.fail("export did not finish")


def files(client: httpx.Client, manifest: dict, headers: dict[str, str] | None = None) -> dict[str, list[dict]]:
    out = {}
    for item in manifest["output"]:
        response = client.get(item["url"], headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in response.content.splitlines()]
        assert len(lines) == item["count"]
        out[item["type"]] = lines
    return out


def test_system_export_returns_every_current_resource(client: httpx.Client, store_url: str) -> None:
    kick = client.get("/fhir/R4/$export", headers=ASYNC)
    assert kick.status_code == 202, kick.text
    manifest = wait_for(client, kick.headers["Content-Location"])
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    assert manifest["request"].endswith("/fhir/R4/$export")
    exported = files(client, manifest)
    assert {"ResearchStudy", "Organization", "Location"} <= set(exported)
    store = open_store(store_url)
    try:
        counts = store.counts()
    finally:
        store.close()
    for rtype, resources in exported.items():
        assert len(resources) == counts[("4.0", rtype)]
        assert all(r["resourceType"] == rtype and r["meta"]["versionId"] for r in resources)
        ids = [r["id"] for r in resources]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    study = exported["ResearchStudy"][0]
    assert client.get(f"/fhir/R4/ResearchStudy/{study['id']}").json() == study


def test_type_filters_and_type_level(client: httpx.Client) -> None:
    kick = client.get("/fhir/R5/$export?_type=Organization,ResearchStudy", headers=ASYNC)
    manifest = wait_for(client, kick.headers["Content-Location"])
    assert [o["type"] for o in manifest["output"]] == ["ResearchStudy", "Organization"]
    studies = files(client, manifest)["ResearchStudy"]
    assert "comparisonGroup" in str(studies) or all("arm" not in s for s in studies)  # R5 shape
    kick = client.get("/fhir/R5/Location/$export", headers=ASYNC)
    manifest = wait_for(client, kick.headers["Content-Location"])
    assert [o["type"] for o in manifest["output"]] == ["Location"]


def test_since_exports_only_later_changes(client: httpx.Client) -> None:
    first = wait_for(client, client.get("/fhir/R4/$export", headers=ASYNC).headers["Content-Location"])
    since = first["transactionTime"]
    time.sleep(0.01)
    group = files(client, first)["Group"][0]
    group.pop("meta")
    group["name"] = "Eligibility (edited for the _since test)"
    auth = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}
    assert client.put(f"/fhir/R4/Group/{group['id']}", content=orjson.dumps(group), headers=auth).status_code == 200
    kick = client.get(f"/fhir/R4/$export?_since={since}", headers=ASYNC)
    manifest = wait_for(client, kick.headers["Content-Location"])
    exported = files(client, manifest)
    assert list(exported) == ["Group"] and [g["id"] for g in exported["Group"]] == [group["id"]]


def test_kick_off_errors(client: httpx.Client) -> None:
    assert client.get("/fhir/R4/$export").status_code == 400  # no Prefer: respond-async
    bad = client.get("/fhir/R4/$export?_type=Patient", headers=ASYNC)
    assert bad.status_code == 404 and bad.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/R4/$export?_outputFormat=text/csv", headers=ASYNC).status_code == 400
    assert client.get("/fhir/R4/$export?_since=yesterday", headers=ASYNC).status_code == 400
    assert client.get("/fhir/R4/$export?_typeFilter=Group%3Fname=x", headers=ASYNC).status_code == 400
    lenient = {**ASYNC, "Prefer": "respond-async, handling=lenient"}
    assert client.get("/fhir/R4/$export?_typeFilter=Group%3Fname=x", headers=lenient).status_code == 202
    assert client.get("/fhir/R4/$export-poll-status/" + "0" * 32).status_code == 404
    assert client.get("/fhir/R5/$export-file/not-a-job/..%2F..%2Fsecret.ndjson").status_code == 404


def test_cancel_removes_the_job(client: httpx.Client) -> None:
    location = client.get("/fhir/R4/$export", headers=ASYNC).headers["Content-Location"]
    assert location.startswith(str(client.base_url).rstrip("/") + "/fhir/R4/")
    assert client.delete(location).status_code == 202
    assert client.get(location).status_code == 404
    # A job is visible on its own base only.
    other = client.get("/fhir/R4/$export", headers=ASYNC).headers["Content-Location"]
    assert client.get(other.replace("/R4/", "/R5/")).status_code == 404


def test_closed_reads_need_a_token_for_every_step(store_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRIAL2FHIR_EXPORT_DIR", str(tmp_path / "exports"))
    settings = Settings(db=store_url, read_tokens=[READ_TOKEN], open_reads=False, fixtures=False, gzip=False)
    with serving(settings) as client:
        assert client.get("/fhir/R4/$export", headers=ASYNC).status_code == 401
        token = {"Authorization": f"Bearer {READ_TOKEN}"}
        kick = client.get("/fhir/R4/$export?_type=Group", headers={**ASYNC, **token})
        location = kick.headers["Content-Location"]
        assert client.get(location).status_code == 401
        manifest = wait_for(client, kick.headers["Content-Location"], token)
        assert manifest["requiresAccessToken"] is True
        url = manifest["output"][0]["url"]
        assert client.get(url).status_code == 401
        assert files(client, manifest, token)["Group"]
