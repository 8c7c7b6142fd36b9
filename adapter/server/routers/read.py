"""read, vread, history and search (GET and POST ``_search``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from adapter.server.context import ServerContext, check_type, fhir_version, get_context, strict_handling
from adapter.server.fhir_io import (
    FhirError,
    Issue,
    Negotiated,
    etag_matches,
    negotiate,
    operation_outcome,
    read_body,
    render,
    subset,
)
from adapter.server.openapi import FHIR_FORM_BODY, FHIR_RESPONSES
from adapter.server.search import Include, SearchSpec, parse_search
from adapter.store import Store, Stored
from adapter.store.base import format_instant, now_us
from adapter.store.params import search_params

router = APIRouter(tags=["read and search"])


def http_date(us: int) -> str:
    return format_datetime(datetime.fromtimestamp(us // 1_000_000, UTC), usegmt=True)


def resource_headers(stored: Stored, base: str) -> dict[str, str]:
    return {
        "ETag": stored.etag,
        "Last-Modified": http_date(stored.updated_us),
        "Content-Location": f"{base}/{stored.rtype}/{stored.rid}/_history/{stored.version}",
    }


def _not_modified(request: Request, stored: Stored) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, stored.version)
    since = request.headers.get("if-modified-since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return stored.updated_us // 1_000_000 <= int(moment.timestamp())
    return False


def _gone(stored: Stored, base: str) -> FhirError:
    return FhirError(
        410,
        f"{stored.rtype}/{stored.rid} was deleted (version {stored.version}, {stored.last_updated})",
        "deleted",
        headers={"ETag": stored.etag, "Last-Modified": http_date(stored.updated_us)},
    )


def _resource_body(stored: Stored, request: Request, fv: str) -> dict[str, Any] | bytes:
    assert stored.content is not None
    summary = request.query_params.get("_summary")
    elements = request.query_params.get("_elements")
    if summary in (None, "false") and not elements:
        return stored.content
    if summary is not None and summary not in ("true", "false", "text", "data"):
        raise FhirError(400, f"_summary={summary!r} is not supported on read: use true, text, data or false", "invalid")
    names = [e.strip() for e in elements.split(",")] if elements else None
    return subset(stored.resource(), fv, summary, names)


@router.get("/fhir/{release}/{rtype}/{rid}", summary="read", responses=FHIR_RESPONSES)
def read(release: str, rtype: str, rid: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "read", (rtype,))
    base = ctx.base_url(request, fv)
    stored = ctx.store.read(fv, rtype, rid)
    if stored is None:
        raise FhirError(404, f"{rtype}/{rid} is not known", "not-found")
    if stored.deleted:
        raise _gone(stored, base)
    headers = resource_headers(stored, base)
    if _not_modified(request, stored):
        return Response(status_code=304, headers=headers)
    return render(_resource_body(stored, request, fv), negotiated, fv, headers=headers)


@router.get("/fhir/{release}/{rtype}/{rid}/_history/{vid}", summary="vread", responses=FHIR_RESPONSES)
def vread(release: str, rtype: str, rid: str, vid: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "read", (rtype,))
    if not vid.isdigit():
        raise FhirError(404, f"{rtype}/{rid} has no version {vid!r}", "not-found")
    base = ctx.base_url(request, fv)
    stored = ctx.store.vread(fv, rtype, rid, int(vid))
    if stored is None:
        raise FhirError(404, f"{rtype}/{rid} has no version {vid}", "not-found")
    if stored.deleted:
        raise _gone(stored, base)
    headers = resource_headers(stored, base)
    if _not_modified(request, stored):
        return Response(status_code=304, headers=headers)
    return render(_resource_body(stored, request, fv), negotiated, fv, headers=headers)


@router.get("/fhir/{release}/{rtype}/{rid}/_history", summary="history-instance", responses=FHIR_RESPONSES)
def history(release: str, rtype: str, rid: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "read", (rtype,))
    base = ctx.base_url(request, fv)
    limit = ctx.settings.history_limit
    count = request.query_params.get("_count")
    if count is not None:
        if not count.isdigit():
            raise FhirError(400, f"_count={count!r} is not a number", "invalid")
        limit = max(1, min(int(count), limit))
    versions = ctx.store.history(fv, rtype, rid, limit)
    if not versions:
        raise FhirError(404, f"{rtype}/{rid} is not known", "not-found")
    entries = []
    for stored in versions:
        entry: dict[str, Any] = {"fullUrl": f"{base}/{rtype}/{rid}"}
        if not stored.deleted and stored.content is not None:
            entry["resource"] = stored.resource()
        method = "DELETE" if stored.deleted else ("POST" if stored.method == "POST" else "PUT")
        entry["request"] = {"method": method, "url": rtype if method == "POST" else f"{rtype}/{rid}"}
        status = "204" if stored.deleted else ("201" if stored.version == 1 else "200")
        entry["response"] = {"status": status, "etag": stored.etag, "lastModified": stored.last_updated}
        entries.append(entry)
    bundle = {
        "resourceType": "Bundle",
        "id": secrets.token_hex(16),
        "meta": {"lastUpdated": format_instant(now_us())},
        "type": "history",
        "total": versions[0].version,
        "link": [{"relation": "self", "url": f"{base}/{rtype}/{rid}/_history"}],
        "entry": entries,
    }
    return render(bundle, negotiated, fv)


@router.get("/fhir/{release}/{rtype}", summary="search-type", responses=FHIR_RESPONSES)
def search_get(release: str, rtype: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "read", (rtype,))
    items = list(request.query_params.multi_items())
    bundle = run_search(ctx, request, fv, rtype, items, negotiated)
    return render(bundle, negotiated, fv)


@router.post(
    "/fhir/{release}/{rtype}/_search",
    summary="search-type (POST)",
    responses=FHIR_RESPONSES,
    openapi_extra=FHIR_FORM_BODY,
)
async def search_post(release: str, rtype: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    check_type(rtype)
    negotiated = negotiate(request, fv)
    ctx.require(request, "read", (rtype,))
    body = await read_body(request, ctx.settings.max_body_bytes)
    media = request.headers.get("content-type", "application/x-www-form-urlencoded").split(";")[0].strip().lower()
    if body.strip() and media != "application/x-www-form-urlencoded":
        raise FhirError(415, "POST _search takes application/x-www-form-urlencoded parameters", "not-supported")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise FhirError(400, "the form body is not UTF-8", "structure") from None
    items = list(request.query_params.multi_items()) + form
    bundle = await run_in_threadpool(run_search, ctx, request, fv, rtype, items, negotiated)
    return render(bundle, negotiated, fv)


# --- search execution ----------------------------------------------------------------------------


def encode_cursor(snapshot: str | None, offset: int, criteria: list[tuple[str, str]]) -> str:
    raw = orjson.dumps({"s": snapshot, "o": offset, "q": criteria})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str | None, int, list[tuple[str, str]]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        snapshot = data["s"]
        offset = int(data["o"])
        criteria = [(str(k), str(v)) for k, v in data["q"]]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise FhirError(400, "the paging link is damaged: repeat the search", "invalid") from None
    if offset < 0 or (snapshot is not None and not isinstance(snapshot, str)):
        raise FhirError(400, "the paging link is damaged: repeat the search", "invalid")
    return snapshot, offset, criteria


def _page_ids(
    ctx: ServerContext, spec: SearchSpec, snapshot: str | None, offset: int
) -> tuple[list[str], int, str | None]:
    """(ids of this page, total, snapshot token) for a search, creating a snapshot when results span pages."""
    store, settings = ctx.store, ctx.settings
    limit = settings.snapshot_limit
    ids: list[str] | None = None
    total = 0
    if snapshot is not None:
        loaded = store.load_page(snapshot, settings.page_ttl_s)
        if loaded is not None:
            ids, total = loaded
    if ids is None:
        found = store.search_ids(spec.query, limit + 1)
        total = len(found) if len(found) <= limit else store.count(spec.query)
        ids = found[:limit]
        snapshot = None
        if total > spec.count:
            # Keyed by the query and the type's generation: a repeated search with no write in between
            # reuses the snapshot instead of writing one per request.
            snapshot = _snapshot_key(store, spec)
            if not store.has_page(snapshot, settings.page_ttl_s):
                store.save_page(snapshot, ids, total)
                store.expire_pages(settings.page_ttl_s)
    if offset + spec.count <= len(ids) or len(ids) >= total:
        return ids[offset : offset + spec.count], total, snapshot
    # Past the snapshot (more than snapshot_limit matches): the live result, paged by offset.
    return store.search_ids(spec.query, spec.count, offset), total, snapshot


def _snapshot_key(store: Store, spec: SearchSpec) -> str:
    query = spec.query
    key = [spec.fv, spec.rtype, query.where, query.params, query.order, query.order_params]
    key.append(store.generation(spec.fv, spec.rtype))
    return hashlib.sha256(orjson.dumps(key)).hexdigest()[:32]


def _includes(store: Store, spec: SearchSpec, matches: list[Stored], limit: int) -> list[Stored]:
    """Resources added by ``_include``/``_revinclude`` (each at most once, none of the matches again)."""
    seen = {(s.rtype, s.rid) for s in matches}
    found: list[Stored] = []
    frontier = list(matches)
    first_round = True
    while frontier and len(found) < limit:
        added: list[Stored] = []
        for include in spec.includes:
            if not first_round and not include.iterate:
                continue
            added += _apply_include(store, spec.fv, include, frontier, seen, limit - len(found) - len(added))
        found += added
        frontier = added
        first_round = False
        if not any(i.iterate for i in spec.includes):
            break
    return found[:limit]


def _apply_include(
    store: Store, fv: str, include: Include, sources: list[Stored], seen: set[tuple[str, str]], room: int
) -> list[Stored]:
    if room <= 0:
        return []
    wanted: dict[str, list[str]] = {}
    if include.reverse:
        by_type: dict[str, list[str]] = {}
        for stored in sources:
            by_type.setdefault(stored.rtype, []).append(stored.rid)
        for rtype, rids in by_type.items():
            if include.param == "*":
                rows = store.refs_to(fv, include.source, "*", rtype, rids, room)
            else:
                param = search_params(fv)[include.source][include.param]
                if rtype not in param.targets:
                    continue
                rows = store.refs_to(fv, include.source, include.param, rtype, rids, room)
            wanted.setdefault(include.source, []).extend(rows)
    else:
        rids = [s.rid for s in sources if s.rtype == include.source]
        if not rids:
            return []
        params = [] if include.param == "*" else [include.param]
        for ttype, tid in store.refs_from(fv, include.source, rids, params):
            if include.target is None or ttype == include.target:
                wanted.setdefault(ttype, []).append(tid)
    out: list[Stored] = []
    for rtype, rids in wanted.items():
        if rtype not in search_params(fv):
            continue
        fresh = [rid for rid in dict.fromkeys(rids) if (rtype, rid) not in seen]
        fetched = store.fetch(fv, rtype, fresh)
        for rid in fresh:
            if rid in fetched and len(out) < room:
                seen.add((rtype, rid))
                out.append(fetched[rid])
    return out


def run_search(
    ctx: ServerContext,
    request: Request,
    fv: str,
    rtype: str,
    items: list[tuple[str, str]],
    negotiated: Negotiated,
) -> dict[str, Any]:
    """The searchset Bundle for a search request (or a page of an earlier one)."""
    settings = ctx.settings
    base = ctx.base_url(request, fv)
    cursor = next((v for k, v in items if k == "_cursor"), None)
    format_params = [(k, v) for k, v in items if k in ("_format", "_pretty")]
    snapshot: str | None = None
    offset = 0
    if cursor is not None:
        snapshot, offset, criteria = decode_cursor(cursor)
        spec = parse_search(
            fv, rtype, criteria, strict=False, default_count=settings.default_count, max_count=settings.max_count
        )
    else:
        spec = parse_search(
            fv,
            rtype,
            items,
            strict=strict_handling(request),
            default_count=settings.default_count,
            max_count=settings.max_count,
        )
    store = ctx.store
    entries: list[dict[str, Any]] = []
    links = []
    total: int | None
    if spec.summary == "count" or spec.count == 0:
        total = store.count(spec.query)
        links.append({"relation": "self", "url": f"{base}/{rtype}?{spec.link_query(format_params)}"})
    else:
        page, total, snapshot = _page_ids(ctx, spec, snapshot, offset)
        fetched = store.fetch(fv, rtype, page)
        matches = [fetched[rid] for rid in page if rid in fetched]
        included = _includes(store, spec, matches, settings.max_include) if spec.includes else []
        if cursor is not None:
            self_url = f"{base}/{rtype}?" + _query([("_cursor", cursor), *format_params])
        else:
            self_url = f"{base}/{rtype}?{spec.link_query(format_params)}"
        links.append({"relation": "self", "url": self_url})
        if snapshot is not None:

            def page_link(relation: str, at: int) -> dict[str, str]:
                token = encode_cursor(snapshot, at, spec.criteria)
                return {"relation": relation, "url": f"{base}/{rtype}?" + _query([("_cursor", token), *format_params])}

            last = max((total - 1) // spec.count * spec.count, 0)
            links.append(page_link("first", 0))
            if offset > 0:
                links.append(page_link("previous", max(offset - spec.count, 0)))
            if offset + spec.count < total:
                links.append(page_link("next", offset + spec.count))
            links.append(page_link("last", last))
        raw = negotiated.fmt == "json" and spec.summary in (None, "false") and not spec.elements
        for stored, mode in [(s, "match") for s in matches] + [(s, "include") for s in included]:
            entries.append(
                {
                    "fullUrl": f"{base}/{stored.rtype}/{stored.rid}",
                    "resource": _entry_resource(stored, fv, spec, raw),
                    "search": {"mode": mode},
                }
            )
    if spec.ignored:
        issue = Issue(
            "warning",
            "not-supported",
            "ignored search parameters (not supported here): " + ", ".join(spec.ignored),
        )
        # R5 bdl-15: every searchset entry needs a fullUrl, the outcome too
        outcome_entry = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": operation_outcome([issue])}
        entries.append({**outcome_entry, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": secrets.token_hex(16),
        "meta": {"lastUpdated": format_instant(now_us())},
        "type": "searchset",
    }
    if spec.total != "none" or spec.summary == "count":
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry_resource(stored: Stored, fv: str, spec: SearchSpec, raw: bool) -> Any:
    assert stored.content is not None
    if raw:
        return orjson.Fragment(stored.content)
    return subset(stored.resource(), fv, spec.summary, spec.elements)


def _query(pairs: list[tuple[str, str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(pairs, safe=":|,/$*")
