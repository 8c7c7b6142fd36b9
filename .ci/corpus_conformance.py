"""Convert the whole shared corpus in both FHIR versions and run the independent checker on it.

Usage: python .ci/corpus_conformance.py [--corpus ../shared/corpus] [--out DIR] [--versions 4.0,5.0] [--shards N]

Every resource is checked once: resources go to per-type NDJSON shards (an Organization shared
by many trials has the same id and content everywhere, so it is checked once), and the checker
runs on the shards in parallel.  Bundle-level rules (references resolve, no duplicate fullUrl)
are checked on the Bundles of the fixtures, which the checker reads whole, and on every corpus
Bundle by tests/test_corpus_references.py.

Fails (exit 1) when any record raises or is rejected, or when the checker reports a single error.
Prints the counts the issue tracker asks for.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

from adapter.errors import Trial2FhirError
from adapter.pipeline import convert_bytes
from adapter.serialize import to_ndjson_line

FOLDERS = ("ctgov-v2-json", "ctgov-xml", "who-ictrp-xml")


def convert_corpus(
    corpus: Path, fixtures: Path, out: Path, version: str, shards: int
) -> tuple[Counter[str], list[str], float]:
    counts: Counter[str] = Counter()
    failures: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    seen: set[tuple[str, str]] = set()
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
                    for resource in result.resources:
                        counts[f"resource:{resource['resourceType']}"] += 1
                        line = to_ndjson_line(resource)
                        key = (resource["resourceType"], resource["id"])
                        if key in seen and resource["resourceType"] == "Organization":
                            continue  # content is a function of the id alone (mappings/organization.py)
                        seen.add(key)
                        sinks[zlib.crc32(line) % shards].write(line)
            except Trial2FhirError as error:
                failures.append(f"{path}: {error}")
            except Exception as error:  # a crash is exactly what this run exists to find
                failures.append(f"{path}: EXCEPTION {type(error).__name__}: {error}")
    finally:
        for sink in sinks:
            sink.close()
    with (out / "fixture-bundles.ndjson").open("wb") as sink:
        for path in sorted(fixtures.rglob("*")):
            if path.suffix in (".json", ".xml") and "golden" not in path.parts:
                for result in convert_bytes(path.read_bytes(), str(path), version):
                    if result.error is None:
                        sink.write(to_ndjson_line(result.bundle("transaction")))
    counts["checked"] = len(seen)
    return counts, failures, time.perf_counter() - started


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
    parser.add_argument("--no-check", action="store_true", help="convert only")
    args = parser.parse_args()
    out_root = args.out or Path(tempfile.mkdtemp(prefix="trial2fhir-corpus-"))
    status = 0
    for version in args.versions.split(","):
        out = out_root / version
        counts, failures, seconds = convert_corpus(args.corpus, root / "fixtures", out, version, args.shards)
        rate = counts["records"] / seconds if seconds else 0.0
        print(
            f"corpus FHIR {version}: {counts['records']} records, {counts['converted']} converted, "
            f"{len(failures)} failed, {counts['resources']} resources in {seconds:.1f} s ({rate:.0f} records/s)"
        )
        print("  " + ", ".join(f"{k[9:]}={v}" for k, v in sorted(counts.items()) if k.startswith("resource:")))
        print(f"  {counts['checked']} distinct resources to check")
        for failure in failures[:20]:
            print(f"  FAILED {failure}")
        if failures:
            status = 1
        if args.no_check:
            continue
        started = time.perf_counter()
        code, summary = check(args.checker, version, out)
        print(f"  conformance {version}: {dict(summary)} in {time.perf_counter() - started:.0f} s")
        if code != 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
