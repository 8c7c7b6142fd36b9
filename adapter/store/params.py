"""Search parameters the store indexes, per FHIR version and resource type, and how values are indexed.

One table drives three things: the index rows written with every resource version (so a search is
a lookup, never a scan of JSON), the query parser of the REST server, and the CapabilityStatement
(so what the server declares is exactly what it can do).  Standard parameters carry the canonical
URL of the core SearchParameter of their FHIR release; the few the core lacks (R4 ``condition``,
``phase`` and ``enrollment``, R5 ``sponsor`` and ``progress-status``) are custom SearchParameters
published by the server under ``CUSTOM_BASE``.

Identifier values are indexed tolerantly: registry systems are folded to one canonical URI per
registry (``http://clinicaltrials.gov``, ``https://www.clinicaltrials.gov/`` and the THO NamingSystem
URL all mean ``https://clinicaltrials.gov/nctid``), values are case- and blank-insensitive, and a
NCT or EudraCT number written inside a longer secondary id ("EudraCT 2011-001295-19",
"EUCTR2011-001295-19-IT") is indexed under its registry too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

CUSTOM_BASE = "https://trial2fhir.org/fhir/SearchParameter/"
"""Canonical base of the SearchParameters this project defines (same namespace as its extensions)."""

R4_CORE = "http://hl7.org/fhir/SearchParameter/"
R5_CORE = "http://hl7.org/fhir/SearchParameter/"

RESOURCE_TYPES = (
    "ResearchStudy",
    "PlanDefinition",
    "Group",
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
)
"""Every type trial2fhir produces, so every reference in a converted Bundle resolves on the server."""

FHIR_VERSIONS = ("4.0", "5.0")

MAX_INDEXED = 500
"""Index values are cut to this many characters: btree keys have a size limit (PostgreSQL ~2.7 kB)."""

PARTY_ROLE = "http://hl7.org/fhir/research-study-party-role"
SPONSOR_ROLES = frozenset({"sponsor", "lead-sponsor", "sponsor-investigator"})


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type in one FHIR version."""

    code: str
    type: str
    """``token``, ``string``, ``reference``, ``date`` or ``uri``."""
    paths: tuple[str, ...]
    """Dotted element paths from the resource root (lists are walked transparently)."""
    expression: str
    """FHIRPath, as published in the SearchParameter (documentation; indexing uses ``paths``)."""
    description: str
    url: str
    custom: bool = False
    targets: tuple[str, ...] = ()
    select: Callable[[dict[str, Any]], list[Any]] | None = None
    """Replaces ``paths`` when the elements need a filter FHIRPath's ``where`` expresses."""
    identifier: bool = False
    """Identifier token: systems folded to canonical registry URIs, values case-insensitive."""

    def values(self, resource: dict[str, Any]) -> list[Any]:
        if self.select is not None:
            return self.select(resource)
        out: list[Any] = []
        for path in self.paths:
            out.extend(walk(resource, path))
        return out


def walk(value: Any, path: str) -> list[Any]:
    """Values at ``path`` (``"contact.address.city"``), flattening lists at every step."""
    items = [value]
    for key in path.split("."):
        nxt: list[Any] = []
        for item in items:
            if isinstance(item, dict):
                child = item.get(key)
                if isinstance(child, list):
                    nxt.extend(child)
                elif child is not None:
                    nxt.append(child)
        items = nxt
    return items


def _sponsors(resource: dict[str, Any]) -> list[Any]:
    out = []
    for party in walk(resource, "associatedParty"):
        codes = {c.get("code") for c in walk(party, "role.coding") if c.get("system") == PARTY_ROLE}
        if codes & SPONSOR_ROLES and isinstance(party.get("party"), dict):
            out.append(party["party"])
    return out


def _current_progress(resource: dict[str, Any]) -> list[Any]:
    progress = resource.get("progressStatus") or []
    return [progress[0]["state"]] if progress and isinstance(progress[0], dict) and "state" in progress[0] else []


def _core(
    version: str,
    rtype: str,
    code: str,
    ptype: str,
    paths: tuple[str, ...],
    description: str,
    targets: tuple[str, ...] = (),
    core_id: str | None = None,
    **options: Any,
) -> SearchParam:
    expression = options.pop("expression", None) or " | ".join(f"{rtype}.{p}" for p in paths)
    base = R4_CORE if version == "4.0" else R5_CORE
    return SearchParam(
        code, ptype, paths, expression, description, base + (core_id or f"{rtype}-{code}"), targets=targets, **options
    )


def _custom(
    version: str,
    rtype: str,
    code: str,
    ptype: str,
    paths: tuple[str, ...],
    description: str,
    targets: tuple[str, ...] = (),
    **options: Any,
) -> SearchParam:
    expression = options.pop("expression", None) or " | ".join(f"{rtype}.{p}" for p in paths)
    release = "R4" if version == "4.0" else "R5"
    return SearchParam(
        code,
        ptype,
        paths,
        expression,
        description,
        f"{CUSTOM_BASE}{release}-{rtype}-{code}",
        custom=True,
        targets=targets,
        **options,
    )


def _registry(version: str) -> dict[str, dict[str, SearchParam]]:
    r4 = version == "4.0"
    c, x = (lambda *a, **k: _core(version, *a, **k)), (lambda *a, **k: _custom(version, *a, **k))
    rs = "ResearchStudy"
    study = [
        c(
            rs,
            "identifier",
            "token",
            ("identifier",),
            "Business identifier for the study (NCT number, secondary ids)",
            identifier=True,
        ),
        c(rs, "status", "token", ("status",), "The status of the study" if r4 else "Publication status of the study"),
        c(rs, "title", "string", ("title",), "Name for this study"),
        c(rs, "keyword", "token", ("keyword",), "Used to search for the study"),
        c(rs, "date", "date", ("period",), "When the study began and ended"),
        c(
            rs,
            "site",
            "reference",
            ("site",),
            "Facility where study activities are conducted",
            ("Location",) if r4 else ("Location", "ResearchStudy", "Organization"),
        ),
        c(rs, "protocol", "reference", ("protocol",), "Steps followed in executing study", ("PlanDefinition",)),
        c(rs, "focus", "token", ("focus",), "Drugs, devices, etc. under study")
        if r4
        else c(rs, "focus-code", "token", ("focus.concept",), "Drugs, devices, etc. under study"),
    ]
    if r4:
        study += [
            c(
                rs,
                "sponsor",
                "reference",
                ("sponsor",),
                "Organization that initiates and is legally responsible for the study",
                ("Organization",),
            ),
            c(rs, "category", "token", ("category",), "Classifications for the study"),
            c(rs, "location", "token", ("location",), "Geographic region(s) for study"),
            c(rs, "partof", "reference", ("partOf",), "Part of larger study", ("ResearchStudy",)),
            c(
                rs,
                "principalinvestigator",
                "reference",
                ("principalInvestigator",),
                "Researcher who oversees multiple aspects of the study",
                ("Practitioner", "PractitionerRole"),
            ),
            x(
                rs,
                "condition",
                "token",
                ("condition",),
                "Condition being studied (R5 ResearchStudy-condition for R4; "
                "a value without a system also matches the condition's text, case-insensitively)",
            ),
            x(
                rs,
                "phase",
                "token",
                ("phase",),
                "Stage in progression of a therapy from initial experimental use in "
                "humans in clinical trials to post-market evaluation (R5 ResearchStudy-phase for R4)",
            ),
            x(
                rs,
                "enrollment",
                "reference",
                ("enrollment",),
                "Inclusion and exclusion criteria: the eligibility Group (R5 ResearchStudy-eligibility for R4)",
                ("Group",),
            ),
        ]
    else:
        study += [
            c(rs, "condition", "token", ("condition",), "Condition being studied"),
            c(rs, "phase", "token", ("phase",), "The stage in the progression of a study"),
            c(
                rs,
                "eligibility",
                "reference",
                ("recruitment.eligibility",),
                "Inclusion and exclusion criteria",
                ("Group", "EvidenceVariable"),
            ),
            c(rs, "classifier", "token", ("classifier",), "Classification for the study"),
            c(rs, "region", "token", ("region",), "Geographic area for the study"),
            c(rs, "study-design", "token", ("studyDesign",), "Classifications of the study design characteristics"),
            c(rs, "name", "string", ("name",), "Name for this study (computer friendly)"),
            c(rs, "part-of", "reference", ("partOf",), "Part of larger study", ("ResearchStudy",)),
            x(
                rs,
                "sponsor",
                "reference",
                (),
                "Lead sponsor or sponsor of the study: associatedParty.party where the "
                "role is sponsor, lead-sponsor or sponsor-investigator (R4 ResearchStudy-sponsor for R5)",
                ("Organization", "Practitioner", "PractitionerRole"),
                select=_sponsors,
                expression="ResearchStudy.associatedParty.where(role.coding.where(system = "
                f"'{PARTY_ROLE}' and (code = 'sponsor' or code = 'lead-sponsor' or code = 'sponsor-investigator'))"
                ".exists()).party",
            ),
            x(
                rs,
                "progress-status",
                "token",
                (),
                "Current progress state of the study (the first progressStatus: recruiting, completed, ...)",
                select=_current_progress,
                expression="ResearchStudy.progressStatus.first().state",
            ),
        ]
    pd = "PlanDefinition"
    plan = [
        c(pd, "identifier", "token", ("identifier",), "External identifier for the plan definition", identifier=True),
        c(pd, "status", "token", ("status",), "The current status of the plan definition"),
        c(pd, "title", "string", ("title",), "The human-friendly name of the plan definition"),
        c(pd, "name", "string", ("name",), "Computationally friendly name of the plan definition"),
        c(pd, "url", "uri", ("url",), "The uri that identifies the plan definition"),
        c(pd, "version", "token", ("version",), "The business version of the plan definition"),
        c(pd, "date", "date", ("date",), "The plan definition publication date"),
        c(pd, "type", "token", ("type",), "The type of artifact the plan (e.g. order set, ECA rule, protocol)"),
    ]
    if not r4:
        core_ids = {
            p: f"CanonicalResource-{p}" for p in ("identifier", "status", "title", "name", "url", "version", "date")
        }
        plan = [
            SearchParam(
                p.code,
                p.type,
                p.paths,
                p.expression,
                p.description,
                R5_CORE + core_ids[p.code],
                identifier=p.identifier,
            )
            if p.code in core_ids
            else p
            for p in plan
        ]
    gr = "Group"
    group = [
        c(gr, "identifier", "token", ("identifier",), "Unique id", identifier=True),
        c(gr, "type", "token", ("type",), "The type of resources the group contains"),
        c(gr, "code", "token", ("code",), "The kind of resources contained"),
        c(gr, "characteristic", "token", ("characteristic.code",), "Kind of characteristic"),
        c(gr, "exclude", "token", ("characteristic.exclude",), "Group includes or excludes"),
    ]
    group += (
        [c(gr, "actual", "token", ("actual",), "Descriptive or actual")]
        if r4
        else [
            c(gr, "membership", "token", ("membership",), "Definitional or enumerated group"),
            c(gr, "name", "string", ("name",), "A portion of the Group's name"),
        ]
    )
    org_address = "address" if r4 else "contact.address"
    og = "Organization"
    organization = [
        c(
            og,
            "identifier",
            "token",
            ("identifier",),
            "Any identifier for the organization (not the accreditation issuer's identifier)",
            identifier=True,
        ),
        c(og, "name", "string", ("name", "alias"), "A portion of the organization's name or alias"),
        c(og, "type", "token", ("type",), "A code for the type of organization"),
        c(og, "active", "token", ("active",), "Is the Organization record active"),
        c(
            og,
            "partof",
            "reference",
            ("partOf",),
            "An organization of which this organization forms a part",
            ("Organization",),
        ),
        c(
            og,
            "address",
            "string",
            (org_address,),
            "A server defined search that may match any of the string fields in the Address",
        ),
        c(og, "address-city", "string", (f"{org_address}.city",), "A city specified in an address"),
        c(og, "address-state", "string", (f"{org_address}.state",), "A state specified in an address"),
        c(og, "address-country", "string", (f"{org_address}.country",), "A country specified in an address"),
        c(og, "address-postalcode", "string", (f"{org_address}.postalCode",), "A postal code specified in an address"),
    ]
    lo = "Location"
    location = [
        c(lo, "identifier", "token", ("identifier",), "An identifier for the location", identifier=True),
        c(lo, "name", "string", ("name", "alias"), "A portion of the location's name or alias"),
        c(lo, "type", "token", ("type",), "A code for the type of location"),
        c(lo, "status", "token", ("status",), "Searches for locations with a specific kind of status"),
        c(
            lo,
            "organization",
            "reference",
            ("managingOrganization",),
            "Searches for locations that are managed by the provided organization",
            ("Organization",),
        ),
        c(lo, "partof", "reference", ("partOf",), "A location of which this location is a part", ("Location",)),
        c(lo, "address", "string", ("address",), "A (part of the) address of the location"),
        c(lo, "address-city", "string", ("address.city",), "A city specified in an address"),
        c(lo, "address-state", "string", ("address.state",), "A state specified in an address"),
        c(lo, "address-country", "string", ("address.country",), "A country specified in an address"),
        c(lo, "address-postalcode", "string", ("address.postalCode",), "A postal code specified in an address"),
    ]
    pr = "Practitioner"
    practitioner = [
        c(pr, "identifier", "token", ("identifier",), "A practitioner's Identifier", identifier=True),
        c(
            pr,
            "name",
            "string",
            ("name",),
            "A server defined search that may match any of the string fields in the "
            "HumanName, including family, given, prefix, suffix, and/or text",
        ),
        c(pr, "family", "string", ("name.family",), "A portion of the family name", core_id="individual-family"),
        c(pr, "given", "string", ("name.given",), "A portion of the given name", core_id="individual-given"),
        c(pr, "active", "token", ("active",), "Whether the practitioner record is active"),
    ]
    prr = "PractitionerRole"
    role = [
        c(prr, "identifier", "token", ("identifier",), "A practitioner's Identifier", identifier=True),
        c(
            prr,
            "practitioner",
            "reference",
            ("practitioner",),
            "Practitioner that is able to provide the defined services for the organization",
            ("Practitioner",),
        ),
        c(
            prr,
            "organization",
            "reference",
            ("organization",),
            "The identity of the organization the practitioner represents / acts on behalf of",
            ("Organization",),
        ),
        c(
            prr,
            "location",
            "reference",
            ("location",),
            "One of the locations at which this practitioner provides care",
            ("Location",),
        ),
        c(prr, "role", "token", ("code",), "The practitioner can perform this role at for the organization"),
        c(prr, "specialty", "token", ("specialty",), "The practitioner has this specialty at an organization"),
        c(prr, "active", "token", ("active",), "Whether this practitioner role record is in active use"),
    ]
    out = {
        "ResearchStudy": study,
        "PlanDefinition": plan,
        "Group": group,
        "Organization": organization,
        "Location": location,
        "Practitioner": practitioner,
        "PractitionerRole": role,
    }
    return {rtype: {p.code: p for p in params} for rtype, params in out.items()}


@cache
def search_params(fhir_version: str) -> dict[str, dict[str, SearchParam]]:
    """``{resource type: {code: SearchParam}}`` for ``"4.0"`` or ``"5.0"``."""
    if fhir_version not in FHIR_VERSIONS:
        raise ValueError(f"unsupported FHIR version {fhir_version!r}")
    return _registry(fhir_version)


def custom_params(fhir_version: str) -> list[tuple[str, SearchParam]]:
    """``(resource type, param)`` for every custom parameter of the version, in a fixed order."""
    return [(t, p) for t, params in search_params(fhir_version).items() for p in params.values() if p.custom]


# --- normalisation --------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Accent-, case- and blank-insensitive form of a string, as FHIR string search asks."""
    if not text.isascii():  # ASCII has nothing to decompose (most registry text: skip the per-character pass)
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())[:MAX_INDEXED]


@cache
def _registry_systems() -> tuple[dict[str, str], dict[str, str]]:
    """(alias -> canonical system, canonical system -> registry family) from ``registries.json``."""
    from mappings.codes import table

    aliases: dict[str, str] = {}
    families: dict[str, str] = {}
    for family, row in table("registries").items():
        if not isinstance(row, dict) or not row.get("system"):
            continue
        system = row["system"]
        families[system] = family
        for uri in (system, row.get("tho_naming_system"), row.get("record_url")):
            if uri:
                aliases.setdefault(_uri_key(uri.split("{", 1)[0]), system)
                aliases.setdefault(_host_key(uri), system)
    return aliases, families


def _uri_key(uri: str) -> str:
    low = uri.strip().lower()
    low = re.sub(r"^https?://(www\.)?", "", low)
    return low.rstrip("/")


def _host_key(uri: str) -> str:
    return "host:" + _uri_key(uri).split("/", 1)[0]


def canonical_system(system: str) -> str:
    """Registry identifier systems folded to one URI each; other systems compared scheme- and slash-insensitively."""
    if not system:
        return ""
    aliases, _ = _registry_systems()
    key = _uri_key(system)
    found = aliases.get(key)
    if found is None and system.strip().lower().startswith(("http://", "https://")):
        host = _host_key(system)
        # Registry hosts issue only trial ids: any path under clinicaltrials.gov or eudract is that registry.
        if host not in ("host:terminology.hl7.org", "host:hl7.org"):
            found = aliases.get(host)
    return found or key


def _system_of(family: str) -> str:
    from mappings.codes import table

    return str(table("registries")[family]["system"])


def normalize_identifier(value: str) -> str:
    return "".join(value.split()).casefold()[:MAX_INDEXED]


_NCT_IN = re.compile(r"NCT\d{8}(?!\d)", re.IGNORECASE)
_EUDRACT_IN = re.compile(r"(?<!\d)((?:19|20)\d{2}-\d{6}-\d{2})(?!-?\d)")


def identifier_keys(system: str | None, value: str) -> list[tuple[str, str]]:
    """Index keys ``(canonical system, normalised value)`` of one identifier, with embedded registry numbers."""
    keys = [(canonical_system(system or ""), normalize_identifier(value))]
    for match in _NCT_IN.finditer(value):
        keys.append((_system_of("ctgov"), match.group(0).casefold()))
    for match in _EUDRACT_IN.finditer(value):
        keys.append((_system_of("eudract"), match.group(1)))
    seen: set[tuple[str, str]] = set()
    return [k for k in keys if not (k in seen or seen.add(k))]


# --- dates ----------------------------------------------------------------------------------

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?)?)?)?$"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -(2**62)
MAX_US = 2**62


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def date_range(text: str) -> tuple[int, int, str]:
    """``(start, end)`` in epoch microseconds (end exclusive) of a FHIR date/dateTime/instant, and its precision.

    A date without a time zone is taken as UTC (the registries give calendar dates only).
    Raises ValueError for text that is not a FHIR date.
    """
    match = _DATE.match(text.strip())
    if not match:
        raise ValueError(f"not a FHIR date: {text!r}")
    parts = match.groupdict()
    year = int(parts["y"])
    month = int(parts["m"] or 1)
    day = int(parts["d"] or 1)
    hour = int(parts["H"] or 0)
    minute = int(parts["M"] or 0)
    second = int(parts["S"] or 0)
    fraction = parts["f"] or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    tz = UTC
    if parts["tz"] and parts["tz"] != "Z":
        sign = 1 if parts["tz"][0] == "+" else -1
        digits = parts["tz"][1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    start = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    if parts["f"]:
        precision, step = "fraction", timedelta(microseconds=10 ** (6 - min(len(fraction) - 1, 6)))
    elif parts["S"]:
        precision, step = "second", timedelta(seconds=1)
    elif parts["M"]:
        precision, step = "minute", timedelta(minutes=1)
    elif parts["H"]:
        precision, step = "hour", timedelta(hours=1)
    elif parts["d"]:
        precision, step = "day", timedelta(days=1)
    elif parts["m"]:
        precision = "month"
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
        return to_us(start), to_us(end), precision
    else:
        precision = "year"
        return to_us(start), to_us(datetime(year + 1, 1, 1, tzinfo=tz)), precision
    return to_us(start), to_us(start + step), precision


# --- index rows -----------------------------------------------------------------------------


@dataclass(slots=True)
class IndexRows:
    """The rows one resource contributes to each index table (without the fv/rtype/rid key)."""

    tokens: list[tuple[str, str, str]] = field(default_factory=list)
    strings: list[tuple[str, str, str]] = field(default_factory=list)
    refs: list[tuple[str, str, str]] = field(default_factory=list)
    dates: list[tuple[str, int, int]] = field(default_factory=list)


TEXT_SUFFIX = ":text"
"""Token texts (CodeableConcept.text, Coding.display) go to the string index under ``param:text``."""

_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def parse_reference(reference: str) -> tuple[str, str] | None:
    """``("Organization", "org-1")`` from a relative or absolute RESTful reference; None for others."""
    if reference.startswith(("#", "urn:")):
        return None
    match = _REFERENCE.search(reference)
    return (match.group(1), match.group(2)) if match else None


def _token_rows(param: SearchParam, value: Any, rows: IndexRows) -> None:
    code = param.code
    if isinstance(value, bool):
        rows.tokens.append((code, "", "true" if value else "false"))
    elif isinstance(value, str):
        rows.tokens.append((code, "", value[:MAX_INDEXED]))
    elif isinstance(value, dict):
        if param.identifier or ("value" in value and "coding" not in value and "code" not in value):
            if isinstance(value.get("value"), str):
                for system, key in identifier_keys(value.get("system"), value["value"]):
                    rows.tokens.append((code, system, key))
            return
        codings = value.get("coding") if "coding" in value else [value]
        for item in codings or []:
            if isinstance(item, dict) and isinstance(item.get("code"), str):
                rows.tokens.append((code, str(item.get("system") or "")[:MAX_INDEXED], item["code"][:MAX_INDEXED]))
            if isinstance(item, dict) and isinstance(item.get("display"), str):
                rows.strings.append((code + TEXT_SUFFIX, normalize_text(item["display"]), item["display"]))
        if isinstance(value.get("text"), str):
            rows.strings.append((code + TEXT_SUFFIX, normalize_text(value["text"]), value["text"]))


_STRING_PARTS = (
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


def _string_rows(param: SearchParam, value: Any, rows: IndexRows) -> None:
    if isinstance(value, str):
        rows.strings.append((param.code, normalize_text(value), value))
    elif isinstance(value, dict):  # HumanName, Address
        for part in _STRING_PARTS:
            for item in walk(value, part):
                if isinstance(item, str):
                    rows.strings.append((param.code, normalize_text(item), item))


def _date_rows(param: SearchParam, value: Any, rows: IndexRows) -> None:
    try:
        if isinstance(value, str):
            start, end, _ = date_range(value)
            rows.dates.append((param.code, start, end))
        elif isinstance(value, dict) and ("start" in value or "end" in value):
            start = date_range(value["start"])[0] if isinstance(value.get("start"), str) else MIN_US
            end = date_range(value["end"])[1] if isinstance(value.get("end"), str) else MAX_US
            rows.dates.append((param.code, start, end))
    except ValueError:
        return  # stored resources are validated; a date the parser cannot read is not indexed rather than fatal


def index_rows(fhir_version: str, resource: dict[str, Any]) -> IndexRows:
    """Everything the search index holds for ``resource`` (type-level parameters only; _id/_lastUpdated are columns)."""
    rows = IndexRows()
    params = search_params(fhir_version).get(resource.get("resourceType", ""), {})
    for param in params.values():
        for value in param.values(resource):
            if param.type == "token":
                _token_rows(param, value, rows)
            elif param.type == "string":
                _string_rows(param, value, rows)
            elif param.type == "uri":
                if isinstance(value, str):
                    rows.tokens.append((param.code, "", value[:MAX_INDEXED]))
            elif param.type == "reference":
                if isinstance(value, dict) and isinstance(value.get("reference"), str):
                    target = parse_reference(value["reference"])
                    if target:
                        rows.refs.append((param.code, *target))
            elif param.type == "date":
                _date_rows(param, value, rows)
    rows.tokens = list(dict.fromkeys(rows.tokens))
    rows.strings = list(dict.fromkeys(rows.strings))
    rows.refs = list(dict.fromkeys(rows.refs))
    rows.dates = list(dict.fromkeys(rows.dates))
    return rows


def iter_references(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict holding a ``reference`` string anywhere inside ``value`` (for transaction id rewriting)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("reference"), str):
                yield item
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
