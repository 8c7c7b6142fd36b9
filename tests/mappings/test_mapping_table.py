"""``mappings/README.md`` stays complete and honest as registry fields, record fields and mappings change.

The v2 field lists below were derived from ``../shared/corpus/schemas/ctgov-api-v2-studies-metadata.json``
and are committed here so the completeness checks run without the corpus; when the corpus is
present, ``test_committed_field_lists_match_the_v2_metadata`` checks the lists against it.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any

import pytest
from fhir.resources import get_fhir_model_class as r5_model
from fhir.resources.R4B import get_fhir_model_class as r4_model
from pydantic import BaseModel

from adapter.pipeline import convert_bytes
from adapter.record import TrialRecord
from mappings.codes import table
from mappings.r4 import R4_STATUS, R4_STATUS_BY_CTGOV, XVER

REPO = Path(__file__).resolve().parents[2]
README = REPO / "mappings" / "README.md"
CODES = REPO / "mappings" / "codes"
FIXTURES = REPO / "fixtures"
V2_METADATA = REPO.parent / "shared" / "corpus" / "schemas" / "ctgov-api-v2-studies-metadata.json"

HEADER = (
    "CT.gov v2 path",
    "legacy XML element",
    "WHO ICTRP element",
    "TrialRecord field",
    "R4 element",
    "R5 element",
    "notes",
)
PATH, XML, ICTRP, RECORD, R4, R5, NOTES = range(len(HEADER))
STATUS_HEADER = ("CT.gov Status", "display", "R5 progressStatus.state (research-study-status)", "R4 status")
REGISTRY_HEADER = ("family", "registry", "system", "basis", "ICTRP prefix", "v2 SecondaryIdType")
RESOURCE_TYPES = (
    "ResearchStudy",
    "PlanDefinition",
    "Group",
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
)
EMPTY = {"", "—", "-"}
# "Not mapped" followed by a reason of at least three words.
NOT_MAPPED = re.compile(r"\bnot mapped\b\W+(?:\S+\s+){2,}\S", re.IGNORECASE)


def _module(name: str, *tails: str) -> tuple[str, ...]:
    return tuple(f"protocolSection.{name}.{tail}" for tail in tails)


V2_PROTOCOL_LEAVES: tuple[str, ...] = (
    *_module(
        "identificationModule",
        "nctId", "nctIdAliases", "orgStudyIdInfo.id", "orgStudyIdInfo.type", "orgStudyIdInfo.link",
        "secondaryIdInfos.id", "secondaryIdInfos.type", "secondaryIdInfos.domain", "secondaryIdInfos.link",
        "briefTitle", "officialTitle", "acronym", "organization.fullName", "organization.class",
    ),
    *_module(
        "statusModule",
        "statusVerifiedDate", "overallStatus", "lastKnownStatus", "delayedPosting", "whyStopped",
        "expandedAccessInfo.hasExpandedAccess", "expandedAccessInfo.nctId", "expandedAccessInfo.statusForNctId",
        "startDateStruct.date", "startDateStruct.type", "primaryCompletionDateStruct.date",
        "primaryCompletionDateStruct.type", "completionDateStruct.date", "completionDateStruct.type",
        "studyFirstSubmitDate", "studyFirstSubmitQcDate", "studyFirstPostDateStruct.date",
        "studyFirstPostDateStruct.type", "resultsWaived", "resultsFirstSubmitDate", "resultsFirstSubmitQcDate",
        "resultsFirstPostDateStruct.date", "resultsFirstPostDateStruct.type", "dispFirstSubmitDate",
        "dispFirstSubmitQcDate", "dispFirstPostDateStruct.date", "dispFirstPostDateStruct.type",
        "lastUpdateSubmitDate", "lastUpdatePostDateStruct.date", "lastUpdatePostDateStruct.type",
    ),
    *_module(
        "sponsorCollaboratorsModule",
        "responsibleParty.type", "responsibleParty.investigatorFullName", "responsibleParty.investigatorTitle",
        "responsibleParty.investigatorAffiliation", "responsibleParty.oldNameTitle",
        "responsibleParty.oldOrganization", "leadSponsor.name", "leadSponsor.class", "collaborators.name",
        "collaborators.class",
    ),
    *_module(
        "oversightModule",
        "oversightHasDmc", "isFdaRegulatedDrug", "isFdaRegulatedDevice", "isUnapprovedDevice", "isPpsd",
        "isUsExport", "fdaaa801Violation",
    ),
    *_module("descriptionModule", "briefSummary", "detailedDescription"),
    *_module("conditionsModule", "conditions", "keywords"),
    *_module(
        "designModule",
        "studyType", "nPtrsToThisExpAccNctId", "expandedAccessTypes.individual", "expandedAccessTypes.intermediate",
        "expandedAccessTypes.treatment", "patientRegistry", "targetDuration", "phases", "designInfo.allocation",
        "designInfo.interventionModel", "designInfo.interventionModelDescription", "designInfo.primaryPurpose",
        "designInfo.observationalModel", "designInfo.timePerspective", "designInfo.maskingInfo.masking",
        "designInfo.maskingInfo.maskingDescription", "designInfo.maskingInfo.whoMasked", "bioSpec.retention",
        "bioSpec.description", "enrollmentInfo.count", "enrollmentInfo.type",
    ),
    *_module(
        "armsInterventionsModule",
        "armGroups.label", "armGroups.type", "armGroups.description", "armGroups.interventionNames",
        "interventions.type", "interventions.name", "interventions.description", "interventions.armGroupLabels",
        "interventions.otherNames",
    ),
    *_module(
        "outcomesModule",
        "primaryOutcomes.measure", "primaryOutcomes.description", "primaryOutcomes.timeFrame",
        "secondaryOutcomes.measure", "secondaryOutcomes.description", "secondaryOutcomes.timeFrame",
        "otherOutcomes.measure", "otherOutcomes.description", "otherOutcomes.timeFrame",
    ),
    *_module(
        "eligibilityModule",
        "eligibilityCriteria", "healthyVolunteers", "sex", "genderBased", "genderDescription", "minimumAge",
        "maximumAge", "stdAges", "studyPopulation", "samplingMethod",
    ),
    *_module(
        "contactsLocationsModule",
        "centralContacts.name", "centralContacts.role", "centralContacts.phone", "centralContacts.phoneExt",
        "centralContacts.email", "overallOfficials.name", "overallOfficials.affiliation", "overallOfficials.role",
        "locations.facility", "locations.status", "locations.city", "locations.state", "locations.zip",
        "locations.country", "locations.contacts.name", "locations.contacts.role", "locations.contacts.phone",
        "locations.contacts.phoneExt", "locations.contacts.email", "locations.geoPoint",
    ),
    *_module(
        "referencesModule",
        "references.pmid", "references.type", "references.citation", "references.retractions.pmid",
        "references.retractions.source", "seeAlsoLinks.label", "seeAlsoLinks.url", "availIpds.id", "availIpds.type",
        "availIpds.url", "availIpds.comment",
    ),
    *_module(
        "ipdSharingStatementModule",
        "ipdSharing", "description", "infoTypes", "timeFrame", "accessCriteria", "url",
    ),
)  # fmt: skip
"""Every leaf of the v2 ``protocolSection`` (151 fields), in metadata order."""

V2_OTHER_LEAVES: tuple[str, ...] = (
    "annotationSection.annotationModule.unpostedAnnotation.unpostedResponsibleParty",
    "annotationSection.annotationModule.unpostedAnnotation.unpostedEvents.type",
    "annotationSection.annotationModule.unpostedAnnotation.unpostedEvents.date",
    "annotationSection.annotationModule.unpostedAnnotation.unpostedEvents.dateUnknown",
    "annotationSection.annotationModule.violationAnnotation.violationEvents.type",
    "annotationSection.annotationModule.violationAnnotation.violationEvents.description",
    "annotationSection.annotationModule.violationAnnotation.violationEvents.creationDate",
    "annotationSection.annotationModule.violationAnnotation.violationEvents.issuedDate",
    "annotationSection.annotationModule.violationAnnotation.violationEvents.releaseDate",
    "annotationSection.annotationModule.violationAnnotation.violationEvents.postedDate",
    "documentSection.largeDocumentModule.noSap",
    "documentSection.largeDocumentModule.largeDocs.typeAbbrev",
    "documentSection.largeDocumentModule.largeDocs.hasProtocol",
    "documentSection.largeDocumentModule.largeDocs.hasSap",
    "documentSection.largeDocumentModule.largeDocs.hasIcf",
    "documentSection.largeDocumentModule.largeDocs.label",
    "documentSection.largeDocumentModule.largeDocs.date",
    "documentSection.largeDocumentModule.largeDocs.uploadDate",
    "documentSection.largeDocumentModule.largeDocs.filename",
    "documentSection.largeDocumentModule.largeDocs.size",
    "derivedSection.miscInfoModule.versionHolder",
    "derivedSection.miscInfoModule.removedCountries",
    "derivedSection.miscInfoModule.submissionTracking.estimatedResultsFirstSubmitDate",
    "derivedSection.miscInfoModule.submissionTracking.firstMcpInfo.postDateStruct.date",
    "derivedSection.miscInfoModule.submissionTracking.firstMcpInfo.postDateStruct.type",
    "derivedSection.miscInfoModule.submissionTracking.submissionInfos.releaseDate",
    "derivedSection.miscInfoModule.submissionTracking.submissionInfos.unreleaseDate",
    "derivedSection.miscInfoModule.submissionTracking.submissionInfos.unreleaseDateUnknown",
    "derivedSection.miscInfoModule.submissionTracking.submissionInfos.resetDate",
    "derivedSection.miscInfoModule.submissionTracking.submissionInfos.mcpReleaseN",
    "derivedSection.conditionBrowseModule.meshes.id",
    "derivedSection.conditionBrowseModule.meshes.term",
    "derivedSection.conditionBrowseModule.ancestors.id",
    "derivedSection.conditionBrowseModule.ancestors.term",
    "derivedSection.conditionBrowseModule.browseLeaves.id",
    "derivedSection.conditionBrowseModule.browseLeaves.name",
    "derivedSection.conditionBrowseModule.browseLeaves.asFound",
    "derivedSection.conditionBrowseModule.browseLeaves.relevance",
    "derivedSection.conditionBrowseModule.browseBranches.abbrev",
    "derivedSection.conditionBrowseModule.browseBranches.name",
    "derivedSection.interventionBrowseModule.meshes.id",
    "derivedSection.interventionBrowseModule.meshes.term",
    "derivedSection.interventionBrowseModule.ancestors.id",
    "derivedSection.interventionBrowseModule.ancestors.term",
    "derivedSection.interventionBrowseModule.browseLeaves.id",
    "derivedSection.interventionBrowseModule.browseLeaves.name",
    "derivedSection.interventionBrowseModule.browseLeaves.asFound",
    "derivedSection.interventionBrowseModule.browseLeaves.relevance",
    "derivedSection.interventionBrowseModule.browseBranches.abbrev",
    "derivedSection.interventionBrowseModule.browseBranches.name",
    "hasResults",
)
"""Every leaf outside ``protocolSection`` except ``resultsSection`` (covered by one ``resultsSection.*`` row)."""


# --- parsing the README --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    line: int
    cells: tuple[str, ...]

    def tokens(self, column: int) -> list[str]:
        """The backticked items of a cell."""
        return re.findall(r"`([^`]+)`", self.cells[column])

    def is_empty(self, column: int) -> bool:
        return self.cells[column].strip() in EMPTY


def _cells(line: str) -> tuple[str, ...]:
    # The README keeps '|' out of cell text, so a plain split is exact.
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def tables(text: str, header: tuple[str, ...]) -> list[Row]:
    """Body rows of every markdown table in ``text`` whose header row is ``header``."""
    rows: list[Row] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].startswith("|") and _cells(lines[index]) == header:
            index += 2  # header and separator
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(Row(index + 1, _cells(lines[index])))
                index += 1
        else:
            index += 1
    return rows


README_TEXT = README.read_text(encoding="utf-8")
ROWS = tables(README_TEXT, HEADER)


def _where(row: Row) -> str:
    return f"mappings/README.md line {row.line}"


# --- TrialRecord fields ----------------------------------------------------------------------------


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The element type of an optional / list annotation, and whether it is a list."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, UnionType):
            annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        elif origin is list:
            is_list = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, is_list


def record_fields(model: type[BaseModel] = TrialRecord, prefix: str = "") -> tuple[set[str], set[str]]:
    """(leaf paths, inner paths) of a pydantic model: ``status.start.date``, ``sites[].contacts[].name`` ..."""
    leaves: set[str] = set()
    inner: set[str] = set()
    for name, field in model.model_fields.items():
        kind, is_list = _unwrap(field.annotation)
        path = prefix + name
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            inner.update({path, path + "[]"} if is_list else {path})
            sub_leaves, sub_inner = record_fields(kind, path + ("[]." if is_list else "."))
            leaves |= sub_leaves
            inner |= sub_inner
        else:
            leaves.add(path)
    return leaves, inner


RECORD_LEAVES, RECORD_INNER = record_fields()


# --- FHIR element paths ----------------------------------------------------------------------------


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The fhir.resources model class behind an element's annotation, ``None`` for a primitive."""
    stack = [annotation]
    while stack:
        current = stack.pop()
        if hasattr(current, "get_model_klass"):
            return current.get_model_klass()
        stack.extend(typing.get_args(current))
    return None


def element_problem(path: str, model_class: Any) -> str | None:
    """Why ``path`` (README notation: ``[...]`` selectors, ``_x`` for primitive extensions) is no element path."""
    parts = re.sub(r"\[[^\]]*\]", "", path).split(".")
    model: type[BaseModel] | None = model_class(parts[0])
    for part in parts[1:]:
        if model is None:
            return f"'{part}' below a primitive element"
        name = f"{part[1:]}__ext" if part.startswith("_") else part
        field = model.model_fields.get(name)
        if field is None:
            return f"{model.__name__} has no element '{part}'"
        model = _model_of(field.annotation)
    return None


# --- the tests -----------------------------------------------------------------------------------


def test_the_table_is_there_and_every_row_has_seven_cells():
    assert len(ROWS) > len(V2_PROTOCOL_LEAVES)
    bad = [f"{_where(row)}: {len(row.cells)} cells" for row in ROWS if len(row.cells) != len(HEADER)]
    assert not bad, bad


def _metadata_leaves(node: dict[str, Any], prefix: str = "") -> list[str]:
    path = f"{prefix}.{node['name']}" if prefix else node["name"]
    children = node.get("children")
    if not children:
        return [path]
    return [leaf for child in children for leaf in _metadata_leaves(child, path)]


def test_committed_field_lists_match_the_v2_metadata():
    if not V2_METADATA.is_file():
        pytest.skip("../shared/corpus is not beside this checkout")
    sections = json.loads(V2_METADATA.read_text(encoding="utf-8"))
    protocol: list[str] = []
    other: list[str] = []
    for section in sections:
        if section["name"] == "protocolSection":
            protocol += _metadata_leaves(section)
        elif section["name"] != "resultsSection":
            other += _metadata_leaves(section)
    assert list(V2_PROTOCOL_LEAVES) == protocol
    assert sorted(V2_OTHER_LEAVES) == sorted(other)
    assert {s["name"] for s in sections} == {
        "protocolSection", "resultsSection", "annotationSection", "documentSection", "derivedSection", "hasResults"
    }  # fmt: skip


def test_every_protocol_field_has_exactly_one_row():
    rows_of: dict[str, list[int]] = {path: [] for path in V2_PROTOCOL_LEAVES}
    unknown = []
    for row in ROWS:
        for token in row.tokens(PATH):
            if token.startswith("protocolSection."):
                if token in rows_of:
                    rows_of[token].append(row.line)
                else:
                    unknown.append(f"{_where(row)}: {token}")
    assert not unknown, f"not a v2 protocolSection leaf: {unknown}"
    missing = [path for path, lines in rows_of.items() if not lines]
    assert not missing, f"protocolSection fields without a row: {missing}"
    repeated = {path: lines for path, lines in rows_of.items() if len(lines) > 1}
    assert not repeated, f"protocolSection fields in more than one row (README lines): {repeated}"


def test_every_other_v2_field_is_covered_and_every_path_is_real():
    exact: set[str] = set()
    wildcards: list[str] = []
    unknown = []
    for row in ROWS:
        for token in row.tokens(PATH):
            if token.startswith("protocolSection."):
                continue
            if token.endswith(".*"):
                prefix = token[:-1]
                if token != "resultsSection.*" and not any(p.startswith(prefix) for p in V2_OTHER_LEAVES):
                    unknown.append(f"{_where(row)}: {token}")
                wildcards.append(prefix)
            elif token in V2_OTHER_LEAVES:
                exact.add(token)
            else:
                unknown.append(f"{_where(row)}: {token}")
    assert not unknown, f"no such v2 field: {unknown}"
    uncovered = [p for p in V2_OTHER_LEAVES if p not in exact and not any(p.startswith(w) for w in wildcards)]
    assert not uncovered, f"v2 fields outside protocolSection without a row: {uncovered}"
    assert "resultsSection." in wildcards


def test_each_row_is_mapped_or_says_why_not():
    problems = []
    for row in ROWS:
        mapped = not row.is_empty(R4) and not row.is_empty(R5)
        says_not_mapped = bool(re.search(r"\bnot mapped\b", row.cells[NOTES], re.IGNORECASE))
        if mapped and says_not_mapped:
            problems.append(f"{_where(row)}: has R4/R5 elements but its notes say 'not mapped'")
        elif not mapped and not NOT_MAPPED.search(row.cells[NOTES]):
            problems.append(f"{_where(row)}: no R4/R5 element and no 'not mapped' with a reason")
        if row.is_empty(R4) != row.is_empty(R5):
            problems.append(f"{_where(row)}: mapped in one FHIR version only")
    assert not problems, problems


def test_every_trialrecord_field_is_named_and_every_name_is_a_field():
    named: set[str] = set()
    wrong = []
    for row in ROWS:
        for token in row.tokens(RECORD):
            named.add(token)
            if token not in RECORD_LEAVES and token not in RECORD_INNER:
                wrong.append(f"{_where(row)}: {token}")
    assert not wrong, f"not a TrialRecord field: {wrong}"
    missing = sorted(RECORD_LEAVES - named)
    assert not missing, f"TrialRecord fields named in no row: {missing}"


@pytest.mark.parametrize(("column", "model_class"), [(R4, r4_model), (R5, r5_model)], ids=["R4", "R5"])
def test_every_element_path_exists_in_its_fhir_version(column, model_class):
    problems = []
    for row in ROWS:
        for token in row.tokens(column):
            if token.split(".", 1)[0] not in RESOURCE_TYPES:
                problems.append(f"{_where(row)}: {token} does not start with a resource the Bundle holds")
                continue
            problem = element_problem(token, model_class)
            if problem:
                problems.append(f"{_where(row)}: {token}: {problem}")
    assert not problems, problems


def test_every_code_table_is_mentioned():
    missing = [path.name for path in sorted(CODES.glob("*.json")) if path.name not in README_TEXT]
    assert not missing, f"code tables not named in mappings/README.md: {missing}"


def test_status_table_matches_the_code_tables_and_r4_conversion():
    rows = tables(README_TEXT, STATUS_HEADER)
    statuses = table("overall_status")
    documented = {}
    for row in rows:
        (code,) = row.tokens(0)
        documented[code] = row
    assert set(documented) == set(statuses)
    for code, row in documented.items():
        r5 = statuses[code]["code"]
        expected_r4 = R4_STATUS[r5] if r5 else R4_STATUS_BY_CTGOV[code]
        assert row.tokens(2) == ([r5] if r5 else []), f"{_where(row)}: R5 state of {code}"
        assert row.tokens(3) == [expected_r4], f"{_where(row)}: R4 status of {code}"
        assert row.cells[1] == statuses[code]["display"], f"{_where(row)}: display of {code}"


def test_identifier_systems_match_the_registries_table():
    rows = tables(README_TEXT, REGISTRY_HEADER)
    registries = table("registries")
    documented = {row.tokens(0)[0]: row for row in rows}
    assert set(documented) == set(registries)
    for family, row in documented.items():
        entry = registries[family]
        assert row.tokens(2) == [entry["system"]], f"{_where(row)}: system of {family}"
        assert row.cells[3].startswith(entry["system_basis"]), f"{_where(row)}: basis of {family}"
        assert row.tokens(5) == [entry["v2_secondary_id_type"]], f"{_where(row)}: SecondaryIdType of {family}"
    for kind, row in table("secondary_id_type").items():
        if row["system"]:
            assert f"`{row['system']}`" in README_TEXT, f"system of secondary id type {kind}"


def _extension_urls(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "extension" and isinstance(item, list):
                found.update(ext["url"] for ext in item if ext.get("url", "").startswith("http"))
            _extension_urls(item, found)
    elif isinstance(value, list):
        for item in value:
            _extension_urls(item, found)


def test_every_extension_the_fixtures_produce_is_documented():
    inputs = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".json", ".xml") and "golden" not in p.parts)
    assert inputs
    urls: set[str] = set()
    for path in inputs:
        for version in ("4.0", "5.0"):
            for converted in convert_bytes(path.read_bytes(), path.name, version):
                assert converted.error is None, f"{path.name}: {converted.error}"
                _extension_urls(converted.resources, urls)
    missing = []
    for url in sorted(urls):
        if url.startswith(XVER):
            # Documented as ``xver:<path>`` in the table and as ``<Type>.<path>`` in the extension list.
            type_path = url[len(XVER) :]
            if f"`{type_path}`" not in README_TEXT or f"xver:{type_path.split('.', 1)[1]}]" not in README_TEXT:
                missing.append(url)
        elif f"`{url}`" not in README_TEXT:
            missing.append(url)
    assert not missing, f"extension URLs emitted but not documented in mappings/README.md: {missing}"
