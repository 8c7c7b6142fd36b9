"""Golden Bundles for the fixtures, compared as parsed JSON.

Regenerate after an intended mapping change, then review the diff:
    TRIAL2FHIR_UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adapter.pipeline import convert_bytes
from adapter.serialize import to_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GOLDEN = FIXTURES / "golden"
# The 1,148-site record is left out: its golden would be megabytes; it is covered by the corpus run.
INPUTS = sorted(
    p.relative_to(FIXTURES)
    for pattern in ("seed/NCT*.xml", "seed/NCT*.json", "ctgov-v2-json/*.json", "ctgov-xml/*.xml", "who-ictrp-xml/*.xml")
    for p in FIXTURES.glob(pattern)
    if p.name != "NCT04267848.json"
)
UPDATE = os.environ.get("TRIAL2FHIR_UPDATE_GOLDENS") == "1"


def golden_path(source: Path, version: str) -> Path:
    return GOLDEN / f"r{version[0]}" / f"{source.parent.name}--{source.name.replace('.', '-')}.json"


@pytest.mark.parametrize("version", ["4.0", "5.0"])
@pytest.mark.parametrize("source", INPUTS, ids=str)
def test_matches_golden(source: Path, version: str):
    results = list(convert_bytes((FIXTURES / source).read_bytes(), str(source), version))
    bundles = [r.bundle("transaction") for r in results if r.error is None]
    assert len(bundles) == len(results), [str(r.error) for r in results if r.error]
    actual = bundles[0] if len(bundles) == 1 else {"bundles": bundles}
    path = golden_path(source, version)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_json(actual))
    if not path.exists():
        pytest.fail(f"no golden {path}; run with TRIAL2FHIR_UPDATE_GOLDENS=1 to create it")
    assert actual == json.loads(path.read_text(encoding="utf-8"))
