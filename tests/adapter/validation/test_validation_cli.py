"""``validate_command``: output per input, summary, exit codes 0/1/2."""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from adapter.validation.cli import validate_command

GOOD = {
    "resourceType": "Organization",
    "id": "o1",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Org</div>'},
    "name": "ACME",
}


def run(
    paths: list[str], version: str = "4.0", summary: bool = False, profile: str | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = validate_command(paths, version, summary, profile, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_clean_file_exit_0_and_operation_outcome(tmp_path: Path) -> None:
    path = tmp_path / "org.json"
    path.write_bytes(orjson.dumps(GOOD))
    code, out, _ = run([str(path)])
    assert code == 0
    assert orjson.loads(out)["issue"][0]["severity"] == "information"


def test_errors_exit_1_and_summary(tmp_path: Path) -> None:
    path = tmp_path / "org.json"
    path.write_bytes(orjson.dumps({**GOOD, "active": "yes"}))
    code, out, _ = run([str(path)], summary=True)
    assert code == 1
    assert out.splitlines()[0] == f"{path}: 1 error(s), 0 warning(s)"
    assert "[structure] Organization.active" in out


def test_directory_gives_a_bundle_of_outcomes(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(orjson.dumps(GOOD))
    (tmp_path / "b.ndjson").write_bytes(orjson.dumps(GOOD) + b"\n" + orjson.dumps({**GOOD, "name": ""}) + b"\n")
    (tmp_path / "ignored.txt").write_text("not an input")
    code, out, _ = run([str(tmp_path)])
    bundle = orjson.loads(out)
    assert code == 1
    assert bundle["resourceType"] == "Bundle"
    assert [e["fullUrl"].rsplit("/", 1)[-1] for e in bundle["entry"]] == ["a.json", "b.ndjson"]
    assert bundle["entry"][1]["resource"]["issue"][0]["location"] == ["line 2"]


def test_unreadable_and_usage_errors_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": ')
    assert run([str(broken)])[0] == 2
    code, _, err = run([str(tmp_path / "missing.json")])
    assert code == 2 and "no such file" in err
    assert run([str(broken)], version="3.0")[0] == 2
    assert run([str(broken)], profile="other")[0] == 2
    assert run([])[0] == 2


def test_profile_flag(tmp_path: Path) -> None:
    study = {
        "resourceType": "ResearchStudy",
        "text": GOOD["text"],
        "identifier": [{"value": "NCT01234567"}],
        "title": "T",
        "status": "active",
    }
    path = tmp_path / "study.json"
    path.write_bytes(orjson.dumps(study))
    assert run([str(path)])[0] == 0
    code, out, _ = run([str(path)], summary=True, profile="trial2fhir")
    assert code == 1
    assert "eligibility Group" in out
