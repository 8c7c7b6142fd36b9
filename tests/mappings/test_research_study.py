"""ResearchStudy (R5) from TrialRecords: the seed trial fact by fact, the fixture trials, edge cases,
and a walk over a maximal record proving every field lands in the output or is owned elsewhere."""

from __future__ import annotations

import fnmatch
import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from adapter.readers.ctgov_json import read_study
from adapter.record import (
    AgeGroupCount,
    Arm,
    AvailIpd,
    ConditionCode,
    Contact,
    DateStruct,
    Design,
    Document,
    Eligibility,
    EthicsReview,
    ExpandedAccessInfo,
    GeoPoint,
    Identifier,
    Intervention,
    IpdSharing,
    Link,
    MeshTerm,
    Objective,
    Official,
    Org,
    Outcome,
    Oversight,
    Reference,
    RegistryAnnotations,
    ResponsibleParty,
    ResultsEvent,
    Retraction,
    Site,
    SourceInfo,
    StatusInfo,
    TrialRecord,
    ViolationEvent,
)
from adapter.validation.packages import iter_package_json
from mappings import ids
from mappings import research_study as rs
from mappings.fhir import CTGOV_ENUM

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
CORPUS = REPO.parent / "shared" / "corpus"

Resource = dict[str, Any]
ModelT = TypeVar("ModelT", bound=BaseModel)


def _json_record(path: Path) -> TrialRecord:
    return read_study(json.loads(path.read_text(encoding="utf-8")))


def _xml_record(path: Path) -> TrialRecord:
    try:
        reader = importlib.import_module("adapter.readers.ctgov_xml")
    except ImportError:
        pytest.skip("legacy XML reader not available")
    return reader.read_clinical_study(path.read_bytes())


def _codes(concept: Resource) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept.get("coding", [])]


def _role_codes(study: Resource) -> list[str]:
    return [c["code"] for p in study["associatedParty"] for c in p["role"].get("coding", [])]


def _record(**fields: Any) -> TrialRecord:
    return TrialRecord(source=SourceInfo(registry="ctgov", format="ctgov-v2-json"), registry_id="NCT00000001", **fields)


# --- the seed trial (MESEMS), from both formats ---------------------------------------------------

SEED_READERS: dict[str, Callable[[], TrialRecord]] = {
    "v2-json": lambda: _json_record(FIXTURES / "seed" / "NCT01854957.json"),
    "legacy-xml": lambda: _xml_record(FIXTURES / "seed" / "NCT01854957.xml"),
}


@pytest.fixture(params=sorted(SEED_READERS))
def seed(request: pytest.FixtureRequest) -> tuple[TrialRecord, Resource]:
    record = SEED_READERS[request.param]()
    return record, rs.to_fhir_research_study(record)


def test_seed_identity(seed: tuple[TrialRecord, Resource]) -> None:
    record, study = seed
    assert study["resourceType"] == "ResearchStudy"
    assert study["id"] == ids.study_id(record) == "nct01854957"
    assert study["status"] == "active"
    nct, org, eudract = study["identifier"]
    assert nct == {
        "use": "official",
        "system": rs.NCT_SYSTEM,
        "value": "NCT01854957",
        "assigner": {"display": "ClinicalTrials.gov"},
    }
    assert org["value"] == "MESEMS"
    assert org["assigner"] == {
        "reference": f"Organization/{ids.organization_id('University of Genova')}",
        "display": "University of Genova",
    }
    assert eudract["value"] == "2011-001295-19"
    assert eudract["system"] == "https://eudract.ema.europa.eu"
    assert eudract["type"]["text"].startswith("EudraCT Number")


def test_seed_titles(seed: tuple[TrialRecord, Resource]) -> None:
    _, study = seed
    assert study["title"] == "MEsenchymal StEm Cells for Multiple Sclerosis"
    labels = {label["type"]["coding"][0]["code"]: label["value"] for label in study["label"]}
    assert labels["acronym"] == "MESEMS"
    assert labels["short-title"] == study["title"]
    assert labels["official"].startswith("MEsenchymal StEm Cells for Multiple Sclerosis (MESEMS) Phase I-II")
    assert study["name"] == "NCT01854957"


def test_seed_phase_and_design(seed: tuple[TrialRecord, Resource]) -> None:
    _, study = seed
    assert (rs.RESEARCH_STUDY_PHASE, "phase-1-phase-2") in _codes(study["phase"])
    assert (CTGOV_ENUM + "Phase", "PHASE1") in _codes(study["phase"])
    assert (rs.PRIMARY_PURPOSE, "treatment") in _codes(study["primaryPurposeType"])
    designs = [_codes(d) for d in study["studyDesign"]]
    assert [(rs.STUDY_DESIGN, "SEVCO:01001"), (CTGOV_ENUM + "StudyType", "INTERVENTIONAL")] in designs
    assert [(rs.STUDY_DESIGN, "SEVCO:01003"), (CTGOV_ENUM + "DesignAllocation", "RANDOMIZED")] in designs
    assert [(rs.STUDY_DESIGN, "SEVCO:01012"), (CTGOV_ENUM + "InterventionalAssignment", "CROSSOVER")] in designs
    assert [(CTGOV_ENUM + "DesignMasking", "QUADRUPLE")] in designs
    masked = [d for d in designs if d[-1][0] == CTGOV_ENUM + "WhoMasked"]
    assert [d[-1][1] for d in masked] == ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]
    # Investigator masking has no SEVCO equivalent: only the CT.gov coding.
    assert masked[2] == [(CTGOV_ENUM + "WhoMasked", "INVESTIGATOR")]


def test_seed_recruitment_and_groups(seed: tuple[TrialRecord, Resource]) -> None:
    record, study = seed
    assert study["recruitment"] == {
        "eligibility": {"reference": "Group/nct01854957-eligibility"},
        "targetNumber": 20,
    }
    groups = study["comparisonGroup"]
    assert [g["name"] for g in groups] == ["Autologous Mesenchymal Stem Cells", "Suspension media"]
    assert [g["linkId"] for g in groups] == ids.arm_keys(record)
    assert [_codes(g["type"])[0][1] for g in groups] == ["experimental", "placebo-comparator"]
    assert study["protocol"] == [{"reference": "PlanDefinition/nct01854957-protocol"}]


def test_seed_parties(seed: tuple[TrialRecord, Resource]) -> None:
    record, study = seed
    parties = study["associatedParty"]
    sponsors = [
        p
        for p in parties
        if _codes(p["role"])[:1] in ([(rs.PARTY_ROLE, "lead-sponsor")], [(rs.PARTY_ROLE, "collaborator")])
    ]
    assert [p["name"] for p in sponsors] == [
        "Antonio Uccelli",
        "Azienda Ospedaliera Universitaria Integrata Verona",
        "Ospedale San Raffaele",
    ]
    assert all(p["party"]["reference"] == f"Organization/{ids.organization_id(p['name'])}" for p in sponsors)
    investigators = [p for p in parties if _codes(p["role"]) == [(rs.PARTY_ROLE, "primary-investigator")]]
    assert [p["name"] for p in investigators] == ["Giancarlo Comi, MD", "Bruno Bonetti, MD"]
    assert [p["party"]["reference"] for p in investigators] == [
        f"PractitionerRole/{ids.official_role_id(record, official)}" for official in record.officials
    ]
    responsible = [p for p in parties if _codes(p["role"]) == [(rs.PARTY_ROLE, "sponsor-investigator")]]
    assert [p["party"]["reference"] for p in responsible] == [
        f"PractitionerRole/{ids.responsible_party_role_id(record)}"
    ]
    contacts = [p for p in parties if _codes(p["role"]) == [(rs.PARTY_ROLE, "recruitment-contact")]]
    assert [p["party"]["reference"] for p in contacts] == [
        f"PractitionerRole/{ids.central_contact_role_id(record, c)}" for c in record.central_contacts
    ]
    # The registering organization is neither sponsor nor collaborator, so it is a party of its own.
    assert "University of Genova" in [p["name"] for p in parties]


def test_seed_sites_conditions_region(seed: tuple[TrialRecord, Resource]) -> None:
    record, study = seed
    assert study["site"] == [
        {"reference": f"Location/{ids.location_ids(record)[0]}", "display": "University of Genova"}
    ]
    assert study["condition"][0]["text"] == "Multiple Sclerosis"
    assert [c["text"] for c in study["condition"]] == ["Multiple Sclerosis", "Sclerosis"]
    assert study["region"] == [{"coding": [{"system": rs.ISO_3166, "code": "IT"}], "text": "Italy"}]
    assert [k["text"] for k in study["keyword"][:2]] == ["Multiple sclerosis", "Mesenchymal stem cells"]


def test_seed_unknown_status_with_last_known_recruiting(seed: tuple[TrialRecord, Resource]) -> None:
    _, study = seed
    current, last_known, *dates = study["progressStatus"]
    assert _codes(current["state"]) == [(rs.CTGOV_STATUS, "UNKNOWN")]
    assert current["state"]["text"] == "Unknown status"
    assert "actual" not in current
    assert _codes(last_known["state"]) == [(rs.RESEARCH_STUDY_STATUS, "recruiting"), (rs.CTGOV_STATUS, "RECRUITING")]
    assert last_known["actual"] is True
    assert last_known["period"] == {"end": "2013-05"}
    # Start has no type in the registry (so no `actual`); completion is estimated: two entries.
    overall = [d for d in dates if _codes(d["state"]) == [(rs.RESEARCH_STUDY_STATUS, "overall-study")]]
    assert [(d.get("actual"), d["period"]) for d in overall] == [
        (None, {"start": "2012-07"}),
        (False, {"end": "2014-09"}),
    ]
    primary = [
        d for d in dates if _codes(d["state"]) == [(rs.REGISTRATION_ACTIVITY, "primary-outcome-data-collection")]
    ]
    assert [(d["actual"], d["period"]) for d in primary] == [(False, {"end": "2014-07"})]
    assert study["period"] == {"start": "2012-07", "end": "2014-09"}


def test_seed_registry_dates_in_the_registration_extension(seed: tuple[TrialRecord, Resource]) -> None:
    _, study = seed
    events = {}
    for ext in study["extension"]:
        assert ext["url"] == rs.STUDY_REGISTRATION_EXTENSION
        parts = {p["url"]: p for p in ext["extension"]}
        activity = parts["activity"]["valueCodeableConcept"]
        key = activity["coding"][0]["code"] if "coding" in activity else activity["text"]
        events[key] = (parts.get("actual", {}).get("valueBoolean"), parts["period"]["valuePeriod"])
    assert events["registration-submission"] == (True, {"start": "2013-05-08", "end": "2013-05-08"})
    assert events["registration-posting"] == (False, {"start": "2013-05-16", "end": "2013-05-16"})
    assert events["record-verification"] == (True, {"start": "2013-05", "end": "2013-05"})
    assert study["date"] == "2013-05-16"
    record, _ = seed
    if record.source.format == "ctgov-xml":
        # No code of research-study-registration-activity means the update QC: text only.
        assert events["Update submission Quality Check"] == (True, {"start": "2013-05-13", "end": "2013-05-13"})


def test_seed_outcomes_keep_time_frames(seed: tuple[TrialRecord, Resource]) -> None:
    _, study = seed
    measures = study["outcomeMeasure"]
    assert len(measures) == 7
    assert measures[0]["name"] == "Safety"
    assert _codes(measures[0]["type"][0])[0] == (rs.OBJECTIVE_TYPE, "primary")
    assert measures[0]["description"].endswith("\n\nTime frame: 24 weeks from the first infusion")
    assert [_codes(m["type"][0])[0][1] for m in measures] == ["primary"] * 2 + ["secondary"] * 5
    assert "objective" not in study


def test_seed_provenance(seed: tuple[TrialRecord, Resource]) -> None:
    record, study = seed
    transforms = [a for a in study["relatedArtifact"] if a["type"] == "transforms"]
    assert transforms[0]["document"] == {"url": "https://clinicaltrials.gov/study/NCT01854957"}
    assert [a["display"] for a in study["relatedArtifact"] if a["type"] == "transformed-with"] == ["trial2fhir"]
    if record.source.version:
        assert study["version"] == record.source.version
        assert record.source.version in transforms[0]["display"]


def test_seed_classifiers(seed: tuple[TrialRecord, Resource]) -> None:
    _, study = seed
    texts = [c.get("text") for c in study["classifier"]]
    assert "Has data monitoring committee: Yes" in texts
    assert "Responsible party: Sponsor-Investigator" in texts


# --- other fixture trials --------------------------------------------------------------------------


def _fixture(nct: str) -> Resource:
    return rs.to_fhir_research_study(_json_record(FIXTURES / "ctgov-v2-json" / f"{nct}.json"))


@pytest.mark.parametrize(("nct", "why"), [("NCT00544076", "Accrual too slow"), ("NCT00711542", "Slow recruitment")])
def test_terminated_trials_say_why(nct: str, why: str) -> None:
    study = _fixture(nct)
    assert study["whyStopped"] == {"text": why}
    assert _codes(study["progressStatus"][0]["state"]) == [
        (rs.RESEARCH_STUDY_STATUS, "terminated"),
        (rs.CTGOV_STATUS, "TERMINATED"),
    ]
    assert study["progressStatus"][0]["actual"] is True


def test_withdrawn_trial() -> None:
    study = _fixture("NCT01967251")
    assert _codes(study["progressStatus"][0]["state"])[0] == (rs.RESEARCH_STUDY_STATUS, "withdrawn")
    # Withdrawn before enrolling anyone: an actual enrolment of 0, not a missing number.
    assert study["recruitment"]["actualNumber"] == 0
    assert study["status"] == "active"


def test_observational_trial() -> None:
    record = _json_record(FIXTURES / "ctgov-v2-json" / "NCT00007696.json")
    study = rs.to_fhir_research_study(record)
    assert [(rs.STUDY_DESIGN, "SEVCO:01002"), (CTGOV_ENUM + "StudyType", "OBSERVATIONAL")] in [
        _codes(d) for d in study["studyDesign"]
    ]
    assert "phase" not in study
    assert "primaryPurposeType" not in study
    assert study["recruitment"]["targetNumber"] == record.design.enrollment_count


@pytest.mark.parametrize("nct", ["NCT00106392", "NCT00544076", "NCT03478891"])
def test_trials_with_posted_results(nct: str) -> None:
    study = _fixture(nct)
    links = [a["document"]["url"] for a in study["relatedArtifact"] if "results" in a.get("display", "")]
    assert links == [f"https://clinicaltrials.gov/study/{nct}?tab=results"]
    assert "Results posted: Yes" in [c.get("text") for c in study["classifier"]]
    activities = [
        p["valueCodeableConcept"]["coding"][0]["code"]
        for ext in study["extension"]
        for p in ext["extension"]
        if p["url"] == "activity"
    ]
    assert "results-posting" in activities


# --- behaviours on hand-built records -------------------------------------------------------------


def test_dates_of_the_same_type_share_one_overall_entry() -> None:
    status = StatusInfo(
        overall_status="COMPLETED",
        start=DateStruct(date="2010-01-05", type="ACTUAL"),
        completion=DateStruct(date="2012-03", type="ACTUAL"),
    )
    progress = rs.to_fhir_research_study(_record(status=status))["progressStatus"]
    assert progress[1] == {
        "state": {
            "coding": [{"system": rs.RESEARCH_STUDY_STATUS, "code": "overall-study", "display": "Overall study"}],
            "text": "Overall study",
        },
        "actual": True,
        "period": {"start": "2010-01-05", "end": "2012-03"},
    }


def test_inverted_dates_do_not_break_per1() -> None:
    status = StatusInfo(start=DateStruct(date="2015-06", type="ACTUAL"), completion=DateStruct(date="2014-01"))
    study = rs.to_fhir_research_study(_record(status=status))
    assert study["period"] == {"start": "2015-06"}
    periods = [e["period"] for e in study["progressStatus"]]
    assert periods == [{"start": "2015-06"}, {"end": "2014-01"}]


def test_suspended_and_expanded_access_statuses() -> None:
    suspended = rs.status_concept("SUSPENDED")
    assert _codes(suspended)[0] == (rs.RESEARCH_STUDY_STATUS, "temporarily-closed-to-accrual")
    available = rs.status_concept("AVAILABLE")
    assert _codes(available) == [(rs.CTGOV_STATUS, "AVAILABLE")]


def test_unknown_values_stay_text_only() -> None:
    record = _record(
        status=StatusInfo(overall_status="PAUSED_FOR_AUDIT"),
        design=Design(
            primary_purpose="NEW_PURPOSE", phases=["PHASE5"], intervention_model="ZIGZAG", who_masked=["NOBODY"]
        ),
        arms=[Arm(label="A", type="NEW_ARM")],
        lead_sponsor=Org(name="Acme", agency_class="NEW_CLASS"),
        officials=[Official(name="X", role="NEW_ROLE")],
    )
    study = rs.to_fhir_research_study(record)
    assert study["progressStatus"][0]["state"] == {"text": "PAUSED_FOR_AUDIT"}
    assert study["primaryPurposeType"] == {"text": "NEW_PURPOSE"}
    assert study["phase"] == {"text": "PHASE5"}
    assert study["studyDesign"] == [{"text": "ZIGZAG"}, {"text": "NOBODY"}]
    assert study["comparisonGroup"][0]["type"] == {"text": "NEW_ARM"}
    assert study["associatedParty"][0]["classifier"] == [{"text": "NEW_CLASS"}]
    assert study["associatedParty"][1]["role"] == {"text": "NEW_ROLE"}


def test_untyped_eudract_number_is_recognised_and_says_so() -> None:
    study = rs.to_fhir_research_study(_record(secondary_ids=[Identifier(id="2004-002737-39")]))
    identifier = study["identifier"][1]
    assert identifier["system"] == "https://eudract.ema.europa.eu"
    assert identifier["type"] == {"text": "EudraCT Number (recognised from the number's format)"}


def test_every_secondary_id_is_kept() -> None:
    secondary = [
        Identifier(id="U01AR045444", type="NIH", link="https://reporter.nih.gov/quickSearch/U01AR045444"),
        Identifier(id="CDR0000355366", type="REGISTRY", domain="NCI PDQ"),
        Identifier(id="MDA-ID-01304", type="OTHER", domain="UT MD Anderson Cancer Center"),
        Identifier(id="02-M-0262"),
    ]
    study = rs.to_fhir_research_study(_record(secondary_ids=secondary, id_aliases=["NCT00075127"]))
    values = [(i["value"], i.get("use"), i.get("assigner", {}).get("display")) for i in study["identifier"]]
    assert values == [
        ("NCT00000001", "official", "ClinicalTrials.gov"),
        ("NCT00075127", "old", "ClinicalTrials.gov"),
        ("U01AR045444", None, "U.S. National Institutes of Health"),
        ("CDR0000355366", None, "NCI PDQ"),
        ("MDA-ID-01304", None, "UT MD Anderson Cancer Center"),
        ("02-M-0262", None, None),
    ]
    links = [a["document"]["url"] for a in study["relatedArtifact"] if "Link for identifier" in a.get("display", "")]
    assert links == ["https://reporter.nih.gov/quickSearch/U01AR045444"]


def test_nct_system_is_the_registries_table_system() -> None:
    entry, own = rs.registry_of("NCT01854957")
    assert entry is not None and entry["system"] == rs.NCT_SYSTEM
    assert own == "NCT01854957"


def test_who_ictrp_ids_use_the_registry_system_and_keep_the_trial_id() -> None:
    record = TrialRecord(
        source=SourceInfo(registry="ctis", format="who-ictrp-xml"),
        registry_id="CTIS2023-507385-11-00",
        secondary_ids=[
            Identifier(id="NCT05697861", type="REGISTRY", domain="ClinicalTrials.gov"),
            Identifier(id="DRKS00015863"),
        ],
    )
    identifiers = rs.to_fhir_research_study(record)["identifier"]
    assert identifiers[0] == {
        "use": "official",
        "system": "https://euclinicaltrials.eu/clinicalTrialId",
        "value": "2023-507385-11-00",
        "assigner": {"display": "EU Clinical Trials Information System (CTIS)"},
    }
    assert identifiers[1]["value"] == "CTIS2023-507385-11-00"
    assert identifiers[1]["type"] == {"text": "WHO ICTRP TrialID"}
    assert [(i.get("system"), i["value"]) for i in identifiers[2:]] == [
        (rs.NCT_SYSTEM, "NCT05697861"),
        ("https://drks.de", "DRKS00015863"),
    ]


def test_registering_organization_that_sponsors_is_not_repeated() -> None:
    record = _record(
        organization=Org(name="Acme  Pharma"), lead_sponsor=Org(name="acme pharma", agency_class="INDUSTRY")
    )
    study = rs.to_fhir_research_study(record)
    assert _role_codes(study) == ["lead-sponsor"]
    classifiers = [_codes(c) for c in study["associatedParty"][0]["classifier"]]
    assert classifiers == [[(CTGOV_ENUM + "AgencyClass", "INDUSTRY")], [(rs.PARTY_ORG_TYPE, "industry")]]


def test_enrollment_without_type_is_not_guessed() -> None:
    study = rs.to_fhir_research_study(_record(design=Design(enrollment_count=40)))
    assert study["recruitment"] == {"eligibility": {"reference": "Group/nct00000001-eligibility"}}
    assert {"text": "Enrollment: 40 (actual/estimated not stated)"} in study["classifier"]


def test_retracted_reference() -> None:
    ref = Reference(pmid="111", type="RESULT", citation="Paper.", retractions=[Retraction(pmid="222", source="J")])
    artifacts = rs.to_fhir_research_study(_record(references=[ref]))["relatedArtifact"]
    paper, notice = artifacts[0], artifacts[1]
    assert paper["type"] == "citation"
    assert paper["publicationStatus"] == "retired"
    assert paper["document"] == {"url": "https://pubmed.ncbi.nlm.nih.gov/111/"}
    assert notice["display"] == "Retraction notice for PMID 111 (J)"
    assert notice["document"] == {"url": "https://pubmed.ncbi.nlm.nih.gov/222/"}


def test_large_document() -> None:
    doc = Document(
        label="Study Protocol and Statistical Analysis Plan",
        type_abbrev="Prot_SAP",
        has_protocol=True,
        has_sap=True,
        has_icf=False,
        date="2017-03-16",
        upload_date="2020-07-27T16:54",
        filename="Prot_SAP_000.pdf",
        url="https://cdn.clinicaltrials.gov/large-docs/01/NCT00000001/Prot_SAP_000.pdf",
        size=1186084,
    )
    artifact = rs.to_fhir_research_study(_record(documents=[doc]))["relatedArtifact"][0]
    assert artifact["document"] == {"url": doc.url, "title": "Prot_SAP_000.pdf", "creation": "2017-03-16"}
    assert artifact["publicationDate"] == "2020-07-27"
    assert (
        artifact["display"] == "Study Protocol and Statistical Analysis Plan; uploaded 2020-07-27T16:54; 1186084 bytes"
    )
    assert [c["text"] for c in artifact["classifier"]] == ["Study Protocol", "Statistical Analysis Plan"]


def test_mesh_terms_match_conditions_and_interventions() -> None:
    record = _record(
        conditions=["Breast cancer"],
        condition_meshes=[MeshTerm(id="D001943", term="Breast Neoplasms"), MeshTerm(id="D009369", term="Neoplasms")],
        interventions=[Intervention(name="Herceptin", other_names=["Trastuzumab"])],
        intervention_meshes=[MeshTerm(id="D000068878", term="Trastuzumab")],
    )
    study = rs.to_fhir_research_study(record)
    assert [c["text"] for c in study["condition"]] == ["Breast cancer", "Breast Neoplasms", "Neoplasms"]
    assert study["focus"] == [
        {
            "concept": {
                "coding": [{"system": rs.MESH, "code": "D000068878", "display": "Trastuzumab"}],
                "text": "Herceptin",
            }
        }
    ]


def test_ictrp_parties_funders_and_ethics_committees() -> None:
    review = EthicsReview(status="Approved", approval_date="2023-02-24", contact_email="ek@example.org")
    record = _record(
        lead_sponsor=Org(name="Charité"),
        funders=[Org(name="Novartis Pharma GmbH")],
        ethics_reviews=[review, EthicsReview(status="Submitted approval")],
    )
    study = rs.to_fhir_research_study(record)
    assert _role_codes(study) == ["lead-sponsor", "funding-source", "irb", "irb"]
    funder = study["associatedParty"][1]
    assert funder["party"] == {
        "reference": f"Organization/{ids.organization_id('Novartis Pharma GmbH')}",
        "display": "Novartis Pharma GmbH",
    }
    first, second = study["associatedParty"][2:]
    assert first["classifier"] == [{"text": "Ethics review status: Approved"}]
    assert first["party"]["reference"].startswith("PractitionerRole/nct00000001-role-")
    assert first["party"]["display"] == "ek@example.org"
    assert "party" not in second and second["classifier"] == [{"text": "Ethics review status: Submitted approval"}]
    [approval] = study["extension"]
    assert approval["extension"] == [
        {"url": "activity", "valueCodeableConcept": {"text": "Ethics committee approval"}},
        {"url": "actual", "valueBoolean": True},
        {"url": "period", "valuePeriod": {"start": "2023-02-24", "end": "2023-02-24"}},
    ]


def test_registry_condition_codes_code_the_matching_condition_or_stand_alone() -> None:
    record = _record(
        conditions=["Familial amyloid polyneuropathy", "Other text"],
        condition_codes=[
            ConditionCode(system="MedDRA", version="20.0", level="LLT", code="10057949",
                          display="Familial Amyloid Polyneuropathy", system_organ_class="100000004850"),
            ConditionCode(system="ICD-10-GM", code="E85.0"),
        ],
    )  # fmt: skip
    study = rs.to_fhir_research_study(record)
    assert study["condition"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/mdr",
                    "version": "20.0",
                    "code": "10057949",
                    "display": "Familial Amyloid Polyneuropathy",
                }
            ],
            "text": "Familial amyloid polyneuropathy",
        },
        {"text": "Other text"},
        {"coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": "E85.0"}]},
    ]
    # A bare EMA number is no MedDRA code: the system organ class stays text.
    assert study["keyword"] == [{"text": "MedDRA System Organ Class: 100000004850"}]


def test_eu_objectives_regions_and_legacy_flags() -> None:
    record = _record(
        objectives=[
            Objective(kind="primary", description="To evaluate X"),
            Objective(kind="secondary", description="Y"),
        ],
        location_countries=["Japan"],
        location_regions=["Asia except Japan"],
        outcomes=[Outcome(kind="primary", measure="M", time_frame="6 months", safety_issue=False)],
        oversight=Oversight(is_fda_regulated=True, is_section_801=False),
        design=Design(endpoint_classification="Safety/Efficacy Study"),
        status=StatusInfo(last_update_submit="2015-08-01", last_update_submit_qc="2015-08-03"),
    )
    study = rs.to_fhir_research_study(record)
    assert [(o["type"]["coding"][0]["code"], o["type"]["text"], o["description"]) for o in study["objective"]] == [
        ("primary", "Main objective", "To evaluate X"),
        ("secondary", "Secondary objective", "Y"),
    ]
    assert study["region"][1] == {"text": "Asia except Japan"}
    assert study["outcomeMeasure"][0]["description"] == "Time frame: 6 months\n\nSafety issue: No"
    texts = [c.get("text") for c in study["classifier"]]
    assert "FDA regulated (legacy flag, before the drug/device split): Yes" in texts
    assert "Applicable clinical trial under FDAAA section 801 (legacy flag): No" in texts
    assert "Endpoint classification: Safety/Efficacy Study" in texts
    # The update QC follows the update submission, with a text activity (no code means it).
    activities = [e["extension"][0]["valueCodeableConcept"] for e in study["extension"]]
    assert activities[1] == {"text": "Update submission Quality Check"}
    assert activities[0]["coding"][0]["code"] == "update-submission"


def test_unposted_results_and_violations() -> None:
    annotations = RegistryAnnotations(
        unposted_responsible_party="Steven Carswell, Principal Investigator, COG Analytics",
        unposted_events=[
            ResultsEvent(type="RELEASE", date="2024-05-29"),
            ResultsEvent(type="UNRELEASE", date_unknown=True),
        ],
        violation_events=[ViolationEvent(type="VIOLATION_IDENTIFIED", description="Failure to Submit.",
                                         issued_date="2021-07-26", posted_date="2021-07-29")],
    )  # fmt: skip
    study = rs.to_fhir_research_study(_record(annotations=annotations))
    release, cancel = study["extension"]
    assert release["extension"] == [
        {
            "url": "activity",
            "valueCodeableConcept": {
                "coding": [
                    {"system": rs.REGISTRATION_ACTIVITY, "code": "results-submission", "display": "Results submission"},
                    {"system": CTGOV_ENUM + "UnpostedEventType", "code": "RELEASE", "display": "Submitted"},
                ],
                "text": "Results submission (not posted)",
            },
        },
        {"url": "actual", "valueBoolean": True},
        {"url": "period", "valuePeriod": {"start": "2024-05-29", "end": "2024-05-29"}},
    ]
    assert cancel["extension"][0]["valueCodeableConcept"]["text"] == "Results submission canceled (date not known)"
    assert [p["url"] for p in cancel["extension"]] == ["activity", "actual"]  # no date, no period
    assert [n["text"] for n in study["note"]] == [
        "Responsible party named on the unposted results: Steven Carswell, Principal Investigator, COG Analytics",
        "FDAAA 801 violation event: Violation identified by FDA (VIOLATION_IDENTIFIED), issued 2021-07-26, "
        "posted 2021-07-29. Failure to Submit.",
    ]


def test_no_protocol_reference_without_arms_or_interventions() -> None:
    assert "protocol" not in rs.to_fhir_research_study(_record())


def test_minimal_record() -> None:
    study = rs.to_fhir_research_study(_record())
    assert study["status"] == "active"
    assert study["recruitment"] == {"eligibility": {"reference": "Group/nct00000001-eligibility"}}
    assert study["identifier"] == [
        {
            "use": "official",
            "system": rs.NCT_SYSTEM,
            "value": "NCT00000001",
            "assigner": {"display": "ClinicalTrials.gov"},
        }
    ]


# --- every field lands ----------------------------------------------------------------------------


def _maximal_record() -> TrialRecord:
    """Every TrialRecord field set, free texts unique so their presence in the output can be checked."""
    contact = Contact(
        name="Cc Name",
        role="CONTACT",
        phone="+1 555 0101",
        phone_ext="77",
        email="cc@example.org",
        affiliation="Contact affiliation text",
        address="Contact address text",
    )
    return TrialRecord(
        source=SourceInfo(
            registry="ctgov",
            format="ctgov-v2-json",
            url="https://clinicaltrials.gov/study/NCT09999999",
            version="2025-01-02",
        ),
        registry_id="NCT09999999",
        id_aliases=["NCT09999998"],
        org_study_id=Identifier(
            id="ORG-STUDY-1", type="NIH", domain="Org-id domain text", link="https://org.example/id"
        ),
        secondary_ids=[
            Identifier(
                id="2020-000001-11", type="EUDRACT_NUMBER", domain="Sec domain text", link="https://sec.example/1"
            )
        ],
        brief_title="Brief title text",
        official_title="Official title text",
        acronym="ACRO-TEXT",
        organization=Org(name="Registering Org Text", agency_class="OTHER_GOV"),
        status=StatusInfo(
            overall_status="UNKNOWN",
            last_known_status="ACTIVE_NOT_RECRUITING",
            status_verified_date="2021-02",
            why_stopped="Why stopped text",
            delayed_posting=True,
            expanded_access=ExpandedAccessInfo(
                has_expanded_access=True, nct_id="NCT09999997", status_for_nct_id="AVAILABLE"
            ),
            start=DateStruct(date="2019-01-03", type="ACTUAL"),
            primary_completion=DateStruct(date="2021-04-05", type="ESTIMATED"),
            completion=DateStruct(date="2021-06-07", type="ESTIMATED"),
            first_submit="2018-11-01",
            first_submit_qc="2018-11-02",
            first_post=DateStruct(date="2018-11-03", type="ACTUAL"),
            results_waived=True,
            results_first_submit="2022-01-04",
            results_first_submit_qc="2022-01-05",
            results_first_post=DateStruct(date="2022-01-06", type="ACTUAL"),
            disp_first_submit="2022-02-04",
            disp_first_submit_qc="2022-02-05",
            disp_first_post=DateStruct(date="2022-02-06", type="ACTUAL"),
            last_update_submit="2024-03-01",
            last_update_submit_qc="2024-03-03",
            last_update_post=DateStruct(date="2024-03-02", type="ACTUAL"),
            registered_retrospectively=True,
        ),
        responsible_party=ResponsibleParty(
            type="PRINCIPAL_INVESTIGATOR",
            investigator_full_name="Rp Investigator Name",
            investigator_title="Rp title text",
            investigator_affiliation="Rp affiliation text",
            old_name_title="Rp old name text",
            old_organization="Rp old org text",
        ),
        lead_sponsor=Org(name="Lead Sponsor Text", agency_class="INDUSTRY"),
        collaborators=[Org(name="Collaborator Text", agency_class="NIH")],
        funders=[Org(name="Funder Text", agency_class="OTHER")],
        ethics_reviews=[
            EthicsReview(
                status="Ethics status text",
                approval_date="2018-10-29",
                contact_name="Ethics contact name text",
                contact_address="Ethics address text",
                contact_phone="+49 761 0000",
                contact_email="ethics@example.org",
            )
        ],
        oversight=Oversight(
            has_dmc=True,
            is_fda_regulated_drug=True,
            is_fda_regulated_device=True,
            is_unapproved_device=True,
            is_ppsd=True,
            is_us_export=True,
            fdaaa801_violation=True,
            is_fda_regulated=True,
            is_section_801=True,
            authorities=["Authority text"],
        ),
        brief_summary="Brief summary text",
        detailed_description="Detailed description text",
        conditions=["Condition text"],
        condition_codes=[
            ConditionCode(
                system="MedDRA",
                code="10007509",
                display="Condition code display text",
                version="20.0",
                level="PT",
                system_organ_class="10007541 - Soc display text",
            )
        ],
        therapeutic_areas=["Therapeutic area text"],
        keywords=["Keyword text"],
        design=Design(
            study_type="INTERVENTIONAL",
            phases=["PHASE2", "PHASE3"],
            allocation="RANDOMIZED",
            intervention_model="FACTORIAL",
            intervention_model_description="Model description text",
            primary_purpose="PREVENTION",
            observational_model="COHORT",
            time_perspective="PROSPECTIVE",
            masking="DOUBLE",
            masking_description="Masking description text",
            who_masked=["PARTICIPANT", "INVESTIGATOR"],
            bio_spec_retention="SAMPLES_WITH_DNA",
            bio_spec_description="Biospecimen description text",
            enrollment_count=321,
            enrollment_type="ESTIMATED",
            target_duration="7 Months",
            patient_registry=True,
            expanded_access_types=["INDIVIDUAL"],
            number_of_arms=3,
            endpoint_classification="Endpoint classification text",
            expanded_access_pointer_count=5,
            planned_subjects_per_age_group=[AgeGroupCount(label="Age group label text", count=86)],
        ),
        arms=[
            Arm(
                label="Arm label text",
                type="SHAM_COMPARATOR",
                description="Arm description text",
                intervention_names=["Drug: X"],
            )
        ],
        interventions=[
            Intervention(
                type="DRUG",
                name="Intervention name text",
                description="Intervention description text",
                arm_group_labels=["Arm label text"],
                other_names=["Other name text"],
            )
        ],
        outcomes=[
            Outcome(
                kind="secondary",
                measure="Measure text",
                description="Outcome description text",
                time_frame="Time frame text",
                safety_issue=True,
            )
        ],
        objectives=[Objective(kind="primary", description="Objective description text")],
        eligibility=Eligibility(criteria="Criteria text", sex="ALL", minimum_age="18 Years"),
        central_contacts=[contact],
        officials=[Official(name="Official Name", affiliation="Official affiliation text", role="STUDY_CHAIR")],
        sites=[
            Site(
                facility="Facility text",
                city="City",
                country="Italy",
                geo_point=GeoPoint(lat=1.5, lon=2.5),
                contacts=[contact],
            )
        ],
        location_countries=["Germany"],
        location_regions=["Region text"],
        removed_countries=["Removed country text"],
        references=[
            Reference(
                pmid="12345678",
                type="BACKGROUND",
                citation="Citation text",
                retractions=[Retraction(pmid="87654321", source="Retraction source text")],
            )
        ],
        see_also_links=[Link(url="https://see.example/also", label="See-also label text")],
        avail_ipds=[
            AvailIpd(
                id="Avail id text", type="Avail type text", url="https://ipd.example/doc", comment="Avail comment text"
            )
        ],
        ipd_sharing=IpdSharing(
            ipd_sharing="YES",
            description="IPD description text",
            info_types=["CSR"],
            time_frame="IPD time frame text",
            access_criteria="IPD access text",
            url="https://ipd.example/share",
        ),
        documents=[
            Document(
                label="Document label text",
                type_abbrev="Prot",
                has_protocol=True,
                has_sap=True,
                has_icf=True,
                date="2020-05-06",
                upload_date="2020-05-07T08:09",
                filename="Prot_000.pdf",
                url="https://docs.example/Prot_000.pdf",
                size=4242,
            )
        ],
        no_sap=True,
        condition_meshes=[MeshTerm(id="D000000001", term="Condition mesh text")],
        condition_mesh_ancestors=[MeshTerm(id="D000000002", term="Condition ancestor text")],
        intervention_meshes=[MeshTerm(id="D000000003", term="Intervention mesh text")],
        intervention_mesh_ancestors=[MeshTerm(id="D000000004", term="Intervention ancestor text")],
        has_results=True,
        annotations=RegistryAnnotations(
            unposted_responsible_party="Unposted party text",
            unposted_events=[ResultsEvent(type="RESET", date="2023-04-05", date_unknown=True)],
            violation_events=[
                ViolationEvent(
                    type="PENALTY_IMPOSED",
                    description="Violation description text",
                    creation_date="2022-06-06",
                    issued_date="2022-05-26",
                    release_date="2021-08-17",
                    posted_date="2022-06-07",
                )
            ],
        ),
        other_registry_records=True,
        unmapped=["protocolSection.newModule.newField"],
    )


def _excluded(path: str) -> bool:
    generic = path.replace("[0]", "[]")
    return any(
        generic == key or generic.startswith(key + ".") or generic.startswith(key + "[")
        for key in (*rs.HANDLED_ELSEWHERE, *rs.NOT_MAPPED)
    )


def _leaves(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _leaves(value, path + ".")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from _leaves(item, path + "[0].")
                else:
                    yield path + "[0]", item
        else:
            yield path, value


CODED_FIELDS = ("status.*.type", "design.enrollment_type", "design.expanded_access_types*")
"""Fields whose value is represented by a code, a boolean or an element choice rather than verbatim
(actual/estimated -> ``actual``, enrollment type -> targetNumber/actualNumber, expanded-access type -> display)."""


def _coded(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in CODED_FIELDS)


def _leaf_slot(data: dict[str, Any], path: str) -> tuple[Any, Any]:
    """The container holding the leaf at ``path`` (a ``_leaves`` path) in a dumped record, and its key."""
    keys = path.replace("[0]", ".0").split(".")
    target: Any = data
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    return target, int(keys[-1]) if keys[-1].isdigit() else keys[-1]


def _changed(record: TrialRecord, path: str) -> TrialRecord:
    """The record with the leaf at ``path`` flipped (booleans) or replaced by another value."""
    data = record.model_dump()
    target, last = _leaf_slot(data, path)
    value = target[last]
    target[last] = (not value) if isinstance(value, bool) else "OTHER_VALUE"
    return TrialRecord.model_validate(data)


def test_every_record_field_lands_in_the_study_or_is_owned_elsewhere() -> None:
    record = _maximal_record()
    study = rs.to_fhir_research_study(record)
    dumped = json.dumps(study, ensure_ascii=False)
    missing = []
    checked = 0
    for path, value in _leaves(record):
        if _excluded(path):
            continue
        assert value is not None, f"maximal record leaves {path} empty"
        checked += 1
        if isinstance(value, bool) or _coded(path):
            # A flag or coded value lands when changing it changes the output.
            if rs.to_fhir_research_study(_changed(record, path)) == study:
                missing.append(path)
        elif str(value) not in dumped:
            missing.append(path)
    assert missing == []
    assert checked > 120


def test_handled_elsewhere_names_real_fields() -> None:
    paths = {path.replace("[0]", "[]") for path, _ in _leaves(_maximal_record())}
    for key in (*rs.HANDLED_ELSEWHERE, *rs.NOT_MAPPED):
        assert any(p == key or p.startswith(key + ".") or p.startswith(key + "[") for p in paths), key


# --- shape -----------------------------------------------------------------------------------------


def _r5_elements() -> set[str]:
    wanted = "StructureDefinition-ResearchStudy.json"
    [(_, data)] = iter_package_json("hl7.fhir.r5.core", "5.0.0", lambda name: name == wanted)
    return {e["path"].split(".", 1)[1] for e in data["snapshot"]["element"] if "." in e["path"]}


def _paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{prefix}{key}"
            yield from _paths(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            yield from _paths(item, prefix)


def _no_empties(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value) and all(_no_empties(v) for v in value.values())
    if isinstance(value, list):
        return bool(value) and all(_no_empties(v) for v in value)
    return value is not None and value != ""


def test_maximal_study_uses_only_r5_elements_and_no_empties() -> None:
    study = rs.to_fhir_research_study(_maximal_record())
    assert _no_empties(study)
    elements = _r5_elements()
    # Only the first two levels are ResearchStudy's own backbone elements; deeper ones are data types.
    top = {p for p in _paths(study) if p.count(".") == 0} - {"resourceType"}
    backbone = {
        p
        for p in _paths(study)
        if p.count(".") == 1
        and p.split(".")[0]
        in {"label", "associatedParty", "progressStatus", "recruitment", "comparisonGroup", "outcomeMeasure"}
    }
    assert top <= elements
    assert backbone <= elements


def test_output_is_deterministic() -> None:
    record = _maximal_record()
    first = json.dumps(rs.to_fhir_research_study(record), sort_keys=True)
    assert json.dumps(rs.to_fhir_research_study(record.model_copy(deep=True)), sort_keys=True) == first


# --- real records ----------------------------------------------------------------------------------


@pytest.mark.skipif(not (CORPUS / "ctgov-v2-json").is_dir(), reason="corpus not available")
def test_corpus_v2_records_map() -> None:
    files = sorted((CORPUS / "ctgov-v2-json").glob("*.json"))
    assert files
    for path in files:
        record = _json_record(path)
        study = rs.to_fhir_research_study(record)
        assert _no_empties(study), path.name
        first = study["progressStatus"][0]["state"]
        assert (rs.CTGOV_STATUS, record.status.overall_status) in _codes(first), path.name
        assert len(study.get("comparisonGroup", [])) == len(record.arms)
        assert len(study.get("site", [])) == len(record.sites)


def _fixture_records() -> Iterator[Any]:
    from adapter.readers import read_items

    fixtures = Path(__file__).resolve().parents[2] / "fixtures"
    for path in sorted(fixtures.rglob("*")):
        if path.suffix in (".json", ".xml") and "expected" not in path.parts:
            try:
                items = list(read_items(path.read_bytes(), path.name))
            except Exception:  # fixtures of bad input: not records
                continue
            yield from (item.record for item in items if item.record is not None)


def _blanked(model: ModelT) -> ModelT:
    """``model`` with every string the model accepts empty set to ``""`` (also where it was absent),
    an empty string added to each string list and an all-blank entry to each list of objects."""
    cls = type(model)
    values = {name: getattr(model, name) for name in cls.model_fields}
    for name, value in list(values.items()):
        if isinstance(value, BaseModel):
            blank: Any = _blanked(value)
        elif isinstance(value, list):
            blank = [*value, _blanked(value[0]) if isinstance(value[0], BaseModel) else ""] if value else [""]
        elif isinstance(value, str) or value is None:
            blank = ""
        else:
            continue
        try:  # dates, numbers and objects refuse "": they keep their value
            cls.model_validate({**values, name: blank})
        except ValidationError:
            continue
        values[name] = blank
    return cls.model_validate(values)


def _with_leaf_blanked(record: TrialRecord, path: str) -> TrialRecord | None:
    """The record with the string at ``path`` (a ``_leaves`` path) set to ``""``, or None if it refuses it."""
    data = record.model_dump()
    target, last = _leaf_slot(data, path)
    if not isinstance(target[last], str):
        return None
    target[last] = ""
    try:
        return TrialRecord.model_validate(data)
    except ValidationError:
        return None


def _awkward_records() -> Iterator[TrialRecord]:
    """Records with empty strings wherever the model allows them: the fixture and maximal records
    blanked whole, and the maximal record with one string at a time blanked."""
    maximal = _maximal_record()
    for record in [*_fixture_records(), maximal]:
        yield _blanked(record)
    for path, _ in _leaves(maximal):
        record = _with_leaf_blanked(maximal, path)
        if record is not None:
            yield record


def test_elements_built_clean_need_no_compaction():
    """``BUILT_CLEAN`` elements skip compaction: their builders must never leave an empty value inside
    (nor a padded string), whatever empty strings the record holds."""
    from mappings.fhir import compact
    from mappings.research_study import BUILT_CLEAN

    checked = 0
    for record in [*_fixture_records(), _maximal_record(), *_awkward_records()]:
        resource = rs.to_fhir_research_study(record)
        for key in BUILT_CLEAN & resource.keys():
            assert compact(resource[key]) == resource[key], (record.registry_id, key)
            checked += 1
    assert checked > 1000


def test_awkward_records_are_blank_where_the_model_allows():
    blank = _blanked(_maximal_record())
    assert blank.brief_title == "" and blank.secondary_ids[-1].id == "" and blank.keywords[-1] == ""
    assert blank.status.start is not None and blank.status.start.date  # a date refuses ""
    assert sum(1 for _ in _awkward_records()) > 100


def test_texts_around_an_empty_value_are_not_padded():
    record = TrialRecord(
        source=SourceInfo(registry="", format=""),
        registry_id="",
        secondary_ids=[Identifier(id="", link="https://example.org/a")],
        annotations=RegistryAnnotations(unposted_events=[ResultsEvent(type="", date="2020-01-02")]),
    )
    study = rs.to_fhir_research_study(record)
    activity = study["extension"][-1]["extension"][0]
    assert activity == {"url": "activity", "valueCodeableConcept": {"text": "Unposted results event:"}}
    artifacts = study["relatedArtifact"]
    link = {"type": "documentation", "display": "Link for identifier", "document": {"url": "https://example.org/a"}}
    assert link in artifacts
    provenance = next(a for a in artifacts if a["type"] == "transforms")
    assert provenance["display"] == "record"
    assert provenance["classifier"] == [{"text": "Source registry: ; format:"}]


def test_code_tables_hold_no_empty_or_padded_strings():
    """BUILT_CLEAN builders put table strings in as they are; absent values are ``null``, never ``""``."""
    codes = REPO / "mappings" / "codes"

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    for path in sorted(codes.glob("*.json")):
        for text in strings(json.loads(path.read_text(encoding="utf-8"))):
            assert text and text == text.strip(), (path.name, text)


def test_compact_resource_keeps_built_clean_elements_whole_and_compacts_the_rest():
    from mappings.fhir import compact_resource

    resource = {"a": " x ", "b": [], "c": {"d": None, "e": [" "]}, "f": [{"g": 1}], "h": [], "i": None}
    assert compact_resource(resource, frozenset({"f", "h"})) == {"a": "x", "f": [{"g": 1}]}
    assert compact_resource(resource) == {"a": "x", "f": [{"g": 1}]}


REGISTRY_ID_EXAMPLES = (
    *("NCT01234567", "CTIS2023-512345-12-00", "2023-512345-12-00", "EUCTR2010-012345-12-GB", "2010-012345-12-3RD"),
    *("2010-012345-12", "ISRCTN12345678", "DRKS00012345", "ChiCTR2000012345", "ChiCTR-IOR-12345678"),
    *("JPRN-UMIN000012345", "UMIN000012345", "jRCTs031190001", "JapicCTI-123456", "JMA-IIA00123", "C000000123"),
    *("KCT0001234", "NL-OMON12345", "NTR1234", "NL1234", "NL12345.078.12", "ACTRN12612000123456"),
    *("ACTRN12612000123456p", "CTRI/2020/01/012345", "IRCT20100101123456N1", "PACTR202001123456789"),
    *("RBR-abc123", "RPCEC00000123", "PER-123-12", "SLCTR/2020/012", "TCTR20200101001", "LBCTR2020012345"),
    *("ITMCTR2020123456", "U1111-1234-5678", "", "2011-001", "NCT0123456", "NCT012345678", "EUCTR", "JPRN-"),
)


def test_one_pass_registry_match_agrees_with_trying_each_pattern():
    """``registry_of`` matches all registry patterns in one alternation: the same entry as trying them in turn."""
    import re

    from mappings.codes import table

    patterns = [(re.compile(entry["id_regex"]), entry) for entry in table("registries").values()]
    values = set(REGISTRY_ID_EXAMPLES)
    for record in [*_fixture_records(), _maximal_record()]:
        values |= {record.registry_id, *record.id_aliases, *(i.id for i in record.secondary_ids)}
    hit = set()
    for value in sorted(values):
        expected = next((entry for pattern, entry in patterns if pattern.match(value)), None)
        assert rs.registry_of(value)[0] == expected, value
        if expected is not None:
            hit.add(expected["system"])
    assert hit == {entry["system"] for entry in table("registries").values()}  # every alternative tried
