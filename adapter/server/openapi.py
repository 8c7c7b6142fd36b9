"""OpenAPI descriptions of the FHIR media types (the handlers read and write raw bodies themselves)."""

from __future__ import annotations

from typing import Any

_RESOURCE_SCHEMA = {"type": "object", "description": "A FHIR resource", "additionalProperties": True}
_FHIR_CONTENT = {
    "application/fhir+json": {"schema": _RESOURCE_SCHEMA},
    "application/fhir+xml": {"schema": {"type": "string", "format": "xml"}},
}
_OUTCOME = {"description": "OperationOutcome", "content": _FHIR_CONTENT}

FHIR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "FHIR resource or Bundle (JSON or XML: Accept or _format)", "content": _FHIR_CONTENT},
    400: _OUTCOME,
    401: _OUTCOME,
    403: _OUTCOME,
    404: _OUTCOME,
    406: _OUTCOME,
    410: _OUTCOME,
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **FHIR_RESPONSES,
    201: {"description": "Created", "content": _FHIR_CONTENT},
    412: _OUTCOME,
    413: _OUTCOME,
    415: _OUTCOME,
    422: _OUTCOME,
}
FHIR_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": _FHIR_CONTENT}}
FHIR_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": True}}},
    }
}
REGISTRY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "description": "ClinicalTrials.gov API v2 study"}},
            "application/xml": {"schema": {"type": "string", "description": "<clinical_study> or WHO ICTRP XML"}},
            **_FHIR_CONTENT,
        },
    }
}
