"""R5 -> R4 conversion: genuine 4.0.1 output, honest statuses, nothing R5-only left behind."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from adapter.readers import read_items
from mappings.bundle import to_fhir_resources
from mappings.r4 import R4_STATUS, R4_STATUS_BY_CTGOV, R4_SYSTEM, XVER, to_r4

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures"
SEED_JSON = json.loads((FIXTURES / "seed" / "NCT01854957.json").read_text())
R4_STATUS_CODES = {
    "active", "administratively-completed", "approved", "closed-to-accrual", "closed-to-accrual-and-intervention",
    "completed", "disapproved", "in-review", "temporarily-closed-to-accrual",
    "temporarily-closed-to-accrual-and-intervention", "withdrawn",
}  # fmt: skip
# Elements that R4B added over R4 for the resource types we write: must never appear in R4 output.
R4B_ONLY = {"PlanDefinition": {"subjectCanonical"}}


def fixture_records() -> list[Any]:
    records = []
    for path in sorted((FIXTURES / "ctgov-v2-json").glob("*.json")) + sorted((FIXTURES / "ctgov-xml").glob("*.xml")):
        records.extend(item.record for item in read_items(path.read_bytes(), path.name))
    for path in sorted((FIXTURES / "seed").glob("NCT*")):
        records.extend(item.record for item in read_items(path.read_bytes(), path.name))
    return records


RECORDS = fixture_records()


def walk(value: Any, path: str = ""):
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r.registry_id}-{r.source.format}")
def test_r4_output_parses_as_strict_r4_models(record):
    for resource in to_r4(to_fhir_resources(record)):
        model = get_fhir_model_class(resource["resourceType"])
        model.model_validate(resource)  # R4B models forbid unknown (e.g. R5-only) elements
        assert not R4B_ONLY.get(resource["resourceType"], set()) & resource.keys()


@pytest.mark.parametrize("record", RECORDS[:6], ids=lambda r: r.registry_id)
def test_r4_keeps_r5_only_content_in_cross_version_extensions(record):
    r5 = to_fhir_resources(record)
    r4 = to_r4(r5)
    study5, study4 = r5[0], r4[0]
    assert study4["status"] in R4_STATUS_CODES
    urls = {e["url"] for e in study4.get("extension", [])}
    for element in ("progressStatus", "associatedParty", "label", "descriptionSummary", "outcomeMeasure"):
        if element in study5:
            assert f"{XVER}ResearchStudy.{element}" in urls, element
    assert len(study4.get("arm", [])) == len(study5.get("comparisonGroup", []))
    assert [a.get("id") for a in study4.get("arm", [])] == [g.get("linkId") for g in study5.get("comparisonGroup", [])]
    if "recruitment" in study5:
        assert study4["enrollment"] == [study5["recruitment"]["eligibility"]]
    for _, node in walk(r4):
        if node.get("system") in R4_SYSTEM and "code" in node:
            pytest.fail(f"R5 code system URL left in R4: {node['system']}")


def test_conversion_does_not_mutate_its_input():
    r5 = to_fhir_resources(RECORDS[0])
    before = copy.deepcopy(r5)
    to_r4(r5)
    assert r5 == before


def test_r4_plan_definition_uses_action_id():
    seed = next(r for r in RECORDS if r.registry_id == "NCT01854957")
    r4 = to_r4(to_fhir_resources(seed))
    plan = next(r for r in r4 if r["resourceType"] == "PlanDefinition")
    related = [node for _, node in walk(plan) if "relationship" in node]
    assert related and all("actionId" in node and "targetId" not in node for node in related)
    group = next(r for r in r4 if r["resourceType"] == "Group")
    assert group["actual"] is False and "membership" not in group and "description" not in group


def study_with_status(overall: str, last_known: str | None = None) -> Any:
    study = copy.deepcopy(SEED_JSON)
    status = study["protocolSection"]["statusModule"]
    status["overallStatus"] = overall
    status.pop("lastKnownStatus", None)
    if last_known:
        status["lastKnownStatus"] = last_known
    (item,) = read_items(json.dumps(study).encode(), "status.json")
    return item.record


@pytest.mark.parametrize(
    ("overall", "expected"),
    [
        ("RECRUITING", "active"),
        ("NOT_YET_RECRUITING", "approved"),
        ("ENROLLING_BY_INVITATION", "active"),
        ("ACTIVE_NOT_RECRUITING", "closed-to-accrual"),
        ("COMPLETED", "completed"),
        ("TERMINATED", "administratively-completed"),
        ("SUSPENDED", "temporarily-closed-to-accrual"),
        ("WITHDRAWN", "withdrawn"),
        ("UNKNOWN", "closed-to-accrual"),
        ("AVAILABLE", "active"),
        ("NO_LONGER_AVAILABLE", "closed-to-accrual"),
        ("TEMPORARILY_NOT_AVAILABLE", "temporarily-closed-to-accrual"),
        ("APPROVED_FOR_MARKETING", "closed-to-accrual"),
    ],
)
def test_r4_status_per_ctgov_status(overall, expected):
    last_known = "RECRUITING" if overall == "UNKNOWN" else None
    study = to_r4(to_fhir_resources(study_with_status(overall, last_known)))[0]
    assert study["status"] == expected
    if overall == "UNKNOWN":
        # never presented as active, and the original status is carried in words
        assert "unknown" in study["_status"]["extension"][0]["valueString"].lower()


def test_status_tables_only_use_r4_codes():
    assert set(R4_STATUS.values()) <= R4_STATUS_CODES
    assert set(R4_STATUS_BY_CTGOV.values()) <= R4_STATUS_CODES


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        ([], ("closed-to-accrual", "Status not stated by the registry")),
        ([{"state": {"text": "Not recruiting"}}], ("closed-to-accrual", "Not recruiting")),
        ([{"state": {"text": "Authorised"}}], ("approved", "Authorised")),
        ([{"state": {"text": "Pending approval"}}], ("closed-to-accrual", "Status not mapped to R4: Pending approval")),
        (
            [
                {
                    "state": {
                        "coding": [{"system": "http://hl7.org/fhir/research-study-status", "code": "overall-study"}]
                    }
                },
                {"state": {"coding": [{"system": "http://hl7.org/fhir/research-study-status", "code": "completed"}]}},
            ],
            ("completed", "completed"),
        ),
    ],
)
def test_r4_status_never_defaults_to_active(progress, expected):
    from mappings.r4 import _r4_status

    assert _r4_status(progress) == expected


def test_r5_only_status_codes_carry_their_code_system_version():
    from mappings.r4 import R4_RESEARCH_STUDY_STATUS_CODES

    assert R4_RESEARCH_STUDY_STATUS_CODES == R4_STATUS_CODES
    for record in RECORDS:
        for resource in to_r4(to_fhir_resources(record)):
            for _, node in walk(resource):
                if node.get("system") == "http://hl7.org/fhir/research-study-status":
                    assert (node["code"] in R4_STATUS_CODES) == ("version" not in node), node


def test_in_place_conversion_gives_the_same_r4():
    for record in RECORDS[:8]:
        assert to_r4(to_fhir_resources(record), in_place=True) == to_r4(to_fhir_resources(record))


def test_system_rewrite_reaches_codings_at_any_depth():
    """The rewrite visits every level of the element it is given."""
    from mappings.r4 import _rewrite_systems

    phase = "http://hl7.org/fhir/research-study-phase"
    status = "http://hl7.org/fhir/research-study-status"
    resource = {
        "resourceType": "ResearchStudy",
        "phase": {"coding": [{"system": phase, "code": "phase-1"}]},
        "keyword": [{"text": "nothing to rewrite here"}],
        "extension": [
            {"url": "a", "valueString": "x"},
            {
                "url": "b",
                "extension": [
                    {"url": "c", "extension": [{"url": "d", "valueCoding": {"system": phase, "code": "phase-2"}}]},
                    {"url": "e", "valueCodeableConcept": {"coding": [{"system": status, "code": "overall-study"}]}},
                    {"url": "f", "valueCoding": {"system": phase}},  # no code: not a coded value to move
                ],
            },
        ],
    }
    _rewrite_systems(resource)
    assert resource["phase"]["coding"][0]["system"] == R4_SYSTEM[phase]
    nested = resource["extension"][1]["extension"]
    assert nested[0]["extension"][0]["valueCoding"]["system"] == R4_SYSTEM[phase]
    assert nested[1]["valueCodeableConcept"]["coding"][0] == {
        "system": status,
        "code": "overall-study",
        "version": "5.0.0",
    }
    assert nested[2]["valueCoding"] == {"system": phase}
    assert resource["keyword"] == [{"text": "nothing to rewrite here"}]


_REWRITTEN_SYSTEMS = {*R4_SYSTEM, "http://hl7.org/fhir/research-study-status"}


def test_no_r5_system_is_left_in_r4_output():
    """``to_r4`` rewrites systems only in the elements the mappings put them in: none may be missed."""
    r4_urls = set(R4_SYSTEM.values())
    rewritten = set()
    ictrp = [i.record for p in sorted((FIXTURES / "who-ictrp-xml").glob("*.xml")) for i in read_items(p.read_bytes())]
    for record in RECORDS + [r for r in ictrp if r is not None]:
        for resource in to_r4(to_fhir_resources(record)):
            for path, node in walk(resource):
                assert node.get("system") not in R4_SYSTEM, (record.registry_id, resource["resourceType"], path)
                if node.get("system") in r4_urls:
                    rewritten.add((resource["resourceType"], path.split(".")[1].split("[")[0]))
                elif node.get("system") == "http://hl7.org/fhir/research-study-status":
                    assert (node["code"] in R4_STATUS_CODES) == ("version" not in node), node
    # Phase, primary purpose, objective types and (in extensions) outcome types: the check has teeth.
    assert rewritten == {
        ("ResearchStudy", "phase"),
        ("ResearchStudy", "primaryPurposeType"),
        ("ResearchStudy", "objective"),
        ("ResearchStudy", "extension"),
    }


def test_only_the_system_holder_mappings_read_the_tables_of_rewritten_systems():
    """Only the ResearchStudy and Location conversions rewrite systems: only their mappings read those code tables."""
    import re

    codes = Path(__file__).resolve().parents[2] / "mappings" / "codes"
    tables = {p.stem for p in codes.glob("*.json") if any(s in p.read_text() for s in _REWRITTEN_SYSTEMS)}
    assert tables >= {"phase", "primary_purpose", "overall_status", "outcome_type", "site_status"}
    readers: set[str] = set()
    for module in (codes.parent).glob("*.py"):
        used = set(re.findall(r"""table\(\s*["'](\w+)["']""", module.read_text()))
        if used & tables:
            readers.add(module.stem)
        assert not any(s in module.read_text() for s in R4_SYSTEM) or module.stem in {"r4", "research_study"}
    assert readers == {"research_study", "location"}
