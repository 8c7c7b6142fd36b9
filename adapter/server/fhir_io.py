"""FHIR on the wire: content negotiation, request bodies, responses, OperationOutcomes, subsetting.

* Response format: ``_format`` wins over ``Accept``; JSON when neither says; 406 when nothing
  acceptable is offered (or ``fhirVersion`` names the other base's version).
* Request bodies: JSON or XML by ``Content-Type`` (sniffed when absent), 415 for other types,
  413 beyond the size limit, 400 for malformed, too deeply nested or DTD-carrying input.
* JSON goes out through orjson (stored JSON is passed through untouched on the fast path); XML
  through the fhir.resources models (``adapter.serialize.to_xml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

JSON_TYPE = "application/fhir+json"
XML_TYPE = "application/fhir+xml"
_FORMATS = {
    "json": "json",
    "application/json": "json",
    "application/fhir+json": "json",
    "application/json+fhir": "json",
    "text/json": "json",
    "xml": "xml",
    "application/xml": "xml",
    "application/fhir+xml": "xml",
    "application/xml+fhir": "xml",
    "text/xml": "xml",
}
_WILDCARDS = {"*/*": "json", "application/*": "json", "text/*": "xml"}
MEDIA_TYPE = {"json": JSON_TYPE + "; charset=utf-8", "xml": XML_TYPE + "; charset=utf-8"}
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def valid_id(value: str) -> bool:
    return bool(_ID.match(value))


# --- errors -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Issue:
    severity: str
    code: str
    diagnostics: str
    expression: list[str] = field(default_factory=list)

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = self.expression
        return out


class FhirError(Exception):
    """An HTTP error whose body is an OperationOutcome."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        code: str = "processing",
        *,
        severity: str = "error",
        headers: dict[str, str] | None = None,
        issues: list[Issue] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issues = issues or [Issue(severity, code, diagnostics)]
        self.headers = headers or {}


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def info_outcome(message: str, code: str = "informational") -> dict[str, Any]:
    return operation_outcome([Issue("information", code, message)])


# --- negotiation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Negotiated:
    fmt: str
    pretty: bool


def _media(value: str) -> tuple[str, dict[str, str]]:
    main, *params = value.split(";")
    out = {}
    for param in params:
        key, _, val = param.partition("=")
        out[key.strip().lower()] = val.strip().strip('"')
    return main.strip().lower(), out


def _version_ok(params: dict[str, str], fhir_version: str) -> bool:
    wanted = params.get("fhirversion")
    return wanted is None or wanted in (fhir_version, {"4.0": "4.0.1", "5.0": "5.0.0"}[fhir_version])


def negotiate(request: Request, fhir_version: str) -> Negotiated:
    """The response format for ``request``; FhirError 406 when nothing acceptable is asked for."""
    query = request.query_params
    pretty = query.get("_pretty", "false").lower() == "true"
    explicit = query.get("_format")
    if explicit:
        media, params = _media(explicit)
        fmt = _FORMATS.get(media)
        if fmt is None or not _version_ok(params, fhir_version):
            raise FhirError(406, f"_format={explicit!r} is not supported: use json or xml", "not-supported")
        return Negotiated(fmt, pretty)
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return Negotiated("json", pretty)
    offers = []
    for position, item in enumerate(accept.split(",")):
        if not item.strip():
            continue
        media, params = _media(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        offers.append((-quality, position, media, params))
    for negative_quality, _, media, params in sorted(offers):
        if negative_quality >= 0:
            continue
        fmt = _FORMATS.get(media) or _WILDCARDS.get(media)
        if fmt and _version_ok(params, fhir_version):
            return Negotiated(fmt, pretty)
    raise FhirError(
        406,
        f"none of the media types in Accept ({accept[:200]}) is served here: use {JSON_TYPE} or {XML_TYPE}"
        + f" (FHIR {fhir_version})",
        "not-supported",
    )


def lenient_format(request: Request, fhir_version: str) -> Negotiated:
    """Negotiation for error bodies: never fails (JSON when the request's own choice is unusable)."""
    try:
        return negotiate(request, fhir_version)
    except FhirError:
        return Negotiated("json", False)


# --- responses --------------------------------------------------------------------------------


def dump_json(body: Any, pretty: bool) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(body, option=option)


def render(
    body: dict[str, Any] | bytes | None,
    negotiated: Negotiated,
    fhir_version: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A response for ``body`` (a resource dict, or stored JSON bytes) in the negotiated format."""
    if body is None:
        return Response(status_code=status, headers=headers)
    if negotiated.fmt == "xml":
        from adapter.serialize import to_xml

        resource = orjson.loads(body) if isinstance(body, bytes) else body
        content = to_xml(resource, fhir_version)
    elif isinstance(body, bytes) and not negotiated.pretty:
        content = body
    else:
        content = dump_json(orjson.loads(body) if isinstance(body, bytes) else body, negotiated.pretty)
    return Response(content, status_code=status, headers=headers, media_type=MEDIA_TYPE[negotiated.fmt])


def error_response(error: FhirError, negotiated: Negotiated, fhir_version: str) -> Response:
    outcome = operation_outcome(error.issues)
    try:
        return render(outcome, negotiated, fhir_version, error.status, error.headers)
    except Exception:  # an OperationOutcome always serialises as JSON
        return render(outcome, Negotiated("json", False), fhir_version, error.status, error.headers)


# --- request bodies ---------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading it when the length is declared."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise FhirError(413, f"the request body is larger than the limit of {limit} bytes", "too-costly")
        except ValueError:
            raise FhirError(400, "invalid Content-Length header", "structure") from None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError(413, f"the request body is larger than the limit of {limit} bytes", "too-costly")
        chunks.append(chunk)
    return b"".join(chunks)


def body_kind(request: Request, body: bytes, extra: dict[str, str] | None = None) -> str:
    """``json`` or ``xml`` from Content-Type (sniffed when absent); FhirError 415 for other types."""
    header = request.headers.get("content-type")
    if header:
        media, params = _media(header)
        kinds = dict(_FORMATS, **(extra or {}))
        kind = kinds.get(media)
        if kind is None:
            raise FhirError(
                415, f"Content-Type {media!r} is not accepted: send {JSON_TYPE} or {XML_TYPE}", "not-supported"
            )
        charset = params.get("charset")
        if charset and charset.lower().replace("-", "") not in ("utf8",):
            raise FhirError(415, f"charset {charset!r} is not accepted: FHIR bodies are UTF-8", "not-supported")
        return kind
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "xml" if start == b"<" else "json"


def check_depth(value: Any, limit: int) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise FhirError(400, f"the body nests deeper than {limit} levels", "structure")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))


def parse_json(body: bytes, max_depth: int) -> Any:
    if not body.strip():
        raise FhirError(400, "the request body is empty", "structure")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        message = str(error)
        if "recursion" in message.lower():
            raise FhirError(400, f"the body nests deeper than {max_depth} levels", "structure") from None
        raise FhirError(400, f"the body is not valid JSON: {message}", "structure") from None
    check_depth(value, max_depth)
    return value


def xml_root_name(body: bytes, max_depth: int) -> str:
    """Local name of the root element after the safety checks (no DTD, no entities, bounded depth)."""
    from adapter.errors import InputError
    from adapter.readers.safe_xml import parse_xml

    try:
        root = parse_xml(body.lstrip(b"\xef\xbb\xbf \t\r\n"), "request body")
    except InputError as error:
        raise FhirError(400, str(error), "structure") from None
    if root.getroottree().docinfo.doctype:
        # FHIR XML never has a DOCTYPE; even an external one (never fetched here) is refused outright.
        raise FhirError(400, "XML with a DOCTYPE (DTD) is not accepted", "security")
    depth = 0
    stack = [(root, 0)]
    while stack:
        element, level = stack.pop()
        depth = max(depth, level)
        if depth > max_depth:
            raise FhirError(400, f"the body nests deeper than {max_depth} levels", "structure")
        stack.extend((child, level + 1) for child in element)
    tag = root.tag if isinstance(root.tag, str) else ""
    return tag.rsplit("}", 1)[-1]


def _model_class(fhir_version: str, resource_type: str) -> Any:
    if fhir_version == "4.0":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError):
        raise FhirError(400, f"unknown resource type {resource_type!r}", "not-supported") from None


def parse_fhir_xml(body: bytes, fhir_version: str, max_depth: int) -> dict[str, Any]:
    """FHIR XML -> the JSON form (through the fhir.resources model of the version)."""
    from pydantic import ValidationError

    name = xml_root_name(body, max_depth)
    model = _model_class(fhir_version, name)
    try:
        parsed = model.model_validate_xml(body)
    except ValidationError as error:
        raise FhirError(400, f"the XML is not a valid {name}: {_first_errors(error)}", "structure") from None
    except Exception as error:  # lxml and fhir_core raise assorted types for malformed XML
        raise FhirError(400, f"the XML cannot be read as FHIR: {error}", "structure") from None
    return orjson.loads(parsed.model_dump_json(exclude_none=True))


def parse_resource(body: bytes, kind: str, fhir_version: str, max_depth: int) -> dict[str, Any]:
    """A FHIR resource from a request body (a JSON object with a ``resourceType``, or FHIR XML)."""
    if kind == "xml":
        return parse_fhir_xml(body, fhir_version, max_depth)
    value = parse_json(body, max_depth)
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise FhirError(400, "the body is not a FHIR resource (a JSON object with a resourceType)", "structure")
    return value


def _first_errors(error: Any, limit: int = 5) -> str:
    parts = []
    for item in error.errors()[:limit]:
        location = ".".join(str(p) for p in item.get("loc", ()))
        parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
    more = len(error.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def validator() -> tuple[Any, Any] | None:
    """``(validate_resource, validate_bytes)`` of the project's validator, or None when it is not installed."""
    try:
        from adapter.validation import validate_bytes, validate_resource
    except ImportError:
        return None
    return validate_resource, validate_bytes


def check_resource(resource: dict[str, Any], fhir_version: str) -> None:
    """Validate a resource a client writes: FhirError 422 listing the errors when it is not valid FHIR.

    The project's validator judges (types, cardinality, required bindings, invariants); the
    fhir.resources model must accept the resource too, because every stored resource must be
    servable as XML.
    """
    from pydantic import ValidationError

    functions = validator()
    if functions is not None:
        outcome = functions[0](resource, fhir_version)
        errors = [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]
        if errors:
            issues = [
                Issue("error", i.get("code", "invalid"), i.get("diagnostics", ""), i.get("expression", []))
                for i in errors
            ]
            raise FhirError(
                422,
                f"{resource['resourceType']} is not valid FHIR {fhir_version}: {issues[0].diagnostics}",
                issues=issues,
            )
    model = _model_class(fhir_version, resource["resourceType"])
    try:
        model.model_validate(resource)
    except ValidationError as error:
        raise FhirError(
            422, f"{resource['resourceType']} is not valid FHIR {fhir_version}: {_first_errors(error)}", "structure"
        ) from None
    except Exception as error:  # fhir_core raises plain errors for some malformed primitives
        raise FhirError(
            422, f"{resource['resourceType']} is not valid FHIR {fhir_version}: {error}", "structure"
        ) from None


def parse_etag(value: str | None) -> int | None:
    """Version number of an ``If-Match`` value (``W/"3"``, ``"3"``, ``3``); FhirError 400 when malformed."""
    if value is None:
        return None
    match = _ETAG.match(value)
    if not match:
        raise FhirError(400, f'If-Match {value!r} is not a version ETag like W/"3"', "invalid")
    return int(match.group(1))


def etag_matches(header: str | None, version: int) -> bool:
    """``If-None-Match`` semantics: true when any listed (weak or strong) tag is this version, or ``*``."""
    if not header:
        return False
    for item in header.split(","):
        item = item.strip()
        if item == "*":
            return True
        match = _ETAG.match(item)
        if match and int(match.group(1)) == version:
            return True
    return False


# --- _summary and _elements -------------------------------------------------------------------


@cache
def element_sets(fhir_version: str, resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, JSON names, from the fhir.resources definitions."""
    model = _model_class(fhir_version, resource_type)
    summary, required = (
        {"resourceType", "id", "meta", "implicitRules", "modifierExtension"},
        {"resourceType", "id", "meta"},
    )
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        json_name = info.alias or name
        if extra.get("summary_element_property"):
            summary.update((json_name, "_" + json_name))
        if extra.get("element_required"):
            required.update((json_name, "_" + json_name))
    return frozenset(summary), frozenset(required)


def _tagged(resource: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    meta = dict(kept.get("meta") or resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    out = {"resourceType": resource["resourceType"]}
    if "id" in resource:
        out["id"] = resource["id"]
    out["meta"] = meta
    out.update((k, v) for k, v in kept.items() if k not in ("resourceType", "id", "meta"))
    return out


def subset(resource: dict[str, Any], fhir_version: str, summary: str | None, elements: list[str] | None) -> dict:
    """``resource`` cut down per ``_summary`` (true | text | data) or ``_elements``, tagged SUBSETTED."""
    if summary in (None, "false") and not elements:
        return resource
    rtype = resource.get("resourceType", "")
    try:
        summary_set, required = element_sets(fhir_version, rtype)
    except FhirError:
        return resource
    base = {"resourceType", "id", "meta"}
    if summary == "true":
        keep = summary_set | required
    elif summary == "text":
        keep = base | required | {"text"}
    elif summary == "data":
        return _tagged(resource, {k: v for k, v in resource.items() if k != "text"})
    else:
        names = {e.split(".", 1)[1] if e.startswith(rtype + ".") else e for e in (elements or [])}
        keep = base | required | names | {"_" + n for n in names}
    return _tagged(resource, {k: v for k, v in resource.items() if k in keep})
