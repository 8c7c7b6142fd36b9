"""Batch conversion benchmark: records/s, resources/s and peak memory, next to the floor.

Run from the repository root (the corpus must be at ../shared/corpus)::

    .venv/bin/python bench/batch_bench.py                      # everything below, ~30-60 min on 2 cores
    .venv/bin/python bench/batch_bench.py --skip-full --skip-synthetic   # the quick part
    .venv/bin/python bench/batch_bench.py --profile-only       # where the time goes per record

What it does (nothing is committed; inputs are generated under ``--work``, default a temp dir):

1. Builds ``corpus.zip``: the corpus's ClinicalTrials.gov records (API v2 JSON and legacy XML),
   cycled and re-identified (``NCT9xxxxxxx``) to ``--records`` studies (default 20,000), one
   member per study, like ``ctg-studies.json.zip``.
2. Floor: reads every member with the same streaming zip reader, parses it (orjson / lxml) and
   serialises the equivalent output (the study's converted resources, computed once beforehand)
   with orjson: the time no converter can beat.  Measured with 1 and 2 processes.
3. ``trial2fhir convert corpus.zip --out DIR`` end to end (read, map, validate, write NDJSON) as a
   subprocess, for R4 and R5, ``--jobs 1`` and ``2``, ``--validate none``, ``structure`` and
   ``full``; peak memory is the largest sum of the RSS of the run's processes (parent, fork
   server, workers), sampled every 0.2 s.
4. Synthetic archive of ``--synthetic`` studies (default 100,000; streamed into a zip, never
   held in memory) converted with ``--jobs 2 --validate none``: peak memory against step 3's.
5. A per-record profile of the stages: reader (incl. TrialRecord validation, also shown alone),
   each mapping, R4 conversion, serialisation, validation.
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
_NCT_JSON = re.compile(rb'"nctId"\s*:\s*"NCT\d{8}"')
_NCT_XML = re.compile(rb"<nct_id>NCT\d{8}</nct_id>")


# -- inputs --------------------------------------------------------------------------------------


FORMATS = {"json": "ctgov-v2-json/*.json", "xml": "ctgov-xml/*.xml"}


def corpus_records(formats: str = "json,xml") -> list[tuple[str, bytes]]:
    """The corpus's CT.gov records of ``formats`` (``json``: API v2, the current bulk download's
    format; ``xml``: legacy ``AllPublicXML``)."""
    files = [f for name in formats.split(",") for f in sorted(glob.glob(str(CORPUS / FORMATS[name])))]
    if not files:
        sys.exit(f"no corpus at {CORPUS}")
    return [(Path(f).suffix, Path(f).read_bytes()) for f in files]


def reidentified(records: list[tuple[str, bytes]], count: int) -> Iterator[tuple[str, bytes]]:
    """``count`` studies: corpus records in turn, each under a new NCT id (first id occurrence only)."""
    for n in range(count):
        suffix, data = records[n % len(records)]
        new_id = f"NCT9{n:07d}".encode()
        if suffix == ".json":
            data = _NCT_JSON.sub(b'"nctId":"' + new_id + b'"', data, count=1)
        else:
            data = _NCT_XML.sub(b"<nct_id>" + new_id + b"</nct_id>", data, count=1)
        yield f"studies/NCT9{n:07d}{suffix}", data


def build_zip(path: Path, count: int, records: list[tuple[str, bytes]]) -> Path:
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, data in reidentified(records, count):
            archive.writestr(name, data)
    tmp.rename(path)
    return path


# -- measuring a run -----------------------------------------------------------------------------


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_sample(root: int, cpu: dict[int, float]) -> tuple[int, int]:
    """(RSS of ``root``, RSS of every process in its session) in KiB, from /proc; records each
    process's CPU seconds (user + system) in ``cpu`` (the last sample before it exits counts)."""
    total = own = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[3]) != root and int(entry) != root:  # fields[3]: session id
                continue
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
            with open(f"/proc/{entry}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        rss = int(line.split()[1])
                        total += rss
                        if int(entry) == root:
                            own = rss
        except (OSError, IndexError, ValueError):
            continue
    return own, total


def run_convert(source: Path, out: Path, fhir_version: str, jobs: int, validate: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable, "-c", "from adapter.cli import main; main()", "convert", str(source), "--out", str(out),
        "--fhir-version", fhir_version, "--jobs", str(jobs), "--validate", validate, "--quiet",
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    peak_parent = peak_total = 0
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        own, total = _tree_sample(proc.pid, cpu)
        peak_parent, peak_total = max(peak_parent, own), max(peak_total, total)
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"convert failed ({proc.returncode}): {stderr}")
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    details = manifest["extension"]["trial2fhir"]
    written = sum(item["count"] for item in manifest["output"])
    return {
        "records": details["records"]["converted"],
        "failed": details["records"]["failed"],
        "resources": written,
        "seconds": elapsed,
        "peak_parent_mb": peak_parent / 1024,
        "peak_total_mb": peak_total / 1024,
        "cpu_s": sum(cpu.values()),
        "validation": details["validation"],
    }


# -- the floor -----------------------------------------------------------------------------------

_floor_outputs: dict[int, list[dict[str, Any]]] = {}
"""The converted resources of each corpus record; set before the pool forks, so workers share it."""


def _floor_chunk(job: tuple[str, list[Any], int]) -> int:
    """Read, parse and serialise one chunk of members; returns the bytes serialised."""
    from lxml import etree

    from adapter.batch.zipstream import read_member

    path, entries, first = job
    produced = 0
    with open(path, "rb") as f:
        for offset, entry in enumerate(entries):
            data = read_member(f, entry)
            if data[:1] == b"{":
                orjson.loads(data)
            else:
                etree.fromstring(data)
            resources = _floor_outputs[(first + offset) % len(_floor_outputs)]
            produced += sum(len(orjson.dumps(r)) for r in resources)
    return produced


def floor(source: Path, records: list[tuple[str, bytes]], fhir_version: str, jobs: int) -> dict[str, Any]:
    import multiprocessing

    from adapter.batch.zipstream import iter_entries
    from adapter.pipeline import convert_bytes

    _floor_outputs.clear()
    for index, (suffix, data) in enumerate(records):
        _floor_outputs[index] = [r for c in convert_bytes(data, f"x{suffix}", fhir_version) for r in c.resources]
    entries = [e for e in iter_entries(source) if not e.is_dir]
    chunks = [(str(source), entries[i : i + 500], i) for i in range(0, len(entries), 500)]
    if jobs == 1:
        started, cpu_started = time.perf_counter(), time.process_time()
        for chunk in chunks:
            _floor_chunk(chunk)
        return {
            "records": len(entries),
            "seconds": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu_started,
        }
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(abs, range(jobs * 4)))  # start the workers before the clock
            started = time.perf_counter()
            list(pool.map(_floor_chunk, chunks))
    return {"records": len(entries), "seconds": time.perf_counter() - started}


# -- profile -------------------------------------------------------------------------------------


def profile(records: list[tuple[str, bytes]], fhir_version: str) -> list[tuple[str, float]]:
    """CPU milliseconds per record for each stage, over the corpus once (after a warm-up pass)."""
    from adapter.batch.validate import load_validator
    from adapter.batch.worker import tune_gc
    from adapter.readers import read_items
    from adapter.record import TrialRecord
    from mappings import ids
    from mappings.group import to_fhir_group
    from mappings.location import to_fhir_locations
    from mappings.organization import to_fhir_organizations
    from mappings.plan_definition import to_fhir_plan_definition
    from mappings.practitioner import to_fhir_practitioner_roles, to_fhir_practitioners
    from mappings.r4 import to_r4
    from mappings.research_study import to_fhir_research_study

    totals: dict[str, float] = {}

    def timed(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        # CPU time of this process: the figures hold on a machine shared with other work.
        start = time.process_time()
        result = fn(*args)
        totals[stage] = totals.get(stage, 0.0) + time.process_time() - start
        return result

    from adapter.pipeline import convert_bytes

    validator = load_validator(fhir_version)[1]
    for suffix, data in records[:200]:  # warm-up: lazy code tables, caches
        list(convert_bytes(data, f"x{suffix}", fhir_version))
    # The workers' collector settings: without them, full collections over the corpus held in
    # memory here land on whichever stage is running and inflate it (seen: 136 ms in one call).
    thresholds = gc.get_threshold()
    tune_gc()
    every = max(1, len(records) // 300)  # validation is slow: timed on every n-th record
    count = sampled = 0
    for index, (suffix, data) in enumerate(records):
        items = timed("reader (parse + TrialRecord)", lambda d=data, s=suffix: list(read_items(d, f"x{s}")))
        for item in items:
            record = item.record
            if record is None:
                continue
            count += 1
            dumped = record.model_dump()
            timed("  of which TrialRecord validation", TrialRecord.model_validate, dumped)
            resources = [timed("map ResearchStudy", to_fhir_research_study, record)]
            if ids.has_protocol(record):
                resources.append(timed("map PlanDefinition", to_fhir_plan_definition, record))
            resources.append(timed("map Group", to_fhir_group, record))
            resources += timed("map Organization", to_fhir_organizations, record)
            resources += timed("map Location", to_fhir_locations, record)
            resources += timed("map Practitioner", to_fhir_practitioners, record)
            resources += timed("map PractitionerRole", to_fhir_practitioner_roles, record)
            if fhir_version == "4.0":
                # In place, as the pipeline does: the R5 set is not used again.
                resources = timed("R5 -> R4 conversion", lambda rs=resources: to_r4(rs, in_place=True))
            timed("serialise (orjson)", lambda rs=resources: [orjson.dumps(r) for r in rs])
            if index % every == 0:
                sampled += 1
                timed("validate, all resources (sampled)", lambda rs=resources: [validator(r) for r in rs])
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    return [(stage, seconds * 1000 / (sampled if "sampled" in stage else count)) for stage, seconds in totals.items()]


# -- loading into the store -------------------------------------------------------------------------

PG_URL = os.environ.get("TRIAL2FHIR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _store_urls(work: Path) -> list[tuple[str, str]]:
    import uuid

    urls = [("SQLite", f"sqlite:///{work}/load-{uuid.uuid4().hex[:6]}.sqlite3")]
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        urls.append(("PostgreSQL", f"{PG_URL}?schema=t2f_bench_{uuid.uuid4().hex[:8]}"))
    except Exception:
        print("PostgreSQL not reachable: skipped")
    return urls


def _drop(store: Any, url: str) -> None:
    if url.startswith("postgresql"):
        store.drop_schema()
    store.close()


def _http_put_rate(resources: list[dict[str, Any]], work: Path) -> float:
    """Resources/s when each is PUT over HTTP to ``trial2fhir serve`` (one request per resource)."""
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TRIAL2FHIR_WRITE_TOKENS": "bench", "TRIAL2FHIR_FIXTURES": "false"}
    command = [
        sys.executable, "-c", "from adapter.cli import main; main()", "serve", "--port", str(port),
        "--db", f"sqlite:///{work}/http.sqlite3",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": "Bearer bench"}) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            started = time.perf_counter()
            for resource in resources:
                response = client.put(
                    f"/fhir/R4/{resource['resourceType']}/{resource['id']}",
                    content=orjson.dumps(resource),
                    headers={"Content-Type": "application/fhir+json"},
                )
                response.raise_for_status()
            return len(resources) / (time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait()


def load_figures(records: list[tuple[str, bytes]], work: Path, count: int) -> None:
    from adapter.batch.load import load_export, load_records
    from adapter.store import open_store

    source = build_zip(work / f"load-{count}.zip", count, records)
    export = work / "load-export"
    run_convert(source, export, "4.0", 2, "none")
    manifest = orjson.loads((export / "manifest.json").read_bytes())
    resources = sum(item["count"] for item in manifest["output"])
    print(f"\nloading {count:,} studies ({resources:,} R4 resources in the export)")
    for (name, url), (_, records_url) in zip(_store_urls(work), _store_urls(work), strict=True):
        store = open_store(url)
        started = time.perf_counter()
        load_export(store, export)
        seconds = time.perf_counter() - started
        print(
            f"  {name:<10} export dir (R4)          {resources / seconds:>9,.0f} resources/s "
            f"{count / seconds:>7,.0f} studies/s"
        )
        _drop(store, url)
        store = open_store(records_url)
        started = time.perf_counter()
        summary = load_records(store, [str(source)], jobs=2)
        seconds = time.perf_counter() - started
        print(
            f"  {name:<10} records (R4 + R5), 2 jobs {summary.resources / seconds:>9,.0f} resources/s "
            f"{summary.records / seconds:>7,.0f} studies/s"
        )
        _drop(store, records_url)
    sample = [orjson.loads(line) for line in (export / "ResearchStudy.ndjson").read_bytes().splitlines()[:300]]
    print(f"  HTTP PUT, one request per resource (SQLite) {_http_put_rate(sample, work):>9,.0f} resources/s")


# -- main ----------------------------------------------------------------------------------------


def _line(label: str, result: dict[str, Any], floor_rate: float | None = None) -> str:
    rate = result["records"] / result["seconds"]
    text = f"{label:<38} {rate:>9,.0f} rec/s"
    if "resources" in result:
        text += f" {result['resources'] / result['seconds']:>10,.0f} res/s"
    if floor_rate:
        text += f"  floor/this {floor_rate / rate:5.1f}x"
    if result.get("cpu_s"):
        text += f"  {result['cpu_s'] * 1000 / result['records']:6.2f} CPU-ms/rec"
    if "peak_total_mb" in result:
        text += f"  peak {result['peak_total_mb']:,.0f} MB (parent {result['peak_parent_mb']:,.0f} MB)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=None, help="keep inputs/outputs here (default: temp dir)")
    parser.add_argument("--versions", default="4.0,5.0")
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--skip-full", action="store_true", help="no --validate full runs")
    parser.add_argument(
        "--full-records", type=int, default=None, help="studies for the --validate full runs (default: --records)"
    )
    parser.add_argument(
        "--validate-modes", default="none,structure,full", help="--validate modes to run (--skip-full drops full)"
    )
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--profile-only", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="only the store load figures")
    parser.add_argument("--load-records", type=int, default=2_000, help="studies for the load figures (0: none)")
    parser.add_argument(
        "--formats",
        default="json,xml",
        help="corpus records to cycle: json (API v2, today's bulk download), xml (legacy), or both",
    )
    args = parser.parse_args()
    if not set(args.formats.split(",")) <= FORMATS.keys():
        parser.error(f"--formats: one or more of {', '.join(FORMATS)}")

    records = corpus_records(args.formats)
    tag = args.formats.replace(",", "-")
    versions = args.versions.split(",")
    if args.profile_only:
        for version in versions:
            print(f"\nper-record stages, FHIR {version} ({len(records)} corpus records):")
            for stage, ms in profile(records, version):
                print(f"  {stage:<36} {ms:8.3f} ms")
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="t2f-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {work}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    if args.load_only:
        load_figures(records, work, args.load_records)
        return
    source = build_zip(work / f"corpus-{tag}-{args.records}.zip", args.records, records)
    print(f"input: {source.name}, {args.records:,} studies, {source.stat().st_size / 1e6:,.0f} MB")
    jobs_list = [int(j) for j in args.jobs.split(",")]
    peaks: dict[tuple[str, int, str], float] = {}
    for version in versions:
        print(f"\nFHIR {version}")
        floors = {}
        for jobs in jobs_list:
            result = floor(source, records, version, jobs)
            floors[jobs] = result["records"] / result["seconds"]
            print(_line(f"floor (parse + orjson), {jobs} proc", result))
        modes = [m for m in args.validate_modes.split(",") if not (args.skip_full and m == "full")]
        for validate in modes:
            count = args.full_records if validate == "full" and args.full_records else args.records
            run_source = source
            if count != args.records:
                run_source = build_zip(work / f"corpus-{tag}-{count}.zip", count, records)
            for jobs in jobs_list:
                result = run_convert(run_source, work / "out", version, jobs, validate)
                if count == args.records:
                    peaks[(version, jobs, validate)] = result["peak_total_mb"]
                label = f"convert --validate {validate} --jobs {jobs}"
                label += f" ({count:,})" if count != args.records else ""
                print(_line(label, result, floors[jobs]), flush=True)
    if not args.skip_synthetic:
        synthetic = build_zip(work / f"synthetic-{args.synthetic}.zip", args.synthetic, records)
        print(f"\nsynthetic: {args.synthetic:,} studies, {synthetic.stat().st_size / 1e6:,.0f} MB")
        result = run_convert(synthetic, work / "out-synthetic", "4.0", 2, "none")
        print(_line("convert --validate none --jobs 2 (R4)", result))
        same = peaks.get(("4.0", 2, "none"))
        print(
            f"peak memory: {result['peak_total_mb']:,.0f} MB for {args.synthetic:,} studies"
            + (f" vs {same:,.0f} MB for {args.records:,} (same options)" if same else "")
        )
        synthetic.unlink()
    if args.load_records:
        load_figures(records, work, args.load_records)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
