"""Writes: update (PUT, conditional PUT), create (POST, If-None-Exist), delete, and transactions.

All of a request's writes happen in one store transaction (``Store.transact``), so a transaction
Bundle is all-or-nothing and a conditional write cannot race another one with the same criteria
(the criteria are locked first).  ``If-Match`` gives optimistic concurrency: 412 when the resource
moved on.  A write whose content equals the current version's creates no new version.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from adapter.server.context import (
    ServerContext,
    check_type,
    fhir_version,
    get_context,
    prefer_return,
)
from adapter.server.fhir_io import (
    FhirError,
    Negotiated,
    body_kind,
    check_resource,
    info_outcome,
    negotiate,
    parse_etag,
    parse_resource,
    read_body,
    render,
    valid_id,
)
from adapter.server.openapi import FHIR_BODY, WRITE_RESPONSES
from adapter.server.routers.read import resource_headers
from adapter.server.search import parse_search
from adapter.store import Stored, Tx, VersionConflict, WriteResult
from adapter.store.params import RESOURCE_TYPES, iter_references

router = APIRouter(tags=["write"])

STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


async def _resource_from_request(request: Request, ctx: ServerContext, fv: str, rtype: str) -> dict[str, Any]:
    body = await read_body(request, ctx.settings.max_body_bytes)
    kind = body_kind(request, body)
    resource = parse_resource(body, kind, fv, ctx.settings.max_json_depth)
    if resource.get("resourceType") != rtype:
        raise FhirError(400, f"the body is a {resource.get('resourceType')}, but the URL names {rtype}", "invalid")
    return resource


def _criteria_query(ctx: ServerContext, fv: str, rtype: str, items: list[tuple[str, str]]) -> Any:
    """The search of a conditional write: strict (an ignored criterion would widen the match)."""
    criteria = [(k, v) for k, v in items if k not in ("_format", "_pretty")]
    if not criteria:
        raise FhirError(400, "a conditional operation needs search criteria", "invalid")
    spec = parse_search(fv, rtype, criteria, strict=True, default_count=2, max_count=2)
    return spec.query, f"{fv}|{rtype}|" + "&".join(f"{k}={v}" for k, v in sorted(criteria))


def _resolve(tx: Tx, ctx: ServerContext, fv: str, rtype: str, items: list[tuple[str, str]]) -> list[str]:
    query, lock_key = _criteria_query(ctx, fv, rtype, items)
    tx.lock(lock_key)
    return tx.find(query, 2)


def _respond(
    request: Request,
    ctx: ServerContext,
    fv: str,
    negotiated: Negotiated,
    stored: Stored,
    status: int,
) -> Response:
    base = ctx.base_url(request, fv)
    headers = resource_headers(stored, base)
    if status == 201:
        headers["Location"] = f"{base}/{stored.rtype}/{stored.rid}/_history/{stored.version}"
    preference = prefer_return(request)
    if preference == "minimal":
        return Response(status_code=status, headers=headers)
    if preference == "OperationOutcome":
        message = f"{stored.rtype}/{stored.rid} version {stored.version}: " + ("created" if status == 201 else "stored")
        return render(info_outcome(message), negotiated, fv, status, headers)
    return render(stored.content, negotiated, fv, status, headers)


def _status(result: WriteResult) -> int:
    return 201 if result.outcome == "created" else 200


def _stored_with_content(tx: Tx, fv: str, result: WriteResult) -> Stored:
    stored = result.stored
    assert stored is not None
    if stored.content is None:
        current = tx.read(fv, stored.rtype, stored.rid)
        assert current is not None
        return current
    return stored


@router.put("/fhir/{release}/{rtype}/{rid}", summary="update", responses=WRITE_RESPONSES, openapi_extra=FHIR_BODY)
async def update(release: str, rtype: str, rid: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "write", (rtype,))
    if_match = parse_etag(request.headers.get("if-match"))
    resource = await _resource_from_request(request, ctx, fv, rtype)
    if resource.get("id") != rid:
        raise FhirError(
            400, f"the resource id {resource.get('id')!r} must equal the id in the URL ({rid!r})", "invalid"
        )
    if not valid_id(rid):
        raise FhirError(400, f"{rid!r} is not a valid FHIR id", "invalid")
    await run_in_threadpool(check_resource, resource, fv)

    def work(tx: Tx) -> tuple[Stored, int]:
        result = tx.put(fv, copy.deepcopy(resource), method="PUT", if_match=if_match)
        return _stored_with_content(tx, fv, result), _status(result)

    stored, status = await run_in_threadpool(_transact, ctx, work)
    return _respond(request, ctx, fv, negotiated, stored, status)


@router.put("/fhir/{release}/{rtype}", summary="conditional update", responses=WRITE_RESPONSES, openapi_extra=FHIR_BODY)
async def conditional_update(release: str, rtype: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "write", (rtype,))
    if_match = parse_etag(request.headers.get("if-match"))
    items = list(request.query_params.multi_items())
    resource = await _resource_from_request(request, ctx, fv, rtype)
    given_id = resource.get("id")
    if given_id is not None and (not isinstance(given_id, str) or not valid_id(given_id)):
        raise FhirError(400, f"{given_id!r} is not a valid FHIR id", "invalid")
    probe = dict(resource, id=given_id or "probe")
    await run_in_threadpool(check_resource, probe, fv)

    def work(tx: Tx) -> tuple[Stored, int]:
        matches = _resolve(tx, ctx, fv, rtype, items)
        if len(matches) > 1:
            raise FhirError(412, f"the criteria match more than one {rtype}", "multiple-matches")
        if matches:
            if given_id is not None and given_id != matches[0]:
                raise FhirError(
                    400, f"the criteria match {rtype}/{matches[0]}, but the body's id is {given_id}", "invalid"
                )
            target = matches[0]
        else:
            target = given_id or str(uuid.uuid4())
            if given_id is not None:
                existing = tx.current(fv, rtype, given_id)
                if existing is not None and not existing.deleted:
                    raise FhirError(409, f"{rtype}/{given_id} exists but does not match the criteria", "conflict")
        result = tx.put(fv, dict(copy.deepcopy(resource), id=target), method="PUT", if_match=if_match)
        return _stored_with_content(tx, fv, result), _status(result)

    stored, status = await run_in_threadpool(_transact, ctx, work)
    return _respond(request, ctx, fv, negotiated, stored, status)


@router.post("/fhir/{release}/{rtype}", summary="create", responses=WRITE_RESPONSES, openapi_extra=FHIR_BODY)
async def create(release: str, rtype: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "write", (rtype,))
    resource = await _resource_from_request(request, ctx, fv, rtype)
    if_none_exist = request.headers.get("if-none-exist")
    new_id = str(uuid.uuid4())
    await run_in_threadpool(check_resource, dict(resource, id=new_id), fv)

    def work(tx: Tx) -> tuple[Stored, int]:
        if if_none_exist is not None:
            items = parse_qsl(if_none_exist.split("?", 1)[-1], keep_blank_values=True)
            matches = _resolve(tx, ctx, fv, rtype, items)
            if len(matches) > 1:
                raise FhirError(412, f"If-None-Exist matches more than one {rtype}", "multiple-matches")
            if matches:
                current = tx.read(fv, rtype, matches[0])
                assert current is not None
                return current, 200
        result = tx.put(fv, dict(copy.deepcopy(resource), id=new_id), method="POST")
        return _stored_with_content(tx, fv, result), _status(result)

    stored, status = await run_in_threadpool(_transact, ctx, work)
    return _respond(request, ctx, fv, negotiated, stored, status)


@router.delete("/fhir/{release}/{rtype}/{rid}", summary="delete", responses=WRITE_RESPONSES)
def delete(release: str, rtype: str, rid: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "write", (rtype,))
    if_match = parse_etag(request.headers.get("if-match"))
    result = _transact(ctx, lambda tx: tx.delete(fv, rtype, rid, if_match=if_match))
    return _delete_response(request, fv, negotiated, rtype, rid, result)


@router.delete("/fhir/{release}/{rtype}", summary="conditional delete (single match)", responses=WRITE_RESPONSES)
def conditional_delete(release: str, rtype: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "write", (rtype,))
    items = list(request.query_params.multi_items())

    def work(tx: Tx) -> tuple[str | None, WriteResult]:
        matches = _resolve(tx, ctx, fv, rtype, items)
        if len(matches) > 1:
            raise FhirError(412, f"the criteria match more than one {rtype}", "multiple-matches")
        if not matches:
            return None, WriteResult("absent", None)
        return matches[0], tx.delete(fv, rtype, matches[0])

    rid, result = _transact(ctx, work)
    if rid is None:
        return _delete_response(request, fv, negotiated, rtype, "", WriteResult("absent", None), conditional=True)
    return _delete_response(request, fv, negotiated, rtype, rid, result)


def _delete_response(
    request: Request,
    fv: str,
    negotiated: Negotiated,
    rtype: str,
    rid: str,
    result: WriteResult,
    conditional: bool = False,
) -> Response:
    if result.outcome == "absent" and result.stored is None and not conditional:
        raise FhirError(404, f"{rtype}/{rid} is not known", "not-found")
    headers = {"ETag": result.stored.etag} if result.stored is not None else {}
    if prefer_return(request) == "OperationOutcome":
        message = (
            "no resource matched; nothing deleted"
            if conditional and result.stored is None
            else f"{rtype}/{rid} deleted" + (" (it already was)" if result.outcome == "absent" else "")
        )
        return render(info_outcome(message), negotiated, fv, 200, headers)
    return Response(status_code=204, headers=headers)


def _transact(ctx: ServerContext, work: Any) -> Any:
    try:
        return ctx.store.transact(work)
    except VersionConflict as conflict:
        raise FhirError(412, str(conflict), "conflict") from None


# --- transactions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    index: int
    method: str
    rtype: str
    rid: str | None
    criteria: list[tuple[str, str]] | None
    resource: dict[str, Any] | None
    full_url: str | None
    if_match: int | None
    if_none_exist: list[tuple[str, str]] | None


def _entry_url(url: str, base: str, index: int) -> tuple[str, str | None, list[tuple[str, str]] | None]:
    if url.startswith(("http://", "https://")):
        if not url.startswith(base + "/"):
            raise FhirError(400, f"entry[{index}].request.url {url!r} is not on this server", "invalid")
        url = url[len(base) + 1 :]
    path, _, query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2 or "_history" in parts:
        raise FhirError(400, f"entry[{index}].request.url {url!r}: use Type, Type/id or Type?criteria", "invalid")
    rtype = parts[0]
    if rtype not in RESOURCE_TYPES:
        raise FhirError(400, f"entry[{index}]: resource type {rtype!r} is not served here", "not-supported")
    rid = parts[1] if len(parts) == 2 else None
    criteria = parse_qsl(query, keep_blank_values=True) if query else None
    return rtype, rid, criteria


def parse_transaction(bundle: dict[str, Any], fv: str, base: str) -> list[Entry]:
    if bundle.get("resourceType") != "Bundle":
        raise FhirError(
            400, f"POST to the base takes a transaction Bundle, not a {bundle.get('resourceType')}", "invalid"
        )
    if bundle.get("type") != "transaction":
        raise FhirError(
            400, f"Bundle.type must be 'transaction' (this server does not process {bundle.get('type')!r})", "invalid"
        )
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise FhirError(400, "Bundle.entry must be a list", "structure")
    entries = []
    for index, raw in enumerate(raw_entries):
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
            raise FhirError(400, f"entry[{index}] has no request", "required")
        request = raw["request"]
        method = str(request.get("method", "")).upper()
        url = request.get("url")
        if method not in ("POST", "PUT", "DELETE"):
            raise FhirError(
                400, f"entry[{index}]: method {method or None!r} is not supported in transactions", "not-supported"
            )
        if not isinstance(url, str) or not url:
            raise FhirError(400, f"entry[{index}].request.url is required", "required")
        rtype, rid, criteria = _entry_url(url, base, index)
        resource = raw.get("resource")
        if method in ("POST", "PUT") and (not isinstance(resource, dict) or resource.get("resourceType") != rtype):
            raise FhirError(400, f"entry[{index}] needs a {rtype} resource", "invalid")
        if method == "POST" and (rid is not None or criteria is not None):
            raise FhirError(400, f"entry[{index}]: POST takes the url {rtype}", "invalid")
        if method == "PUT" and rid is not None:
            assert isinstance(resource, dict)
            if resource.get("id") != rid:
                raise FhirError(400, f"entry[{index}]: the resource id must equal the id in the url ({rid})", "invalid")
            if not valid_id(rid):
                raise FhirError(400, f"entry[{index}]: {rid!r} is not a valid FHIR id", "invalid")
        if method in ("PUT", "DELETE") and rid is None and not criteria:
            raise FhirError(400, f"entry[{index}]: {method} needs Type/id or Type?criteria", "invalid")
        if_none = request.get("ifNoneExist")
        entries.append(
            Entry(
                index,
                method,
                rtype,
                rid,
                criteria,
                resource if isinstance(resource, dict) else None,
                raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None,
                parse_etag(request.get("ifMatch")) if request.get("ifMatch") else None,
                parse_qsl(str(if_none).split("?", 1)[-1], keep_blank_values=True) if if_none else None,
            )
        )
    return entries


def _run_transaction(ctx: ServerContext, fv: str, entries: list[Entry]) -> list[tuple[Entry, WriteResult, int]]:
    def work(tx: Tx) -> list[tuple[Entry, WriteResult, int]]:
        mapping: dict[str, str] = {}
        targets: dict[int, str] = {}
        results: dict[int, tuple[WriteResult, int]] = {}
        resources = {e.index: copy.deepcopy(e.resource) for e in entries if e.resource is not None}

        def one(entry: Entry, items: list[tuple[str, str]], what: str) -> list[str]:
            found = _resolve(tx, ctx, fv, entry.rtype, items)
            if len(found) > 1:
                raise FhirError(
                    412, f"entry[{entry.index}]: {what} matches more than one {entry.rtype}", "multiple-matches"
                )
            return found

        for entry in (e for e in entries if e.method == "DELETE"):
            rid = entry.rid
            if rid is None:
                found = one(entry, entry.criteria or [], "the delete criteria")
                if not found:
                    results[entry.index] = (WriteResult("absent", None), 204)
                    continue
                rid = found[0]
            targets[entry.index] = f"{entry.rtype}/{rid}"
            results[entry.index] = (tx.delete(fv, entry.rtype, rid, if_match=entry.if_match), 204)
        for entry in (e for e in entries if e.method == "POST"):
            if entry.if_none_exist:
                found = one(entry, entry.if_none_exist, "ifNoneExist")
                if found:
                    current = tx.read(fv, entry.rtype, found[0])
                    assert current is not None
                    results[entry.index] = (WriteResult("unchanged", current), 200)
                    targets[entry.index] = f"{entry.rtype}/{found[0]}"
                    if entry.full_url:
                        mapping[entry.full_url] = targets[entry.index]
                    continue
            new_id = str(uuid.uuid4())
            resources[entry.index]["id"] = new_id
            targets[entry.index] = f"{entry.rtype}/{new_id}"
            if entry.full_url:
                mapping[entry.full_url] = targets[entry.index]
        for entry in (e for e in entries if e.method == "PUT"):
            resource = resources[entry.index]
            if entry.rid is None:
                found = one(entry, entry.criteria or [], "the update criteria")
                given = resource.get("id")
                if found and given is not None and given != found[0]:
                    raise FhirError(
                        400,
                        f"entry[{entry.index}]: the criteria match {entry.rtype}/{found[0]}, "
                        f"but the resource id is {given}",
                        "invalid",
                    )
                resource["id"] = found[0] if found else (given or str(uuid.uuid4()))
            targets[entry.index] = f"{entry.rtype}/{resource['id']}"
            if entry.full_url:
                mapping[entry.full_url] = targets[entry.index]
        seen: dict[str, int] = {}
        for index, target in targets.items():
            if target in seen:
                raise FhirError(400, f"entries {seen[target]} and {index} both write {target}", "invalid")
            seen[target] = index
        for index, resource in resources.items():
            if index in results:
                continue
            for holder in iter_references(resource):
                reference = holder["reference"]
                if reference in mapping:
                    holder["reference"] = mapping[reference]
                elif "?" in reference and reference.split("?", 1)[0] in RESOURCE_TYPES:
                    rtype, query = reference.split("?", 1)
                    found = _resolve(tx, ctx, fv, rtype, parse_qsl(query, keep_blank_values=True))
                    if len(found) != 1:
                        raise FhirError(
                            412,
                            f"entry[{index}]: the conditional reference {reference!r} matches "
                            f"{len(found)} resources (it must match one)",
                            "not-found",
                        )
                    holder["reference"] = f"{rtype}/{found[0]}"
        for entry in entries:
            if entry.method == "DELETE" or entry.index in results:
                continue
            result = tx.put(fv, resources[entry.index], method=entry.method, if_match=entry.if_match)
            results[entry.index] = (result, _status(result))
        return [(entry, *results[entry.index]) for entry in entries]

    return _transact(ctx, work)


def transaction_response(outcomes: list[tuple[Entry, WriteResult, int]]) -> dict[str, Any]:
    entries = []
    for _, result, status in outcomes:
        response: dict[str, Any] = {"status": STATUS_TEXT[status]}
        stored = result.stored
        if stored is not None:
            if not stored.deleted:
                response["location"] = f"{stored.rtype}/{stored.rid}/_history/{stored.version}"
            response["etag"] = stored.etag
            response["lastModified"] = stored.last_updated
        entries.append({"response": response})
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "transaction-response", "entry": entries}


@router.post("/fhir/{release}", summary="transaction", responses=WRITE_RESPONSES, openapi_extra=FHIR_BODY)
@router.post("/fhir/{release}/", include_in_schema=False)
async def transaction(release: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    negotiated = negotiate(request, fv)
    ctx.require(request, "write", ())  # authenticated writer; the types are checked once the Bundle is read
    body = await read_body(request, ctx.settings.max_body_bytes)
    bundle = parse_resource(body, body_kind(request, body), fv, ctx.settings.max_json_depth)
    base = ctx.base_url(request, fv)
    entries = parse_transaction(bundle, fv, base)
    ctx.require(request, "write", tuple(sorted({e.rtype for e in entries})) or ("*",))

    def check_all() -> None:
        for entry in entries:
            if entry.resource is not None:
                probe = dict(entry.resource, id=entry.resource.get("id") or "probe")
                try:
                    check_resource(probe, fv)
                except FhirError as error:
                    error.issues[0].diagnostics = f"entry[{entry.index}]: {error.issues[0].diagnostics}"
                    raise

    await run_in_threadpool(check_all)
    outcomes = await run_in_threadpool(_run_transaction, ctx, fv, entries)
    if prefer_return(request) == "representation" and request.headers.get("prefer"):
        response_bundle = transaction_response(outcomes)
        for (_, result, _), item in zip(outcomes, response_bundle["entry"], strict=True):
            if result.stored is not None and not result.stored.deleted:
                current = await run_in_threadpool(ctx.store.read, fv, result.stored.rtype, result.stored.rid)
                if current is not None and current.content is not None:
                    item["resource"] = current.resource()
                    item["fullUrl"] = f"{base}/{current.rtype}/{current.rid}"
        return render(response_bundle, negotiated, fv)
    return render(transaction_response(outcomes), negotiated, fv)
