"""Stable, deterministic resource ids derived from registry ids and names.

Every id here is a pure function of the record, so converting the same record twice (or on two
machines) gives the same ids, and a transaction Bundle re-imported with PUT is idempotent.
FHIR ids allow ``[A-Za-z0-9-.]{1,64}``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from operator import attrgetter

from adapter.record import Contact, Official, TrialRecord

_NOT_ID_CHARS = re.compile(r"[^a-z0-9.-]+")


def _digest(text: str, size: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:size]


@lru_cache(maxsize=1 << 16)  # called ~200 times per record, mostly with repeats (sponsors recur across records)
def normalize_name(name: str) -> str:
    """Case- and whitespace-insensitive key for an organization or facility name."""
    # str.split() and the regex \s split on the same characters (str.isspace), so this is
    # re.sub(r"\s+", " ", name).strip().casefold(), the ids' published definition, at half the cost.
    return " ".join(name.split()).casefold()


def person_key(name: str) -> str:
    """Key identifying a person inside one record: the name before any degrees (``"A B, MD"`` -> ``"a b"``)."""
    return normalize_name(name.split(",", 1)[0])


def study_id(record: TrialRecord) -> str:
    """``NCT01854957`` -> ``nct01854957``; other ids are lower-cased, invalid characters folded to ``-``."""
    return _study_slug(record.registry_id)


@lru_cache(maxsize=64)  # every id of a record starts with it: asked for once per resource and role
def _study_slug(registry_id: str) -> str:
    slug = _NOT_ID_CHARS.sub("-", registry_id.casefold()).strip("-.")
    if not slug:
        slug = "study"
    if len(slug) > 40:  # keep room for the suffixes below within FHIR's 64 characters
        slug = f"{slug[:23]}-{_digest(slug)}"
    return slug


def has_protocol(record: TrialRecord) -> bool:
    """A PlanDefinition is produced exactly when the record registers arms or interventions."""
    return bool(record.arms or record.interventions)


def plan_definition_id(record: TrialRecord) -> str:
    """Id of the protocol PlanDefinition (only meaningful when ``has_protocol(record)``)."""
    return f"{study_id(record)}-protocol"


def eligibility_group_id(record: TrialRecord) -> str:
    return f"{study_id(record)}-eligibility"


def organization_id(name: str) -> str:
    """The same organization name gives the same id in every trial, so sponsors de-duplicate across a registry."""
    return f"org-{_digest(normalize_name(name), 24)}"


def _site_key(address: tuple[str | None, ...]) -> str:
    """Facility, city, state, zip and country, compared without case or extra spaces:
    ``"|".join(normalize_name(p) if p else "" for p in address)``, computed in one pass.

    Collapsing whitespace in the joined parts equals doing it part by part, except where a part
    starts or ends with whitespace (stripping it alone would drop that space): then a space meets
    a "|", and the parts are taken one by one.  Case folding maps each character on its own and
    never yields "|" or a space, so it is done once.  Site addresses seldom repeat across
    records, so going through ``normalize_name``'s cache would only churn it.
    """
    joined = " ".join("|".join([p or "" for p in address]).split())
    if " |" in joined or "| " in joined:
        joined = "|".join([" ".join(p.split()) if p else "" for p in address])
    return joined.casefold()


@lru_cache(maxsize=1 << 16)  # the same site (hospital and address) takes part in many trials
def _site_digest(address: tuple[str | None, ...]) -> str:
    return _digest(_site_key(address), 12)


def location_ids(record: TrialRecord) -> list[str]:
    """One id per entry of ``record.sites`` (same order).

    Derived from the site's facility and address rather than its position, so adding a site to a
    trial does not renumber the others; a site listed twice with the same address gets a suffix.
    """
    addresses = tuple(map(_ADDRESS, record.sites))
    return list(_location_ids(study_id(record), addresses))


_ADDRESS = attrgetter("facility", "city", "state", "zip", "country")
"""What a site's id is derived from, as one tuple (read three times per record, once per site each)."""


@lru_cache(maxsize=32)  # ResearchStudy, Location and PractitionerRole mappings each ask for a record's ids
def _location_ids(base: str, addresses: tuple[tuple[str | None, ...], ...]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    ids = []
    for address in addresses:
        key = _site_digest(address)
        count = seen.get(key, 0)
        seen[key] = count + 1
        ids.append(f"{base}-site-{key}-{count + 1}" if count else f"{base}-site-{key}")
    return tuple(ids)


def practitioner_id(record: TrialRecord, name: str) -> str:
    """People are identified per trial by name (registries carry no person identifiers)."""
    return f"{study_id(record)}-person-{_digest(person_key(name), 12)}"


def practitioner_role_id(record: TrialRecord, name: str, role: str, context: str = "") -> str:
    """A person's role in the trial (``context`` distinguishes e.g. the same person at two sites)."""
    key = f"{person_key(name)}|{role}|{normalize_name(context)}"
    return f"{study_id(record)}-role-{_digest(key, 12)}"


def _keys(prefix: str, labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        key = _digest(normalize_name(label), 8)
        count = seen.get(key, 0)
        seen[key] = count + 1
        out.append(f"{prefix}-{key}" + (f"-{count + 1}" if count else ""))
    return out


def arm_keys(record: TrialRecord) -> list[str]:
    """One key per ``record.arms`` entry: R5 ``comparisonGroup.linkId`` and the PlanDefinition action id.

    Derived from the arm label (unique within a CT.gov record) so both resources link by a real key.
    """
    return _keys("arm", [arm.label for arm in record.arms])


def intervention_keys(record: TrialRecord) -> list[str]:
    """One key per ``record.interventions`` entry (from type and name)."""
    return _keys("intervention", [f"{i.type or ''}: {i.name}" for i in record.interventions])


# PractitionerRole ids for each kind of person a record names.  ResearchStudy and the
# Practitioner mappings both call these, so references and resources always agree.


def official_role_id(record: TrialRecord, official: Official) -> str:
    return practitioner_role_id(record, official.name, official.role or "OFFICIAL", official.affiliation or "")


def responsible_party_role_id(record: TrialRecord) -> str | None:
    """Role of the responsible-party investigator, or ``None`` when the sponsor is responsible."""
    party = record.responsible_party
    if party is None or not (party.investigator_full_name or party.old_name_title):
        return None
    name = party.investigator_full_name or party.old_name_title or ""
    affiliation = party.investigator_affiliation or party.old_organization or ""
    return practitioner_role_id(record, name, "RESPONSIBLE_PARTY", affiliation)


def contact_label(contact: Contact) -> str:
    """What identifies a contact: the name, or the e-mail/phone of an unnamed one."""
    return contact.name or contact.email or contact.phone or "contact"


def central_contact_role_id(record: TrialRecord, contact: Contact) -> str:
    return practitioner_role_id(record, contact_label(contact), "CENTRAL_CONTACT")


def site_contact_role_id(record: TrialRecord, contact: Contact, location_id: str) -> str:
    return practitioner_role_id(record, contact_label(contact), contact.role or "CONTACT", location_id)
