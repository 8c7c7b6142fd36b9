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
    path: Annotated[
        str, typer.Argument(help="Registry record file (ClinicalTrials.gov JSON or XML, WHO ICTRP XML); '-' for stdin.")
    ],
    fhir_version: Annotated[
        FhirVersion, typer.Option("--fhir-version", help="4.0 (4.0.1) or 5.0 (5.0.0).")
    ] = FhirVersion.r4,
    bundle: Annotated[BundleType, typer.Option("--bundle", help="Bundle type.")] = BundleType.transaction,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="json or xml.")] = OutputFormat.json,
    base_url: Annotated[str, typer.Option("--base-url", help="Base of the entries' fullUrl.")] = DEFAULT_BASE_URL,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print warnings.")] = False,
) -> None:
    """Convert one registry record (or each record of a search page) to a FHIR Bundle on stdout.

    One record prints one Bundle; an input holding several records (a search page, an array,
    NDJSON) prints one Bundle per line (NDJSON) with --format json.
    """
    data = read_input(path)
    source = "<stdin>" if path == "-" else path
    version = fhir_version.value
    try:
        results = list(convert_bytes(data, source, version))
    except Trial2FhirError as error:
        raise fail(str(error), EXIT_FAILED) from None
    failed = [r for r in results if r.error is not None]
    converted = [r for r in results if r.error is None]
    if len(results) > 1 and output_format is OutputFormat.xml:
        raise fail(f"{source}: holds {len(results)} records; XML output takes one record per input", EXIT_USAGE)
    out = sys.stdout.buffer
    for result in converted:
        document = result.bundle(bundle.value, base_url)
        if output_format is OutputFormat.xml:
            out.write(to_xml(document, version))
        elif len(results) == 1:
            out.write(to_json(document))
        else:
            out.write(to_ndjson_line(document))
        if not quiet:
            for warning in result.warnings:
                typer.echo(f"trial2fhir: warning: {warning}", err=True)
    out.flush()
    for result in failed:
        typer.echo(f"trial2fhir: error: {' '.join(str(result.error).split())}", err=True)
    if failed:
        raise typer.Exit(EXIT_FAILED)


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
