"""The validator's library API: the five layers, issue shape, and robustness against bad input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapter.validation import has_errors, outcome_model, resource_issues, validate_bytes, validate_resource
from adapter.validation.definitions import load_definitions
from adapter.validation.fhirpath import evaluate, html_problem

REPO = Path(__file__).resolve().parents[3]
TESTDATA = REPO.parent / "shared" / "conformance" / "testdata"
UCUM = "http://unitsofmeasure.org"


def study(version: str = "4.0") -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": "nct01234567",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Study</div>'},
        "identifier": [{"system": "https://clinicaltrials.gov", "value": "NCT01234567"}],
        "title": "A study",
        "status": "active",
        "period": {"start": "2020-01-15", "end": "2023-06-30"},
    }
    return out


def group(version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Group",
        "id": "g1",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Group</div>'},
        "type": "person",
        "characteristic": [
            {"code": {"text": f"c{i}"}, "valueCodeableConcept": {"text": "x"}, "exclude": False} for i in range(3)
        ]
        + [
            {
                "code": {"text": "age"},
                "valueRange": {
                    "low": {"value": 18, "unit": "a", "system": UCUM, "code": "a"},
                    "high": {"value": 65, "unit": "a", "system": UCUM, "code": "a"},
                },
                "exclude": False,
            }
        ],
    }
    if version == "5.0":
        out["membership"] = "definitional"
    else:
        out["actual"] = False
    return out


def errors(resource: Any, version: str = "4.0") -> list[tuple[str, str, str | None]]:
    return [(i.severity, i.code, i.expression) for i in resource_issues(resource, version) if i.is_error]


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_valid_resources_give_an_informational_outcome(version: str) -> None:
    outcome = validate_resource(group(version), version)
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "No issues detected"}],
    }
    assert outcome_model(outcome).issue[0].severity == "information"


def test_issue_points_at_the_element_with_indices() -> None:
    broken = group("4.0")
    broken["characteristic"][3]["valueRange"]["low"]["value"] = 80
    outcome = validate_resource(broken, "4.0")
    assert outcome["issue"] == [
        {
            "severity": "error",
            "code": "invariant",
            "diagnostics": "rng-2: If present, low SHALL have a lower value than high",
            "expression": ["Group.characteristic[3].valueRange"],
        }
    ]


def test_r5_range_invariant_compares_ucum_time_units() -> None:
    broken = group("5.0")
    broken["characteristic"][3]["valueRange"]["high"] = {"value": 12, "unit": "mo", "system": UCUM, "code": "mo"}
    assert errors(broken, "5.0") == [("error", "invariant", "Group.characteristic[3].valueRange")]


def test_engine_failures_are_warnings_not_errors() -> None:
    # kg against years cannot be compared without UCUM conversion: the invariant is reported as
    # not checked, never as broken.
    odd = group("5.0")
    odd["characteristic"][3]["valueRange"]["high"] = {"value": 3, "unit": "kg", "system": UCUM, "code": "kg"}
    issues = resource_issues(odd, "5.0")
    assert [(i.severity, i.code) for i in issues] == [("warning", "not-supported")]
    assert "rng-2" in issues[0].diagnostics


def test_bundle_entry_expressions() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:3b7e1c52-0000-4000-8000-000000000001", "resource": study()},
            {"fullUrl": "urn:uuid:3b7e1c52-0000-4000-8000-000000000002", "resource": {**study(), "id": "b"}},
        ],
    }
    bundle["entry"][1]["resource"]["status"] = "bogus"
    assert errors(bundle) == [("error", "code-invalid", "Bundle.entry[1].resource.status")]


@pytest.mark.parametrize(
    ("version", "key", "value", "expected"),
    [
        ("4.0", "status", "recruiting", ("error", "code-invalid", "ResearchStudy.status")),
        ("5.0", "status", "active-but-not-recruiting", ("error", "code-invalid", "ResearchStudy.status")),
        ("4.0", "title", 42, ("error", "structure", "ResearchStudy.title")),
        ("4.0", "title", "", ("error", "value", "ResearchStudy.title")),
        ("4.0", "title", ["x"], ("error", "structure", "ResearchStudy.title")),
        ("4.0", "keyword", [], ("error", "structure", "ResearchStudy.keyword")),
        ("4.0", "keyword", [{}], ("error", "invariant", "ResearchStudy.keyword[0]")),
        ("4.0", "language", None, ("error", "structure", "ResearchStudy.language")),
        ("4.0", "id", "bad id", ("error", "value", "ResearchStudy.id")),
        ("4.0", "id", "x" * 65, ("error", "value", "ResearchStudy.id")),
        ("4.0", "period", {"start": "2021-02-29"}, ("error", "value", "ResearchStudy.period.start")),
        ("5.0", "period", {"start": "2021-01-01T10:00:00"}, ("error", "value", "ResearchStudy.period.start")),
        ("4.0", "period", {"start": "2023-01-01", "end": "2020-01-01"}, ("error", "invariant", "ResearchStudy.period")),
        ("4.0", "associatedParty", [{"role": {"text": "x"}}], ("error", "structure", "ResearchStudy.associatedParty")),
        ("5.0", "sponsor", {"reference": "Organization/o"}, ("error", "structure", "ResearchStudy.sponsor")),
        ("4.0", "sponsor", {"reference": "Patient/p"}, ("error", "structure", "ResearchStudy.sponsor.reference")),
        ("4.0", "sponsor", {"reference": "#nope"}, ("error", "not-found", "ResearchStudy.sponsor.reference")),
        ("4.0", "sponsor", {"reference": "Bogus/1"}, ("error", "structure", "ResearchStudy.sponsor.reference")),
    ],
)
def test_single_breakages(version: str, key: str, value: Any, expected: tuple[str, str, str]) -> None:
    resource = study(version)
    resource[key] = value
    found = errors(resource, version)
    assert expected in found
    # One breakage may break more than one rule (e.g. ref-1 and the reference check), all on that element.
    assert all(expression and expression.startswith(f"ResearchStudy.{key}") for _, _, expression in found), found


def test_missing_required_element() -> None:
    resource = study()
    del resource["status"]
    (issue,) = resource_issues(resource, "4.0")
    assert (issue.severity, issue.code, issue.expression) == ("error", "required", "ResearchStudy.status")
    assert "minimum required = 1" in issue.diagnostics


def test_other_version_element_is_named() -> None:
    resource = study("4.0")
    resource["recruitment"] = {"targetNumber": 10}
    (issue,) = resource_issues(resource, "4.0")
    assert "element of FHIR R5 (5.0.0), not of FHIR R4 (4.0.1)" in issue.diagnostics


def test_extensible_binding_and_known_code_system_give_warnings() -> None:
    resource = study("5.0")
    resource["phase"] = {"coding": [{"system": "http://hl7.org/fhir/research-study-phase", "code": "phase-9"}]}
    issues = resource_issues(resource, "5.0")
    assert issues and all(i.severity == "warning" and i.code == "code-invalid" for i in issues)
    assert issues[0].expression == "ResearchStudy.phase.coding[0]"


def test_contained_references() -> None:
    resource = study()
    resource["contained"] = [{"resourceType": "Organization", "id": "sp", "name": "Sponsor"}]
    resource["sponsor"] = {"reference": "#sp"}
    assert errors(resource) == []
    resource["sponsor"] = {"reference": "Organization/x"}
    assert errors(resource) == [("error", "invariant", "ResearchStudy")]  # dom-3: contained but unreferenced


def test_bundle_references_resolve_and_duplicates_are_found() -> None:
    org = {"resourceType": "Organization", "id": "o1", "name": "Org"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0",
                "resource": {**study(), "sponsor": {"reference": "Organization/o1"}},
                "request": {"method": "PUT", "url": "ResearchStudy/nct01234567"},
            },
            {"fullUrl": "urn:uuid:1", "resource": org, "request": {"method": "PUT", "url": "Organization/o1"}},
        ],
    }
    assert errors(bundle) == []
    broken = copy.deepcopy(bundle)
    broken["entry"][0]["resource"]["sponsor"] = {"reference": "Organization/o2"}
    assert errors(broken) == [("error", "not-found", "Bundle.entry[0].resource.sponsor.reference")]
    wrong = copy.deepcopy(bundle)
    wrong["entry"][0]["resource"]["sponsor"] = {"reference": "urn:uuid:0"}
    assert errors(wrong) == [("error", "structure", "Bundle.entry[0].resource.sponsor.reference")]
    duplicate = copy.deepcopy(bundle)
    duplicate["entry"][1]["fullUrl"] = "urn:uuid:0"
    found = errors(duplicate)
    assert ("error", "duplicate", "Bundle.entry[1].fullUrl") in found


def test_ndjson_issues_carry_the_line() -> None:
    good = orjson.dumps(study())
    bad = orjson.dumps({**study(), "status": "bogus"})
    outcome = validate_bytes(good + b"\n\n" + bad + b"\n", "4.0", source="x.ndjson")
    (issue,) = outcome["issue"]
    assert issue["location"] == ["line 3"]
    assert issue["expression"] == ["ResearchStudy.status"]


XML_STUDY = b"""<?xml version="1.0" encoding="UTF-8"?>
<ResearchStudy xmlns="http://hl7.org/fhir">
  <id value="nct01234567"/>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">Study</div></text>
  <identifier><system value="https://clinicaltrials.gov"/><value value="NCT01234567"/></identifier>
  <title value="A study"/>
  <status value="STATUS"/>
  <keyword><text value="a"/></keyword>
  <keyword><text value="b"/></keyword>
  <period><start value="2020-01-15"/></period>
  <arm><name value="Arm A"/><extension url="http://example.org/x"><valueBoolean value="true"/></extension></arm>
</ResearchStudy>
"""


def test_fhir_xml_is_validated_like_json() -> None:
    assert not has_errors(validate_bytes(XML_STUDY.replace(b"STATUS", b"active"), "4.0"))
    outcome = validate_bytes(XML_STUDY.replace(b"STATUS", b"recruiting"), "4.0")
    assert [(i["code"], i["expression"]) for i in outcome["issue"]] == [("code-invalid", ["ResearchStudy.status"])]


@pytest.mark.parametrize(
    "data",
    [
        b'{"resourceType": "ResearchStudy", "status": "act',
        b"42",
        b"[1, 2]",
        b"null",
        b"",
        b"\xff\xfe\x00garbage",
        b'{"resourceType": "ResearchStudy", "status": NaN}',
        b"[" * 25_000_000 + b"]" * 25_000_000,
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><ResearchStudy xmlns="http://hl7.org/fhir">&x;</ResearchStudy>',
        b"<ResearchStudy xmlns='http://hl7.org/fhir'><status value='active'>",
        b'{"resourceType": 7}',
        b'{"resourceType": "NotAResource"}',
    ],
    ids=[
        "truncated",
        "number",
        "array",
        "null",
        "empty",
        "binary",
        "nan",
        "50MB-nesting",
        "xml-dtd",
        "xml-broken",
        "type-number",
        "unknown-type",
    ],
)
def test_bad_input_gives_fatal_or_error_issues(data: bytes) -> None:
    outcome = validate_bytes(data, "4.0")
    assert outcome["resourceType"] == "OperationOutcome"
    assert has_errors(outcome)


def test_deep_nesting_inside_a_resource_is_fatal_not_a_crash() -> None:
    action: dict[str, Any] = {"title": "leaf"}
    for _ in range(300):
        action = {"title": "x", "action": [action]}
    plan = {"resourceType": "PlanDefinition", "status": "active", "action": [action]}
    outcome = validate_resource(plan, "5.0")
    assert [i["code"] for i in outcome["issue"]] == ["too-costly"]


def test_huge_broken_input_stops_after_many_issues() -> None:
    group = {"resourceType": "Group", "type": "person", "actual": False, "characteristic": [{}] * 200_000}
    outcome = validate_resource(group, "4.0")
    assert len(outcome["issue"]) < 1100
    assert outcome["issue"][-1]["code"] == "too-costly"


def test_many_warnings_are_capped_without_failing() -> None:
    org = {"resourceType": "Organization", "name": "x"}  # no narrative: a dom-6 warning each
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": org}] * 1500}
    outcome = validate_resource(bundle, "4.0")
    assert not has_errors(outcome)
    assert len(outcome["issue"]) == 1001
    assert outcome["issue"][-1]["diagnostics"] == "500 further warnings are not listed"


def test_unsupported_version_and_profile_raise() -> None:
    with pytest.raises(ValueError):
        validate_resource(study(), "3.0")
    with pytest.raises(ValueError):
        validate_resource(study(), "4.0", profile="nope")


def test_trial2fhir_profile() -> None:
    resource = study("4.0")
    assert [i.severity for i in resource_issues(resource, "4.0", profile="trial2fhir")] == ["error", "warning"]
    resource["enrollment"] = [{"reference": "Group/g1"}]
    resource["protocol"] = [{"reference": "PlanDefinition/p1"}]
    assert resource_issues(resource, "4.0", profile="trial2fhir") == []
    resource["identifier"][0]["value"] = "12345"
    assert [i.code for i in resource_issues(resource, "4.0", profile="trial2fhir")] == ["required", "value"]


def test_fhirpath_extensions() -> None:
    definitions = load_definitions("5.0")
    period = {"start": "2020", "end": "2020-03"}
    per1 = next(c for c in definitions.types["Period"].constraints if c.key == "per-1")
    assert evaluate(definitions, per1.expression, period, "Period", None, None) == [True]
    assert evaluate(definitions, "start.hasValue()", period, "Period", None, None) == [True]
    assert evaluate(definitions, "%ucum", period, "Period", None, None) == ["http://unitsofmeasure.org"]
    assert evaluate(
        definitions, "'active'.memberOf('http://hl7.org/fhir/ValueSet/publication-status')", {}, "Period", None, None
    ) == [True]
    assert html_problem('<div xmlns="http://www.w3.org/1999/xhtml"><p>ok</p></div>') is None
    assert html_problem('<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">ok</p></div>') is not None
    assert html_problem("<div>no namespace</div>") is not None


def _expected() -> list[tuple[str, str]]:
    lines = (TESTDATA / "expected.txt").read_text().splitlines()
    return [tuple(line.split()[:2]) for line in lines if line.strip() and not line.startswith("#")]  # type: ignore[misc]


@pytest.mark.skipif(not TESTDATA.is_dir(), reason="../shared/conformance/testdata is not beside this checkout")
def test_agrees_with_the_checker_self_test_data() -> None:
    for name, verdict in _expected():
        version = "4.0" if name.startswith("r4/") else "5.0"
        outcome = validate_bytes((TESTDATA / name).read_bytes(), version, source=name)
        flagged = has_errors(outcome)
        assert flagged == (verdict != "valid"), (name, outcome["issue"])
        if verdict == "valid":
            assert outcome["issue"][0]["severity"] == "information", (name, outcome["issue"])


def test_unknown_code_warning_respects_the_codings_edition() -> None:
    # recruiting is an R5 research-study-status code; R4 output carries it with version 5.0.0
    def study(coding: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "ResearchStudy",
            "id": "x",
            "status": "active",
            "category": [{"coding": [coding]}],
        }

    base = {"system": "http://hl7.org/fhir/research-study-status", "code": "recruiting"}
    unversioned = validate_resource(study(base), "4.0")
    assert any("Unknown code 'recruiting'" in i["diagnostics"] for i in unversioned["issue"])
    versioned = validate_resource(study({**base, "version": "5.0.0"}), "4.0")
    assert not any("recruiting" in i["diagnostics"] for i in versioned["issue"])


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_structure_only_skips_the_invariants_but_not_the_structure(version: str) -> None:
    nameless = {"resourceType": "Organization", "id": "x", "active": True}  # breaks org-1 only
    full = [i.diagnostics for i in resource_issues(nameless, version) if i.is_error]
    assert any(d.startswith("org-1") for d in full), full
    assert not [i for i in resource_issues(nameless, version, invariants=False) if i.is_error]
    broken = {"resourceType": "Organization", "id": "x", "name": "X", "active": "yes", "nickname": "Y"}
    structural = {(i.code, i.expression) for i in resource_issues(broken, version, invariants=False) if i.is_error}
    assert structural == {(i.code, i.expression) for i in resource_issues(broken, version) if i.is_error}
    assert len(structural) == 2, structural
