"""The mutation suite: every valid base resource broken exactly one way.

``mutations(version)`` returns the cases; ``python -m tests.mutations.mutations write DIR`` writes
them (and the untouched bases) as JSON files for the independent checker, and
``python -m tests.mutations.mutations record DIR`` turns the checker's JSON reports into
``checker_verdicts.json``.  See ``tests/mutations/README.md`` for the recording procedure.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .bases import bases

VERDICTS = Path(__file__).with_name("checker_verdicts.json")
VERSION_DIRS = {"4.0": "r4", "5.0": "r5"}
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Edit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Mutation:
    name: str
    """Unique per version: ``<base>--<what>``; also the file stem given to the checker."""
    base: str
    category: str
    resource: dict[str, Any]


def _steps(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _STEP.findall(path)]


def _parent(resource: dict[str, Any], path: str) -> tuple[Any, str | int]:
    steps = _steps(path)
    node: Any = resource
    for step in steps[:-1]:
        if isinstance(step, str) and isinstance(node, dict) and step not in node:
            node[step] = {}
        node = node[step]
    return node, steps[-1]


def put(path: str, value: Any) -> Edit:
    def edit(resource: dict[str, Any]) -> None:
        parent, last = _parent(resource, path)
        parent[last] = copy.deepcopy(value)

    return edit


def drop(path: str) -> Edit:
    def edit(resource: dict[str, Any]) -> None:
        parent, last = _parent(resource, path)
        if isinstance(parent, dict):
            parent.pop(last, None)  # type: ignore[call-overload]
        else:
            del parent[last]

    return edit


def both(*edits: Edit) -> Edit:
    def edit(resource: dict[str, Any]) -> None:
        for one in edits:
            one(resource)

    return edit


CONTAINED_ORG = {"resourceType": "Organization", "id": "c1", "name": "Contained Org"}
DIV = '<div xmlns="http://www.w3.org/1999/xhtml">{}</div>'

# (what, category, edit) applied to every non-Bundle base.
GENERIC: list[tuple[str, str, Edit]] = [
    ("unknown-root-element", "unknown", put("unknownElement", "x")),
    ("unknown-nested-element", "unknown", put("text.foo", "bar")),
    ("fhir-comments", "unknown", put("fhir_comments", ["a comment"])),
    ("empty-meta", "empty", put("meta", {})),
    ("meta-only-id", "empty", put("meta", {"id": "m1"})),
    ("empty-extension-array", "empty", put("extension", [])),
    ("null-language", "empty", put("language", None)),
    ("empty-language", "empty", put("language", "")),
    ("id-with-space", "format", put("id", "bad id!")),
    ("id-too-long", "format", put("id", "a" * 65)),
    ("id-number", "type", put("id", 123)),
    ("meta-lastupdated-date-only", "format", put("meta.lastUpdated", "2024-01-02")),
    ("implicit-rules-whitespace", "format", put("implicitRules", "http://example.org/a b")),
    ("text-status-bogus", "code", put("text.status", "bogus")),
    ("text-missing-div", "required", drop("text.div")),
    ("text-div-no-namespace", "invariant", put("text.div", "<div>plain</div>")),
    ("text-div-script", "invariant", put("text.div", DIV.format("<script>alert(1)</script>x"))),
    ("text-div-empty", "invariant", put("text.div", DIV.format(" "))),
    (
        "extension-value-and-children",
        "invariant",
        put(
            "extension",
            [{"url": "http://example.org/x", "valueString": "a", "extension": [{"url": "y", "valueString": "b"}]}],
        ),
    ),
    ("extension-no-url", "required", put("extension", [{"valueString": "a"}])),
    ("extension-no-value", "invariant", put("extension", [{"url": "http://example.org/x"}])),
    ("extension-as-object", "cardinality", put("extension", {"url": "http://example.org/x", "valueString": "a"})),
    (
        "modifier-extension-bad-type",
        "type",
        put("modifierExtension", [{"url": "http://example.org/m", "valueBoolean": "yes"}]),
    ),
    ("contained-unreferenced", "invariant", put("contained", [CONTAINED_ORG])),
    (
        "contained-nested",
        "invariant",
        put("contained", [{**CONTAINED_ORG, "contained": [{**CONTAINED_ORG, "id": "c2"}]}]),
    ),
    ("contained-with-version", "invariant", put("contained", [{**CONTAINED_ORG, "meta": {"versionId": "1"}}])),
    ("contained-no-type", "structure", put("contained", [{"id": "c1", "name": "x"}])),
    ("contained-unknown-type", "structure", put("contained", [{"resourceType": "Bogus", "id": "c1"}])),
    ("boolean-as-string", "type", put("implicitRules", True)),
]


def _specific(version: str) -> dict[str, list[tuple[str, str, Edit]]]:
    r5 = version == "5.0"
    target_key = "targetId" if r5 else "actionId"
    study: list[tuple[str, str, Edit]] = [
        ("missing-status", "required", drop("status")),
        ("status-bogus", "code", put("status", "bogus")),
        ("status-wrong-case", "code", put("status", "Active")),
        ("status-number", "type", put("status", 1)),
        ("status-array", "cardinality", put("status", ["active"])),
        ("title-number", "type", put("title", 42)),
        ("title-empty", "empty", put("title", "")),
        ("title-array", "cardinality", put("title", ["x"])),
        ("title-object", "type", put("title", {"value": "x"})),
        (
            "identifier-object",
            "cardinality",
            put("identifier", {"system": "https://clinicaltrials.gov", "value": "NCT01234567"}),
        ),
        ("identifier-empty-value", "empty", put("identifier[0].value", "")),
        ("identifier-use-bogus", "code", put("identifier[0].use", "primary")),
        ("identifier-system-space", "format", put("identifier[0].system", "https://clinical trials.gov")),
        ("identifier-empty-object", "empty", put("identifier", [{}])),
        ("identifier-null-item", "empty", put("identifier", [None])),
        ("period-start-after-end", "invariant", put("period", {"start": "2023-01-01", "end": "2020-01-01"})),
        (
            "period-datetime-start-after-end",
            "invariant",
            put("period", {"start": "2023-01-01T10:00:00Z", "end": "2023-01-01T09:00:00Z"}),
        ),
        ("period-month-13", "format", put("period.start", "2020-13-45")),
        ("period-feb-30", "format", put("period.start", "2021-02-30")),
        ("period-feb-29-non-leap", "format", put("period.end", "2023-02-29")),
        ("period-no-timezone", "format", put("period.start", "2020-01-15T10:00:00")),
        ("period-compact-date", "format", put("period.start", "20200115")),
        ("period-hour-25", "format", put("period.start", "2020-01-15T25:00:00Z")),
        ("period-empty", "empty", put("period", {})),
        ("keyword-empty-object", "empty", put("keyword", [{}])),
        ("condition-empty-text", "empty", put("condition[0].text", "")),
        ("description-number", "type", put("description", 7)),
        ("protocol-to-group", "reference", put("protocol[0].reference", "Group/nct01234567-eligibility")),
        ("protocol-malformed", "reference", put("protocol[0].reference", "PlanDefinition")),
        ("protocol-unknown-type", "reference", put("protocol[0].reference", "Protocol/x1")),
        ("protocol-contained-missing", "reference", put("protocol[0].reference", "#missing")),
        ("site-to-patient", "reference", put("site[0].reference", "Patient/p1")),
        ("site-reference-number", "type", put("site[0].reference", 5)),
        ("site-type-mismatch", "reference", put("site[0].type", "Patient")),
        ("phase-unknown-code", "code", put("phase.coding[0].code", "phase-9")),
        ("note-without-text", "required", put("note", [{"authorString": "x"}])),
        ("related-artifact-bogus-type", "code", put("relatedArtifact", [{"type": "bogus", "url": "http://x.org"}])),
        ("contact-telecom-system-bogus", "code", put("contact", [{"telecom": [{"system": "pager2", "value": "1"}]}])),
    ]
    if r5:
        study += [
            ("r4-sponsor", "other-version", put("sponsor", {"reference": "Organization/org-acme"})),
            ("r4-enrollment", "other-version", put("enrollment", [{"reference": "Group/nct01234567-eligibility"}])),
            ("r4-arm", "other-version", put("arm", [{"name": "Arm A"}])),
            (
                "r4-principal-investigator",
                "other-version",
                put("principalInvestigator", {"reference": "Practitioner/x"}),
            ),
            ("r4-reason-stopped", "other-version", put("reasonStopped", {"text": "funding"})),
            ("r4-status-code", "code", put("status", "completed")),
            ("party-to-patient", "reference", put("associatedParty[0].party.reference", "Patient/p1")),
            ("party-missing-role", "required", drop("associatedParty[0].role")),
            ("eligibility-to-patient", "reference", put("recruitment.eligibility.reference", "Patient/p1")),
            ("target-number-negative", "format", put("recruitment.targetNumber", -5)),
            ("target-number-string", "type", put("recruitment.targetNumber", "120")),
            ("target-number-decimal", "type", put("recruitment.targetNumber", 1.5)),
            ("progress-actual-string", "type", put("progressStatus[0].actual", "true")),
            ("comparison-group-no-name", "required", drop("comparisonGroup[0].name")),
            ("comparison-group-link-space", "format", put("comparisonGroup[0].linkId", "arm a")),
            ("recruitment-empty", "empty", put("recruitment", {})),
        ]
    else:
        study += [
            ("r5-associated-party", "other-version", put("associatedParty", [{"role": {"text": "sponsor"}}])),
            ("r5-recruitment", "other-version", put("recruitment", {"targetNumber": 10})),
            ("r5-progress-status", "other-version", put("progressStatus", [{"state": {"text": "recruiting"}}])),
            ("r5-name", "other-version", put("name", "NCT01234567")),
            ("r5-comparison-group", "other-version", put("comparisonGroup", [{"name": "Arm A"}])),
            ("r5-status-code", "code", put("status", "draft")),
            ("sponsor-to-patient", "reference", put("sponsor.reference", "Patient/p1")),
            ("sponsor-array", "cardinality", put("sponsor", [{"reference": "Organization/org-acme"}])),
            ("pi-to-organization", "reference", put("principalInvestigator.reference", "Organization/org-acme")),
            ("enrollment-to-patient", "reference", put("enrollment[0].reference", "Patient/p1")),
            ("arm-no-name", "required", drop("arm[0].name")),
            ("arm-unknown-element", "unknown", put("arm[0].linkId", "arm-a")),
            ("recruiting-status", "code", put("status", "recruiting")),
        ]
    plan: list[tuple[str, str, Edit]] = [
        ("missing-status", "required", drop("status")),
        ("status-bogus", "code", put("status", "recruiting")),
        ("date-invalid", "format", put("date", "2023-06-31T12:00:00Z")),
        ("date-no-timezone", "format", put("date", "2023-06-30T12:00:00")),
        ("relationship-bogus", "code", put("action[1].relatedAction[0].relationship", "bogus")),
        ("relationship-missing", "required", drop("action[1].relatedAction[0].relationship")),
        ("related-target-missing", "required", drop(f"action[1].relatedAction[0].{target_key}")),
        (
            "related-wrong-key",
            "other-version",
            put(
                "action[1].relatedAction[0]",
                {("actionId" if r5 else "targetId"): "arm-a", "relationship": "concurrent"},
            ),
        ),
        ("nested-action-unknown", "unknown", put("action[0].action[0].foo", 1)),
        ("nested-action-title-number", "type", put("action[0].action[0].title", 3)),
        ("nested-action-empty", "empty", put("action[0].action", [{}])),
        ("action-empty-array", "empty", put("action", [])),
        ("action-title-number", "type", put("action[0].title", 42)),
        ("action-priority-bogus", "code", put("action[0].priority", "bogus")),
        ("action-selection-bogus", "code", put("action[0].selectionBehavior", "some")),
        ("offset-value-string", "type", put("action[1].relatedAction[0].offsetDuration.value", "2")),
        ("offset-code-without-system", "invariant", drop("action[1].relatedAction[0].offsetDuration.system")),
        ("offset-comparator-bogus", "code", put("action[1].relatedAction[0].offsetDuration.comparator", "~")),
        ("offset-two-types", "cardinality", put("action[1].relatedAction[0].offsetRange", {"low": {"value": 1}})),
        ("type-unknown-code", "code", put("type.coding[0].code", "bogus-type")),
        ("type-coding-object", "cardinality", put("type.coding", {"system": "http://x.org", "code": "a"})),
        (
            "identifier-period-inverted",
            "invariant",
            put("identifier[0].period", {"start": "2024-01-01", "end": "2023-01-01"}),
        ),
        ("title-array", "cardinality", put("title", ["a", "b"])),
        ("goal-missing-description", "required", put("goal", [{"priority": {"text": "high"}}])),
        ("action-id-unknown-element-case", "unknown", put("action[0].Title", "x")),
    ]
    if r5:
        plan += [("r4-timing-timing-in-r5", "other-version", put("action[0].timingDateTime", "2020-01-01T00:00:00Z"))]
    else:
        plan += [("r5-as-needed", "other-version", put("asNeededBoolean", True))]
    grp: list[tuple[str, str, Edit]] = [
        ("missing-type", "required", drop("type")),
        ("type-bogus", "code", put("type", "human")),
        ("range-inverted", "invariant", put("characteristic[0].valueRange.low.value", 80)),
        (
            "range-inverted-mixed-units",
            "invariant",
            put(
                "characteristic[0].valueRange.high",
                {"value": 12, "unit": "mo", "system": "http://unitsofmeasure.org", "code": "mo"},
            ),
        ),
        ("range-low-comparator", "invariant", put("characteristic[0].valueRange.low.comparator", ">")),
        ("range-low-value-string", "type", put("characteristic[0].valueRange.low.value", "18")),
        ("range-low-code-no-system", "invariant", drop("characteristic[0].valueRange.low.system")),
        ("characteristic-missing-code", "required", drop("characteristic[0].code")),
        ("characteristic-missing-value", "required", drop("characteristic[0].valueRange")),
        ("characteristic-missing-exclude", "required", drop("characteristic[0].exclude")),
        ("characteristic-exclude-string", "type", put("characteristic[0].exclude", "false")),
        ("characteristic-value-string-type", "unknown", put("characteristic[1].valueString", "x")),
        ("characteristic-two-values", "cardinality", put("characteristic[2].valueBoolean", True)),
        (
            "characteristic-boolean-string",
            "type",
            both(drop("characteristic[2].valueCodeableConcept"), put("characteristic[2].valueBoolean", "false")),
        ),
        ("characteristic-coding-code-number", "type", put("characteristic[2].valueCodeableConcept.coding[0].code", 1)),
        ("characteristic-empty", "empty", put("characteristic", [{}])),
        (
            "characteristic-object",
            "cardinality",
            put("characteristic", {"code": {"text": "x"}, "valueBoolean": True, "exclude": False}),
        ),
        ("quantity-negative", "format", put("quantity", -1)),
        ("quantity-string", "type", put("quantity", "3")),
        ("name-number", "type", put("name", 3)),
        ("age-code-unknown-loinc-system", "code", put("characteristic[0].code.coding[0].system", "http://loinc.org/")),
    ]
    if r5:
        grp += [
            ("missing-membership", "required", drop("membership")),
            ("membership-bogus", "code", put("membership", "conceptual")),
            ("r5-evidence-variable-element", "unknown", put("combinationMethod", "any-of")),
            ("r4-actual", "other-version", put("actual", False)),
        ]
    else:
        grp += [
            ("missing-actual", "required", drop("actual")),
            ("actual-string", "type", put("actual", "false")),
            ("r5-membership", "other-version", put("membership", "definitional")),
            ("r5-combination-method", "other-version", put("combinationMethod", "all-of")),
            ("member-while-not-actual", "invariant", put("member", [{"entity": {"reference": "Patient/p1"}}])),
            (
                "member-entity-to-organization",
                "reference",
                put("member", [{"entity": {"reference": "Organization/org-acme"}}]),
            ),
        ]
    org: list[tuple[str, str, Edit]] = [
        ("no-name-no-identifier", "invariant", drop("name")),
        ("name-empty", "empty", put("name", "")),
        ("name-array", "cardinality", put("name", ["ACME"])),
        ("active-string", "type", put("active", "yes")),
        ("alias-not-array", "cardinality", put("alias", "ACME")),
        ("alias-empty-array", "empty", put("alias", [])),
        ("alias-empty-string", "empty", put("alias", [""])),
        ("telecom-system-bogus", "code", put("telecom", [{"system": "pager2", "value": "1"}])),
        ("telecom-value-without-system", "invariant", put("telecom", [{"value": "555-1234"}])),
        ("address-use-bogus", "code", put("address", [{"use": "office", "city": "Boston"}])),
        ("address-type-number", "type", put("address", [{"type": 1}])),
        ("part-of-patient", "reference", put("partOf", {"reference": "Patient/p1"})),
        ("endpoint-to-location", "reference", put("endpoint", [{"reference": "Location/l1"}])),
        ("type-unknown-code", "code", put("type[0].coding[0].code", "xyz")),
        ("coding-code-space", "format", put("type[0].coding[0].code", " bus")),
        ("coding-user-selected-string", "type", put("type[0].coding[0].userSelected", "true")),
        ("contact-name-string", "type", put("contact", [{"name": "Jane"}])),
        ("identifier-period-bad", "format", put("identifier", [{"value": "1", "period": {"start": "2020-02-30"}}])),
    ]
    if r5:
        org += [("r4-address", "other-version", put("address", {"city": "Boston"}))]
    else:
        org += [("r5-description", "other-version", put("description", "A company"))]
    loc: list[tuple[str, str, Edit]] = [
        ("status-bogus", "code", put("status", "open")),
        ("mode-bogus", "code", put("mode", "kind2")),
        ("latitude-string", "type", put("position.latitude", "42.36")),
        ("longitude-missing", "required", drop("position.longitude")),
        ("managing-org-to-patient", "reference", put("managingOrganization.reference", "Patient/p1")),
        ("address-country-number", "type", put("address.country", 12)),
        ("address-array", "cardinality", put("address", [{"city": "Boston"}])),
        ("part-of-organization", "reference", put("partOf", {"reference": "Organization/org-acme"})),
        ("name-empty", "empty", put("name", "")),
        (
            "operational-status-bad-code",
            "code",
            put("operationalStatus", {"system": "http://terminology.hl7.org/CodeSystem/v2-0116", "code": "Q"}),
        ),
    ]
    if r5:
        loc += [("hours-of-operation-r4-shape", "other-version", put("hoursOfOperation", [{"allDay": True}]))]
    else:
        loc += [("r5-contact", "other-version", put("contact", [{"name": {"text": "x"}}]))]
    pract: list[tuple[str, str, Edit]] = [
        ("name-use-bogus", "code", put("name[0].use", "nickname2")),
        ("name-given-not-array", "cardinality", put("name[0].given", "Jane")),
        ("telecom-system-bogus", "code", put("telecom[0].system", "pager2")),
        ("telecom-use-bogus", "code", put("telecom[0].use", "office")),
        ("telecom-no-system", "invariant", drop("telecom[0].system")),
        ("gender-bogus", "code", put("gender", "f")),
        ("birth-date-invalid", "format", put("birthDate", "1980-02-30")),
        ("birth-date-datetime", "format", put("birthDate", "1980-02-03T00:00:00Z")),
        ("active-string", "type", put("active", "true")),
        (
            "qualification-no-code",
            "required",
            put("qualification", [{"issuer": {"reference": "Organization/org-acme"}}]),
        ),
        (
            "qualification-issuer-patient",
            "reference",
            put("qualification", [{"code": {"text": "MD"}, "issuer": {"reference": "Patient/p1"}}]),
        ),
        ("photo-bad-base64", "format", put("photo", [{"contentType": "image/png", "data": "not base64!"}])),
    ]
    if r5:
        pract += [("r4-communication-shape", "other-version", put("communication", [{"text": "English"}]))]
    else:
        pract += [("r5-deceased", "other-version", put("deceasedBoolean", False))]
    role: list[tuple[str, str, Edit]] = [
        ("practitioner-to-organization", "reference", put("practitioner.reference", "Organization/org-acme")),
        ("organization-to-practitioner", "reference", put("organization.reference", "Practitioner/x")),
        ("location-to-organization", "reference", put("location[0].reference", "Organization/org-acme")),
        ("code-not-array", "cardinality", put("code", {"text": "PI"})),
        ("active-number", "type", put("active", 1)),
        ("period-inverted", "invariant", put("period", {"start": "2024-01-01", "end": "2020-01-01"})),
        ("reference-display-number", "type", put("practitioner.display", 3)),
        ("reference-identifier-empty", "empty", put("practitioner.identifier", {})),
    ]
    if r5:
        role += [("r4-available-time", "other-version", put("availableTime", [{"allDay": True}]))]
    else:
        role += [
            ("r5-availability", "other-version", put("availability", [{"availableTime": [{"allDay": True}]}])),
            ("available-day-bogus", "code", put("availableTime", [{"daysOfWeek": ["monday"]}])),
        ]
    return {
        "research-study": study,
        "plan-definition": plan,
        "group": grp,
        "organization": org,
        "location": loc,
        "practitioner": pract,
        "practitioner-role": role,
    }


def _bundle_edits(version: str, kind: str) -> list[tuple[str, str, Edit]]:
    r5 = version == "5.0"
    study = "entry[0].resource"
    sponsor_path = f"{study}.associatedParty[0].party.reference" if r5 else f"{study}.sponsor.reference"
    edits: list[tuple[str, str, Edit]] = [
        ("dangling-protocol", "reference", put(f"{study}.protocol[0].reference", "PlanDefinition/missing")),
        (
            "dangling-urn",
            "reference",
            put(f"{study}.protocol[0].reference", "urn:uuid:7f0c2f7e-1111-4a5b-9d7e-000000000001"),
        ),
        (
            "sponsor-to-wrong-entry",
            "reference",
            put(sponsor_path, "Group/nct01234567-eligibility" if r5 else "Practitioner/nct01234567-person-1"),
        ),
        ("site-to-group-entry", "reference", put(f"{study}.site[0].reference", "Group/nct01234567-eligibility")),
        ("duplicate-fullurl", "reference", put("entry[6].fullUrl", "https://example.org/fhir/Organization/org-acme")),
        (
            "duplicate-resource-id",
            "reference",
            both(
                put("entry[6].resource", {"resourceType": "Organization", "id": "org-acme", "name": "Other"}),
                put("entry[6].fullUrl", "https://example.org/fhir/Organization/org-acme-2"),
            ),
        ),
        ("entry-bad-status", "code", put(f"{study}.status", "bogus")),
        ("entry-missing-status", "required", drop("entry[1].resource.status")),
        ("entry-unknown-element", "unknown", put("entry[2].resource.foo", 1)),
        ("entry-empty", "empty", put("entry[3]", {})),
        ("entry-resource-no-type", "structure", drop("entry[3].resource.resourceType")),
        ("entry-fullurl-space", "format", put("entry[3].fullUrl", "https://example.org/fhir/Organization/org acme")),
        ("type-bogus", "code", put("type", "bag")),
        ("type-missing", "required", drop("type")),
        ("entry-not-array", "cardinality", put("entry", {"resource": {"resourceType": "Organization", "name": "x"}})),
        ("entry-search-in-collection", "invariant", put("entry[3].search", {"mode": "match"})),
        (
            "entry-group-range-inverted",
            "invariant",
            put("entry[2].resource.characteristic[0].valueRange.low.value", 99),
        ),
        ("entry-org-no-name", "invariant", drop("entry[3].resource.name")),
        ("total-in-collection", "invariant", put("total", 7)),
    ]
    if kind == "transaction":
        edits += [
            ("request-missing", "invariant", drop("entry[3].request")),
            ("request-method-bogus", "code", put("entry[3].request.method", "UPSERT")),
            ("request-url-missing", "required", drop("entry[3].request.url")),
        ]
    else:
        edits += [
            (
                "request-in-collection",
                "invariant",
                put("entry[3].request", {"method": "PUT", "url": "Organization/org-acme"}),
            ),
            ("timestamp-no-zone", "format", put("timestamp", "2024-01-02T03:04:05")),
        ]
    return edits


def at(prefix: str, edit: Edit) -> Edit:
    """Apply ``edit`` to the node at ``prefix`` (e.g. one Bundle entry's resource)."""

    def wrapped(resource: dict[str, Any]) -> None:
        parent, last = _parent(resource, prefix)
        edit(parent[last])

    return wrapped


def _extra_edits(base: dict[str, Any]) -> list[tuple[str, str, Edit]]:
    """Edits for converter outputs added under ``extra/``: generic ones on each of the first entries."""
    if base.get("resourceType") != "Bundle":
        return GENERIC[:12]
    edits: list[tuple[str, str, Edit]] = []
    for index, entry in enumerate(base.get("entry", [])[:3]):
        kind = entry["resource"]["resourceType"]
        for what, category, edit in GENERIC[:12]:
            edits.append((f"entry{index}-{kind}-{what}", category, at(f"entry[{index}].resource", edit)))
    edits += [
        # Both the value and its extensions: a primitive given only by extensions is present in
        # FHIR (FHIR.js in the checker calls it missing, a false positive not worth copying).
        ("entry-missing-status", "required", both(drop("entry[0].resource.status"), drop("entry[0].resource._status"))),
        ("entry-status-bogus", "code", put("entry[0].resource.status", "bogus")),
        ("duplicate-fullurl", "reference", put("entry[1].fullUrl", base["entry"][0]["fullUrl"])),
        ("entry-empty", "empty", put("entry[1]", {})),
    ]
    return edits


def mutations(version: str) -> list[Mutation]:
    """Every mutation case of ``version`` (``"4.0"`` or ``"5.0"``), in a stable order."""
    originals = bases(version)
    specific = _specific(version)
    out: list[Mutation] = []
    for base_name, base in originals.items():
        if base_name.startswith("bundle-"):
            edits = _bundle_edits(version, base_name.removeprefix("bundle-"))
        elif base_name.startswith("extra-"):
            edits = _extra_edits(base)
        else:
            edits = GENERIC + specific.get(base_name, [])
        for what, category, edit in edits:
            resource = copy.deepcopy(base)
            edit(resource)
            out.append(Mutation(f"{base_name}--{what}", base_name, category, resource))
    names = [m.name for m in out]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate mutation names: {sorted(duplicates)}")
    return out


def write(directory: Path) -> None:
    """Write originals and mutations of both versions as ``DIR/<r4|r5>/<name>.json``."""
    for version, sub in VERSION_DIRS.items():
        folder = directory / sub
        folder.mkdir(parents=True, exist_ok=True)
        for name, resource in bases(version).items():
            (folder / f"original--{name}.json").write_bytes(orjson.dumps(resource, option=orjson.OPT_INDENT_2))
        for mutation in mutations(version):
            (folder / f"{mutation.name}.json").write_bytes(orjson.dumps(mutation.resource, option=orjson.OPT_INDENT_2))


def record(directory: Path) -> dict[str, Any]:
    """Read ``DIR/report-<r4|r5>.json`` (``check --json``) into the verdict file: name -> flagged."""
    verdicts: dict[str, Any] = {"checker": "shared/conformance/check", "versions": {}}
    for version, sub in VERSION_DIRS.items():
        report = orjson.loads((directory / f"report-{sub}.json").read_bytes())
        flagged: dict[str, bool] = {}
        for item in report["resources"]:
            stem = Path(item["file"]).stem
            errors = any(issue["severity"] == "error" for issue in item["issues"])
            flagged[stem] = flagged.get(stem, False) or errors
        for path in report.get("unreadable", []):
            flagged[Path(str(path)).stem] = True
        verdicts["versions"][version] = dict(sorted(flagged.items()))
    VERDICTS.write_bytes(orjson.dumps(verdicts, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return verdicts


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    if command == "write":
        write(target)
    elif command == "record":
        record(target)
    else:
        raise SystemExit("usage: python -m tests.mutations.mutations write|record DIR")
