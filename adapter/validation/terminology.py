"""Binding checks: codes against the value sets and code systems of the core package."""

from __future__ import annotations

from typing import Any

from adapter.validation.definitions import Binding, Definitions
from adapter.validation.issues import Issue


def _codings(value: Any, type_code: str) -> list[dict[str, Any]] | None:
    """The codings a bound value carries (None when the type is not coded)."""
    if type_code == "Coding":
        return [value] if isinstance(value, dict) else []
    if type_code == "CodeableConcept":
        codings = value.get("coding") if isinstance(value, dict) else None
        return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []
    if type_code == "CodeableReference":
        concept = value.get("concept") if isinstance(value, dict) else None
        return _codings(concept, "CodeableConcept") if concept is not None else []
    if type_code == "Quantity" and isinstance(value, dict) and value.get("code") is not None:
        return [{"system": value.get("system"), "code": value.get("code")}]
    return None


def check_binding(
    definitions: Definitions, binding: Binding, value: Any, type_code: str, expression: str, flagged: set[int]
) -> list[Issue]:
    """Issues for ``value`` (of FHIR type ``type_code``) bound to ``binding``.

    Required bindings: the code must be in the value set (error).  Extensible and preferred
    bindings: a code of one of the value set's own code systems that the value set does not hold
    is a warning.  Value sets that cannot be enumerated from the core package (external code
    systems, UCUM, languages, MIME types) are not checked.  ``flagged`` collects the ids of the
    codings reported here, so the generic unknown-code check does not report them again.
    """
    content = definitions.value_sets.get(binding.value_set)
    if content is None or not content.complete:
        return []
    vs_name = binding.value_set.rsplit("/", 1)[-1]
    required = binding.strength == "required"
    if binding.strength not in ("required", "extensible", "preferred"):
        return []
    if type_code in ("code", "string", "uri"):
        if isinstance(value, str) and required and not content.contains(None, value):
            allowed = sorted(c for codes in content.codes.values() for c in codes)
            shown = ", ".join(allowed[:12]) + (", ..." if len(allowed) > 12 else "")
            return [
                Issue(
                    "error",
                    "code-invalid",
                    f"The value '{value}' is not in the required value set {binding.value_set} (allowed: {shown})",
                    expression,
                )
            ]
        return []
    codings = _codings(value, type_code)
    if codings is None:
        return []
    if required:
        good = [c for c in codings if content.contains(c.get("system"), str(c.get("code")))]
        if good:
            return []
        for coding in codings:
            flagged.add(id(coding))
        if not codings:
            if type_code == "CodeableConcept" and isinstance(value, dict) and value.get("text"):
                return [
                    Issue(
                        "warning",
                        "code-invalid",
                        f"No code from the required value set {vs_name}: only text is given",
                        expression,
                    )
                ]
            return []
        shown = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings[:3])
        return [
            Issue(
                "error",
                "code-invalid",
                f"None of the codes ({shown}) is in the required value set {binding.value_set}",
                expression,
            )
        ]
    issues = []
    for coding in codings:
        system, code = coding.get("system"), coding.get("code")
        if system in content.codes and isinstance(code, str) and code not in content.codes[system]:
            flagged.add(id(coding))
            issues.append(
                Issue(
                    "warning",
                    "code-invalid",
                    f"The code '{code}' of {system} is not in the {binding.strength} value set {binding.value_set}",
                    expression,
                )
            )
    return issues


def check_known_system(definitions: Definitions, coding: dict[str, Any], expression: str) -> Issue | None:
    """A warning when a coding uses a code system the core package defines completely with a code it lacks."""
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not isinstance(code, str):
        return None
    codes = definitions.code_systems.get(system)
    if codes is None or code in codes:
        return None
    version = coding.get("version")
    if isinstance(version, str) and not definitions.fhir_version.startswith(version.rsplit(".", 1)[0]):
        # The Coding names another edition of the system (e.g. an R5 code carried in R4 through a
        # cross-version extension): the edition this package holds cannot judge it.
        return None
    name = definitions.code_system_names.get(system, system)
    return Issue("warning", "code-invalid", f"Unknown code '{code}' in the code system {name} ({system})", expression)
