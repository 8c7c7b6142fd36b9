"""No false errors on HL7's own example resources (npm ``hl7.fhir.r4.examples`` / ``hl7.fhir.r5.examples``)."""

from __future__ import annotations

import pytest

from adapter.validation import resource_issues
from adapter.validation.packages import example_resources

TYPES = {"ResearchStudy", "PlanDefinition", "Group", "Organization", "Location", "Practitioner", "PractitionerRole"}


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_official_examples_have_no_errors(version: str) -> None:
    examples = list(example_resources(version, TYPES))
    seen = {resource["resourceType"] for _, resource in examples}
    assert {"ResearchStudy", "PlanDefinition", "Group", "Organization"} <= seen
    assert len(examples) > 40
    false_errors = {
        name: [(i.code, i.expression, i.diagnostics) for i in resource_issues(resource, version) if i.is_error]
        for name, resource in examples
    }
    assert {name: found for name, found in false_errors.items() if found} == {}


def test_official_r5_examples_as_fhir_xml_have_no_errors() -> None:
    # fhir.resources writes R5 XML, which exercises the XML -> JSON conversion on real resources.
    import importlib

    from adapter.validation import validate_bytes

    checked = 0
    for name, resource in example_resources("5.0", TYPES):
        model = getattr(
            importlib.import_module(f"fhir.resources.{resource['resourceType'].lower()}"), resource["resourceType"]
        )
        xml = model.model_validate(resource).model_dump_xml()
        outcome = validate_bytes(xml.encode() if isinstance(xml, str) else xml, "5.0")
        assert [i for i in outcome["issue"] if i["severity"] in ("fatal", "error")] == [], name
        checked += 1
    assert checked > 40
