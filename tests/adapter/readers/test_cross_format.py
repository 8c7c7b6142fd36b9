"""The same study read from legacy XML and from API v2 JSON gives the same TrialRecord.

Seven studies are in the corpus in both formats.  For every field both formats carry, the record
from ``read_clinical_study`` must equal the record from ``read_study``.  What is not compared is
listed below with the reason, in two groups:

1. ``ONLY_ONE_FORMAT``: facts only one format carries (or states in a way the other cannot), for
   every pair.
2. ``REGISTRY_UPDATES``: three pairs are different versions of the registry record (their
   ``last_update_posted`` dates differ); the fields the sponsor or CT.gov changed in between are
   excluded for those pairs only.  A test checks that each listed field really differs, so the
   list cannot silently hide a reader difference, and that the other four pairs are the same
   version.

Skipped when the corpus (``../shared/corpus`` beside the checkout) is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from adapter.readers.ctgov_xml import read_clinical_study

ctgov_json = pytest.importorskip("adapter.readers.ctgov_json")

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO.parent / "shared" / "corpus"

PAIRS = ("NCT00000410", "NCT00007696", "NCT00492635", "NCT00498680", "NCT00499317", "NCT02513394", "NCT03478891")

ONLY_ONE_FORMAT: dict[str, str] = {
    "source.format": "names the format itself",
    "source.version": "XML: date of the bulk download; v2: versionHolder of the API snapshot",
    "unmapped": "paths are format-specific (reader problems name the element or key of their format)",
    "design.number_of_arms": "stated only in legacy XML; v2 has the arm list only",
    "status.last_update_submit_qc": "legacy XML only (last_update_submitted_qc has no v2 field)",
    "outcomes[].safety_issue": "legacy XML only (safety_issue was retired in 2017, no v2 field)",
    "sites[].contacts[].affiliation": "legacy XML only (v2 site contacts have no affiliation)",
    "oversight.is_fda_regulated/is_section_801": "legacy XML only (retired in 2017, no v2 field)",
    "design.endpoint_classification": "legacy XML only (retired in 2017, no v2 field)",
    "condition_mesh_ancestors": "v2 only (derivedSection)",
    "intervention_mesh_ancestors": "v2 only (derivedSection)",
    "*_meshes[].id": "legacy XML gives MeSH terms without their ids; the terms are compared",
    "sites[].geo_point": "v2 only (CT.gov geocodes sites)",
    "documents[].upload_date": "v2 only",
    "documents[].size": "v2 only",
    "secondary_ids[].domain": "v2 only",
    "secondary_ids[].type/link": (
        "legacy XML has no id types; compared only where the XML reader types an id from its "
        "pattern (EudraCT, NIH grant), otherwise v2's type is not stated by the XML"
    ),
    "organization.agency_class": (
        "XML <source> has no class; compared only where the XML reader takes it from the sponsor "
        "or collaborator of the same name"
    ),
    "design.patient_registry": (
        "XML states it only as 'Observational [Patient Registry]'; compared only where it does"
    ),
    "references[type=DERIVED]": (
        "citations CT.gov links from PubMed itself are served by v2 only; sponsor-entered "
        "references (BACKGROUND, RESULT) are compared"
    ),
    "location_countries (order)": (
        "v2 has no country list: the v2 reader lists site countries in site order, the XML "
        "states them alphabetically; compared as sets"
    ),
}

# pair -> (XML last_update_posted, v2 lastUpdatePostDate, {field: what changed})
REGISTRY_UPDATES: dict[str, tuple[str, str, dict[str, str]]] = {
    "NCT00499317": (
        "2022-06-10",
        "2023-08-14",
        {
            "status.last_update_post": "the update itself",
            "status.last_update_submit": "the update itself",
            "status.status_verified_date": "re-verified at the update",
            "central_contacts": "backup contact (S. Brewster) removed",
            "sites": "site backup contact (S. Brewster) removed",
        },
    ),
    "NCT02513394": (
        "2020-03-09",
        "2023-06-15",
        {
            "status.last_update_post": "the update itself",
            "status.last_update_submit": "the update itself",
            "status.status_verified_date": "re-verified at the update",
            "status.primary_completion": "anticipated 2020-09 became actual 2020-11",
            "status.results_first_submit": "results submitted in 2022",
            "status.results_first_submit_qc": "results submitted in 2022",
            "status.results_first_post": "results posted in 2022",
            "has_results": "results posted in 2022",
            "documents": "protocol/SAP uploaded with the results",
            "collaborators": "two collaborators reclassified OTHER -> NETWORK",
            "officials": "study chair changed",
            "outcomes": "outcome descriptions rewritten with the results",
            "sites": "sites added",
            "location_countries": "countries added with the sites",
        },
    ),
    "NCT03478891": (
        "2019-07-15",
        "2020-10-26",
        {
            "status.last_update_post": "the update itself",
            "status.last_update_submit": "the update itself",
            "status.status_verified_date": "re-verified at the update",
            "collaborators": "collaborator The Emmes Company removed",
            "documents": "document re-uploaded (Prot_SAP_ICF_001.pdf -> _002.pdf)",
            "references": "erratum appended to the results citation",
            "intervention_meshes": "MeSH terms re-derived (Ansuvimab)",
        },
    ),
}

# Top-level fields holding one object: compared per sub-field, so an update excludes only what changed.
_OBJECTS = ("source", "status", "design", "eligibility", "oversight", "responsible_party", "ipd_sharing")


def _read_pair(nct: str) -> tuple[dict[str, Any], dict[str, Any]]:
    xml_path = CORPUS / "ctgov-xml" / f"{nct}.xml"
    json_path = CORPUS / "ctgov-v2-json" / f"{nct}.json"
    if not xml_path.exists() or not json_path.exists():
        pytest.skip(f"corpus pair {nct} not present")
    xml = read_clinical_study(xml_path.read_bytes(), str(xml_path)).model_dump()
    v2 = ctgov_json.read_study(orjson.loads(json_path.read_bytes()), str(json_path)).model_dump()
    return xml, v2


def _drop_one_format_fields(xml: dict[str, Any], v2: dict[str, Any]) -> None:
    """Remove, in place, everything ``ONLY_ONE_FORMAT`` lists."""
    for record in (xml, v2):
        record.pop("unmapped")
        record.pop("condition_mesh_ancestors")
        record.pop("intervention_mesh_ancestors")
        record["source"].pop("format")
        record["source"].pop("version")
        record["design"].pop("number_of_arms")
        record["design"].pop("endpoint_classification")
        record["status"].pop("last_update_submit_qc")
        for outcome in record["outcomes"]:
            outcome.pop("safety_issue")
        for site in record["sites"]:
            for contact in site["contacts"]:
                contact.pop("affiliation")
        if record["oversight"] is not None:
            record["oversight"].pop("is_fda_regulated")
            record["oversight"].pop("is_section_801")
        for mesh in record["condition_meshes"] + record["intervention_meshes"]:
            mesh.pop("id")
        for site in record["sites"]:
            site.pop("geo_point")
        for document in record["documents"]:
            document.pop("upload_date")
            document.pop("size")
        for identifier in record["secondary_ids"]:
            identifier.pop("domain")
        record["references"] = [ref for ref in record["references"] if ref["type"] != "DERIVED"]
        record["location_countries"] = sorted(record["location_countries"])
    # Facts the XML cannot state: where the XML reader has none, v2's value is not compared.
    if len(xml["secondary_ids"]) == len(v2["secondary_ids"]):
        for x_id, v_id in zip(xml["secondary_ids"], v2["secondary_ids"], strict=True):
            if x_id["type"] is None:
                v_id["type"] = v_id["link"] = None
    for path in (("organization", "agency_class"), ("design", "patient_registry")):
        x_obj, v_obj = xml.get(path[0]), v2.get(path[0])
        if x_obj is not None and v_obj is not None and x_obj.get(path[1]) is None:
            v_obj[path[1]] = None


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key in _OBJECTS and isinstance(value, dict):
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def _differences(nct: str) -> dict[str, tuple[Any, Any]]:
    xml, v2 = _read_pair(nct)
    _drop_one_format_fields(xml, v2)
    x_fields, v_fields = _fields(xml), _fields(v2)
    return {
        key: (x_fields.get(key), v_fields.get(key))
        for key in sorted(set(x_fields) | set(v_fields))
        if x_fields.get(key) != v_fields.get(key)
    }


@pytest.mark.parametrize("nct", PAIRS)
def test_xml_and_v2_records_agree(nct: str) -> None:
    differences = _differences(nct)
    excluded = REGISTRY_UPDATES.get(nct, ("", "", {}))[2]
    unexpected = {key: values for key, values in differences.items() if key not in excluded}
    assert not unexpected, "\n".join(
        f"{key}:\n  xml: {values[0]!r}\n  v2:  {values[1]!r}" for key, values in unexpected.items()
    )


@pytest.mark.parametrize("nct", sorted(REGISTRY_UPDATES))
def test_every_update_exclusion_is_a_real_difference(nct: str) -> None:
    # An exclusion that no longer differs would hide a future reader regression: keep the list exact.
    differences = _differences(nct)
    stale = sorted(set(REGISTRY_UPDATES[nct][2]) - set(differences))
    assert not stale, f"{nct}: excluded fields that agree after all: {stale}"


@pytest.mark.parametrize("nct", PAIRS)
def test_snapshot_versions_are_what_the_exclusions_assume(nct: str) -> None:
    xml, v2 = _read_pair(nct)
    xml_posted, v2_posted = xml["status"]["last_update_post"]["date"], v2["status"]["last_update_post"]["date"]
    if nct in REGISTRY_UPDATES:
        assert (xml_posted, v2_posted) == REGISTRY_UPDATES[nct][:2]
    else:
        assert xml_posted == v2_posted, f"{nct}: the two snapshots are different versions"


def test_text_fields_are_rendered_like_v2() -> None:
    """The hard-wrapped legacy text becomes v2's Markdown exactly (lists, nesting, escapes)."""
    compared = 0
    for nct in PAIRS:
        xml, v2 = _read_pair(nct)
        for key in ("brief_summary", "detailed_description"):
            assert xml[key] == v2[key], f"{nct} {key}"
            compared += xml[key] is not None
        for key in ("criteria", "study_population"):
            assert xml["eligibility"][key] == v2["eligibility"][key], f"{nct} eligibility.{key}"
            compared += xml["eligibility"][key] is not None
    assert compared >= 15
