"""All resources for one record, and the Bundle that ties them together."""

from __future__ import annotations

from typing import Any

from adapter.record import TrialRecord
from mappings import ids
from mappings.group import to_fhir_group
from mappings.location import to_fhir_locations
from mappings.organization import to_fhir_organizations
from mappings.plan_definition import to_fhir_plan_definition
from mappings.practitioner import to_fhir_practitioner_roles, to_fhir_practitioners
from mappings.research_study import to_fhir_research_study

DEFAULT_BASE_URL = "http://localhost:8080/fhir"
"""Where ``trial2fhir serve`` publishes resources by default; fullUrls point there unless told otherwise."""


def to_fhir_resources(record: TrialRecord) -> list[dict[str, Any]]:
    """Every R5 resource the record yields, ResearchStudy first, in a fixed order."""
    resources = [to_fhir_research_study(record)]
    if ids.has_protocol(record):
        resources.append(to_fhir_plan_definition(record))
    resources.append(to_fhir_group(record))
    resources.extend(to_fhir_organizations(record))
    resources.extend(to_fhir_locations(record))
    resources.extend(to_fhir_practitioners(record))
    resources.extend(to_fhir_practitioner_roles(record))
    return resources


def to_bundle(
    resources: list[dict[str, Any]], bundle_type: str = "transaction", base_url: str = DEFAULT_BASE_URL
) -> dict[str, Any]:
    """A ``transaction`` (PUT ``Type/id``: re-importing is idempotent) or ``collection`` Bundle.

    fullUrls are RESTful (``base/Type/id``) so the relative ``Type/id`` references inside the
    resources resolve against them, as the Bundle reference-resolution rules require.  No
    timestamp or random id: the same record always gives byte-identical output.
    """
    if bundle_type not in ("transaction", "collection"):
        raise ValueError(f"unsupported bundle type {bundle_type!r}")
    base = base_url.rstrip("/")
    entries = []
    for resource in resources:
        path = f"{resource['resourceType']}/{resource['id']}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{path}", "resource": resource}
        if bundle_type == "transaction":
            entry["request"] = {"method": "PUT", "url": path}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}
