"""The search-parameter table and value normalisation behind the index."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.store.params import (
    MAX_US,
    MIN_US,
    RESOURCE_TYPES,
    canonical_system,
    date_range,
    identifier_keys,
    index_rows,
    normalize_text,
    parse_reference,
    search_params,
    walk,
)
from adapter.validation.packages import DEFINITION_PACKAGES, iter_package_json

REPO = Path(__file__).resolve().parents[3]
NCT = "https://clinicaltrials.gov/nctid"
EUDRACT = "https://eudract.ema.europa.eu"


@pytest.mark.parametrize(
    "system",
    [
        "http://clinicaltrials.gov",
        "https://clinicaltrials.gov",
        "https://clinicaltrials.gov/",
        "https://www.clinicaltrials.gov",
        "HTTP://ClinicalTrials.gov/ct2/show",
        "https://clinicaltrials.gov/nctid",
        "http://terminology.hl7.org/NamingSystem/ClinicalTrials-Gov",
    ],
)
def test_clinicaltrials_gov_system_variants(system: str) -> None:
    assert canonical_system(system) == NCT


def test_other_systems_are_kept_but_compared_loosely() -> None:
    assert canonical_system("https://eudract.ema.europa.eu/") == EUDRACT
    assert canonical_system("urn:oid:1.2.3") == "urn:oid:1.2.3"
    assert canonical_system("https://example.org/ids/") == canonical_system("http://www.example.org/ids")
    assert canonical_system("http://hl7.org/fhir/sid/us-ssn") != NCT


def test_registry_numbers_inside_secondary_ids() -> None:
    assert identifier_keys(None, "EudraCT 2011-001295-19") == [
        ("", "eudract2011-001295-19"),
        (EUDRACT, "2011-001295-19"),
    ]
    assert (EUDRACT, "2011-001295-19") in identifier_keys(
        "https://www.clinicaltrialsregister.eu", "EUCTR2011-001295-19-IT"
    )
    assert identifier_keys(NCT, "NCT01854957") == [(NCT, "nct01854957")]
    ctis = identifier_keys(None, "2023-507385-11-00")
    assert all(system != EUDRACT for system, _ in ctis), "a CTIS number is not an EudraCT number"


def test_dates_are_ranges_at_their_precision() -> None:
    year = date_range("2012")
    assert year[2] == "year" and year[1] - year[0] == 366 * 86_400_000_000
    month = date_range("2012-07")
    assert month[2] == "month" and month[1] - month[0] == 31 * 86_400_000_000
    assert date_range("2012-12")[1] == date_range("2013")[0]
    day = date_range("2012-07-31")
    assert day[1] - day[0] == 86_400_000_000
    assert date_range("2012-07-31T10:00:00+02:00")[0] == date_range("2012-07-31T08:00:00Z")[0]
    assert date_range("2012-07-31T08:00:00.5Z")[1] - date_range("2012-07-31T08:00:00.5Z")[0] == 100_000
    with pytest.raises(ValueError):
        date_range("July 2012")


def test_open_periods_and_text_normalisation() -> None:
    rows = index_rows(
        "4.0",
        {
            "resourceType": "ResearchStudy",
            "id": "x",
            "status": "active",
            "period": {"start": "2020-01"},
            "title": "  Études  CLINIQUES ",
        },
    )
    assert rows.dates == [("date", date_range("2020-01")[0], MAX_US)]
    assert ("title", "etudes cliniques", "  Études  CLINIQUES ") in rows.strings
    ended = index_rows(
        "4.0", {"resourceType": "ResearchStudy", "id": "x", "status": "active", "period": {"end": "2020"}}
    )
    assert ended.dates == [("date", MIN_US, date_range("2020")[1])]
    assert normalize_text("Ça  va") == "ca va"


def test_references() -> None:
    assert parse_reference("Organization/org-1") == ("Organization", "org-1")
    assert parse_reference("http://h/fhir/R4/Location/a.b/_history/3") == ("Location", "a.b")
    assert parse_reference("#contained") is None
    assert parse_reference("urn:uuid:1234") is None
    assert walk({"a": [{"b": 1}, {"b": [2, 3]}]}, "a.b") == [1, 2, 3]


def test_every_type_has_identifier_and_the_issue_parameters() -> None:
    for version in ("4.0", "5.0"):
        params = search_params(version)
        assert set(params) == set(RESOURCE_TYPES)
        for rtype in RESOURCE_TYPES:
            assert params[rtype]["identifier"].identifier
        study = params["ResearchStudy"]
        for code in (
            "identifier",
            "status",
            "title",
            "keyword",
            "condition",
            "phase",
            "sponsor",
            "site",
            "date",
            "protocol",
        ):
            assert code in study, f"{version} ResearchStudy lacks {code}"
    assert search_params("4.0")["ResearchStudy"]["enrollment"].custom
    assert not search_params("5.0")["ResearchStudy"]["eligibility"].custom


def _core_definitions(version: str) -> dict[str, dict]:
    # The pinned package the validator takes its definitions from (R4's SearchParameters are in
    # the examples package).
    name, package_version = DEFINITION_PACKAGES[version]
    return {
        definition["url"]: definition
        for _, definition in iter_package_json(name, package_version, lambda f: f.startswith("SearchParameter-"))
    }


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_standard_parameters_match_the_core_definitions(version: str) -> None:
    core = _core_definitions(version)
    for rtype, params in search_params(version).items():
        for param in params.values():
            if param.custom:
                continue
            definition = core.get(param.url)
            assert definition is not None, f"{rtype}.{param.code}: {param.url} is not a core SearchParameter"
            assert definition["code"] == param.code
            assert definition["type"] == param.type, f"{param.url}: {definition['type']} != {param.type}"
            assert rtype in definition["base"]
            if param.targets:
                assert set(param.targets) <= set(definition.get("target", [])), param.url
