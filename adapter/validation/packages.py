"""Fetch the official FHIR packages (StructureDefinitions, ValueSets, CodeSystems, examples) from npm.

The validator is driven by HL7's own definitions, never by hand-written copies.  They are
published as npm packages:

* R5 (5.0.0): ``hl7.fhir.r5.core`` (definitions) and ``hl7.fhir.r5.examples`` (example resources);
* R4 (4.0.1): ``hl7.fhir.r4.core`` is not on the npm registry, but ``hl7.fhir.r4.examples`` 4.0.1
  is, and it holds every conformance resource of the R4 release as well (all StructureDefinitions
  with snapshots, ValueSets and CodeSystems, as published with 4.0.1), plus the example resources.

Each tarball is pinned by its npm ``dist.integrity`` (SHA-512), downloaded once over HTTPS into
the cache directory and verified before use, so a changed or tampered package is refused rather
than silently validated against.  Nothing is extracted to disk: readers stream the JSON members
they need straight from the tarball.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

REGISTRY = os.environ.get("TRIAL2FHIR_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")

PINNED: dict[tuple[str, str], str] = {
    ("hl7.fhir.r4.examples", "4.0.1"): (
        "sha512-DXBdIZOeQaSKIgCU7w6HOC7sw/6BzylmipLkBW4f//pT+Bc94x+8LImwTdvaNThPJoOzpBzvxAzNqjeu3X/zLw=="
    ),
    ("hl7.fhir.r5.core", "5.0.0"): (
        "sha512-0TvJB1KKtokn/P2mRwcqEY8v8RN8IE/pQjvtlsPaJdYaDfYx4UBhuY4afAGeQjW01p9SNYPphxAFFkEsS6P05A=="
    ),
    ("hl7.fhir.r5.examples", "5.0.0"): (
        "sha512-+fOu1d5DqAQMorvTVx0bYrnTPl+Z2YovBkLMcJf6E+jMh61+SbeAEWqzxyO/wE7LBots7hBXwy8tN7n6iBRjOw=="
    ),
}
"""npm ``dist.integrity`` of every package the validator may use (from ``npm view NAME@VERSION``)."""

DEFINITION_PACKAGES: dict[str, tuple[str, str]] = {
    "4.0": ("hl7.fhir.r4.examples", "4.0.1"),
    "5.0": ("hl7.fhir.r5.core", "5.0.0"),
}
"""Package holding the core definitions of each FHIR version."""

EXAMPLE_PACKAGES: dict[str, tuple[str, str]] = {
    "4.0": ("hl7.fhir.r4.examples", "4.0.1"),
    "5.0": ("hl7.fhir.r5.examples", "5.0.0"),
}


class PackageError(RuntimeError):
    """A package could not be downloaded or failed its integrity check."""


def cache_dir() -> Path:
    """``$TRIAL2FHIR_CACHE``, else ``$XDG_CACHE_HOME/trial2fhir``, else ``~/.cache/trial2fhir``."""
    explicit = os.environ.get("TRIAL2FHIR_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trial2fhir"


def _digest_matches(data_path: Path, integrity: str) -> bool:
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm)
    with data_path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode() == expected


def tarball_url(name: str, version: str) -> str:
    # npm's fixed layout for unscoped packages; the pinned integrity makes the source irrelevant.
    return f"{REGISTRY}/{name}/-/{name}-{version}.tgz"


def ensure_package(name: str, version: str, *, quiet: bool = True) -> Path:
    """Path of the verified tarball of ``name@version``, downloading it on first use.

    Raises :class:`PackageError` when the package is not pinned, cannot be fetched, or its
    SHA-512 differs from the pin.
    """
    integrity = PINNED.get((name, version))
    if integrity is None:
        raise PackageError(f"{name}@{version} is not a pinned FHIR package")
    target = cache_dir() / "fhir-packages" / f"{name}-{version}.tgz"
    if target.exists() and _digest_matches(target, integrity):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = tarball_url(name, version)
    if not quiet:
        print(f"downloading {url}")
    import httpx  # only needed on the first run of a machine

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, httpx.stream("GET", url, follow_redirects=True, timeout=120) as response:
            if response.status_code != 200:
                raise PackageError(f"{url}: HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                out.write(chunk)
        if not _digest_matches(tmp, integrity):
            raise PackageError(f"{url}: integrity check failed (expected {integrity})")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
        os.replace(tmp, target)  # atomic, so concurrent first runs never see half a file
    except httpx.HTTPError as error:
        raise PackageError(f"{url}: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)
    return target


def iter_package_json(
    name: str, version: str, want: Callable[[str], bool] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(file name, parsed JSON)`` for the top-level ``package/*.json`` members of a package.

    ``want`` receives the bare file name (``StructureDefinition-Group.json``) and selects members
    before they are decompressed and parsed.
    """
    path = ensure_package(name, version)
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            if not member.isfile() or not member.name.startswith("package/"):
                continue
            file_name = member.name[len("package/") :]
            if "/" in file_name or not file_name.endswith(".json"):
                continue
            if want is not None and not want(file_name):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            with handle:
                data = orjson.loads(handle.read())
            if isinstance(data, dict):
                yield file_name, data


def example_resources(fhir_version: str, resource_types: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The official HL7 example resources of the given types, as ``(file name, resource)``."""
    name, version = EXAMPLE_PACKAGES[fhir_version]
    prefixes = tuple(f"{t}-" for t in resource_types)
    for file_name, data in iter_package_json(name, version, lambda f: f.startswith(prefixes)):
        if data.get("resourceType") in resource_types:
            yield file_name, data


def install(fhir_versions: tuple[str, ...] = ("4.0", "5.0"), *, examples: bool = False) -> list[Path]:
    """Fetch (if needed) every package the validator uses; the explicit install step for CI and setup."""
    wanted = {DEFINITION_PACKAGES[v] for v in fhir_versions}
    if examples:
        wanted |= {EXAMPLE_PACKAGES[v] for v in fhir_versions}
    return [ensure_package(name, version, quiet=False) for name, version in sorted(wanted)]
