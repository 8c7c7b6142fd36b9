"""Eligibility Group (R5): every characteristic kind, every code-table row, the seed trial, the corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapter.readers import read_items
from adapter.readers.ctgov_json import read_study
from adapter.readers.ctgov_xml import read_clinical_study
from adapter.record import Eligibility, SourceInfo, TrialRecord
from adapter.validation.packages import iter_package_json
from mappings import ids
from mappings.codes import table
from mappings.criteria import split_criteria
from mappings.fhir import CTGOV_ENUM, UCUM
from mappings.group import (
    ADMINISTRATIVE_GENDER,
    age_in_days,
    characteristic_code,
    parse_age,
    to_fhir_group,
    yes_no,
)

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "fixtures" / "seed"
CORPUS = ROOT.parent / "shared" / "corpus"

LOINC = "http://loinc.org"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"

R4_GROUP_ELEMENTS = {
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "active", "type", "actual", "code", "name", "quantity",
    "managingEntity", "characteristic", "member",
}  # fmt: skip
R4_CHARACTERISTIC_ELEMENTS = {
    "id", "extension", "modifierExtension", "code", "valueCodeableConcept", "valueBoolean", "valueQuantity",
    "valueRange", "valueReference", "exclude", "period",
}  # fmt: skip


def _record(registry_id: str = "NCT00000001", **eligibility: Any) -> TrialRecord:
    return TrialRecord(
        source=SourceInfo(registry="ctgov", format="ctgov-v2-json"),
        registry_id=registry_id,
        eligibility=Eligibility(**eligibility),
    )


def _of(group: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    code = characteristic_code(kind)
    return [c for c in group.get("characteristic", []) if c["code"] == code]


def _one(group: dict[str, Any], kind: str) -> dict[str, Any]:
    found = _of(group, kind)
    assert len(found) == 1, (kind, found)
    return found[0]


# --- resource shape ---------------------------------------------------------------------------------


def test_shape_and_ids() -> None:
    record = _record(criteria="Inclusion Criteria:\n\n* Adults", sex="ALL")
    group = to_fhir_group(record)
    assert group["resourceType"] == "Group"
    assert group["id"] == ids.eligibility_group_id(record) == "nct00000001-eligibility"
    assert group["type"] == "person"
    assert group["membership"] == "definitional"
    assert group["name"] == "Eligibility criteria for NCT00000001"
    assert group["description"] == "Inclusion Criteria:\n\n* Adults"
    for characteristic in group["characteristic"]:
        assert set(characteristic) <= R4_CHARACTERISTIC_ELEMENTS
        assert isinstance(characteristic["exclude"], bool)
        assert sum(key.startswith("value") for key in characteristic) == 1


def test_only_membership_and_description_are_r5_only() -> None:
    record = _record(
        criteria="* Adults", minimum_age="18 Years", sex="FEMALE", gender_based=True, gender_description="x",
        healthy_volunteers=True, std_ages=["ADULT"], sampling_method="PROBABILITY_SAMPLE", study_population="y",
    )  # fmt: skip
    group = to_fhir_group(record)
    assert set(group) - R4_GROUP_ELEMENTS == {"membership", "description"}


def test_empty_eligibility_still_gives_a_valid_group() -> None:
    group = to_fhir_group(_record())
    assert group == {
        "resourceType": "Group",
        "id": "nct00000001-eligibility",
        "type": "person",
        "membership": "definitional",
        "name": "Eligibility criteria for NCT00000001",
    }


def test_deterministic() -> None:
    record = read_clinical_study((SEED / "NCT01854957.xml").read_bytes())
    assert json.dumps(to_fhir_group(record)) == json.dumps(to_fhir_group(record.model_copy(deep=True)))


# --- age ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "row"), sorted(table("age_unit").items()))
def test_age_unit_rows(word: str, row: dict[str, Any]) -> None:
    assert parse_age(f"3 {word.capitalize()}") == {"value": 3, "unit": row["unit"], "system": UCUM, "code": row["code"]}
    assert age_in_days({"value": 2, "code": row["code"]}) == pytest.approx(2 * row["days"])


def test_age_range() -> None:
    group = to_fhir_group(_record(minimum_age="18 Years", maximum_age="50 Years"))
    age = _one(group, "age")
    assert age["code"]["coding"] == [{"system": LOINC, "code": "30525-0", "display": "Age"}]
    assert age["valueRange"] == {
        "low": {"value": 18, "unit": "years", "system": UCUM, "code": "a"},
        "high": {"value": 50, "unit": "years", "system": UCUM, "code": "a"},
    }
    assert age["exclude"] is False


def test_age_units_are_kept_as_registered() -> None:
    age = _one(to_fhir_group(_record(minimum_age="6 Months", maximum_age="17 Years")), "age")
    assert age["valueRange"]["low"] == {"value": 6, "unit": "months", "system": UCUM, "code": "mo"}
    assert age["valueRange"]["high"]["code"] == "a"


@pytest.mark.parametrize(
    ("minimum", "maximum", "expected"),
    [
        ("18 Years", None, {"low": {"value": 18, "unit": "years", "system": UCUM, "code": "a"}}),
        ("N/A", "28 Days", {"high": {"value": 28, "unit": "days", "system": UCUM, "code": "d"}}),
        ("1 Year", "N/A", {"low": {"value": 1, "unit": "year", "system": UCUM, "code": "a"}}),
        ("1.5 Years", None, {"low": {"value": 1.5, "unit": "years", "system": UCUM, "code": "a"}}),
    ],
)
def test_open_bounds(minimum: str | None, maximum: str | None, expected: dict[str, Any]) -> None:
    age = _one(to_fhir_group(_record(minimum_age=minimum, maximum_age=maximum)), "age")
    assert age["valueRange"] == expected


@pytest.mark.parametrize(("minimum", "maximum"), [(None, None), ("N/A", "N/A")])
def test_no_age_limits_no_age_characteristic(minimum: str | None, maximum: str | None) -> None:
    assert _of(to_fhir_group(_record(minimum_age=minimum, maximum_age=maximum)), "age") == []


def test_minimum_above_maximum_is_kept_as_text_not_as_an_invalid_range() -> None:
    for minimum, maximum in (("50 Years", "18 Years"), ("2 Hours", "90 Minutes"), ("13 Months", "1 Year")):
        age = _one(to_fhir_group(_record(minimum_age=minimum, maximum_age=maximum)), "age")
        assert "valueRange" not in age
        assert age["valueCodeableConcept"]["text"] == (
            f"minimum age {minimum}; maximum age {maximum} (the registry's minimum is above its maximum)"
        )
    # Equal bounds are a valid range (rng-2 is low <= high).
    age = _one(to_fhir_group(_record(minimum_age="12 Months", maximum_age="1 Year")), "age")
    assert age["valueRange"]["low"]["value"] == 12


def test_unreadable_age_is_kept_as_text() -> None:
    age = _one(to_fhir_group(_record(minimum_age="about 12", maximum_age="65 Years")), "age")
    assert age["valueCodeableConcept"] == {"text": "minimum age about 12; maximum age 65 Years"}
    with pytest.raises(ValueError):
        parse_age("12 Fortnights")


# --- sex, flags, age groups, observational --------------------------------------------------------


@pytest.mark.parametrize(("code", "row"), sorted(table("sex").items()))
def test_sex_rows(code: str, row: dict[str, Any]) -> None:
    sex = _one(to_fhir_group(_record(sex=code)), "sex")
    assert sex["code"]["coding"] == [{"system": LOINC, "code": "46098-0", "display": "Sex"}]
    expected = [{"system": CTGOV_ENUM + "Sex", "code": code, "display": row["display"]}]
    if row["gender"]:
        expected.insert(0, {"system": ADMINISTRATIVE_GENDER, "code": row["gender"], "display": row["display"]})
    assert sex["valueCodeableConcept"] == {"coding": expected, "text": row["display"]}
    assert sex["exclude"] is False


def test_unknown_sex_value_is_text_only() -> None:
    assert _one(to_fhir_group(_record(sex="BOTH")), "sex")["valueCodeableConcept"] == {"text": "BOTH"}


def test_gender_based_and_description() -> None:
    group = to_fhir_group(_record(gender_based=True, gender_description="Trans men \\< 30 welcome"))
    assert _one(group, "gender_based")["valueCodeableConcept"] == yes_no(True)
    assert _one(group, "gender_description")["valueCodeableConcept"] == {"text": "Trans men < 30 welcome"}
    assert _one(to_fhir_group(_record(gender_based=False)), "gender_based")["valueCodeableConcept"] == yes_no(False)


@pytest.mark.parametrize(("value", "row"), [(True, "true"), (False, "false")])
def test_healthy_volunteers_and_yes_no_rows(value: bool, row: str) -> None:
    characteristic = _one(to_fhir_group(_record(healthy_volunteers=value)), "healthy_volunteers")
    expected = table("yes_no")[row]
    assert characteristic == {
        "code": {"text": "Accepts healthy volunteers"},
        "valueCodeableConcept": {"coding": [expected], "text": expected["display"]},
        "exclude": False,
    }
    assert set(table("yes_no")) == {"true", "false"}


def test_healthy_volunteers_not_stated() -> None:
    assert _of(to_fhir_group(_record()), "healthy_volunteers") == []


@pytest.mark.parametrize(("code", "display"), sorted(table("std_age").items()))
def test_std_age_rows(code: str, display: str) -> None:
    characteristic = _one(to_fhir_group(_record(std_ages=[code])), "std_age")
    assert characteristic["valueCodeableConcept"] == {
        "coding": [{"system": CTGOV_ENUM + "StandardAge", "code": code, "display": display}],
        "text": display,
    }


def test_each_std_age_is_a_characteristic_in_order() -> None:
    group = to_fhir_group(_record(std_ages=["ADULT", "OLDER_ADULT", "INFANT"]))
    values = [c["valueCodeableConcept"] for c in _of(group, "std_age")]
    assert [v["text"] for v in values] == ["Adult", "Older Adult", "INFANT"]
    assert "coding" not in values[2], "a value CT.gov does not define gets no CT.gov coding"


@pytest.mark.parametrize(("code", "display"), sorted(table("sampling_method").items()))
def test_sampling_method_rows(code: str, display: str) -> None:
    characteristic = _one(to_fhir_group(_record(sampling_method=code)), "sampling_method")
    assert characteristic["valueCodeableConcept"] == {
        "coding": [{"system": CTGOV_ENUM + "SamplingMethod", "code": code, "display": display}],
        "text": display,
    }


def test_study_population_and_unknown_sampling_method() -> None:
    group = to_fhir_group(_record(study_population="Adults seen at \\<5 clinics", sampling_method="SNOWBALL"))
    assert _one(group, "study_population")["valueCodeableConcept"] == {"text": "Adults seen at <5 clinics"}
    assert _one(group, "sampling_method")["valueCodeableConcept"] == {"text": "SNOWBALL"}


@pytest.mark.parametrize(("kind", "row"), sorted(table("eligibility_characteristic").items()))
def test_characteristic_code_rows(kind: str, row: dict[str, Any]) -> None:
    code = characteristic_code(kind)
    assert code["text"] == row["text"]
    if "code" in row:
        assert code["coding"] == [{"system": row["system"], "code": row["code"], "display": row["display"]}]
    else:
        assert "coding" not in code


def test_ctgov_enum_values_exist_in_the_v2_schema() -> None:
    spec = CORPUS / "schemas" / "ctg-oas-v2_2.0.5.yaml"
    if not spec.exists():
        pytest.skip("corpus schemas not available")
    text = spec.read_text(encoding="utf-8")
    for enum, name in (("Sex", "sex"), ("StandardAge", "std_age"), ("SamplingMethod", "sampling_method")):
        block = re.search(rf"\n    {enum}:\n      type: \"string\"\n      enum:\n((?:      - \"[A-Z_]+\"\n)+)", text)
        assert block is not None, enum
        assert set(table(name)) == set(re.findall(r"\"([A-Z_]+)\"", block.group(1))), enum


def test_administrative_gender_codes_exist_in_r5() -> None:
    wanted = "CodeSystem-administrative-gender.json"
    [(_, system)] = iter_package_json("hl7.fhir.r5.core", "5.0.0", lambda name: name == wanted)
    codes = {c["code"] for c in system["concept"]}
    assert {row["gender"] for row in table("sex").values() if row["gender"]} <= codes


# --- criteria -------------------------------------------------------------------------------------


def test_one_characteristic_per_criterion() -> None:
    text = (
        "Inclusion Criteria:\n\n* Adults\n\nPATIENT CHARACTERISTICS:\n\nAge\n\n* 18 and over\n\n"
        "Exclusion Criteria:\n\n* Pregnancy"
    )
    group = to_fhir_group(_record(criteria=text))
    inclusion, exclusion = _of(group, "inclusion"), _of(group, "exclusion")
    assert [(c["valueCodeableConcept"]["text"], c["exclude"]) for c in inclusion] == [
        ("Adults", False),
        ("PATIENT CHARACTERISTICS / Age: 18 and over", False),
    ]
    assert [(c["valueCodeableConcept"]["text"], c["exclude"]) for c in exclusion] == [("Pregnancy", True)]
    assert inclusion[0]["code"]["coding"] == [{"system": NCIT, "code": "C25532", "display": "Inclusion Criteria"}]
    assert exclusion[0]["code"]["coding"] == [{"system": NCIT, "code": "C25370", "display": "Exclusion Criteria"}]
    assert group["characteristic"][-3:] == inclusion + exclusion, "criteria come last, in document order"


def test_seed_trial() -> None:
    """MESEMS: age 18-50, all sexes, no healthy volunteers, adult, 4 inclusion and 14 exclusion criteria."""
    record = read_clinical_study((SEED / "NCT01854957.xml").read_bytes())
    group = to_fhir_group(record)
    assert group["id"] == "nct01854957-eligibility"
    assert _one(group, "age")["valueRange"]["high"]["value"] == 50
    assert _one(group, "sex")["valueCodeableConcept"]["text"] == "All"
    assert _one(group, "healthy_volunteers")["valueCodeableConcept"]["coding"][0]["code"] == "N"
    assert _one(group, "std_age")["valueCodeableConcept"]["coding"][0]["code"] == "ADULT"
    inclusion = _of(group, "inclusion")
    assert len(inclusion) == 4 and len(_of(group, "exclusion")) == 14
    assert inclusion[0]["valueCodeableConcept"]["text"].startswith("Diagnosis of MS\n  a. Relapsing remitting MS")
    assert inclusion[1]["valueCodeableConcept"]["text"] == "Age 18 to 50 years"
    v2 = SEED / "NCT01854957.json"
    if v2.exists():
        other = to_fhir_group(read_study(json.loads(v2.read_text(encoding="utf-8"))))
        # The readers write the description's markdown differently ("\\- 1." / "* 1\\."); nothing else differs.
        assert other["characteristic"] == group["characteristic"]


def test_every_fixture() -> None:
    """All registry fixtures (v2 JSON, legacy XML, WHO ICTRP), through the format-detecting reader."""
    records = []
    for path in sorted((ROOT / "fixtures").rglob("*")):
        if path.suffix in (".json", ".xml") and "golden" not in path.parts:
            records += [item.record for item in read_items(path.read_bytes(), str(path)) if item.record]
    assert len(records) >= 20
    for record in records:
        group = to_fhir_group(record)
        criteria = split_criteria(record.eligibility.criteria)
        assert len(_of(group, "inclusion")) + len(_of(group, "exclusion")) == len(criteria), record.registry_id
        assert group.get("description") == ((record.eligibility.criteria or "").strip() or None)


def test_every_corpus_age_parses_and_none_is_inverted() -> None:
    """Every minimum/maximum age string of the corpus is read; none has its minimum above its maximum."""
    if not (CORPUS / "ctgov-xml").is_dir():
        pytest.skip("corpus not available")
    pairs: list[tuple[str, str | None, str | None]] = []
    for path in sorted((CORPUS / "ctgov-v2-json").glob("*.json")):
        module = json.loads(path.read_text(encoding="utf-8"))["protocolSection"].get("eligibilityModule", {})
        pairs.append((path.name, module.get("minimumAge"), module.get("maximumAge")))
    for path in sorted((CORPUS / "ctgov-xml").glob("*.xml")):
        eligibility = etree.parse(str(path)).find(".//eligibility")
        if eligibility is not None:
            pairs.append((path.name, eligibility.findtext("minimum_age"), eligibility.findtext("maximum_age")))
    assert len(pairs) > 3400
    inverted = []
    for name, minimum, maximum in pairs:
        low, high = parse_age(minimum), parse_age(maximum)
        if low and high and age_in_days(low) > age_in_days(high):
            inverted.append(name)
    assert inverted == []


_EDGE_ELIGIBILITIES: list[dict[str, Any]] = [
    {},
    {"minimum_age": "18 Years"},
    {"maximum_age": "65 Years"},
    {"minimum_age": "eighteen", "maximum_age": ""},
    {"sex": "", "gender_description": " ", "std_ages": ["", "ADULT", "SOMETHING_NEW"], "sampling_method": ""},
    {"sex": "NOT_A_SEX", "sampling_method": "NEW_METHOD", "study_population": "\\ ", "gender_based": False},
    {"criteria": "Inclusion Criteria:\n\n* \n* a\n\nExclusion Criteria:\n\n*  b  \n", "healthy_volunteers": True},
]


@pytest.mark.parametrize("eligibility", _EDGE_ELIGIBILITIES)
def test_characteristics_are_built_clean(eligibility: dict[str, Any]) -> None:
    """``BUILT_CLEAN``: compaction keeps characteristics whole, so their builders must leave out every
    empty value themselves, exactly as compaction would have (edge cases and every fixture)."""
    from mappings.fhir import compact
    from mappings.group import BUILT_CLEAN

    assert {"characteristic"} == BUILT_CLEAN
    group = to_fhir_group(_record(**eligibility))
    assert compact(group) == group


def test_fixture_characteristics_are_built_clean() -> None:
    from mappings.fhir import compact

    for path in sorted((ROOT / "fixtures").rglob("*.xml")) + sorted((ROOT / "fixtures").rglob("*.json")):
        if "golden" in path.parts:
            continue
        for item in read_items(path.read_bytes(), path.name):
            if item.record is not None:
                group = to_fhir_group(item.record)
                assert compact(group) == group, path.name
