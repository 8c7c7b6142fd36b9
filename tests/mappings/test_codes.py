"""Every row of the ResearchStudy code tables, twice: the mapping emits the row's codings, and each
FHIR code exists in its code system.

The code lists below were copied from the R5 core package ``hl7.fhir.r5.core`` 5.0.0 (and, for
registration activities, the FHIR Extensions Pack); when that package is installed locally (the
conformance checker's cache) the lists themselves are checked against it, so a typo here cannot
hide a wrong table.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from adapter.record import (
    Arm,
    ConditionCode,
    Design,
    EthicsReview,
    Identifier,
    IpdSharing,
    Official,
    Org,
    Outcome,
    Reference,
    RegistryAnnotations,
    ResponsibleParty,
    ResultsEvent,
    SourceInfo,
    StatusInfo,
    TrialRecord,
    ViolationEvent,
)
from adapter.validation.packages import iter_package_json
from mappings import research_study as rs
from mappings.codes import table
from mappings.fhir import CTGOV_ENUM

ISO_3166_DATA = Path("/usr/share/iso-codes/json/iso_3166-1.json")
CORPUS_SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "schemas"

R5_CODES: dict[str, set[str]] = {
    rs.RESEARCH_STUDY_STATUS: {
        "overall-study", "active", "active-but-not-recruiting", "administratively-completed", "approved",
        "closed-to-accrual", "closed-to-accrual-and-intervention", "completed", "disapproved",
        "enrolling-by-invitation", "in-review", "not-yet-recruiting", "recruiting",
        "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention", "terminated", "withdrawn",
    },
    rs.RESEARCH_STUDY_PHASE: {
        "n-a", "early-phase-1", "phase-1", "phase-1-phase-2", "phase-2", "phase-2-phase-3", "phase-3", "phase-4",
    },
    rs.PRIMARY_PURPOSE: {
        "treatment", "prevention", "diagnostic", "supportive-care", "screening", "health-services-research",
        "basic-science", "device-feasibility",
    },
    rs.ARM_TYPE: {
        "active-comparator", "placebo-comparator", "sham-comparator", "no-intervention", "experimental",
        "other-arm-type",
    },
    rs.OBJECTIVE_TYPE: {"primary", "secondary", "exploratory"},
    rs.PARTY_ROLE: {
        "sponsor", "lead-sponsor", "sponsor-investigator", "primary-investigator", "collaborator", "funding-source",
        "general-contact", "recruitment-contact", "sub-investigator", "study-director", "study-chair", "irb",
    },
    rs.PARTY_ORG_TYPE: {"nih", "fda", "government", "nonprofit", "academic", "industry"},
    rs.STUDY_CLASSIFIERS: {"fda-regulated-drug", "fda-regulated-device", "mpg-paragraph-23b", "irb-exempt"},
    rs.TITLE_TYPE: {
        "primary", "official", "scientific", "plain-language", "subtitle", "short-title", "acronym", "earlier-title",
        "language", "autotranslated", "human-use", "machine-use", "duplicate-uid",
    },
    "http://hl7.org/fhir/related-artifact-type": {
        "documentation", "justification", "citation", "predecessor", "successor", "derived-from", "depends-on",
        "composed-of", "part-of", "amends", "amended-with", "appends", "appended-with", "cites", "cited-by",
        "comments-on", "comment-in", "contains", "contained-in", "corrects", "correction-in", "replaces",
        "replaced-with", "retracts", "retracted-by", "signs", "similar-to", "supports", "supported-with",
        "transforms", "transformed-into", "transformed-with", "documents", "specification-of", "created-with",
        "cite-as",
    },
}  # fmt: skip
"""Codes of the R5 code systems the tables point into (R5 core 5.0.0)."""

SEVCO: dict[str, str] = {
    "SEVCO:01001": "Interventional research",
    "SEVCO:01002": "Observational research",
    "SEVCO:01003": "randomized assignment",
    "SEVCO:01005": "Non-randomized assignment",
    "SEVCO:01011": "Parallel cohort design",
    "SEVCO:01012": "Crossover cohort design",
    "SEVCO:01013": "Case control design",
    "SEVCO:01016": "Uncontrolled cohort design",
    "SEVCO:01022": "Population-based design",
    "SEVCO:01027": "Cross sectional data collection",
    "SEVCO:01038": "Expanded Access study",
    "SEVCO:01060": "Blinding of study participants",
    "SEVCO:01061": "Blinding of intervention providers",
    "SEVCO:01062": "Blinding of outcome assessors",
}
"""The SEVCO codes used, with their displays in the R5 study-design code system."""

REGISTRATION_ACTIVITY_CODES = {
    "record-verification", "primary-outcome-data-collection", "registration-submission", "registration-submission-qc",
    "registration-posting", "results-submission", "results-submission-qc", "results-posting",
    "disposition-submission", "disposition-submission-qc", "disposition-posting", "update-submission",
    "update-posting",
}  # fmt: skip
"""http://hl7.org/fhir/research-study-registration-activity (FHIR Extensions Pack 1.0.0 - 5.3.0)."""

CTGOV_ENUMS: dict[str, set[str]] = {
    "Status": {
        "ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING", "RECRUITING",
        "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE",
        "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN",
    },
    "Phase": {"NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"},
    "PrimaryPurpose": {
        "TREATMENT", "PREVENTION", "DIAGNOSTIC", "ECT", "SUPPORTIVE_CARE", "SCREENING", "HEALTH_SERVICES_RESEARCH",
        "BASIC_SCIENCE", "DEVICE_FEASIBILITY", "OTHER",
    },
    "StudyType": {"EXPANDED_ACCESS", "INTERVENTIONAL", "OBSERVATIONAL"},
    "DesignAllocation": {"RANDOMIZED", "NON_RANDOMIZED", "NA"},
    "InterventionalAssignment": {"SINGLE_GROUP", "PARALLEL", "CROSSOVER", "FACTORIAL", "SEQUENTIAL"},
    "ObservationalModel": {
        "COHORT", "CASE_CONTROL", "CASE_ONLY", "CASE_CROSSOVER", "ECOLOGIC_OR_COMMUNITY", "FAMILY_BASED",
        "DEFINED_POPULATION", "NATURAL_HISTORY", "OTHER",
    },
    "DesignTimePerspective": {"RETROSPECTIVE", "PROSPECTIVE", "CROSS_SECTIONAL", "OTHER"},
    "DesignMasking": {"NONE", "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE"},
    "WhoMasked": {"PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"},
    "BioSpecRetention": {"NONE_RETAINED", "SAMPLES_WITH_DNA", "SAMPLES_WITHOUT_DNA"},
    "ArmGroupType": {
        "EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION", "OTHER",
    },
    "AgencyClass": {"NIH", "FED", "OTHER_GOV", "INDIV", "INDUSTRY", "NETWORK", "AMBIG", "OTHER", "UNKNOWN"},
    "OfficialRole": {"STUDY_CHAIR", "STUDY_DIRECTOR", "PRINCIPAL_INVESTIGATOR", "SUB_INVESTIGATOR"},
    "ResponsiblePartyType": {"SPONSOR", "PRINCIPAL_INVESTIGATOR", "SPONSOR_INVESTIGATOR"},
    "ReferenceType": {"BACKGROUND", "RESULT", "DERIVED"},
    "SecondaryIdType": {
        "NIH", "FDA", "VA", "CDC", "AHRQ", "SAMHSA", "OTHER_GRANT", "EUDRACT_NUMBER", "CTIS", "REGISTRY", "OTHER",
    },
    "IpdSharing": {"YES", "NO", "UNDECIDED"},
    "IpdSharingInfoType": {"STUDY_PROTOCOL", "SAP", "ICF", "CSR", "ANALYTIC_CODE"},
    "OutcomeMeasureType": {"PRIMARY", "SECONDARY", "OTHER_PRE_SPECIFIED", "POST_HOC"},
    "UnpostedEventType": {"RESET", "RELEASE", "UNRELEASE"},
    "ViolationEventType": {
        "VIOLATION_IDENTIFIED", "CORRECTION_CONFIRMED", "PENALTY_IMPOSED", "ISSUES_IN_LETTER_ADDRESSED_CONFIRMED",
    },
}  # fmt: skip
"""ClinicalTrials.gov API v2 enumerations (OpenAPI 2.0.5)."""


def _record(**fields: Any) -> TrialRecord:
    return TrialRecord(source=SourceInfo(registry="ctgov", format="ctgov-v2-json"), registry_id="NCT00000001", **fields)


def _codings(value: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in value.get("coding", [])]


def _rows(name: str) -> list[tuple[str, dict[str, Any]]]:
    return sorted(table(name).items())


def _rows2(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(enum, key, row) for enum, rows in sorted(table(name).items()) for key, row in sorted(rows.items())]


# --- the reference lists themselves -------------------------------------------------------------


@functools.cache
def _r5_code_systems() -> dict[str, dict[str, Any]]:
    """The R5 core package's CodeSystems by file name (the pinned package the validator uses)."""
    return dict(iter_package_json("hl7.fhir.r5.core", "5.0.0", lambda name: name.startswith("CodeSystem-")))


@pytest.mark.parametrize("system", sorted(R5_CODES))
def test_reference_code_lists_match_the_r5_core_package(system: str) -> None:
    name = system.rsplit("/", 1)[-1]
    data = _r5_code_systems()[f"CodeSystem-{name}.json"]
    assert data["url"] == system
    assert {c["code"] for c in data["concept"]} == R5_CODES[system]


def test_sevco_list_matches_the_r5_core_package() -> None:
    data = _r5_code_systems()["CodeSystem-study-design.json"]
    found: dict[str, str] = {}

    def walk(concepts: list[dict[str, Any]]) -> None:
        for c in concepts:
            found[c["code"]] = c["display"].strip()
            walk(c.get("concept", []))

    walk(data["concept"])
    assert data["url"] == rs.STUDY_DESIGN
    assert {code: found.get(code) for code in SEVCO} == SEVCO


@pytest.mark.skipif(not (CORPUS_SCHEMAS / "ctg-oas-v2_2.0.5.yaml").is_file(), reason="corpus schemas absent")
def test_ctgov_enum_lists_match_the_api_schema() -> None:
    yaml = pytest.importorskip("yaml")
    schemas = yaml.safe_load((CORPUS_SCHEMAS / "ctg-oas-v2_2.0.5.yaml").read_text(encoding="utf-8"))
    schemas = schemas["components"]["schemas"]
    for enum, values in CTGOV_ENUMS.items():
        assert set(schemas[enum]["enum"]) == values, enum


# --- overall status ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "row"), _rows("overall_status"))
def test_overall_status_row_maps(value: str, row: dict[str, Any]) -> None:
    state = rs.status_concept(value)
    expected = [(rs.RESEARCH_STUDY_STATUS, row["code"])] if row["code"] else []
    assert _codings(state) == [*expected, (CTGOV_ENUM + "Status", value)]
    assert state["text"] == row["display"]


@pytest.mark.parametrize(("value", "row"), _rows("overall_status"))
def test_overall_status_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["Status"]
    assert row["code"] is None or row["code"] in R5_CODES[rs.RESEARCH_STUDY_STATUS]


# --- phase ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "row"), _rows("phase"))
def test_phase_row_maps(key: str, row: dict[str, Any]) -> None:
    phases = key.split("+")
    phase = rs.to_fhir_research_study(_record(design=Design(phases=phases)))["phase"]
    assert _codings(phase) == [(rs.RESEARCH_STUDY_PHASE, row["code"])] + [(CTGOV_ENUM + "Phase", p) for p in phases]
    assert phase["text"] == row["display"]


@pytest.mark.parametrize(("key", "row"), _rows("phase"))
def test_phase_row_codes_exist(key: str, row: dict[str, Any]) -> None:
    assert set(key.split("+")) <= CTGOV_ENUMS["Phase"]
    assert row["code"] in R5_CODES[rs.RESEARCH_STUDY_PHASE]


# --- primary purpose -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "row"), _rows("primary_purpose"))
def test_primary_purpose_row_maps(value: str, row: dict[str, Any]) -> None:
    purpose = rs.to_fhir_research_study(_record(design=Design(primary_purpose=value)))["primaryPurposeType"]
    expected = [(rs.PRIMARY_PURPOSE, row["code"])] if row["code"] else []
    assert _codings(purpose) == [*expected, (CTGOV_ENUM + "PrimaryPurpose", value)]
    assert purpose["text"] == row["display"]


@pytest.mark.parametrize(("value", "row"), _rows("primary_purpose"))
def test_primary_purpose_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["PrimaryPurpose"]
    assert row["code"] is None or row["code"] in R5_CODES[rs.PRIMARY_PURPOSE]


# --- study design and who masked -----------------------------------------------------------------


@pytest.mark.parametrize(("enum", "value", "row"), _rows2("study_design"))
def test_study_design_row_maps(enum: str, value: str, row: dict[str, Any]) -> None:
    entry = rs.design_concept(enum, value)
    expected = [(rs.STUDY_DESIGN, row["sevco"])] if row["sevco"] else []
    assert _codings(entry) == [*expected, (CTGOV_ENUM + enum, value)]
    assert entry["text"] == row["display"]


@pytest.mark.parametrize(("enum", "value", "row"), _rows2("study_design"))
def test_study_design_row_codes_exist(enum: str, value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS[enum]
    if row["sevco"]:
        assert SEVCO[row["sevco"]] == row["sevco_display"]


@pytest.mark.parametrize(("value", "row"), _rows("who_masked"))
def test_who_masked_row_maps(value: str, row: dict[str, Any]) -> None:
    designs = rs.to_fhir_research_study(_record(design=Design(masking="SINGLE", who_masked=[value])))["studyDesign"]
    expected = [(rs.STUDY_DESIGN, row["sevco"])] if row["sevco"] else []
    assert _codings(designs[-1]) == [*expected, (CTGOV_ENUM + "WhoMasked", value)]


@pytest.mark.parametrize(("value", "row"), _rows("who_masked"))
def test_who_masked_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["WhoMasked"]
    if row["sevco"]:
        assert SEVCO[row["sevco"]] == row["sevco_display"]


# --- comparison group type -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "row"), _rows("arm_type"))
def test_arm_type_row_maps(value: str, row: dict[str, Any]) -> None:
    group = rs.to_fhir_research_study(_record(arms=[Arm(label="A", type=value)]))["comparisonGroup"][0]
    assert _codings(group["type"]) == [(rs.ARM_TYPE, row["code"]), (CTGOV_ENUM + "ArmGroupType", value)]


@pytest.mark.parametrize(("value", "row"), _rows("arm_type"))
def test_arm_type_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["ArmGroupType"]
    assert row["code"] in R5_CODES[rs.ARM_TYPE]


# --- parties -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "row"), _rows("agency_class"))
def test_agency_class_row_maps(value: str, row: dict[str, Any]) -> None:
    party = rs.to_fhir_research_study(_record(lead_sponsor=Org(name="Acme", agency_class=value)))["associatedParty"][0]
    codings = [c for classifier in party["classifier"] for c in _codings(classifier)]
    expected = [(rs.PARTY_ORG_TYPE, row["code"])] if row["code"] else []
    assert codings == [(CTGOV_ENUM + "AgencyClass", value), *expected]


@pytest.mark.parametrize(("value", "row"), _rows("agency_class"))
def test_agency_class_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["AgencyClass"]
    assert row["code"] is None or row["code"] in R5_CODES[rs.PARTY_ORG_TYPE]


@pytest.mark.parametrize(("value", "row"), _rows("party_role"))
def test_party_role_row_maps(value: str, row: dict[str, Any]) -> None:
    party = rs.to_fhir_research_study(_record(officials=[Official(name="A B, MD", role=value)]))["associatedParty"][0]
    assert _codings(party["role"]) == [(rs.PARTY_ROLE, row["code"])]
    assert _codings(party["classifier"][0]) == [(CTGOV_ENUM + "OfficialRole", value)]


@pytest.mark.parametrize(("value", "row"), _rows("party_role"))
def test_party_role_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    # STUDY_PRINCIPAL_INVESTIGATOR is a legacy spelling the readers may pass through.
    assert value in CTGOV_ENUMS["OfficialRole"] | {"STUDY_PRINCIPAL_INVESTIGATOR"}
    assert row["code"] in R5_CODES[rs.PARTY_ROLE]


@pytest.mark.parametrize(("value", "row"), _rows("responsible_party_type"))
def test_responsible_party_type_row_maps(value: str, row: dict[str, Any]) -> None:
    party = ResponsibleParty(type=value, investigator_full_name=None if value == "SPONSOR" else "A B")
    study = rs.to_fhir_research_study(_record(responsible_party=party))
    classifier = next(c for c in study["classifier"] if c["text"].startswith("Responsible party"))
    assert _codings(classifier) == [(CTGOV_ENUM + "ResponsiblePartyType", value)]
    roles = [_codings(p["role"]) for p in study.get("associatedParty", [])]
    assert roles == ([[(rs.PARTY_ROLE, row["code"])]] if row["code"] else [])


@pytest.mark.parametrize(("value", "row"), _rows("responsible_party_type"))
def test_responsible_party_type_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["ResponsiblePartyType"]
    assert row["code"] is None or row["code"] in R5_CODES[rs.PARTY_ROLE]


# --- references and identifiers ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "row"), _rows("reference_type"))
def test_reference_type_row_maps(value: str, row: dict[str, Any]) -> None:
    artifact = rs.to_fhir_research_study(_record(references=[Reference(pmid="123", type=value)]))["relatedArtifact"][0]
    assert artifact["type"] == row["code"]
    assert _codings(artifact["classifier"][0]) == [(CTGOV_ENUM + "ReferenceType", value)]


@pytest.mark.parametrize(("value", "row"), _rows("reference_type"))
def test_reference_type_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["ReferenceType"]
    assert row["code"] in R5_CODES["http://hl7.org/fhir/related-artifact-type"]


@pytest.mark.parametrize(("value", "row"), _rows("secondary_id_type"))
def test_secondary_id_type_row_maps(value: str, row: dict[str, Any]) -> None:
    secondary = Identifier(id="X-1", type=value, domain="Some Registry" if row["assigner"] is None else None)
    identifier = rs.to_fhir_research_study(_record(secondary_ids=[secondary]))["identifier"][1]
    assert _codings(identifier["type"]) == [(CTGOV_ENUM + "SecondaryIdType", value)]
    assert identifier.get("system") == row["system"]
    assert identifier["assigner"]["display"] == (row["assigner"] or "Some Registry")


@pytest.mark.parametrize(("value", "row"), _rows("secondary_id_type"))
def test_secondary_id_type_row_codes_exist(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["SecondaryIdType"]
    if row["pattern"]:
        # The pattern must recognise the registry's own example numbers and nothing of the other kind.
        samples = {"EUDRACT_NUMBER": "2011-001295-19", "CTIS": "2023-503456-12-00"}
        assert rs._recognised_id_type(samples[value]) == value


# --- outcomes, registry dates, IPD ---------------------------------------------------------------


@pytest.mark.parametrize(("kind", "row"), _rows("outcome_type"))
def test_outcome_type_row_maps(kind: str, row: dict[str, Any]) -> None:
    outcome = Outcome(kind=kind, measure="M", time_frame="1 year")
    measure = rs.to_fhir_research_study(_record(outcomes=[outcome]))["outcomeMeasure"][0]
    assert _codings(measure["type"][0]) == [
        (rs.OBJECTIVE_TYPE, row["code"]),
        (CTGOV_ENUM + "OutcomeMeasureType", row["ctgov"]),
    ]


@pytest.mark.parametrize(("kind", "row"), _rows("outcome_type"))
def test_outcome_type_row_codes_exist(kind: str, row: dict[str, Any]) -> None:
    assert kind in {"primary", "secondary", "other"}
    assert row["code"] in R5_CODES[rs.OBJECTIVE_TYPE]
    assert row["ctgov"] in CTGOV_ENUMS["OutcomeMeasureType"]


@pytest.mark.parametrize(("field", "row"), _rows("registration_activity"))
def test_registration_activity_row_maps(field: str, row: dict[str, Any]) -> None:
    dated = StatusInfo.model_fields[field].annotation
    value: Any = {"date": "2020-01-02", "type": "ACTUAL"} if "DateStruct" in str(dated) else "2020-01-02"
    study = rs.to_fhir_research_study(_record(status=StatusInfo.model_validate({field: value})))
    if field == "primary_completion":
        codings = [c for entry in study["progressStatus"] for c in _codings(entry["state"])]
    else:
        activity = study["extension"][0]["extension"][0]["valueCodeableConcept"]
        assert study["extension"][0]["url"] == rs.STUDY_REGISTRATION_EXTENSION
        codings = _codings(activity)
    assert codings == [(rs.REGISTRATION_ACTIVITY, row["code"])]


@pytest.mark.parametrize(("field", "row"), _rows("registration_activity"))
def test_registration_activity_row_codes_exist(field: str, row: dict[str, Any]) -> None:
    assert field in StatusInfo.model_fields
    assert row["code"] in REGISTRATION_ACTIVITY_CODES


@pytest.mark.parametrize(("enum", "value", "row"), _rows2("ipd_sharing"))
def test_ipd_sharing_row_maps(enum: str, value: str, row: dict[str, Any]) -> None:
    ipd = IpdSharing(ipd_sharing=value) if enum == "IpdSharing" else IpdSharing(info_types=[value])
    classifiers = rs.to_fhir_research_study(_record(ipd_sharing=ipd))["classifier"]
    assert [(CTGOV_ENUM + enum, value)] in [_codings(c) for c in classifiers]


@pytest.mark.parametrize(("enum", "value", "row"), _rows2("ipd_sharing"))
def test_ipd_sharing_row_codes_exist(enum: str, value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS[enum]
    assert row["display"]


@pytest.mark.parametrize(("value", "row"), _rows("expanded_access_type"))
def test_expanded_access_type_row_maps(value: str, row: dict[str, Any]) -> None:
    classifiers = rs.to_fhir_research_study(_record(design=Design(expanded_access_types=[value])))["classifier"]
    assert {"text": f"Expanded access type: {row['display']}"} in classifiers


@pytest.mark.parametrize(("value", "row"), _rows("expanded_access_type"))
def test_expanded_access_type_row_is_a_ctgov_flag(value: str, row: dict[str, Any]) -> None:
    # v2 designModule.expandedAccessTypes has exactly these three flags.
    assert value in {"INDIVIDUAL", "INTERMEDIATE", "TREATMENT"}
    assert row["display"]


# --- countries -----------------------------------------------------------------------------------


def _iso_alpha2() -> set[str] | None:
    if not ISO_3166_DATA.is_file():
        return None
    return {c["alpha_2"] for c in json.loads(ISO_3166_DATA.read_text(encoding="utf-8"))["3166-1"]}


@pytest.mark.parametrize(("name", "code"), _rows("country"))
def test_country_row_maps(name: str, code: str) -> None:
    region = rs.to_fhir_research_study(_record(location_countries=[name]))["region"][0]
    assert region == {"coding": [{"system": rs.ISO_3166, "code": code}], "text": name}


@pytest.mark.parametrize(("name", "code"), _rows("country"))
def test_country_row_code_exists(name: str, code: str) -> None:
    current = _iso_alpha2()
    if current is None:
        assert len(code) == 2 and code.isupper()
    else:
        assert code in current


# --- registry events (studyRegistration activities and notes without a registration-activity code) -----


@pytest.mark.parametrize(("field", "row"), sorted(table("registry_event")["status_dates"].items()))
def test_registry_event_status_date_row_maps(field: str, row: dict[str, Any]) -> None:
    assert field in StatusInfo.model_fields and row["after"] in table("registration_activity")
    study = rs.to_fhir_research_study(_record(status=StatusInfo.model_validate({field: "2020-01-02"})))
    [extension] = study["extension"]
    assert extension["extension"][0]["valueCodeableConcept"] == {"text": row["display"]}


@pytest.mark.parametrize(("value", "row"), sorted(table("registry_event")["UnpostedEventType"].items()))
def test_unposted_event_row_maps(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["UnpostedEventType"]
    assert row["code"] is None or row["code"] in REGISTRATION_ACTIVITY_CODES
    annotations = RegistryAnnotations(unposted_events=[ResultsEvent(type=value, date="2020-01-02")])
    [extension] = rs.to_fhir_research_study(_record(annotations=annotations))["extension"]
    activity = extension["extension"][0]["valueCodeableConcept"]
    expected = [(CTGOV_ENUM + "UnpostedEventType", value)]
    if row["code"]:
        expected.insert(0, (rs.REGISTRATION_ACTIVITY, row["code"]))
    assert _codings(activity) == expected
    assert activity["text"] == row["display"]


@pytest.mark.parametrize(("value", "row"), sorted(table("registry_event")["ViolationEventType"].items()))
def test_violation_event_row_maps(value: str, row: dict[str, Any]) -> None:
    assert value in CTGOV_ENUMS["ViolationEventType"]
    annotations = RegistryAnnotations(violation_events=[ViolationEvent(type=value, posted_date="2022-06-07")])
    [note] = rs.to_fhir_research_study(_record(annotations=annotations))["note"]
    assert note["text"] == f"FDAAA 801 violation event: {row['display']} ({value}), posted 2022-06-07"


def test_ethics_approval_event_maps() -> None:
    study = rs.to_fhir_research_study(_record(ethics_reviews=[EthicsReview(approval_date="2021-03")]))
    [extension] = study["extension"]
    activity = extension["extension"][0]["valueCodeableConcept"]
    assert activity == {"text": table("registry_event")["ethics_approval"]["display"]}


# --- condition code systems ------------------------------------------------------------------------


@pytest.mark.parametrize(("terminology", "row"), sorted(table("condition_code_system")["systems"].items()))
def test_condition_code_system_row_maps(terminology: str, row: dict[str, Any]) -> None:
    code = ConditionCode(system=terminology, code="X00", display="Term")
    [condition] = rs.to_fhir_research_study(_record(condition_codes=[code]))["condition"]
    assert _codings(condition) == [(row["system"], "X00")]
    assert row["system"].startswith(("http://", "https://"))


@pytest.mark.parametrize(("family", "rule"), sorted(table("condition_code_system")["bare_codes"].items()))
def test_condition_bare_code_rule_names_a_terminology_and_a_registry(family: str, rule: dict[str, Any]) -> None:
    assert family in table("registries")
    assert rule["terminology"] in table("condition_code_system")["systems"]
