"""Practitioner and PractitionerRole resources: overall officials, the responsible party, contacts, site investigators.

People are identified per trial by name (``ids.practitioner_id``; registries carry no person
identifiers), so one person listed as official, site investigator and contact is one
Practitioner with several PractitionerRoles.  Role ids come from the ``ids.*_role_id`` helpers,
the same calls the ResearchStudy mapping makes for its references.

Names are free text in every registry ("Antonio Uccelli, MD, PhD", "Smith, John", "Prof. Dr.
med. X").  ``HumanName.text`` is the name as written without the degrees after the comma;
degrees become ``qualification`` entries (``code.text`` as written), titles after the comma
(``Prof``, ``Jr``) also go to ``suffix``, titles before the name to ``prefix``.  When a word
after the comma is neither (``"Smith, John"``), the whole name stays ``text``, nothing split.
Family and given names are split off only where the order is not in doubt: an initial before
a capitalised last word ("Jacob M Sands", "A. M. Zeiher").  A plain "Wei Wang" may be written
either way round, and a wrong split is worse than none.

Some name fields hold no person at all ("Site Public Contact" at every site of an NCI trial,
"Pfizer CT.gov Call Center", the sponsor's own name): see ``is_person_name``.  Such entries get
a PractitionerRole without a practitioner, and the label is kept as the role's contact name.

Phone numbers and e-mail addresses are the contact points of a *role* (often a study hotline or
a study mailbox), so they go on the PractitionerRole (R5 ``contact[].telecom``), not on the
Practitioner; so does a contact's postal address (``contact[].address``, WHO ICTRP).  A contact's
or site investigator's affiliation is the role's ``organization`` (for a site investigator it
takes the place of the facility, which the role's ``location`` still names).

An ethics committee (WHO ICTRP ``Ethics_review_contact_*``) is a PractitionerRole with no
practitioner, code ``irb``, and its contact details under the labels ICTRP gives them (name,
address, phone, e-mail): several registries fill those fields shifted (an e-mail in the name
field, the committee's name in the address field), so they are kept as written, not
reinterpreted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from adapter.record import Contact, EthicsReview, TrialRecord
from mappings import ids
from mappings.codes import table
from mappings.fhir import coding, concept, ctgov_coding, extension, present, reference
from mappings.organization import facility_organization, named_organization

PARTY_ROLE = "http://hl7.org/fhir/research-study-party-role"
CONTACTPOINT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/contactpoint-extension"
"""Core extension for the extension part of a phone number (context ``ContactPoint`` in R4 and R5)."""

_WORD_SPLIT = re.compile(r"[,;]|\s+")
_CAPITALISED = re.compile(r"^[^\W\d_][^\W\d_'’-]*(?:['’-][^\W\d_]+)*$")
_INITIAL = re.compile(r"^[^\W\d_]\.?$")


@dataclass
class ParsedName:
    """What a registry's free-text person name says, split only where that is certain."""

    text: str
    prefix: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)
    family: str | None = None
    suffix: list[str] = field(default_factory=list)
    qualifications: list[str] = field(default_factory=list)
    recognised: bool = True
    """False when words after a comma were not degrees or titles, so ``text`` is the whole name."""


@cache
def _name_words() -> tuple[frozenset[str], frozenset[str]]:
    data = table("person_name")
    return frozenset(data["degrees"]), frozenset(data["titles"]) | frozenset(data["generational"])


def _word_key(word: str) -> str:
    return word.strip("*").replace(".", "").casefold()


def split_degrees(text: str) -> tuple[list[str], list[str]] | None:
    """``"MD, PhD"`` -> (``["MD", "PhD"]``, ``[]``); titles go to the second list; ``None`` if any word is neither."""
    degrees, titles = _name_words()
    found_degrees: list[str] = []
    found_titles: list[str] = []
    for word in _WORD_SPLIT.split(text):
        word = word.strip()
        if not word:
            continue
        key = _word_key(word)
        if key in degrees:
            found_degrees.append(word)
        elif key in titles:
            found_titles.append(word)
        else:
            return None
    return found_degrees, found_titles


def parse_name(name: str) -> ParsedName:
    """Split a registry person name into HumanName parts and degrees (see the module docstring)."""
    name = " ".join(name.split())
    head, _, tail = name.partition(",")
    head = head.strip()
    parsed = ParsedName(text=head)
    if tail.strip():
        split = split_degrees(tail)
        if split is None:
            return ParsedName(text=name, recognised=False)
        parsed.qualifications, parsed.suffix = split
        if parsed.suffix:
            # Titles are part of the name as written ("Yoram Vardi, Prof"); only degrees leave it.
            parsed.text = f"{head}, {' '.join(parsed.suffix)}"
    if not head:
        return ParsedName(text=name, recognised=False)
    words = head.split()
    _, titles = _name_words()
    while len(words) > 1 and _word_key(words[0]) in titles:
        parsed.prefix.append(words.pop(0))
    if _western_order(words):
        parsed.given = words[:-1]
        parsed.family = words[-1]
    return parsed


@lru_cache(maxsize=1 << 14)  # the same person is parsed by the Location, Practitioner and PractitionerRole mappings
def parse_name_cached(name: str) -> ParsedName:
    """``parse_name``, remembered.  Shared between calls, so it is only read: ``human_name`` copies its lists."""
    return parse_name(name)


def _western_order(words: list[str]) -> bool:
    """True for "Jacob M Sands", "A. M. Zeiher", "J. Smith": an initial before a capitalised last word.

    The initial is the evidence: it stands for a given name, so the last word is the family name.
    """

    def word(w: str) -> bool:
        return bool(_CAPITALISED.match(w)) and not w.isupper() and len(w) > 1

    if not 2 <= len(words) <= 4 or not word(words[-1]):
        return False
    first, middle = words[0], words[1:-1]
    if not all(_INITIAL.match(w) for w in middle) or not (word(first) or _INITIAL.match(first)):
        return False
    return bool(middle) or bool(_INITIAL.match(first))


def pruned(**elements: Any) -> dict[str, Any]:
    """The elements that have a value.  One level only: callers build the parts clean, so the
    recursive ``compact()`` (which dominated the time on a 1,148-site trial) is not needed.
    """
    # Truth first: most values are set, and a true value is never None, "", [] or {}.
    return {k: v for k, v in elements.items() if v or not (v is None or v == "" or v == [] or v == {})}


def human_name(parsed: ParsedName) -> dict[str, Any]:
    # Lists copied: ``parsed`` may be the shared ``parse_name_cached`` result; output is the caller's to change.
    return present(
        text=parsed.text,
        family=parsed.family,
        given=list(parsed.given),
        prefix=list(parsed.prefix),
        suffix=list(parsed.suffix),
    )


def telecom(contact: Contact) -> list[dict[str, Any]]:
    """Phone (with its extension) and e-mail of a contact as ContactPoints.

    ``ContactPoint.value`` keeps the whole dialling string a person needs (``"+1 555 0100 ext. 12"``);
    the core ``contactpoint-extension`` extension repeats the extension part for systems that dial.
    """
    points: list[dict[str, Any]] = []
    phone = (contact.phone or "").strip()
    ext = (contact.phone_ext or "").strip()
    if phone or ext:
        point: dict[str, Any] = {}
        if ext:
            point["extension"] = [extension(CONTACTPOINT_EXTENSION, valueString=ext)]
        point["system"] = "phone"
        point["value"] = f"{phone} ext. {ext}" if phone and ext else phone or f"ext. {ext}"
        points.append(point)
    if contact.email and contact.email.strip():
        points.append({"system": "email", "value": contact.email.strip()})
    return points


def role_concept(enum: str, code: str | None, default_party_role: str | None = None) -> dict[str, Any]:
    """CT.gov role coding plus the R5 research-study-party-role code where one matches; unknown values as text."""
    codings = _role_codings(enum, code, default_party_role)
    if codings is None:
        return concept(text=code)
    # Copies: the cached codings are shared, and R4 conversion rewrites codings in place.
    return {"coding": list(map(dict, codings))} if codings else {}


@lru_cache(maxsize=256)  # a handful of roles, one lookup per official and contact (1,000+ in big trials)
def _role_codings(enum: str, code: str | None, default_party_role: str | None) -> tuple[dict[str, str], ...] | None:
    """The codings of ``role_concept``; ``None`` for a code the table does not know."""
    if not code:
        return (coding(PARTY_ROLE, default_party_role),) if default_party_role else ()
    row = table("person_role")[enum].get(code)
    if row is None:
        return None
    party_role = row.get("party_role")
    main = ctgov_coding(enum, code, row.get("display"))
    return (main, coding(PARTY_ROLE, party_role)) if party_role else (main,)


@cache
def _not_person() -> tuple[frozenset[str], re.Pattern[str]]:
    data = table("not_person_names")
    return frozenset(data["names"]), re.compile("|".join(f"(?:{p})" for p in data["patterns"]))


def record_organization_keys(record: TrialRecord) -> frozenset[str]:
    """Normalised names of the record's sponsors, collaborators and registering organization.

    A "person" field holding one of them is that company, not a person ("Boehringer Ingelheim"
    as contact).  Except where the organization is a person: a sponsor-investigator registers as
    sponsor under his own name (MESEMS: sponsor "Antonio Uccelli"), so the lead sponsor of a
    SPONSOR_INVESTIGATOR record and the responsible party's own name are never taken for
    organizations.  Facilities are left out: a contact named after the hospital is rare, and
    checking every site of a 1,000-site trial is not free.
    """
    orgs = [record.lead_sponsor, *record.collaborators, *record.funders, record.organization]
    keys = {ids.normalize_name(org.name) for org in orgs if org is not None}
    party = record.responsible_party
    if party is not None:
        name = _responsible_party_name(record)
        if name:
            keys.discard(ids.normalize_name(name))
        if party.type == "SPONSOR_INVESTIGATOR" and record.lead_sponsor:
            keys.discard(ids.normalize_name(record.lead_sponsor.name))
    return frozenset(keys)


@lru_cache(maxsize=1 << 16)  # labels such as "Site Public Contact" repeat hundreds of times in one record
def _is_label(key: str) -> bool:
    names, pattern = _not_person()
    return key in names or pattern.search(key) is not None


def is_person_name(name: str | None, organization_keys: frozenset[str] = frozenset()) -> bool:
    """False for empty names, labels that name no person, and names of organizations of the record."""
    if not name or not name.partition(",")[0].strip():  # what ids.person_key keys people on
        return False
    key = ids.normalize_name(name)
    return not (key in organization_keys or _is_label(key))


def is_site_contact(contact: Contact) -> bool:
    """A site contact proper (not an investigator): v2 role CONTACT, or a legacy contact without a role."""
    return contact.role in (None, "CONTACT")


def ethics_committee_label(review: EthicsReview) -> str | None:
    """What names an ethics committee's contact: its first contact field, in ICTRP's order."""
    return review.contact_name or review.contact_address or review.contact_email or review.contact_phone


def ethics_committee_role_id(record: TrialRecord, review: EthicsReview) -> str | None:
    """PractitionerRole id of an ethics committee's contact, or ``None`` when the review names no contact."""
    label = ethics_committee_label(review)
    if label is None:
        return None
    context = "|".join(
        v or "" for v in (review.contact_name, review.contact_address, review.contact_phone, review.contact_email)
    )
    return ids.practitioner_role_id(record, label, "ETHICS_COMMITTEE", context)


def _responsible_party_name(record: TrialRecord) -> str | None:
    party = record.responsible_party
    if party is None:
        return None
    return party.investigator_full_name or party.old_name_title


def _people(record: TrialRecord) -> Iterator[tuple[str, list[str]]]:
    """Every person name in the record, in a fixed order, with degrees stated outside the name."""
    for official in record.officials:
        yield official.name, []
    party_name = _responsible_party_name(record)
    if party_name:
        title = record.responsible_party.investigator_title if record.responsible_party else None
        split = split_degrees(title) if title else None
        yield party_name, split[0] if split else []
    for contact in record.central_contacts:
        if contact.name:
            yield contact.name, []
    for site in record.sites:
        for contact in site.contacts:
            if contact.name:
                yield contact.name, []


def _add_unique(target: list[str], values: list[str]) -> None:
    if not values:  # the common case: a name with no degrees
        return
    known = {_word_key(v) for v in target}
    for value in values:
        if _word_key(value) not in known:
            known.add(_word_key(value))
            target.append(value)


def to_fhir_practitioners(record: TrialRecord) -> list[dict[str, Any]]:
    """One R5 Practitioner per distinct person (``ids.person_key``) the record names."""
    org_keys = record_organization_keys(record)
    people: dict[str, tuple[str, ParsedName, list[str]]] = {}
    parsed_names: dict[str, ParsedName | None] = {}
    for name, extra_degrees in _people(record):
        if name not in parsed_names:
            parsed_names[name] = parse_name_cached(name) if is_person_name(name, org_keys) else None
        parsed = parsed_names[name]
        if parsed is None:
            continue
        key = ids.person_key(name)
        if key not in people:
            people[key] = (name, parsed, [])
        elif parsed.recognised and not people[key][1].recognised:
            # Prefer a cleanly parsed spelling over one kept whole ("X, Principal Investigator").
            people[key] = (name, parsed, people[key][2])
        _add_unique(people[key][2], parsed.qualifications + extra_degrees)
    out = []
    for name, parsed, degrees in people.values():
        out.append(
            pruned(
                resourceType="Practitioner",
                id=ids.practitioner_id(record, name),
                name=[human_name(parsed)],
                qualification=[{"code": {"text": d}} for d in degrees],
            )
        )
    return out


class _People:
    """Who a name field designates, worked out once per distinct spelling (big trials repeat names per site)."""

    def __init__(self, record: TrialRecord) -> None:
        self.record = record
        self.org_keys = record_organization_keys(record)
        self.seen: dict[str, tuple[str | None, str]] = {}

    def __call__(self, name: str | None) -> dict[str, Any]:
        """``practitioner`` reference for a person's name, or ``label`` (the text as written) for anything else."""
        if not name or not name.strip():
            return {}
        known = self.seen.get(name)
        if known is None:
            if is_person_name(name, self.org_keys):
                known = (ids.practitioner_id(self.record, name), parse_name_cached(name).text)
            else:
                known = (None, " ".join(name.split()))
            self.seen[name] = known
        practitioner_id, text = known
        if practitioner_id is None:
            return {"label": text}
        return {"practitioner": reference("Practitioner", practitioner_id, text)}


def _org(name: str | None) -> dict[str, str] | None:
    """``organization_reference(name)``, ``None`` for no or a blank name."""
    organization = named_organization(name) if name else None
    return reference("Organization", *organization) if organization else None


def _role(
    role_id: str,
    person: dict[str, Any],
    telecoms: list[dict[str, Any]] | None = None,
    *,
    organization: dict[str, str] | None = None,
    code: list[dict[str, Any] | None] | None = None,
    location: list[dict[str, str]] | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "PractitionerRole", "id": role_id}
    if "practitioner" in person:
        out["practitioner"] = person["practitioner"]
    if organization:
        out["organization"] = organization
    codes = [c for c in code or () if c]
    if codes:
        out["code"] = codes
    if location:
        out["location"] = location
    contact: dict[str, Any] = {}
    if "label" in person:
        contact["name"] = [{"text": person["label"]}]
    if telecoms:
        contact["telecom"] = telecoms
    if address and address.strip():
        contact["address"] = {"text": " ".join(address.split())}
    if contact:
        out["contact"] = [contact]
    return out


def to_fhir_practitioner_roles(record: TrialRecord) -> list[dict[str, Any]]:
    """One R5 PractitionerRole per official, responsible party, central contact and site contact/investigator.

    Identical role ids (the same person listed twice in the same role) give one resource.
    """
    person = _People(record)
    roles: dict[str, dict[str, Any]] = {}

    def add(role_id: str, name: str | None, telecoms: list[dict[str, Any]] | None = None, **elements: Any) -> None:
        if role_id not in roles:
            roles[role_id] = _role(role_id, person(name), telecoms, **elements)

    for official in record.officials:
        add(
            ids.official_role_id(record, official),
            official.name,
            organization=_org(official.affiliation),
            code=[role_concept("OfficialRole", official.role)],
        )

    party_role_id = ids.responsible_party_role_id(record)
    party = record.responsible_party
    if party_role_id and party:
        title = party.investigator_title
        # A job title ("Professor of Neurology") describes the role; a degree ("MD") went to the Practitioner.
        title_concept = concept(text=title) if title and split_degrees(title) is None else None
        add(
            party_role_id,
            _responsible_party_name(record),
            organization=_org(party.investigator_affiliation or party.old_organization),
            code=[
                {**role_concept("ResponsiblePartyType", party.type), "text": "Responsible party"},
                title_concept,
            ],
        )

    for contact in record.central_contacts:
        add(
            ids.central_contact_role_id(record, contact),
            contact.name,
            telecom(contact),
            organization=_org(contact.affiliation),
            code=[role_concept("ContactRole", contact.role, "recruitment-contact")],
            address=contact.address,
        )

    for review in record.ethics_reviews:
        role_id = ethics_committee_role_id(record, review)
        if role_id is None or role_id in roles:
            continue
        telecoms = telecom(Contact(phone=review.contact_phone, email=review.contact_email))
        role = _role(
            role_id,
            {"label": review.contact_name} if review.contact_name else {},
            telecoms,
            code=[concept(coding(PARTY_ROLE, "irb", "Institutional Review Board"), text="Ethics committee")],
            address=review.contact_address,
        )
        roles[role_id] = role

    for site, location_id in zip(record.sites, ids.location_ids(record), strict=True):
        if not site.contacts:
            continue
        # The facility's Organization (none for placeholder labels) stands in for a missing affiliation.
        facility, facility_id = facility_organization(site.facility) if site.facility else (None, None)
        for contact in site.contacts:
            # The role's parts are built only for a new role id: this loop runs 1,000+ times in big trials.
            role_id = ids.site_contact_role_id(record, contact, location_id)
            if role_id in roles:
                continue
            organization = _org(contact.affiliation)
            if organization is None and facility_id:
                organization = reference("Organization", facility_id, facility)
            roles[role_id] = _role(
                role_id,
                person(contact.name),
                telecom(contact),
                organization=organization,
                code=[role_concept("ContactRole", contact.role, "recruitment-contact")],
                location=[reference("Location", location_id)],
                address=contact.address,
            )
    return list(roles.values())
