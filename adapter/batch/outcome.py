"""The OperationOutcome written for each record that could not be converted.

One OperationOutcome per failed record, one line of ``errors/OperationOutcome.ndjson``.  The
first issue says where and why: ``details.text`` is the exact source locator (``file``,
``archive.zip!member``, ``file.ndjson#12``, ``page.json#studies[3]``), ``diagnostics`` is the
one-line reason starting with that locator.  A validation failure adds one issue per error the
validator reported, each naming the resource (``ResearchStudy/nct01854957: ...``) and keeping
the validator's FHIRPath ``expression``.

Issue codes (FHIR IssueType, the same in R4 and R5) double as the failure reasons counted in the
summary and the manifest: ``structure`` (unreadable or not a registry record), ``required``
(record without its registry id), ``invalid`` (a produced resource does not validate),
``duplicate`` (the same study again), ``exception`` (an internal error: a bug to report).
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_VALIDATION_ISSUES = 100
"""Enough to fix a record; a pathological record must not produce a multi-megabyte error line."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def failure(locator: str, message: str, code: str, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message = _one_line(message)
    if not message.startswith(locator):
        message = f"{locator}: {message}"
    issue = {"severity": "error", "code": code, "details": {"text": locator}, "diagnostics": message}
    return {"resourceType": "OperationOutcome", "issue": [issue, *(extra or [])]}


def failure_line(locator: str, message: str, code: str, extra: list[dict[str, Any]] | None = None) -> bytes:
    return orjson.dumps(failure(locator, message, code, extra)) + b"\n"


def validation_issues(resource: dict[str, Any], issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validator's error issues for one resource, each prefixed with ``Type/id``."""
    name = f"{resource.get('resourceType')}/{resource.get('id')}"
    out = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.get("severity", "error"),
            "code": issue.get("code", "invalid"),
            "diagnostics": _one_line(f"{name}: {issue.get('diagnostics') or issue.get('details', {}).get('text', '')}"),
        }
        if issue.get("expression"):
            entry["expression"] = list(issue["expression"])
        out.append(entry)
    return out
