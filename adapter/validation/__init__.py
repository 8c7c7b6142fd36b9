"""Validate FHIR R4 (4.0.1) and R5 (5.0.0) resources and return an OperationOutcome.

Five layers, all driven by the official definitions of the pinned HL7 npm packages
(:mod:`.packages`, compiled once by :mod:`.definitions`):

1. structure: well-formed JSON/XML, known ``resourceType``, unknown elements (naming the other
   FHIR version when the element belongs to it), JSON types, cardinality, primitive formats
   (regexes of the definitions plus calendar validity and time zones), empty elements, strings,
   arrays and nulls;
2. bindings: required value sets (error), extensible/preferred ones and complete code systems of
   the package (warning for unknown codes);
3. invariants: every ``constraint.expression`` of the definitions of the resource, its backbone
   elements and data types, evaluated with fhirpathpy (:mod:`.fhirpath`); an expression the engine
   cannot evaluate is a ``warning`` (``not-supported``), never an error or a crash;
4. references: Bundle-internal resolution, target types, duplicate entries, contained references;
5. the optional ``trial2fhir`` profile (:mod:`.profile`).

Use :func:`validate_resource` for a parsed resource and :func:`validate_bytes` for raw input
(JSON, NDJSON, FHIR XML, Bundles).  Both return an OperationOutcome as a plain dict;
:func:`outcome_model` turns it into a ``fhir.resources`` (R5) model.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapter.validation.definitions import load_definitions
from adapter.validation.issues import Issue, has_errors, operation_outcome
from adapter.validation.profile import PROFILES, check_profile
from adapter.validation.references import check_loose_references
from adapter.validation.walker import MAX_ISSUES, TooDeep, TooManyIssues, Walker
from adapter.validation.xml import xml_to_json

__all__ = [
    "PROFILES",
    "SUPPORTED_VERSIONS",
    "Issue",
    "has_errors",
    "outcome_model",
    "resource_issues",
    "validate_bytes",
    "validate_resource",
]

SUPPORTED_VERSIONS = ("4.0", "5.0")
_XML = object()
"""Marker: the input is XML, converted with the definitions of the requested version."""
_VERSION_ALIASES = {"4.0": "4.0", "4.0.1": "4.0", "r4": "4.0", "5.0": "5.0", "5.0.0": "5.0", "r5": "5.0"}


def normalize_version(fhir_version: str) -> str:
    """``"4.0"``, ``"4.0.1"`` or ``"R4"`` -> ``"4.0"`` (likewise for R5); ValueError otherwise."""
    version = _VERSION_ALIASES.get(str(fhir_version).strip().lower())
    if version is None:
        raise ValueError(f"unsupported FHIR version {fhir_version!r}: use 4.0 or 5.0")
    return version


def _check_profile_name(profile: str | None) -> None:
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: known profiles are {', '.join(PROFILES)}")


def resource_issues(
    resource: Any, fhir_version: str = "4.0", *, profile: str | None = None, invariants: bool = True
) -> list[Issue]:
    """The issues of one parsed resource (a dict from JSON), in the order found.

    ``invariants=False`` skips layer 3 (the FHIRPath invariants): a structural check several
    times faster, for bulk conversions that trust the mappings' tests for the rest.
    """
    version = normalize_version(fhir_version)
    _check_profile_name(profile)
    issues: list[Issue] = []
    try:
        definitions = load_definitions(version)
    except Exception as error:  # no network on first use, corrupt cache...
        return [Issue("fatal", "exception", f"The FHIR {version} definitions cannot be loaded: {error}")]
    walker = Walker(definitions, issues, invariants=invariants)
    try:
        walker.resource(resource, None, None, 0)
        check_loose_references(walker)
        if profile == "trial2fhir":
            check_profile(resource, version, "", issues)
    except TooManyIssues as error:
        issues.append(
            Issue("fatal", "too-costly", f"Stopped after {MAX_ISSUES} errors; the rest was not checked", str(error))
        )
    except TooDeep as error:
        issues.append(Issue("fatal", "too-costly", "The resource nests too deeply to be a FHIR resource", str(error)))
    except RecursionError:
        issues.append(Issue("fatal", "too-costly", "The resource nests too deeply to be a FHIR resource"))
    except Exception as error:  # a validator bug must not become a traceback for the user
        issues.append(Issue("fatal", "exception", f"Internal validator error: {type(error).__name__}: {error}"))
    if walker.unlisted_warnings:
        issues.append(
            Issue("information", "informational", f"{walker.unlisted_warnings} further warnings are not listed")
        )
    return issues


def validate_resource(
    resource: Any, fhir_version: str = "4.0", *, profile: str | None = None, invariants: bool = True
) -> dict[str, Any]:
    """Validate one parsed resource (or Bundle); returns an OperationOutcome dict."""
    return operation_outcome(resource_issues(resource, fhir_version, profile=profile, invariants=invariants))


def _located(issues: list[Issue], location: str) -> list[Issue]:
    for issue in issues:
        issue.location = issue.location or location
    return issues


def _json_error(error: Exception) -> str:
    message = str(error)
    if "recursion" in message.lower():
        return "The JSON nests too deeply (more than 1024 levels) to be a FHIR resource"
    return f"The input is not valid JSON: {message}"


def _parse_items(data: bytes, source: str | None) -> list[tuple[Any, str | None, list[Issue]]]:
    """Split raw input into (resource or None, location, parse issues) items."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    stripped = data.lstrip()
    if not stripped:
        return [(None, None, [Issue("fatal", "structure", "The input is empty")])]
    if stripped.startswith(b"<"):
        return [(_XML, None, [])]
    is_ndjson = bool(source and source.lower().endswith(".ndjson"))
    if not is_ndjson:
        try:
            return [(orjson.loads(data), None, [])]
        except orjson.JSONDecodeError as error:
            lines = [line for line in data.splitlines() if line.strip()]
            if len(lines) < 2 or not all(line.lstrip().startswith(b"{") for line in lines):
                return [(None, None, [Issue("fatal", "structure", _json_error(error))])]
            is_ndjson = True
    items: list[tuple[Any, str | None, list[Issue]]] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            items.append((orjson.loads(line), location, []))
        except orjson.JSONDecodeError as error:
            items.append((None, location, [Issue("fatal", "structure", _json_error(error), location=location)]))
    if not items:
        return [(None, None, [Issue("fatal", "structure", "The NDJSON input holds no resource")])]
    return items


def validate_bytes(
    data: bytes, fhir_version: str = "4.0", source: str | None = None, *, profile: str | None = None
) -> dict[str, Any]:
    """Validate raw input: a JSON resource or Bundle, NDJSON (one resource a line) or FHIR XML.

    ``source`` (a file name) only selects NDJSON by its ``.ndjson`` suffix; NDJSON is also
    recognised when the input is not one JSON value but every line is an object.  Issues of an
    NDJSON line carry ``location = ["line N"]``.  Never raises for bad input: unreadable input
    gives ``fatal`` issues.
    """
    version = normalize_version(fhir_version)
    _check_profile_name(profile)
    issues: list[Issue] = []
    for resource, location, parse_issues in _parse_items(data, source):
        issues += parse_issues
        if resource is None and parse_issues:
            continue
        if resource is _XML:
            try:
                resource, xml_issues = xml_to_json(data.lstrip(b"\xef\xbb\xbf"), load_definitions(version))
            except Exception as error:
                resource, xml_issues = None, [Issue("fatal", "exception", f"The XML cannot be converted: {error}")]
            issues += xml_issues
            if resource is None:
                continue
        if not isinstance(resource, dict):
            found = "an array" if isinstance(resource, list) else f"a JSON {type(resource).__name__}"
            issue = Issue("fatal", "structure", f"Expected a FHIR resource (a JSON object), found {found}")
            issues += _located([issue], location) if location else [issue]
            continue
        found_issues = resource_issues(resource, version, profile=profile)
        issues += _located(found_issues, location) if location else found_issues
    return operation_outcome(issues)


def outcome_model(outcome: dict[str, Any]) -> Any:
    """The OperationOutcome as a ``fhir.resources`` R5 model (``fhir.resources.operationoutcome``)."""
    from fhir.resources.operationoutcome import OperationOutcome

    return OperationOutcome.model_validate(outcome)
