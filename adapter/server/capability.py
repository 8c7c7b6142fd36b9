"""The CapabilityStatement, custom SearchParameters and OperationDefinitions, generated from the code.

Everything declared comes from the same tables the server runs on: resource types and search
parameters from :mod:`adapter.store.params`, includes from the reference parameters, operations
from :data:`OPERATIONS`.  A parameter added there appears here without further work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapter.server.auth import Authenticators
from adapter.server.context import FULL_VERSION, RELEASE_OF
from adapter.server.settings import Settings
from adapter.store.params import CUSTOM_BASE, RESOURCE_TYPES, SearchParam, custom_params, search_params

OPERATION_BASE = "https://trial2fhir.org/fhir/OperationDefinition/"
CAPABILITY_BASE = "https://trial2fhir.org/fhir/CapabilityStatement/"
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
BULK_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
"""Served by ``routers/export.py``."""
INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "create", "search-type")
COMMON_PARAMS = (
    ("_id", "token", "http://hl7.org/fhir/SearchParameter/Resource-id", "Logical id of the resource"),
    (
        "_lastUpdated",
        "date",
        "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
        "When the resource version last changed (meta.lastUpdated)",
    ),
)
_STARTED = datetime.now(UTC).strftime("%Y-%m-%d")


def _software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trial2fhir")
    except PackageNotFoundError:
        return "0.0.0"


def _input_parameters(ingest: bool) -> list[dict[str, Any]]:
    verb = "convert and store" if ingest else "convert"
    out = [
        {
            "name": "input",
            "use": "in",
            "min": 0,
            "max": "1",
            "documentation": f"The registry record to {verb} as text: ClinicalTrials.gov API v2 JSON (a study, a "
            "search page or NDJSON), legacy ClinicalTrials.gov XML or WHO ICTRP XML. A base64Binary value is "
            "accepted too. Instead of a Parameters resource, the record itself (Content-Type application/json or "
            "application/xml) or a Binary resource holding it may be posted.",
            "type": "string",
        },
        {
            "name": "binary",
            "use": "in",
            "min": 0,
            "max": "1",
            "documentation": f"The registry record to {verb}, in a Binary resource (alternative to input).",
            "type": "Binary",
        },
    ]
    if not ingest:
        out.append(
            {
                "name": "bundleType",
                "use": "in",
                "min": 0,
                "max": "1",
                "documentation": "transaction (default: PUT entries, so the result can be posted to any FHIR "
                "server without creating duplicates) or collection.",
                "type": "code",
            }
        )
    return out


OPERATIONS = {
    "convert": {
        "title": "Convert a clinical-trial registry record to FHIR",
        "description": "Converts a registry record to the resources trial2fhir produces (ResearchStudy, "
        "PlanDefinition, Group, Organization, Location, Practitioner, PractitionerRole) in the FHIR version of the "
        "base it is called on, returned as a Bundle (one per record; a Bundle of Bundles for several records). "
        "Nothing is stored.",
        "affectsState": False,
        "return": "The Bundle of the converted record",
        "ingest": False,
    },
    "ingest": {
        "title": "Convert and store clinical-trial registry records",
        "description": "Converts registry records as $convert does and stores the result in both FHIR versions "
        "(R4 and R5 bases), all records in one transaction: nothing is stored when any record fails. Re-ingesting "
        "a trial creates no duplicates and a new version only of resources whose content changed. Needs a token "
        "with write access.",
        "affectsState": True,
        "return": "A transaction-response Bundle: one entry per resource of this base's version, with its status "
        "(201 created, 200 updated or unchanged), location and ETag",
        "ingest": True,
    },
}


def operation_definition(fhir_version: str, code: str) -> dict[str, Any]:
    spec = OPERATIONS[code]
    release = RELEASE_OF[fhir_version]
    parameters = _input_parameters(bool(spec["ingest"]))
    parameters.append(
        {"name": "return", "use": "out", "min": 1, "max": "1", "documentation": spec["return"], "type": "Bundle"}
    )
    return {
        "resourceType": "OperationDefinition",
        "id": f"{release}-{code}",
        "url": f"{OPERATION_BASE}{code}",
        "version": _software_version(),
        "name": code.capitalize(),
        "title": spec["title"],
        "status": "active",
        "kind": "operation",
        "publisher": "trial2fhir",
        "description": spec["description"],
        "affectsState": spec["affectsState"],
        "code": code,
        "system": True,
        "type": False,
        "instance": False,
        "parameter": parameters,
    }


def operation_definitions(fhir_version: str) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in (operation_definition(fhir_version, code) for code in OPERATIONS)}


def _search_parameter_name(rtype: str, code: str) -> str:
    return rtype + "".join(part.capitalize() for part in code.split("-"))


def search_parameter(fhir_version: str, rtype: str, param: SearchParam) -> dict[str, Any]:
    """A custom parameter as a SearchParameter resource (id = the tail of its canonical URL)."""
    resource: dict[str, Any] = {
        "resourceType": "SearchParameter",
        "id": param.url.removeprefix(CUSTOM_BASE),
        "url": param.url,
        "version": _software_version(),
        "name": _search_parameter_name(rtype, param.code),
        "status": "active",
        "experimental": False,
        "publisher": "trial2fhir",
        "description": param.description,
        "code": param.code,
        "base": [rtype],
        "type": param.type,
        "expression": param.expression,
    }
    if fhir_version == "4.0":
        resource["xpathUsage"] = "normal"
    else:
        resource["processingMode"] = "normal"
    if param.targets:
        resource["target"] = list(param.targets)
    if param.type == "token":
        resource["modifier"] = ["text", "not", "missing"]
    elif param.type == "string":
        resource["modifier"] = ["contains", "exact", "missing"]
    elif param.type == "reference":
        resource["modifier"] = ["missing", "type"]
        resource["chain"] = ["*"]
    return resource


def search_parameters(fhir_version: str) -> dict[str, dict[str, Any]]:
    out = {}
    for rtype, param in custom_params(fhir_version):
        resource = search_parameter(fhir_version, rtype, param)
        out[resource["id"]] = resource
    return out


def _documentation(param: SearchParam) -> str:
    notes = {
        "token": "Matches code, system|code, |code or system|; a value without | also matches the text of a "
        "CodeableConcept (case- and accent-insensitive). Modifiers :text, :not, :missing.",
        "string": "Starts-with, case- and accent-insensitive; :contains, :exact, :missing.",
        "reference": "Type/id, id or absolute URL; :Type modifier, :missing, chained parameters (e.g. .name).",
        "date": "Prefixes eq, ne, gt, lt, ge, le, sa, eb, ap at any precision.",
        "uri": "Exact match, or :below.",
    }
    text = f"{param.description}. {notes[param.type]}"
    if param.identifier:
        text += (
            " Identifier systems of trial registries are matched in their common variants (e.g. "
            "http://clinicaltrials.gov, https://clinicaltrials.gov/nctid), values ignore case and blanks, and NCT or "
            "EudraCT numbers inside secondary ids match too."
        )
    return text


def capability_statement(fhir_version: str, base_url: str, settings: Settings, auth: Authenticators) -> dict:
    release = RELEASE_OF[fhir_version]
    params = search_params(fhir_version)
    revincludes: dict[str, list[str]] = {t: [] for t in RESOURCE_TYPES}
    for source, source_params in params.items():
        for param in source_params.values():
            if param.type == "reference":
                for target in param.targets:
                    if target in revincludes:
                        revincludes[target].append(f"{source}:{param.code}")
    resources = []
    for rtype in RESOURCE_TYPES:
        references = [p.code for p in params[rtype].values() if p.type == "reference"]
        search = [
            {"name": name, "definition": url, "type": kind, "documentation": doc}
            for name, kind, url, doc in COMMON_PARAMS
        ]
        search += [
            {"name": p.code, "definition": p.url, "type": p.type, "documentation": _documentation(p)}
            for p in params[rtype].values()
        ]
        resources.append(
            {
                "type": rtype,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
                "interaction": [{"code": code} for code in INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "modified-since",
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "searchInclude": ["*", *(f"{rtype}:{code}" for code in references)],
                "searchRevInclude": sorted(revincludes[rtype]),
                "searchParam": search,
                "operation": [{"name": "validate", "definition": VALIDATE}],
            }
        )
    for rtype, documentation in (
        ("SearchParameter", "The custom search parameters this server defines (read only)."),
        ("OperationDefinition", "The operations this server defines (read only)."),
    ):
        resources.append(
            {
                "type": rtype,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
                "documentation": documentation,
                "interaction": [{"code": "read"}],
            }
        )
    closed = "" if settings.open_reads else " Reads need a bearer token too."
    security: dict[str, Any] = {
        "cors": bool(settings.cors_origins),
        "description": "Reads are open to anyone (study definitions are public information)."
        if settings.open_reads
        else "Every request needs a bearer token.",
    }
    security["description"] += (
        " Writes, transactions and $ingest need an 'Authorization: Bearer' token with write access"
        + (" (none is configured, so this server refuses writes)." if not auth.writes_possible else ".")
        + closed
    )
    extra = auth.capability_security()
    if extra:
        security.update(extra)
    operations = [
        {"name": code, "definition": f"{OPERATION_BASE}{code}", "documentation": OPERATIONS[code]["title"]}
        for code in OPERATIONS
    ]
    operations.append({"name": "validate", "definition": VALIDATE, "documentation": "Validate a resource"})
    operations.append(
        {
            "name": "export",
            "definition": BULK_EXPORT,
            "documentation": "Bulk Data export (NDJSON, asynchronous: Prefer: respond-async), system level and "
            "GET /{type}/$export",
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "id": f"trial2fhir-{release.lower()}",
        "url": f"{CAPABILITY_BASE}server-{release.lower()}",
        "version": _software_version(),
        "name": f"Trial2fhirServer{release}",
        "title": f"trial2fhir FHIR {release} server",
        "status": "active",
        "experimental": False,
        "date": _STARTED,
        "publisher": "trial2fhir",
        "description": "Clinical-trial study definitions converted from trial registries (ClinicalTrials.gov, WHO "
        "ICTRP): ResearchStudy with its protocol (PlanDefinition), eligibility (Group), sponsors and sites.",
        "kind": "instance",
        "software": {"name": "trial2fhir", "version": _software_version()},
        "implementation": {"description": f"trial2fhir FHIR {release} base", "url": base_url},
        "fhirVersion": FULL_VERSION[fhir_version],
        "format": ["json", "xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": f"Paging links are opaque and stable for {int(settings.page_ttl_s)} seconds; "
                "unknown search parameters are ignored (and listed in an OperationOutcome entry) unless the "
                "request says 'Prefer: handling=strict'.",
                "security": security,
                "resource": resources,
                "interaction": [{"code": "transaction"}],
                "operation": operations,
            }
        ],
    }
