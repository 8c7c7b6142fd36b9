"""Organizations: one per distinct name, content a pure function of the id, placeholder facilities left out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adapter.readers.ctgov_xml import read_clinical_study
from adapter.record import (
    Contact,
    Official,
    Org,
    ResponsibleParty,
    Site,
    SourceInfo,
    TrialRecord,
)
from mappings import ids
from mappings.codes import table
from mappings.organization import (
    clean_name,
    facility_name,
    facility_organization,
    is_placeholder_facility,
    named_organization,
    organization_id,
    organization_reference,
    to_fhir_organizations,
)

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def seed_record() -> TrialRecord:
    """NCT01854957 (MESEMS) as the legacy XML states it, through the XML reader."""
    seed = Path(__file__).resolve().parents[2] / "fixtures" / "seed" / "NCT01854957.xml"
    return read_clinical_study(seed.read_bytes(), "NCT01854957.xml")


def _record(**fields: object) -> TrialRecord:
    return TrialRecord(source=SourceInfo(registry="ctgov", format="ctgov-v2-json"), registry_id="NCT00000001", **fields)


def test_seed_organizations_one_per_distinct_name_in_fixed_order() -> None:
    orgs = to_fhir_organizations(seed_record())
    assert [o["name"] for o in orgs] == [
        # The lead sponsor is a person's name: CT.gov's sponsor is an "agency" field, and the
        # sponsor-investigator typed his own name there. It stays an Organization, as registered.
        "Antonio Uccelli",
        "Azienda Ospedaliera Universitaria Integrata Verona",
        "Ospedale San Raffaele",  # collaborator, and Comi's affiliation: one resource
        "University of Genova",  # registering org, responsible party's affiliation and the site
        # Bonetti's affiliation is spelled differently from the collaborator: not merged by guess.
        "Azienda Ospedaliera Universitaria Integrata di Verona",
    ]
    for org in orgs:
        assert org == {"resourceType": "Organization", "id": ids.organization_id(org["name"]), "name": org["name"]}
        assert FHIR_ID.match(org["id"])


def test_organization_content_does_not_depend_on_the_trial() -> None:
    # Same sponsor, different agency class and role in two trials: byte-identical resource.
    first = _record(lead_sponsor=Org(name="Ospedale San Raffaele", agency_class="OTHER"))
    second = TrialRecord(
        source=SourceInfo(registry="ctgov", format="ctgov-xml"),
        registry_id="NCT09999999",
        collaborators=[Org(name="Ospedale San Raffaele", agency_class="INDUSTRY")],
        sites=[Site(facility="Ospedale San Raffaele", city="Milano", country="Italy")],
    )
    (a,) = to_fhir_organizations(first)
    (b,) = to_fhir_organizations(second)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_case_and_whitespace_variants_share_one_id_first_spelling_wins() -> None:
    record = _record(
        lead_sponsor=Org(name="University  of\nGenova"),
        collaborators=[Org(name="UNIVERSITY OF GENOVA")],
    )
    (org,) = to_fhir_organizations(record)
    assert org["name"] == "University of Genova"
    assert org["id"] == ids.organization_id("UNIVERSITY OF GENOVA")


def test_every_source_of_organization_names_is_covered() -> None:
    record = _record(
        organization=Org(name="Registering Org"),
        lead_sponsor=Org(name="Lead"),
        collaborators=[Org(name="Collab")],
        responsible_party=ResponsibleParty(old_name_title="Dr. X", old_organization="Old Org"),
        officials=[Official(name="A", affiliation="Affil"), Official(name="B")],
        sites=[
            Site(facility="Facility", contacts=[Contact(name="Dr Y", affiliation="Investigator Affil")]),
            Site(city="Nowhere"),
        ],
        funders=[Org(name="Funder"), Org(name="Lead")],
        central_contacts=[Contact(name="Z", affiliation="Contact Affil"), Contact(name="W")],
    )
    assert [o["name"] for o in to_fhir_organizations(record)] == [
        "Lead",
        "Collab",
        "Registering Org",
        "Old Org",
        "Affil",
        "Facility",
        "Funder",
        "Contact Affil",
        "Investigator Affil",
    ]


def test_non_ascii_names_kept_as_written() -> None:
    names = ["Hôpital Necker-Enfants Malades", "北京协和医院", "Universitätsklinikum Köln", "Ankara Üniversitesi"]
    record = _record(collaborators=[Org(name=n) for n in names])
    orgs = to_fhir_organizations(record)
    assert [o["name"] for o in orgs] == names
    assert all(FHIR_ID.match(o["id"]) for o in orgs)


@pytest.mark.parametrize(
    "name",
    [
        "Research Site",
        "research site",
        "Pfizer Investigational Site",
        "Novartis Investigative Site,",
        "GSK Investigational Site",
        "511.77.43005 Boehringer Ingelheim Investigational Site",
        "Local Institution",
        "Local Institution - 0058",
        "Investigational Site Number :0360002",
        "Site Reference ID/Investigator# 8062",
        "Site 001",
        "Research Facility",
        "For additional information regarding investigative sites for this trial, contact 1-877-CTLILLY "
        "(1-877-285-4559, 1-317-615-4559) Mon - Fri from 9 AM to 5 PM Eastern Time (UTC/GMT - 5 hours, EST), "
        "or speak with your personal physician.",
    ],
)
def test_placeholder_facilities_are_not_organizations(name: str) -> None:
    assert is_placeholder_facility(name)
    site = Site(facility=name, city="Anchorage", country="United States")
    assert facility_name(site) is None
    assert to_fhir_organizations(_record(sites=[site])) == []


@pytest.mark.parametrize(
    "name",
    [
        "Mayo Clinic",
        "University of Genova",
        "Research Center Eco-Safety",
        "Clinical Center of Serbia",
        "Shire Clinical Research Site",
        "St. Luke's Hospital",
        "Site Management Organization Alpha",
    ],
)
def test_real_facilities_are_organizations(name: str) -> None:
    assert not is_placeholder_facility(name)
    assert [o["name"] for o in to_fhir_organizations(_record(sites=[Site(facility=name)]))] == [name]


def test_organization_reference_uses_the_id_and_the_written_name() -> None:
    assert organization_reference("Ospedale  San Raffaele") == {
        "reference": f"Organization/{ids.organization_id('Ospedale San Raffaele')}",
        "display": "Ospedale San Raffaele",
    }


@pytest.mark.parametrize(
    "facility",
    ["Mayo Clinic", "  Mayo \n Clinic ", "MAYO CLINIC", "Research Site", "Pfizer Investigational Site", "   ", ""],
)
def test_cached_facility_lookup_agrees_with_the_definitions(facility: str) -> None:
    """``facility_organization`` (one cached lookup per site) gives what the separate steps give."""
    name, org_id = facility_organization(facility)
    assert name == clean_name(facility)
    expected = facility_name(Site(facility=facility))
    assert org_id == (organization_id(expected) if expected else None)
    assert named_organization(facility) == ((organization_id(facility), clean_name(facility)) if name else None)


def test_organizations_first_spelling_per_id_with_placeholders_left_out() -> None:
    record = _record(
        lead_sponsor=Org(name="Mayo  Clinic"),
        sites=[
            Site(facility="Research Site", contacts=[Contact(name="A", affiliation="Research Site")]),
            Site(facility="MAYO CLINIC"),
            Site(facility=" University\tof Genova "),
            Site(facility="university of genova", contacts=[Contact(name="B", affiliation="  ")]),
        ],
    )
    assert [(o["id"], o["name"]) for o in to_fhir_organizations(record)] == [
        (organization_id("mayo clinic"), "Mayo Clinic"),
        (organization_id("university of genova"), "University of Genova"),
        # A contact's affiliation is not a facility label: taken as written even if it reads like one.
        (organization_id("research site"), "Research Site"),
    ]


def test_placeholder_check_is_any_pattern_of_the_table() -> None:
    """The patterns are searched as one alternation: it must flag exactly what searching each one flags."""
    data = table("facility_placeholders")
    patterns = [re.compile(p) for p in data["patterns"]]
    big_path = Path(__file__).resolve().parents[2] / "fixtures" / "ctgov-v2-json" / "NCT04267848.json"
    big = json.loads(big_path.read_text(encoding="utf-8"))
    facilities = [loc["facility"] for loc in big["protocolSection"]["contactsLocationsModule"]["locations"]]
    facilities += ["Research Site", "Site 001", "Pfizer Investigational Site", "Local Institution - 0058"]
    flagged = 0
    for facility in facilities:
        key = ids.normalize_name(facility).strip(" ,;:.")
        expected = key in data["names"] or any(p.search(key) for p in patterns)
        assert is_placeholder_facility(facility) == expected, facility
        flagged += expected
    assert 0 < flagged < len(facilities)
