"""The trial2fhir command line, run as a real subprocess: exit codes, stdout, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures"
SEED = FIXTURES / "seed" / "NCT01854957.xml"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("trial2fhir")
    command = [exe] if exe else [sys.executable, "-c", "from adapter.cli import main; main()"]
    return subprocess.run([*command, *args], input=stdin, capture_output=True, timeout=120)


def test_convert_prints_one_r4_transaction_bundle():
    proc = run("convert", str(SEED), "--quiet")
    assert proc.returncode == 0, proc.stderr
    bundle = json.loads(proc.stdout)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    first = bundle["entry"][0]
    assert first["request"] == {"method": "PUT", "url": "ResearchStudy/nct01854957"}
    assert first["fullUrl"] == "http://localhost:8080/fhir/ResearchStudy/nct01854957"
    assert "arm" in first["resource"]  # R4 by default


def test_convert_r5_collection_with_base_url_from_stdin():
    proc = run(
        "convert",
        "-",
        "--fhir-version",
        "5.0",
        "--bundle",
        "collection",
        "--base-url",
        "https://fhir.example.org/R5/",
        "-q",
        stdin=SEED.read_bytes(),
    )
    assert proc.returncode == 0, proc.stderr
    bundle = json.loads(proc.stdout)
    assert bundle["type"] == "collection"
    assert all("request" not in e for e in bundle["entry"])
    assert bundle["entry"][0]["fullUrl"] == "https://fhir.example.org/R5/ResearchStudy/nct01854957"
    assert "comparisonGroup" in bundle["entry"][0]["resource"]


def test_output_is_byte_identical_across_runs():
    assert run("convert", str(SEED), "-q").stdout == run("convert", str(SEED), "-q").stdout


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_xml_output_is_fhir_xml(version):
    proc = run("convert", str(SEED), "--format", "xml", "--fhir-version", version, "-q")
    assert proc.returncode == 0, proc.stderr
    root = etree.fromstring(proc.stdout)
    assert root.tag == "{http://hl7.org/fhir}Bundle"
    study = root.find("{http://hl7.org/fhir}entry/{http://hl7.org/fhir}resource/{http://hl7.org/fhir}ResearchStudy")
    assert study is not None
    assert study.find("{http://hl7.org/fhir}id").get("value") == "nct01854957"


def test_search_page_prints_ndjson_one_bundle_per_study():
    study = json.loads((FIXTURES / "seed" / "NCT01854957.json").read_text())
    page = json.dumps({"studies": [study, study]}).encode()
    proc = run("convert", "-", "-q", stdin=page)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["resourceType"] == "Bundle" for line in lines)


def test_warnings_go_to_stderr():
    proc = run("convert", str(SEED))
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["resourceType"] == "Bundle"
    for line in proc.stderr.decode().splitlines():
        assert line.startswith("trial2fhir: warning: ")


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["convert", "/nonexistent/file.json"], None, 2, "cannot read /nonexistent/file.json"),
        (["convert", "-"], b"not a record", 1, "not a registry record"),
        (["convert", "-"], b'{"resourceType": "Patient"}', 1, "FHIR Patient resource"),
        (["convert", "-"], b"{truncated", 1, "invalid JSON"),
        (["convert", "-"], b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><clinical_study/>', 1, ""),
        (["convert", "-"], b'{"protocolSection": {"identificationModule": {"briefTitle": "No id"}}}', 1, "No id"),
        (["convert", str(SEED), "--fhir-version", "3.0"], None, 2, ""),
    ],
)
def test_bad_input_gives_one_line_and_a_documented_exit_code(args, stdin, code, message):
    proc = run(*args, stdin=stdin)
    assert proc.returncode == code
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert proc.stdout == b""
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trial2fhir: error: ")
    assert message in err
