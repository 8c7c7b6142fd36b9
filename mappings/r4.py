"""R5 -> R4 (4.0.1): the one place where the two FHIR versions differ.

Mappings build R5 resources; this module turns them into genuine R4 resources.  R5 elements with
an R4 home move there (``comparisonGroup`` -> ``arm``, ``whyStopped`` -> ``reasonStopped``,
``recruitment.eligibility`` -> ``enrollment`` ...).  R5 elements with no R4 home are carried in
the official cross-version extensions, pinned to package ``hl7.fhir.uv.xver-r5.r4`` 0.1.0: URL
``http://hl7.org/fhir/5.0/StructureDefinition/extension-<Type>.<path>``, complex elements as
sub-extensions named after their child elements.  Nothing R5-only may survive into R4 output:
``tests/mappings/test_r4.py`` checks every key against the R4 element lists.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
ORIGINAL_TEXT = "http://hl7.org/fhir/StructureDefinition/originalText"
RESEARCH_STUDY_STATUS = "http://hl7.org/fhir/research-study-status"

Resource = dict[str, Any]

# R5 research-study-status (progressStatus.state) -> R4 ResearchStudy.status (required binding).
# CT.gov's own codes (CTGOV enum OverallStatus) are listed for states R5 has no code for.
R4_STATUS = {
    "active": "active",
    "recruiting": "active",
    "enrolling-by-invitation": "active",
    "not-yet-recruiting": "approved",
    "approved": "approved",
    "in-review": "in-review",
    "active-but-not-recruiting": "closed-to-accrual",
    "closed-to-accrual": "closed-to-accrual",
    "closed-to-accrual-and-intervention": "closed-to-accrual-and-intervention",
    "temporarily-closed-to-accrual": "temporarily-closed-to-accrual",
    "temporarily-closed-to-accrual-and-intervention": "temporarily-closed-to-accrual-and-intervention",
    "completed": "completed",
    # R4 defines administratively-completed as "completed prematurely and will not resume",
    # which is what CT.gov calls TERMINATED.
    "terminated": "administratively-completed",
    "administratively-completed": "administratively-completed",
    "withdrawn": "withdrawn",
    "disapproved": "disapproved",
}

# CT.gov statuses with no research-study-status code: the R4 status that does not overstate
# what is known.  UNKNOWN means "not verified for 2 years and past its completion date", so it
# must not read as active to an EHR filtering for recruiting studies.
R4_STATUS_BY_CTGOV = {
    "UNKNOWN": "closed-to-accrual",
    "AVAILABLE": "active",
    "NO_LONGER_AVAILABLE": "closed-to-accrual",
    "TEMPORARILY_NOT_AVAILABLE": "temporarily-closed-to-accrual",
    "APPROVED_FOR_MARKETING": "closed-to-accrual",
    "WITHHELD": "in-review",
}

# Code systems that R5 defines in the core spec but R4 published through terminology.hl7.org
# (same codes, different canonical URL): R4 consumers look them up under the R4 URL.
R4_SYSTEM = {
    "http://hl7.org/fhir/research-study-phase": "http://terminology.hl7.org/CodeSystem/research-study-phase",
    "http://hl7.org/fhir/research-study-prim-purp-type": (
        "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type"
    ),
    "http://hl7.org/fhir/research-study-objective-type": (
        "http://terminology.hl7.org/CodeSystem/research-study-objective-type"
    ),
    "http://hl7.org/fhir/research-study-reason-stopped": (
        "http://terminology.hl7.org/CodeSystem/research-study-reason-stopped"
    ),
}

# R5 related-artifact-type -> R4 (R4 has only the first eight codes of R5's list).
R4_ARTIFACT_TYPE = {
    "documentation": "documentation",
    "justification": "justification",
    "citation": "citation",
    "predecessor": "predecessor",
    "successor": "successor",
    "derived-from": "derived-from",
    "depends-on": "depends-on",
    "composed-of": "composed-of",
    "transforms": "derived-from",
    "transformed-with": "depends-on",
    "cites": "citation",
    "cited-by": "citation",
    "cite-as": "citation",
    "documents": "documentation",
    "supported-with": "justification",
}


def xver(type_name: str, path: str, **value: Any) -> dict[str, Any]:
    """A cross-version extension for R5 element ``<type_name>.<path>``."""
    return {"url": f"{XVER}{type_name}.{path}", **value}


def _complex(type_name: str, path: str, parts: dict[str, Any], value_types: dict[str, str]) -> dict[str, Any]:
    """Complex cross-version extension: one sub-extension per child element present in ``parts``."""
    subs = []
    for name, value_type in value_types.items():
        value = parts.get(name)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            subs.append({"url": name, value_type: item})
    return {"url": f"{XVER}{type_name}.{path}", "extension": subs}


def _related_artifact(artifact: dict[str, Any]) -> dict[str, Any]:
    """R5 RelatedArtifact -> R4; R5-only parts in the data type's cross-version extensions."""
    r5_type = artifact.get("type", "documentation")
    extensions = []
    if R4_ARTIFACT_TYPE.get(r5_type) != r5_type:
        extensions.append(xver("RelatedArtifact", "type", valueCode=r5_type))
    if "resourceReference" in artifact:
        extensions.append(xver("RelatedArtifact", "resourceReference", valueReference=artifact["resourceReference"]))
    for key, value_key in (
        ("classifier", "valueCodeableConcept"),
        ("publicationStatus", "valueCode"),
        ("publicationDate", "valueDate"),
    ):
        values = artifact.get(key)
        for value in values if isinstance(values, list) else ([values] if values is not None else []):
            extensions.append(xver("RelatedArtifact", key, **{value_key: value}))
    out: dict[str, Any] = {"extension": extensions} if extensions else {}
    out["type"] = R4_ARTIFACT_TYPE.get(r5_type, "documentation")
    for key in ("label", "display", "citation"):
        if key in artifact:
            out[key] = artifact[key]
    document = artifact.get("document") or {}
    if document.get("url"):
        # R4 keeps the link in RelatedArtifact.url; the rest of the Attachment stays an Attachment.
        out["url"] = document["url"]
        document = {k: v for k, v in document.items() if k != "url"}
    if document:
        out["document"] = document
    if "resource" in artifact:
        out["resource"] = artifact["resource"]
    return out


# Registry status texts with no code (WHO ICTRP) whose meaning is clear enough for R4.
R4_STATUS_BY_TEXT = {
    "authorised": "approved",
    "authorized": "approved",
    "approved": "approved",
    "not recruiting": "closed-to-accrual",
    "closed to recruitment": "closed-to-accrual",
}
R4_STATUS_NOT_KNOWN = "closed-to-accrual"
"""R4 status when the registry's status cannot be mapped: R4 requires one, and an EHR filtering on
``active`` must never be told an unverified study is open; the original wording is kept beside it."""


MILESTONE_STATES = {"overall-study", "primary-outcome-data-collection"}
"""progressStatus states that date a phase of the study rather than state its status."""


def _r4_status(progress: list[dict[str, Any]]) -> tuple[str, str]:
    """R4 status from the current overall status (the first non-milestone progressStatus), with its original text."""
    statuses = [
        p for p in progress if not {c.get("code") for c in p.get("state", {}).get("coding", [])} & MILESTONE_STATES
    ]
    state = statuses[0].get("state", {}) if statuses else {}
    codings = state.get("coding", [])
    text = state.get("text") or next((c.get("display") or c["code"] for c in codings if "code" in c), None)
    for code in codings:
        if code.get("system") == RESEARCH_STUDY_STATUS and code.get("code") in R4_STATUS:
            return R4_STATUS[code["code"]], text or code["code"]
    for code in codings:
        if code.get("code") in R4_STATUS_BY_CTGOV:
            return R4_STATUS_BY_CTGOV[code["code"]], text or code["code"]
    if text and " ".join(text.casefold().split()) in R4_STATUS_BY_TEXT:
        return R4_STATUS_BY_TEXT[" ".join(text.casefold().split())], text
    return R4_STATUS_NOT_KNOWN, f"Status not mapped to R4: {text}" if text else "Status not stated by the registry"


def research_study(r5: Resource, bundle: dict[str, Resource]) -> Resource:
    t = "ResearchStudy"
    # The R5 elements whose code tables (phase, primary purpose, status, outcome type) use systems
    # R4 names otherwise; rewritten here, where they are known, rather than searched for.
    for key in ("progressStatus", "outcomeMeasure", "phase", "primaryPurposeType", "objective"):
        if key in r5:
            _rewrite_systems(r5[key])
    out: Resource = {"resourceType": t}
    ext: list[dict[str, Any]] = list(r5.get("extension", []))
    for key in ("id", "meta", "implicitRules", "language", "text", "contained"):
        if key in r5:
            out[key] = r5[key]
    for key in ("url", "version", "name", "date"):
        if key in r5:
            value_type = {"url": "valueUri", "date": "valueDateTime"}.get(key, "valueString")
            ext.append(xver(t, key, **{value_type: r5[key]}))
    for label in r5.get("label", []):
        ext.append(_complex(t, "label", label, {"type": "valueCodeableConcept", "value": "valueString"}))
    if "descriptionSummary" in r5:
        ext.append(xver(t, "descriptionSummary", valueMarkdown=r5["descriptionSummary"]))
    for classifier in r5.get("classifier", []):
        ext.append(xver(t, "classifier", valueCodeableConcept=classifier))
    progress = r5.get("progressStatus", [])
    for entry in progress:
        ext.append(
            _complex(
                t,
                "progressStatus",
                entry,
                {"state": "valueCodeableConcept", "actual": "valueBoolean", "period": "valuePeriod"},
            )
        )
    for party in r5.get("associatedParty", []):
        ext.append(
            _complex(
                t,
                "associatedParty",
                party,
                {
                    "name": "valueString",
                    "role": "valueCodeableConcept",
                    "period": "valuePeriod",
                    "classifier": "valueCodeableConcept",
                    "party": "valueReference",
                },
            )
        )
    recruitment = r5.get("recruitment", {})
    if "targetNumber" in recruitment:
        ext.append(xver(t, "recruitment.targetNumber", valueUnsignedInt=recruitment["targetNumber"]))
    if "actualNumber" in recruitment:
        ext.append(xver(t, "recruitment.actualNumber", valueUnsignedInt=recruitment["actualNumber"]))
    if "actualGroup" in recruitment:
        ext.append(xver(t, "recruitment.actualGroup", valueReference=recruitment["actualGroup"]))
    for measure in r5.get("outcomeMeasure", []):
        ext.append(
            _complex(
                t,
                "outcomeMeasure",
                measure,
                {
                    "name": "valueString",
                    "type": "valueCodeableConcept",
                    "description": "valueMarkdown",
                    "reference": "valueReference",
                },
            )
        )
    for value in r5.get("result", []):
        ext.append(xver(t, "result", valueReference=value))
    if ext:
        out["extension"] = ext
    if "modifierExtension" in r5:
        out["modifierExtension"] = r5["modifierExtension"]
    for key in ("identifier", "title", "protocol", "partOf"):
        if key in r5:
            out[key] = r5[key]
    status, original = _r4_status(progress)
    out["status"] = status
    out["_status"] = {"extension": [{"url": ORIGINAL_TEXT, "valueString": original}]}
    for key in ("primaryPurposeType", "phase"):
        if key in r5:
            out[key] = r5[key]
    if "studyDesign" in r5:
        out["category"] = r5["studyDesign"]
    focus = [f["concept"] for f in r5.get("focus", []) if "concept" in f]
    if focus:
        out["focus"] = focus
    for key in ("condition",):
        if key in r5:
            out[key] = r5[key]
    contacts = _contacts(r5, bundle)
    if contacts:
        out["contact"] = contacts
    if "relatedArtifact" in r5:
        out["relatedArtifact"] = [_related_artifact(a) for a in r5["relatedArtifact"]]
    if "keyword" in r5:
        out["keyword"] = r5["keyword"]
    if "region" in r5:
        out["location"] = r5["region"]
    if "description" in r5:
        out["description"] = r5["description"]
    if "eligibility" in recruitment:
        out["enrollment"] = [recruitment["eligibility"]]
    if "period" in r5:
        out["period"] = r5["period"]
    parties = r5.get("associatedParty", [])
    sponsor = _party(parties, "lead-sponsor") or _party(parties, "sponsor")
    if sponsor:
        out["sponsor"] = sponsor
    investigator = _party(parties, "primary-investigator") or _party(parties, "sponsor-investigator")
    if investigator:
        out["principalInvestigator"] = investigator
    if "site" in r5:
        out["site"] = r5["site"]
    if "whyStopped" in r5:
        out["reasonStopped"] = r5["whyStopped"]
    if "note" in r5:
        out["note"] = r5["note"]
    arms = []
    for group in r5.get("comparisonGroup", []):
        arm: dict[str, Any] = {}
        # R4 arms have no linkId; the element id keeps the key the PlanDefinition actions use.
        if "linkId" in group:
            arm["id"] = group["linkId"]
        arm_ext = []
        for key, value_type in (("intendedExposure", "valueReference"), ("observedGroup", "valueReference")):
            for value in (
                group.get(key, []) if isinstance(group.get(key), list) else ([group[key]] if key in group else [])
            ):
                arm_ext.append(xver(t, f"comparisonGroup.{key}", **{value_type: value}))
        if arm_ext:
            arm["extension"] = arm_ext
        arm["name"] = group.get("name", group.get("linkId", "arm"))
        for key in ("type", "description"):
            if key in group:
                arm[key] = group[key]
        arms.append(arm)
    if arms:
        out["arm"] = arms
    objectives = []
    for objective in r5.get("objective", []):
        item: dict[str, Any] = {}
        if "description" in objective:
            item["extension"] = [xver(t, "objective.description", valueMarkdown=objective["description"])]
        for key in ("name", "type"):
            if key in objective:
                item[key] = objective[key]
        objectives.append(item)
    if objectives:
        out["objective"] = objectives
    return out


def _party(parties: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    for party in parties:
        if "party" not in party:
            continue
        for code in party.get("role", {}).get("coding", []):
            if code.get("code") == role:
                return party["party"]
    return None


def _contacts(r5: Resource, bundle: dict[str, Resource]) -> list[dict[str, Any]]:
    """R4 ``contact`` (ContactDetail) from the R5 contact parties and their PractitionerRole telecoms."""
    out = []
    for party in r5.get("associatedParty", []):
        codes = {c.get("code") for c in party.get("role", {}).get("coding", [])}
        if not codes & {"general-contact", "recruitment-contact"}:
            continue
        reference = party.get("party", {}).get("reference", "")
        role = bundle.get(reference, {})
        telecom = [t for contact in role.get("contact", []) for t in contact.get("telecom", [])]
        name = party.get("name") or party.get("party", {}).get("display")
        detail: dict[str, Any] = {}
        if name:
            detail["name"] = name
        if telecom:
            detail["telecom"] = telecom
        if detail:
            out.append(detail)
    return out


def group(r5: Resource, bundle: dict[str, Resource]) -> Resource:
    out: Resource = {}
    for key, value in r5.items():
        if key == "membership":
            continue
        if key == "description":
            out.setdefault("extension", []).append(xver("Group", "description", valueMarkdown=value))
            continue
        out[key] = value
    membership = r5.get("membership", "definitional")
    # R4 ``actual`` is required; definitional (a set of criteria, not an enumerated list) is actual=false.
    ordered: Resource = {}
    for key, value in out.items():
        ordered[key] = value
        if key == "type":
            ordered["actual"] = membership == "enumerated"
    if "actual" not in ordered:
        ordered["actual"] = membership == "enumerated"
    return ordered


def _action(action: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    extensions = list(action.get("extension", []))
    for key, value in action.items():
        if key == "extension":
            continue
        if key == "relatedAction":
            out[key] = [_related_action(r) for r in value]
        elif key == "action":
            out[key] = [_action(a) for a in value]
        elif key == "code":
            # R5 action.code is a single CodeableConcept; R4 allows several.
            out[key] = [value] if isinstance(value, dict) else value
        elif key == "linkId":
            extensions.append(xver("PlanDefinition", "action.linkId", valueString=value))
        else:
            out[key] = value
    if extensions:
        out = {"extension": extensions, **out}
    return out


def _related_action(related: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in related.items():
        if key == "targetId":
            out["actionId"] = value
        elif key == "endRelationship":
            out.setdefault("extension", []).append(
                xver("PlanDefinition", "action.relatedAction.endRelationship", valueCode=value)
            )
        else:
            out[key] = value
    return out


def plan_definition(r5: Resource, bundle: dict[str, Resource]) -> Resource:
    out = {k: v for k, v in r5.items() if k != "action"}
    if "action" in r5:
        out["action"] = [_action(a) for a in r5["action"]]
    return out


def _contact_telecoms(r5: Resource) -> list[dict[str, Any]]:
    return [t for contact in r5.get("contact", []) for t in contact.get("telecom", [])]


def _extended_contact(type_name: str, contact: dict[str, Any]) -> dict[str, Any]:
    """R5 ExtendedContactDetail as the complex cross-version extension (R4 has no such data type)."""
    return _complex(
        type_name,
        "contact",
        contact,
        {
            "purpose": "valueCodeableConcept",
            "name": "valueHumanName",
            "telecom": "valueContactPoint",
            "address": "valueAddress",
            "organization": "valueReference",
            "period": "valuePeriod",
        },
    )


_HEADER = ("resourceType", "id", "meta", "implicitRules", "language", "text", "contained")


def _with_extensions(resource: Resource, extensions: list[dict[str, Any]]) -> Resource:
    """``resource`` with ``extensions`` appended to its own, placed where FHIR puts ``extension``."""
    merged = [*resource.get("extension", []), *extensions]
    out: Resource = {k: resource[k] for k in _HEADER if k in resource}
    if merged:
        out["extension"] = merged
    out.update((k, v) for k, v in resource.items() if k not in out and k != "extension")
    return out


def _move_contacts(type_name: str, r5: Resource) -> Resource:
    """R4 Location and PractitionerRole keep telecoms but not contact names or purposes: those ride along."""
    contacts = r5.get("contact", [])
    out = _with_extensions(
        {k: v for k, v in r5.items() if k != "contact"}, [_extended_contact(type_name, c) for c in contacts]
    )
    telecom = [*r5.get("telecom", []), *_contact_telecoms(r5)]
    if telecom:
        out["telecom"] = telecom
    return out


def practitioner_role(r5: Resource, bundle: dict[str, Resource]) -> Resource:
    return _move_contacts("PractitionerRole", r5)


def location(r5: Resource, bundle: dict[str, Resource]) -> Resource:
    if "extension" in r5:
        _rewrite_systems(r5["extension"])  # the site's status (site_status.json: research-study-status)
    return _move_contacts("Location", r5)


def organization(r5: Resource, bundle: dict[str, Resource]) -> Resource:
    out = {k: v for k, v in r5.items() if k not in ("description",)}
    if "description" in r5:
        out = _with_extensions(out, [xver("Organization", "description", valueMarkdown=r5["description"])])
    return out


def _same(r5: Resource, bundle: dict[str, Resource]) -> Resource:
    return r5


CONVERTERS: dict[str, Callable[[Resource, dict[str, Resource]], Resource]] = {
    "ResearchStudy": research_study,
    "PlanDefinition": plan_definition,
    "Group": group,
    "Organization": organization,
    "Location": location,
    "Practitioner": _same,
    "PractitionerRole": practitioner_role,
}


R4_RESEARCH_STUDY_STATUS_CODES = frozenset({
    "active", "administratively-completed", "approved", "closed-to-accrual", "closed-to-accrual-and-intervention",
    "completed", "disapproved", "in-review", "temporarily-closed-to-accrual",
    "temporarily-closed-to-accrual-and-intervention", "withdrawn",
})  # fmt: skip
"""The codes of research-study-status as published with R4; R5 added the others to the same URL."""


def _rewrite_systems(item: dict[str, Any] | list[Any]) -> None:
    """Rewrite, in place, Coding systems R4 knows under another URL, and mark R5-only codes with their version."""
    if type(item) is dict:
        system = item.get("system")
        if system is not None:
            if system in R4_SYSTEM and "code" in item:
                item["system"] = R4_SYSTEM[system]
            elif (
                system == RESEARCH_STUDY_STATUS
                and item.get("code") not in R4_RESEARCH_STUDY_STATUS_CODES
                and "version" not in item
            ):
                # Same URL, codes R4's edition lacks: the Coding says which edition defines them.
                item["version"] = "5.0.0"
        children: Any = item.values()
    else:
        children = item
    for child in children:
        kind = type(child)
        if kind is dict or kind is list:
            _rewrite_systems(child)


def to_r4(resources: list[Resource], *, in_place: bool = False) -> list[Resource]:
    """Convert one record's R5 resources to R4 (the set is needed: R4 ``contact`` reads PractitionerRoles).

    ``in_place=True`` lets the R4 resources share (and rewrite) parts of the R5 ones: about a fifth of
    the R4 pipeline's time goes to the deep copy, which callers that discard the R5 set do not need.
    """
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    out = []
    for resource in resources:
        converter = CONVERTERS.get(resource["resourceType"])
        if converter is None:
            raise ValueError(f"no R4 conversion for {resource['resourceType']}")
        converted = converter(resource if in_place else copy.deepcopy(resource), by_ref)
        out.append(converted)
    return out
