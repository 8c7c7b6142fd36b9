"""Organization resources: sponsors, collaborators, funders, the registering organization, affiliations, sites.

An Organization's id is ``ids.organization_id(name)``, so the same organization named by two trials
is one resource, and batch conversion keeps one copy per id.  That only works if the content is
a function of the id too, so an Organization here holds its **name and nothing else**: everything
else a record says about an organization is about that organization *in that trial* and lives
on the resources that belong to the trial:

- the agency class (``NIH``, ``INDUSTRY`` ...) is the sponsor's class as this record states it
  (legacy records and v2 records of the same sponsor do not always agree); it is carried on
  ``ResearchStudy.associatedParty.classifier`` (``mappings/research_study.py``), not as
  ``Organization.type``;
- a site's address belongs on its Location, not on the facility's Organization.

Site "facilities" that are placeholder labels ("Research Site", "Pfizer Investigational Site",
Lilly's call-centre message: about 10% of the sites in the corpus) get no Organization: under a
name-derived id each label would be one fake organization with thousands of unrelated sites.
Their Locations keep the label as name (``mappings/codes/facility_placeholders.json``).

Two limits remain, both from the name being the only key: ``ids.organization_id`` ignores case,
so ``"UNIVERSITY OF X"`` and ``"University of X"`` share an id while their ``name`` differs (within
one record the first spelling met wins; across records the batch layer needs a rule), and two
different hospitals with the same name (``"St. Luke's Hospital"``) become one Organization.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

from adapter.record import Site, TrialRecord
from mappings import ids
from mappings.codes import table
from mappings.fhir import reference

_TRAILING_PUNCTUATION = " ,;:."


def clean_name(name: str) -> str:
    """The name as written, with runs of whitespace collapsed (registries wrap long names)."""
    return " ".join(name.split())


@cache
def _placeholders() -> tuple[frozenset[str], re.Pattern[str]]:
    data = table("facility_placeholders")
    # One alternation searches as any of the patterns would (none uses back-references), in one scan.
    return frozenset(data["names"]), re.compile("|".join(f"(?:{p})" for p in data["patterns"]))


@lru_cache(maxsize=1 << 16)  # facility names repeat across records; the check is a pure function of the name
def is_placeholder_facility(name: str) -> bool:
    """True for site labels that name no organization (``"Research Site"``, ``"Pfizer Investigational Site"``)."""
    key = ids.normalize_name(name).strip(_TRAILING_PUNCTUATION)
    names, pattern = _placeholders()
    return key in names or pattern.search(key) is not None


def facility_name(site: Site) -> str | None:
    """Name of the Organization behind a site, or ``None`` when the site names none (no or placeholder facility)."""
    if not site.facility or is_placeholder_facility(site.facility):
        return None
    return clean_name(site.facility)


@lru_cache(maxsize=1 << 16)  # one call per site and mapping; a batch meets the same facilities again
def facility_organization(facility: str) -> tuple[str, str | None]:
    """(name, Organization id) of a site facility label: the name with whitespace collapsed, and
    the id of the Organization it names, ``None`` for blank and placeholder labels."""
    name = clean_name(facility)
    if not name or is_placeholder_facility(name):
        return name, None
    return name, organization_id(name)


@lru_cache(maxsize=1 << 16)  # sponsors, affiliations and facilities recur within and across records
def named_organization(name: str) -> tuple[str, str] | None:
    """(Organization id, name with whitespace collapsed) of an organization name; ``None`` for a blank one."""
    if not name or not name.strip():
        return None
    return organization_id(name), clean_name(name)


def _organizations(record: TrialRecord) -> dict[str, str]:
    """Organization id -> name of every organization the record names, first spelling per id, in
    the order of ``organization_names``."""
    found: dict[str, str] = {}

    def note(names: Iterable[str | None]) -> None:
        for name in names:
            identified = named_organization(name) if name else None
            if identified is not None and identified[0] not in found:
                found[identified[0]] = identified[1]

    party = record.responsible_party
    note(
        [
            record.lead_sponsor.name if record.lead_sponsor else None,
            *(c.name for c in record.collaborators),
            record.organization.name if record.organization else None,
            *((party.investigator_affiliation, party.old_organization) if party else ()),
            *(o.affiliation for o in record.officials),
        ]
    )
    # Facility labels through their own lookup, which leaves placeholders out.
    for site in record.sites:
        if site.facility:
            name, org_id = facility_organization(site.facility)
            if org_id is not None and org_id not in found:
                found[org_id] = name
    note(
        [
            *(f.name for f in record.funders),
            *(c.affiliation for c in record.central_contacts),
            *(c.affiliation for site in record.sites if site.contacts for c in site.contacts),
        ]
    )
    return found


def organization_names(record: TrialRecord) -> list[str]:
    """Every organization the record names, first spelling per id, in a fixed order.

    Order: lead sponsor, collaborators, registering organization, responsible party's
    affiliation, officials' affiliations, site facilities, funders, central contacts' and site
    contacts' affiliations.
    """
    return list(_organizations(record).values())


def to_fhir_organizations(record: TrialRecord) -> list[dict[str, Any]]:
    """One R5 Organization per distinct organization name in the record (see the module docstring)."""
    return [
        {"resourceType": "Organization", "id": org_id, "name": name} for org_id, name in _organizations(record).items()
    ]


@lru_cache(maxsize=1 << 16)
def organization_id(name: str) -> str:
    """``ids.organization_id``, remembered: sponsors and facilities recur across a batch of records."""
    return ids.organization_id(name)


def organization_reference(name: str) -> dict[str, str]:
    """Reference to the Organization of ``name``, with the name as written in this record as display."""
    return reference("Organization", organization_id(name), clean_name(name))
