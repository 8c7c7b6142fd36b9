"""Ids are published: the faster ways of computing them must give exactly what the definitions give."""

from __future__ import annotations

import re

import pytest

from adapter.record import Site, SourceInfo, TrialRecord
from mappings import ids

_SPACES = re.compile(r"\s+")


def reference_normalize_name(name: str) -> str:
    """The definition ``ids.normalize_name`` keeps to."""
    return _SPACES.sub(" ", name).strip().casefold()


def reference_site_key(address: tuple[str | None, ...]) -> str:
    """The definition ``ids._site_key`` keeps to."""
    return "|".join(reference_normalize_name(p) if p else "" for p in address)


# Whitespace str.split() and \s agree on beyond ASCII (no-break, em space, file separator),
# characters whose case folding is longer or context-free ("ß", final sigma), "|" inside a part.
TRICKY = [
    "",
    " ",
    "University of Genova",
    "  UNIVERSITY \t of\n genova ",
    "Straße\u00a0GmbH",
    "ΟΔΟΣ Σ",
    "a\u2003\x1cb",
    "A | B",
    "A |B",
    "A| B",
    "|",
    " | ",
    "\u00a0lead",
    "trail\u3000",
]


@pytest.mark.parametrize("name", TRICKY)
def test_normalize_name_is_the_definition(name: str) -> None:
    assert ids.normalize_name(name) == reference_normalize_name(name)


@pytest.mark.parametrize("part", [*TRICKY, None])
def test_site_key_is_the_definition(part: str | None) -> None:
    # The one-pass fast path must hand parts with edge whitespace or "|" to the part-by-part way.
    for address in (
        (part, "Genova", None, "16132", "Italy"),
        ("Hospital", part, part, "", "Italy"),
        ("Hospital", "Genova", "", "16132", part),
        (part, part, part, part, part),
    ):
        assert ids._site_key(address) == reference_site_key(address)


def test_location_ids_are_unchanged() -> None:
    """Pinned: these values were computed by the original implementation and are published."""
    record = TrialRecord(
        source=SourceInfo(registry="ctgov", format="ctgov-v2-json"),
        registry_id="NCT00000001",
        sites=[
            Site(facility="University of Genova", city="Genova", zip="16132", country="Italy"),
            Site(facility="UNIVERSITY  of genova", city="GENOVA", zip="16132", country="italy"),
            Site(facility="Hôpital Saint-Louis", city="Paris", country="France"),
            Site(city="Paris", country="France"),
        ],
    )
    record.sites[3].state = " Île-de-France\u00a0"  # assigned after validation, so not stripped
    assert ids.location_ids(record) == [
        "nct00000001-site-219ab82bf2e4",
        "nct00000001-site-219ab82bf2e4-2",
        "nct00000001-site-801d9c675c7b",
        "nct00000001-site-d569bae9ea17",
    ]
    assert ids.study_id(record) == "nct00000001"
    assert ids.organization_id("  Straße\tGmbH ") == "org-686dfafde2401887e1987500"
