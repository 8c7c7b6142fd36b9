"""Validation issues and the OperationOutcome they become."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


@dataclass(slots=True)
class Issue:
    """One finding; ``code`` is a FHIR ``IssueType`` code (structure, required, value, invariant, ...)."""

    severity: str
    code: str
    diagnostics: str
    expression: str | None = None
    location: str | None = None
    """Where in the input when there is no element to point at (``line 12`` of an NDJSON file)."""

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.location:
            out["location"] = [self.location]
        if self.expression:
            out["expression"] = [self.expression]
        return out


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome dict (valid in R4 and R5); an ``informational`` issue when there is nothing to say."""
    if not issues:
        issues = [Issue("information", "informational", "No issues detected")]
    return {"resourceType": "OperationOutcome", "issue": [issue.to_dict() for issue in issues]}


def has_errors(outcome: dict[str, Any]) -> bool:
    return any(i.get("severity") in ("fatal", "error") for i in outcome.get("issue", []))
