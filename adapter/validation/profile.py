"""The ``trial2fhir`` profile: what trial2fhir's own output promises beyond base FHIR.

Selected with ``profile="trial2fhir"`` (CLI ``--profile trial2fhir``).  The rules, each an error
unless marked otherwise:

* every ResearchStudy carries a registry identifier, a title and a status; every identifier has a
  value, and a ClinicalTrials.gov one is ``NCT`` + 8 digits; a study without any NCT identifier is
  a warning (records of other registries, from WHO ICTRP, may have none);
* every ResearchStudy points to its eligibility Group (R4 ``enrollment``, R5
  ``recruitment.eligibility``); a missing protocol PlanDefinition (``protocol``) is a warning,
  since a record without arms or interventions has none;
* every Group is a definitional eligibility Group (R4 ``actual = false``, R5 ``membership =
  definitional``);
* a Bundle holds exactly one ResearchStudy, and its protocol / eligibility references resolve to
  a PlanDefinition / Group entry (the reference layer reports other dangling references).
"""

from __future__ import annotations

import re
from typing import Any

from adapter.validation.issues import Issue

PROFILES = ("trial2fhir",)
NCT = re.compile(r"^NCT\d{8}$")


def _refs(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [i["reference"] for i in items if isinstance(i, dict) and isinstance(i.get("reference"), str)]


def _study(study: dict[str, Any], fhir_version: str, expr: str, issues: list[Issue]) -> None:
    identifiers = study.get("identifier") if isinstance(study.get("identifier"), list) else []
    values = [i.get("value") if isinstance(i, dict) else None for i in identifiers]
    if not identifiers:
        issues.append(
            Issue("error", "required", "trial2fhir: the study has no registry identifier", f"{expr}.identifier")
        )
    elif not any(isinstance(v, str) and NCT.match(v) for v in values):
        # Records of other registries (WHO ICTRP) legitimately lack an NCT number.
        issues.append(
            Issue(
                "warning",
                "required",
                "trial2fhir: no ClinicalTrials.gov identifier (NCT + 8 digits)",
                f"{expr}.identifier",
            )
        )
    for index, identifier in enumerate(identifiers):
        where = f"{expr}.identifier[{index}]"
        value = identifier.get("value") if isinstance(identifier, dict) else None
        system = identifier.get("system") if isinstance(identifier, dict) else None
        if not isinstance(value, str):
            issues.append(Issue("error", "required", "trial2fhir: identifier without a value", where))
        elif isinstance(system, str) and "clinicaltrials.gov" in system and not NCT.match(value):
            issues.append(
                Issue("error", "value", f"trial2fhir: '{value}' is not an NCT number (NCT + 8 digits)", where)
            )
    for name in ("title", "status"):
        if not study.get(name):
            issues.append(Issue("error", "required", f"trial2fhir: ResearchStudy.{name} is missing", f"{expr}.{name}"))
    if fhir_version == "4.0":
        eligibility, path = _refs(study.get("enrollment")), f"{expr}.enrollment"
    else:
        recruitment = study.get("recruitment") if isinstance(study.get("recruitment"), dict) else {}
        eligibility, path = _refs(recruitment.get("eligibility")), f"{expr}.recruitment.eligibility"
    if not eligibility:
        issues.append(Issue("error", "required", "trial2fhir: no reference to the eligibility Group", path))
    if not _refs(study.get("protocol")):
        issues.append(
            Issue(
                "warning",
                "required",
                "trial2fhir: no protocol PlanDefinition (expected when the record registers arms or interventions)",
                f"{expr}.protocol",
            )
        )


def _group(group: dict[str, Any], fhir_version: str, expr: str, issues: list[Issue]) -> None:
    if fhir_version == "4.0" and group.get("actual") is not False:
        issues.append(Issue("error", "value", "trial2fhir: an eligibility Group has actual = false", f"{expr}.actual"))
    if fhir_version == "5.0" and group.get("membership") != "definitional":
        issues.append(
            Issue(
                "error", "value", "trial2fhir: an eligibility Group has membership = definitional", f"{expr}.membership"
            )
        )


def _bundle(bundle: dict[str, Any], fhir_version: str, expr: str, issues: list[Issue]) -> None:
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    studies = [i for i, e in enumerate(entries) if e["resource"].get("resourceType") == "ResearchStudy"]
    if len(studies) != 1:
        issues.append(
            Issue(
                "error", "required", f"trial2fhir: the Bundle holds {len(studies)} ResearchStudy entries, not 1", expr
            )
        )
    types: dict[str, str] = {}
    for entry in entries:
        resource = entry["resource"]
        kind = resource.get("resourceType")
        if isinstance(entry.get("fullUrl"), str):
            types[entry["fullUrl"]] = kind
        if isinstance(resource.get("id"), str):
            types[f"{kind}/{resource['id']}"] = kind
    for index in studies:
        study = entries[index]["resource"]
        recruitment = study.get("recruitment") if isinstance(study.get("recruitment"), dict) else {}
        eligibility = _refs(study.get("enrollment")) if fhir_version == "4.0" else _refs(recruitment.get("eligibility"))
        for reference, wanted, name in [(r, "PlanDefinition", "protocol") for r in _refs(study.get("protocol"))] + [
            (r, "Group", "eligibility") for r in eligibility
        ]:
            if types.get(reference) != wanted:
                issues.append(
                    Issue(
                        "error",
                        "not-found",
                        f"trial2fhir: the {name} reference '{reference}' is not a {wanted} entry of the Bundle",
                        f"{expr}.entry[{index}].resource",
                    )
                )
    for index, entry in enumerate(entries):
        check_profile(entry["resource"], fhir_version, f"{expr}.entry[{index}].resource", issues, in_bundle=True)


def check_profile(resource: Any, fhir_version: str, expr: str, issues: list[Issue], *, in_bundle: bool = False) -> None:
    """Append the ``trial2fhir`` profile issues of ``resource`` (a resource or a Bundle) to ``issues``."""
    if not isinstance(resource, dict):
        return
    kind = resource.get("resourceType")
    if kind == "Bundle" and not in_bundle:
        _bundle(resource, fhir_version, expr or "Bundle", issues)
    elif kind == "ResearchStudy":
        _study(resource, fhir_version, expr or kind, issues)
    elif kind == "Group":
        _group(resource, fhir_version, expr or kind, issues)
