"""Validation speed on the converted corpus: resources per second (a benchmark, not a test).

Converts registry records with trial2fhir's own pipeline (not timed), then validates every
resulting Bundle with ``adapter.validation`` (timed) and reports resources per second and the
issues found, per FHIR version.  Definitions are loaded (and, on a fresh machine, downloaded and
compiled) before the clock starts, as in a long-running process.

    python bench/validate_bench.py                      # ../shared/corpus, 200 records per format
    python bench/validate_bench.py --limit 0            # the whole corpus
    python bench/validate_bench.py --source fixtures/ctgov-v2-json --fhir-version 5.0
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapter.pipeline import convert_bytes  # noqa: E402
from adapter.validation import resource_issues  # noqa: E402
from adapter.validation.definitions import load_definitions  # noqa: E402

DEFAULT_SOURCES = ["ctgov-v2-json", "ctgov-xml", "who-ictrp-xml"]


def _files(sources: list[Path], limit: int) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        found = sorted(p for p in source.rglob("*") if p.suffix in (".json", ".xml")) if source.is_dir() else [source]
        files += found[:limit] if limit else found
    return files


def _bundles(files: list[Path], version: str) -> list[dict[str, Any]]:
    bundles = []
    for path in files:
        try:
            for converted in convert_bytes(path.read_bytes(), str(path), version):
                if converted.error is None:
                    bundles.append(converted.bundle())
        except Exception as error:  # an unreadable corpus file is the reader's business, not this benchmark's
            print(f"skipped {path.name}: {error}", file=sys.stderr)
    return bundles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", type=Path, help="file or directory (repeatable)")
    parser.add_argument("--limit", type=int, default=200, help="records per source directory (0: all)")
    parser.add_argument("--fhir-version", choices=["4.0", "5.0"], action="append")
    parser.add_argument("--profile", choices=["trial2fhir"], default=None)
    args = parser.parse_args()
    corpus = REPO.parent / "shared" / "corpus"
    sources = args.source or [corpus / name for name in DEFAULT_SOURCES if (corpus / name).is_dir()]
    if not sources:
        sources = [REPO / "fixtures" / "ctgov-v2-json", REPO / "fixtures" / "ctgov-xml"]
    files = _files(sources, args.limit)
    for version in args.fhir_version or ["4.0", "5.0"]:
        load_definitions(version)
        bundles = _bundles(files, version)
        resources = sum(1 + len(b.get("entry", [])) for b in bundles)
        counts: collections.Counter[str] = collections.Counter()
        examples: dict[str, str] = {}
        start = time.perf_counter()
        for bundle in bundles:
            for issue in resource_issues(bundle, version, profile=args.profile):
                if issue.severity in ("fatal", "error", "warning"):
                    key = f"{issue.severity} {issue.diagnostics[:90]}"
                    counts[key] += 1
                    examples.setdefault(key, f"{bundle.get('id')}: {issue.expression}")
        elapsed = time.perf_counter() - start
        print(
            f"FHIR {version}: {len(bundles)} Bundles, {resources} resources (Bundles included) "
            f"validated in {elapsed:.1f} s: {resources / elapsed:.0f} resources/s"
        )
        for key, count in counts.most_common(15):
            print(f"  {count:6d}  {key}  (e.g. {examples[key]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
