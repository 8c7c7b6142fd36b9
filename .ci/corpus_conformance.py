"""Convert the whole shared corpus in both FHIR versions, validate it, and run the independent checker.

Usage: python .ci/corpus_conformance.py [--corpus ../shared/corpus] [--out DIR] [--versions 4.0,5.0]
                                        [--shards N] [--sample N]

Every record is converted and every distinct resource is validated by trial2fhir's own validator
(all layers, FHIRPath invariants included; the mutation suite shows it catches everything the
checker catches).  The independent checker then runs on the records of a fixed sample: 1 in
``--sample`` ClinicalTrials.gov studies, chosen by a hash of the study id, plus every WHO ICTRP
record and every fixture.  ``--sample 1`` (the default) checks everything; CI uses 6, because the
checker needs about 0.1-0.25 CPU-s per ResearchStudy and the whole corpus in both versions takes
25-50 CPU-minutes, more than CI's time limit on a 2-core machine.  The same machine runs up to
2.5x slower on some days (a whole CI run with 1 in 4 took 16 minutes on one day and 30 on another),
so the whole CI run is kept to about 10 minutes on a fast day.

Resources go to NDJSON shards checked in parallel, each once (an Organization shared by many
trials has the same id and content everywhere).  Bundle-level rules (references resolve, no
duplicate fullUrl) are checked on the Bundles of the fixtures, which the checker reads whole, and
on every corpus Bundle by tests/test_corpus_references.py.

Fails (exit 1) when any record raises or is rejected, when trial2fhir's validator finds an error,
or when the checker reports a single error.  Prints the counts the issue tracker asks for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson

from adapter.errors import Trial2FhirError
from adapter.pipeline import convert_bytes
from adapter.serialize import to_ndjson_line

FOLDERS = ("ctgov-v2-json", "ctgov-xml", "who-ictrp-xml")


def convert_corpus(
    corpus: Path, fixtures: Path, out: Path, version: str, shards: int, sample: int
) -> tuple[Counter[str], list[str], float]:
    counts: Counter[str] = Counter()
    failures: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    seen: set[tuple[str, str]] = set()
    sampled: set[tuple[str, str]] = set()
    everything = [(out / f"all-{n}.ndjson").open("wb") for n in range(VALIDATION_CHUNKS)]
    sinks = [(out / f"resources-{n}.ndjson").open("wb") for n in range(shards)]
    started = time.perf_counter()
    try:
        paths = [p for folder in FOLDERS for p in sorted((corpus / folder).glob("*"))]
        for path in paths:
            counts["files"] += 1
            try:
                for result in convert_bytes(path.read_bytes(), str(path), version):
                    counts["records"] += 1
                    if result.error is not None:
                        failures.append(f"{result.locator}: {result.error}")
                        continue
                    counts["converted"] += 1
                    counts["resources"] += len(result.resources)
                    in_sample = path.parent.name == "who-ictrp-xml" or _in_sample(result.record_id, sample)
                    counts["sampled records"] += in_sample
                    for resource in result.resources:
                        counts[f"resource:{resource['resourceType']}"] += 1
                        key = (resource["resourceType"], resource["id"])
                        # An Organization's content is a function of its id alone (mappings/organization.py):
                        # one copy is enough.  Other resources are written as often as they occur.
                        once = resource["resourceType"] == "Organization"
                        validate = not (once and key in seen)
                        check = in_sample and not (once and key in sampled)
                        if not (validate or check):
                            continue
                        line = to_ndjson_line(resource)
                        if validate:
                            seen.add(key)
                            counts["distinct"] += 1
                            everything[zlib.crc32(line) % VALIDATION_CHUNKS].write(line)
                        if check:
                            sampled.add(key)
                            counts["checked"] += 1
                            sinks[zlib.crc32(line) % shards].write(line)
            except Trial2FhirError as error:
                failures.append(f"{path}: {error}")
            except Exception as error:  # a crash is exactly what this run exists to find
                failures.append(f"{path}: EXCEPTION {type(error).__name__}: {error}")
    finally:
        for sink in [*everything, *sinks]:
            sink.close()
    with (out / "fixture-bundles.ndjson").open("wb") as sink:
        for path in sorted(fixtures.rglob("*")):
            if path.suffix in (".json", ".xml") and "golden" not in path.parts:
                for result in convert_bytes(path.read_bytes(), str(path), version):
                    if result.error is None:
                        sink.write(to_ndjson_line(result.bundle("transaction")))
    return counts, failures, time.perf_counter() - started


VALIDATION_CHUNKS = 8
"""Files the distinct resources are spread over, validated by a pool of processes."""


def _in_sample(record_id: str | None, sample: int) -> bool:
    return sample <= 1 or record_id is None or zlib.crc32(record_id.encode()) % sample == 0


def _validate_file(path: Path, version: str) -> tuple[int, list[str]]:
    from adapter.validation import resource_issues

    errors = []
    lines = path.read_bytes().splitlines()
    for number, line in enumerate(lines, 1):
        resource = orjson.loads(line)
        for issue in resource_issues(resource, version):
            if issue.severity in ("fatal", "error"):
                where = f"{path.name}#{number} {resource['resourceType']}/{resource['id']}"
                errors.append(f"{where}: {issue.expression or ''}: {issue.diagnostics}")
    return len(lines), errors


def validate_own(out: Path, version: str) -> tuple[int, list[str]]:
    """trial2fhir's validator (all layers) on every distinct resource, in parallel."""
    files = [*sorted(out.glob("all-*.ndjson")), out / "fixture-bundles.ndjson"]
    total, errors = 0, []
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for count, found in pool.map(_validate_file, files, [version] * len(files)):
            total += count
            errors.extend(found)
    return total, errors


def check(checker: Path, version: str, out: Path) -> tuple[int, Counter[str]]:
    """Run one checker per shard in parallel; return the worst exit status and the summed summary."""
    inputs = [*sorted(out.glob("resources-*.ndjson")), out / "fixture-bundles.ndjson"]
    procs = []
    for index, path in enumerate(inputs):
        report = out / f"report-{index}.json"
        command = [str(checker), "--fhir-version", version, "--json", str(report), "--max-lines", "30", str(path)]
        procs.append((subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), report))
    status = 0
    summary: Counter[str] = Counter()
    for proc, report in procs:
        stdout, stderr = proc.communicate()
        sys.stdout.write(stdout[-4000:])
        sys.stderr.write(stderr[-2000:])
        status = max(status, proc.returncode)
        if report.exists():
            summary.update(json.loads(report.read_text())["summary"])
    return status, summary


def main() -> int:
    parser = argparse.ArgumentParser()
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--corpus", type=Path, default=root.parent / "shared" / "corpus")
    parser.add_argument("--checker", type=Path, default=root.parent / "shared" / "conformance" / "check")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--versions", default="4.0,5.0")
    parser.add_argument("--shards", type=int, default=2, help="checker processes in parallel (about 2 GB each)")
    parser.add_argument(
        "--sample", type=int, default=1, help="independent checker on 1 in N CT.gov studies (all are validated)"
    )
    parser.add_argument("--no-check", action="store_true", help="convert and validate only")
    args = parser.parse_args()
    out_root = args.out or Path(tempfile.mkdtemp(prefix="trial2fhir-corpus-"))
    status = 0
    for version in args.versions.split(","):
        out = out_root / version
        counts, failures, seconds = convert_corpus(
            args.corpus, root / "fixtures", out, version, args.shards, args.sample
        )
        rate = counts["records"] / seconds if seconds else 0.0
        print(
            f"corpus FHIR {version}: {counts['records']} records, {counts['converted']} converted, "
            f"{len(failures)} failed, {counts['resources']} resources in {seconds:.1f} s ({rate:.0f} records/s)"
        )
        print("  " + ", ".join(f"{k[9:]}={v}" for k, v in sorted(counts.items()) if k.startswith("resource:")))
        for failure in failures[:20]:
            print(f"  FAILED {failure}")
        if failures:
            status = 1
        started = time.perf_counter()
        validated, errors = validate_own(out, version)
        print(
            f"  trial2fhir validator {version}: {validated} resources ({counts['distinct']} distinct corpus resources "
            f"and the fixture Bundles), {len(errors)} errors in {time.perf_counter() - started:.0f} s"
        )
        for error in errors[:20]:
            print(f"  INVALID {error}")
        if errors:
            status = 1
        if args.no_check:
            continue
        print(
            f"  independent checker: {counts['checked']} distinct resources of {counts['sampled records']} records"
            f" (1 in {args.sample} CT.gov studies, every WHO ICTRP record) and the fixture Bundles"
        )
        started = time.perf_counter()
        code, summary = check(args.checker, version, out)
        print(f"  conformance {version}: {dict(summary)} in {time.perf_counter() - started:.0f} s")
        if code != 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
