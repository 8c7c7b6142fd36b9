"""Valid resources in the shapes trial2fhir produces, per FHIR version: the originals the mutation suite breaks.

Each base must pass both trial2fhir's validator and the independent checker untouched (the
mutation test asserts it).  Add converter outputs here (or drop JSON files into
``tests/mutations/extra/<r4|r5>/``) to extend the suite to them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).parent
EXTRA = HERE / "extra"
DIV = '<div xmlns="http://www.w3.org/1999/xhtml">{}</div>'
UCUM = "http://unitsofmeasure.org"
CTGOV = "https://clinicaltrials.gov"


def _text(label: str) -> dict[str, str]:
    return {"status": "generated", "div": DIV.format(label)}


def organization() -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": "org-acme",
        "text": _text("ACME Pharma"),
        "active": True,
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "bus"}]}],
        "name": "ACME Pharma",
        "alias": ["ACME"],
    }


def location() -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": "nct01234567-site-1",
        "text": _text("Site 1"),
        "status": "active",
        "name": "General Hospital",
        "mode": "instance",
        "address": {"city": "Boston", "state": "MA", "postalCode": "02114", "country": "United States"},
        "position": {"longitude": -71.06, "latitude": 42.36},
        "managingOrganization": {"reference": "Organization/org-acme"},
    }


def practitioner() -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": "nct01234567-person-1",
        "text": _text("Jane Doe, MD"),
        "active": True,
        "name": [{"text": "Jane Doe, MD", "family": "Doe", "given": ["Jane"], "suffix": ["MD"]}],
        "telecom": [{"system": "email", "value": "jane.doe@example.org", "use": "work"}],
    }


def practitioner_role() -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": "nct01234567-role-1",
        "text": _text("Principal investigator"),
        "active": True,
        "practitioner": {"reference": "Practitioner/nct01234567-person-1"},
        "organization": {"reference": "Organization/org-acme"},
        "code": [{"text": "Principal Investigator"}],
        "location": [{"reference": "Location/nct01234567-site-1"}],
    }


def plan_definition(version: str) -> dict[str, Any]:
    related_key = "targetId" if version == "5.0" else "actionId"
    return {
        "resourceType": "PlanDefinition",
        "id": "nct01234567-protocol",
        "text": _text("Protocol of NCT01234567"),
        "identifier": [{"system": CTGOV, "value": "NCT01234567"}],
        "title": "Protocol of NCT01234567",
        "type": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/plan-definition-type", "code": "clinical-protocol"}
            ]
        },
        "status": "active",
        "date": "2023-06-30T12:00:00Z",
        "action": [
            {
                "id": "arm-a",
                "title": "Arm A",
                "description": "Drug X 10 mg once daily",
                "action": [{"id": "intervention-x", "title": "Drug X", "description": "10 mg tablet"}],
            },
            {
                "id": "arm-b",
                "title": "Arm B",
                "relatedAction": [
                    {
                        related_key: "arm-a",
                        "relationship": "concurrent",
                        "offsetDuration": {"value": 2, "unit": "wk", "system": UCUM, "code": "wk"},
                    }
                ],
            },
        ],
    }


def group(version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Group",
        "id": "nct01234567-eligibility",
        "text": _text("Eligibility of NCT01234567"),
        "type": "person",
        "name": "Eligibility criteria of NCT01234567",
        "characteristic": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "30525-0", "display": "Age"}]},
                "valueRange": {
                    "low": {"value": 18, "unit": "a", "system": UCUM, "code": "a"},
                    "high": {"value": 65, "unit": "a", "system": UCUM, "code": "a"},
                },
                "exclude": False,
            },
            {
                "code": {"text": "Inclusion criteria"},
                "valueCodeableConcept": {"text": "Histologically confirmed condition Y"},
                "exclude": False,
            },
            {
                # A coded yes/no rather than valueBoolean false: FHIR.js (in the independent
                # checker) reports a false boolean value[x] as missing.
                "code": {"text": "Accepts healthy volunteers"},
                "valueCodeableConcept": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0136", "code": "N", "display": "No"}
                    ]
                },
                "exclude": False,
            },
        ],
    }
    if version == "5.0":
        out["membership"] = "definitional"
    else:
        out["actual"] = False
    return out


def research_study(version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": "nct01234567",
        "meta": {"lastUpdated": "2024-01-02T03:04:05Z"},
        "text": _text("Study NCT01234567"),
        "identifier": [{"use": "official", "system": CTGOV, "value": "NCT01234567"}],
        "title": "A Phase 2 Study of Drug X in Condition Y",
        "protocol": [{"reference": "PlanDefinition/nct01234567-protocol"}],
        "status": "active",
        "condition": [{"text": "Condition Y"}],
        "keyword": [{"text": "drug x"}],
        "description": "A randomized study of **Drug X**.",
        "period": {"start": "2020-01-15", "end": "2023-06-30"},
        "site": [{"reference": "Location/nct01234567-site-1"}],
    }
    if version == "5.0":
        out.update(
            {
                "name": "NCT01234567",
                "phase": {"coding": [{"system": "http://hl7.org/fhir/research-study-phase", "code": "phase-2"}]},
                "primaryPurposeType": {
                    "coding": [{"system": "http://hl7.org/fhir/research-study-prim-purp-type", "code": "treatment"}]
                },
                "associatedParty": [
                    {
                        "role": {
                            "coding": [{"system": "http://hl7.org/fhir/research-study-party-role", "code": "sponsor"}]
                        },
                        "party": {"reference": "Organization/org-acme"},
                    }
                ],
                "progressStatus": [
                    {
                        "state": {
                            "coding": [{"system": "http://hl7.org/fhir/research-study-status", "code": "recruiting"}]
                        },
                        "actual": True,
                        "period": {"start": "2020-01-15"},
                    }
                ],
                "recruitment": {"targetNumber": 120, "eligibility": {"reference": "Group/nct01234567-eligibility"}},
                "comparisonGroup": [
                    {
                        "linkId": "arm-a",
                        "name": "Arm A",
                        "type": {
                            "coding": [
                                {"system": "http://hl7.org/fhir/research-study-arm-type", "code": "experimental"}
                            ]
                        },
                        "description": "Drug X 10 mg",
                    }
                ],
            }
        )
    else:
        out.update(
            {
                "phase": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/research-study-phase", "code": "phase-2"}
                    ]
                },
                "primaryPurposeType": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type",
                            "code": "treatment",
                        }
                    ]
                },
                "enrollment": [{"reference": "Group/nct01234567-eligibility"}],
                "sponsor": {"reference": "Organization/org-acme"},
                "principalInvestigator": {"reference": "Practitioner/nct01234567-person-1"},
                "arm": [
                    {
                        "name": "Arm A",
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/research-study-arm-type",
                                    "code": "experimental",
                                }
                            ]
                        },
                        "description": "Drug X 10 mg",
                    }
                ],
            }
        )
    return out


def bundle(version: str, kind: str = "collection") -> dict[str, Any]:
    resources = [
        research_study(version),
        plan_definition(version),
        group(version),
        organization(),
        location(),
        practitioner(),
        practitioner_role(),
    ]
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {"fullUrl": f"https://example.org/fhir/{resource['resourceType']}/{resource['id']}"}
        entry["resource"] = resource
        if kind == "transaction":
            entry["request"] = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        entries.append(entry)
    out: dict[str, Any] = {"resourceType": "Bundle", "id": f"nct01234567-{kind}", "type": kind, "entry": entries}
    if kind == "collection":
        out["timestamp"] = "2024-01-02T03:04:05Z"
    return out


def bases(version: str) -> dict[str, dict[str, Any]]:
    """Name -> valid resource, for ``"4.0"`` or ``"5.0"`` (fresh copies on every call)."""
    out = {
        "research-study": research_study(version),
        "plan-definition": plan_definition(version),
        "group": group(version),
        "organization": organization(),
        "location": location(),
        "practitioner": practitioner(),
        "practitioner-role": practitioner_role(),
        "bundle-collection": bundle(version),
        "bundle-transaction": bundle(version, "transaction"),
    }
    folder = EXTRA / ("r4" if version == "4.0" else "r5")
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            out[f"extra-{path.stem}"] = orjson.loads(path.read_bytes())
    return copy.deepcopy(out)
