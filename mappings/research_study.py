"""TrialRecord -> FHIR R5 (5.0.0) ResearchStudy.

Every fact of the record lands in the ResearchStudy except those another resource of the Bundle
owns (see ``HANDLED_ELSEWHERE``); the ResearchStudy references those resources by the ids of
``mappings.ids``.  Code systems and codes were checked against the R5 core package
(``hl7.fhir.r5.core`` 5.0.0) and, for registry dates, the FHIR Extensions Pack; the reasons for
each mapping choice live beside the code tables in ``mappings/codes``.

Design decisions a reader of the output needs to know:

* ``status`` is the publication status of the *record*: a registry entry that is posted is
  ``active`` whatever the study's progress (even a withdrawn study keeps a public record).  The
  study's own progress is ``progressStatus``.
* ``progressStatus[0]`` is always the current overall status (research-study-status coding first
  when one exists, then the CT.gov ``Status`` coding).  An ``UNKNOWN`` status is followed by the last
  known status with ``actual`` true and ``period.end`` = the status-verified date (it held at least
  until then; nothing is known after).  Then come ``overall-study`` (start / completion, one entry
  when both have the same actual/estimated type and are in order) and primary completion.
* Registry milestones (submission, QC, posting, results, update, verification) use the core
  extension ``researchStudy-studyRegistration`` with codes from
  ``research-study-registration-activity``; dates keep the precision the registry gave.  Dated
  registry events the code system has no code for (update QC, results returned after QC review,
  a canceled results submission, an ethics committee approval) use the same extension with a
  text (and CT.gov coding) activity, which its extensible binding allows (``registry_event.json``).
* Outcome time frames have no R5 element: they end each ``outcomeMeasure.description`` as
  ``Time frame: ...`` (and the legacy safety-issue flag as ``Safety issue: Yes/No``).  CT.gov
  outcomes are measures, not objectives; ``objective`` holds only objectives a registry states as
  such (EU CTR "Main / Secondary Objective").
* Ethics committees (WHO ICTRP) are ``associatedParty`` entries with role ``irb``, their status as
  written in the party's classifier and their contact details on a PractitionerRole; funders are
  ``associatedParty`` entries with role ``funding-source``.
* Free texts without an element (design descriptions, IPD plan texts, target duration, removed
  countries, fields the reader did not understand) are ``note`` entries, each starting with a label;
  short registry flags are ``classifier`` entries with text and, where one exists, a code.
* A value a table does not know is carried as text only: a CT.gov coding is emitted only for values
  of the CT.gov enumeration, so an unexpected value never masquerades as a known code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from adapter.record import (
    ConditionCode,
    DateStruct,
    Document,
    Identifier,
    MeshTerm,
    Objective,
    Outcome,
    Reference,
    TrialRecord,
    ViolationEvent,
)
from mappings import ids
from mappings.codes import table
from mappings.fhir import CTGOV_ENUM, coding, compact_resource, concept, ctgov_coding, present, reference
from mappings.practitioner import ethics_committee_label, ethics_committee_role_id

NCT_SYSTEM = "https://clinicaltrials.gov/nctid"
"""Preferred URI of the HL7 Terminology NamingSystem ``ClinicalTrials-Gov`` (v2.0.0), as in the
``registries`` table.  HL7's R5 example uses ``https://clinicaltrials.gov``; searches should accept
both (and ``http://clinicaltrials.gov``)."""

RESEARCH_STUDY_STATUS = "http://hl7.org/fhir/research-study-status"
RESEARCH_STUDY_PHASE = "http://hl7.org/fhir/research-study-phase"
PRIMARY_PURPOSE = "http://hl7.org/fhir/research-study-prim-purp-type"
ARM_TYPE = "http://hl7.org/fhir/research-study-arm-type"
OBJECTIVE_TYPE = "http://hl7.org/fhir/research-study-objective-type"
PARTY_ROLE = "http://hl7.org/fhir/research-study-party-role"
PARTY_ORG_TYPE = "http://hl7.org/fhir/research-study-party-organization-type"
STUDY_CLASSIFIERS = "http://hl7.org/fhir/research-study-classifiers"
REGISTRATION_ACTIVITY = "http://hl7.org/fhir/research-study-registration-activity"
STUDY_DESIGN = "http://hl7.org/fhir/study-design"
TITLE_TYPE = "http://hl7.org/fhir/title-type"
MESH = "https://www.nlm.nih.gov/mesh"
"""THO code system URL for MeSH (OID 2.16.840.1.113883.6.177)."""
ISO_3166 = "urn:iso:std:iso:3166"
STUDY_REGISTRATION_EXTENSION = "http://hl7.org/fhir/StructureDefinition/researchStudy-studyRegistration"
CTGOV_STATUS = CTGOV_ENUM + "Status"
"""System of the CT.gov overall-status codings in ``progressStatus.state`` (the R4 conversion reads it)."""
CONVERTER = "trial2fhir"

HANDLED_ELSEWHERE: dict[str, str] = {
    "eligibility": "Group (recruitment.eligibility references it)",
    "sites": "Location and site PractitionerRoles (site references them)",
    "arms[].intervention_names": "PlanDefinition (protocol references it)",
    "interventions[].type": "PlanDefinition",
    "interventions[].description": "PlanDefinition",
    "interventions[].arm_group_labels": "PlanDefinition",
    "interventions[].other_names": "PlanDefinition (also used here to match intervention MeSH terms)",
    "officials[].affiliation": "PractitionerRole.organization",
    "responsible_party.investigator_title": "Practitioner / PractitionerRole",
    "responsible_party.investigator_affiliation": "PractitionerRole.organization",
    "central_contacts[].phone": "PractitionerRole.telecom",
    "central_contacts[].phone_ext": "PractitionerRole.telecom",
    "central_contacts[].email": "PractitionerRole.telecom",
    "central_contacts[].affiliation": "PractitionerRole.organization",
    "central_contacts[].address": "PractitionerRole.contact.address",
    "ethics_reviews[].contact_name": "PractitionerRole.contact.name (associatedParty[irb].party references it)",
    "ethics_reviews[].contact_address": "PractitionerRole.contact.address",
    "ethics_reviews[].contact_phone": "PractitionerRole.contact.telecom",
    "ethics_reviews[].contact_email": "PractitionerRole.contact.telecom",
}
"""TrialRecord fields this mapping leaves to the resources that own them."""

NOT_MAPPED: dict[str, str] = {
    "condition_codes[].level": (
        "the MedDRA level (LLT, PT) the registry names: no Coding element holds it, and the code "
        "already identifies the term in MedDRA"
    ),
}
"""TrialRecord fields no FHIR element holds, with the reason (listed in ``mappings/README.md`` too)."""

_NCT_ID = re.compile(r"^NCT\d{8}$")
_PHASE_ORDER = ("NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4")
_DATE_TYPE_ACTUAL = {"ACTUAL": True, "ESTIMATED": False}
_CALENDAR_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def to_fhir_research_study(record: TrialRecord) -> dict[str, Any]:
    """The R5 ResearchStudy of one trial record (a plain dict, already compacted)."""
    status = record.status
    resource: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": ids.study_id(record),
        "extension": _registration_extensions(record),
        "identifier": _identifiers(record),
        "version": record.source.version,
        "name": _machine_name(record.registry_id),
        "title": record.brief_title or record.official_title,
        "label": _labels(record),
        "protocol": [reference("PlanDefinition", ids.plan_definition_id(record))] if ids.has_protocol(record) else [],
        "relatedArtifact": _related_artifacts(record),
        "date": status.last_update_post.date if status.last_update_post else None,
        "status": "active",
        "primaryPurposeType": _primary_purpose(record.design.primary_purpose),
        "phase": _phase(record.design.phases),
        "studyDesign": _study_design(record),
        "focus": [{"concept": c} for c in _focus(record) if c],
        "condition": _conditions(record),
        "keyword": _keywords(record),
        # An empty name would give an empty concept (a country name only yields a code when the table knows it).
        "region": [_country(name) for name in record.location_countries if name]
        + [concept(text=name) for name in record.location_regions if name],
        "descriptionSummary": record.brief_summary,
        "description": record.detailed_description,
        "period": _period(
            status.start.date if status.start else None, status.completion.date if status.completion else None
        ),
        "site": [
            reference("Location", location_id, site.facility)
            for site, location_id in zip(record.sites, ids.location_ids(record), strict=True)
        ],
        "note": [{"text": text} for text in _notes(record)],
        "classifier": _classifiers(record),
        "associatedParty": _associated_parties(record),
        "progressStatus": _progress_status(record),
        "whyStopped": concept(text=status.why_stopped) if status.why_stopped else None,
        "recruitment": _recruitment(record),
        "comparisonGroup": _comparison_groups(record),
        "objective": [objective for objective in map(_objective, record.objectives) if objective],
        "outcomeMeasure": [measure for measure in map(_outcome_measure, record.outcomes) if measure],
    }
    return compact_resource(resource, BUILT_CLEAN)


BUILT_CLEAN = frozenset(
    {
        "extension",
        "identifier",
        "label",
        "protocol",
        "relatedArtifact",
        "primaryPurposeType",
        "phase",
        "studyDesign",
        "focus",
        "condition",
        "keyword",
        "region",
        "period",
        "site",
        "note",
        "classifier",
        "associatedParty",
        "progressStatus",
        "whyStopped",
        "recruitment",
        "comparisonGroup",
        "objective",
        "outcomeMeasure",
    }
)
"""Elements whose builders emit no empty value: compaction keeps or drops them whole.

Their builders leave out every part that would be empty (``None``, ``""``, ``[]``, ``{}``) rather
than have compaction find it: record strings are stripped by the model but may be ``""``, so each
one is tested before it is used alone, and texts built around one never end in the space before
an empty value.  Code-table strings are never empty or padded (a test checks the tables).
``test_elements_built_clean_need_no_compaction`` holds the builders to it on awkward records."""


# --- identity -------------------------------------------------------------------------------


def is_nct_id(value: str) -> bool:
    return bool(_NCT_ID.match(value))


_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]")


def _machine_name(registry_id: str) -> str:
    # R5 `name` is the computer-friendly name; the registry id already is one once punctuation goes.
    return _NOT_NAME_CHARS.sub("_", registry_id)


# The id patterns of the code tables, compiled once: every secondary id is tried against each of
# them, and re's own cache lookup per call cost more than the matching.
@cache
def _id_type_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((key, re.compile(row["pattern"])) for key, row in table("secondary_id_type").items() if row["pattern"])


@cache
def _registry_patterns() -> dict[str, tuple[re.Pattern[str], dict[str, Any]]]:
    return {key: (re.compile(entry["id_regex"]), entry) for key, entry in table("registries").items()}


@cache
def _any_registry_pattern() -> tuple[re.Pattern[str], dict[str, dict[str, Any]]]:
    """All registries' id patterns as one alternation, in table order, each alternative a group named
    after its entry; and the entries by group name.

    Most secondary ids match no registry, and one pass of the regex engine over the alternation costs
    a fraction of trying two dozen patterns in turn.  ``match`` tries the alternatives in order and
    the patterns are anchored and free of backreferences and flags, so the alternative that matches is
    the first pattern that would match alone (a test compares the two); the outer group closes last,
    so ``lastgroup`` names it."""
    entries = {f"registry{index}": entry for index, entry in enumerate(table("registries").values())}
    alternation = "|".join(f"(?P<{name}>{entry['id_regex']})" for name, entry in entries.items())
    return re.compile(alternation), entries


def _recognised_id_type(value: str) -> str | None:
    """The SecondaryIdType whose number format ``value`` has (used only when the registry gave no type)."""
    return next((key for key, pattern in _id_type_patterns() if pattern.match(value)), None)


def registry_of(value: str, family: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """The ``registries`` table entry for an id (its family first, else the first id pattern it matches)
    and the registry's own form of the number (WHO ICTRP's prefix such as ``CTIS`` or ``JPRN-`` removed)."""
    pattern, entry = _registry_patterns().get(family or "", (None, None))
    if pattern is None or not pattern.match(value):
        any_registry, entries = _any_registry_pattern()
        match = any_registry.match(value)
        entry = entries[match.lastgroup] if match and match.lastgroup else None
    if entry is None:
        return None, value
    prefix = entry.get("ictrp_prefix")
    return entry, value[len(prefix) :] if prefix and value.startswith(prefix) else value


def _registry_identifiers(record: TrialRecord, value: str, use: str) -> list[dict[str, Any]]:
    entry, own = registry_of(value, record.source.registry)
    if entry is None:
        identifier: dict[str, Any] = {"use": use}
        if value:
            identifier["value"] = value
        if record.source.registry:
            identifier["assigner"] = {"display": record.source.registry}
        return [identifier]
    out = [{"use": use, "system": entry["system"], "value": own, "assigner": {"display": entry["display"]}}]
    if own != value:
        # The WHO ICTRP TrialID (registry number with ICTRP's prefix) is how ICTRP users know the trial.
        out.append(
            {
                "use": "secondary" if use == "official" else use,
                "type": concept(text="WHO ICTRP TrialID"),
                "value": value,
                "assigner": {"display": "WHO International Clinical Trials Registry Platform"},
            }
        )
    return out


def _secondary_identifier(secondary: Identifier) -> dict[str, Any]:
    given = secondary.type
    ids_table = table("secondary_id_type")
    kind = given if given in ids_table else None
    recognised = None if given else _recognised_id_type(secondary.id)
    row = ids_table.get(kind or recognised or "")
    registry, own = (None, secondary.id)
    if given in (None, "REGISTRY") and not recognised:
        # A registry number (NCT, DRKS, ISRCTN ...) gets that registry's identifier system.
        registry, own = registry_of(secondary.id)
    if kind and row:
        type_concept = concept(ctgov_coding("SecondaryIdType", kind, row["display"]), text=row["display"])
    elif recognised and row:
        type_concept = concept(text=f"{row['display']} (recognised from the number's format)")
    elif registry is not None:
        type_concept = concept(text=f"{registry['display']} identifier (recognised from the number's format)")
    else:
        type_concept = concept(text=given or "Secondary ID")
    system = registry["system"] if registry else (row["system"] if row else None)
    assigner = secondary.domain or (registry["display"] if registry else None) or (row["assigner"] if row else None)
    identifier: dict[str, Any] = {"type": type_concept}
    if system:
        identifier["system"] = system
    if own:
        identifier["value"] = own
    if assigner:
        identifier["assigner"] = {"display": assigner}
    if own != secondary.id:
        identifier["type"] = concept(
            *type_concept.get("coding", []), text=f"{type_concept['text']}; written {secondary.id}"
        )
    return identifier


def _identifiers(record: TrialRecord) -> list[dict[str, Any]]:
    out = _registry_identifiers(record, record.registry_id, "official")
    for alias in record.id_aliases:
        out += _registry_identifiers(record, alias, "old")
    org_id = record.org_study_id
    if org_id is not None:
        row = table("secondary_id_type").get(org_id.type or "")
        details = [row["display"] if row else org_id.type, f"domain {org_id.domain}" if org_id.domain else None]
        shown = ", ".join(d for d in details if d)
        label = "Organization's unique protocol ID" + (f" ({shown})" if shown else "")
        identifier: dict[str, Any] = {
            "type": concept(
                ctgov_coding("OrgStudyIdType", org_id.type, row["display"]) if row and org_id.type else None,
                text=label,
            )
        }
        if org_id.id:
            identifier["value"] = org_id.id
        if record.organization:
            identifier["assigner"] = _organization_reference(record.organization.name)
        out.append(identifier)
    out += [_secondary_identifier(secondary) for secondary in record.secondary_ids]
    return out


def _labels(record: TrialRecord) -> list[dict[str, Any]]:
    labels = (
        ("official", "Official title", record.official_title),
        ("short-title", "Short title", record.brief_title),
        ("acronym", "Acronym", record.acronym),
    )
    return [
        {"type": concept(coding(TITLE_TYPE, code, display)), "value": value} for code, display, value in labels if value
    ]


# --- status and dates ----------------------------------------------------------------------


def _actual(date: DateStruct | None) -> bool | None:
    return _DATE_TYPE_ACTUAL.get(date.type or "") if date else None


def _in_order(start: str, end: str) -> bool:
    """Whether ``start <= end`` at their common precision (FHIR's per-1 rule for partial dates)."""
    size = min(len(start), len(end))
    return start[:size] <= end[:size]


def _period(start: str | None, end: str | None) -> dict[str, str]:
    if start and end and not _in_order(start, end):
        # An inverted pair would break per-1; the end date still lands in progressStatus.
        return {"start": start}
    period = {}
    if start:
        period["start"] = start
    if end:
        period["end"] = end
    return period


def status_concept(value: str) -> dict[str, Any]:
    """``progressStatus.state`` for a CT.gov overall/last-known status value."""
    row = table("overall_status").get(value)
    if row is None:
        return concept(text=value)
    return concept(
        coding(RESEARCH_STUDY_STATUS, row["code"], _status_display(row["code"])) if row["code"] else None,
        ctgov_coding("Status", value, row["display"]),
        text=row["display"],
    )


def _status_display(code: str) -> str:
    # Displays as the R5 research-study-status code system spells them.
    displays = {
        "overall-study": "Overall study",
        "recruiting": "Recruiting",
        "not-yet-recruiting": "Not yet recruiting",
        "enrolling-by-invitation": "Enrolling by invitation",
        "active-but-not-recruiting": "Active, not recruiting",
        "completed": "Completed",
        "terminated": "Terminated",
        "withdrawn": "Withdrawn",
        "temporarily-closed-to-accrual": "Temporarily Closed to Accrual",
    }
    return displays[code]


def _progress(state: dict[str, Any], actual: bool | None, period: dict[str, str] | None = None) -> dict[str, Any]:
    entry = {"state": state}
    if actual is not None:
        entry["actual"] = actual
    if period:
        entry["period"] = period
    return entry


def _overall_study() -> dict[str, Any]:
    # A new concept per entry: the R4 conversion rewrites codings in place.
    return concept(coding(RESEARCH_STUDY_STATUS, "overall-study", "Overall study"), text="Overall study")


def _progress_status(record: TrialRecord) -> list[dict[str, Any]]:
    status = record.status
    out: list[dict[str, Any]] = []
    if status.overall_status:
        # UNKNOWN is the registry's verdict that the status is no longer known: not an actual state.
        actual = None if status.overall_status == "UNKNOWN" else True
        out.append(_progress(status_concept(status.overall_status), actual))
    if status.last_known_status:
        verified = status.status_verified_date
        out.append(_progress(status_concept(status.last_known_status), True, {"end": verified} if verified else None))
    start, completion = status.start, status.completion
    if start and completion and _actual(start) == _actual(completion) and _in_order(start.date, completion.date):
        out.append(_progress(_overall_study(), _actual(start), {"start": start.date, "end": completion.date}))
    else:
        if start:
            out.append(_progress(_overall_study(), _actual(start), {"start": start.date}))
        if completion:
            out.append(_progress(_overall_study(), _actual(completion), {"end": completion.date}))
    if status.primary_completion:
        row = table("registration_activity")["primary_completion"]
        out.append(
            _progress(
                concept(coding(REGISTRATION_ACTIVITY, row["code"], row["display"]), text="Primary completion"),
                _actual(status.primary_completion),
                {"end": status.primary_completion.date},
            )
        )
    return out


def _registration(activity: dict[str, Any], actual: bool | None, date: str | None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "activity", "valueCodeableConcept": activity}]
    if actual is not None:
        parts.append({"url": "actual", "valueBoolean": actual})
    if date:
        parts.append({"url": "period", "valuePeriod": {"start": date, "end": date}})
    return {"url": STUDY_REGISTRATION_EXTENSION, "extension": parts}


@cache
def _registration_milestones() -> tuple[tuple[str, str, str, str | None, str | None], ...]:
    """The status fields with a registration activity code, in the table's order: field, code and
    display, then the field and text of the uncoded event recorded right after it (if any)."""
    after = {row["after"]: (field, row["display"]) for field, row in table("registry_event")["status_dates"].items()}
    return tuple(
        (field, row["code"], row["display"], *after.get(field, (None, None)))
        for field, row in table("registration_activity").items()
        if field != "primary_completion"  # a progressStatus entry, not a registry milestone
    )


def _registration_extensions(record: TrialRecord) -> list[dict[str, Any]]:
    out = []
    events = table("registry_event")
    status = record.status
    for field, code, display, extra, extra_display in _registration_milestones():
        value = getattr(status, field)
        if value is not None:
            if isinstance(value, DateStruct):
                date, actual = value.date, _actual(value)
            else:
                # Submission, QC and verification dates are only ever recorded after the fact.
                date, actual = value, True
            out.append(_registration(concept(coding(REGISTRATION_ACTIVITY, code, display)), actual, date))
        if extra is not None:
            extra_date = getattr(status, extra)
            if extra_date is not None:
                out.append(_registration(concept(text=extra_display), True, extra_date))
    annotations = record.annotations
    if annotations is not None:
        rows = events["UnpostedEventType"]
        for event in annotations.unposted_events:
            row = rows.get(event.type)
            if row is None:
                # .strip(): an empty event type would leave the text ending in a space.
                activity = concept(text=f"Unposted results event: {event.type}".strip())
            else:
                activity = concept(
                    coding(REGISTRATION_ACTIVITY, row["code"], _activity_display(row["code"])) if row["code"] else None,
                    ctgov_coding("UnpostedEventType", event.type, row["ctgov_display"]),
                    text=row["display"] + (" (date not known)" if event.date_unknown else ""),
                )
            out.append(_registration(activity, True, event.date))
    for review in record.ethics_reviews:
        if review.approval_date:
            out.append(_registration(concept(text=events["ethics_approval"]["display"]), True, review.approval_date))
    return out


def _activity_display(code: str) -> str:
    return next(row["display"] for row in table("registration_activity").values() if row["code"] == code)


# --- classification ---------------------------------------------------------------------------


def _phase(phases: list[str]) -> dict[str, Any] | None:
    if not phases:
        return None
    rows = table("phase")
    ordered = sorted(phases, key=lambda p: _PHASE_ORDER.index(p) if p in _PHASE_ORDER else len(_PHASE_ORDER))
    combined = rows.get("+".join(ordered))
    known = all(p in rows for p in phases)
    return concept(
        coding(RESEARCH_STUDY_PHASE, combined["code"], combined["display"]) if combined else None,
        *(ctgov_coding("Phase", p, rows[p]["display"]) for p in phases if known),
        text=combined["display"] if combined else "/".join(rows[p]["display"] if p in rows else p for p in phases),
    )


def _primary_purpose(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    row = table("primary_purpose").get(value)
    if row is None:
        return concept(text=value)
    return concept(
        coding(PRIMARY_PURPOSE, row["code"], row["display"]) if row["code"] else None,
        ctgov_coding("PrimaryPurpose", value, row["display"]),
        text=row["display"],
    )


def design_concept(enum: str, value: str) -> dict[str, Any]:
    """A studyDesign entry: SEVCO coding when one means the same, the CT.gov coding, and text."""
    rows = table("who_masked") if enum == "WhoMasked" else table("study_design")[enum]
    row = rows.get(value)
    if row is None:
        return concept(text=value)
    return concept(
        coding(STUDY_DESIGN, row["sevco"], row["sevco_display"]) if row["sevco"] else None,
        ctgov_coding(enum, value, row["display"]),
        text=row["display"],
    )


def _study_design(record: TrialRecord) -> list[dict[str, Any]]:
    design = record.design
    entries: list[tuple[str, str | None]] = [
        ("StudyType", design.study_type),
        ("DesignAllocation", design.allocation),
        ("InterventionalAssignment", design.intervention_model),
        ("ObservationalModel", design.observational_model),
        ("DesignTimePerspective", design.time_perspective),
        ("DesignMasking", design.masking),
        *(("WhoMasked", role) for role in design.who_masked),
        ("BioSpecRetention", design.bio_spec_retention),
    ]
    return [design_concept(enum, value) for enum, value in entries if value]


def _mesh_concept(term: MeshTerm) -> dict[str, Any]:
    """The term as a concept (empty when the record gives neither id nor term text)."""
    return concept(coding(MESH, term.id, term.term) if term.id else None, text=term.term)


def _matched(
    texts: Iterable[tuple[str, list[str]]], meshes: list[MeshTerm]
) -> tuple[list[dict[str, Any]], list[MeshTerm]]:
    """Concepts for registry texts (with the MeSH codings whose term equals one of their names), and unmatched MeSH."""
    used: set[int] = set()
    out = []
    # Each term folded once rather than once per text (records list dozens of both).
    folded = [m.term.casefold() for m in meshes]
    for text, names in texts:
        hits = []
        if folded:
            keys = {n.casefold() for n in names}
            hits = [i for i, term in enumerate(folded) if term in keys]
        if hits:
            used.update(hits)
            codings = [coding(MESH, meshes[i].id, meshes[i].term) for i in hits if meshes[i].id]
            out.append(concept(*codings, text=text))
        else:
            out.append(concept(text=text))
    return out, [m for i, m in enumerate(meshes) if i not in used] if used else list(meshes)


def condition_coding(code: ConditionCode) -> dict[str, str]:
    """A registry condition code as a Coding in its terminology (``condition_code_system.json``)."""
    row = table("condition_code_system")["systems"].get(code.system)
    system = row["system"] if row else code.system
    # Empty when the record gives no system, code, version or display: concept() leaves it out then.
    out = {"system": system} if system else {}
    if code.version:
        out["version"] = code.version
    if code.code:
        out["code"] = code.code
    if code.display:
        out["display"] = code.display
    return out


def _conditions(record: TrialRecord) -> list[dict[str, Any]]:
    matched, rest = _matched(((c, [c]) for c in record.conditions), record.condition_meshes)
    # A registry code whose term is the condition text codes that condition; others stand alone.
    codes_by_text: dict[str, list[int]] = {}
    for index, code in enumerate(record.condition_codes):
        if code.display:
            codes_by_text.setdefault(code.display.casefold(), []).append(index)
    used: set[int] = set()
    for text, entry in zip(record.conditions, matched, strict=True):
        hits = codes_by_text.get(text.casefold(), [])
        if hits:
            used.update(hits)
            codings = [c for c in (condition_coding(record.condition_codes[i]) for i in hits) if c]
            if codings:
                entry["coding"] = [*entry.get("coding", []), *codings]
    standalone = [
        concept(condition_coding(code), text=code.display)
        for index, code in enumerate(record.condition_codes)
        if index not in used
    ]
    # ClinicalTrials.gov indexes the conditions with MeSH; a term naming none of them is still a condition term.
    return [entry for entry in (*matched, *standalone, *map(_mesh_concept, rest)) if entry]


def _focus(record: TrialRecord) -> list[dict[str, Any]]:
    matched, rest = _matched(
        ((i.name, [i.name, *i.other_names]) for i in record.interventions), record.intervention_meshes
    )
    return matched + [_mesh_concept(m) for m in rest]


_MEDDRA_SOC = re.compile(r"^(\d{8})\s*-\s*(.+)$")


def _system_organ_classes(record: TrialRecord) -> list[dict[str, Any]]:
    """MedDRA System Organ Classes of the condition codes: broader terms, like the MeSH ancestors."""
    out: list[dict[str, Any]] = []
    for code in record.condition_codes:
        soc = code.system_organ_class
        if not soc:
            continue
        match = _MEDDRA_SOC.match(soc)
        soc_coding = None
        if match and code.system == "MedDRA":
            soc_code = ConditionCode(system="MedDRA", code=match.group(1), display=match.group(2), version=code.version)
            soc_coding = condition_coding(soc_code)
        # EU CTR also writes the SOC as a bare EMA term number, which is no MedDRA code: text only.
        entry = concept(soc_coding, text=f"MedDRA System Organ Class: {soc}")
        if entry not in out:
            out.append(entry)
    return out


def _keywords(record: TrialRecord) -> list[dict[str, Any]]:
    # MeSH ancestors are ClinicalTrials.gov's search aids (broader terms), which is what keyword is for.
    ancestors = _unique_mesh([*record.condition_mesh_ancestors, *record.intervention_mesh_ancestors])
    return (
        [concept(text=k) for k in record.keywords if k]
        + [term for term in map(_mesh_concept, ancestors) if term]
        + _system_organ_classes(record)
    )


def _unique_mesh(terms: list[MeshTerm]) -> list[MeshTerm]:
    seen: set[tuple[str | None, str]] = set()
    out = []
    for term in terms:
        key = (term.id, term.term.casefold())
        if key not in seen:
            seen.add(key)
            out.append(term)
    return out


def country_code(name: str) -> str | None:
    """ISO 3166-1 alpha-2 code of a registry country name, or ``None`` when no current country matches."""
    countries = table("country")
    code = countries.get(name)
    if code is None:
        folded = {key.casefold(): value for key, value in countries.items()}
        code = folded.get(name.strip().casefold())
    return code


def _country(name: str) -> dict[str, Any]:
    code = country_code(name)
    return concept(coding(ISO_3166, code) if code else None, text=name)


def _yes_no(value: bool) -> str:
    return "Yes" if value else "No"


def _flag(label: str, value: bool | None, *codings: dict[str, str] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return concept(*(codings if value else ()), text=f"{label}: {_yes_no(value)}")


def _labelled(label: str, value: str) -> dict[str, Any]:
    """A text-only concept ``label: value``; stripped, as the value can be an empty record string."""
    return concept(text=f"{label}: {value}".strip())


def _classifiers(record: TrialRecord) -> list[dict[str, Any]]:
    status, design, oversight = record.status, record.design, record.oversight
    out: list[dict[str, Any] | None] = []
    if oversight is not None:
        out += [
            _flag("Has data monitoring committee", oversight.has_dmc),
            _flag(
                "Studies a U.S. FDA-regulated drug product",
                oversight.is_fda_regulated_drug,
                coding(STUDY_CLASSIFIERS, "fda-regulated-drug", "FDA regulated drug"),
            ),
            _flag(
                "Studies a U.S. FDA-regulated device product",
                oversight.is_fda_regulated_device,
                coding(STUDY_CLASSIFIERS, "fda-regulated-device", "FDA regulated device"),
            ),
            _flag("Device not approved or cleared by the U.S. FDA", oversight.is_unapproved_device),
            _flag("Pediatric postmarket surveillance of a device", oversight.is_ppsd),
            _flag("Product manufactured in and exported from the U.S.", oversight.is_us_export),
            _flag("FDAAA 801 violation", oversight.fdaaa801_violation),
            _flag("FDA regulated (legacy flag, before the drug/device split)", oversight.is_fda_regulated),
            _flag("Applicable clinical trial under FDAAA section 801 (legacy flag)", oversight.is_section_801),
        ]
        out += [_labelled("Oversight authority", authority) for authority in oversight.authorities]
    out += [
        _flag("Delayed posting requested", status.delayed_posting),
        _flag("Results submission waived", status.results_waived),
        _flag("Results posted", record.has_results),
        _flag("No statistical analysis plan (SAP) exists", record.no_sap),
        _flag("Patient registry", design.patient_registry),
        _flag("Registered retrospectively (after enrolment began)", status.registered_retrospectively),
        _flag("Records of this trial in other registries (WHO ICTRP)", record.other_registry_records),
    ]
    expanded = status.expanded_access
    if expanded is not None:
        out.append(_flag("Expanded access available", expanded.has_expanded_access))
    types = table("expanded_access_type")
    out += [
        _labelled("Expanded access type", types[t]["display"] if t in types else t)
        for t in design.expanded_access_types
    ]
    if design.number_of_arms is not None:
        out.append(concept(text=f"Number of arms/groups stated by the registry: {design.number_of_arms}"))
    if design.endpoint_classification:
        out.append(concept(text=f"Endpoint classification: {design.endpoint_classification}"))
    if design.expanded_access_pointer_count is not None:
        count = design.expanded_access_pointer_count
        out.append(concept(text=f"Study records naming this expanded access record: {count}"))
    out += [_labelled("Therapeutic area", area) for area in record.therapeutic_areas]
    if design.enrollment_count is not None and design.enrollment_type not in _DATE_TYPE_ACTUAL:
        suffix = f"type {design.enrollment_type}" if design.enrollment_type else "actual/estimated not stated"
        out.append(concept(text=f"Enrollment: {design.enrollment_count} ({suffix})"))
    party = record.responsible_party
    if party is not None and party.type:
        row = table("responsible_party_type").get(party.type)
        out.append(
            concept(
                ctgov_coding("ResponsiblePartyType", party.type, row["display"]) if row else None,
                text=f"Responsible party: {row['display'] if row else party.type}",
            )
        )
    out += _ipd_classifiers(record)
    return [entry for entry in out if entry is not None]


def _ipd_classifiers(record: TrialRecord) -> list[dict[str, Any]]:
    ipd = record.ipd_sharing
    if ipd is None:
        return []
    rows = table("ipd_sharing")
    out = []
    if ipd.ipd_sharing:
        row = rows["IpdSharing"].get(ipd.ipd_sharing)
        out.append(
            concept(
                ctgov_coding("IpdSharing", ipd.ipd_sharing, row["display"]) if row else None,
                text=f"Plan to share individual participant data: {row['display'] if row else ipd.ipd_sharing}",
            )
        )
    for info in ipd.info_types:
        row = rows["IpdSharingInfoType"].get(info)
        out.append(
            concept(
                ctgov_coding("IpdSharingInfoType", info, row["display"]) if row else None,
                # .strip(): an empty info type would leave the text ending in a space.
                text=f"IPD sharing supporting information: {row['display'] if row else info}".strip(),
            )
        )
    return out


def _notes(record: TrialRecord) -> list[str]:
    design, ipd = record.design, record.ipd_sharing
    texts: list[tuple[str, str | None]] = [
        ("Intervention model description", design.intervention_model_description),
        ("Masking description", design.masking_description),
        ("Biospecimen description", design.bio_spec_description),
        ("Target follow-up duration", design.target_duration),
    ]
    if ipd is not None:
        texts += [
            ("IPD sharing plan", ipd.description),
            ("IPD sharing time frame", ipd.time_frame),
            ("IPD sharing access criteria", ipd.access_criteria),
        ]
    if record.removed_countries:
        texts.append(("Countries removed from the study's locations", "; ".join(record.removed_countries)))
    if design.planned_subjects_per_age_group:
        counts = "; ".join(f"{group.label}: {group.count}" for group in design.planned_subjects_per_age_group)
        texts.append(("Planned number of subjects per age range", counts))
    annotations = record.annotations
    if annotations is not None:
        texts.append(("Responsible party named on the unposted results", annotations.unposted_responsible_party))
        texts += [("FDAAA 801 violation event", _violation_text(event)) for event in annotations.violation_events]
    if record.unmapped:
        texts.append(("Registry fields the reader did not map", "; ".join(record.unmapped)))
    # Stripped: a text joined from record strings ends in a space when the last one is empty.
    return [f"{label}: {text}".strip() for label, text in texts if text]


def _violation_text(event: ViolationEvent) -> str:
    row = table("registry_event")["ViolationEventType"].get(event.type)
    dates = (
        ("issued", event.issued_date),
        ("concerns the release of", event.release_date),
        ("annotation created", event.creation_date),
        ("posted", event.posted_date),
    )
    head = f"{row['display'] if row else event.type} ({event.type})"
    stated = ", ".join(f"{label} {date}" for label, date in dates if date)
    text = f"{head}, {stated}" if stated else head
    return f"{text}. {event.description}" if event.description else text


# --- parties ----------------------------------------------------------------------------------


def _organization_reference(name: str) -> dict[str, str]:
    return reference("Organization", ids.organization_id(name), name)


def _role(code: str) -> dict[str, Any]:
    # The R5 research-study-party-role code system uses each code as its own display.
    return concept(coding(PARTY_ROLE, code, code))


def _agency_classifiers(agency_class: str | None) -> list[dict[str, Any]]:
    if not agency_class:
        return []
    row = table("agency_class").get(agency_class)
    if row is None:
        return [concept(text=agency_class)]
    out = [concept(ctgov_coding("AgencyClass", agency_class, row["display"]), text=row["display"])]
    if row["code"]:
        out.append(concept(coding(PARTY_ORG_TYPE, row["code"], _org_type_display(row["code"]))))
    return out


def _org_type_display(code: str) -> str:
    return {"nih": "NIH", "fda": "FDA", "government": "Government", "industry": "Industry"}[code]


def _party(
    name: str | None, role: dict[str, Any], classifiers: list[dict[str, Any]], party: dict[str, str] | None
) -> dict[str, Any]:
    """An ``associatedParty`` entry (``role`` is never empty; the other parts are left out when empty)."""
    entry = {"name": name} if name else {}
    entry["role"] = role
    if classifiers:
        entry["classifier"] = classifiers
    if party:
        entry["party"] = party
    return entry


def _associated_parties(record: TrialRecord) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    sponsor_names = set()
    if record.lead_sponsor is not None:
        sponsor = record.lead_sponsor
        sponsor_names.add(ids.normalize_name(sponsor.name))
        out.append(
            _party(
                sponsor.name,
                _role("lead-sponsor"),
                _agency_classifiers(sponsor.agency_class),
                _organization_reference(sponsor.name),
            )
        )
    for collaborator in record.collaborators:
        sponsor_names.add(ids.normalize_name(collaborator.name))
        out.append(
            _party(
                collaborator.name,
                _role("collaborator"),
                _agency_classifiers(collaborator.agency_class),
                _organization_reference(collaborator.name),
            )
        )
    for funder in record.funders:
        out.append(
            _party(
                funder.name,
                _role("funding-source"),
                _agency_classifiers(funder.agency_class),
                _organization_reference(funder.name),
            )
        )
    organization = record.organization
    if organization is not None and ids.normalize_name(organization.name) not in sponsor_names:
        out.append(
            _party(
                organization.name,
                # No party-role code means "registers the study"; text only rather than a wrong code.
                concept(text="Registering organization (holds the registry record)"),
                _agency_classifiers(organization.agency_class),
                _organization_reference(organization.name),
            )
        )
    for official in record.officials:
        row = table("party_role").get(official.role or "")
        out.append(
            _party(
                official.name,
                _role(row["code"]) if row else concept(text=official.role or "Overall official"),
                [concept(ctgov_coding("OfficialRole", official.role, row["display"]), text=row["display"])]
                if row and official.role
                else [],
                reference("PractitionerRole", ids.official_role_id(record, official), official.name),
            )
        )
    out += _responsible_party(record)
    out += _ethics_committees(record)
    for contact in record.central_contacts:
        label = ids.contact_label(contact)
        out.append(
            _party(
                contact.name,
                # CT.gov's central contact answers enrolment questions for every site.
                _role("recruitment-contact"),
                [concept(text=f"Contact role: {contact.role}")] if contact.role else [],
                reference("PractitionerRole", ids.central_contact_role_id(record, contact), label),
            )
        )
    return out


def _ethics_committees(record: TrialRecord) -> list[dict[str, Any]]:
    out = []
    for review in record.ethics_reviews:
        role_id = ethics_committee_role_id(record, review)
        out.append(
            _party(
                None,
                # The code system's own display for irb (unlike its other codes, it has one).
                concept(coding(PARTY_ROLE, "irb", "Institutional Review Board"), text="Ethics committee"),
                [concept(text=f"Ethics review status: {review.status}")] if review.status else [],
                reference("PractitionerRole", role_id, ethics_committee_label(review)) if role_id else None,
            )
        )
    return out


def _responsible_party(record: TrialRecord) -> list[dict[str, Any]]:
    party = record.responsible_party
    role_id = ids.responsible_party_role_id(record)
    if party is None or role_id is None:
        return []
    name = party.investigator_full_name or party.old_name_title
    row = table("responsible_party_type").get(party.type or "")
    role = _role(row["code"]) if row and row["code"] else concept(text="Responsible party")
    classifiers = [concept(text="Responsible party")]
    # Legacy name/organization fields are shadowed by the current ones in the PractitionerRole; keep them here.
    if party.old_name_title and party.old_name_title != name:
        classifiers.append(concept(text=f"Responsible party as formerly registered: {party.old_name_title}"))
    if (
        party.old_organization
        and party.investigator_affiliation
        and party.old_organization != party.investigator_affiliation
    ):
        classifiers.append(
            concept(text=f"Responsible party organization as formerly registered: {party.old_organization}")
        )
    return [_party(name, role, classifiers, reference("PractitionerRole", role_id, name))]


# --- recruitment, groups, outcomes ------------------------------------------------------------


def _recruitment(record: TrialRecord) -> dict[str, Any]:
    design = record.design
    out: dict[str, Any] = {"eligibility": reference("Group", ids.eligibility_group_id(record))}
    if design.enrollment_count is not None and design.enrollment_count >= 0:
        if design.enrollment_type == "ACTUAL":
            out["actualNumber"] = design.enrollment_count
        elif design.enrollment_type == "ESTIMATED":
            out["targetNumber"] = design.enrollment_count
    return out


def _comparison_groups(record: TrialRecord) -> list[dict[str, Any]]:
    rows = table("arm_type")
    out = []
    for arm, key in zip(record.arms, ids.arm_keys(record), strict=True):
        row = rows.get(arm.type or "")
        arm_type = None
        if row:
            arm_type = concept(
                coding(ARM_TYPE, row["code"], row["display"]),
                ctgov_coding("ArmGroupType", arm.type, row["display"]),
                text=row["display"],
            )
        elif arm.type:
            arm_type = concept(text=arm.type)
        group: dict[str, Any] = {"linkId": key}
        if arm.label:
            group["name"] = arm.label
        if arm_type:
            group["type"] = arm_type
        if arm.description:
            group["description"] = arm.description
        out.append(group)
    return out


def _outcome_measure(outcome: Outcome) -> dict[str, Any]:
    """The outcome as an ``outcomeMeasure`` entry (empty when the record gives no text at all)."""
    row = table("outcome_type").get(outcome.kind)
    kind = (
        concept(
            coding(OBJECTIVE_TYPE, row["code"], row["display"]),
            ctgov_coding("OutcomeMeasureType", row["ctgov"], row["ctgov_display"]),
            text=row["ctgov_display"],
        )
        if row
        else concept(text=outcome.kind)
    )
    parts = [
        outcome.description,
        f"Time frame: {outcome.time_frame}" if outcome.time_frame else None,
        f"Safety issue: {_yes_no(outcome.safety_issue)}" if outcome.safety_issue is not None else None,
    ]
    description = "\n\n".join(p for p in parts if p)
    measure: dict[str, Any] = {"name": outcome.measure} if outcome.measure else {}
    if kind:
        measure["type"] = [kind]
    if description:
        measure["description"] = description
    return measure


_OBJECTIVE_TEXT = {"primary": "Main objective", "secondary": "Secondary objective"}


def _objective(objective: Objective) -> dict[str, Any]:
    """The objective as an ``objective`` entry (empty when the record gives no text at all)."""
    row = table("outcome_type").get(objective.kind)
    kind = (
        concept(coding(OBJECTIVE_TYPE, row["code"], row["display"]), text=_OBJECTIVE_TEXT.get(objective.kind))
        if row
        else concept(text=objective.kind)
    )
    entry = {"type": kind} if kind else {}
    if objective.description:
        entry["description"] = objective.description
    return entry


# --- related artifacts ------------------------------------------------------------------------


def _pubmed_url(pmid: str) -> str:
    return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def _ctgov_study_url(nct_id: str) -> str:
    return f"https://clinicaltrials.gov/study/{nct_id}"


def _artifact(
    kind: str,
    classifiers: list[dict[str, Any]] | None = None,
    label: str | None = None,
    display: str | None = None,
    document: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``relatedArtifact`` entry of type ``kind``; the parts that are empty are left out."""
    return present(type=kind, classifier=classifiers, label=label, display=display, document=document)


def _url(url: str | None) -> dict[str, str] | None:
    return {"url": url} if url else None


def _reference_artifacts(ref: Reference) -> list[dict[str, Any]]:
    rows = table("reference_type")
    row = rows.get(ref.type or "")
    classifiers = [concept(ctgov_coding("ReferenceType", ref.type, row["display"]), text=row["display"])] if row else []
    if ref.type and not row:
        classifiers.append(concept(text=ref.type))
    if ref.retractions:
        classifiers.append(concept(text="Retracted"))
    # Built key by key: a citation has parts the other artifacts lack, between label and document.
    publication: dict[str, Any] = {"type": row["code"] if row else "citation"}
    if classifiers:
        publication["classifier"] = classifiers
    if ref.pmid:
        publication["label"] = f"PMID {ref.pmid}"
    if ref.citation:
        publication["citation"] = ref.citation
    if ref.pmid:
        publication["document"] = {"url": _pubmed_url(ref.pmid)}
    if ref.retractions:
        # A retracted publication should no longer be relied on: that is what 'retired' says.
        publication["publicationStatus"] = "retired"
    out = [publication]
    for retraction in ref.retractions:
        about = f" for PMID {ref.pmid}" if ref.pmid else ""
        source = f" ({retraction.source})" if retraction.source else ""
        out.append(
            _artifact(
                "citation",
                [concept(text="Retraction notice")],
                label=f"PMID {retraction.pmid}" if retraction.pmid else None,
                display=f"Retraction notice{about}{source}",
                document={"url": _pubmed_url(retraction.pmid)} if retraction.pmid else None,
            )
        )
    return out


def _document_artifact(doc: Document) -> dict[str, Any]:
    kinds = (
        (doc.has_protocol, "Study Protocol"),
        (doc.has_sap, "Statistical Analysis Plan"),
        (doc.has_icf, "Informed Consent Form"),
    )
    uploaded = doc.upload_date
    details = (
        doc.label,
        f"uploaded {uploaded}" if uploaded else None,
        # Not Attachment.size: R5 makes it an integer64 (a JSON string), which FHIR.js-based
        # validators reject, while a number breaks the R5 JSON schema.  The text keeps the fact.
        f"{doc.size} bytes" if doc.size is not None else None,
    )
    document = {}
    if doc.url:
        document["url"] = doc.url
    if doc.filename:
        document["title"] = doc.filename
    if doc.date:
        document["creation"] = doc.date
    artifact = _artifact(
        "documentation",
        [concept(text=text) for flag, text in kinds if flag],
        label=doc.type_abbrev,
        display="; ".join(p for p in details if p),
        document=document,
    )
    if uploaded and _CALENDAR_DATE.match(uploaded):
        artifact["publicationDate"] = uploaded[:10]
    return artifact


def _related_artifacts(record: TrialRecord) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ref in record.references:
        if ref.pmid or ref.citation:
            out += _reference_artifacts(ref)
    for link in record.see_also_links:
        out.append(_artifact("documentation", display=link.label, document=_url(link.url)))
    for ipd in record.avail_ipds:
        out.append(
            _artifact(
                "documentation",
                [concept(text="Available individual participant data / study document")],
                label=ipd.id,
                display="; ".join(p for p in (ipd.type, ipd.comment) if p),
                document=_url(ipd.url),
            )
        )
    if record.ipd_sharing is not None and record.ipd_sharing.url:
        out.append(
            _artifact(
                "documentation",
                display="Access to individual participant data (IPD sharing URL)",
                document={"url": record.ipd_sharing.url},
            )
        )
    out += [_document_artifact(doc) for doc in record.documents]
    for secondary in record.secondary_ids:
        if secondary.link:
            out.append(_identifier_link(secondary.id, secondary.link))
    if record.org_study_id is not None and record.org_study_id.link:
        out.append(_identifier_link(record.org_study_id.id, record.org_study_id.link))
    expanded = record.status.expanded_access
    if expanded is not None and expanded.nct_id:
        row = table("overall_status").get(expanded.status_for_nct_id or "")
        status_concept_ = None
        if row:
            status_concept_ = concept(
                ctgov_coding("ExpandedAccessStatus", expanded.status_for_nct_id, row["display"]), text=row["display"]
            )
        elif expanded.status_for_nct_id:
            status_concept_ = concept(text=expanded.status_for_nct_id)
        out.append(
            _artifact(
                "documentation",
                [status_concept_] if status_concept_ else None,
                label=expanded.nct_id,
                display=f"Expanded access record {expanded.nct_id}",
                document={"url": _ctgov_study_url(expanded.nct_id)} if is_nct_id(expanded.nct_id) else None,
            )
        )
    if record.has_results and is_nct_id(record.registry_id):
        out.append(
            _artifact(
                "documentation",
                display="Study results posted on ClinicalTrials.gov",
                document={"url": f"{_ctgov_study_url(record.registry_id)}?tab=results"},
            )
        )
    out += _provenance(record)
    return out


def _identifier_link(identifier: str, url: str) -> dict[str, Any]:
    # .strip(): an empty identifier would leave the text ending in a space.
    return _artifact("documentation", display=f"Link for identifier {identifier}".strip(), document={"url": url})


def _provenance(record: TrialRecord) -> list[dict[str, Any]]:
    source = record.source
    version = f", version {source.version}" if source.version else ""
    registry = table("registries").get(source.registry)
    # .strip(): registry, format and id are record strings, and an empty one at either end would leave a space.
    classifier = f"Source registry: {source.registry}; format: {source.format}".strip()
    display = f"{registry['display'] if registry else source.registry} record {record.registry_id}{version}".strip()
    return [
        _artifact("transforms", [concept(text=classifier)], display=display, document=_url(source.url)),
        {"type": "transformed-with", "display": CONVERTER},
    ]
