"""``trial2fhir serve`` and ``trial2fhir load``, added to the CLI by :func:`register`.

Heavy imports (FastAPI, uvicorn, the store, the mappings) happen inside the commands, so
``trial2fhir --help`` and ``trial2fhir convert`` stay fast.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

EXIT_FAILED, EXIT_USAGE = 1, 2


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"trial2fhir: error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def _settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from adapter.server.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise _fail(f"invalid settings: {problems}", EXIT_USAGE) from None


def _open(url: str, settings: Any) -> Any:
    from adapter.store import StoreError, open_store

    try:
        return open_store(url, pool_size=settings.db_pool_size, timeout_s=settings.db_timeout_s)
    except (StoreError, ValueError, OSError) as error:
        raise _fail(f"cannot open the database {_redact(url)}: {error}", EXIT_USAGE) from None


def _redact(url: str) -> str:
    """The URL without a password (it is printed and logged)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def _load(store: Any, paths: list[Any], quiet: bool, force: bool = False, workers: int | None = None) -> int:
    """Load ``paths``; prints a summary and each failure; returns the number of failed records/files."""
    import time

    from adapter.store.loader import load_paths

    started = time.monotonic()
    report = load_paths(store, paths, force=force, workers=workers)
    summary = (
        f"loaded {report.records} record(s) from {report.files - report.skipped} file(s) "
        f"({report.skipped} already loaded) in {time.monotonic() - started:.1f} s"
    )
    _print_load(summary, report.outcomes, report.failures, quiet)
    return len(report.failures)


def _print_load(summary: str, outcomes: dict[str, int], failures: list[str], quiet: bool) -> None:
    """A load's summary line (unless ``quiet``) and one line per listed failure."""
    if not quiet:
        written = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "none written"
        typer.echo(f"trial2fhir: {summary}; resources: {written}", err=True)
    for failure in failures:
        typer.echo(f"trial2fhir: error: {' '.join(failure.split())}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` and ``load`` commands to the ``trial2fhir`` CLI."""

    @app.command()
    def serve(
        host: Annotated[str | None, typer.Option("--host", help="Interface to listen on [default: 127.0.0.1].")] = None,
        port: Annotated[int | None, typer.Option("--port", help="TCP port [default: 8080].")] = None,
        db: Annotated[
            str | None,
            typer.Option(
                "--db", help="sqlite:///path (default: trial2fhir.sqlite3 in the working directory) or postgresql://..."
            ),
        ] = None,
        load: Annotated[
            list[str] | None,
            typer.Option(
                "--load",
                help="Registry records to convert and store before serving (file, directory or archive; repeat the "
                "option for several). Without it, the repository fixtures are loaded.",
            ),
        ] = None,
        no_fixtures: Annotated[bool, typer.Option("--no-fixtures", help="Do not preload the fixtures.")] = False,
        workers: Annotated[
            int | None, typer.Option("--workers", help="Server processes (use PostgreSQL for more than one).")
        ] = None,
    ) -> None:
        """Serve FHIR R4 and R5 (read, search, transactions, $convert, $ingest, $validate) over HTTP.

        Settings also come from TRIAL2FHIR_* environment variables (TRIAL2FHIR_DB, TRIAL2FHIR_PORT,
        TRIAL2FHIR_WRITE_TOKENS ...); flags win. Files already loaded are not loaded again.
        """
        settings = _settings(host=host, port=port, db=db, load=load or None, workers=workers)
        store = _open(settings.db, settings)
        paths: list[Any] = list(settings.load)
        if not paths and settings.fixtures and not no_fixtures:
            from adapter.store.loader import default_fixture_paths

            paths = default_fixture_paths()
            if not paths:
                typer.echo("trial2fhir: no fixtures found (run from the repository to preload them)", err=True)
        try:
            if paths:
                _load(store, paths, quiet=False)
        finally:
            store.close()
        origin = settings.public_base_url or f"http://{settings.host}:{settings.port}"
        typer.echo(f"FHIR R4 base: {origin}/fhir/R4")
        typer.echo(f"FHIR R5 base: {origin}/fhir/R5")
        typer.echo(f"API docs:     {origin}/docs")
        typer.echo(f"database:     {_redact(settings.db)}")
        _run(settings)

    @app.command("load")
    def load_command(
        inputs: Annotated[
            list[str],
            typer.Argument(
                help="Registry records (files, directories, .zip archives, NDJSON) or export directories "
                "(trial2fhir convert --out, or a saved $export: a folder with manifest.json)."
            ),
        ],
        db: Annotated[
            str | None,
            typer.Option(
                "--db", help="sqlite:///path (default: trial2fhir.sqlite3 in the working directory) or postgresql://..."
            ),
        ] = None,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Convert tar archives even if already loaded (other inputs are always streamed through; "
                "unchanged resources get no new version).",
            ),
        ] = False,
        workers: Annotated[
            int | None, typer.Option("--workers", help="Conversion processes [default: CPU count].")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines and no summary.")] = False,
    ) -> None:
        """Convert registry records, or read an export, and store them without starting the server.

        Records are stored in both versions (R4 and R5); an export directory in its own version.
        Inputs are streamed (archives member by member, NDJSON in ranges) and written in large
        transactions, so memory stays bounded whatever their size.
        """
        settings = _settings(db=db)
        missing = [path for path in inputs if not os.path.exists(path)]
        if missing:
            raise _fail(f"cannot read {', '.join(missing)}: no such file or directory", EXIT_USAGE)
        store = _open(settings.db, settings)
        try:
            failures = _bulk_load(store, inputs, quiet=quiet, force=force, workers=workers)
        finally:
            store.close()
        if failures:
            raise typer.Exit(EXIT_FAILED)


def _bulk_load(store: Any, inputs: list[str], quiet: bool, force: bool, workers: int | None) -> int:
    """``trial2fhir load``: the streaming batch loader; returns the number of failed records/files."""
    import time

    from adapter.batch.inputs import UsageError
    from adapter.batch.load import load_inputs
    from adapter.store.loader import ARCHIVE_SUFFIXES

    # The batch planner streams zip members by offset; a compressed tar cannot be entered that way,
    # so tar archives keep the per-file loader (tarfile reads them member by member too).
    tars = [i for i in inputs if i.lower().endswith(ARCHIVE_SUFFIXES) and not i.lower().endswith(".zip")]
    rest = [i for i in inputs if i not in tars]
    failed = _load(store, tars, quiet=quiet, force=force, workers=workers) if tars else 0
    if not rest:
        return failed
    started = time.monotonic()

    def progress(line: str) -> None:
        typer.echo(f"trial2fhir: {line} ({time.monotonic() - started:.0f} s)", err=True)

    try:
        summary = load_inputs(store, rest, jobs=workers, progress=None if quiet else progress)
    except (UsageError, ValueError, OSError) as error:
        raise _fail(str(error), EXIT_USAGE) from None
    line = f"loaded {summary.records} record(s), {summary.failed} failed, in {time.monotonic() - started:.1f} s"
    _print_load(line, summary.outcomes, summary.failures, quiet)
    if summary.failed > len(summary.failures):
        typer.echo(f"trial2fhir: error: {summary.failed - len(summary.failures)} more failed record(s)", err=True)
    return failed + summary.failed


def _run(settings: Any) -> None:
    import uvicorn

    if settings.workers > 1:
        # Worker processes build their own app from the environment: pass the effective settings on.
        for name, value in settings.model_dump().items():
            if value is None:
                continue
            text = ",".join(value) if isinstance(value, list) else str(value)
            os.environ[f"TRIAL2FHIR_{name.upper()}"] = text
        uvicorn.run(
            "adapter.server.app:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            proxy_headers=True,
        )
        return
    from adapter.server.app import create_app

    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level, proxy_headers=True
    )
