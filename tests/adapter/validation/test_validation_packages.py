"""The npm package fetcher refuses unpinned packages and tarballs that fail their integrity pin."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.validation import packages
from adapter.validation.definitions import load_definitions


def test_unpinned_package_is_refused() -> None:
    with pytest.raises(packages.PackageError, match="not a pinned"):
        packages.ensure_package("left-pad", "1.3.0")


def test_integrity_check(tmp_path: Path) -> None:
    data = tmp_path / "x.tgz"
    data.write_bytes(b"payload")
    pin = "sha512-" + base64.b64encode(hashlib.sha512(b"payload").digest()).decode()
    assert packages._digest_matches(data, pin)
    assert not packages._digest_matches(data, "sha512-" + base64.b64encode(b"other").decode())


class _FakeResponse:
    status_code = 200

    def iter_bytes(self) -> Iterator[bytes]:
        yield b"not the real package"


def test_tampered_download_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAL2FHIR_CACHE", str(tmp_path))

    @contextmanager
    def fake_stream(*args: Any, **kwargs: Any) -> Iterator[_FakeResponse]:
        yield _FakeResponse()

    monkeypatch.setattr(httpx, "stream", fake_stream)
    with pytest.raises(packages.PackageError, match="integrity"):
        packages.ensure_package("hl7.fhir.r5.core", "5.0.0")
    assert list((tmp_path / "fhir-packages").iterdir()) == []  # nothing half-written is left behind


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_definitions_come_from_the_package(version: str) -> None:
    definitions = load_definitions(version)
    assert definitions.package == {"4.0": "hl7.fhir.r4.examples@4.0.1", "5.0": "hl7.fhir.r5.core@5.0.0"}[version]
    study = definitions.types["ResearchStudy"]
    assert study.props["status"][0].binding is not None
    assert {c.key for c in study.constraints} >= {"dom-2", "dom-3", "dom-4", "dom-5", "dom-6"}
    assert definitions.value_sets["http://hl7.org/fhir/ValueSet/publication-status"].complete
