"""Convert the whole shared corpus in both FHIR versions and run the independent checker on it.

Usage: python .ci/corpus_conformance.py [--corpus ../shared/corpus] [--out DIR] [--versions 4.0,5.0]

Fails (exit 1) when any record raises, when any record that has an NCT id is rejected, or when
the checker reports a single error.  Prints the counts the issue tracker asks for.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from adapter.errors import Trial2FhirError
from adapter.pipeline import convert_bytes
from adapter.serialize import to_ndjson_line

FOLDERS = ("ctgov-v2-json", "ctgov-xml")


def convert_corpus(corpus: Path, out: Path, version: str) -> tuple[Counter[str], list[str], float]:
    counts: Counter[str] = Counter()
    failures: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with (out / "bundles.ndjson").open("wb") as sink:
        for folder in FOLDERS:
            for path in sorted((corpus / folder).glob("*")):
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
                        sink.write(to_ndjson_line(result.bundle("transaction")))
                except Trial2FhirError as error:
                    failures.append(f"{path}: {error}")
                except Exception as error:  # a crash is exactly what this run exists to find
                    failures.append(f"{path}: EXCEPTION {type(error).__name__}: {error}")
    return counts, failures, time.perf_counter() - started


def check(checker: Path, version: str, out: Path) -> tuple[int, dict]:
    report = out / "report.json"
    proc = subprocess.run(
        [str(checker), "--fhir-version", version, "--json", str(report), "--max-lines", "50", str(out / "bundles.ndjson")],
        capture_output=True,
        text=True,
    )
    sys.stdout.write(proc.stdout[-6000:])
    sys.stderr.write(proc.stderr[-3000:])
    summary = json.loads(report.read_text())["summary"] if report.exists() else {}
    return proc.returncode, summary


def main() -> int:
    parser = argparse.ArgumentParser()
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--corpus", type=Path, default=root.parent / "shared" / "corpus")
    parser.add_argument("--checker", type=Path, default=root.parent / "shared" / "conformance" / "check")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--versions", default="4.0,5.0")
    parser.add_argument("--no-check", action="store_true", help="convert only")
    args = parser.parse_args()
    out_root = args.out or Path(tempfile.mkdtemp(prefix="trial2fhir-corpus-"))
    status = 0
    for version in args.versions.split(","):
        out = out_root / version
        counts, failures, seconds = convert_corpus(args.corpus, out, version)
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
        if args.no_check:
            continue
        code, summary = check(args.checker, version, out)
        print(f"  conformance {version}: {summary}")
        if code != 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
