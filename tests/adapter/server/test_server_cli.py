"""``trial2fhir serve`` and ``trial2fhir load`` as real subprocesses (the README's Quick start path)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from pg_support import PG_URL, pg_reachable
from server_helpers import REPO

FIXTURES = REPO / "fixtures"


def command() -> list[str]:
    exe = shutil.which("trial2fhir", path=str(Path(sys.executable).parent)) or shutil.which("trial2fhir")
    return [exe] if exe else [sys.executable, "-c", "from adapter.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRIAL2FHIR_")}


def run_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *args], capture_output=True, text=True, env=clean_env(), timeout=timeout, check=False
    )


def serve(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], list[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [*command(), "serve", "--port", str(port), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or clean_env(),
    )
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "Uvicorn running" in line or "Application startup complete" in line:
            return process, lines, url
    process.kill()
    raise AssertionError("server did not start:\n" + "\n".join(lines))


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_serve_with_defaults_preloads_the_fixtures_and_reuses_the_database(tmp_path: Path) -> None:
    (tmp_path / "fixtures").symlink_to(FIXTURES, target_is_directory=True)
    process, lines, url = serve(tmp_path)
    try:
        assert f"FHIR R4 base: http://127.0.0.1:{url.rsplit(':', 1)[1]}/fhir/R4" in lines
        assert any(line.startswith("FHIR R5 base:") for line in lines)
        assert any("loaded" in line and "record(s)" in line for line in lines)
        response = httpx.get(
            f"{url}/fhir/R4/ResearchStudy",
            params={"identifier": "NCT01854957"},
            headers={"Accept": "application/fhir+json"},
        )
        assert response.status_code == 200
        assert [e["resource"]["id"] for e in response.json()["entry"]] == ["nct01854957"]
    finally:
        stop(process)
    assert (tmp_path / "trial2fhir.sqlite3").is_file(), "the default database is a file in the working directory"
    process, lines, url = serve(tmp_path)
    try:
        assert any("0 record(s)" in line and "already loaded" in line for line in lines), lines
        assert httpx.get(f"{url}/fhir/R5/ResearchStudy/nct01854957").status_code == 200
    finally:
        stop(process)


def test_load_then_serve_with_environment_settings(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/loaded.sqlite3"
    loaded = run_cli("load", str(FIXTURES / "ctgov-v2-json"), "--db", db, "--workers", "1", timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 12 record(s)" in loaded.stderr
    env = clean_env() | {"TRIAL2FHIR_DB": db, "TRIAL2FHIR_WRITE_TOKENS": "tok1, tok2"}
    process, _, url = serve(tmp_path, "--no-fixtures", env=env)
    try:
        assert httpx.get(f"{url}/fhir/R4/ResearchStudy", params={"_summary": "count"}).json()["total"] == 12
        written = httpx.put(
            f"{url}/fhir/R4/Organization/cli",
            json={"resourceType": "Organization", "id": "cli", "name": "CLI"},
            headers={"Authorization": "Bearer tok2"},
        )
        assert written.status_code == 201
    finally:
        stop(process)


def test_load_reports_failures_and_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope", encoding="utf-8")
    db = f"sqlite:///{tmp_path}/x.sqlite3"
    failed = run_cli("load", str(tmp_path / "bad.json"), "--db", db)
    assert failed.returncode == 1 and "trial2fhir: error:" in failed.stderr and "Traceback" not in failed.stderr
    missing = run_cli("load", str(tmp_path / "none.json"), "--db", db)
    assert missing.returncode == 2 and "none.json" in missing.stderr
    bad_db = run_cli("load", str(tmp_path / "bad.json"), "--db", "sqlite:relative")
    assert bad_db.returncode == 2 and "cannot open the database" in bad_db.stderr
    unreachable = run_cli("load", str(tmp_path / "bad.json"), "--db", "postgresql://nobody:secret@127.0.0.1:1/none")
    assert unreachable.returncode == 2 and "secret" not in unreachable.stderr


def test_two_server_processes_share_one_postgresql_database(tmp_path: Path) -> None:
    if not pg_reachable():
        pytest.skip("PostgreSQL is not reachable")
    import uuid

    db = f"{PG_URL}?schema=t2f_cli_{uuid.uuid4().hex[:10]}"
    env = clean_env() | {"TRIAL2FHIR_WRITE_TOKENS": "tok"}
    first, _, url_a = serve(tmp_path, "--db", db, "--load", str(FIXTURES / "seed" / "NCT01854957.json"), env=env)
    second, lines, url_b = serve(tmp_path, "--db", db, "--load", str(FIXTURES / "seed" / "NCT01854957.json"), env=env)
    try:
        assert any("already loaded" in line for line in lines)
        body = {"resourceType": "Organization", "id": "shared", "name": "written via A"}
        assert (
            httpx.put(
                f"{url_a}/fhir/R4/Organization/shared", json=body, headers={"Authorization": "Bearer tok"}
            ).status_code
            == 201
        )
        seen = httpx.get(f"{url_b}/fhir/R4/Organization/shared")
        assert seen.status_code == 200 and seen.json()["name"] == "written via A"
        stale = httpx.put(
            f"{url_b}/fhir/R4/Organization/shared",
            json=dict(body, name="B"),
            headers={"Authorization": "Bearer tok", "If-Match": 'W/"0"'},
        )
        assert stale.status_code == 412
    finally:
        stop(first)
        stop(second)
        from adapter.store.postgres import PostgresStore

        cleanup = PostgresStore(db)
        cleanup.drop_schema()
        cleanup.close()


def test_load_streams_archives_and_export_directories(tmp_path: Path) -> None:
    import zipfile

    sources = sorted((FIXTURES / "ctgov-xml").glob("*.xml"))
    with zipfile.ZipFile(tmp_path / "records.zip", "w") as archive:
        for path in sources:
            archive.write(path, f"studies/{path.name}")
    export = tmp_path / "export"
    arguments = ["convert", str(FIXTURES / "ctgov-v2-json"), "--out", str(export), "--fhir-version", "5.0", "--quiet"]
    converted = run_cli(*arguments, "--jobs", "1", timeout=300)
    assert converted.returncode == 0, converted.stderr
    db = f"sqlite:///{tmp_path}/bulk.sqlite3"
    loaded = run_cli("load", str(tmp_path / "records.zip"), str(export), "--db", db, "--workers", "2", timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    manifest = orjson.loads((export / "manifest.json").read_bytes())
    studies = next(item["count"] for item in manifest["output"] if item["type"] == "ResearchStudy")
    # Studies: the zip's records (stored in both versions) and the export's (R5 only).
    assert f"loaded {len(sources) + studies} record(s), 0 failed" in loaded.stderr, loaded.stderr
    env = clean_env() | {"TRIAL2FHIR_DB": db}
    process, _, url = serve(tmp_path, "--no-fixtures", env=env)
    try:
        r4 = httpx.get(f"{url}/fhir/R4/ResearchStudy", params={"_summary": "count"}).json()["total"]
        r5 = httpx.get(f"{url}/fhir/R5/ResearchStudy", params={"_summary": "count"}).json()["total"]
        json_ids = {p.stem for p in (FIXTURES / "ctgov-v2-json").glob("*.json")}
        assert len(json_ids) == studies
        assert r4 == len(sources)
        assert r5 == len(json_ids | {p.stem for p in sources})
    finally:
        stop(process)
