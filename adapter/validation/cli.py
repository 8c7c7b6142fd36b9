"""``trial2fhir validate``: the function the CLI calls, printing and returning the exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from adapter.validation import PROFILES, normalize_version, validate_bytes
from adapter.validation.issues import SEVERITY_ORDER

INPUT_SUFFIXES = (".json", ".ndjson", ".xml")


def _inputs(paths: list[str], err: TextIO) -> tuple[list[Path], bool]:
    """Expand directories (every ``*.json``, ``*.ndjson``, ``*.xml`` below them, sorted)."""
    found: list[Path] = []
    ok = True
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
        elif path.exists() or raw == "-":
            found.append(path)
        else:
            print(f"trial2fhir validate: {raw}: no such file or directory", file=err)
            ok = False
    return found, ok


def _summary(source: str, outcome: dict[str, Any], out: TextIO) -> None:
    issues = sorted(outcome["issue"], key=lambda i: SEVERITY_ORDER.get(i["severity"], 9))
    counts = {s: sum(1 for i in issues if i["severity"] == s) for s in SEVERITY_ORDER}
    errors = counts["fatal"] + counts["error"]
    if errors == 0 and counts["warning"] == 0:
        print(f"{source}: OK", file=out)
        return
    print(f"{source}: {errors} error(s), {counts['warning']} warning(s)", file=out)
    for issue in issues:
        if issue["severity"] == "information":
            continue
        where = ", ".join(issue.get("location", []) + issue.get("expression", []))
        print(f"  {issue['severity']:<7} [{issue['code']}] {where}: {issue['diagnostics']}", file=out)


def validate_command(
    paths: list[str],
    fhir_version: str,
    summary: bool,
    profile: str | None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Validate files or directories; print one OperationOutcome per input (or a summary).

    With one input the OperationOutcome is printed as JSON; with several, a ``collection`` Bundle
    of them whose ``fullUrl`` is each input's ``file:`` URI.  ``-`` reads standard input.
    Exit code: 0 no errors, 1 errors, 2 usage error or unreadable input (including input that is
    not JSON, NDJSON or XML at all, which gives a ``fatal`` issue).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        version = normalize_version(fhir_version)
    except ValueError as error:
        print(f"trial2fhir validate: {error}", file=err)
        return 2
    if profile is not None and profile not in PROFILES:
        print(f"trial2fhir validate: unknown profile {profile!r} (known: {', '.join(PROFILES)})", file=err)
        return 2
    if not paths:
        print("trial2fhir validate: no input given", file=err)
        return 2
    inputs, ok = _inputs(paths, err)
    status = 0 if ok else 2
    results: list[tuple[str, str, dict[str, Any]]] = []
    for path in inputs:
        try:
            data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        except OSError as error:
            print(f"trial2fhir validate: {path}: {error.strerror or error}", file=err)
            status = 2
            continue
        outcome = validate_bytes(data, version, source=str(path), profile=profile)
        severities = {i["severity"] for i in outcome["issue"]}
        if "fatal" in severities:
            status = 2
        elif "error" in severities and status == 0:
            status = 1
        uri = "urn:trial2fhir:stdin" if str(path) == "-" else path.resolve().as_uri()
        results.append((str(path), uri, outcome))
    if summary:
        for source, _, outcome in results:
            _summary(source, outcome, out)
    elif len(results) == 1:
        out.write(orjson.dumps(results[0][2], option=orjson.OPT_INDENT_2).decode() + "\n")
    elif results:
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"fullUrl": uri, "resource": outcome} for _, uri, outcome in results],
        }
        out.write(orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode() + "\n")
    return status
