"""The compiled structure check (``adapter.validation.fast``): the shortcut ``--validate structure`` takes.

That it is never looser than the walker is tested on the mutation suite
(``tests/mutations/test_mutation_suite.py``); here: its regexes, and that converter output takes
the shortcut (a check that said no to everything would be correct, and no faster).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_core import SchemaValidator, ValidationError

from adapter.pipeline import convert_bytes
from adapter.validation import resource_issues
from adapter.validation.definitions import load_definitions
from adapter.validation.fast import _Compiler, ascii_classes, fast_structure

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
VERSIONS = ("4.0", "5.0")

SAMPLES = [
    "a", "abc", " a", "a ", "a  b", "a\tb", "a\nb", "a\rb", "a\x0bb", "a\x0cb", "a\u00a0b", "\u00a0", "\u2003",
    "a\u2028b", "x\n", "\n", "0", "00", "-0", "+1", "12", "-12", "1.5", "1e5", "1.5E-3", "\u0661\u0662", "\uff11",
    "2024", "2024-02", "2024-02-30", "2024-13-01", "2024-02-29T10:00:00Z", "2024-02-29T10:00:00+14:00",
    "2024-02-29T24:00:00Z", "10:00:00", "urn:oid:1.2.3", "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "QUJD", "QUJD\n", "QQ==", "http://x.org/a b", "ab_c", "A-b.9", "é", "日本",
]  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_primitive_regexes_match_as_the_walker_matches(version: str) -> None:
    definitions = load_definitions(version)
    compiler = _Compiler(definitions)
    checked = 0
    for typedef in definitions.types.values():
        if typedef.kind != "primitive-type" or typedef.json_kind != "string" or not typedef.regex:
            continue
        walker = re.compile(typedef.regex, re.ASCII)
        fast = SchemaValidator(compiler._string(typedef.regex, None))
        for sample in SAMPLES:
            try:
                fast.validate_python(sample)
                accepted = True
            except ValidationError:
                accepted = False
            assert accepted == bool(walker.fullmatch(sample)), (typedef.name, sample)
            checked += 1
    assert checked >= 14 * len(SAMPLES)  # every string primitive with a regex


def test_ascii_classes_spells_out_the_shorthands() -> None:
    assert ascii_classes(r"[^\s]+") == r"[^[\t\n\x0B\x0C\r ]]+"
    assert ascii_classes(r"\d\.\\s") == r"[0-9]\.\\s"


@pytest.mark.parametrize("version", VERSIONS)
def test_converter_output_takes_the_shortcut(version: str) -> None:
    fast = fast_structure(version)
    paths = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".json", ".xml") and "golden" not in p.parts)
    seen = 0
    for path in paths:
        for converted in convert_bytes(path.read_bytes(), str(path), version):
            for resource in converted.resources:
                assert fast.accepts(resource), f"{path.name}: {resource['resourceType']}/{resource['id']}"
                seen += 1
    assert seen > 500


@pytest.mark.parametrize("version", VERSIONS)
def test_a_no_is_left_to_the_walker(version: str) -> None:
    fast = fast_structure(version)
    two_values = {
        "resourceType": "Organization",
        "id": "o",
        "name": "N",
        "extension": [{"url": "http://example.org/x", "valueString": "a", "valueBoolean": True}],
    }
    empty_coding = {"resourceType": "Organization", "id": "o", "type": [{"coding": [{}]}]}
    bad_target = {"resourceType": "Organization", "id": "o", "partOf": {"reference": "Patient/p"}}
    for resource in (two_values, empty_coding, bad_target):
        assert not fast.accepts(resource)
        assert any(i.is_error for i in resource_issues(resource, version, invariants=False))
    assert not fast.accepts({"resourceType": "Bundle", "type": "collection"})
    assert not fast.accepts({"resourceType": "NoSuchType"})
    assert not fast.accepts([])


def _organization(**elements: object) -> dict[str, object]:
    return {"resourceType": "Organization", "id": "o", "name": "N", **elements}


# Values the Rust-only forms (plain references, calendar dates, codes of required bindings,
# elements holding their usual part, one type of a required choice) decide alone, next to values
# they leave to the Python checks behind them: the verdict must be the walker's either way.
_EXACT_CASES = {
    "reference": [
        _organization(partOf={"reference": ref, "display": "P"})
        for ref in (
            "Organization/a-1.b",
            "http://example.org/fhir/Organization/a",
            "Organization/a/_history/2",
            "https://x.org/Organization/a/_history/b",
            "Patient/p",
            "Nope/p",
            "Organization/",
            "Organization/a b",
            "Organization/a\n",
            "http://x\x0b.org/Organization/a",
            "#a",
            "#",
            "urn:uuid:1234",
            "Organization?name=x",
            "organization/a",
            "Organization/" + "a" * 65,
            "http://x.org/_history/Organization/a",
        )
    ]
    + [
        _organization(partOf={"display": "P"}),
        _organization(partOf={"type": "Organization", "reference": "Organization/a"}),
        _organization(partOf={"type": "Patient", "reference": "Organization/a"}),
        _organization(partOf={"type": "Patient"}),
        _organization(partOf={}),
        _organization(partOf={"id": "x"}),
        _organization(partOf={"identifier": {"value": "1"}}),
    ],
    "calendar": [
        {"resourceType": "Practitioner", "id": "p", **elements}
        for day in (
            "2024",
            "2024-02",
            "2024-02-28",
            "2024-02-29",
            "2023-02-29",
            "2024-02-30",
            "2024-04-30",
            "2024-04-31",
            "2024-01-31",
            "2024-12-31",
            "2024-11-31",
            "2024-02-29T10:00:00Z",
            "2023-02-29T10:00:00+01:00",
            "2024-01-01T10:00:00",
            "2024-01-01T10:00:00.5-14:00",
            "2024-01-01Z",
            "2024-00-10",
            "2024-1-10",
        )
        for elements in (
            {"birthDate": day},
            {"qualification": [{"code": {"text": "MD"}, "period": {"start": day}}]},
        )
    ],
    "code": [
        {"resourceType": "Practitioner", "id": "p", "telecom": [{"system": code, "value": "1"}]}
        for code in ("phone", "email", "other", "Phone", "phone ", "", "pager", "sms", "x y")
    ],
    "empty": [
        _organization(type=[concept])
        for concept in (
            {"coding": [{"system": "http://x.org", "code": "a"}]},
            {"text": "t"},
            {"coding": [{"display": "d"}]},
            {"coding": [{"version": "1"}]},
            {"coding": [{}]},
            {"coding": [{"id": "i"}]},
            {},
            {"id": "i"},
            {"extension": [{"url": "http://x.org", "valueString": "v"}]},
            {"coding": [{"code": "a", "_code": {}}]},
            {"text": "t", "_text": {"extension": [{"url": "http://x.org", "valueString": "v"}]}},
            {"text": "t", "_text": {"id": "i"}},
        )
    ],
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", sorted(_EXACT_CASES))
def test_rust_only_forms_give_the_walkers_verdict(version: str, kind: str) -> None:
    fast = fast_structure(version)
    accepted = 0
    for resource in _EXACT_CASES[kind]:
        clean = not any(i.is_error for i in resource_issues(resource, version, invariants=False))
        assert fast.accepts(resource) == clean, resource
        accepted += clean
    assert 0 < accepted < len(_EXACT_CASES[kind])


@pytest.mark.parametrize("version", VERSIONS)
def test_one_type_of_a_required_choice_element(version: str) -> None:
    fast = fast_structure(version)
    code = {"coding": [{"system": "http://x.org", "code": "c"}]}
    cases = [
        {"valueCodeableConcept": code}, {"valueBoolean": True}, {"valueRange": {"low": {"value": 1}}},
        {"valueBoolean": True, "_valueBoolean": {"id": "x"}}, {"_valueBoolean": {"extension": []}},
        {}, {"valueBoolean": True, "valueCodeableConcept": code}, {"valueBoolean": None}, {"valueInteger": 1},
    ]  # fmt: skip
    accepted = 0
    for value in cases:
        characteristic = {"code": code, "exclude": False, **value}
        group = {"resourceType": "Group", "id": "g", "type": "person", "characteristic": [characteristic]}
        group.update({"actual": True} if version == "4.0" else {"membership": "definitional"})
        clean = not any(i.is_error for i in resource_issues(group, version, invariants=False))
        # the fast check may be stricter than the walker, never looser
        assert not fast.accepts(group) or clean, value
        accepted += fast.accepts(group)
    assert accepted >= 3
