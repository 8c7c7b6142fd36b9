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
