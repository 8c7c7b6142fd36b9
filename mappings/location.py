"""Location resources: one per site of the trial (``record.sites``), ids from ``ids.location_ids``.

Choices worth knowing:

- ``status`` is not set.  FHIR ``Location.status`` is whether the place itself operates
  (active | suspended | inactive); a registry says nothing about that.  What it does say, the
  site's *recruitment* status in this trial, goes in the extension
  ``https://trial2fhir.org/fhir/StructureDefinition/site-recruitment-status`` (valueCodeableConcept:
  the CT.gov ``RecruitmentStatus`` coding plus the R5 research-study-status code where they mean
  the same).  Not ``Location.characteristic``: that holds lasting features of a place
  (wheelchair access ...), and R4 has no such element.
- ``address.country`` is the country as the registry wrote it ("Italy"): R5 ``Address.country``
  is a string, and the name is what a person reads.  Where the name is an ISO 3166-1 country, the
  core ``iso21090-SC-coding`` extension on it carries the alpha-2 code (``urn:iso:std:iso:3166``),
  so systems that match on codes need not parse names.  Names with no current ISO code
  ("Former Serbia and Montenegro") stay text only.
- A site with no facility name is named after its address ("Genova, Italy") and its
  ``description`` says so.
- ``managingOrganization`` is the facility's Organization, except for placeholder facility labels
  (see ``organization.is_placeholder_facility``).
- Site contacts proper (not investigators) are listed in R5 ``Location.contact`` (with their
  address and affiliation where a registry gives them); every site
  contact and investigator also gets a PractitionerRole (``mappings/practitioner.py``).
"""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache
from typing import Any

from adapter.record import Site, TrialRecord
from mappings import ids
from mappings.codes import table
from mappings.fhir import coding, ctgov_coding, present, reference
from mappings.organization import facility_organization, named_organization
from mappings.practitioner import (
    human_name,
    is_person_name,
    is_site_contact,
    parse_name_cached,
    record_organization_keys,
    role_concept,
    telecom,
)

SITE_RECRUITMENT_STATUS = "https://trial2fhir.org/fhir/StructureDefinition/site-recruitment-status"
SC_CODING = "http://hl7.org/fhir/StructureDefinition/iso21090-SC-coding"
ISO_3166 = "urn:iso:std:iso:3166"
RESEARCH_STUDY_STATUS = "http://hl7.org/fhir/research-study-status"

NO_FACILITY_NAME = "The registry record gives no facility name for this site; the name is its address."


def _country_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


@cache
def _countries() -> dict[str, str]:
    # The same table ResearchStudy.region uses (mappings/codes/country.json), keyed without case or accents.
    return {_country_key(name): code for name, code in table("country").items()}


@lru_cache(maxsize=4096)
def country_code(name: str) -> str | None:
    """ISO 3166-1 alpha-2 code of a country name as registries write it (case and accents ignored)."""
    return _countries().get(_country_key(name))


def address(site: Site) -> dict[str, Any]:
    out = present(city=site.city, state=site.state, postalCode=site.zip)
    country = site.country.strip() if site.country else None
    if country:
        out["country"] = country
        code = country_code(country)
        if code:
            out["_country"] = {"extension": [{"url": SC_CODING, "valueCoding": {"system": ISO_3166, "code": code}}]}
    return out


def recruitment_status(status: str) -> dict[str, Any]:
    """The site-recruitment-status extension for a CT.gov ``RecruitmentStatus`` value."""
    codings = _status_codings(status)
    # Copies: the cached codings are shared, and R4 conversion rewrites codings in place.
    value = {"coding": list(map(dict, codings))} if codings else {"text": status}
    return {"url": SITE_RECRUITMENT_STATUS, "valueCodeableConcept": value}


@lru_cache(maxsize=64)  # a dozen statuses, one lookup per site
def _status_codings(status: str) -> tuple[dict[str, str], ...]:
    """The codings for a site status: CT.gov's and the R5 study status where one matches; none if unknown."""
    row = table("site_status").get(status)
    if row is None:
        return ()
    state = row.get("research_study_status")
    main = ctgov_coding("RecruitmentStatus", status, row.get("display"))
    return (main, coding(RESEARCH_STUDY_STATUS, state)) if state else (main,)


def _site_name(site: Site) -> tuple[str | None, str | None, str | None]:
    """(name, managing Organization id, description) of a site's Location."""
    if site.facility and site.facility.strip():
        return *facility_organization(site.facility), None
    parts = [p.strip() for p in (site.city, site.state, site.country) if p and p.strip()]
    if not parts:
        return None, None, None
    return ", ".join(parts), None, NO_FACILITY_NAME


def _contact_name(name: str | None, org_keys: frozenset[str]) -> dict[str, Any] | None:
    if not name or not name.strip():
        return None
    if is_person_name(name, org_keys):
        return human_name(parse_name_cached(name))
    return {"text": " ".join(name.split())}


def _contacts(site: Site, org_keys: frozenset[str]) -> list[dict[str, Any]]:
    out = []
    for contact in site.contacts:
        if not is_site_contact(contact):
            continue
        # Built key by key (the elements that have a value, in this order): once per site contact.
        entry: dict[str, Any] = {}
        purpose = role_concept("ContactRole", contact.role, "recruitment-contact")
        if purpose:
            entry["purpose"] = purpose
        name = _contact_name(contact.name, org_keys)
        if name:
            entry["name"] = [name]
        points = telecom(contact)
        if points:
            entry["telecom"] = points
        if contact.address:
            entry["address"] = {"text": " ".join(contact.address.split())}
        affiliation = named_organization(contact.affiliation) if contact.affiliation else None
        if affiliation:
            entry["organization"] = reference("Organization", *affiliation)
        out.append(entry)
    return out


def to_fhir_location(site: Site, location_id: str, org_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The Location of one site; ``org_keys`` (``record_organization_keys``) spots contacts named by an organization."""
    # Built key by key rather than through compact(): this runs once per site, 1,000+ times for big trials.
    out: dict[str, Any] = {"resourceType": "Location", "id": location_id}
    if site.status:
        out["extension"] = [recruitment_status(site.status)]
    name, organization, description = _site_name(site)
    if name:
        out["name"] = name
    if description:
        out["description"] = description
    if site.contacts:
        contacts = _contacts(site, org_keys)
        if contacts:
            out["contact"] = contacts
    site_address = address(site)
    if site_address:
        out["address"] = site_address
    if site.geo_point is not None:
        out["position"] = {"longitude": site.geo_point.lon, "latitude": site.geo_point.lat}
    if organization:
        out["managingOrganization"] = reference("Organization", organization, name)
    return out


def to_fhir_locations(record: TrialRecord) -> list[dict[str, Any]]:
    """One R5 Location per ``record.sites`` entry, in the same order, ids from ``ids.location_ids``."""
    org_keys = record_organization_keys(record)
    return [to_fhir_location(s, i, org_keys) for s, i in zip(record.sites, ids.location_ids(record), strict=True)]
