"""The conversion pipeline: source bytes -> records -> FHIR resources -> Bundle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from adapter.errors import Trial2FhirError
from adapter.readers import read_items
from adapter.record import TrialRecord
from mappings.bundle import DEFAULT_BASE_URL, to_bundle, to_fhir_resources
from mappings.r4 import to_r4

FHIR_VERSIONS = {"4.0": "4.0.1", "5.0": "5.0.0"}
"""Supported ``--fhir-version`` values and the exact release each produces."""


def check_version(fhir_version: str) -> str:
    if fhir_version not in FHIR_VERSIONS:
        raise ValueError(f"unsupported FHIR version {fhir_version!r}; use one of {', '.join(FHIR_VERSIONS)}")
    return fhir_version


def convert_record(record: TrialRecord, fhir_version: str = "4.0") -> list[dict[str, Any]]:
    """All resources for ``record`` in the requested FHIR version (R5 mappings, R4 via ``mappings.r4``)."""
    resources = to_fhir_resources(record)
    if check_version(fhir_version) == "4.0":
        resources = to_r4(resources, in_place=True)  # the R5 set is not used again
    return resources


@dataclass(slots=True)
class Converted:
    """The outcome for one input record: ``resources`` on success, else ``error``."""

    locator: str
    record_id: str | None = None
    resources: list[dict[str, Any]] = field(default_factory=list)
    error: Trial2FhirError | None = None
    warnings: list[str] = field(default_factory=list)

    def bundle(self, bundle_type: str = "transaction", base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
        return to_bundle(self.resources, bundle_type, base_url)


def convert_bytes(data: bytes, source: str | None = None, fhir_version: str = "4.0") -> Iterator[Converted]:
    """Convert every record in ``data``; whole-input problems raise ``InputError``, per-record ones are yielded."""
    check_version(fhir_version)
    for item in read_items(data, source):
        if item.record is None:
            yield Converted(item.locator, error=item.error)
            continue
        record = item.record
        warnings = [f"{record.registry_id}: source field not mapped: {path}" for path in record.unmapped]
        yield Converted(
            item.locator,
            record_id=record.registry_id,
            resources=convert_record(record, fhir_version),
            warnings=warnings,
        )
