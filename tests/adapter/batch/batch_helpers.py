"""Inputs and runners shared by the batch tests: real fixture records, re-identified to make many."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "fixtures"
SEED_XML = FIXTURES / "seed" / "NCT01854957.xml"
EPOCH = "1700000000"
"""SOURCE_DATE_EPOCH for every run, so manifests compare byte for byte too."""


def v2_studies() -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes()) for p in sorted((FIXTURES / "ctgov-v2-json").glob("*.json"))]


def reidentify(study: dict[str, Any], number: int) -> dict[str, Any]:
    """A copy of ``study`` under the NCT id ``NCT9xxxxxxx`` (another study, as far as ids go)."""
    copy = orjson.loads(orjson.dumps(study))
    copy["protocolSection"]["identificationModule"]["nctId"] = f"NCT9{number:07d}"
    copy["protocolSection"]["identificationModule"].pop("nctIdAliases", None)
    return copy


def many_studies(count: int, start: int = 0) -> list[dict[str, Any]]:
    base = v2_studies()
    return [reidentify(base[i % len(base)], start + i) for i in range(count)]


def tiny_study(number: int, sponsor: str | None = None) -> dict[str, Any]:
    """The smallest record the v2 reader accepts (fast to convert), with its own sponsor by default."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": f"NCT9{number:07d}", "briefTitle": f"Tiny study {number}"},
            "sponsorCollaboratorsModule": {"leadSponsor": {"name": sponsor or f"Sponsor {number}"}},
        }
    }


def write_ndjson(path: Path, studies: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in studies))
    return path


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def mixed_inputs(root: Path) -> tuple[Path, dict[str, str]]:
    """A directory mixing every input kind, and the failures it must produce (locator -> issue code).

    16 records: 11 convert, 5 fail.
    """
    studies = many_studies(11, start=1)
    top = root / "inputs"
    members = {f"studies/NCT9{n:07d}.json": orjson.dumps(studies[n - 1]) for n in range(1, 6)}
    members["studies/bad.json"] = b"{not json"
    members["__MACOSX/studies/._NCT90000001.json"] = b"resource fork, skipped"
    write_zip(top / "a_archive.zip", {"studies/": b"", **members})
    page = {"studies": [studies[5], {"protocolSection": {"identificationModule": {"briefTitle": "no id"}}}, studies[6]]}
    (top / "b_page.json").write_bytes(orjson.dumps(page, option=orjson.OPT_INDENT_2))
    lines = [
        orjson.dumps(studies[7]),
        orjson.dumps(studies[8]),
        b'{"protocolSection": {broken',
        b"",
        orjson.dumps(studies[9]),
    ]
    (top / "c_lines.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    (top / "d_xml").mkdir()
    shutil.copy(SEED_XML, top / "d_xml" / "NCT01854957.xml")
    (top / "e_notes.txt").write_text("not a registry record\n")
    (top / "f_dup.json").write_bytes(orjson.dumps(studies[0]))
    (top / ".hidden.json").write_text("skipped: hidden")
    failures = {
        f"{top}/a_archive.zip!studies/bad.json": "structure",
        f"{top}/b_page.json#studies[1]": "required",
        f"{top}/c_lines.ndjson#3": "structure",
        f"{top}/e_notes.txt": "structure",
        f"{top}/f_dup.json": "duplicate",
    }
    return top, failures


def _command() -> list[str]:
    exe = shutil.which("trial2fhir", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    return [exe] if exe else [sys.executable, "-c", "from adapter.cli import main; main()"]


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, **(env or {})}
    return subprocess.run([*_command(), *args], input=stdin, capture_output=True, timeout=timeout, env=full_env)


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, **(env or {})}
    return subprocess.Popen(
        [*_command(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env, start_new_session=True
    )


def export_files(out: Path) -> dict[str, bytes]:
    """Every file of an export (manifest included), without the private .trial2fhir state."""
    files = {}
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        if path.is_file() and not relative.startswith(".trial2fhir"):
            files[relative] = path.read_bytes()
    return files


def ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
