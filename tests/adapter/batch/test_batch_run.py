"""A batch end to end: every record accounted for, Bulk Data layout, same bytes for any --jobs."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from batch_helpers import cli, export_files, many_studies, mixed_inputs, ndjson, tiny_study, write_ndjson

from adapter.batch import validate as batch_validate
from adapter.batch.runner import BatchOptions, run_batch


def run(inputs: list[Path], out: Path, **options: object) -> object:
    return run_batch(BatchOptions(inputs=[str(i) for i in inputs], out=out, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    root = tmp_path_factory.mktemp("mixed")
    inputs, failures = mixed_inputs(root)
    proc = cli("convert", str(inputs), "--out", str(root / "out"), "--jobs", "2", "--validate", "none")
    assert proc.returncode == 1, proc.stderr  # some records fail, on purpose
    return inputs, failures, root / "out"


def test_every_record_is_accounted_for_once(mixed: tuple[Path, dict[str, str], Path]) -> None:
    _, failures, out = mixed
    manifest = json.loads((out / "manifest.json").read_text())
    details = manifest["extension"]["trial2fhir"]
    records = details["records"]
    assert records == {"read": 16, "converted": 11, "failed": 5}
    assert records["read"] == records["converted"] + records["failed"]
    assert sum(details["failedByReason"].values()) == records["failed"]
    errors = ndjson(out / "errors" / "OperationOutcome.ndjson")
    assert manifest["error"] == [{"type": "OperationOutcome", "url": "errors/OperationOutcome.ndjson", "count": 5}]
    found = {e["issue"][0]["details"]["text"]: e["issue"][0]["code"] for e in errors}
    assert found == failures
    for outcome in errors:
        issue = outcome["issue"][0]
        assert outcome["resourceType"] == "OperationOutcome" and issue["severity"] == "error"
        assert issue["diagnostics"].startswith(issue["details"]["text"] + ": ")
    # Every converted study once, and every file's count equals its lines.
    studies = ndjson(out / "ResearchStudy.ndjson")
    assert len(studies) == len({s["id"] for s in studies}) == 11
    for item in manifest["output"]:
        lines = ndjson(out / item["url"])
        assert len(lines) == item["count"]
        assert {r["resourceType"] for r in lines} == {item["type"]}
        if item["type"] != "Organization":
            assert details["resources"][item["type"]] == item["count"]
    organizations = ndjson(out / "Organization.ndjson")
    assert len({o["id"] for o in organizations}) == len(organizations)


def test_manifest_shape(mixed: tuple[Path, dict[str, str], Path]) -> None:
    out = mixed[2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["transactionTime"] == "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH
    assert manifest["requiresAccessToken"] is False
    assert [o["type"] for o in manifest["output"]] == [
        "ResearchStudy",
        "PlanDefinition",
        "Group",
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
    ]
    assert all(o["url"] == f"{o['type']}.ndjson" for o in manifest["output"])


def test_references_resolve_within_the_export(mixed: tuple[Path, dict[str, str], Path]) -> None:
    out = mixed[2]
    present = {f"{r['resourceType']}/{r['id']}" for p in out.glob("*.ndjson") for r in ndjson(p)}
    dangling = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str) and not ref.startswith(("#", "http", "urn:")) and ref not in present:
                dangling.add(ref)
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in out.glob("*.ndjson"):
        for resource in ndjson(path):
            walk(resource)
    assert not dangling


def test_output_is_byte_identical_for_any_jobs(mixed: tuple[Path, dict[str, str], Path], tmp_path: Path) -> None:
    inputs = mixed[0]
    extra = write_ndjson(tmp_path / "more.ndjson", many_studies(70, start=500))
    expected = None
    for jobs in (1, 2, 3):
        out = tmp_path / f"out{jobs}"
        proc = cli("convert", str(inputs), str(extra), "--out", str(out), "--jobs", str(jobs), "--validate", "none")
        assert proc.returncode == 1, proc.stderr
        files = export_files(out)
        if expected is None:
            expected = files
        assert files == expected, f"--jobs {jobs} differs"
    assert expected is not None and "ResearchStudy.ndjson" in expected


def test_bundles_format_one_transaction_per_record(mixed: tuple[Path, dict[str, str], Path], tmp_path: Path) -> None:
    inputs, _, ndjson_out = mixed
    out = tmp_path / "bundles"
    summary = run([inputs], out, output_format="bundles", jobs=2, validate=False)
    assert summary.converted == 11 and summary.failed == 5  # type: ignore[attr-defined]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["output"] == [{"type": "Bundle", "url": "Bundle.ndjson", "count": 11}]
    bundles = ndjson(out / "Bundle.ndjson")
    assert all(b["type"] == "transaction" for b in bundles)
    studies = [b["entry"][0]["resource"] for b in bundles]
    assert [s["id"] for s in studies] == [s["id"] for s in ndjson(ndjson_out / "ResearchStudy.ndjson")]
    # The same resources as the NDJSON layout (organizations repeat per Bundle there).
    in_bundles = {orjson.dumps(e["resource"]) for b in bundles for e in b["entry"]}
    in_files = {orjson.dumps(r) for p in ndjson_out.glob("*.ndjson") for r in ndjson(p)}
    assert in_bundles == in_files
    assert (out / "errors" / "OperationOutcome.ndjson").read_bytes() == (
        ndjson_out / "errors" / "OperationOutcome.ndjson"
    ).read_bytes()


def test_organization_spelling_most_records_use_wins_whatever_the_order(tmp_path: Path) -> None:
    spellings = ["Acme Corp", "ACME Corp", "ACME Corp", "Beta Inc", "BETA INC"]
    studies = [tiny_study(n, sponsor) for n, sponsor in enumerate(spellings)]
    names = {}
    for order in ("forward", "reverse"):
        chosen = studies if order == "forward" else list(reversed(studies))
        source = write_ndjson(tmp_path / f"{order}.ndjson", chosen)
        out = tmp_path / order
        run([source], out, jobs=1, validate=False)
        names[order] = sorted(o["name"] for o in ndjson(out / "Organization.ndjson"))
    # ACME: 2 records against 1. Beta: a tie, broken by byte order ("BETA INC" < "Beta Inc").
    assert names["forward"] == names["reverse"] == ["ACME Corp", "BETA INC"]


def test_validation_failure_writes_nothing_of_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mixed: tuple[Path, dict[str, str], Path]
) -> None:
    def flag_groups(resource: dict[str, object]) -> list[dict[str, object]]:
        if resource["resourceType"] == "Group":
            return [{"severity": "error", "code": "value", "diagnostics": "made up", "expression": ["Group.type"]}]
        return []

    monkeypatch.setattr(
        batch_validate, "load_validator", lambda version, invariants=True: ("test validator", flag_groups)
    )
    source = write_ndjson(tmp_path / "two.ndjson", many_studies(2, start=900))
    out = tmp_path / "out"
    summary = run([source], out, jobs=1, validate=True)
    assert (summary.converted, summary.failed, summary.failed_by) == (0, 2, {"invalid": 2})  # type: ignore[attr-defined]
    assert not (out / "ResearchStudy.ndjson").exists()
    outcome = ndjson(out / "errors" / "OperationOutcome.ndjson")[0]
    assert outcome["issue"][0]["code"] == "invalid"
    assert outcome["issue"][0]["details"]["text"] == f"{source}#1"
    assert outcome["issue"][1]["diagnostics"] == "Group/nct90000900-eligibility: made up"
    assert outcome["issue"][1]["expression"] == ["Group.type"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["output"] == [] and manifest["extension"]["trial2fhir"]["validation"] == "test validator"


def test_validate_none_writes_the_same_bytes_as_full(mixed: tuple[Path, dict[str, str], Path], tmp_path: Path) -> None:
    inputs, _, none_out = mixed
    out = tmp_path / "full"
    proc = cli("convert", str(inputs), "--out", str(out), "--validate", "full", "--jobs", "2")
    assert proc.returncode == 1, proc.stderr
    full, none = export_files(out), export_files(none_out)
    assert json.loads(full.pop("manifest.json"))["extension"]["trial2fhir"]["validation"] != "none"
    none.pop("manifest.json")
    assert full == none  # the fixtures are valid FHIR, so validation removes nothing


def test_validate_structure_skips_invariants_and_writes_the_same_bytes(
    mixed: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    inputs, _, none_out = mixed
    out = tmp_path / "structure"
    proc = cli("convert", str(inputs), "--out", str(out), "--validate", "structure", "--jobs", "2")
    assert proc.returncode == 1, proc.stderr  # the fixture set holds one broken record
    structure, none = export_files(out), export_files(none_out)
    name = json.loads(structure.pop("manifest.json"))["extension"]["trial2fhir"]["validation"]
    assert "structure only" in name
    none.pop("manifest.json")
    assert structure == none


def test_fail_fast_stops_and_publishes_nothing(mixed: tuple[Path, dict[str, str], Path], tmp_path: Path) -> None:
    inputs = mixed[0]
    out = tmp_path / "ff"
    proc = cli("convert", str(inputs), "--out", str(out), "--fail-fast", "--validate", "none", "--jobs", "2")
    assert proc.returncode == 1
    assert b"a_archive.zip!studies/bad.json" in proc.stderr and b"--fail-fast" in proc.stderr
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("*.ndjson"))


def test_exit_status(tmp_path: Path) -> None:
    good = write_ndjson(tmp_path / "good.ndjson", [tiny_study(1), tiny_study(2)])
    proc = cli("convert", str(good), "--out", str(tmp_path / "ok"), "--validate", "none")
    assert proc.returncode == 0, proc.stderr
    assert b"2 records read: 2 converted, 0 failed" in proc.stderr
    assert cli("convert", str(tmp_path / "missing"), "--out", str(tmp_path / "x")).returncode == 2
    assert cli("convert", str(good), "--out", str(tmp_path / "x"), "--format", "xml").returncode == 2
    assert cli("convert", str(good), "--out", str(tmp_path / "x"), "--validate", "some").returncode == 2
    assert cli("convert", str(good), "--format", "bundles").returncode == 2
    assert cli("convert", str(good), "--jobs", "2").returncode == 2
    assert cli("convert", str(good), str(good)).returncode == 2
    assert cli("convert", str(good), "--out", str(tmp_path / "x"), "--jobs", "0").returncode == 2
    quiet = cli("convert", str(good), "--out", str(tmp_path / "q"), "--quiet", "--validate", "none")
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_stdin_ndjson(tmp_path: Path) -> None:
    data = b"".join(orjson.dumps(tiny_study(n)) + b"\n" for n in range(5)) + b"{broken\n"
    out = tmp_path / "stdin"
    proc = cli("convert", "-", "--out", str(out), "--validate", "none", "-q", stdin=data)
    assert proc.returncode == 1
    locators = [e["issue"][0]["details"]["text"] for e in ndjson(out / "errors" / "OperationOutcome.ndjson")]
    assert locators == ["<stdin>#6"]
    assert len(ndjson(out / "ResearchStudy.ndjson")) == 5
    assert cli("convert", "-", "--out", str(out), "--resume", stdin=data).returncode == 2


def test_unusable_project_validator_falls_back_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fhir_version: str, invariants: bool = True) -> object:
        return lambda resource: [{"severity": "fatal", "diagnostics": "definitions cannot be loaded"}]

    monkeypatch.setattr(batch_validate, "_project_validator", broken)
    batch_validate.load_validator.cache_clear()
    try:
        name, validate = batch_validate.load_validator("4.0")
        assert name.startswith("fhir.resources R4B models") and "definitions cannot be loaded" in name
        assert validate({"resourceType": "Organization", "id": "x", "name": "X"}) == []
        assert validate({"resourceType": "Organization", "id": "x", "active": [1, 2]})[0]["code"] == "structure"
    finally:
        batch_validate.load_validator.cache_clear()
