"""Legacy ClinicalTrials.gov XML reader and the safe XML parser it uses.

The seed trial fact by fact, every repository fixture, the legacy vocabulary, the text rendering,
hostile and broken input, and (when present) the whole corpus with its reading speed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lxml import etree

from adapter.errors import InputError, RecordError
from adapter.readers.ctgov_xml import markdown_from_textblock, read_clinical_study
from adapter.readers.safe_xml import parse_xml
from adapter.record import TrialRecord

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "fixtures"
SEED = FIXTURES / "seed" / "NCT01854957.xml"
XML_FIXTURES = sorted((FIXTURES / "ctgov-xml").glob("*.xml"))
CORPUS = REPO.parent / "shared" / "corpus" / "ctgov-xml"

# What the reader reports for the seed and fixtures: every element of them has its place.
KNOWN_UNMAPPED: set[str] = set()


def study(body: str = "", nct: str = "NCT01234567", header: bool = True) -> bytes:
    """A small valid record; ``body`` adds elements (the reader does not depend on their order)."""
    head = (
        "<required_header><download_date>ClinicalTrials.gov processed this data on March 5, 2021"
        "</download_date><link_text>Link to the current ClinicalTrials.gov record.</link_text>"
        f"<url>https://clinicaltrials.gov/show/{nct}</url></required_header>"
        if header
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<clinical_study>'
        f"{head}<id_info><org_study_id>ORG-1</org_study_id><nct_id>{nct}</nct_id></id_info>"
        "<brief_title>A small study</brief_title>"
        "<sponsors><lead_sponsor><agency>Sponsor Inc</agency><agency_class>Industry</agency_class>"
        "</lead_sponsor></sponsors><source>Sponsor Inc</source>"
        f"<overall_status>Completed</overall_status><study_type>Interventional</study_type>{body}"
        "</clinical_study>"
    ).encode()


def read(body: str = "", **kwargs: str) -> TrialRecord:
    return read_clinical_study(study(body, **kwargs), "test.xml")


# --------------------------------------------------------------------------------------------
# safe_xml
# --------------------------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE clinical_study [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<clinical_study><brief_title>&xxe;</brief_title></clinical_study>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz a="&lol9;">&lol9;</lolz>"""


@pytest.mark.parametrize("document", [XXE, BILLION_LAUGHS], ids=["xxe-file-etc-passwd", "billion-laughs"])
def test_internal_subset_is_refused(document: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(InputError, match="DOCTYPE with an internal subset") as caught:
        parse_xml(document, "evil.xml")
    assert str(caught.value).startswith("evil.xml: refused")
    assert "root:" not in str(caught.value)  # nothing of /etc/passwd leaked into the message
    assert time.perf_counter() - start < 1.0  # refused before any expansion


def test_internal_subset_in_utf16_is_refused() -> None:
    document = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    with pytest.raises(InputError, match="internal subset"):
        parse_xml(document.encode("utf-16"))


def test_reader_refuses_xxe_too() -> None:
    with pytest.raises(InputError, match="internal subset"):
        read_clinical_study(XXE, "evil.xml")


def test_external_dtd_is_never_loaded(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY e "EXPANDED"><!ATTLIST clinical_study injected CDATA "yes">')
    document = f'<!DOCTYPE clinical_study SYSTEM "{dtd.as_uri()}"><clinical_study>&e;</clinical_study>'
    root = parse_xml(document.encode())
    assert "EXPANDED" not in etree.tostring(root, encoding="unicode")
    assert root.get("injected") is None  # no attribute defaults from the DTD either


def test_external_dtd_that_is_not_a_dtd_is_not_even_read() -> None:
    # If libxml2 opened /etc/passwd as the external subset, parsing would fail on its content
    # (it does with lxml's collect_ids=False, which safe_xml deliberately leaves unset).
    root = parse_xml(b'<!DOCTYPE clinical_study SYSTEM "/etc/passwd"><clinical_study>x</clinical_study>')
    assert root.text == "x"


def test_external_dtd_on_the_network_is_not_fetched() -> None:
    start = time.perf_counter()
    root = parse_xml(b'<!DOCTYPE a PUBLIC "-//X//DTD x//EN" "http://192.0.2.1/never.dtd"><a>ok</a>')
    assert root.text == "ok"
    assert time.perf_counter() - start < 1.0  # no connection attempt to the unroutable address


def test_plain_doctype_and_doctype_text_in_content_are_accepted() -> None:
    assert parse_xml(b"<!DOCTYPE clinical_study><clinical_study/>").tag == "clinical_study"
    root = parse_xml(b"<a><![CDATA[<!DOCTYPE x [<!ENTITY e 'x'>]>]]></a>")
    assert root.text.startswith("<!DOCTYPE")


def test_malformed_xml_reports_line_and_column() -> None:
    with pytest.raises(InputError, match=r"^bad\.xml: malformed XML at line 3, column \d+: .*mismatch"):
        parse_xml(b"<a>\n<b>\n</a>", "bad.xml")


def test_undefined_entity_is_malformed() -> None:
    with pytest.raises(InputError, match="Entity 'e' not defined"):
        parse_xml(b"<a>&e;</a>")


@pytest.mark.parametrize("data", [b"", b"   \n\t "], ids=["empty", "whitespace"])
def test_empty_input(data: bytes) -> None:
    with pytest.raises(InputError, match="empty input"):
        parse_xml(data, "empty.xml")
    with pytest.raises(InputError, match="empty input"):
        read_clinical_study(data, "empty.xml")


def test_parse_xml_wants_bytes() -> None:
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]


def test_comments_and_processing_instructions_are_dropped() -> None:
    root = parse_xml(b"<?xml version='1.0'?><!-- c --><a><!-- inside --><?pi x?><b/></a>")
    assert [child.tag for child in root] == ["b"]


# --------------------------------------------------------------------------------------------
# The seed trial, fact by fact
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed() -> TrialRecord:
    return read_clinical_study(SEED.read_bytes(), str(SEED))


def test_seed_identity(seed: TrialRecord) -> None:
    assert seed.registry_id == "NCT01854957"
    assert seed.org_study_id is not None and seed.org_study_id.id == "MESEMS"
    assert seed.org_study_id.type is None
    assert [(i.id, i.type) for i in seed.secondary_ids] == [("2011-001295-19", "EUDRACT_NUMBER")]
    assert seed.acronym == "MESEMS"
    assert seed.brief_title == "MEsenchymal StEm Cells for Multiple Sclerosis"
    assert seed.official_title is not None and seed.official_title.startswith("MEsenchymal StEm Cells for Multiple")
    assert seed.source.registry == "ctgov"
    assert seed.source.format == "ctgov-xml"
    assert seed.source.url == "https://clinicaltrials.gov/study/NCT01854957"
    assert seed.source.version == "2020-07-28"


def test_seed_design(seed: TrialRecord) -> None:
    design = seed.design
    assert design.study_type == "INTERVENTIONAL"
    assert design.phases == ["PHASE1", "PHASE2"]
    assert (design.enrollment_count, design.enrollment_type) == (20, "ESTIMATED")
    assert design.allocation == "RANDOMIZED"
    assert design.intervention_model == "CROSSOVER"
    assert design.primary_purpose == "TREATMENT"
    assert design.masking == "QUADRUPLE"
    assert design.who_masked == ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]
    assert design.number_of_arms == 2


def test_seed_arms_interventions_outcomes(seed: TrialRecord) -> None:
    assert [(a.label, a.type) for a in seed.arms] == [
        ("Autologous Mesenchymal Stem Cells", "EXPERIMENTAL"),
        ("Suspension media", "PLACEBO_COMPARATOR"),
    ]
    assert seed.arms[0].intervention_names == ["Biological: Autologous Mesenchymal Stem Cells"]
    assert seed.arms[1].intervention_names == []
    assert seed.arms[1].description is not None and seed.arms[1].description.startswith("At week 0")
    (intervention,) = seed.interventions
    assert intervention.type == "BIOLOGICAL"
    assert intervention.name == "Autologous Mesenchymal Stem Cells"
    assert intervention.description == "Single dose of 1-2 x 1000000 cells/Kg body weight"
    assert intervention.arm_group_labels == ["Autologous Mesenchymal Stem Cells"]
    assert len(seed.outcomes) == 7
    assert [o.kind for o in seed.outcomes] == ["primary"] * 2 + ["secondary"] * 5
    assert seed.outcomes[0].measure == "Safety"
    assert seed.outcomes[0].time_frame == "24 weeks from the first infusion"
    assert seed.outcomes[1].description == "total number of contrast-enhancing lesions (GEL) at MRI scan"
    assert seed.outcomes[3].time_frame == "24 weeks form the first infusion"  # the registry's typo, kept


def test_seed_eligibility(seed: TrialRecord) -> None:
    elig = seed.eligibility
    assert (elig.minimum_age, elig.maximum_age) == ("18 Years", "50 Years")
    assert elig.sex == "ALL"
    assert elig.healthy_volunteers is False
    assert elig.std_ages == ["ADULT"]
    criteria = elig.criteria or ""
    assert criteria.startswith("Inclusion Criteria:\n\n\\- 1. Diagnosis of MS\n\na. Relapsing remitting MS")
    # The same lines as the registry page serves them (seed registry-page text).
    assert "* 2\\. Age 18 to 50 years\n* 3\\. Disease duration 2 to 10 years (included)\n" in criteria
    assert "* 13\\. eGFR \\< 60 mL/min/1.73m2 or known renal failure" in criteria
    assert "\n\nExclusion Criteria:\n\n* 1\\. RRMS not fulfilling inclusion criteria\n" in criteria
    assert "  " not in criteria.replace("\n  ", "")  # hard wrapping gone


def test_seed_people_and_organizations(seed: TrialRecord) -> None:
    assert [(o.name, o.role, o.affiliation) for o in seed.officials] == [
        ("Giancarlo Comi, MD", "PRINCIPAL_INVESTIGATOR", "Ospedale San Raffaele"),
        ("Bruno Bonetti, MD", "PRINCIPAL_INVESTIGATOR", "Azienda Ospedaliera Universitaria Integrata di Verona"),
    ]
    assert seed.lead_sponsor is not None
    assert (seed.lead_sponsor.name, seed.lead_sponsor.agency_class) == ("Antonio Uccelli", "OTHER")
    assert [c.name for c in seed.collaborators] == [
        "Azienda Ospedaliera Universitaria Integrata Verona",
        "Ospedale San Raffaele",
    ]
    assert seed.organization is not None and seed.organization.name == "University of Genova"
    assert seed.organization.agency_class is None  # not a sponsor's name: the XML does not say
    party = seed.responsible_party
    assert party is not None
    assert (party.type, party.investigator_full_name, party.investigator_title, party.investigator_affiliation) == (
        "SPONSOR_INVESTIGATOR",
        "Antonio Uccelli",
        "MD",
        "University of Genova",
    )
    (contact,) = seed.central_contacts
    assert (contact.name, contact.role, contact.phone, contact.email) == (
        "Antonio Uccelli, MD",
        "CONTACT",
        "+390103537028",
        "MESEMS@unige.it",
    )
    assert seed.oversight is not None and seed.oversight.has_dmc is True


def test_seed_site(seed: TrialRecord) -> None:
    (site,) = seed.sites
    assert (site.facility, site.city, site.zip, site.country, site.state) == (
        "University of Genova",
        "Genova",
        "16132",
        "Italy",
        None,
    )
    assert site.status == "RECRUITING"
    assert [(c.name, c.role) for c in site.contacts] == [("Antonio Uccelli, MD, PhD", "PRINCIPAL_INVESTIGATOR")]
    assert site.geo_point is None
    assert seed.location_countries == ["Italy"]


def test_seed_status_and_dates(seed: TrialRecord) -> None:
    status = seed.status
    assert (status.overall_status, status.last_known_status) == ("UNKNOWN", "RECRUITING")
    assert status.start is not None and (status.start.date, status.start.type) == ("2012-07", None)
    assert status.completion is not None and (status.completion.date, status.completion.type) == (
        "2014-09",
        "ESTIMATED",
    )
    assert status.primary_completion is not None
    assert (status.primary_completion.date, status.primary_completion.type) == ("2014-07", "ESTIMATED")
    assert status.status_verified_date == "2013-05"
    assert (status.first_submit, status.first_submit_qc) == ("2013-05-08", "2013-05-13")
    assert status.first_post is not None and (status.first_post.date, status.first_post.type) == (
        "2013-05-16",
        "ESTIMATED",
    )
    assert status.last_update_submit == "2013-05-13"
    assert status.last_update_submit_qc == "2013-05-13"
    assert status.expanded_access is not None and status.expanded_access.has_expanded_access is False


def test_seed_conditions_keywords_meshes(seed: TrialRecord) -> None:
    assert seed.conditions == ["Multiple Sclerosis"]
    assert seed.keywords == ["Multiple sclerosis", "Mesenchymal stem cells"]
    assert [(m.id, m.term) for m in seed.condition_meshes] == [(None, "Multiple Sclerosis"), (None, "Sclerosis")]
    assert seed.intervention_meshes == []
    assert seed.has_results is False
    assert set(seed.unmapped) == KNOWN_UNMAPPED


def test_seed_descriptions(seed: TrialRecord) -> None:
    assert seed.brief_summary is not None and "\n" not in seed.brief_summary
    assert seed.brief_summary.startswith("A double-blind, randomized, cross-over phase I/II study to evaluate the")
    assert seed.detailed_description is not None
    assert (
        "The primary outcome of this study is to evaluate\n\n"
        "* treatment's safety within one year from MSC administration by measuring the the number, "
        "time-frame and severity of adverse event and\n"
        "* treatment's activity in terms of reduction"
    ) in seed.detailed_description


# --------------------------------------------------------------------------------------------
# Repository fixtures
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", XML_FIXTURES, ids=lambda p: p.stem)
def test_every_fixture_reads(path: Path) -> None:
    record = read_clinical_study(path.read_bytes(), str(path))
    assert record.registry_id == path.stem
    assert record.brief_title
    assert record.source.url == f"https://clinicaltrials.gov/study/{path.stem}"
    assert record.source.version is not None
    assert record.design.study_type in {"INTERVENTIONAL", "OBSERVATIONAL"}
    assert record.eligibility.criteria
    assert set(record.unmapped) <= KNOWN_UNMAPPED


def test_fixture_nct00000410_ids_sponsors_references() -> None:
    record = read_clinical_study((FIXTURES / "ctgov-xml" / "NCT00000410.xml").read_bytes())
    (grant,) = record.secondary_ids
    assert (grant.id, grant.type, grant.link) == (
        "U01AR045444",
        "NIH",
        "https://reporter.nih.gov/quickSearch/U01AR045444",
    )
    assert record.org_study_id is not None and record.org_study_id.type is None  # "U01 AR45444 NIAMS-004C"
    assert [(c.agency_class) for c in record.collaborators] == ["NIH", "FED", "NIH"]
    assert record.organization is not None and record.organization.agency_class == "OTHER"  # = lead sponsor
    assert [r.type for r in record.references] == ["BACKGROUND"] * 5 + ["RESULT"] * 5
    assert record.references[0].pmid == "12065987"
    assert record.eligibility.maximum_age is None  # "N/A"
    assert record.eligibility.std_ages == ["ADULT", "OLDER_ADULT"]
    assert record.arms[0].intervention_names == ["Procedure: Diskectomy", "Procedure: Non-surgical treatments"]
    assert record.design.masking == "NONE" and record.design.who_masked == []
    assert record.design.phases == ["PHASE4"]
    assert len(record.sites) == 13 and record.sites[4].facility == "Maine Spine & Rehabilitation"


def test_fixture_nct03478891_documents_results_nested_lists() -> None:
    record = read_clinical_study((FIXTURES / "ctgov-xml" / "NCT03478891.xml").read_bytes())
    (document,) = record.documents
    assert document.label == "Study Protocol, Statistical Analysis Plan, and Informed Consent Form"
    assert (document.has_protocol, document.has_sap, document.has_icf) == (True, True, True)
    assert document.date == "2019-01-14"
    assert document.url == "https://clinicaltrials.gov/ProvidedDocs/91/NCT03478891/Prot_SAP_ICF_001.pdf"
    assert (document.filename, document.type_abbrev) == ("Prot_SAP_ICF_001.pdf", "Prot_SAP_ICF")
    # This copy lost its clinical_results section, but results_first_posted states they are posted.
    assert record.has_results is True
    assert record.status.results_first_post is not None and record.status.results_first_post.type == "ACTUAL"
    assert record.ipd_sharing is not None and record.ipd_sharing.ipd_sharing == "NO"
    assert record.eligibility.healthy_volunteers is True
    assert [(link.label, link.url[:35]) for link in record.see_also_links] == [
        ("NIH Clinical Center Detailed Web Page", "https://clinicalstudies.info.nih.go"),
        ("NIH Press Release", "https://www.nih.gov/news-events/new"),
    ]
    criteria = record.eligibility.criteria or ""
    assert "following criteria:\n\n  * White Blood Cell (WBC) 2,500-12,000/mm\\^3\n  * WBC differential" in criteria
    assert "(HCV Ab)\n* Criteria applicable to women of childbearing potential:\n\n  * If a woman" in criteria
    assert record.design.allocation == "NON_RANDOMIZED" and record.design.intervention_model == "SEQUENTIAL"
    assert [m.term for m in record.intervention_meshes][:2] == ["Antibodies", "Immunoglobulins"]


def test_fixture_nct00007696_observational() -> None:
    record = read_clinical_study((FIXTURES / "ctgov-xml" / "NCT00007696.xml").read_bytes())
    assert record.design.study_type == "OBSERVATIONAL"
    assert record.design.phases == []
    assert record.lead_sponsor is not None and record.lead_sponsor.agency_class == "FED"
    assert record.organization is not None and record.organization.agency_class is None


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Phase 1/Phase 2", ["PHASE1", "PHASE2"]),
        ("Phase 2/Phase 3", ["PHASE2", "PHASE3"]),
        ("N/A", ["NA"]),
        ("Early Phase 1", ["EARLY_PHASE1"]),
        ("Phase 0", ["EARLY_PHASE1"]),
        ("Phase 4", ["PHASE4"]),
        ("Phase 5", ["Phase 5"]),  # unknown: carried as text
    ],
)
def test_phase(phase: str, expected: list[str]) -> None:
    assert read(f"<phase>{phase}</phase>").design.phases == expected


@pytest.mark.parametrize(
    ("masking", "level", "roles"),
    [
        ("Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)", "QUADRUPLE",
         ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]),
        ("Triple (Participant, Care Provider, Investigator)", "TRIPLE",
         ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR"]),
        ("Double (Participant, Investigator)", "DOUBLE", ["PARTICIPANT", "INVESTIGATOR"]),
        ("Single (Outcomes Assessor)", "SINGLE", ["OUTCOMES_ASSESSOR"]),
        ("None (Open Label)", "NONE", []),
        ("Open Label", "NONE", []),
        ("No masking", "NONE", []),
        ("Double", "DOUBLE", []),
        ("Double-Blind", "DOUBLE", []),
        ("Single Blind", "SINGLE", []),
        ("Double Blind (Subject, Caregiver)", "DOUBLE", ["PARTICIPANT", "CARE_PROVIDER"]),
        ("Single Blind (Outcomes Assessor)", "SINGLE", ["OUTCOMES_ASSESSOR"]),
        # Old "double" meant "two or more": with three roles it is no single v2 value.
        ("Double Blind (Participant, Investigator, Outcomes Assessor)", "Double Blind",
         ["PARTICIPANT", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]),
        ("Participant, Investigator, Outcomes Assessor", None, ["PARTICIPANT", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]),
        ("Blinded somehow", "Blinded somehow", []),
    ],
)  # fmt: skip
def test_masking(masking: str, level: str | None, roles: list[str]) -> None:
    design = read(f"<study_design_info><masking>{masking}</masking></study_design_info>").design
    assert (design.masking, design.who_masked) == (level, roles)


@pytest.mark.parametrize(
    ("element", "value", "field", "expected"),
    [
        ("allocation", "Randomized", "allocation", "RANDOMIZED"),
        ("allocation", "Non-Randomized", "allocation", "NON_RANDOMIZED"),
        ("allocation", "N/A", "allocation", "NA"),
        ("intervention_model", "Crossover Assignment", "intervention_model", "CROSSOVER"),
        ("intervention_model", "Single Group Assignment", "intervention_model", "SINGLE_GROUP"),
        ("intervention_model", "Factorial Assignment", "intervention_model", "FACTORIAL"),
        ("primary_purpose", "Educational/Counseling/Training", "primary_purpose", "ECT"),
        ("primary_purpose", "Health Services Research", "primary_purpose", "HEALTH_SERVICES_RESEARCH"),
        ("primary_purpose", "Supportive Care", "primary_purpose", "SUPPORTIVE_CARE"),
        ("observational_model", "Case-Control", "observational_model", "CASE_CONTROL"),
        ("observational_model", "Case Control", "observational_model", "CASE_CONTROL"),
        ("observational_model", "Case Control, Natural History", "observational_model",
         "Case Control, Natural History"),
        ("time_perspective", "Cross-Sectional", "time_perspective", "CROSS_SECTIONAL"),
    ],
)  # fmt: skip
def test_design_vocabulary(element: str, value: str, field: str, expected: str) -> None:
    design = read(f"<study_design_info><{element}>{value}</{element}></study_design_info>").design
    assert getattr(design, field) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Unknown status", "UNKNOWN"),
        ("Active, not recruiting", "ACTIVE_NOT_RECRUITING"),
        ("Enrolling by invitation", "ENROLLING_BY_INVITATION"),
        ("Available", "AVAILABLE"),
        ("No longer available", "NO_LONGER_AVAILABLE"),
        ("Temporarily not available", "TEMPORARILY_NOT_AVAILABLE"),
        ("Approved for marketing", "APPROVED_FOR_MARKETING"),
        ("Withheld", "WITHHELD"),
        ("Withdrawn", "WITHDRAWN"),
    ],
)
def test_overall_status(value: str, expected: str) -> None:
    xml = study().replace(
        b"<overall_status>Completed</overall_status>", f"<overall_status>{value}</overall_status>".encode()
    )
    assert read_clinical_study(xml).status.overall_status == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Interventional", ("INTERVENTIONAL", None)),
        ("Observational", ("OBSERVATIONAL", None)),
        ("Observational [Patient Registry]", ("OBSERVATIONAL", True)),
        ("Expanded Access", ("EXPANDED_ACCESS", None)),
        ("N/A", (None, None)),  # redacted device record
    ],
)
def test_study_type(value: str, expected: tuple[str | None, bool | None]) -> None:
    xml = study().replace(b"<study_type>Interventional</study_type>", f"<study_type>{value}</study_type>".encode())
    design = read_clinical_study(xml).design
    assert (design.study_type, design.patient_registry) == expected


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("<start_date>July 2012</start_date>", ("2012-07", None)),
        ('<start_date type="Actual">May 8, 2013</start_date>', ("2013-05-08", "ACTUAL")),
        ('<start_date type="Anticipated">January 2030</start_date>', ("2030-01", "ESTIMATED")),
        ('<start_date type="Estimate">December 31, 2019</start_date>', ("2019-12-31", "ESTIMATED")),
    ],
)
def test_dates_keep_their_precision(element: str, expected: tuple[str, str | None]) -> None:
    start = read(element).status.start
    assert start is not None and (start.date, start.type) == expected


def test_unknown_and_unreadable_dates() -> None:
    record = read("<start_date>Unknown</start_date><completion_date>Q3 2012</completion_date>")
    assert record.status.start is None
    assert record.status.completion is None
    assert "completion_date" in record.unmapped  # reported, not guessed


def test_download_date_variants() -> None:
    body = study(header=False).replace(
        b"<id_info>",
        b"<required_header><download_date>Information obtained from ClinicalTrials.gov on January 31, 2013"
        b"</download_date><url>http://clinicaltrials.gov/show/NCT01234567</url></required_header><id_info>",
    )
    record = read_clinical_study(body)
    assert record.source.version == "2013-01-31"
    assert record.source.url == "https://clinicaltrials.gov/study/NCT01234567"


def test_eligibility_vocabulary() -> None:
    record = read(
        "<eligibility><study_pop><textblock>People.</textblock></study_pop>"
        "<sampling_method>Non-Probability Sample</sampling_method>"
        "<gender>Both</gender><gender_based>Yes</gender_based><gender_description>Self-identified</gender_description>"
        "<minimum_age>6 Months</minimum_age><maximum_age>17 Years</maximum_age>"
        "<healthy_volunteers>Accepts Healthy Volunteers</healthy_volunteers></eligibility>"
    )
    elig = record.eligibility
    assert (elig.sex, elig.gender_based, elig.gender_description) == ("ALL", True, "Self-identified")
    assert (elig.minimum_age, elig.maximum_age, elig.std_ages) == ("6 Months", "17 Years", ["CHILD"])
    assert elig.healthy_volunteers is True
    assert (elig.study_population, elig.sampling_method) == ("People.", "NON_PROBABILITY_SAMPLE")


@pytest.mark.parametrize(
    ("minimum", "maximum", "groups"),
    [
        ("N/A", "N/A", ["CHILD", "ADULT", "OLDER_ADULT"]),
        ("18 Years", "64 Years", ["ADULT"]),
        ("18 Years", "65 Years", ["ADULT", "OLDER_ADULT"]),
        ("65 Years", "N/A", ["OLDER_ADULT"]),
        ("0 Years", "18 Years", ["CHILD", "ADULT"]),
        ("1 Day", "216 Months", ["CHILD", "ADULT"]),
    ],
)
def test_std_ages(minimum: str, maximum: str, groups: list[str]) -> None:
    ages = f"<minimum_age>{minimum}</minimum_age><maximum_age>{maximum}</maximum_age>"
    assert read(f"<eligibility><gender>All</gender>{ages}</eligibility>").eligibility.std_ages == groups


def test_cached_readings_give_every_record_its_own_values() -> None:
    # Age groups and dates are cached per distinct text; a record must never share a mutable list.
    first = read("<eligibility><minimum_age>18 Years</minimum_age></eligibility>")
    second = read("<eligibility><minimum_age>18 Years</minimum_age></eligibility>")
    assert first.eligibility.std_ages == second.eligibility.std_ages == ["ADULT", "OLDER_ADULT"]
    first.eligibility.std_ages.append("CHANGED")
    assert second.eligibility.std_ages == ["ADULT", "OLDER_ADULT"]
    assert read("<start_date>July 2012</start_date>").status.start.date == "2012-07"
    assert read("<start_date>July 2012</start_date>").status.start.date == "2012-07"


def test_sponsors_arms_interventions_people() -> None:
    record = read(
        "<sponsors><lead_sponsor><agency>NCI</agency><agency_class>NIH</agency_class></lead_sponsor>"
        "<collaborator><agency>VA</agency><agency_class>U.S. Fed</agency_class></collaborator>"
        "<collaborator><agency>Ind</agency><agency_class>Industry</agency_class></collaborator></sponsors>"
        "<arm_group><arm_group_label>A</arm_group_label><arm_group_type>Placebo Comparator</arm_group_type></arm_group>"
        "<arm_group><arm_group_label>B</arm_group_label><arm_group_type>Sham Comparator</arm_group_type></arm_group>"
        "<intervention><intervention_type>Dietary Supplement</intervention_type><intervention_name>Vit D"
        "</intervention_name><arm_group_label>A</arm_group_label><arm_group_label>B</arm_group_label>"
        "<other_name>cholecalciferol</other_name></intervention>"
        "<intervention><intervention_type>Combination Product</intervention_type><intervention_name>Pen"
        "</intervention_name><arm_group_label>B</arm_group_label></intervention>"
        "<intervention><intervention_type>Diagnostic Test</intervention_type><intervention_name>Scan"
        "</intervention_name></intervention>"
        "<overall_official><first_name>Ada</first_name><middle_name>B.</middle_name><last_name>Lovelace</last_name>"
        "<degrees>PhD</degrees><role>Study Chair</role><affiliation>Uni</affiliation></overall_official>"
        "<overall_official><last_name>Grace Hopper</last_name><role>Study Director</role></overall_official>"
        "<overall_contact><last_name>Desk</last_name><phone>123</phone><phone_ext>4</phone_ext>"
        "<email>a@b.c</email></overall_contact><overall_contact_backup><last_name>Backup</last_name>"
        "</overall_contact_backup>"
        "<location><facility><name>Site</name><address><city>X</city><state>Y</state><zip>1</zip>"
        "<country>Z</country></address></facility><status>Not yet recruiting</status>"
        "<contact><last_name>C1</last_name></contact><contact_backup><last_name>C2</last_name></contact_backup>"
        "<investigator><last_name>P</last_name><role>Principal Investigator</role></investigator>"
        "<investigator><last_name>S</last_name><role>Sub-Investigator</role></investigator></location>"
        "<responsible_party><name_title>Dr X</name_title><organization>Org</organization></responsible_party>"
    )
    assert record.lead_sponsor is not None and record.lead_sponsor.agency_class == "NIH"
    assert [c.agency_class for c in record.collaborators] == ["FED", "INDUSTRY"]
    assert [a.type for a in record.arms] == ["PLACEBO_COMPARATOR", "SHAM_COMPARATOR"]
    assert record.arms[1].intervention_names == ["Dietary Supplement: Vit D", "Combination Product: Pen"]
    assert [i.type for i in record.interventions] == ["DIETARY_SUPPLEMENT", "COMBINATION_PRODUCT", "DIAGNOSTIC_TEST"]
    assert record.interventions[0].other_names == ["cholecalciferol"]
    assert [(o.name, o.role, o.affiliation) for o in record.officials] == [
        ("Ada B. Lovelace, PhD", "STUDY_CHAIR", "Uni"),
        ("Grace Hopper", "STUDY_DIRECTOR", None),
    ]
    assert [(c.name, c.role, c.phone_ext) for c in record.central_contacts] == [
        ("Desk", "CONTACT", "4"),
        ("Backup", "CONTACT", None),
    ]
    (site,) = record.sites
    assert site.status == "NOT_YET_RECRUITING"
    assert [(c.name, c.role) for c in site.contacts] == [
        ("C1", "CONTACT"),
        ("C2", "CONTACT"),
        ("P", "PRINCIPAL_INVESTIGATOR"),
        ("S", "SUB_INVESTIGATOR"),
    ]
    party = record.responsible_party
    assert party is not None and (party.old_name_title, party.old_organization, party.type) == ("Dr X", "Org", None)
    assert record.unmapped == []


def test_oversight_ipd_documents_links_expanded_access() -> None:
    record = read(
        "<oversight_info><authority>United States: Food and Drug Administration</authority>"
        "<has_dmc>No</has_dmc><is_fda_regulated_drug>Yes</is_fda_regulated_drug>"
        "<is_fda_regulated_device>No</is_fda_regulated_device><is_unapproved_device>No</is_unapproved_device>"
        "<is_ppsd>No</is_ppsd><is_us_export>Yes</is_us_export></oversight_info>"
        "<has_expanded_access>Yes</has_expanded_access><expanded_access_info>"
        "<expanded_access_type_individual>Yes</expanded_access_type_individual>"
        "<expanded_access_type_treatment>Yes</expanded_access_type_treatment>"
        "<expanded_access_type_intermediate>No</expanded_access_type_intermediate></expanded_access_info>"
        "<patient_data><sharing_ipd>Yes</sharing_ipd><ipd_description>All IPD &lt;anonymised&gt;</ipd_description>"
        "<ipd_info_type>Study Protocol</ipd_info_type><ipd_info_type>Statistical Analysis Plan (SAP)</ipd_info_type>"
        "<ipd_info_type>Informed Consent Form (ICF)</ipd_info_type><ipd_info_type>Clinical Study Report (CSR)"
        "</ipd_info_type><ipd_info_type>Analytic Code</ipd_info_type><ipd_time_frame>After publication"
        "</ipd_time_frame><ipd_access_criteria>On request</ipd_access_criteria><ipd_url>https://x.org</ipd_url>"
        "</patient_data>"
        "<study_docs><study_doc><doc_id>D1</doc_id><doc_type>Study Protocol</doc_type><doc_url>https://d.org"
        "</doc_url><doc_comment>See [here]</doc_comment></study_doc></study_docs>"
        "<link><url>https://l.org</url><description>Site &amp; more</description></link>"
        "<reference><citation>Ref A</citation><PMID>1</PMID></reference>"
        "<results_reference><citation>Ref B</citation></results_reference>"
        "<reference><citation>Ref C</citation></reference>"
        "<location_countries><country>Italy</country></location_countries>"
        "<removed_countries><country>Spain</country></removed_countries>"
        "<condition_browse><mesh_term>Sclerosis</mesh_term></condition_browse>"
        "<intervention_browse><mesh_term>Antibodies</mesh_term></intervention_browse>"
        "<nct_alias>NCT00000001</nct_alias>"
    )
    oversight = record.oversight
    assert oversight is not None
    assert oversight.authorities == ["United States: Food and Drug Administration"]
    assert (oversight.has_dmc, oversight.is_fda_regulated_drug, oversight.is_us_export) == (False, True, True)
    assert (oversight.is_fda_regulated_device, oversight.is_unapproved_device, oversight.is_ppsd) == (False,) * 3
    assert record.status.expanded_access is not None and record.status.expanded_access.has_expanded_access
    assert record.design.expanded_access_types == ["INDIVIDUAL", "TREATMENT"]
    ipd = record.ipd_sharing
    assert ipd is not None
    assert (ipd.ipd_sharing, ipd.description, ipd.time_frame) == (
        "YES",
        "All IPD \\<anonymised\\>",
        "After publication",
    )
    assert ipd.info_types == ["STUDY_PROTOCOL", "SAP", "ICF", "CSR", "ANALYTIC_CODE"]
    assert (ipd.access_criteria, ipd.url) == ("On request", "https://x.org")
    (doc,) = record.avail_ipds
    assert (doc.id, doc.type, doc.url, doc.comment) == ("D1", "Study Protocol", "https://d.org", "See \\[here\\]")
    assert [(link.url, link.label) for link in record.see_also_links] == [("https://l.org", "Site \\& more")]
    # BACKGROUND references first, then RESULT, as v2 orders them.
    assert [(r.citation, r.type) for r in record.references] == [
        ("Ref A", "BACKGROUND"),
        ("Ref C", "BACKGROUND"),
        ("Ref B", "RESULT"),
    ]
    assert (record.location_countries, record.removed_countries) == (["Italy"], ["Spain"])
    assert [m.term for m in record.condition_meshes + record.intervention_meshes] == ["Sclerosis", "Antibodies"]
    assert record.unmapped == ["nct_alias"]  # belongs in id_info; out of place it is reported


def test_id_info_aliases_and_id_types() -> None:
    xml = (
        study()
        .replace(
            b"<nct_id>",
            b"<secondary_id>2011-001295-19</secondary_id><secondary_id>R01CA012345-05</secondary_id>"
            b"<secondary_id>EudraCT 2011-001295-19</secondary_id><secondary_id>ABCDE123456</secondary_id><nct_id>",
        )
        .replace(b"</id_info>", b"<nct_alias>NCT00000002</nct_alias></id_info>")
    )
    record = read_clinical_study(xml)
    assert [(i.id, i.type) for i in record.secondary_ids] == [
        ("2011-001295-19", "EUDRACT_NUMBER"),
        ("R01CA012345-05", "NIH"),
        ("EudraCT 2011-001295-19", None),  # v2 leaves such prefixed ids untyped too
        ("ABCDE123456", None),  # grant-shaped but no NIH institute code
    ]
    assert record.id_aliases == ["NCT00000002"]


def test_enrollment_and_arm_counts() -> None:
    design = read('<enrollment type="Actual">501</enrollment><number_of_groups>3</number_of_groups>').design
    assert (design.enrollment_count, design.enrollment_type, design.number_of_arms) == (501, "ACTUAL", 3)


# --------------------------------------------------------------------------------------------
# Legacy elements, unknown content, errors, odd input
# --------------------------------------------------------------------------------------------


def test_pre_2017_elements() -> None:
    record = read(
        "<study_design>Allocation:  Randomized, Endpoint Classification:  Safety/Efficacy Study, "
        "Intervention Model:  Parallel Assignment, Masking:  Double Blind (Subject, Caregiver), "
        "Primary Purpose:  Treatment</study_design>"
        "<firstreceived_date>November 3, 1999</firstreceived_date><lastchanged_date>August 3, 2015</lastchanged_date>"
        "<firstreceived_results_date>May 1, 2010</firstreceived_results_date>"
        "<is_fda_regulated>Yes</is_fda_regulated><is_section_801>No</is_section_801>"
        "<primary_outcome><measure>M</measure><safety_issue>No</safety_issue></primary_outcome>"
        "<last_update_submitted_qc>August 3, 2015</last_update_submitted_qc>"
        "<pending_results><submitted>May 1, 2019</submitted><returned>June 1, 2019</returned>"
        "<submission_canceled>Unknown</submission_canceled><submitted>July 2019</submitted></pending_results>"
        "<location><facility><name>Site</name></facility><investigator><last_name>P</last_name>"
        "<role>Principal Investigator</role><affiliation>Uni Genova</affiliation></investigator></location>"
    )
    design = record.design
    assert (design.allocation, design.intervention_model, design.primary_purpose) == (
        "RANDOMIZED",
        "PARALLEL",
        "TREATMENT",
    )
    assert (design.masking, design.who_masked) == ("DOUBLE", ["PARTICIPANT", "CARE_PROVIDER"])
    status = record.status
    assert (status.first_submit, status.last_update_submit, status.results_first_submit) == (
        "1999-11-03",
        "2015-08-03",
        "2010-05-01",
    )
    assert design.endpoint_classification == "Safety/Efficacy Study"
    assert status.last_update_submit_qc == "2015-08-03"
    assert record.oversight is not None
    assert (record.oversight.is_fda_regulated, record.oversight.is_section_801) == (True, False)
    assert [(o.measure, o.safety_issue) for o in record.outcomes] == [("M", False)]
    assert record.annotations is not None
    assert [(e.type, e.date, e.date_unknown) for e in record.annotations.unposted_events] == [
        ("RELEASE", "2019-05-01", None),
        ("RESET", "2019-06-01", None),
        ("UNRELEASE", None, True),
        ("RELEASE", "2019-07", None),
    ]
    [investigator] = record.sites[0].contacts
    assert (investigator.name, investigator.role, investigator.affiliation) == (
        "P",
        "PRINCIPAL_INVESTIGATOR",
        "Uni Genova",
    )
    assert record.unmapped == []


def test_bad_retired_values_are_reported() -> None:
    record = read(
        "<is_fda_regulated>Maybe</is_fda_regulated>"
        "<pending_results><submitted>soon</submitted><posted>May 1, 2019</posted></pending_results>"
        "<primary_outcome><measure>M</measure><safety_issue>Perhaps</safety_issue></primary_outcome>"
    )
    assert record.oversight is None
    assert record.outcomes[0].safety_issue is None
    assert record.annotations is None
    assert record.unmapped == [
        "is_fda_regulated",
        "pending_results/submitted",
        "pending_results/posted",
        "primary_outcome/safety_issue",
    ]


def test_newer_elements_win_over_legacy_ones() -> None:
    record = read(
        "<study_first_submitted>May 8, 2013</study_first_submitted><firstreceived_date>May 1, 2013</firstreceived_date>"
        "<study_design_info><allocation>Non-Randomized</allocation></study_design_info>"
        "<study_design>Allocation: Randomized, Primary Purpose: Treatment</study_design>"
    )
    assert record.status.first_submit == "2013-05-08"
    assert (record.design.allocation, record.design.primary_purpose) == ("NON_RANDOMIZED", "TREATMENT")


def test_unknown_elements_and_attributes_are_reported() -> None:
    record = read(
        "<brand_new_element>x</brand_new_element><eligibility><gender>All</gender><new_eligibility_field/>"
        '</eligibility><location><facility odd="1"><name>F</name><geo>1,2</geo></facility></location>'
        '<enrollment type="Actual" unit="people">5</enrollment>'
    )
    assert record.unmapped == [
        "brand_new_element",
        "eligibility/new_eligibility_field",
        "location/facility/@odd",
        "location/facility/geo",
        "enrollment/@unit",
    ]
    assert record.sites[0].facility == "F"


def test_rank_attribute_and_boilerplate_are_not_reported() -> None:
    xml = study().replace(b"<clinical_study>", b'<clinical_study rank="3">')
    assert read_clinical_study(xml).unmapped == []


def test_clinical_results_only_sets_has_results() -> None:
    record = read("<clinical_results><participant_flow><recruitment_details>x</recruitment_details>"
                  "</participant_flow></clinical_results>")  # fmt: skip
    assert record.has_results is True
    assert record.unmapped == []


def test_missing_nct_id_is_a_record_error_naming_the_record() -> None:
    xml = study().replace(b"<nct_id>NCT01234567</nct_id>", b"<nct_id>  </nct_id>")
    with pytest.raises(
        RecordError, match=r"^bad\.xml: clinical_study \(org_study_id 'ORG-1', brief_title 'A small study'\)"
    ):
        read_clinical_study(xml, "bad.xml")
    with pytest.raises(RecordError, match="has no id_info/nct_id"):
        read_clinical_study(study().replace(b"<nct_id>NCT01234567</nct_id>", b""))


def test_nct_id_is_normalised_and_checked() -> None:
    xml = study().replace(b"<nct_id>NCT01234567</nct_id>", b"<nct_id> nct01234567\n</nct_id>")
    assert read_clinical_study(xml).registry_id == "NCT01234567"
    with pytest.raises(RecordError, match="invalid NCT id 'NCT123'"):
        read_clinical_study(study().replace(b"<nct_id>NCT01234567</nct_id>", b"<nct_id>NCT123</nct_id>"))


def test_root_must_be_clinical_study() -> None:
    with pytest.raises(InputError, match=r"root element is <Trial>, expected <clinical_study>"):
        read_clinical_study(b"<Trial><nct_id>NCT01234567</nct_id></Trial>", "who.xml")
    with pytest.raises(InputError, match="malformed XML"):
        read_clinical_study(b"<clinical_study><id_info>", "cut.xml")


def test_element_input_is_accepted() -> None:
    root = etree.fromstring(study())
    assert read_clinical_study(root).registry_id == "NCT01234567"


def test_empty_elements_odd_whitespace_and_entities_do_not_crash() -> None:
    record = read(
        "<acronym/><official_title>  Two\n   lines\tand\u00a0spaces  </official_title>"
        "<brief_summary><textblock/></brief_summary><detailed_description/>"
        "<phase></phase><enrollment/><condition> </condition><keyword>a &amp; b &lt;c&gt; &#x2265;1</keyword>"
        "<arm_group/><intervention/><primary_outcome/><eligibility><criteria><textblock>\n\n</textblock></criteria>"
        "<minimum_age/><maximum_age>N/A</maximum_age></eligibility><overall_official/><location/>"
        "<overall_contact/><link/><reference/><start_date/><why_stopped>Funding &amp;lt;ended&amp;gt;</why_stopped>"
        "<responsible_party/><patient_data/><sponsors/><number_of_arms>two</number_of_arms>"
    )
    assert record.acronym is None
    assert record.official_title == "Two lines and spaces"
    assert record.brief_summary is None and record.detailed_description is None
    assert record.design.phases == []
    assert record.conditions == []
    assert record.keywords == ["a & b <c> ≥1"]
    assert record.arms == [] and record.interventions == [] and record.outcomes == []
    assert record.eligibility.criteria is None
    assert record.eligibility.std_ages == ["CHILD", "ADULT", "OLDER_ADULT"]
    assert record.officials == [] and record.central_contacts == [] and record.see_also_links == []
    assert record.sites[0].facility is None
    assert record.status.why_stopped == "Funding \\<ended\\>"  # typed entities decoded, then escaped
    assert record.unmapped == ["intervention/intervention_name", "number_of_arms"]


def test_carriage_returns_from_the_legacy_files() -> None:
    record = read("<brief_summary><textblock>\r\n      First line of a\r\n      paragraph.\r\n\r\n"
                  "      Second.\r\n    </textblock></brief_summary>")  # fmt: skip
    assert record.brief_summary == "First line of a paragraph.\n\nSecond."


# --------------------------------------------------------------------------------------------
# Text rendering
# --------------------------------------------------------------------------------------------


def block(*lines: str, margin: int = 8) -> str:
    """A textblock as the legacy files lay it out: every line indented by the block's margin
    (the first line sits at the margin, which is how the reader finds it)."""
    return "\n" + "\n".join((" " * margin + line) if line else "" for line in lines) + "\n      "


def test_paragraphs_are_unwrapped() -> None:
    text = block("First paragraph that was", "wrapped by the formatter.", "", "Second one.")
    assert markdown_from_textblock(text) == "First paragraph that was wrapped by the formatter.\n\nSecond one."


def test_bullets_become_a_tight_list() -> None:
    text = block(
        "Inclusion Criteria:",
        "",
        "  -  Age 18 or more, with a",
        "     continuation line",
        "",
        "  -  Consent",
        "",
        "Exclusion Criteria:",
        "",
        "  -  Pregnancy",
    )
    assert markdown_from_textblock(text) == (
        "Inclusion Criteria:\n\n* Age 18 or more, with a continuation line\n* Consent\n\n"
        "Exclusion Criteria:\n\n* Pregnancy"
    )


def test_nested_and_numbered_lists() -> None:
    # The legacy formatter writes the first line at the margin even when it is an item.
    text = block(
        "-  Labs:",
        "",
        "       -  WBC > 3000",
        "",
        "       -  Platelets",
        "",
        "  -  Women:",
        "",
        "       -  Negative test",
        "",
        "Visits:",
        "",
        "  1. Screening",
        "",
        "  2. Baseline",
        "",
        " 10. Follow-up with a long",
        "     description",
        "",
        "       -  by phone",
    )
    assert markdown_from_textblock(text) == (
        "* Labs:\n\n  * WBC \\> 3000\n  * Platelets\n* Women:\n\n  * Negative test\n\n"
        "Visits:\n\n1. Screening\n2. Baseline\n10. Follow-up with a long description\n\n    * by phone"
    )


def test_first_line_item_that_lost_its_indent() -> None:
    text = block("-  First item whose first line", "     sits at the margin", "", "  -  Second item")
    assert markdown_from_textblock(text) == "* First item whose first line sits at the margin\n* Second item"


def test_markdown_punctuation_is_escaped_like_v2() -> None:
    text = block(
        "Weight <100 kg & BMI > 30 [kg/m^2] ~ *approx* back\\slash",
        "",
        "3. Not a list item here",
        "",
        "- dash that is not an item",
        "",
        "-No space after the dash, underscores_stay #hash",
    )
    assert markdown_from_textblock(text) == (
        "Weight \\<100 kg \\& BMI \\> 30 \\[kg/m\\^2\\] \\~ \\*approx\\* back\\\\slash\n\n"
        "3\\. Not a list item here\n\n\\- dash that is not an item\n\n"
        "-No space after the dash, underscores_stay #hash"
    )


def test_markup_fields_keep_lines_as_paragraphs() -> None:
    record = read(
        "<arm_group><arm_group_label>A</arm_group_label><description>Line one\nLine two &lt; 3</description>"
        "</arm_group>"
    )
    assert record.arms[0].description == "Line one\n\nLine two \\< 3"


def test_empty_textblock() -> None:
    assert markdown_from_textblock(None) is None
    assert markdown_from_textblock("\n    \n  ") is None


def test_only_line_feeds_and_carriage_returns_break_lines() -> None:
    # str.splitlines() (the fast path) also breaks at these; the rendering must not.
    text = block("First\u2028half and\x0bmore\x85end", "-  not an item: continuation", "", "  -  item\x0cwith feed")
    expected = "First half and more end - not an item: continuation\n\n* item with feed"
    assert markdown_from_textblock(text) == expected
    assert markdown_from_textblock(text.replace("\n", "\r\n")) == expected


def test_list_markers_and_escapes_with_non_ascii_digits() -> None:
    # The marker regexes read \d as any Unicode decimal digit; their first-character prefilters must too.
    text = block("Intro", "", "  \u0663. Arabic-Indic numbered item", "", "  \u0663\u0664. second")
    assert markdown_from_textblock(text) == "Intro\n\n\u0663. Arabic-Indic numbered item\n\n   \u0663\u0664. second"
    assert markdown_from_textblock(block("\u0663) x")) == "\u0663\\) x"
    # Backslashes are escaped first, so the escapes added for the other characters stay single.
    assert markdown_from_textblock(block("a\\<b\\\\*c")) == "a\\\\\\<b\\\\\\\\\\*c"


# --------------------------------------------------------------------------------------------
# The whole corpus
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present beside the checkout")
def test_whole_corpus_reads(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(CORPUS.glob("*.xml"))
    assert paths
    data = [(path, path.read_bytes()) for path in paths]
    unexpected: dict[str, list[str]] = {}
    # CPU time as well as wall time: on a shared machine the wall clock mostly measures the neighbours.
    wall, cpu = time.perf_counter(), time.process_time()
    for path, raw in data:
        record = read_clinical_study(raw, str(path))
        assert record.registry_id == path.stem
        odd = [p for p in record.unmapped if p not in _CORPUS_KNOWN_UNMAPPED]
        if odd:
            unexpected[path.name] = odd
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cpu_rate = len(data) / cpu
    with capsys.disabled():
        print(
            f"\nctgov-xml corpus: {len(data)} records, {cpu_rate:.0f} records/s of CPU time "
            f"({len(data) / wall:.0f}/s wall clock)"
        )
    assert not unexpected
    assert cpu_rate > 200  # generous floor; about 2,000/s on one core when measured


# Elements of the corpus the reader reports: none, every legacy element has its place.
_CORPUS_KNOWN_UNMAPPED: set[str] = set()


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present beside the checkout")
def test_corpus_retired_elements_land_in_the_record() -> None:
    def read_corpus(nct: str) -> TrialRecord:
        return read_clinical_study((CORPUS / f"{nct}.xml").read_bytes())

    record = read_corpus("NCT03435185")  # <submission_canceled>Unknown</submission_canceled>
    assert record.annotations is not None
    assert [(e.type, e.date, e.date_unknown) for e in record.annotations.unposted_events] == [
        ("RELEASE", "2018-02-20", None),
        ("UNRELEASE", None, True),
        ("RELEASE", "2018-03-08", None),
    ]
    record = read_corpus("NCT00191100")
    assert record.oversight is not None
    assert (record.oversight.is_fda_regulated, record.oversight.is_section_801) == (True, True)
    assert record.design.endpoint_classification == "Efficacy Study"
    assert {o.safety_issue for o in record.outcomes} == {False}


def test_pending_results_dates_may_carry_their_schema_type_attribute() -> None:
    """public.xsd types them as variable_date_struct (optional ``type``): not an unmapped attribute."""
    record = read(
        '<pending_results><submitted type="Actual">May 1, 2019</submitted>'
        '<returned type="Estimate" other="x">June 1, 2019</returned></pending_results>'
    )
    assert record.annotations is not None
    assert [(e.type, e.date) for e in record.annotations.unposted_events] == [
        ("RELEASE", "2019-05-01"),
        ("RESET", "2019-06-01"),
    ]
    assert record.unmapped == ["pending_results/returned/@other"]
