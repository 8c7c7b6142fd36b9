"""Locations: one per site, address with ISO country code, position, site recruitment status, site contacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sharing import containers

from adapter.record import Contact, GeoPoint, Official, Org, Site, SourceInfo, TrialRecord
from mappings import ids
from mappings.codes import table
from mappings.fhir import CTGOV_ENUM
from mappings.location import (
    ISO_3166,
    NO_FACILITY_NAME,
    RESEARCH_STUDY_STATUS,
    SC_CODING,
    SITE_RECRUITMENT_STATUS,
    country_code,
    to_fhir_location,
    to_fhir_locations,
)
from mappings.organization import to_fhir_organizations
from mappings.practitioner import CONTACTPOINT_EXTENSION

ROOT = Path(__file__).resolve().parents[2]
BIG = ROOT / "fixtures" / "ctgov-v2-json" / "NCT04267848.json"
CORPUS = ROOT.parent / "shared" / "corpus"


def _record(sites: list[Site], **fields: Any) -> TrialRecord:
    return TrialRecord(
        source=SourceInfo(registry="ctgov", format="ctgov-v2-json"), registry_id="NCT00000001", sites=sites, **fields
    )


def _contact(raw: dict[str, Any]) -> Contact:
    return Contact(
        name=raw.get("name"),
        role=raw.get("role"),
        phone=raw.get("phone"),
        phone_ext=raw.get("phoneExt"),
        email=raw.get("email"),
    )


def v2_record(path: Path) -> TrialRecord:
    """The parts of a v2 study these mappings read, built by hand so the tests do not depend on the reader."""
    study = json.loads(path.read_text(encoding="utf-8"))["protocolSection"]
    sponsors = study.get("sponsorCollaboratorsModule", {})
    places = study.get("contactsLocationsModule", {})
    sites = []
    for loc in places.get("locations", []):
        geo = loc.get("geoPoint")
        sites.append(
            Site(
                facility=loc.get("facility"),
                status=loc.get("status"),
                city=loc.get("city"),
                state=loc.get("state"),
                zip=loc.get("zip"),
                country=loc.get("country"),
                geo_point=GeoPoint(lat=geo["lat"], lon=geo["lon"]) if geo else None,
                contacts=[_contact(c) for c in loc.get("contacts", [])],
            )
        )
    lead = sponsors.get("leadSponsor")
    return TrialRecord(
        source=SourceInfo(registry="ctgov", format="ctgov-v2-json"),
        registry_id=study["identificationModule"]["nctId"],
        lead_sponsor=Org(name=lead["name"], agency_class=lead.get("class")) if lead else None,
        collaborators=[Org(name=c["name"], agency_class=c.get("class")) for c in sponsors.get("collaborators", [])],
        officials=[Official(**o) for o in places.get("overallOfficials", [])],
        central_contacts=[_contact(c) for c in places.get("centralContacts", [])],
        sites=sites,
    )


def genova() -> Site:
    """The one site of the seed trial NCT01854957 (fixtures/seed/NCT01854957.xml)."""
    return Site(
        facility="University of Genova",
        status="RECRUITING",
        city="Genova",
        zip="16132",
        country="Italy",
        contacts=[Contact(name="Antonio Uccelli, MD, PhD", role="PRINCIPAL_INVESTIGATOR")],
    )


def test_seed_genova_location() -> None:
    record = _record([genova()])
    (location,) = to_fhir_locations(record)
    assert location == {
        "resourceType": "Location",
        "id": ids.location_ids(record)[0],
        "extension": [
            {
                "url": SITE_RECRUITMENT_STATUS,
                "valueCodeableConcept": {
                    "coding": [
                        {"system": CTGOV_ENUM + "RecruitmentStatus", "code": "RECRUITING", "display": "Recruiting"},
                        {"system": RESEARCH_STUDY_STATUS, "code": "recruiting"},
                    ]
                },
            }
        ],
        "name": "University of Genova",
        "address": {
            "city": "Genova",
            "postalCode": "16132",
            "country": "Italy",
            "_country": {"extension": [{"url": SC_CODING, "valueCoding": {"system": ISO_3166, "code": "IT"}}]},
        },
        "managingOrganization": {
            "reference": f"Organization/{ids.organization_id('University of Genova')}",
            "display": "University of Genova",
        },
    }
    # Operational status of the building is not something a registry states.
    assert "status" not in location
    # The site investigator is a PractitionerRole, not a Location contact.
    assert "contact" not in location


@pytest.mark.parametrize("status", sorted(table("site_status")))
def test_every_site_status_row(status: str) -> None:
    row = table("site_status")[status]
    (location,) = to_fhir_locations(_record([Site(facility="X", status=status)]))
    (ext,) = location["extension"]
    assert ext["url"] == SITE_RECRUITMENT_STATUS
    codings = ext["valueCodeableConcept"]["coding"]
    assert codings[0] == {"system": CTGOV_ENUM + "RecruitmentStatus", "code": status, "display": row["display"]}
    if "research_study_status" in row:
        assert codings[1] == {"system": RESEARCH_STUDY_STATUS, "code": row["research_study_status"]}
    else:
        assert len(codings) == 1


def test_site_status_codes_exist_in_r5_research_study_status() -> None:
    allowed = {
        "overall-study", "active", "active-but-not-recruiting", "administratively-completed", "approved",
        "closed-to-accrual", "closed-to-accrual-and-intervention", "completed", "disapproved",
        "enrolling-by-invitation", "in-review", "not-yet-recruiting", "recruiting",
        "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention", "terminated", "withdrawn",
    }  # fmt: skip
    used = {row.get("research_study_status") for row in table("site_status").values()} - {None}
    assert used <= allowed


def test_unknown_site_status_is_text() -> None:
    (location,) = to_fhir_locations(_record([Site(facility="X", status="PAUSED_FOR_HOLIDAYS")]))
    assert location["extension"][0]["valueCodeableConcept"] == {"text": "PAUSED_FOR_HOLIDAYS"}


def test_site_without_facility_is_named_after_its_address_and_says_so() -> None:
    site = Site(city="Genova", state="Liguria", country="Italy")
    (location,) = to_fhir_locations(_record([site]))
    assert location["name"] == "Genova, Liguria, Italy"
    assert location["description"] == NO_FACILITY_NAME
    assert "managingOrganization" not in location


def test_site_with_nothing_known_has_no_invented_name() -> None:
    (location,) = to_fhir_locations(_record([Site(status="WITHDRAWN")]))
    assert set(location) == {"resourceType", "id", "extension"}


def test_position_from_geo_point() -> None:
    site = Site(facility="X", geo_point=GeoPoint(lat=61.21806, lon=-149.90028))
    (location,) = to_fhir_locations(_record([site]))
    assert location["position"] == {"longitude": -149.90028, "latitude": 61.21806}


def test_placeholder_facility_keeps_its_name_but_has_no_managing_organization() -> None:
    (location,) = to_fhir_locations(_record([Site(facility="Pfizer Investigational Site", city="Kyiv")]))
    assert location["name"] == "Pfizer Investigational Site"
    assert "managingOrganization" not in location


def test_site_contact_address_and_affiliation_in_the_location_contact() -> None:
    site = Site(facility="F", contacts=[Contact(name="Desk", role="CONTACT", affiliation="Org A", address="Street 1")])
    (location,) = to_fhir_locations(_record([site]))
    (contact,) = location["contact"]
    assert contact["address"] == {"text": "Street 1"}
    assert contact["organization"] == {"reference": f"Organization/{ids.organization_id('Org A')}", "display": "Org A"}


def test_site_contacts_without_investigator_role_are_location_contacts() -> None:
    site = Site(
        facility="Beverly Hospital",
        contacts=[
            Contact(name="Jane Q. Doe, RN", role="CONTACT", phone="978-922-3000", phone_ext="2405", email="j@x.org"),
            Contact(name="Site Public Contact", role="CONTACT", phone="978-922-3001"),
            Contact(role="CONTACT", email="trials@x.org"),
            Contact(name="Legacy Contact Without Role", phone="1"),
            Contact(name="John Smith, MD", role="PRINCIPAL_INVESTIGATOR"),
            Contact(name="Ann Lee", role="SUB_INVESTIGATOR"),
        ],
    )
    (location,) = to_fhir_locations(_record([site]))
    purpose = {
        "coding": [
            {"system": CTGOV_ENUM + "ContactRole", "code": "CONTACT", "display": "Contact"},
            {"system": "http://hl7.org/fhir/research-study-party-role", "code": "recruitment-contact"},
        ]
    }
    assert location["contact"] == [
        {
            "purpose": purpose,
            "name": [{"text": "Jane Q. Doe", "family": "Doe", "given": ["Jane", "Q."]}],
            "telecom": [
                {
                    "extension": [{"url": CONTACTPOINT_EXTENSION, "valueString": "2405"}],
                    "system": "phone",
                    "value": "978-922-3000 ext. 2405",
                },
                {"system": "email", "value": "j@x.org"},
            ],
        },
        # A label, not a person: kept as written, never parsed into name parts.
        {
            "purpose": purpose,
            "name": [{"text": "Site Public Contact"}],
            "telecom": [{"system": "phone", "value": "978-922-3001"}],
        },
        {"purpose": purpose, "telecom": [{"system": "email", "value": "trials@x.org"}]},
        {
            "purpose": {"coding": [purpose["coding"][1]]},
            "name": [{"text": "Legacy Contact Without Role"}],
            "telecom": [{"system": "phone", "value": "1"}],
        },
    ]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Italy", "IT"),
        ("United States", "US"),
        ("Korea, Republic of", "KR"),
        ("South Korea", "KR"),
        ("Turkey", "TR"),
        ("Turkey (Türkiye)", "TR"),
        ("Czech Republic", "CZ"),
        ("Czechia", "CZ"),
        ("Russian Federation", "RU"),
        ("Russia", "RU"),
        ("Iran, Islamic Republic of", "IR"),
        ("Macedonia, The Former Yugoslav Republic of", "MK"),
        ("Palestinian Territories, Occupied", "PS"),
        ("Côte D'Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("Réunion", "RE"),
        ("Hong Kong", "HK"),
        ("Taiwan", "TW"),
        ("Vietnam", "VN"),
        ("  united   kingdom ", "GB"),
    ],
)
def test_country_codes(name: str, code: str) -> None:
    assert country_code(name) == code


@pytest.mark.parametrize("name", ["Former Serbia and Montenegro", "Netherlands Antilles", "Kosovo", "Atlantis"])
def test_countries_without_iso_code_stay_text_only(name: str) -> None:
    assert country_code(name) is None
    (location,) = to_fhir_locations(_record([Site(facility="X", country=name)]))
    assert location["address"] == {"country": name}


def test_every_country_in_the_corpus_resolves() -> None:
    if not (CORPUS / "ctgov-v2-json").is_dir():
        pytest.skip("shared corpus not available")
    seen: set[str] = set()
    for path in sorted((CORPUS / "ctgov-v2-json").glob("*.json")):
        study = json.loads(path.read_text(encoding="utf-8"))["protocolSection"]
        seen.update(loc.get("country", "") for loc in study.get("contactsLocationsModule", {}).get("locations", []))
    seen.discard("")
    assert {c for c in seen if country_code(c) is None} <= {"Former Serbia and Montenegro"}


def test_big_fixture_one_location_per_site_in_order() -> None:
    record = v2_record(BIG)
    locations = to_fhir_locations(record)
    assert len(record.sites) == 1148
    assert [loc["id"] for loc in locations] == ids.location_ids(record)
    assert len({loc["id"] for loc in locations}) == len(locations)
    first = locations[0]
    assert first["name"] == "Anchorage Associates in Radiation Medicine"
    assert first["address"]["state"] == "Alaska"
    assert first["address"]["country"] == "United States"
    assert first["extension"][0]["valueCodeableConcept"]["coding"][1]["code"] == "temporarily-closed-to-accrual"
    org_ids = {o["id"] for o in to_fhir_organizations(record)}
    for location in locations:
        managing = location.get("managingOrganization")
        if managing:
            assert managing["reference"].removeprefix("Organization/") in org_ids


def test_deterministic() -> None:
    record = v2_record(BIG)
    assert json.dumps(to_fhir_locations(record)) == json.dumps(to_fhir_locations(v2_record(BIG)))


def test_locations_share_no_parts_between_calls() -> None:
    """Status codings, names and facility references come from caches: each Location gets its own copies
    (R4 conversion rewrites codings in place)."""
    site = Site(
        facility="Mayo Clinic",
        status="RECRUITING",
        country="Italy",
        contacts=[Contact(name="Jacob M Sands", role="CONTACT")],
    )
    first, second = (to_fhir_location(site, "x") for _ in range(2))
    assert first == second

    assert not containers(first) & containers(second)
