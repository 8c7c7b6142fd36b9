"""Practitioners (one per person) and PractitionerRoles (ids the ResearchStudy mapping references)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sharing import containers

from adapter.readers.ctgov_xml import read_clinical_study
from adapter.record import Contact, EthicsReview, Official, Org, ResponsibleParty, Site, SourceInfo, TrialRecord
from mappings import ids
from mappings.codes import table
from mappings.fhir import CTGOV_ENUM
from mappings.location import to_fhir_locations
from mappings.organization import to_fhir_organizations
from mappings.practitioner import (
    CONTACTPOINT_EXTENSION,
    PARTY_ROLE,
    ethics_committee_role_id,
    is_person_name,
    parse_name,
    role_concept,
    telecom,
    to_fhir_practitioner_roles,
    to_fhir_practitioners,
)

ROOT = Path(__file__).resolve().parents[2]


def seed_record() -> TrialRecord:
    """NCT01854957 (MESEMS) as the legacy XML states it, through the XML reader."""
    seed = Path(__file__).resolve().parents[2] / "fixtures" / "seed" / "NCT01854957.xml"
    return read_clinical_study(seed.read_bytes(), "NCT01854957.xml")


def _record(**fields: Any) -> TrialRecord:
    return TrialRecord(source=SourceInfo(registry="ctgov", format="ctgov-v2-json"), registry_id="NCT00000001", **fields)


def _by_id(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in resources}


def _codes(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for concept in role.get("code", []) for c in concept.get("coding", [])}


PI = {(CTGOV_ENUM + "OfficialRole", "PRINCIPAL_INVESTIGATOR"), (PARTY_ROLE, "primary-investigator")}


def test_seed_practitioners_one_per_person() -> None:
    record = seed_record()
    people = to_fhir_practitioners(record)
    assert people == [
        {
            "resourceType": "Practitioner",
            "id": ids.practitioner_id(record, "Giancarlo Comi"),
            "name": [{"text": "Giancarlo Comi"}],
            "qualification": [{"code": {"text": "MD"}}],
        },
        {
            "resourceType": "Practitioner",
            "id": ids.practitioner_id(record, "Bruno Bonetti"),
            "name": [{"text": "Bruno Bonetti"}],
            "qualification": [{"code": {"text": "MD"}}],
        },
        # Responsible party, central contact and site investigator: one person, degrees merged.
        {
            "resourceType": "Practitioner",
            "id": ids.practitioner_id(record, "Antonio Uccelli"),
            "name": [{"text": "Antonio Uccelli"}],
            "qualification": [{"code": {"text": "MD"}}, {"code": {"text": "PhD"}}],
        },
    ]


def test_seed_roles_use_the_ids_the_research_study_references() -> None:
    record = seed_record()
    roles = _by_id(to_fhir_practitioner_roles(record))
    comi, bonetti = record.officials
    (location_id,) = ids.location_ids(record)
    party_id = ids.responsible_party_role_id(record)
    assert party_id is not None
    expected = [
        ids.official_role_id(record, comi),
        ids.official_role_id(record, bonetti),
        party_id,
        ids.central_contact_role_id(record, record.central_contacts[0]),
        ids.site_contact_role_id(record, record.sites[0].contacts[0], location_id),
    ]
    assert list(roles) == expected

    uccelli = f"Practitioner/{ids.practitioner_id(record, 'Antonio Uccelli')}"
    genova = f"Organization/{ids.organization_id('University of Genova')}"

    official = roles[expected[0]]
    assert official["practitioner"]["reference"] == f"Practitioner/{ids.practitioner_id(record, 'Giancarlo Comi')}"
    assert official["organization"]["reference"] == f"Organization/{ids.organization_id('Ospedale San Raffaele')}"
    assert _codes(official) == PI
    bonetti_role = roles[expected[1]]
    assert bonetti_role["organization"]["display"] == "Azienda Ospedaliera Universitaria Integrata di Verona"
    assert _codes(bonetti_role) == PI

    party = roles[party_id]
    assert party["practitioner"]["reference"] == uccelli
    assert party["organization"]["reference"] == genova
    assert party["code"] == [
        {
            "coding": [
                {
                    "system": CTGOV_ENUM + "ResponsiblePartyType",
                    "code": "SPONSOR_INVESTIGATOR",
                    "display": "Sponsor-Investigator",
                },
                {"system": PARTY_ROLE, "code": "sponsor-investigator"},
            ],
            "text": "Responsible party",
        }
    ]  # the title "MD" is a degree: it went to the Practitioner, not to the role

    central = roles[expected[3]]
    assert central["practitioner"]["reference"] == uccelli
    assert "organization" not in central
    assert central["code"] == [
        {"coding": [{"system": f"{CTGOV_ENUM}ContactRole", "code": "CONTACT", "display": "Contact"},
                    {"system": PARTY_ROLE, "code": "recruitment-contact"}]}
    ]  # fmt: skip
    assert central["contact"] == [
        {"telecom": [{"system": "phone", "value": "+390103537028"}, {"system": "email", "value": "MESEMS@unige.it"}]}
    ]

    site = roles[expected[4]]
    assert site["practitioner"]["reference"] == uccelli
    assert site["organization"]["reference"] == genova
    assert site["location"] == [{"reference": f"Location/{location_id}"}]
    assert _codes(site) == {
        (CTGOV_ENUM + "ContactRole", "PRINCIPAL_INVESTIGATOR"),
        (PARTY_ROLE, "primary-investigator"),
    }


def test_every_reference_resolves_to_a_resource_of_the_record() -> None:
    record = seed_record()
    resources = (
        to_fhir_organizations(record)
        + to_fhir_locations(record)
        + to_fhir_practitioners(record)
        + to_fhir_practitioner_roles(record)
    )
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    assert len(known) == len(resources)
    references = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "reference" in value:
                references.append(value["reference"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(resources)
    assert references
    assert set(references) <= known


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Giancarlo Comi, MD", {"text": "Giancarlo Comi", "qualifications": ["MD"]}),
        ("Antonio Uccelli, MD, PhD", {"text": "Antonio Uccelli", "qualifications": ["MD", "PhD"]}),
        ("Maria Rossi, M.D., Ph.D.", {"text": "Maria Rossi", "qualifications": ["M.D.", "Ph.D."]}),
        ("Daniel R Karlin, MD MA", {"text": "Daniel R Karlin", "given": ["Daniel", "R"], "family": "Karlin"}),
        ("Jacob M Sands", {"text": "Jacob M Sands", "given": ["Jacob", "M"], "family": "Sands"}),
        ("A. M. Zeiher", {"text": "A. M. Zeiher", "given": ["A.", "M."], "family": "Zeiher"}),
        ("José A. Pérez", {"given": ["José", "A."], "family": "Pérez"}),
        ("Dr. John A. Smith, MD", {"text": "Dr. John A. Smith", "prefix": ["Dr."], "family": "Smith"}),
        ("Yoram Vardi, Prof", {"text": "Yoram Vardi, Prof", "suffix": ["Prof"], "family": None}),
        # Order of two plain words is unknowable ("Wei Wang" / "Wang Wei"): no split.
        ("Giancarlo Comi", {"text": "Giancarlo Comi", "given": [], "family": None}),
        ("Prof. Vardi Yoram", {"prefix": ["Prof."], "given": [], "family": None}),
        ("Feinberg J", {"given": [], "family": None}),
        ("JOHN A SMITH", {"given": [], "family": None}),
        ("王伟", {"text": "王伟", "given": [], "family": None}),
        ("Ιωάννης Παπαδόπουλος, MD", {"text": "Ιωάννης Παπαδόπουλος", "qualifications": ["MD"]}),
        # Words after the comma that are not degrees: the name is kept whole, nothing split.
        ("Smith, John", {"text": "Smith, John", "qualifications": [], "recognised": False}),
        ("Edelman, David - Study Chair", {"text": "Edelman, David - Study Chair", "recognised": False}),
    ],
)
def test_parse_name(name: str, expected: dict[str, Any]) -> None:
    parsed = parse_name(name)
    for key, value in expected.items():
        assert getattr(parsed, key) == value, key


def test_degree_table_words_are_normalised_keys() -> None:
    data = table("person_name")
    words = data["degrees"] + data["titles"] + data["generational"]
    assert all(w == w.casefold() and "." not in w and " " not in w for w in words)
    assert len(words) == len(set(words))


def test_telecom_phone_extension_and_email() -> None:
    contact = Contact(name="X", phone="+1 555 0100", phone_ext="12", email="x@example.org")
    assert telecom(contact) == [
        {
            "extension": [{"url": CONTACTPOINT_EXTENSION, "valueString": "12"}],
            "system": "phone",
            "value": "+1 555 0100 ext. 12",
        },
        {"system": "email", "value": "x@example.org"},
    ]
    assert telecom(Contact(phone_ext="12")) == [
        {"extension": [{"url": CONTACTPOINT_EXTENSION, "valueString": "12"}], "system": "phone", "value": "ext. 12"}
    ]
    assert telecom(Contact(name="Nobody")) == []


@pytest.mark.parametrize(
    ("enum", "code"), [(enum, code) for enum, rows in table("person_role").items() for code in sorted(rows)]
)
def test_every_person_role_row(enum: str, code: str) -> None:
    row = table("person_role")[enum][code]
    codings = role_concept(enum, code)["coding"]
    assert codings[0] == {"system": CTGOV_ENUM + enum, "code": code, "display": row["display"]}
    if "party_role" in row:
        assert codings[1] == {"system": PARTY_ROLE, "code": row["party_role"]}
    else:
        assert len(codings) == 1


def test_party_roles_exist_in_the_r5_code_system() -> None:
    # Codes of http://hl7.org/fhir/research-study-party-role in FHIR 5.0.0.
    allowed = {
        "sponsor", "lead-sponsor", "sponsor-investigator", "primary-investigator", "collaborator",
        "funding-source", "general-contact", "recruitment-contact", "sub-investigator", "study-director",
        "study-chair", "irb",
    }  # fmt: skip
    used = {row.get("party_role") for rows in table("person_role").values() for row in rows.values()} - {None}
    assert used <= allowed


def test_unknown_role_value_is_text() -> None:
    assert role_concept("OfficialRole", "STUDY_PRINCIPAL_INVESTIGATOR") == {"text": "STUDY_PRINCIPAL_INVESTIGATOR"}


def test_same_person_same_role_listed_twice_gives_one_role() -> None:
    official = Official(name="Jane Doe, MD", role="STUDY_CHAIR", affiliation="X")
    record = _record(officials=[official, official.model_copy()])
    assert len(to_fhir_practitioner_roles(record)) == 1
    assert len(to_fhir_practitioners(record)) == 1


def test_unnamed_central_contact_has_a_role_but_no_practitioner() -> None:
    contact = Contact(role="CONTACT", phone="800-555-0100", email="trials@example.org")
    record = _record(central_contacts=[contact])
    assert to_fhir_practitioners(record) == []
    (role,) = to_fhir_practitioner_roles(record)
    assert role["id"] == ids.central_contact_role_id(record, contact)
    assert "practitioner" not in role
    assert role["contact"][0]["telecom"][0]["value"] == "800-555-0100"


def test_contact_affiliation_and_address_belong_to_the_role() -> None:
    contact = Contact(name="Yu Jiangquan", affiliation="Northern Jiangsu People's Hospital", address="98 Nantong Road")
    record = _record(central_contacts=[contact])
    (role,) = to_fhir_practitioner_roles(record)
    assert role["organization"] == {
        "reference": f"Organization/{ids.organization_id(contact.affiliation or '')}",
        "display": "Northern Jiangsu People's Hospital",
    }
    assert role["contact"] == [{"address": {"text": "98 Nantong Road"}}]
    assert role["organization"]["reference"].split("/")[1] in {o["id"] for o in to_fhir_organizations(record)}


def test_contact_with_only_an_affiliation_still_says_where_to_turn() -> None:
    record = _record(central_contacts=[Contact(affiliation="Medpace Japan KK")])
    (role,) = to_fhir_practitioner_roles(record)
    assert "practitioner" not in role and "contact" not in role
    assert role["organization"]["display"] == "Medpace Japan KK"


def test_site_investigator_affiliation_takes_the_place_of_the_facility() -> None:
    site = Site(
        facility="Ospedale San Martino",
        contacts=[
            Contact(name="A Uccelli", role="PRINCIPAL_INVESTIGATOR", affiliation="University of Genova"),
            Contact(name="B Other", role="SUB_INVESTIGATOR"),
        ],
    )
    record = _record(sites=[site])
    roles = to_fhir_practitioner_roles(record)
    assert [r["organization"]["display"] for r in roles] == ["University of Genova", "Ospedale San Martino"]
    (location_id,) = ids.location_ids(record)
    assert all(r["location"] == [{"reference": f"Location/{location_id}"}] for r in roles)


def test_ethics_committee_contact_is_a_role_with_the_fields_as_labelled() -> None:
    # DRKS's shifted fields: an e-mail in the name field, the committee's name in the address field.
    review = EthicsReview(
        status="Approved",
        approval_date="2023-02-24",
        contact_name="ethikkommission@charite.de",
        contact_address="Ethikkommission der Charité",
        contact_phone="(+49)30-450517222",
        contact_email="ethikkommission@charite.de",
    )
    record = _record(ethics_reviews=[review, EthicsReview(status="Approved")])
    (role,) = to_fhir_practitioner_roles(record)  # the second review names no contact
    assert role["id"] == ethics_committee_role_id(record, review)
    assert ethics_committee_role_id(record, record.ethics_reviews[1]) is None
    assert role["code"] == [
        {
            "coding": [{"system": PARTY_ROLE, "code": "irb", "display": "Institutional Review Board"}],
            "text": "Ethics committee",
        }
    ]
    assert role["contact"] == [
        {
            "name": [{"text": "ethikkommission@charite.de"}],
            "telecom": [
                {"system": "phone", "value": "(+49)30-450517222"},
                {"system": "email", "value": "ethikkommission@charite.de"},
            ],
            "address": {"text": "Ethikkommission der Charité"},
        }
    ]
    assert "practitioner" not in role and to_fhir_practitioners(record) == []


def test_funders_are_organizations_not_people() -> None:
    funder = "Novartis Pharma GmbH"
    record = _record(funders=[Org(name=funder)], central_contacts=[Contact(name=funder)])
    assert to_fhir_practitioners(record) == []
    assert [o["name"] for o in to_fhir_organizations(record)] == ["Novartis Pharma GmbH"]


@pytest.mark.parametrize(
    "name",
    [
        "Site Public Contact",
        "Site 0259",
        "Pfizer CT.gov Call Center",
        "Bayer Study Director",
        "GSK Clinical Trials",
        "Clinical Trials",
        "Medical Monitor",
        "Novartis Pharmaceuticals",
        "AstraZeneca Clinical Study Information Center",
        "Call 1-877-CTLILLY (1-877-285-4559) or 1-317-615-4559 Mon - Fri 9 AM - 5 PM Eastern Time",
        "For more information at the NIH Clinical Center contact Office of Patient Recruitment (OPR)",
    ],
)
def test_labels_are_not_people(name: str) -> None:
    assert not is_person_name(name)


@pytest.mark.parametrize(
    "name", ["Antonio Uccelli, MD", "Jane Doe, Study Coordinator", "Mercedes Rodriguez, Coordinator", "Lee Site"]
)
def test_people_are_people(name: str) -> None:
    assert is_person_name(name)


def test_label_contacts_at_many_sites_are_not_merged_into_one_person() -> None:
    # NCI trials call every site contact "Site Public Contact": 659 of them in NCT04267848.
    sites = [
        Site(facility=f"Hospital {n}", contacts=[Contact(name="Site Public Contact", role="CONTACT", phone=f"55{n}")])
        for n in range(3)
    ]
    record = _record(sites=sites)
    assert to_fhir_practitioners(record) == []
    roles = to_fhir_practitioner_roles(record)
    assert len(roles) == 3
    for role, n in zip(roles, range(3), strict=True):
        assert "practitioner" not in role
        assert role["contact"] == [
            {"name": [{"text": "Site Public Contact"}], "telecom": [{"system": "phone", "value": f"55{n}"}]}
        ]


def test_contact_named_like_an_organization_of_the_record_is_not_a_person() -> None:
    record = _record(
        lead_sponsor=Org(name="Boehringer Ingelheim"),
        central_contacts=[Contact(name="Boehringer Ingelheim", phone="1-800-243-0127")],
    )
    assert to_fhir_practitioners(record) == []
    (role,) = to_fhir_practitioner_roles(record)
    assert role["contact"][0]["name"] == [{"text": "Boehringer Ingelheim"}]


def test_sponsor_investigator_named_as_sponsor_is_still_a_person() -> None:
    record = _record(
        lead_sponsor=Org(name="Antonio Uccelli"),
        responsible_party=ResponsibleParty(type="SPONSOR_INVESTIGATOR", investigator_full_name="Antonio Uccelli"),
        central_contacts=[Contact(name="Antonio Uccelli", phone="1")],
    )
    (person,) = to_fhir_practitioners(record)
    assert all(
        role["practitioner"]["reference"] == f"Practitioner/{person['id']}"
        for role in to_fhir_practitioner_roles(record)
    )


def test_responsible_party_title_that_is_no_degree_describes_the_role() -> None:
    record = _record(
        responsible_party=ResponsibleParty(
            type="PRINCIPAL_INVESTIGATOR",
            investigator_full_name="A. M. Zeiher",
            investigator_title="Prof. Dr. Andreas M. Zeiher",
            investigator_affiliation="Johann Wolfgang Goethe University Hospital",
        )
    )
    (person,) = to_fhir_practitioners(record)
    assert person["name"] == [{"text": "A. M. Zeiher", "family": "Zeiher", "given": ["A.", "M."]}]
    assert "qualification" not in person
    (role,) = to_fhir_practitioner_roles(record)
    assert role["code"][1] == {"text": "Prof. Dr. Andreas M. Zeiher"}
    assert (PARTY_ROLE, "primary-investigator") in _codes(role)


def test_legacy_responsible_party_name_title() -> None:
    record = _record(responsible_party=ResponsibleParty(old_name_title="Prof. Vardi Yoram", old_organization="RAMBAM"))
    (person,) = to_fhir_practitioners(record)
    assert person["name"] == [{"text": "Prof. Vardi Yoram", "prefix": ["Prof."]}]
    (role,) = to_fhir_practitioner_roles(record)
    assert role["id"] == ids.responsible_party_role_id(record)
    assert role["organization"]["display"] == "RAMBAM"
    assert role["code"] == [{"text": "Responsible party"}]


def test_sponsor_responsible_party_has_no_role() -> None:
    record = _record(responsible_party=ResponsibleParty(type="SPONSOR"))
    assert to_fhir_practitioner_roles(record) == []


def test_non_ascii_people() -> None:
    record = _record(
        officials=[
            Official(name="Jürgen Müller-Lüdenscheidt, Prof. Dr.", role="STUDY_CHAIR", affiliation="Charité"),
            Official(name="李明, MD", role="PRINCIPAL_INVESTIGATOR"),
        ]
    )
    first, second = to_fhir_practitioners(record)
    assert first["name"] == [{"text": "Jürgen Müller-Lüdenscheidt, Prof. Dr.", "suffix": ["Prof.", "Dr."]}]
    assert second["name"] == [{"text": "李明"}]
    assert second["qualification"] == [{"code": {"text": "MD"}}]


def test_fixtures_through_the_readers_resolve_and_are_deterministic() -> None:
    reader = pytest.importorskip("adapter.readers.ctgov_json")
    paths = sorted((ROOT / "fixtures" / "ctgov-v2-json").glob("*.json"))
    assert paths
    for path in paths:
        record = reader.read_study(json.loads(path.read_text(encoding="utf-8")))
        resources = (
            to_fhir_organizations(record)
            + to_fhir_locations(record)
            + to_fhir_practitioners(record)
            + to_fhir_practitioner_roles(record)
        )
        keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
        assert len(keys) == len(set(keys)), path.name
        text = json.dumps(resources, sort_keys=True)
        for reference in {part.split('"')[0] for part in text.split('"reference": "')[1:]}:
            assert reference in keys, (path.name, reference)
        again = reader.read_study(json.loads(path.read_text(encoding="utf-8")))
        assert json.dumps(to_fhir_practitioner_roles(again)) == json.dumps(to_fhir_practitioner_roles(record))


def test_practitioners_and_roles_share_no_parts_between_records() -> None:
    """Parsed names and role codings are cached: every resource gets its own lists and dicts."""
    record = _record(
        officials=[Official(name="Jacob M Sands, MD", role="PRINCIPAL_INVESTIGATOR")],
        sites=[Site(facility="Mayo Clinic", contacts=[Contact(name="Jacob M Sands", role="SUB_INVESTIGATOR")])],
    )
    first = to_fhir_practitioners(record) + to_fhir_practitioner_roles(record)
    second = to_fhir_practitioners(record) + to_fhir_practitioner_roles(record)
    assert first == second

    assert not containers(first) & containers(second)
    assert first[0]["name"][0]["given"] == ["Jacob", "M"]
