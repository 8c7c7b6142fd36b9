"""A FHIR client library from PyPI (fhirpy) against the live server: read, search, paging, includes, writes."""

from __future__ import annotations

from typing import Any

import pytest
from server_helpers import WRITE_TOKEN

fhirpy = pytest.importorskip("fhirpy")


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_fhirpy_reads_and_searches(loaded: Any, release: str) -> None:
    client = fhirpy.SyncFHIRClient(loaded.base(release), extra_headers={"Accept": "application/fhir+json"})
    studies = client.resources("ResearchStudy").search(identifier="http://clinicaltrials.gov|NCT01854957").fetch()
    assert [s.id for s in studies] == ["nct01854957"]
    study = client.reference("ResearchStudy", "nct01854957").to_resource()
    assert study["title"] == studies[0]["title"]
    assert client.resources("ResearchStudy").search(condition="Multiple Sclerosis").count() >= 1

    everything = client.resources("ResearchStudy").limit(5).fetch_all()
    total = client.resources("ResearchStudy").count()
    assert len(everything) == total == len({s.id for s in everything}), "fhirpy follows the next links"

    with_protocol = (
        client.resources("ResearchStudy")
        .search(identifier="NCT01854957")
        .include("ResearchStudy", "protocol")
        .fetch_raw()
    )
    kinds = {e["resource"]["resourceType"] for e in with_protocol["entry"]}
    assert kinds == {"ResearchStudy", "PlanDefinition"}
    protocol = study["protocol"][0]
    assert client.reference(reference=protocol["reference"]).to_resource()["resourceType"] == "PlanDefinition"


def test_fhirpy_writes(writable: Any) -> None:
    client = fhirpy.SyncFHIRClient(writable.base("R4"), authorization=f"Bearer {WRITE_TOKEN}")
    organization = client.resource("Organization", name="Client Org", active=True)
    organization.save()
    assert organization.id and organization["meta"]["versionId"] == "1"
    organization["name"] = "Client Org Renamed"
    organization.save()
    fetched = client.resources("Organization").search(name="client org").first()
    assert fetched is not None and fetched["name"] == "Client Org Renamed" and fetched["meta"]["versionId"] == "2"
    fetched.delete()
    assert client.resources("Organization").search(_id=organization.id).count() == 0
