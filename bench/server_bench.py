"""FHIR server load benchmark: requests/s and p50/p99 latency, SQLite and PostgreSQL, whole dev corpus.

Run from the repository root (the corpus must be at ../shared/corpus; PostgreSQL is skipped when
unreachable)::

    .venv/bin/python bench/server_bench.py                          # both stores, 8 clients, 20 s a scenario
    .venv/bin/python bench/server_bench.py --store sqlite --clients 16 --seconds 30
    .venv/bin/python bench/server_bench.py --db-dir /var/tmp/trial2fhir-server-bench  # keep (and reuse) the SQLite file

For each store: load the corpus (``load_inputs``, as ``trial2fhir load``, timed; an existing
SQLite file in ``--db-dir`` is reused, its unchanged resources getting no new version), start
``trial2fhir serve`` as a separate process (so the load generator does not share its
interpreter), warm up, then drive ``--clients`` concurrent HTTP/1.1 keep-alive clients
(asyncio + httpx in this process) through three scenarios, each for ``--seconds``:

* read by id: ``GET /fhir/R4/ResearchStudy/{id}``, random study;
* search by identifier: ``GET /fhir/R4/ResearchStudy?identifier=NCT...``, random study;
* search by condition with _include: ``GET /fhir/R4/ResearchStudy?condition=<a condition text of the
  corpus>&_include=ResearchStudy:protocol&_include=ResearchStudy:enrollment`` (first page, 20 studies).

Prints a table (and ``--json FILE`` writes the figures).  Latency is measured at the client,
from sending the request to the last byte of the response.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
PG_URL = os.environ.get("TRIAL2FHIR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Figures:
    store: str
    scenario: str
    clients: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_bytes: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load(url: str, workers: int) -> tuple[float, Any]:
    from adapter.batch.load import load_inputs
    from adapter.store import open_store

    store = open_store(url)
    started = time.monotonic()
    # What `trial2fhir load` runs: streamed inputs, both FHIR versions, large transactions.
    summary = load_inputs(
        store, [str(CORPUS / "ctgov-xml"), str(CORPUS / "who-ictrp-xml"), str(CORPUS / "ctgov-v2-json")], jobs=workers
    )
    elapsed = time.monotonic() - started
    counts = store.counts()
    store.close()
    print(
        f"  loaded {summary.records} records ({summary.failed} failed) in {elapsed:.0f} s; "
        f"{sum(counts.values())} resources stored",
        flush=True,
    )
    return elapsed, counts


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("trial2fhir", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-c", "from adapter.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAL2FHIR_")}
    env |= {"TRIAL2FHIR_LOG_LEVEL": "warning", "TRIAL2FHIR_GZIP": "false"}
    process = subprocess.Popen(
        [*command, "serve", "--db", url, "--port", str(port), "--no-fixtures"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def workload(base: str) -> tuple[list[str], list[str], list[str]]:
    """Study ids, NCT numbers and condition texts of the stored corpus (through the API, all pages)."""
    ids, ncts, conditions = [], [], set()
    url: str | None = f"{base}/ResearchStudy?_count=500&_elements=identifier,condition"
    with httpx.Client(timeout=120) as client:
        while url:
            page = client.get(url).json()
            for entry in page.get("entry", []):
                resource = entry["resource"]
                ids.append(resource["id"])
                ncts += [i["value"] for i in resource.get("identifier", []) if i.get("value", "").startswith("NCT")][:1]
                conditions.update(c["text"] for c in resource.get("condition", []) if c.get("text"))
            url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    return ids, ncts, sorted(conditions)


async def drive(base: str, make_path: Any, clients: int, seconds: float) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    errors = 0
    size = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=60, headers={"Accept": "application/fhir+json"}
    ) as client:

        async def one_client() -> None:
            nonlocal errors, size
            while time.monotonic() < stop_at:
                path = make_path()
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    body = response.content
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok, body = False, b""
                latencies.append(time.perf_counter() - started)
                size += len(body)
                if not ok:
                    errors += 1

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors, size


def scenario(store: str, name: str, base: str, make_path: Any, clients: int, seconds: float) -> Figures:
    asyncio.run(drive(base, make_path, clients, min(3.0, seconds)))  # warm-up (caches, connections)
    started = time.monotonic()
    latencies, errors, size = asyncio.run(drive(base, make_path, clients, seconds))
    elapsed = time.monotonic() - started
    latencies.sort()
    count = len(latencies)
    figures = Figures(
        store,
        name,
        clients,
        count,
        errors,
        round(elapsed, 1),
        round(count / elapsed, 1),
        round(statistics.median(latencies) * 1000, 2),
        round(latencies[min(count - 1, int(count * 0.99))] * 1000, 2),
        round(size / max(count, 1)),
    )
    print(
        f"  {name:<42} {figures.rps:>8.1f} req/s  p50 {figures.p50_ms:>7.2f} ms  p99 {figures.p99_ms:>8.2f} ms"
        f"  ({count} requests, {errors} errors, {figures.mean_bytes:.0f} B)",
        flush=True,
    )
    return figures


def bench_store(store: str, url: str, args: argparse.Namespace) -> tuple[list[Figures], dict[str, Any]]:
    print(f"{store}: {url.split('?')[0]}", flush=True)
    load_s, counts = load(url, args.workers)
    port = free_port()
    server = start_server(url, port)
    try:
        base = f"http://127.0.0.1:{port}/fhir/R4"
        ids, ncts, conditions = workload(base)
        print(f"  workload: {len(ids)} studies, {len(ncts)} NCT numbers, {len(conditions)} condition texts", flush=True)
        rng = random.Random(1)
        scenarios = [
            ("read by id", lambda: f"/fhir/R4/ResearchStudy/{rng.choice(ids)}"),
            ("search by identifier", lambda: f"/fhir/R4/ResearchStudy?identifier={rng.choice(ncts)}"),
            (
                "search by condition with _include",
                lambda: (
                    "/fhir/R4/ResearchStudy?"
                    + httpx.QueryParams(
                        [
                            ("condition", rng.choice(conditions)),
                            ("_include", "ResearchStudy:protocol"),
                            ("_include", "ResearchStudy:enrollment"),
                        ]
                    ).__str__()
                ),
            ),
        ]
        figures = [
            scenario(store, name, f"http://127.0.0.1:{port}", path, args.clients, args.seconds)
            for name, path in scenarios
        ]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    info = {
        "store": store,
        "load_seconds": round(load_s, 1),
        "resources": sum(counts.values()),
        "studies_r4": counts.get(("4.0", "ResearchStudy"), 0),
    }
    return figures, info


def pg_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=None, help="conversion processes while loading")
    parser.add_argument("--db-dir", type=Path, default=None, help="keep the SQLite database here (reused)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"no corpus at {CORPUS}")
    results: list[Figures] = []
    loads = []
    scratch = Path(tempfile.mkdtemp(prefix="trial2fhir-bench-"))
    try:
        if args.store in ("sqlite", "both"):
            directory = args.db_dir or scratch
            directory.mkdir(parents=True, exist_ok=True)
            figures, info = bench_store("sqlite", f"sqlite:///{directory / 'bench.sqlite3'}", args)
            results += figures
            loads.append(info)
        if args.store in ("postgresql", "both"):
            if not pg_reachable():
                print(f"postgresql: skipped, {PG_URL} is not reachable")
            else:
                schema = f"t2f_bench_{uuid.uuid4().hex[:8]}"
                url = f"{PG_URL}?schema={schema}"
                try:
                    figures, info = bench_store("postgresql", url, args)
                    results += figures
                    loads.append(info)
                finally:
                    from adapter.store.postgres import PostgresStore

                    cleanup = PostgresStore(url)
                    cleanup.drop_schema()
                    cleanup.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(
        f"| store | scenario | clients | req/s | p50 ms | p99 ms |  ({os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    print("|---|---|---:|---:|---:|---:|")
    for f in results:
        print(f"| {f.store} | {f.scenario} | {f.clients} | {f.rps} | {f.p50_ms} | {f.p99_ms} |")
    for info in loads:
        print(
            f"{info['store']}: corpus loaded in {info['load_seconds']} s, {info['resources']} resources "
            f"({info['studies_r4']} studies per FHIR version)"
        )
    if args.json:
        args.json.write_bytes(
            orjson.dumps({"loads": loads, "figures": [asdict(f) for f in results]}, option=orjson.OPT_INDENT_2)
        )


if __name__ == "__main__":
    main()
