"""$convert, $ingest and $validate over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from lxml import etree
from server_helpers import JSON, REPO, XML, assert_outcome, auth

SEED_JSON = (REPO / "fixtures" / "seed" / "NCT01854957.json").read_bytes()
SEED_XML = (REPO / "fixtures" / "seed" / "NCT01854957.xml").read_bytes()


def bundle_types(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


@pytest.fixture
def client(writable: Any) -> Any:
    with writable.client() as opened:
        yield opened


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_convert_raw_records(client: httpx.Client, writable: Any, release: str) -> None:
    for body, content_type in ((SEED_JSON, "application/json"), (SEED_XML, "application/xml"), (SEED_JSON, None)):
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post(f"/fhir/{release}/$convert", content=body, headers=headers)
        assert response.status_code == 200, response.text[:500]
        bundle = response.json()
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        assert bundle_types(bundle)[0] == "ResearchStudy"
        assert bundle["entry"][0]["fullUrl"] == f"{writable.base(release)}/ResearchStudy/nct01854957"
        study = bundle["entry"][0]["resource"]
        assert ("progressStatus" in study) == (release == "R5"), "the base's FHIR version"
    collection = client.post(f"/fhir/{release}/$convert", params={"bundleType": "collection"}, content=SEED_JSON)
    assert collection.json()["type"] == "collection"
    assert client.get(f"/fhir/{release}/ResearchStudy").json()["total"] == 0, "$convert stores nothing"


def test_convert_wrapped_records(client: httpx.Client) -> None:
    encoded = base64.b64encode(SEED_XML).decode()
    wrappers = [
        {"resourceType": "Parameters", "parameter": [{"name": "input", "valueString": SEED_JSON.decode()}]},
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "input", "valueBase64Binary": encoded},
                {"name": "bundleType", "valueCode": "collection"},
            ],
        },
        {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "binary",
                    "resource": {"resourceType": "Binary", "contentType": "application/xml", "data": encoded},
                }
            ],
        },
        {"resourceType": "Binary", "contentType": "application/json", "data": base64.b64encode(SEED_JSON).decode()},
    ]
    for wrapper in wrappers:
        response = client.post("/fhir/R4/$convert", json=wrapper, headers={"Content-Type": JSON})
        assert response.status_code == 200, response.text[:500]
        assert bundle_types(response.json())[0] == "ResearchStudy"
    assert client.post("/fhir/R4/$convert", json=wrappers[1]).json()["type"] == "collection"
    xml_wrapper = (
        b'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="input"/><valueBase64Binary value="'
        + encoded.encode()
        + b'"/></parameter></Parameters>'
    )
    response = client.post("/fhir/R5/$convert", content=xml_wrapper, headers={"Content-Type": XML, "Accept": XML})
    assert response.status_code == 200, response.text[:300]
    assert etree.fromstring(response.content).tag == "{http://hl7.org/fhir}Bundle"


def test_convert_several_records(client: httpx.Client) -> None:
    page = b'{"studies": [' + SEED_JSON + b', {"protocolSection": {}}]}'
    response = client.post("/fhir/R4/$convert", content=page, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    outer = response.json()
    assert outer["type"] == "collection" and bundle_types(outer) == ["Bundle", "OperationOutcome"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "application/json", 400),
        (b"not a record", "text/plain", 400),
        (b'{"resourceType": "Patient", "id": "p"}', JSON, 422),
        (b'{"protocolSection": {"identificationModule": {}}}', "application/json", 422),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "b">]><clinical_study>&e;</clinical_study>',
            "application/xml",
            400,
        ),
        (b"<html><body>hi</body></html>", "application/xml", 400),
        (b'{"resourceType": "Parameters", "parameter": []}', JSON, 400),
        (b"{}", "image/png", 415),
    ],
)
def test_convert_refuses_bad_input(client: httpx.Client, body: bytes, content_type: str, status: int) -> None:
    assert_outcome(client.post("/fhir/R4/$convert", content=body, headers={"Content-Type": content_type}), status)


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_ingest_stores_both_versions_once(client: httpx.Client, writable: Any, release: str) -> None:
    assert_outcome(client.post(f"/fhir/{release}/$ingest", content=SEED_JSON), 401)
    first = client.post(f"/fhir/{release}/$ingest", content=SEED_JSON, headers=auth())
    assert first.status_code == 200, first.text[:500]
    response = first.json()
    assert response["type"] == "transaction-response"
    assert {e["response"]["status"] for e in response["entry"]} == {"201 Created"}
    for base in ("R4", "R5"):
        found = client.get(f"/fhir/{base}/ResearchStudy", params={"identifier": "NCT01854957"}).json()
        assert found["total"] == 1, "ingest stores R4 and R5"
    again = client.post(f"/fhir/{release}/$ingest", content=SEED_JSON, headers=auth()).json()
    assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}
    assert {e["response"]["etag"] for e in again["entry"]} == {'W/"1"'}
    bad = b'{"studies": [' + SEED_JSON + b', {"protocolSection": {}}]}'
    assert_outcome(
        client.post(f"/fhir/{release}/$ingest", content=bad, headers={**auth(), "Content-Type": "application/json"}),
        422,
    )
    assert client.get(f"/fhir/{release}/ResearchStudy/nct01854957").headers["etag"] == 'W/"1"'


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_validate(client: httpx.Client, writable: Any, release: str) -> None:
    converted = client.post(f"/fhir/{release}/$convert", content=SEED_JSON).json()
    study = converted["entry"][0]["resource"]
    ok = client.post(f"/fhir/{release}/ResearchStudy/$validate", json=study)
    assert ok.status_code == 200, ok.text[:300]
    outcome = ok.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert not [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")], outcome
    broken = dict(study, status="sort-of")
    bad = client.post(
        f"/fhir/{release}/$validate",
        json={"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": broken}]},
    )
    assert bad.status_code == 200, "an invalid resource is a 200 with the issues"
    assert [i for i in bad.json()["issue"] if i["severity"] == "error"]
    whole = client.post(f"/fhir/{release}/$validate", json=converted)
    assert whole.status_code == 200
    xml = client.get(f"/fhir/{release}/metadata", params={"_format": "xml"}).content
    checked = client.post(f"/fhir/{release}/$validate", content=xml, headers={"Content-Type": XML})
    assert checked.status_code == 200 and checked.json()["resourceType"] == "OperationOutcome"
    assert not [i for i in checked.json()["issue"] if i["severity"] in ("error", "fatal")], checked.text[:500]
    assert_outcome(client.post(f"/fhir/{release}/Group/$validate", json=study), 400, contains="Group")
    assert_outcome(client.post(f"/fhir/{release}/$validate", content=b"{", headers={"Content-Type": JSON}), 400)


def test_validate_without_validator(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import adapter.server.routers.operations as operations

    monkeypatch.setattr(operations, "validator", lambda: None)
    response = client.post("/fhir/R4/$validate", json={"resourceType": "Organization", "id": "x"})
    assert_outcome(response, 501, contains="not available")
