"""Crash safety: SIGKILL at any moment never leaves an export that looks complete, and --resume
finishes it byte for byte as an uninterrupted run would have written it."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import orjson
import pytest
from batch_helpers import cli, export_files, many_studies, mixed_inputs, start_cli, write_ndjson, write_zip

FAST_CHECKPOINTS = {"TRIAL2FHIR_CHECKPOINT_SECONDS": "0"}
"""A checkpoint after every task, so the crash points below fall between real checkpoints."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("resume")
    mixed, _ = mixed_inputs(root)
    lines = write_ndjson(root / "lines.ndjson", many_studies(150, start=1000))
    members = {f"z/NCT9{n:07d}.json": orjson.dumps(s) for n, s in enumerate(many_studies(100, start=2000), 2000)}
    archive = write_zip(root / "archive.zip", members)
    return [str(mixed), str(lines), str(archive)]


@pytest.fixture(scope="module")
def reference(inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference") / "out"
    proc = cli("convert", *inputs, "--out", str(out), "--jobs", "1", "--validate", "none")
    assert proc.returncode == 1, proc.stderr  # the mixed inputs hold failing records on purpose
    files = export_files(out)
    assert len(files) == 9  # 7 resource types, errors, manifest
    return files


class Status(int):
    """An exit status that shows the run's stderr when an assertion on it fails."""

    stderr = b""

    def __repr__(self) -> str:
        return f"{int(self)} (stderr: {self.stderr.decode(errors='replace')[-600:]!r})"


def convert(inputs: list[str], out: Path, *extra: str, env: dict[str, str] | None = None) -> Status:
    proc = cli("convert", *inputs, "--out", str(out), "--jobs", "2", "--validate", "none", "-q", *extra, env=env)
    status = Status(proc.returncode)
    status.stderr = proc.stderr
    return status


@pytest.mark.parametrize("point", ["checkpoint:1", "commit:1", "checkpoint:4", "commit:6", "publish:1", "publish:5"])
def test_killed_at_a_crash_point_then_resumed(
    point: str, inputs: list[str], reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert convert(inputs, out, env={**FAST_CHECKPOINTS, "TRIAL2FHIR_CRASH_AT": point}) == -signal.SIGKILL
    assert not (out / "manifest.json").exists()  # nothing claims to be complete
    # Without --resume the interrupted run is neither discarded nor silently continued.
    proc = cli("convert", *inputs, "--out", str(out), "--validate", "none")
    assert proc.returncode == 2 and b"--resume" in proc.stderr
    assert convert(inputs, out, "--resume") == 1
    assert export_files(out) == reference


def test_killed_after_publishing_before_keeping_state(
    inputs: list[str], reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert convert(inputs, out, env={"TRIAL2FHIR_CRASH_AT": "state"}) == -signal.SIGKILL
    assert export_files(out) == reference  # published: complete and correct already
    # The next plain run keeps the published state and reuses every study.
    proc = cli("convert", *inputs, "--out", str(out), "--jobs", "2", "--validate", "none")
    assert proc.returncode == 1
    assert b"0 added, 0 changed, 261 unchanged, 0 removed" in proc.stderr
    files, expected = export_files(out), dict(reference)
    manifest, expected_manifest = orjson.loads(files.pop("manifest.json")), orjson.loads(expected.pop("manifest.json"))
    del manifest["extension"]["trial2fhir"]["incremental"]
    assert (files, manifest) == (expected, expected_manifest)


def test_killed_while_replacing_a_previous_export(
    inputs: list[str], reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = write_ndjson(tmp_path / "first.ndjson", many_studies(30, start=5000))
    assert convert([str(first)], out) == 0
    assert (out / "manifest.json").exists()
    assert convert(inputs, out, env={"TRIAL2FHIR_CRASH_AT": "publish:3"}) == -signal.SIGKILL
    assert not (out / "manifest.json").exists()  # half replaced: the old manifest is gone first
    assert convert(inputs, out, "--resume") == 1
    files = export_files(out)
    manifest = orjson.loads(files.pop("manifest.json"))
    assert manifest["extension"]["trial2fhir"]["incremental"]["removed"] == 30
    files.pop("deleted/Bundle.ndjson")
    expected = dict(reference)
    expected.pop("manifest.json")
    assert files == expected


def test_random_sigkills_of_a_real_run(inputs: list[str], reference: dict[str, bytes], tmp_path: Path) -> None:
    out = tmp_path / "out"
    rng = random.Random(5)
    finished = False
    for attempt in range(4):
        args = ["convert", *inputs, "--out", str(out), "--jobs", "2", "--validate", "none", "-q"]
        proc = start_cli(*args, *(["--resume"] if attempt else []))
        time.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is not None:
            finished = True
            break
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, as a crash or the OOM killer would
        proc.wait()
        _assert_no_orphans(proc.pid)
        if (out / "manifest.json").exists():
            # The kill came after the manifest was written (the run was finishing up): a manifest
            # promises a complete export, so it must already equal the uninterrupted run.
            assert export_files(out) == reference
            finished = True
            break
    if not finished:
        assert convert(inputs, out, "--resume") == 1
    assert export_files(out) == reference


def _assert_no_orphans(session: int) -> None:
    """Workers, the fork server and the resource tracker all go away with the killed parent."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(session, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail("processes of the killed run are still alive")


def test_resume_refuses_changed_inputs_or_options(inputs: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert convert(inputs, out, env={**FAST_CHECKPOINTS, "TRIAL2FHIR_CRASH_AT": "commit:3"}) == -signal.SIGKILL
    proc = cli("convert", *inputs, "--out", str(out), "--resume", "--fhir-version", "5.0", "--validate", "none")
    assert proc.returncode == 2 and b"fhirVersion" in proc.stderr
    proc = cli("convert", *inputs[:2], "--out", str(out), "--resume", "--validate", "none")
    assert proc.returncode == 2 and b"inputs" in proc.stderr
    # A task already done changes: the plan digest no longer matches.
    lines = Path(inputs[0]) / "c_lines.ndjson"
    original = lines.read_bytes()
    try:
        lines.write_bytes(original + b"\n")
        proc = cli("convert", *inputs, "--out", str(out), "--resume", "--validate", "none")
        assert proc.returncode == 2 and b"inputs changed" in proc.stderr
    finally:
        lines.write_bytes(original)
        os.utime(lines, ns=(0, 0))
