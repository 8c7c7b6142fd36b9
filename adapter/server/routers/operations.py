"""Operations: ``$convert`` (registry record -> Bundle), ``$ingest`` (convert and store), ``$validate``.

Bulk ``$export`` belongs here as well when it is built (a later issue): it reads the same store.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from adapter.errors import InputError, RecordError
from adapter.server.context import ServerContext, check_type, fhir_version, get_context
from adapter.server.fhir_io import (
    FhirError,
    Issue,
    body_kind,
    negotiate,
    operation_outcome,
    parse_fhir_xml,
    parse_json,
    read_body,
    render,
    validator,
    xml_root_name,
)
from adapter.server.openapi import FHIR_BODY, REGISTRY_BODY, WRITE_RESPONSES
from adapter.store import Tx
from adapter.store.loader import RecordResources, convert_both, store_records
from adapter.store.params import RESOURCE_TYPES

router = APIRouter(tags=["operations"])

_RAW_TYPES = {"text/plain": "raw"}
_WRAPPERS = ("Parameters", "Binary")


def _decode_base64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise FhirError(400, f"{where} must be base64 text", "invalid")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FhirError(400, f"{where} is not valid base64", "invalid") from None


def _unwrap(resource: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The registry record inside a Parameters or Binary resource, and the other (string) parameters."""
    if resource.get("resourceType") == "Binary":
        return _decode_base64(resource.get("data"), "Binary.data"), {}
    if resource.get("resourceType") != "Parameters":
        raise FhirError(
            422,
            f"a {resource.get('resourceType')} resource is not a registry record: post a ClinicalTrials.gov or WHO "
            "ICTRP record, or a Parameters/Binary resource wrapping one",
            "invalid",
        )
    record: bytes | None = None
    options: dict[str, str] = {}
    for parameter in resource.get("parameter") or []:
        if not isinstance(parameter, dict):
            continue
        name = parameter.get("name")
        if name in ("input", "binary"):
            if "valueString" in parameter:
                record = str(parameter["valueString"]).encode("utf-8")
            elif "valueBase64Binary" in parameter:
                record = _decode_base64(parameter["valueBase64Binary"], f"parameter {name}")
            elif isinstance(parameter.get("resource"), dict) and parameter["resource"].get("resourceType") == "Binary":
                record = _decode_base64(parameter["resource"].get("data"), f"parameter {name} Binary.data")
            else:
                raise FhirError(400, f"parameter {name} needs valueString, valueBase64Binary or a Binary", "invalid")
        elif isinstance(name, str):
            for key, value in parameter.items():
                if key.startswith("value") and isinstance(value, str | bool | int):
                    options[name] = str(value)
    if record is None:
        raise FhirError(400, "the Parameters resource has no 'input' (or 'binary') parameter", "required")
    return record, options


def registry_input(request: Request, body: bytes, fv: str, max_depth: int) -> tuple[bytes, dict[str, str]]:
    """The registry record posted to $convert/$ingest (raw, or wrapped in Parameters/Binary)."""
    if not body.strip():
        raise FhirError(400, "the request body is empty: post a registry record", "required")
    kind = body_kind(request, body, _RAW_TYPES)
    if kind == "raw":
        return body, {}
    if kind == "json":
        value = parse_json(body, max_depth)
        if isinstance(value, dict) and "resourceType" in value:
            return _unwrap(value)
        return body, {}
    if xml_root_name(body, max_depth) in _WRAPPERS and b"http://hl7.org/fhir" in body[:2000]:
        return _unwrap(parse_fhir_xml(body, fv, max_depth))
    return body, {}


def _bundle_type(request: Request, options: dict[str, str]) -> str:
    value = request.query_params.get("bundleType") or options.get("bundleType") or "transaction"
    if value not in ("transaction", "collection"):
        raise FhirError(400, f"bundleType={value!r}: use transaction or collection", "invalid")
    return value


def _convert(data: bytes, fv: str) -> list[Any]:
    from adapter.pipeline import convert_bytes

    try:
        return list(convert_bytes(data, "request body", fv))
    except RecordError as error:
        raise FhirError(422, str(error), error.code) from None
    except InputError as error:
        raise FhirError(400, str(error), error.code) from None


def _warnings_outcome(warnings: list[str]) -> dict[str, Any]:
    return operation_outcome([Issue("warning", "informational", w) for w in warnings])


@router.post("/fhir/{release}/$convert", summary="$convert", responses=WRITE_RESPONSES, openapi_extra=REGISTRY_BODY)
async def convert(release: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    negotiated = negotiate(request, fv)
    ctx.require(request, "read")
    body = await read_body(request, ctx.settings.max_body_bytes)
    data, options = registry_input(request, body, fv, ctx.settings.max_json_depth)
    bundle_type = _bundle_type(request, options)
    results = await run_in_threadpool(_convert, data, fv)
    base = ctx.base_url(request, fv)
    if not results:
        raise FhirError(422, "the input holds no registry record", "not-found")
    documents = []
    for result in results:
        if result.error is not None:
            if len(results) == 1:
                raise FhirError(422, str(result.error), result.error.code)
            documents.append(operation_outcome([Issue("error", result.error.code, str(result.error))]))
            continue
        document = result.bundle(bundle_type, base)
        if fv == "5.0" and result.warnings:
            document["issues"] = _warnings_outcome(result.warnings)
        documents.append(document)
    if len(documents) == 1:
        return render(documents[0], negotiated, fv)
    return render(
        {
            "resourceType": "Bundle",
            "type": "collection",
            # R5 bdl-15: entries of a collection need a fullUrl; these Bundles have no RESTful identity
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": d} for d in documents],
        },
        negotiated,
        fv,
    )


def _ingest(ctx: ServerContext, records: list[RecordResources], fv: str) -> list[Any]:
    def work(tx: Tx) -> list[Any]:
        return [result for version, result in store_records(tx, records) if version == fv]

    return ctx.store.transact(work)


@router.post("/fhir/{release}/$ingest", summary="$ingest", responses=WRITE_RESPONSES, openapi_extra=REGISTRY_BODY)
async def ingest(release: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    negotiated = negotiate(request, fv)
    ctx.require(request, "write", RESOURCE_TYPES)  # a registry record writes every type
    body = await read_body(request, ctx.settings.max_body_bytes)
    data, _ = registry_input(request, body, fv, ctx.settings.max_json_depth)
    try:
        records = await run_in_threadpool(convert_both, data, "request body")
    except RecordError as error:
        raise FhirError(422, str(error), error.code) from None
    except InputError as error:
        raise FhirError(400, str(error), error.code) from None
    failed = [r for r in records if r.error is not None]
    if not records:
        raise FhirError(422, "the input holds no registry record", "not-found")
    if failed:
        issues = [Issue("error", "processing", f"{r.locator}: {r.error}") for r in failed]
        raise FhirError(422, issues[0].diagnostics, issues=issues)
    results = await run_in_threadpool(_ingest, ctx, records, fv)
    entries = []
    for result in results:
        stored = result.stored
        status = "201 Created" if result.outcome == "created" else "200 OK"
        entries.append(
            {
                "response": {
                    "status": status,
                    "location": f"{stored.rtype}/{stored.rid}/_history/{stored.version}",
                    "etag": stored.etag,
                    "lastModified": stored.last_updated,
                }
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    warnings = [w for r in records for w in r.warnings]
    if fv == "5.0" and warnings:
        bundle["issues"] = _warnings_outcome(warnings)
    return render(bundle, negotiated, fv)


# --- $validate --------------------------------------------------------------------------------------


async def _validate(request: Request, release: str, rtype: str | None) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    negotiated = negotiate(request, fv)
    ctx.require(request, "read")
    if rtype is not None:
        check_type(rtype)
    functions = validator()
    if functions is None:
        raise FhirError(501, "$validate is not available: the FHIR validator is not installed", "not-supported")
    validate_resource, validate_bytes = functions
    body = await read_body(request, ctx.settings.max_body_bytes)
    kind = body_kind(request, body)
    if kind == "xml":
        name = xml_root_name(body, ctx.settings.max_json_depth)
        if rtype is not None and name != rtype:
            raise FhirError(400, f"the body is a {name}, but the URL names {rtype}", "invalid")
        outcome = await run_in_threadpool(validate_bytes, body, fv)
        return render(outcome, negotiated, fv)
    value = parse_json(body, ctx.settings.max_json_depth)
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise FhirError(400, "the body is not a FHIR resource (a JSON object with a resourceType)", "structure")
    resource = value
    if value["resourceType"] == "Parameters" and rtype != "Parameters":
        inner = [
            p.get("resource")
            for p in value.get("parameter") or []
            if isinstance(p, dict) and p.get("name") == "resource"
        ]
        if not inner or not isinstance(inner[0], dict):
            raise FhirError(400, "the Parameters resource has no 'resource' parameter to validate", "required")
        resource = inner[0]
    if rtype is not None and resource.get("resourceType") != rtype:
        raise FhirError(400, f"the resource is a {resource.get('resourceType')}, but the URL names {rtype}", "invalid")
    outcome = await run_in_threadpool(validate_resource, resource, fv)
    return render(outcome, negotiated, fv)


@router.post("/fhir/{release}/$validate", summary="$validate", responses=WRITE_RESPONSES, openapi_extra=FHIR_BODY)
async def validate(release: str, request: Request) -> Response:
    return await _validate(request, release, None)


@router.post(
    "/fhir/{release}/{rtype}/$validate", summary="$validate (type)", responses=WRITE_RESPONSES, openapi_extra=FHIR_BODY
)
async def validate_type(release: str, rtype: str, request: Request) -> Response:
    return await _validate(request, release, rtype)
