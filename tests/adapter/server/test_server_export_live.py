"""Bulk Data $export end to end over real HTTP (uvicorn, SQLite and PostgreSQL), as an EHR pulls it.

The protocol details (_type, _since, cancel, errors) are covered in-process by test_server_export.py;
this test is the whole exchange through a socket: kick-off, polling with Retry-After, manifest,
NDJSON downloads whose lines equal what the read interaction returns.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_export_over_http_matches_reads(loaded: Any, release: str) -> None:
    with loaded.client() as client:
        kick = client.get(f"/fhir/{release}/$export", params={"_type": "ResearchStudy,Group"}, headers=ASYNC)
        assert kick.status_code == 202, kick.text
        status_url = kick.headers["Content-Location"]
        assert status_url.startswith(loaded.url)
        manifest = _poll(client, status_url)
        assert manifest["requiresAccessToken"] is False and manifest["error"] == []
        assert [item["type"] for item in manifest["output"]] == ["ResearchStudy", "Group"]
        counts = loaded.store.counts()
        version = "4.0" if release == "R4" else "5.0"
        for item in manifest["output"]:
            assert item["url"].startswith(loaded.url)
            download = client.get(item["url"], headers={"Accept": "application/fhir+ndjson"})
            assert download.status_code == 200
            assert download.headers["content-type"].startswith("application/fhir+ndjson")
            resources = [orjson.loads(line) for line in download.content.splitlines()]
            assert len(resources) == item["count"] == counts[(version, item["type"])] > 0
            for resource in resources[:3]:
                read = client.get(
                    f"/fhir/{release}/{item['type']}/{resource['id']}", headers={"Accept": "application/fhir+json"}
                )
                assert read.status_code == 200 and read.json() == resource
        # The client is done: deleting the job frees its files, after which the status is gone.
        assert client.delete(status_url).status_code == 202
        gone = client.get(status_url)
        assert gone.status_code == 404 and gone.json()["resourceType"] == "OperationOutcome"


def _poll(client: httpx.Client, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = client.get(url)
        if response.status_code == 202:
            # Retry-After is what a Bulk Data client honours; keep the test quick but check it is given.
            assert int(response.headers["Retry-After"]) >= 1
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        return response.json()
    pytest.fail("the export did not finish within 120 s")
