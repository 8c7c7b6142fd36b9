"""Bounded memory: the batch parent (planning, writing, organization de-duplication) does not grow
with the number of records.  The benchmark shows the same on 100,000 full-size studies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import orjson
from batch_helpers import tiny_study

MEASURE = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from adapter.batch.runner import BatchOptions, run_batch

    if __name__ == "__main__":
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        summary = run_batch(BatchOptions(inputs=[sys.argv[1]], out=Path(sys.argv[2]), jobs=2, validate=False))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(summary.converted, before, after)
    """
)


def archive(path: Path, count: int) -> Path:
    # Every study names its own sponsor, so the set of organizations grows with the batch too.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for n in range(count):
            out.writestr(f"ctg-studies/NCT9{n:07d}.json", orjson.dumps(tiny_study(n)))
    return path


def peak_growth_kib(tmp_path: Path, count: int) -> int:
    source = archive(tmp_path / f"{count}.zip", count)
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    proc = subprocess.run(
        [sys.executable, str(script), str(source), str(tmp_path / f"out{count}")],
        capture_output=True,
        timeout=600,
        check=True,
    )
    converted, before, after = map(int, proc.stdout.split())
    assert converted == count
    return after - before


def test_parent_memory_does_not_grow_with_records(tmp_path: Path) -> None:
    small = peak_growth_kib(tmp_path, 4_000)
    large = peak_growth_kib(tmp_path, 20_000)
    # 16,000 more records and organizations: a structure holding ~400 bytes per record would add 6 MB.
    assert large - small < 6 * 1024, f"peak RSS grew {small} KiB -> {large} KiB"
