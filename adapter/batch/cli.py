"""``trial2fhir convert ... --out DIR``: option checks, the run, the summary, the exit status.

``adapter.cli.convert`` hands over here when ``--out`` is given.  ``--format`` has two families
of values: without ``--out`` it is the serialisation of the one Bundle printed (``json``,
``xml``); with ``--out`` it is the layout of the directory (``ndjson``: Bulk Data files per
resource type; ``bundles``: one transaction Bundle per record, ``Bundle.ndjson``).  A value of
the other family is a usage error that says which one fits.

Exit status: 0 every record converted; 1 some records failed (they are in
``errors/OperationOutcome.ndjson``), or ``--fail-fast`` stopped the run; 2 usage (bad options,
an input that does not exist, a resume that does not match); 3 internal error; 130 interrupted
(resumable with ``--resume``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from adapter.batch.inputs import UsageError
from adapter.batch.output import DELETED, ERRORS, MANIFEST
from adapter.batch.progress import make_progress
from adapter.batch.runner import BatchOptions, BatchSummary, FailFast, WorkerCrashed, run_batch

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
SINGLE_FORMATS = ("json", "xml")
BATCH_FORMATS = ("ndjson", "bundles")
VALIDATE_MODES = ("full", "structure", "none")


def _say(text: str) -> None:
    print(f"trial2fhir: {text}", file=sys.stderr, flush=True)


def _error(text: str) -> None:
    _say(f"error: {' '.join(text.split())}")


def check_single_options(
    inputs: list[str], output_format: str | None, jobs: int | None, fail_fast: bool, resume: bool, validate: str | None
) -> str | None:
    """Problems with options when ``--out`` is absent (one Bundle to stdout), or None."""
    if output_format in BATCH_FORMATS:
        return f"--format {output_format} writes a directory: add --out DIR (without --out use json or xml)"
    if output_format not in (None, *SINGLE_FORMATS):
        return f"unknown --format {output_format!r}: use json or xml (or ndjson/bundles with --out DIR)"
    for flag, given in (("--jobs", jobs is not None), ("--fail-fast", fail_fast), ("--resume", resume)):
        if given:
            return f"{flag} applies to batch conversion: add --out DIR"
    if validate not in (None, *VALIDATE_MODES):
        return f"unknown --validate {validate!r}: use full, structure or none"
    if len(inputs) != 1:
        return f"{len(inputs)} inputs: several inputs, directories and archives need --out DIR"
    return None


def validation_errors(resources: list[dict[str, Any]], fhir_version: str, invariants: bool = True) -> list[str]:
    """One line per error of the produced resources (``--validate full|structure`` without ``--out``)."""
    from adapter.batch.validate import load_validator

    validate = load_validator(fhir_version, invariants)[1]
    lines = []
    for resource in resources:
        for issue in validate(resource):
            lines.append(f"{resource['resourceType']}/{resource.get('id')}: {issue.get('diagnostics', '')}")
    return lines


def convert_to_directory(
    inputs: list[str],
    out: Path,
    fhir_version: str,
    output_format: str | None,
    bundle_type: str,
    base_url: str,
    jobs: int | None,
    validate: str | None,
    fail_fast: bool,
    resume: bool,
    quiet: bool,
) -> int:
    """Run a batch and print its summary; returns the exit status."""
    layout = output_format or "ndjson"
    if layout in SINGLE_FORMATS:
        _error(f"--format {layout} prints one Bundle: with --out DIR use ndjson or bundles")
        return EXIT_USAGE
    if layout not in BATCH_FORMATS:
        _error(f"unknown --format {layout!r}: with --out DIR use ndjson or bundles")
        return EXIT_USAGE
    mode = validate or "full"
    if mode not in VALIDATE_MODES:
        _error(f"unknown --validate {mode!r}: use full, structure or none")
        return EXIT_USAGE
    if jobs is not None and jobs < 1:
        _error("--jobs must be at least 1")
        return EXIT_USAGE
    options = BatchOptions(
        inputs=list(inputs),
        out=out,
        fhir_version=fhir_version,
        output_format=layout,
        bundle_type=bundle_type,
        base_url=base_url,
        jobs=jobs,
        validate=mode != "none",
        invariants=mode == "full",
        fail_fast=fail_fast,
        resume=resume,
    )
    try:
        summary = run_batch(options, make_progress(quiet))
    except UsageError as error:
        _error(str(error))
        return EXIT_USAGE
    except FailFast as stop:
        _error(stop.diagnostics)
        _say(f"stopped at the first failed record (--fail-fast); {out} was not updated")
        return EXIT_FAILED
    except WorkerCrashed as error:
        _error(str(error))
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        _say(f"interrupted; continue with the same command and --resume (output in {out} is unchanged)")
        return EXIT_INTERRUPTED
    for line in summary_lines(summary, quiet):
        _say(line)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def summary_lines(s: BatchSummary, quiet: bool = False) -> list[str]:
    """The final report; with ``quiet`` only what needs attention (failures)."""
    lines: list[str] = []
    if not quiet:
        lines.extend(f"note: {note}" for note in s.notes)
    head = f"{s.read:,} records read: {s.converted:,} converted, {s.failed:,} failed"
    if s.failed:
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(s.failed_by.items()))
        head += f" ({reasons}); see {s.out / ERRORS}"
    if quiet:
        return [head] if s.failed else []
    lines.append(head)
    if s.incremental:
        line = (
            f"incremental: {s.added:,} added, {s.changed:,} changed, {s.unchanged:,} unchanged, {s.removed:,} removed"
        )
        if s.written.get(DELETED):
            line += f"; DELETE Bundles in {s.out / DELETED}"
        lines.append(line)
    parts = []
    for resource_type, n in s.resources.items():
        written = s.written.get(f"{resource_type}.ndjson")
        if resource_type == "Organization" and written is not None:
            parts.append(f"Organization {written:,} (named {n:,} times)")
        else:
            parts.append(f"{resource_type} {n:,}")
    if s.written.get("Bundle.ndjson"):
        lines.append(f"{s.written['Bundle.ndjson']:,} Bundles holding " + ", ".join(parts))
    elif parts:
        lines.append("resources: " + ", ".join(parts))
    if s.unmapped:
        records = max(n for _, n in s.unmapped)
        lines.append(
            f"{_n(len(s.unmapped), 'source field')} not mapped (the most frequent in {_n(records, 'record')}); "
            f"listed in {s.out / MANIFEST}"
        )
    rate = s.converted_now / s.elapsed if s.elapsed > 0 else 0.0
    lines.append(
        f"validation: {s.validator}; {_n(s.converted_now, 'record')} converted in {s.elapsed:,.1f} s "
        f"({rate:,.0f} records/s); manifest {s.out / MANIFEST}"
    )
    return lines
