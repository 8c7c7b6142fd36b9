"""``GET /metadata`` and the conformance resources the CapabilityStatement points to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapter.server.capability import capability_statement, operation_definitions, search_parameters
from adapter.server.context import ServerContext, fhir_version, get_context
from adapter.server.fhir_io import FhirError, negotiate, render
from adapter.server.openapi import FHIR_RESPONSES

router = APIRouter(tags=["capabilities"])


def _cached(ctx: ServerContext, key: tuple[Any, ...], build: Any) -> Any:
    if key not in ctx.cache:
        ctx.cache[key] = build()
    return ctx.cache[key]


@router.get("/fhir/{release}/metadata", summary="capabilities", responses=FHIR_RESPONSES)
def metadata(release: str, request: Request) -> Response:
    fv = fhir_version(release)
    ctx = get_context(request)
    negotiated = negotiate(request, fv)
    base = ctx.base_url(request, fv)
    statement = _cached(
        ctx, ("capability", fv, base), lambda: capability_statement(fv, base, ctx.settings, ctx.authenticators)
    )
    return render(statement, negotiated, fv)


@router.get("/fhir/{release}/SearchParameter/{rid}", summary="read SearchParameter", responses=FHIR_RESPONSES)
def read_search_parameter(release: str, rid: str, request: Request) -> Response:
    fv = fhir_version(release)
    negotiated = negotiate(request, fv)
    resource = search_parameters(fv).get(rid)
    if resource is None:
        raise FhirError(404, f"SearchParameter/{rid} is not defined here", "not-found")
    return render(resource, negotiated, fv)


@router.get("/fhir/{release}/OperationDefinition/{rid}", summary="read OperationDefinition", responses=FHIR_RESPONSES)
def read_operation_definition(release: str, rid: str, request: Request) -> Response:
    fv = fhir_version(release)
    negotiated = negotiate(request, fv)
    resource = operation_definitions(fv).get(rid)
    if resource is None:
        raise FhirError(404, f"OperationDefinition/{rid} is not defined here", "not-found")
    return render(resource, negotiated, fv)
