"""Eligibility -> FHIR R5 ``Group`` (``membership: definitional``): who may take part in the study.

Every eligibility fact of the record is a ``characteristic`` (R5 ``code``, ``value[x]``,
``exclude``; all of them also exist in R4), in this order:

* age: LOINC 30525-0 with a ``valueRange`` of UCUM quantities in the unit the registry used
  ("6 Months" stays 6 ``mo``); a missing bound stays open.  When the registry's minimum is above
  its maximum (a registry data error) both are kept as text in a ``valueCodeableConcept`` rather
  than emitting a Range that breaks ``rng-2``; an age the parser cannot read is kept the same way.
* sex: LOINC 46098-0; FEMALE/MALE as administrative-gender plus the CT.gov ``Sex`` coding.
  ALL is emitted too, coded with the CT.gov enum only ("All"): the registry did state that
  every sex may take part, and leaving it out would not tell "all" from "not stated".
* gender-based eligibility (yes/no) and the gender eligibility description (text);
* accepts healthy volunteers (yes/no).  Yes/no facts are HL7 yes/no indicator codings
  (v2-0532 ``Y``/``N``) rather than ``valueBoolean``: FHIR.js, one of the conformance
  validators, wrongly reports a required ``value[x]`` as missing when it is ``false``;
* each CT.gov standard age group (CT.gov ``StandardAge`` coding);
* observational studies: sampling method (CT.gov ``SamplingMethod`` coding) and the study
  population description (text);
* one characteristic per criterion of the free text (``mappings.criteria``): code NCI
  Thesaurus "Inclusion Criteria"/"Exclusion Criteria", ``exclude`` false/true, value text the
  criterion, prefixed with its heading path when it has one ("PATIENT CHARACTERISTICS / Age: 18
  and over"): R5 characteristics have no description, and a criterion such as "Not specified"
  means nothing without its heading.

Characteristics other than the criteria are registry facts about the population, not traits
to test one by one: "Accepts healthy volunteers: Yes" allows healthy people, it does not
require them, and a Group listing "Adult" and "Older Adult" means either.  Matching engines
should read them that way.

``description`` holds the registry's criteria text unchanged (markdown).  R5-only elements
emitted: ``membership`` and ``description`` (R4 needs ``actual: false`` instead, and has no home
for ``description``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from adapter.record import Eligibility, TrialRecord
from mappings import ids
from mappings.codes import table
from mappings.criteria import split_criteria, unescape_markdown
from mappings.fhir import UCUM, coding, compact_resource, concept, ctgov_coding

ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)")
_NOT_GIVEN = {"n/a", "na", "none", "not applicable", ""}

Characteristic = dict[str, Any]


def to_fhir_group(record: TrialRecord) -> dict[str, Any]:
    """The eligibility Group of a record (always produced: the ResearchStudy refers to it)."""
    eligibility = record.eligibility
    characteristics = [
        *_age(eligibility),
        *_sex(eligibility),
        *_flags(eligibility),
        *_standard_ages(eligibility),
        *_observational(eligibility),
        *_criteria(eligibility),
    ]
    return compact_resource(
        {
            "resourceType": "Group",
            "id": ids.eligibility_group_id(record),
            "type": "person",
            "membership": "definitional",
            "name": f"Eligibility criteria for {record.registry_id}",
            "description": eligibility.criteria,
            "characteristic": characteristics,
        },
        BUILT_CLEAN,
    )


BUILT_CLEAN = frozenset({"characteristic"})
"""Characteristics are built without empty values (``_value`` and ``_text`` leave out what
compaction would drop), so compaction keeps them whole: one eligibility criterion each, they
were most of the Group's nodes.  ``tests/mappings/test_group.py`` holds the builders to it."""


def characteristic_code(kind: str) -> dict[str, Any]:
    """``code`` of a characteristic kind from ``codes/eligibility_characteristic.json``."""
    # A new dict per call (one per criterion): resources must not share parts, R4 conversion
    # rewrites some in place; only the table lookup is cached.
    code, text = _code_parts(kind)
    out: dict[str, Any] = {"coding": [dict(code)]} if code else {}
    if text:
        out["text"] = text
    return out


@cache
def _code_parts(kind: str) -> tuple[dict[str, str] | None, str]:
    row = table("eligibility_characteristic")[kind]
    return (coding(row["system"], row["code"], row.get("display")) if "code" in row else None), row["text"]


def _characteristic(kind: str, exclude: bool = False, **value: Any) -> Characteristic:
    return {"code": characteristic_code(kind), **value, "exclude": exclude}


def _value(concept_: dict[str, Any]) -> dict[str, Any]:
    """``valueCodeableConcept=concept_`` for ``_characteristic``, nothing when the concept is empty."""
    return {"valueCodeableConcept": concept_} if concept_ else {}


def _text(text: str) -> dict[str, Any]:
    """A text-only value for ``_characteristic``: stripped, nothing when that leaves no text."""
    text = text.strip()
    return {"valueCodeableConcept": {"text": text}} if text else {}


# --- age -----------------------------------------------------------------------------------------


def parse_age(text: str | None) -> dict[str, Any] | None:
    """``"18 Years"`` -> UCUM Quantity ``{value: 18, unit: "years", system, code: "a"}``.

    ``None`` for an absent bound (``None``, ``N/A``); raises ``ValueError`` for text that is not
    a number and a known unit, so the caller can keep it as text instead of guessing.
    """
    if text is None or text.strip().casefold() in _NOT_GIVEN:
        return None
    match = _AGE.fullmatch(text.strip())
    units = table("age_unit")
    if match is None or match.group(2).casefold() not in units:
        raise ValueError(f"not an age: {text!r}")
    number = float(match.group(1))
    unit = units[match.group(2).casefold()]
    value: int | float = int(number) if number.is_integer() else number
    return {"value": value, "unit": unit["unit"], "system": UCUM, "code": unit["code"]}


def age_in_days(quantity: dict[str, Any]) -> float:
    """Approximate length of an age Quantity from ``parse_age``, to compare a minimum with a maximum."""
    days = next(row["days"] for row in table("age_unit").values() if row["code"] == quantity["code"])
    return float(quantity["value"]) * days


def _age(eligibility: Eligibility) -> list[Characteristic]:
    low_text, high_text = eligibility.minimum_age, eligibility.maximum_age
    try:
        low, high = parse_age(low_text), parse_age(high_text)
    except ValueError:
        return [_age_as_text(low_text, high_text, "")]
    if low is None and high is None:
        return []
    if low is not None and high is not None and age_in_days(low) > age_in_days(high):
        return [_age_as_text(low_text, high_text, " (the registry's minimum is above its maximum)")]
    bounds = {"low": low} if low is not None else {}
    if high is not None:
        bounds["high"] = high
    return [_characteristic("age", valueRange=bounds)]


def _age_as_text(low: str | None, high: str | None, note: str) -> Characteristic:
    parts = [f"minimum age {low}" if low else "", f"maximum age {high}" if high else ""]
    text = "; ".join(p for p in parts if p) + note
    return _characteristic("age", **_text(text))


# --- sex, flags, age groups, observational population ---------------------------------------------


def _sex(eligibility: Eligibility) -> list[Characteristic]:
    if not eligibility.sex:
        return []
    row = table("sex").get(eligibility.sex)
    if row is None:
        # A value CT.gov has not defined (yet): keep it as written.
        return [_characteristic("sex", **_text(eligibility.sex))]
    gender = coding(ADMINISTRATIVE_GENDER, row["gender"], row["display"]) if row["gender"] else None
    value = concept(gender, ctgov_coding("Sex", eligibility.sex, row["display"]), text=row["display"])
    return [_characteristic("sex", **_value(value))]


def yes_no(value: bool) -> dict[str, Any]:
    """A registry yes/no fact as an HL7 yes/no indicator (see ``codes/yes_no.json`` for why not ``valueBoolean``)."""
    row = table("yes_no")["true" if value else "false"]
    return concept(coding(row["system"], row["code"], row["display"]), text=row["display"])


def _flags(eligibility: Eligibility) -> list[Characteristic]:
    out = []
    if eligibility.gender_based is not None:
        out.append(_characteristic("gender_based", valueCodeableConcept=yes_no(eligibility.gender_based)))
    if eligibility.gender_description:
        text = unescape_markdown(eligibility.gender_description)
        out.append(_characteristic("gender_description", **_text(text)))
    if eligibility.healthy_volunteers is not None:
        out.append(_characteristic("healthy_volunteers", valueCodeableConcept=yes_no(eligibility.healthy_volunteers)))
    return out


def _standard_ages(eligibility: Eligibility) -> list[Characteristic]:
    names = table("std_age")
    out = []
    for code in eligibility.std_ages:
        display = names.get(code)
        value = concept(ctgov_coding("StandardAge", code, display) if display else None, text=display or code)
        out.append(_characteristic("std_age", **_value(value)))
    return out


def _observational(eligibility: Eligibility) -> list[Characteristic]:
    out = []
    if eligibility.sampling_method:
        code = eligibility.sampling_method
        display = table("sampling_method").get(code)
        value = concept(ctgov_coding("SamplingMethod", code, display) if display else None, text=display or code)
        out.append(_characteristic("sampling_method", **_value(value)))
    if eligibility.study_population:
        text = unescape_markdown(eligibility.study_population)
        out.append(_characteristic("study_population", **_text(text)))
    return out


# --- free-text criteria --------------------------------------------------------------------------


def _criteria(eligibility: Eligibility) -> list[Characteristic]:
    out = []
    for criterion in split_criteria(eligibility.criteria):
        text = f"{criterion.heading}: {criterion.text}" if criterion.heading else criterion.text
        kind = "exclusion" if criterion.exclude else "inclusion"
        out.append(_characteristic(kind, exclude=criterion.exclude, **_text(text)))
    return out
