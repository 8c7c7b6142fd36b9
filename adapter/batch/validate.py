"""Per-resource validation for ``--validate full`` and ``--validate structure``.

The project's own validator (``adapter.validation.validate_resource``: structure, cardinality,
primitive formats, bindings, FHIRPath invariants, against the official R4 4.0.1 / R5 5.0.0
definitions) is used when it is importable.  Otherwise, and said so in the manifest, the
fallback is ``fhir.resources`` model validation: the R5 models for 5.0 output and the R4B models
for 4.0 output (fhir.resources ships no R4 models; every element our R4 output uses has the same
shape in R4B, so an R4B structural error is an R4 error too, but R4-only constraints are not
checked by the fallback).  ``structure`` is the same validator without the FHIRPath invariants,
behind the compiled check of :mod:`adapter.validation.fast`.

A record whose resources have an ``error`` or ``fatal`` issue is not written: it becomes a
failed record whose OperationOutcome lists the issues.  Warnings are not failures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Validator = Callable[[dict[str, Any]], list[dict[str, Any]]]
"""Returns the error/fatal issues (OperationOutcome ``issue`` dicts) of one resource."""


def _project_validator(fhir_version: str, invariants: bool = True) -> Validator:
    from adapter.validation import validate_resource

    def validate(resource: dict[str, Any]) -> list[dict[str, Any]]:
        outcome = validate_resource(resource, fhir_version, invariants=invariants)
        return [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]

    if invariants:
        return validate
    from adapter.validation.fast import fast_structure

    # Structure only: the compiled check says yes for almost every resource in a fraction of the
    # walker's time, and it is never looser than the walker; a no goes to the walker, which
    # gives the issues (or finds none: the compiled check is stricter in a few rare shapes).
    fast = fast_structure(fhir_version)

    def validate_fast(resource: dict[str, Any]) -> list[dict[str, Any]]:
        return [] if fast.accepts(resource) else validate(resource)

    return validate_fast


def _model_validator(fhir_version: str) -> Validator:
    from pydantic import ValidationError

    if fhir_version == "4.0":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class

    def validate(resource: dict[str, Any]) -> list[dict[str, Any]]:
        resource_type = resource.get("resourceType", "")
        try:
            model = get_fhir_model_class(resource_type)
        except (KeyError, ValueError):
            return [{"severity": "error", "code": "structure", "diagnostics": f"unknown resource type {resource_type}"}]
        try:
            model.model_validate(resource)
        except ValidationError as error:
            issues = []
            for detail in error.errors():
                path = ".".join(str(p) for p in detail.get("loc", ()) if not isinstance(p, int))
                expression = f"{resource_type}.{path}" if path else resource_type
                issues.append(
                    {
                        "severity": "error",
                        "code": "structure",
                        "diagnostics": f"{expression}: {detail.get('msg')}",
                        "expression": [expression],
                    }
                )
            return issues
        return []

    return validate


_PROBE = {"resourceType": "Organization", "id": "probe", "name": "Probe"}
"""A valid resource: any issue on it means the validator itself cannot work (e.g. no definitions)."""


@functools.cache
def load_validator(fhir_version: str, invariants: bool = True) -> tuple[str, Validator]:
    """(name, validator): the project's validator when it works, else fhir.resources models.

    The project's validator is probed on a valid resource first: when its definitions cannot be
    loaded it reports a fatal issue on everything, which would fail every record of a batch."""
    models = "R4B" if fhir_version == "4.0" else "R5"
    try:
        validator = _project_validator(fhir_version, invariants)
        problems = validator(_PROBE)
    except Exception as error:  # not installed, or broken: fall back, and say which ran
        problems = [{"diagnostics": f"{type(error).__name__}: {error}"}]
    if not problems:
        name = "trial2fhir (adapter.validation)"
        return (name if invariants else f"{name}, structure only (no FHIRPath invariants)"), validator
    reason = " ".join(str(problems[0].get("diagnostics", "")).split())[:200]
    return f"fhir.resources {models} models (adapter.validation unusable: {reason})", _model_validator(fhir_version)


def validator_name(fhir_version: str, invariants: bool = True) -> str:
    return load_validator(fhir_version, invariants)[0]
