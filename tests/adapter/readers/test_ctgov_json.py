"""ClinicalTrials.gov API v2 JSON reader: the seed trial fact by fact, every fixture, the input
shapes, unknown fields, bad records, messy values, and (when present) the whole corpus."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from lxml import etree

from adapter.errors import InputError, RecordError
from adapter.readers.ctgov_json import iter_studies, read_study
from adapter.record import TrialRecord

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "fixtures"
SEED_JSON = FIXTURES / "seed" / "NCT01854957.json"
SEED_XML = FIXTURES / "seed" / "NCT01854957.xml"
V2_FIXTURES = sorted((FIXTURES / "ctgov-v2-json").glob("*.json"))
SHARED = REPO.parent / "shared" / "corpus"
CORPUS = SHARED / "ctgov-v2-json"
METADATA = SHARED / "schemas" / "ctgov-api-v2-studies-metadata.json"


def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


@pytest.fixture(scope="module")
def seed_obj() -> dict[str, Any]:
    return load(SEED_JSON)


@pytest.fixture(scope="module")
def seed(seed_obj: dict[str, Any]) -> TrialRecord:
    return read_study(seed_obj, str(SEED_JSON))


def minimal(nct: str = "NCT01234567", **protocol: Any) -> dict[str, Any]:
    """A small valid study; keyword arguments add or replace protocolSection modules."""
    study: dict[str, Any] = {
        "protocolSection": {
            "identificationModule": {
                "nctId": nct,
                "orgStudyIdInfo": {"id": "ORG-1"},
                "briefTitle": "A small study",
            },
        },
        "hasResults": False,
    }
    study["protocolSection"].update(protocol)
    return study


# --- the seed trial, fact by fact ---------------------------------------------------------------


def test_seed_identity(seed: TrialRecord) -> None:
    assert seed.registry_id == "NCT01854957"
    assert seed.id_aliases == []
    assert seed.org_study_id is not None
    assert (seed.org_study_id.id, seed.org_study_id.type) == ("MESEMS", None)
    assert [(i.id, i.type) for i in seed.secondary_ids] == [("2011-001295-19", "EUDRACT_NUMBER")]
    assert seed.brief_title == "MEsenchymal StEm Cells for Multiple Sclerosis"
    assert seed.official_title is not None and seed.official_title.startswith("MEsenchymal StEm Cells for Multiple")
    assert seed.acronym == "MESEMS"
    assert seed.organization is not None
    assert (seed.organization.name, seed.organization.agency_class) == ("University of Genova", "OTHER")


def test_seed_provenance(seed: TrialRecord) -> None:
    assert seed.source.registry == "ctgov"
    assert seed.source.format == "ctgov-v2-json"
    assert seed.source.url == "https://clinicaltrials.gov/study/NCT01854957"
    assert seed.source.version is None  # the fixture has no versionHolder (see fixtures/README.md)
    assert seed.has_results is False
    assert seed.unmapped == []


def test_seed_status_and_dates_keep_precision(seed: TrialRecord) -> None:
    status = seed.status
    assert (status.overall_status, status.last_known_status) == ("UNKNOWN", "RECRUITING")
    assert status.status_verified_date == "2013-05"
    assert status.start is not None and (status.start.date, status.start.type) == ("2012-07", None)
    assert status.primary_completion is not None
    assert (status.primary_completion.date, status.primary_completion.type) == ("2014-07", "ESTIMATED")
    assert status.completion is not None and (status.completion.date, status.completion.type) == (
        "2014-09",
        "ESTIMATED",
    )
    assert (status.first_submit, status.first_submit_qc) == ("2013-05-08", "2013-05-13")
    assert status.first_post is not None and (status.first_post.date, status.first_post.type) == (
        "2013-05-16",
        "ESTIMATED",
    )
    assert status.last_update_submit == "2013-05-13"
    assert status.last_update_post is not None and status.last_update_post.date == "2013-05-16"
    assert status.expanded_access is not None and status.expanded_access.has_expanded_access is False
    assert status.why_stopped is None and status.results_first_submit is None


def test_seed_design(seed: TrialRecord) -> None:
    design = seed.design
    assert design.study_type == "INTERVENTIONAL"
    assert design.phases == ["PHASE1", "PHASE2"]
    assert design.allocation == "RANDOMIZED"
    assert design.intervention_model == "CROSSOVER"
    assert design.primary_purpose == "TREATMENT"
    assert design.masking == "QUADRUPLE"
    assert design.who_masked == ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]
    assert (design.enrollment_count, design.enrollment_type) == (20, "ESTIMATED")
    assert design.number_of_arms is None  # a legacy-XML-only statement


def test_seed_arms_and_interventions(seed: TrialRecord) -> None:
    assert [(a.label, a.type) for a in seed.arms] == [
        ("Autologous Mesenchymal Stem Cells", "EXPERIMENTAL"),
        ("Suspension media", "PLACEBO_COMPARATOR"),
    ]
    assert seed.arms[0].intervention_names == ["Biological: Autologous Mesenchymal Stem Cells"]
    assert seed.arms[1].intervention_names == []
    assert all(a.description and a.description.startswith("At week 0 a single infusion") for a in seed.arms)
    (intervention,) = seed.interventions
    assert (intervention.type, intervention.name) == ("BIOLOGICAL", "Autologous Mesenchymal Stem Cells")
    assert intervention.description == "Single dose of 1-2 x 1000000 cells/Kg body weight"
    assert intervention.arm_group_labels == ["Autologous Mesenchymal Stem Cells"]


def test_seed_outcomes_match_the_xml(seed: TrialRecord) -> None:
    xml = etree.parse(str(SEED_XML)).getroot()
    expected = [
        (kind, el.findtext("measure"), el.findtext("description"), el.findtext("time_frame"))
        for kind in ("primary", "secondary")
        for el in xml.findall(f"{kind}_outcome")
    ]
    assert [(o.kind, o.measure, o.description, o.time_frame) for o in seed.outcomes] == expected
    assert [o.kind for o in seed.outcomes].count("primary") == 2
    assert [o.kind for o in seed.outcomes].count("secondary") == 5


def test_seed_text_matches_the_xml(seed: TrialRecord) -> None:
    xml = etree.parse(str(SEED_XML)).getroot()
    summary = " ".join((xml.findtext("brief_summary/textblock") or "").split())
    assert seed.brief_summary == summary
    assert seed.detailed_description is not None
    # Paragraph breaks survive, legacy bullets became markdown items.
    assert "preclinical studies.\n\nPatients will be randomized" in seed.detailed_description
    assert "\n* treatment's safety" in seed.detailed_description


def test_seed_eligibility(seed: TrialRecord) -> None:
    eligibility = seed.eligibility
    assert (eligibility.minimum_age, eligibility.maximum_age) == ("18 Years", "50 Years")
    assert eligibility.sex == "ALL"
    assert eligibility.healthy_volunteers is False
    assert eligibility.std_ages == ["ADULT"]
    criteria = eligibility.criteria or ""
    assert criteria.startswith("Inclusion Criteria:\n\n* 1\\. Diagnosis of MS\n\n")
    assert "\n\nExclusion Criteria:\n\n* 1\\. RRMS not fulfilling inclusion criteria\n" in criteria
    assert "* 13\\. eGFR \\< 60 mL/min/1.73m2" in criteria
    assert criteria.count("\n* ") == 4 + 14


def test_seed_people(seed: TrialRecord) -> None:
    assert [(o.name, o.role, o.affiliation) for o in seed.officials] == [
        ("Giancarlo Comi, MD", "PRINCIPAL_INVESTIGATOR", "Ospedale San Raffaele"),
        ("Bruno Bonetti, MD", "PRINCIPAL_INVESTIGATOR", "Azienda Ospedaliera Universitaria Integrata di Verona"),
    ]
    (contact,) = seed.central_contacts
    assert (contact.name, contact.role, contact.phone, contact.email) == (
        "Antonio Uccelli, MD",
        "CONTACT",
        "+390103537028",
        "MESEMS@unige.it",
    )
    party = seed.responsible_party
    assert party is not None
    assert (party.type, party.investigator_full_name, party.investigator_title, party.investigator_affiliation) == (
        "SPONSOR_INVESTIGATOR",
        "Antonio Uccelli",
        "MD",
        "University of Genova",
    )


def test_seed_site(seed: TrialRecord) -> None:
    (site,) = seed.sites
    assert (site.facility, site.city, site.state, site.zip, site.country) == (
        "University of Genova",
        "Genova",
        None,
        "16132",
        "Italy",
    )
    assert site.status == "RECRUITING"
    assert site.geo_point is not None and (site.geo_point.lat, site.geo_point.lon) == (44.40478, 8.94438)
    assert [(c.name, c.role) for c in site.contacts] == [("Antonio Uccelli, MD, PhD", "PRINCIPAL_INVESTIGATOR")]
    assert seed.location_countries == ["Italy"]
    assert seed.removed_countries == []


def test_seed_sponsor_and_collaborators(seed: TrialRecord) -> None:
    orgs = [seed.lead_sponsor, *seed.collaborators]
    assert [(o.name, o.agency_class) for o in orgs if o is not None] == [
        ("Antonio Uccelli", "OTHER"),
        ("Azienda Ospedaliera Universitaria Integrata Verona", "OTHER"),
        ("Ospedale San Raffaele", "OTHER"),
    ]
    assert seed.oversight is not None and seed.oversight.has_dmc is True
    assert seed.oversight.is_fda_regulated_drug is None


def test_seed_conditions_keywords_meshes_references(seed: TrialRecord) -> None:
    assert seed.conditions == ["Multiple Sclerosis"]
    assert seed.keywords == ["Multiple sclerosis", "Mesenchymal stem cells"]
    assert [(m.id, m.term) for m in seed.condition_meshes] == [
        ("D000009103", "Multiple Sclerosis"),
        ("D000012598", "Sclerosis"),
    ]
    assert len(seed.condition_mesh_ancestors) == 7
    assert seed.intervention_meshes == [] and seed.intervention_mesh_ancestors == []
    assert [(r.pmid, r.type) for r in seed.references] == [(None, "DERIVED"), ("31072380", "DERIVED")]
    assert seed.references[1].citation is not None and "Trials. 2019 May 9;20(1):263" in seed.references[1].citation


def test_seed_fixture_is_pretty_printed_in_api_order(seed_obj: dict[str, Any]) -> None:
    text = SEED_JSON.read_text(encoding="utf-8")
    assert text.startswith('{\n  "protocolSection": {\n    "identificationModule": {\n      "nctId": "NCT01854957"')
    assert list(seed_obj) == ["protocolSection", "derivedSection", "hasResults"]


# --- every repository fixture -------------------------------------------------------------------


@pytest.mark.parametrize("path", V2_FIXTURES, ids=lambda p: p.stem)
def test_fixture_reads(path: Path) -> None:
    obj = load(path)
    record = read_study(obj, path.name)
    assert record.registry_id == path.stem
    assert record.source.url == f"https://clinicaltrials.gov/study/{path.stem}"
    assert record.source.version == obj["derivedSection"]["miscInfoModule"]["versionHolder"]
    assert record.brief_title == obj["protocolSection"]["identificationModule"]["briefTitle"].strip()
    assert record.has_results is obj["hasResults"]
    locations = obj["protocolSection"].get("contactsLocationsModule", {}).get("locations", [])
    assert len(record.sites) == len(locations)
    # Fixtures are real registry data: nothing in them is malformed.
    assert not [entry for entry in record.unmapped if "(" in entry]


def test_fixture_documents_get_provided_docs_urls() -> None:
    record = read_study(load(FIXTURES / "ctgov-v2-json" / "NCT03478891.json"))
    (document,) = record.documents
    assert document.filename == "Prot_SAP_ICF_002.pdf"
    assert document.url == "https://clinicaltrials.gov/ProvidedDocs/91/NCT03478891/Prot_SAP_ICF_002.pdf"
    assert (document.has_protocol, document.has_sap, document.has_icf) == (True, True, True)
    assert document.date == "2019-01-14"
    assert document.upload_date == "2020-02-04T13:07"
    assert document.size == 18087809
    assert document.type_abbrev == "Prot_SAP_ICF"


def test_fixture_enum_values_pass_through() -> None:
    obj = load(FIXTURES / "ctgov-v2-json" / "NCT00498680.json")
    record = read_study(obj)
    design = obj["protocolSection"]["designModule"]
    assert record.design.phases == design["phases"]
    assert record.design.who_masked == design["designInfo"]["maskingInfo"]["whoMasked"]
    assert record.status.overall_status == "UNKNOWN"
    assert record.responsible_party is not None
    assert record.responsible_party.old_name_title == "Prof. Vardi Yoram"


# --- input shapes -------------------------------------------------------------------------------


def test_search_page_and_array_and_single(seed_obj: dict[str, Any]) -> None:
    other = minimal()
    page = {"studies": [seed_obj, other], "nextPageToken": "abc", "totalCount": 2}
    assert [r.registry_id for r in iter_studies(page, "page.json")] == ["NCT01854957", "NCT01234567"]
    assert [r.registry_id for r in iter_studies([other, seed_obj], "download.json")] == [
        "NCT01234567",
        "NCT01854957",
    ]
    assert [r.registry_id for r in iter_studies(seed_obj)] == ["NCT01854957"]
    assert list(iter_studies({"studies": []})) == []


def test_iteration_stops_or_collects_bad_studies() -> None:
    page = {"studies": [minimal(), {"protocolSection": {"identificationModule": {}}}, "junk", minimal("NCT07654321")]}
    with pytest.raises(RecordError, match=r"page\.json#studies\[1\]"):
        list(iter_studies(page, "page.json"))
    errors: list[InputError] = []
    records = list(iter_studies(page, "page.json", errors=errors))
    assert [r.registry_id for r in records] == ["NCT01234567", "NCT07654321"]
    assert [type(e) for e in errors] == [RecordError, InputError]
    assert "page.json#studies[2]" in str(errors[1])


@pytest.mark.parametrize("bad", [None, "text", 42, 1.5, True])
def test_non_dict_input_is_an_input_error(bad: Any) -> None:
    with pytest.raises(InputError):
        read_study(bad, "x.json")
    with pytest.raises(InputError):
        list(iter_studies(bad, "x.json"))


def test_not_a_study_and_bad_page() -> None:
    with pytest.raises(InputError, match="no protocolSection"):
        read_study({"resourceType": "ResearchStudy"}, "x.json")
    with pytest.raises(InputError, match="not a list"):
        list(iter_studies({"studies": {"a": 1}}, "x.json"))
    with pytest.raises(RecordError, match="protocolSection is list"):
        read_study({"protocolSection": []}, "x.json")


# --- records without a usable NCT id ------------------------------------------------------------


def test_missing_nct_id_names_the_record() -> None:
    study = minimal()
    del study["protocolSection"]["identificationModule"]["nctId"]
    study["protocolSection"]["identificationModule"]["organization"] = {"fullName": "Uni X", "class": "OTHER"}
    with pytest.raises(RecordError) as raised:
        read_study(study, "batch.json#studies[7]")
    message = str(raised.value)
    assert message.startswith("batch.json#studies[7]: study has no NCT id")
    assert "'ORG-1'" in message and "'A small study'" in message and "'Uni X'" in message
    assert raised.value.code == "required"


@pytest.mark.parametrize("nct", ["", "   ", "NCT123", "12345678", "NCT012345678", 12345678, ["NCT01234567"]])
def test_empty_or_invalid_nct_id_is_a_record_error(nct: Any) -> None:
    with pytest.raises(RecordError, match="NCT id"):
        read_study(minimal(nct=nct), "x.json")


def test_no_identification_module_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="no identificationModule"):
        read_study({"protocolSection": {"statusModule": {}}}, "x.json")


def test_nct_id_is_normalised() -> None:
    assert read_study(minimal(nct=" nct01234567 ")).registry_id == "NCT01234567"


# --- unknown fields and registry additions ------------------------------------------------------


def test_unknown_keys_are_reported_deduplicated_and_sorted(seed_obj: dict[str, Any]) -> None:
    study = copy.deepcopy(seed_obj)
    protocol = study["protocolSection"]
    protocol["identificationModule"]["brandNewField"] = "x"
    protocol["futureModule"] = {"a": 1}
    for arm in protocol["armsInterventionsModule"]["armGroups"]:
        arm["armColour"] = "blue"  # the same unknown key twice: reported once
    protocol["contactsLocationsModule"]["locations"][0]["contacts"][0]["pager"] = "123"
    study["derivedSection"]["miscInfoModule"] = {"versionHolder": "2024-09-24", "newMiscThing": 1}
    study["newSection"] = {}
    record = read_study(study)
    assert record.unmapped == [
        "derivedSection.miscInfoModule.newMiscThing",
        "newSection",
        "protocolSection.armsInterventionsModule.armGroups.armColour",
        "protocolSection.contactsLocationsModule.locations.contacts.pager",
        "protocolSection.futureModule",
        "protocolSection.identificationModule.brandNewField",
    ]
    assert record.source.version == "2024-09-24"


def test_website_export_copies_are_skipped_only_when_they_add_nothing(seed_obj: dict[str, Any]) -> None:
    study = copy.deepcopy(seed_obj)
    module = study["protocolSection"]["contactsLocationsModule"]
    module["locations_nested"] = copy.deepcopy(module["locations"])
    for intervention in study["protocolSection"]["armsInterventionsModule"]["interventions"]:
        intervention["interventionMappedName"] = []
    record = read_study(study)
    assert record.unmapped == []
    assert len(record.sites) == 1  # the exporter's duplicate list is not read as more sites
    module["locations_nested"][0]["city"] = "Elsewhere"
    study["protocolSection"]["armsInterventionsModule"]["interventions"][0]["interventionMappedName"] = ["MSC"]
    assert read_study(study).unmapped == [
        "protocolSection.armsInterventionsModule.interventions.interventionMappedName "
        "(website export field, not in the v2 schema: ['MSC'])",
        "protocolSection.contactsLocationsModule.locations_nested "
        "(website export copy of locations that differs from locations)",
    ]


def test_known_fields_are_read_and_ignored_sections_are_not_reported(seed_obj: dict[str, Any]) -> None:
    study = copy.deepcopy(seed_obj)
    study["protocolSection"]["designModule"]["nPtrsToThisExpAccNctId"] = 2
    study["documentSection"] = {"largeDocumentModule": {"noSap": True, "largeDocs": []}}
    study["resultsSection"] = {"participantFlowModule": {"groups": []}}
    study["annotationSection"] = {"annotationModule": {"unpostedAnnotation": {}}}
    study["derivedSection"]["miscInfoModule"] = {
        "versionHolder": "2024-09-24",
        "submissionTracking": {"submissionInfos": []},
        "modelPredictions": {"bmiLimits": {"minBmi": 18.5}},
    }
    record = read_study(study)
    assert record.unmapped == []
    assert record.design.expanded_access_pointer_count == 2
    assert record.no_sap is True
    assert record.annotations is None  # an empty annotation states nothing


def test_annotations_unposted_results_and_violations() -> None:
    study = minimal()
    study["annotationSection"] = {
        "annotationModule": {
            "unpostedAnnotation": {
                "unpostedResponsibleParty": "Steven Carswell, Principal Investigator, COG Analytics",
                "unpostedEvents": [
                    {"type": "RELEASE", "date": "2024-05-29"},
                    {"type": "RESET", "date": "2024-06-24"},
                    {"type": "UNRELEASE", "dateUnknown": True},
                    {"date": "2024-07-01"},
                ],
            },
            "violationAnnotation": {
                "violationEvents": [
                    {
                        "type": "VIOLATION_IDENTIFIED",
                        "description": "Failure to Submit.",
                        "creationDate": "2021-07-28",
                        "issuedDate": "2021-07-26",
                        "releaseDate": "2018-04-12",
                        "postedDate": "2021-07-29",
                    }
                ]
            },
        }
    }
    record = read_study(study)
    annotations = record.annotations
    assert annotations is not None
    assert annotations.unposted_responsible_party == "Steven Carswell, Principal Investigator, COG Analytics"
    assert [(e.type, e.date, e.date_unknown) for e in annotations.unposted_events] == [
        ("RELEASE", "2024-05-29", None),
        ("RESET", "2024-06-24", None),
        ("UNRELEASE", None, True),
    ]
    [violation] = annotations.violation_events
    assert (violation.type, violation.description) == ("VIOLATION_IDENTIFIED", "Failure to Submit.")
    assert (violation.creation_date, violation.issued_date, violation.release_date, violation.posted_date) == (
        "2021-07-28",
        "2021-07-26",
        "2018-04-12",
        "2021-07-29",
    )
    assert record.unmapped == [
        "annotationSection.annotationModule.unpostedAnnotation.unpostedEvents (entry without type)"
    ]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/ctgov-v2-json not available")
def test_corpus_annotations() -> None:
    record = read_study(load(CORPUS / "NCT03064438.json"))
    assert record.oversight is not None and record.oversight.fdaaa801_violation is True
    assert record.annotations is not None
    assert [e.type for e in record.annotations.violation_events] == ["CORRECTION_CONFIRMED", "VIOLATION_IDENTIFIED"]
    record = read_study(load(CORPUS / "NCT04574193.json"))
    assert record.annotations is not None
    assert [e.type for e in record.annotations.unposted_events] == ["RELEASE", "RESET", "RELEASE", "RESET"]


def test_results_section_without_has_results_implies_results() -> None:
    study = minimal()
    del study["hasResults"]
    assert read_study(study).has_results is None
    study["resultsSection"] = {"moreInfoModule": {}}
    assert read_study(study).has_results is True


def _metadata_study(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A study with every field the v2 metadata lists, each with a value of its declared type."""
    scalars: dict[str, Any] = {
        "text": "x",
        "markup": "m",
        "boolean": True,
        "integer": 3,
        "long": 3,
        "number": 3,
        "PartialDate": "2020-01",
        "NormalizedDate": "2020-01-02",
        "DateTimeMinutes": "2020-01-02T10:00",
        "NormalizedTime": "18 Years",
        "GeoPoint": {"lat": 1.5, "lon": 2.5},
    }
    obj: dict[str, Any] = {}
    for node in nodes:
        kind: str = node["type"]
        is_list = kind.endswith("[]")
        base = kind.removesuffix("[]")
        if node.get("children"):
            value: Any = _metadata_study(node["children"])
        elif node.get("isEnum"):
            value = "SOME_VALUE"
        else:
            value = scalars[base]
        obj[node["name"]] = [value] if is_list else value
    return obj


@pytest.mark.skipif(not METADATA.exists(), reason="../shared/corpus/schemas not available")
def test_every_field_of_the_v2_metadata_is_known() -> None:
    study = _metadata_study(json.loads(METADATA.read_text(encoding="utf-8")))
    study["protocolSection"]["identificationModule"]["nctId"] = "NCT01234567"
    record = read_study(study)
    # Every known field has its place: nothing unknown, nothing malformed.
    assert record.unmapped == []
    # TrialRecord fields that only legacy XML or WHO ICTRP fill.
    not_in_v2 = {
        "org_study_id": {"domain"},
        "oversight": {"authorities", "is_fda_regulated", "is_section_801"},
        "design": {"number_of_arms", "endpoint_classification", "planned_subjects_per_age_group"},
        "status": {"last_update_submit_qc", "registered_retrospectively"},
    }
    only_elsewhere = {
        "funders", "ethics_reviews", "condition_codes", "therapeutic_areas", "objectives", "location_regions",
        "other_registry_records",
    }  # fmt: skip
    for name in TrialRecord.model_fields:
        if name == "unmapped" or name in only_elsewhere:
            continue
        value = getattr(record, name)
        if isinstance(value, list):
            assert value, f"{name} not filled from a complete study"
        elif hasattr(value, "model_dump"):
            dumped = value.model_dump(exclude=not_in_v2.get(name, set()))
            empty = [key for key, item in dumped.items() if item is None or item == []]
            assert not empty, f"{name}: {empty} not filled from a complete study"
        else:
            assert value is not None, f"{name} not filled from a complete study"
    assert record.design.expanded_access_types == ["INDIVIDUAL", "INTERMEDIATE", "TREATMENT"]


# --- messy values -------------------------------------------------------------------------------


def test_empty_and_whitespace_strings_are_absent() -> None:
    study = minimal(
        descriptionModule={"briefSummary": "   ", "detailedDescription": ""},
        conditionsModule={"conditions": ["", "  Asthma  ", "   "], "keywords": []},
        eligibilityModule={"minimumAge": "N/A", "maximumAge": "", "sex": " ALL "},
        contactsLocationsModule={"centralContacts": [{"name": "", "email": " "}], "overallOfficials": [{"name": ""}]},
    )
    study["protocolSection"]["identificationModule"].update({"acronym": "  ", "officialTitle": "\n\t"})
    record = read_study(study)
    assert record.acronym is None and record.official_title is None
    assert record.brief_summary is None and record.detailed_description is None
    assert record.conditions == ["Asthma"]
    eligibility = record.eligibility
    assert (eligibility.minimum_age, eligibility.maximum_age, eligibility.sex) == (None, None, "ALL")
    assert record.central_contacts == [] and record.officials == []
    assert record.unmapped == []


def test_whitespace_is_normalised() -> None:
    study = minimal(
        descriptionModule={
            "briefSummary": "  First paragraph.   \r\n\r\n\r\n\r\nSecond\x07 paragraph.  \n* item  \n* item 2\t",
        },
        armsInterventionsModule={"armGroups": [{"label": "  Arm\n  A  ", "description": "  indented\n  text"}]},
    )
    study["protocolSection"]["identificationModule"]["briefTitle"] = "A  title\nsplit\u00a0oddly "
    record = read_study(study)
    assert record.brief_title == "A title split oddly"
    assert record.brief_summary == "First paragraph.\n\nSecond paragraph.\n* item\n* item 2"
    assert record.arms[0].label == "Arm A"
    assert record.arms[0].description == "indented\n  text"


def test_entities_are_unescaped() -> None:
    study = minimal(
        eligibilityModule={"eligibilityCriteria": "BMI \\&lt; 37 and QTc \\&gt; 450 ms; HR \\&#8805; 100; R&D; &foo;"},
        armsInterventionsModule={
            "interventions": [{"name": "Surgery", "description": "* incisions (typically \\&amp;lt;1 cm)"}]
        },
        contactsLocationsModule={"locations": [{"facility": "Children&#39;s Hospital &amp; Clinics", "city": "X"}]},
        outcomesModule={"primaryOutcomes": [{"measure": "Fear", "description": "a patient\\&#39;s fear"}]},
    )
    study["protocolSection"]["identificationModule"]["briefTitle"] = "Q&amp;A &lt;pilot&gt; AT&T &notin"
    record = read_study(study)
    assert record.brief_title == "Q&A <pilot> AT&T &notin"
    # Inside markdown, a decoded character CT.gov escapes stays escaped; others lose the backslash.
    assert record.eligibility.criteria == "BMI \\< 37 and QTc \\> 450 ms; HR ≥ 100; R&D; &foo;"
    assert record.interventions[0].description == "* incisions (typically \\<1 cm)"
    assert record.sites[0].facility == "Children's Hospital & Clinics"
    assert record.outcomes[0].description == "a patient's fear"


def test_wrong_types_are_coerced_or_reported() -> None:
    study = minimal(
        statusModule={
            "overallStatus": "RECRUITING",
            "startDateStruct": {"date": "2012-13", "type": "ACTUAL"},
            "completionDateStruct": {"date": 2014},
            "primaryCompletionDateStruct": "2014-01",
            "studyFirstSubmitDate": "May 8, 2013",
            "statusVerifiedDate": "2013-05",
            "expandedAccessInfo": {"hasExpandedAccess": "No"},
        },
        designModule={
            "phases": "PHASE2",
            "enrollmentInfo": {"count": "20", "type": "ESTIMATED"},
            "designInfo": {"maskingInfo": {"whoMasked": {"a": 1}}},
        },
        conditionsModule={"conditions": "Asthma", "keywords": [1, None, {"x": 1}]},
        eligibilityModule={"healthyVolunteers": "Yes", "genderBased": 1, "stdAges": ["ADULT", 5]},
        contactsLocationsModule={
            "locations": {"facility": "Only site", "zip": 16132, "geoPoint": {"lat": "44.4", "lon": 8.9}},
            "overallOfficials": ["Dr Who"],
        },
        oversightModule={"oversightHasDmc": "maybe", "isFdaRegulatedDrug": 0},
    )
    study["hasResults"] = "false"
    record = read_study(study)
    assert record.status.start is None
    assert record.status.completion is not None and record.status.completion.date == "2014"
    assert record.status.primary_completion is None
    assert record.status.first_submit is None
    assert record.status.status_verified_date == "2013-05"
    assert record.status.expanded_access is not None and record.status.expanded_access.has_expanded_access is False
    assert record.design.phases == ["PHASE2"]
    assert record.design.enrollment_count == 20
    assert record.design.who_masked == []
    assert record.conditions == ["Asthma"]
    assert record.keywords == ["1"]
    assert (record.eligibility.healthy_volunteers, record.eligibility.gender_based) == (True, True)
    assert record.eligibility.std_ages == ["ADULT", "5"]
    (site,) = record.sites
    assert (site.facility, site.zip) == ("Only site", "16132")
    assert site.geo_point is not None and (site.geo_point.lat, site.geo_point.lon) == (44.4, 8.9)
    assert record.oversight is not None
    assert (record.oversight.has_dmc, record.oversight.is_fda_regulated_drug) == (None, False)
    assert record.has_results is False
    assert record.unmapped == [
        "protocolSection.conditionsModule.keywords (expected text, got object)",
        "protocolSection.contactsLocationsModule.overallOfficials (expected object, got text)",
        "protocolSection.designModule.designInfo.maskingInfo.whoMasked (expected list, got object)",
        "protocolSection.oversightModule.oversightHasDmc (not a boolean: 'maybe')",
        "protocolSection.statusModule.primaryCompletionDateStruct (expected object, got text)",
        "protocolSection.statusModule.startDateStruct.date (invalid date '2012-13')",
        "protocolSection.statusModule.studyFirstSubmitDate (invalid date 'May 8, 2013')",
    ]


@pytest.mark.parametrize(
    ("count", "expected", "reported"),
    [(20, 20, False), (20.0, 20, False), ("1,200", 1200, False), ("", None, False), (None, None, False),
     (True, None, True), (-3, None, True), ("twenty", None, True), (2.5, None, True), ([20], None, True)],
)  # fmt: skip
def test_enrollment_count_values(count: Any, expected: int | None, reported: bool) -> None:
    record = read_study(minimal(designModule={"enrollmentInfo": {"count": count}}))
    assert record.design.enrollment_count == expected
    assert bool(record.unmapped) is reported


def test_out_of_range_geo_point_and_entries_without_required_names_are_reported() -> None:
    study = minimal(
        contactsLocationsModule={"locations": [{"city": "Nowhere", "geoPoint": {"lat": 95.0, "lon": 8.9}}]},
        armsInterventionsModule={"armGroups": [{"type": "EXPERIMENTAL", "description": "no label"}]},
        outcomesModule={"secondaryOutcomes": [{"timeFrame": "1 year"}]},
        referencesModule={"references": [{"type": "BACKGROUND"}], "seeAlsoLinks": [{"label": "no url"}]},
    )
    record = read_study(study)
    assert record.sites[0].geo_point is None
    assert record.arms == [] and record.outcomes == [] and record.references == [] and record.see_also_links == []
    assert record.unmapped == [
        "protocolSection.armsInterventionsModule.armGroups (entry without label)",
        "protocolSection.contactsLocationsModule.locations.geoPoint (incomplete or out-of-range point 95.0, 8.9)",
        "protocolSection.outcomesModule.secondaryOutcomes (entry without measure)",
        "protocolSection.referencesModule.references (entry without citation or pmid)",
        "protocolSection.referencesModule.seeAlsoLinks (entry without url)",
    ]


def test_document_url_is_built_from_nct_and_quoted_filename() -> None:
    study = minimal()
    study["documentSection"] = {
        "largeDocumentModule": {
            "largeDocs": [
                {"typeAbbrev": "ICF", "hasIcf": True, "label": "Consent", "date": "2019-02", "filename": "ICF 001.pdf"},
                {"typeAbbrev": "Prot", "hasProtocol": "true", "date": "2019-02-30", "size": "12"},
            ]
        }
    }
    record = read_study(study)
    first, second = record.documents
    assert first.url == "https://clinicaltrials.gov/ProvidedDocs/67/NCT01234567/ICF%20001.pdf"
    assert (first.date, first.has_icf) == ("2019-02", True)
    assert (second.url, second.filename, second.has_protocol, second.size) == (None, None, True, 12)
    assert second.date is None
    assert record.unmapped == ["documentSection.largeDocumentModule.largeDocs.date (invalid date '2019-02-30')"]


def test_control_character_prefilter_agrees_with_the_regex() -> None:
    # _has_control (bytes of the UTF-8 encoding) decides whether _CONTROL.sub runs: it must find
    # exactly what the regex finds, for every BMP character (lone surrogates included) and beyond.
    from adapter.readers.ctgov_json import _CONTROL, _has_control

    for code in [*range(0x10000), 0x1F600, 0x10FFFF]:
        text = f"a{chr(code)}b"
        assert _has_control(text) == (_CONTROL.search(text) is not None), hex(code)
    assert _has_control("\u00e9\ud800 long text\n\twith\r\nbreaks") is False
    assert _has_control("\u00e9 text with a \x7f in it") is True


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _leaf_paths(item, (*path, index))
    return paths


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


_JUNK: list[Any] = [None, "", "  \n ", 0, -1, 2.5, True, [], {}, ["x", None], {"x": [1]}, "&amp;&#0;&#9999999;", "\x00"]


def test_no_value_anywhere_in_a_study_crashes_the_reader(seed_obj: dict[str, Any]) -> None:
    """Every node of the seed study replaced by every kind of junk: a record or one of our errors."""
    study = copy.deepcopy(seed_obj)
    study["documentSection"] = load(FIXTURES / "ctgov-v2-json" / "NCT03478891.json")["documentSection"]
    nct_path = ("protocolSection", "identificationModule", "nctId")
    reads = 0
    for path in _leaf_paths(study):
        for junk in _JUNK:
            mutated = copy.deepcopy(study)
            _set(mutated, path, junk)
            try:
                record = read_study(mutated, "fuzz")
            except RecordError:
                assert path[: len(nct_path)] == nct_path[: len(path)], path
                continue
            reads += 1
            assert record.registry_id == "NCT01854957"
    assert reads > 1000


# --- the shared corpus --------------------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/ctgov-v2-json not available")
def test_whole_corpus_reads(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(CORPUS.glob("*.json"))
    assert files
    started = time.perf_counter()
    problems = []
    for path in files:
        record = read_study(load(path), path.name)
        assert record.registry_id == path.stem
        problems += [f"{path.stem}: {entry}" for entry in record.unmapped if "(" in entry]
    elapsed = time.perf_counter() - started
    assert problems == []
    with capsys.disabled():
        print(f"\nctgov_json: {len(files)} corpus records in {elapsed:.2f} s ({len(files) / elapsed:.0f} records/s)")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/ctgov-v2-json not available")
def test_corpus_reads_without_anything_unmapped() -> None:
    seen: set[str] = set()
    for path in sorted(CORPUS.glob("*.json")):
        seen.update(read_study(load(path)).unmapped)
    # The website export's copies (locations_nested, interventionMappedName) add nothing in the corpus.
    assert seen == set()
