"""Content negotiation, XML in and out, error bodies, limits and hostile input, CapabilityStatement, OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lxml import etree
from server_helpers import JSON, XML, assert_outcome, auth

SEED = "nct01854957"
FHIR_NS = "{http://hl7.org/fhir}"


@pytest.fixture
def client(loaded: Any) -> Any:
    with loaded.client() as opened:
        yield opened


def xml_root(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith(XML), response.headers["content-type"]
    return etree.fromstring(response.content)


@pytest.mark.parametrize("release", ["R4", "R5"])
@pytest.mark.parametrize(
    ("accept", "fmt", "expected"),
    [
        (None, None, JSON),
        ("application/fhir+json", None, JSON),
        ("application/json", None, JSON),
        ("*/*", None, JSON),
        ("application/fhir+xml", None, XML),
        ("application/xml", None, XML),
        ("text/xml", None, XML),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, XML),
        ("application/fhir+xml;q=0.5, application/fhir+json", None, JSON),
        ("application/fhir+xml", "json", JSON),
        (None, "xml", XML),
        (None, "application/fhir+xml", XML),
        ("application/fhir+json", "text/xml", XML),
    ],
)
def test_negotiation(client: httpx.Client, release: str, accept: str | None, fmt: str | None, expected: str) -> None:
    headers = {"Accept": accept} if accept else {}
    params = {"_format": fmt} if fmt else {}
    for path in (
        f"/fhir/{release}/ResearchStudy/{SEED}",
        f"/fhir/{release}/ResearchStudy",
        f"/fhir/{release}/metadata",
    ):
        response = client.get(path, headers=headers, params=params)
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"] == f"{expected}; charset=utf-8"
        if expected == XML:
            root = xml_root(response)
            assert root.tag.startswith(FHIR_NS)
        else:
            assert response.json()["resourceType"]


def test_xml_content(client: httpx.Client) -> None:
    study = client.get(f"/fhir/R4/ResearchStudy/{SEED}").json()
    root = xml_root(client.get(f"/fhir/R4/ResearchStudy/{SEED}", params={"_format": "xml"}))
    assert root.tag == f"{FHIR_NS}ResearchStudy"
    assert root.find(f"{FHIR_NS}id").get("value") == SEED
    assert root.find(f"{FHIR_NS}title").get("value") == study["title"]
    bundle = xml_root(
        client.get(
            "/fhir/R5/ResearchStudy",
            params={"identifier": "NCT01854957", "_format": "xml", "_include": "ResearchStudy:site"},
        )
    )
    assert bundle.tag == f"{FHIR_NS}Bundle"
    assert len(bundle.findall(f"{FHIR_NS}entry")) >= 2
    error = client.get("/fhir/R4/ResearchStudy/none", headers={"Accept": XML})
    assert error.status_code == 404 and xml_root(error).tag == f"{FHIR_NS}OperationOutcome"


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"Accept": "text/plain"}, {}),
        ({"Accept": "application/pdf, image/png"}, {}),
        ({"Accept": "application/fhir+json; fhirVersion=5.0"}, {}),
        ({}, {"_format": "turtle"}),
        ({}, {"_format": "application/fhir+json;fhirVersion=3.0"}),
    ],
)
def test_not_acceptable(client: httpx.Client, headers: dict[str, str], params: dict[str, str]) -> None:
    response = client.get(f"/fhir/R4/ResearchStudy/{SEED}", headers=headers, params=params)
    assert_outcome(response, 406)


def test_fhir_version_parameter(client: httpx.Client) -> None:
    ok = client.get(f"/fhir/R5/ResearchStudy/{SEED}", headers={"Accept": "application/fhir+json; fhirVersion=5.0"})
    assert ok.status_code == 200
    assert (
        client.get("/fhir/R4/metadata", headers={"Accept": "application/fhir+json; fhirVersion=4.0"}).status_code == 200
    )


def test_pretty(client: httpx.Client) -> None:
    compact = client.get(f"/fhir/R4/ResearchStudy/{SEED}").content
    pretty = client.get(f"/fhir/R4/ResearchStudy/{SEED}", params={"_pretty": "true"}).content
    assert b"\n" not in compact.strip() and b'\n  "id"' in pretty


def test_xml_request_bodies(writable: Any) -> None:
    body = (
        b'<Organization xmlns="http://hl7.org/fhir"><id value="x1"/><name value="XML Org"/>'
        b'<alias value="Alias"/></Organization>'
    )
    with writable.client(headers=auth()) as client:
        created = client.put("/fhir/R4/Organization/x1", content=body, headers={"Content-Type": XML, "Accept": XML})
        assert created.status_code == 201, created.text
        assert xml_root(created).find(f"{FHIR_NS}name").get("value") == "XML Org"
        assert client.get("/fhir/R4/Organization/x1").json()["alias"] == ["Alias"]
        unknown = b'<Organization xmlns="http://hl7.org/fhir"><id value="x2"/><colour value="red"/></Organization>'
        assert_outcome(client.put("/fhir/R4/Organization/x2", content=unknown, headers={"Content-Type": XML}), 400)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/fhir+json; charset=latin-1",
    ],
)
def test_unsupported_media_type(writable: Any, content_type: str) -> None:
    with writable.client(headers=auth()) as client:
        response = client.put(
            "/fhir/R4/Organization/o1",
            content=b'{"resourceType": "Organization", "id": "o1"}',
            headers={"Content-Type": content_type},
        )
        assert_outcome(response, 415)


def test_hostile_and_broken_bodies(sqlite_writable: Any) -> None:
    with sqlite_writable.client(headers=auth()) as client:
        url = "/fhir/R4/Organization/o1"
        json_type = {"Content-Type": JSON}
        assert_outcome(
            client.put(url, content=b'{"resourceType": "Organization", "id": ', headers=json_type), 400, contains="JSON"
        )
        assert_outcome(client.put(url, content=b"", headers=json_type), 400, contains="empty")
        deep = b'{"resourceType": "Organization", "id": "o1", "extension": ' + b"[" * 60 + b"]" * 60 + b"}"
        assert_outcome(client.put(url, content=deep, headers=json_type), 400, contains="deeper")
        very_deep = b"[" * 5000 + b"]" * 5000
        assert_outcome(client.put(url, content=very_deep, headers=json_type), 400)
        huge = b'{"resourceType": "Organization", "id": "o1", "name": "' + b"x" * 70_000 + b'"}'
        assert_outcome(client.put(url, content=huge, headers=json_type), 413, contains="limit")

        def chunks() -> Any:
            for _ in range(100):
                yield b" " * 1024

        assert_outcome(client.put(url, content=chunks(), headers=json_type), 413), "no Content-Length, still limited"
        entity = (
            b'<?xml version="1.0"?><!DOCTYPE Organization [<!ENTITY x "boom">]>'
            b'<Organization xmlns="http://hl7.org/fhir"><id value="o1"/><name value="&x;"/></Organization>'
        )
        assert_outcome(client.put(url, content=entity, headers={"Content-Type": XML}), 400)
        external = (
            b'<?xml version="1.0"?><!DOCTYPE Organization SYSTEM "file:///etc/passwd">'
            b'<Organization xmlns="http://hl7.org/fhir"><id value="o1"/></Organization>'
        )
        response = client.put(url, content=external, headers={"Content-Type": XML})
        assert_outcome(response, 400)
        assert "root:" not in response.text
        assert_outcome(client.put(url, content=b"<Organization", headers={"Content-Type": XML}), 400)


def test_error_bodies_everywhere(client: httpx.Client, loaded: Any) -> None:
    assert_outcome(client.get("/no/such/path"), 404)
    assert_outcome(client.get("/fhir"), 404)
    assert_outcome(client.patch(f"/fhir/R4/ResearchStudy/{SEED}", content=b"[]"), 405)
    assert_outcome(client.get("/fhir/R4/ResearchStudy", params={"date": "x"}), 400)
    assert_outcome(client.post("/fhir/R4/ResearchStudy", json={}), 401)


def test_internal_errors_do_not_leak(loaded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internal detail /etc/shadow")

    monkeypatch.setattr(loaded.store, "read", explode)
    with loaded.client() as client:
        response = client.get(f"/fhir/R4/ResearchStudy/{SEED}")
    body = assert_outcome(response, 500)
    assert "secret" not in response.text and "shadow" not in response.text
    assert body["issue"][0]["code"] == "exception"


def test_capability_statement(client: httpx.Client, loaded: Any) -> None:
    for release, version in (("R4", "4.0.1"), ("R5", "5.0.0")):
        statement = client.get(f"/fhir/{release}/metadata").json()
        assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == version
        assert statement["format"] == ["json", "xml"] and statement["kind"] == "instance"
        assert statement["implementation"]["url"] == loaded.base(release)
        rest = statement["rest"][0]
        resources = {r["type"]: r for r in rest["resource"]}
        assert {"ResearchStudy", "PlanDefinition", "Group", "Organization", "Location", "Practitioner"} <= set(
            resources
        )
        study = resources["ResearchStudy"]
        params = {p["name"]: p for p in study["searchParam"]}
        for name in (
            "identifier",
            "status",
            "title",
            "keyword",
            "condition",
            "phase",
            "sponsor",
            "site",
            "date",
            "protocol",
            "_id",
            "_lastUpdated",
        ):
            assert name in params, f"{release} lacks {name}"
        assert {"read", "vread", "search-type", "update", "create", "delete"} <= {
            i["code"] for i in study["interaction"]
        }
        assert "ResearchStudy:protocol" in study["searchInclude"]
        assert "ResearchStudy:site" in resources["Location"]["searchRevInclude"]
        assert {o["name"] for o in rest["operation"]} == {"convert", "ingest", "validate", "export"}
        assert rest["interaction"] == [{"code": "transaction"}]
        custom = [p for p in study["searchParam"] if "trial2fhir.org" in p["definition"]]
        expected = {"condition", "phase", "enrollment"} if release == "R4" else {"sponsor", "progress-status"}
        assert {p["name"] for p in custom} == expected
        for param in custom:
            definition_id = param["definition"].rsplit("/", 1)[1]
            resource = client.get(f"/fhir/{release}/SearchParameter/{definition_id}").json()
            assert resource["resourceType"] == "SearchParameter" and resource["url"] == param["definition"]
            assert resource["code"] == param["name"] and resource["base"] == ["ResearchStudy"]
        for operation in rest["operation"]:
            if "trial2fhir.org" in operation["definition"]:
                op_id = f"{release}-{operation['name']}"
                definition = client.get(f"/fhir/{release}/OperationDefinition/{op_id}").json()
                assert definition["url"] == operation["definition"] and definition["code"] == operation["name"]
        # everything declared works: each search parameter is accepted by the server
        for rtype, resource in resources.items():
            for param in resource.get("searchParam", []):
                response = client.get(
                    f"/fhir/{release}/{rtype}",
                    params={f"{param['name']}:missing": "false", "_count": 0},
                    headers={"Prefer": "handling=strict"},
                )
                if param["name"] in ("_id", "_lastUpdated"):
                    continue
                assert response.status_code == 200, f"{rtype}.{param['name']}: {response.text[:200]}"
    assert_outcome(client.get("/fhir/R4/SearchParameter/none"), 404)


def test_openapi_documents_fhir_media_types(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    read = spec["paths"]["/fhir/{release}/{rtype}/{rid}"]["get"]
    assert {"application/fhir+json", "application/fhir+xml"} <= set(read["responses"]["200"]["content"])
    update = spec["paths"]["/fhir/{release}/{rtype}/{rid}"]["put"]
    assert {"application/fhir+json", "application/fhir+xml"} <= set(update["requestBody"]["content"])
    assert "/fhir/{release}/$convert" in spec["paths"]
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"
