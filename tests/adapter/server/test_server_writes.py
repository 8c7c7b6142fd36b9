"""Writes over HTTP: auth, update/create/delete, ETags and If-Match, conditional writes, transactions."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import READ_TOKEN, REPO, WRITE_TOKEN, assert_outcome, auth

SEED_JSON = REPO / "fixtures" / "seed" / "NCT01854957.json"


def org(rid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": rid, "name": name, **extra}


@pytest.fixture
def client(writable: Any) -> Any:
    with writable.client(headers=auth()) as opened:
        yield opened


def test_writes_need_a_write_token(writable: Any) -> None:
    with writable.client() as anonymous:
        body = org("o1", "Acme")
        response = anonymous.put("/fhir/R4/Organization/o1", json=body)
        assert_outcome(response, 401, contains="Bearer")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert_outcome(
            anonymous.put("/fhir/R4/Organization/o1", json=body, headers=auth("wrong")), 401, contains="not valid"
        )
        assert_outcome(anonymous.put("/fhir/R4/Organization/o1", json=body, headers=auth(READ_TOKEN)), 403)
        assert_outcome(anonymous.post("/fhir/R4", json={"resourceType": "Bundle", "type": "transaction"}), 401)
        assert_outcome(anonymous.post("/fhir/R4/$ingest", content=SEED_JSON.read_bytes()), 401)
        assert_outcome(anonymous.delete("/fhir/R4/Organization/o1"), 401)
        assert anonymous.put("/fhir/R4/Organization/o1", json=body, headers=auth("second-token")).status_code == 201
        assert anonymous.get("/fhir/R4/Organization/o1").status_code == 200, "reads are open by default"


def test_no_tokens_configured_means_no_writes(tmp_path: Path) -> None:
    from server_helpers import start

    from adapter.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/closed.sqlite3")
    running = start(store, "sqlite")
    try:
        with running.client() as anonymous:
            response = anonymous.put("/fhir/R4/Organization/o1", json=org("o1", "A"), headers=auth("anything"))
            assert_outcome(response, 403, contains="TRIAL2FHIR_WRITE_TOKENS")
            statement = anonymous.get("/fhir/R4/metadata").json()
            assert "refuses writes" in statement["rest"][0]["security"]["description"]
    finally:
        running.server.stop()
        store.close()


def test_closed_reads(tmp_path: Path) -> None:
    from server_helpers import start

    from adapter.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/private.sqlite3")
    running = start(store, "sqlite", open_reads=False, read_tokens=[READ_TOKEN], write_tokens=[WRITE_TOKEN])
    try:
        with running.client() as client:
            assert_outcome(client.get("/fhir/R4/ResearchStudy"), 401)
            assert client.get("/fhir/R4/ResearchStudy", headers=auth(READ_TOKEN)).status_code == 200
            assert client.get("/fhir/R4/ResearchStudy", headers=auth(WRITE_TOKEN)).status_code == 200
            assert client.get("/fhir/R4/metadata").status_code == 200, "the CapabilityStatement stays public"
    finally:
        running.server.stop()
        store.close()


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_update_versions_and_etags(client: httpx.Client, release: str) -> None:
    url = f"/fhir/{release}/Organization/o1"
    created = client.put(url, json=org("o1", "Acme"))
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["location"].endswith("/Organization/o1/_history/1")
    assert created.json()["meta"]["versionId"] == "1"
    same = client.put(url, json=org("o1", "Acme"))
    assert same.status_code == 200 and same.headers["etag"] == 'W/"1"', "unchanged content, no new version"
    updated = client.put(url, json=org("o1", "Acme Corp"), headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200 and updated.headers["etag"] == 'W/"2"'
    stale = client.put(url, json=org("o1", "Acme Inc"), headers={"If-Match": 'W/"1"'})
    assert_outcome(stale, 412, contains="version")
    assert client.get(url).json()["name"] == "Acme Corp"
    assert_outcome(client.put(url, json=org("o1", "x"), headers={"If-Match": "nonsense"}), 400)
    minimal = client.put(url, json=org("o1", "Acme 3"), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 200 and minimal.content == b"" and minimal.headers["etag"] == 'W/"3"'
    outcome = client.put(url, json=org("o1", "Acme 4"), headers={"Prefer": "return=OperationOutcome"})
    assert outcome.json()["resourceType"] == "OperationOutcome"
    other = "R5" if release == "R4" else "R4"
    assert client.get(f"/fhir/{other}/Organization/o1").status_code == 404, "each base has its own resources"


def test_update_refuses_bad_resources(client: httpx.Client) -> None:
    url = "/fhir/R4/Organization/o1"
    assert_outcome(client.put(url, json=org("o2", "A")), 400, contains="must equal")
    assert_outcome(client.put(url, json={"resourceType": "Organization", "name": "A"}), 400)
    assert_outcome(client.put(url, json={"resourceType": "Location", "id": "o1"}), 400, contains="Location")
    assert_outcome(client.put(url, json=org("o1", "A", active="yes")), 422, contains="Organization")
    assert_outcome(client.put(url, json=org("o1", "A", colour="blue")), 422)
    assert_outcome(client.put("/fhir/R4/Organization/bad id!", json=org("bad id!", "A")), 400)
    assert_outcome(client.put(url, content=b"[1, 2]", headers={"Content-Type": "application/fhir+json"}), 400)
    assert_outcome(client.put("/fhir/R4/Patient/p", json={"resourceType": "Patient", "id": "p"}), 404)


def test_create_delete_and_gone(client: httpx.Client) -> None:
    created = client.post("/fhir/R4/Organization", json={"resourceType": "Organization", "name": "New Org"})
    assert created.status_code == 201
    location = created.headers["location"]
    rid = created.json()["id"]
    assert location.endswith(f"/Organization/{rid}/_history/1")
    again = client.post(
        "/fhir/R4/Organization",
        json={"resourceType": "Organization", "name": "New Org"},
        headers={"If-None-Exist": "name:exact=New Org"},
    )
    assert again.status_code == 200 and again.json()["id"] == rid, "conditional create finds the existing one"
    deleted = client.delete(f"/fhir/R4/Organization/{rid}")
    assert deleted.status_code == 204
    gone = client.get(f"/fhir/R4/Organization/{rid}")
    assert_outcome(gone, 410, contains="deleted")
    assert gone.headers["etag"] == 'W/"2"'
    assert client.delete(f"/fhir/R4/Organization/{rid}").status_code == 204, "deleting twice is fine"
    assert_outcome(client.delete("/fhir/R4/Organization/never-existed"), 404)
    assert client.get("/fhir/R4/Organization", params={"_id": rid}).json()["total"] == 0
    history = client.get(f"/fhir/R4/Organization/{rid}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    recreated = client.put(f"/fhir/R4/Organization/{rid}", json=org(rid, "Back"))
    assert recreated.status_code == 201 and recreated.headers["etag"] == 'W/"3"'
    client.put("/fhir/R4/Organization/d1", json=org("d1", "Delete Me"))
    assert_outcome(client.delete("/fhir/R4/Organization/d1", headers={"If-Match": 'W/"9"'}), 412)
    assert client.delete("/fhir/R4/Organization", params={"name:exact": "Delete Me"}).status_code == 204
    assert_outcome(client.get("/fhir/R4/Organization/d1"), 410)


def test_conditional_update(client: httpx.Client) -> None:
    study = {
        "resourceType": "ResearchStudy",
        "status": "active",
        "identifier": [{"system": "https://clinicaltrials.gov/nctid", "value": "NCT99999999"}],
        "title": "First",
    }
    created = client.put(
        "/fhir/R4/ResearchStudy", params={"identifier": "http://clinicaltrials.gov|NCT99999999"}, json=study
    )
    assert created.status_code == 201
    rid = created.json()["id"]
    updated = client.put("/fhir/R4/ResearchStudy", params={"identifier": "NCT99999999"}, json=dict(study, title="2"))
    assert updated.status_code == 200 and updated.json()["id"] == rid and updated.headers["etag"] == 'W/"2"'
    with_id = client.put("/fhir/R4/ResearchStudy", params={"identifier": "NCT99999999"}, json=dict(study, id="other"))
    assert_outcome(with_id, 400, contains=rid)
    client.put("/fhir/R4/ResearchStudy/twin", json=dict(study, id="twin"))
    assert_outcome(client.put("/fhir/R4/ResearchStudy", params={"identifier": "NCT99999999"}, json=study), 412)
    assert_outcome(client.put("/fhir/R4/ResearchStudy", json=study), 400, contains="criteria")
    assert_outcome(client.put("/fhir/R4/ResearchStudy", params={"colour": "x"}, json=study), 400)


def test_concurrent_conditional_creates_make_one_resource(writable: Any) -> None:
    study = {
        "resourceType": "ResearchStudy",
        "status": "active",
        "identifier": [{"system": "https://clinicaltrials.gov/nctid", "value": "NCT88888888"}],
    }
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def create() -> None:
        with writable.client(headers=auth()) as own:
            barrier.wait()
            statuses.append(
                own.put("/fhir/R5/ResearchStudy", params={"identifier": "NCT88888888"}, json=study).status_code
            )

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * 5 + [201]
    with writable.client() as reader:
        assert reader.get("/fhir/R5/ResearchStudy", params={"identifier": "NCT88888888"}).json()["total"] == 1


def test_concurrent_if_match_writers_lose_nothing(writable: Any) -> None:
    with writable.client(headers=auth()) as setup:
        setup.put("/fhir/R4/Organization/counter", json=org("counter", "0"))
    conflicts: list[int] = []

    def bump(times: int) -> None:
        with writable.client(headers=auth()) as own:
            done = 0
            while done < times:
                current = own.get("/fhir/R4/Organization/counter")
                body = current.json()
                body["name"] = str(int(body["name"]) + 1)
                response = own.put(
                    "/fhir/R4/Organization/counter", json=body, headers={"If-Match": current.headers["etag"]}
                )
                if response.status_code == 412:
                    conflicts.append(1)
                    continue
                assert response.status_code == 200, response.text
                done += 1

    threads = [threading.Thread(target=bump, args=(8,)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    with writable.client() as reader:
        final = reader.get("/fhir/R4/Organization/counter")
    assert final.json()["name"] == "40" and final.headers["etag"] == 'W/"41"'


# --- transactions ---------------------------------------------------------------------------------


def converted_bundle(base_url: str, version: str = "4.0") -> dict[str, Any]:
    """What ``trial2fhir convert`` prints for the seed trial: a transaction Bundle of PUTs."""
    from adapter.pipeline import convert_bytes

    (converted,) = convert_bytes(SEED_JSON.read_bytes(), str(SEED_JSON), version)
    return converted.bundle("transaction", base_url)


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_transaction_of_a_converted_trial_is_idempotent(client: httpx.Client, writable: Any, release: str) -> None:
    version = "4.0" if release == "R4" else "5.0"
    bundle = converted_bundle(writable.base(release), version)
    first = client.post(f"/fhir/{release}", json=bundle)
    assert first.status_code == 200, first.text[:500]
    response = first.json()
    assert response["type"] == "transaction-response" and len(response["entry"]) == len(bundle["entry"])
    assert {e["response"]["status"] for e in response["entry"]} == {"201 Created"}
    again = client.post(f"/fhir/{release}", json=bundle).json()
    assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}
    assert {e["response"]["etag"] for e in again["entry"]} == {'W/"1"'}, "no new versions"
    found = client.get(f"/fhir/{release}/ResearchStudy", params={"identifier": "NCT01854957"}).json()
    assert found["total"] == 1
    assert client.get(f"/fhir/{release}/Organization", params={"_summary": "count"}).json()["total"] == sum(
        1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization"
    )


def test_transaction_is_all_or_nothing(client: httpx.Client) -> None:
    good = {
        "fullUrl": "urn:uuid:a",
        "resource": org("t1", "Good"),
        "request": {"method": "PUT", "url": "Organization/t1"},
    }
    bad = {"resource": org("t2", "Bad", active="maybe"), "request": {"method": "PUT", "url": "Organization/t2"}}
    response = client.post("/fhir/R4", json={"resourceType": "Bundle", "type": "transaction", "entry": [good, bad]})
    assert_outcome(response, 422, contains="entry[1]")
    assert client.get("/fhir/R4/Organization/t1").status_code == 404
    client.put("/fhir/R4/Organization/t3", json=org("t3", "Existing"))
    conflict = {
        "resource": org("t3", "Changed"),
        "request": {"method": "PUT", "url": "Organization/t3", "ifMatch": 'W/"7"'},
    }
    response = client.post(
        "/fhir/R4", json={"resourceType": "Bundle", "type": "transaction", "entry": [good, conflict]}
    )
    assert_outcome(response, 412)
    assert client.get("/fhir/R4/Organization/t1").status_code == 404, "the good entry was rolled back"
    assert client.get("/fhir/R4/Organization/t3").json()["name"] == "Existing"


def test_transaction_resolves_placeholders_and_conditions(client: httpx.Client) -> None:
    client.put(
        "/fhir/R4/Organization/sponsor",
        json=org("sponsor", "Sponsor Inc", identifier=[{"system": "urn:test", "value": "S1"}]),
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5f1a1c5e-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Location", "name": "Site A"},
                "request": {"method": "POST", "url": "Location"},
            },
            {
                "fullUrl": "urn:uuid:5f1a1c5e-0000-4000-8000-000000000002",
                "resource": {
                    "resourceType": "ResearchStudy",
                    "status": "active",
                    "site": [{"reference": "urn:uuid:5f1a1c5e-0000-4000-8000-000000000001"}],
                    "sponsor": {"reference": "Organization?identifier=urn:test|S1"},
                },
                "request": {"method": "POST", "url": "ResearchStudy"},
            },
            {"request": {"method": "DELETE", "url": "Organization?name=nobody"}},
        ],
    }
    response = client.post("/fhir/R4", json=bundle)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "204 No Content"]
    study_id = response.json()["entry"][1]["response"]["location"].split("/")[1]
    location_id = response.json()["entry"][0]["response"]["location"].split("/")[1]
    study = client.get(f"/fhir/R4/ResearchStudy/{study_id}").json()
    assert study["site"] == [{"reference": f"Location/{location_id}"}]
    assert study["sponsor"] == {"reference": "Organization/sponsor"}
    bad = dict(
        bundle,
        entry=[
            dict(
                bundle["entry"][1],
                resource=dict(
                    bundle["entry"][1]["resource"], sponsor={"reference": "Organization?identifier=urn:test|none"}
                ),
            )
        ],
    )
    assert_outcome(client.post("/fhir/R4", json=bad), 412, contains="conditional reference")


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ({"resourceType": "Bundle", "type": "batch"}, "transaction"),
        ({"resourceType": "Organization", "id": "x"}, "Bundle"),
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"resource": {"resourceType": "Organization"}}],
            },
            "request",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "GET", "url": "Group"}}],
            },
            "GET",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": org("a", "A"), "request": {"method": "PUT", "url": "Organization/a"}},
                    {"resource": org("a", "B"), "request": {"method": "PUT", "url": "Organization/a"}},
                ],
            },
            "both write",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"resource": org("a", "A"), "request": {"method": "PUT", "url": "Organization/b"}}],
            },
            "must equal",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}],
            },
            "Patient",
        ),
    ],
)
def test_bad_transactions(client: httpx.Client, bundle: dict[str, Any], message: str) -> None:
    assert_outcome(client.post("/fhir/R4", json=bundle), 400, contains=message)


def test_paging_is_stable_while_writers_work(client: httpx.Client) -> None:
    for number in range(30):
        client.put(f"/fhir/R4/Organization/p{number:02d}", json=org(f"p{number:02d}", f"Paged {number}"))
    first = client.get("/fhir/R4/Organization", params={"name": "paged", "_count": 10, "_sort": "_id"}).json()
    assert first["total"] == 30
    seen = [e["resource"]["id"] for e in first["entry"]]
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    client.delete("/fhir/R4/Organization/p00")
    client.put("/fhir/R4/Organization/p00a", json=org("p00a", "Paged new"))
    while url:
        page = client.get(url).json()
        assert page["total"] == 30, "the snapshot's total"
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), "")
    assert seen == [f"p{n:02d}" for n in range(30)], "no shift, no duplicate, no newcomer mid-way"
    again = client.get("/fhir/R4/Organization", params={"name": "paged", "_count": 10, "_sort": "_id"}).json()
    assert again["total"] == 30 and again["entry"][0]["resource"]["id"] == "p00a", "a new search sees the writes"


def test_plugged_in_authenticator_and_scopes(tmp_path: Path) -> None:
    from server_helpers import start

    from adapter.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/scoped.sqlite3")
    running = start(store, "sqlite", authenticator="server_helpers:scoped_authenticator")
    try:
        with running.client() as client:
            writer = auth("org-writer")
            assert client.put("/fhir/R4/Organization/o1", json=org("o1", "A"), headers=writer).status_code == 201
            study = {"resourceType": "ResearchStudy", "id": "s1", "status": "active"}
            assert_outcome(
                client.put("/fhir/R4/ResearchStudy/s1", json=study, headers=writer), 403, contains="ResearchStudy"
            )
            assert_outcome(client.post("/fhir/R4/$ingest", content=SEED_JSON.read_bytes(), headers=writer), 403)
            only_orgs = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"resource": org("o2", "B"), "request": {"method": "PUT", "url": "Organization/o2"}}],
            }
            assert client.post("/fhir/R4", json=only_orgs, headers=writer).status_code == 200
            mixed = dict(
                only_orgs,
                entry=[
                    *only_orgs["entry"],
                    {"resource": study, "request": {"method": "PUT", "url": "ResearchStudy/s1"}},
                ],
            )
            assert_outcome(client.post("/fhir/R4", json=mixed, headers=writer), 403)
            assert_outcome(client.put("/fhir/R4/Organization/o3", json=org("o3", "C"), headers=auth("v2-reader")), 403)
            security = client.get("/fhir/R4/metadata").json()["rest"][0]["security"]
            assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    finally:
        running.server.stop()
        store.close()
