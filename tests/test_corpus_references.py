"""Every reference in every corpus Bundle resolves inside the Bundle (both versions).

The independent checker resolves references only inside Bundles; the CI corpus run feeds it
resources one by one for speed, so this test holds the Bundle-level rule for the whole corpus.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.pipeline import convert_bytes

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_every_corpus_reference_resolves_inside_its_bundle(version):
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not beside this checkout")
    paths = sorted((CORPUS / "ctgov-v2-json").glob("*.json")) + sorted((CORPUS / "ctgov-xml").glob("*.xml"))
    paths += sorted((CORPUS / "who-ictrp-xml").glob("*.xml"))
    problems = []
    bundles = 0
    for path in paths:
        for result in convert_bytes(path.read_bytes(), path.name, version):
            assert result.error is None, f"{result.locator}: {result.error}"
            bundle = result.bundle("collection")
            bundles += 1
            full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
            if len(full_urls) != len(set(full_urls)):
                problems.append(f"{result.locator}: duplicate fullUrl")
            local = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
            for reference in references([e["resource"] for e in bundle["entry"]]):
                if reference not in local:
                    problems.append(f"{result.locator}: unresolved reference {reference}")
    assert bundles >= 3500
    assert problems == []
