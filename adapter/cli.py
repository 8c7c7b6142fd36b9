"""The ``trial2fhir`` command line.

Exit codes (also in README):
  0  success
  1  the input was read but could not be converted (not a registry record, record without id)
  2  usage error, or the input file cannot be read
  3  internal error (a bug: please report it with the input)
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adapter.errors import Trial2FhirError
from adapter.pipeline import FHIR_VERSIONS, convert_bytes
from adapter.serialize import to_json, to_ndjson_line, to_xml
from mappings.bundle import DEFAULT_BASE_URL

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

app = typer.Typer(
    name="trial2fhir",
    help="Convert clinical-trial registry records to FHIR R4/R5, validate FHIR, serve it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class FhirVersion(StrEnum):
    r4 = "4.0"
    r5 = "5.0"


class BundleType(StrEnum):
    transaction = "transaction"
    collection = "collection"


class OutputFormat(StrEnum):
    json = "json"
    xml = "xml"


def fail(message: str, code: int) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise."""
    typer.echo(f"trial2fhir: error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise fail(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None


@app.command()
def convert(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Registry records: files (ClinicalTrials.gov v2 JSON, search pages, NDJSON, legacy XML, WHO ICTRP "
            "XML), directories (recursive) and .zip archives (with --out); '-' for stdin.",
            metavar="INPUT...",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write a Bulk Data directory (NDJSON per type, manifest.json, errors/)."),
    ] = None,
    fhir_version: Annotated[
        FhirVersion, typer.Option("--fhir-version", help="4.0 (4.0.1) or 5.0 (5.0.0).")
    ] = FhirVersion.r4,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Without --out: json (default) or xml, the Bundle printed. "
            "With --out: ndjson (default, one file per resource type) or bundles (one Bundle per record).",
        ),
    ] = None,
    bundle: Annotated[BundleType, typer.Option("--bundle", help="Bundle type.")] = BundleType.transaction,
    base_url: Annotated[str, typer.Option("--base-url", help="Base of the entries' fullUrl.")] = DEFAULT_BASE_URL,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes with --out (default: CPU cores).")
    ] = None,
    validate: Annotated[
        str | None,
        typer.Option(
            "--validate",
            help="full: validate every resource, write failures to errors/ (default with --out); "
            "structure: the same without the FHIRPath invariants (several times faster); "
            "none: skip it (same bytes for valid records; default without --out).",
        ),
    ] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="With --out: stop at the first failure.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="With --out: continue an interrupted run.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No warnings, progress or summary.")] = False,
) -> None:
    """Convert registry records to FHIR: one Bundle on stdout, or a whole registry into --out DIR.

    Without --out: one input, printed as one Bundle (an input holding several records: one per line).

    With --out: files, directories and .zip archives, converted in parallel to FHIR Bulk Data NDJSON.

    Exit status: 0 every record converted, 1 some failed (listed in DIR/errors/), 2 usage error.
    """
    from adapter.batch import cli as batch_cli

    if out is not None:
        raise typer.Exit(
            batch_cli.convert_to_directory(
                inputs, out, fhir_version.value, output_format, bundle.value, base_url,
                jobs, validate, fail_fast, resume, quiet,
            )
        )  # fmt: skip
    problem = batch_cli.check_single_options(inputs, output_format, jobs, fail_fast, resume, validate)
    if problem:
        raise fail(problem, EXIT_USAGE)
    path = inputs[0]
    as_xml = output_format == OutputFormat.xml.value
    data = read_input(path)
    source = "<stdin>" if path == "-" else path
    version = fhir_version.value
    try:
        results = list(convert_bytes(data, source, version))
    except Trial2FhirError as error:
        raise fail(str(error), EXIT_FAILED) from None
    failed = [r for r in results if r.error is not None]
    converted = [r for r in results if r.error is None]
    if len(results) > 1 and as_xml:
        raise fail(f"{source}: holds {len(results)} records; XML output takes one record per input", EXIT_USAGE)
    invalid = []
    if validate in ("full", "structure"):
        for result in converted:
            errors = batch_cli.validation_errors(result.resources, version, invariants=validate == "full")
            if errors:
                invalid.append((result, errors))
        converted = [r for r in converted if all(r is not bad for bad, _ in invalid)]
    stdout = sys.stdout.buffer
    for result in converted:
        document = result.bundle(bundle.value, base_url)
        if as_xml:
            stdout.write(to_xml(document, version))
        elif len(results) == 1:
            stdout.write(to_json(document))
        else:
            stdout.write(to_ndjson_line(document))
        if not quiet:
            for warning in result.warnings:
                typer.echo(f"trial2fhir: warning: {warning}", err=True)
    stdout.flush()
    for result in failed:
        typer.echo(f"trial2fhir: error: {' '.join(str(result.error).split())}", err=True)
    for result, errors in invalid:
        for line in errors:
            message = f"{result.locator}: invalid FHIR {version}: {line}"
            typer.echo(f"trial2fhir: error: {' '.join(message.split())}", err=True)
    if failed or invalid:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def validate(
    paths: Annotated[list[str], typer.Argument(help="Resources, Bundles, NDJSON, directories; JSON or FHIR XML; '-'.")],
    fhir_version: Annotated[FhirVersion, typer.Option("--fhir-version", help="4.0 (4.0.1) or 5.0 (5.0.0).")] = (
        FhirVersion.r4
    ),
    summary: Annotated[bool, typer.Option("--summary", help="Readable summary instead of OperationOutcomes.")] = False,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Also check a profile's rules ('trial2fhir': what we promise).")
    ] = None,
) -> None:
    """Validate FHIR resources: structure, bindings, invariants, references; prints OperationOutcomes.

    Exit 0 when no input has errors, 1 when some do, 2 on usage errors or unreadable input.
    """
    from adapter.validation.cli import validate_command

    raise typer.Exit(validate_command(paths, fhir_version.value, summary, profile))


@app.command()
def versions() -> None:
    """List the FHIR versions trial2fhir writes."""
    for short, full in FHIR_VERSIONS.items():
        typer.echo(f"{short}\t{full}")


from adapter.server.commands import register as _register_server  # noqa: E402

_register_server(app)


def main() -> None:
    """Console-script entry point: every failure becomes one line on stderr and a documented exit code."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # the last line of defence: no traceback reaches a user
        typer.echo(f"trial2fhir: internal error: {type(error).__name__}: {error} (please report this)", err=True)
        sys.exit(EXIT_INTERNAL)
