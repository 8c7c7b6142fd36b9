"""ClinicalTrials.gov API v2 JSON -> ``TrialRecord``.

Accepts one study object (``GET /api/v2/studies/{nctId}``), a search page
(``{"studies": [...], "nextPageToken": ...}``) or a JSON array of studies (the website's
"Download" export).  The v2 vocabulary is the ``TrialRecord`` vocabulary, so enum values pass
through unchanged.

Every ``protocolSection`` field of the v2 schema (API 2.0.5 and the 2.0.0 draft) is mapped, plus
``documentSection`` (large documents and ``noSap``), ``annotationSection`` (unposted results
events and FDAAA 801 violation events), the derived MeSH terms and their ancestors, the derived
removed countries and the data version.  Deliberately not mapped (known, so not reported):

- ``resultsSection``: results are out of scope; only ``hasResults`` is kept;
- ``browseLeaves``/``browseBranches``: CT.gov website navigation built from the MeSH terms we keep;
- ``miscInfoModule.submissionTracking``: the registry's own QC history of results submissions,
  derived from the same events as ``annotationSection``'s unposted events (which are read);
- ``miscInfoModule.modelPredictions``: CT.gov's machine-predicted BMI limits (2.0.0 draft), not
  registered by the sponsor.

Two keys of the website's "Download" export that are not in the v2 schema are read as what they
are: ``contactsLocationsModule.locations_nested`` is a second copy of ``locations`` (identical in
all 33 corpus records that have it: skipped when identical, reported when not), and
``interventions[].interventionMappedName`` is an empty list in every corpus record (skipped when
empty; a non-empty value, whose meaning is undocumented, is reported).

Keys the schema does not know (fields the registry adds later), values of the wrong JSON type and
invalid dates are reported in ``record.unmapped`` as dotted paths (list positions omitted, so each
path appears once); a path with a problem carries it in parentheses, e.g.
``protocolSection.statusModule.startDateStruct.date (invalid date '2012-13')``.

Speed matters (the reader runs over the whole registry in batch), so this is plain dict access
and one pydantic validation of the finished record, no schema validation of the input.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from adapter.errors import InputError, RecordError
from adapter.record import TrialRecord

REGISTRY = "ctgov"
FORMAT = "ctgov-v2-json"
STUDY_URL = "https://clinicaltrials.gov/study/{nct}"
PROVIDED_DOCS_URL = "https://clinicaltrials.gov/ProvidedDocs/{tail}/{nct}/{filename}"

_NCT = re.compile(r"^NCT\d{8}$")
# Same grammar as adapter.record.PartialDate, checked here so a bad date is reported, not fatal.
_PARTIAL_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
_ENTITY = re.compile(r"(\\?)&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Characters CT.gov backslash-escapes in its markdown; an entity typed after such an escape
# (``\&lt;``) must stay escaped once decoded, anything else loses the now meaningless backslash.
_MD_ESCAPED = frozenset("<>[]*&^~\\_`#|")
_MANY_NEWLINES = re.compile(r"\n{3,}")
# C0 controls other than tab/newline/carriage return never carry meaning in registry text and are
# not allowed in XML 1.0 (FHIR XML output), so they are removed rather than kept or reported.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The same characters as bytes.  In UTF-8 each is a single byte and no byte of a multi-byte sequence
# is below 0x80, so the encoded text contains one of these bytes exactly when the text contains one
# of the characters.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_NO_AGE = frozenset({"N/A", "NA", "NONE", "NO LIMIT"})

# Known keys per v2 object (OpenAPI 2.0.5 plus the 2.0.0 draft).  Keys outside these sets are
# reported, keys inside but not read below are either mapped elsewhere or listed as ignored.
_STUDY = frozenset(
    {"protocolSection", "resultsSection", "annotationSection", "documentSection", "derivedSection", "hasResults"}
)
_PROTOCOL = frozenset(
    {
        "identificationModule", "statusModule", "sponsorCollaboratorsModule", "oversightModule",
        "descriptionModule", "conditionsModule", "designModule", "armsInterventionsModule", "outcomesModule",
        "eligibilityModule", "contactsLocationsModule", "referencesModule", "ipdSharingStatementModule",
    }
)  # fmt: skip
_IDENTIFICATION = frozenset(
    {"nctId", "nctIdAliases", "orgStudyIdInfo", "secondaryIdInfos", "briefTitle", "officialTitle", "acronym",
     "organization"}
)  # fmt: skip
_ORG_STUDY_ID = frozenset({"id", "type", "link"})
_SECONDARY_ID = frozenset({"id", "type", "domain", "link"})
_ORGANIZATION = frozenset({"fullName", "class"})
_STATUS = frozenset(
    {
        "statusVerifiedDate", "overallStatus", "lastKnownStatus", "delayedPosting", "whyStopped",
        "expandedAccessInfo", "startDateStruct", "primaryCompletionDateStruct", "completionDateStruct",
        "studyFirstSubmitDate", "studyFirstSubmitQcDate", "studyFirstPostDateStruct", "resultsWaived",
        "resultsFirstSubmitDate", "resultsFirstSubmitQcDate", "resultsFirstPostDateStruct", "dispFirstSubmitDate",
        "dispFirstSubmitQcDate", "dispFirstPostDateStruct", "lastUpdateSubmitDate", "lastUpdatePostDateStruct",
    }
)  # fmt: skip
_EXPANDED_ACCESS_INFO = frozenset({"hasExpandedAccess", "nctId", "statusForNctId"})
_DATE_STRUCT = frozenset({"date", "type"})
_SPONSORS = frozenset({"responsibleParty", "leadSponsor", "collaborators"})
_RESPONSIBLE_PARTY = frozenset(
    {"type", "investigatorFullName", "investigatorTitle", "investigatorAffiliation", "oldNameTitle",
     "oldOrganization"}
)  # fmt: skip
_SPONSOR = frozenset({"name", "class"})
_OVERSIGHT = frozenset(
    {"oversightHasDmc", "isFdaRegulatedDrug", "isFdaRegulatedDevice", "isUnapprovedDevice", "isPpsd", "isUsExport",
     "fdaaa801Violation"}
)  # fmt: skip
_DESCRIPTION = frozenset({"briefSummary", "detailedDescription"})
_CONDITIONS = frozenset({"conditions", "keywords"})
_DESIGN = frozenset(
    {"studyType", "nPtrsToThisExpAccNctId", "expandedAccessTypes", "patientRegistry", "targetDuration", "phases",
     "designInfo", "bioSpec", "enrollmentInfo"}
)  # fmt: skip
_EXPANDED_ACCESS_TYPES = {"individual": "INDIVIDUAL", "intermediate": "INTERMEDIATE", "treatment": "TREATMENT"}
_DESIGN_INFO = frozenset(
    {"allocation", "interventionModel", "interventionModelDescription", "primaryPurpose", "observationalModel",
     "timePerspective", "maskingInfo"}
)  # fmt: skip
_MASKING = frozenset({"masking", "maskingDescription", "whoMasked"})
_BIO_SPEC = frozenset({"retention", "description"})
_ENROLLMENT = frozenset({"count", "type"})
_ARMS_INTERVENTIONS = frozenset({"armGroups", "interventions"})
_ARM = frozenset({"label", "type", "description", "interventionNames"})
_INTERVENTION = frozenset({"type", "name", "description", "armGroupLabels", "otherNames", "interventionMappedName"})
_OUTCOME_LISTS = {"primaryOutcomes": "primary", "secondaryOutcomes": "secondary", "otherOutcomes": "other"}
_OUTCOME = frozenset({"measure", "description", "timeFrame"})
_ELIGIBILITY = frozenset(
    {"eligibilityCriteria", "healthyVolunteers", "sex", "genderBased", "genderDescription", "minimumAge",
     "maximumAge", "stdAges", "studyPopulation", "samplingMethod"}
)  # fmt: skip
_CONTACTS_LOCATIONS = frozenset({"centralContacts", "overallOfficials", "locations", "locations_nested"})
_CONTACT = frozenset({"name", "role", "phone", "phoneExt", "email"})
_OFFICIAL = frozenset({"name", "affiliation", "role"})
_LOCATION = frozenset({"facility", "status", "city", "state", "zip", "country", "contacts", "geoPoint"})
_GEO_POINT = frozenset({"lat", "lon"})
_REFERENCES = frozenset({"references", "seeAlsoLinks", "availIpds"})
_REFERENCE = frozenset({"pmid", "type", "citation", "retractions"})
_RETRACTION = frozenset({"pmid", "source"})
_SEE_ALSO = frozenset({"label", "url"})
_AVAIL_IPD = frozenset({"id", "type", "url", "comment"})
_IPD_SHARING = frozenset({"ipdSharing", "description", "infoTypes", "timeFrame", "accessCriteria", "url"})
_DOCUMENT_SECTION = frozenset({"largeDocumentModule"})
_LARGE_DOC_MODULE = frozenset({"noSap", "largeDocs"})
_LARGE_DOC = frozenset(
    {"typeAbbrev", "hasProtocol", "hasSap", "hasIcf", "label", "date", "uploadDate", "filename", "size"}
)
_ANNOTATION_SECTION = frozenset({"annotationModule"})
_ANNOTATION_MODULE = frozenset({"unpostedAnnotation", "violationAnnotation"})
_UNPOSTED = frozenset({"unpostedResponsibleParty", "unpostedEvents"})
_UNPOSTED_EVENT = frozenset({"type", "date", "dateUnknown"})
_VIOLATION = frozenset({"violationEvents"})
_VIOLATION_EVENT = frozenset({"type", "description", "creationDate", "issuedDate", "releaseDate", "postedDate"})
_DERIVED = frozenset({"miscInfoModule", "conditionBrowseModule", "interventionBrowseModule"})
_MISC_INFO = frozenset({"versionHolder", "removedCountries", "submissionTracking", "modelPredictions"})
_BROWSE = frozenset({"meshes", "ancestors", "browseLeaves", "browseBranches"})
_MESH = frozenset({"id", "term"})

_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})

_PS = "protocolSection"


def _show(value: Any) -> str:
    """A value quoted for a report line, cut short so one bad field cannot flood the warnings."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_calendar_date(text: str) -> bool:
    """``2019-02-30`` and year 0 fit the pattern but are no dates (and FHIR validators reject them)."""
    if text.startswith("0000"):
        return False
    if len(text) == 10:
        try:
            datetime.date.fromisoformat(text)
        except ValueError:
            return False
    return True


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _decode_entities(text: str, markup: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        entity = match.group(0)[len(match.group(1)) :]
        decoded = html.unescape(entity)
        if decoded == entity:  # unknown entity name: leave the text as written
            return match.group(0)
        if match.group(1) and markup:
            return "\\" + decoded if decoded in _MD_ESCAPED else decoded
        return match.group(1) + decoded

    # Exporters double-escape (``&amp;lt;``), so decode until stable; three rounds cover every
    # case seen, and the bound keeps hostile input from looping.
    for _ in range(3):
        decoded = _ENTITY.sub(replace, text)
        if decoded == text:
            break
        text = decoded
    return text


def _has_control(text: str) -> bool:
    """Whether ``_CONTROL`` occurs in ``text``: two C passes (encode, delete), about three times
    faster on long Markdown than the regex engine's per-character class test."""
    data = text.encode("utf-8", "surrogatepass")
    return len(data.translate(None, _CONTROL_BYTES)) != len(data)


def _clean_text(text: str) -> str:
    if "&" in text:
        text = _decode_entities(text, markup=False)
    # Fast path for the common case: no line breaks, tabs, odd Unicode spaces or double spaces.
    if text.isprintable() and "  " not in text:
        return text.strip(" ")
    if _has_control(text):
        text = _CONTROL.sub("", text)
    return " ".join(text.split())


def _clean_markup(text: str) -> str:
    if "&" in text:
        text = _decode_entities(text, markup=True)
    if text.isprintable():
        return text.strip(" ")
    if _has_control(text):
        text = _CONTROL.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in text:
        text = "\n".join([line.rstrip() for line in text.split("\n")])
        if "\n\n\n" in text:
            text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


class _Reader:
    """State for reading one study: the problems found, reported as ``unmapped`` paths."""

    __slots__ = ("unmapped",)

    def __init__(self) -> None:
        self.unmapped: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def note(self, path: str, problem: str | None = None) -> None:
        self.unmapped.add(f"{path} ({problem})" if problem else path)

    def wrong_type(self, path: str, expected: str, value: Any) -> None:
        self.note(path, f"expected {expected}, got {_type_name(value)}")

    def check_keys(self, obj: dict[str, Any], known: frozenset[str], path: str) -> None:
        # issuperset() walks the keys without building a set: the common case (every key known)
        # allocates nothing.
        if not known.issuperset(obj):
            for key in obj.keys() - known:
                self.note(f"{path}.{key}" if path else key)

    # -- containers --------------------------------------------------------------------------

    def obj(self, value: Any, path: str, known: frozenset[str]) -> dict[str, Any] | None:
        """A v2 object; anything else is reported and read as absent."""
        if isinstance(value, dict):
            self.check_keys(value, known, path)
            return value
        if value is not None:
            self.wrong_type(path, "object", value)
        return None

    def objs(self, value: Any, path: str, known: frozenset[str]) -> list[dict[str, Any]]:
        """A list of v2 objects; a lone object is read as a list of one, other items are reported."""
        if isinstance(value, dict):
            value = [value]
        elif not isinstance(value, list):
            if value is not None:
                self.wrong_type(path, "list", value)
            return []
        items = []
        for item in value:
            if isinstance(item, dict):
                self.check_keys(item, known, path)
                items.append(item)
            elif item is not None:
                self.wrong_type(path, "object", item)
        return items

    # -- scalars -----------------------------------------------------------------------------

    def text(self, value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return _clean_text(value) or None
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.wrong_type(path, "text", value)
        return None

    def markup(self, value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return _clean_markup(value) or None
        return self.text(value, path)

    def texts(self, value: Any, path: str) -> list[str]:
        """A list of strings; a lone string is read as a list of one, empty entries are dropped."""
        if isinstance(value, str):
            value = [value]
        elif not isinstance(value, list):
            if value is not None:
                self.wrong_type(path, "list", value)
            return []
        result = []
        for item in value:
            text = self.text(item, path)
            if text is not None:
                result.append(text)
        return result

    def boolean(self, value: Any, path: str) -> bool | None:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, str):
            word = value.strip().lower()
            if not word:
                return None
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
        elif isinstance(value, int | float):
            if value in (0, 1):
                return bool(value)
        else:
            self.wrong_type(path, "boolean", value)
            return None
        self.note(path, f"not a boolean: {_show(value)}")
        return None

    def integer(self, value: Any, path: str) -> int | None:
        number: int | None = None
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            digits = value.strip().replace(",", "")
            if not digits:
                return None
            if digits.isdigit():
                number = int(digits)
        elif value is None:
            return None
        if number is None or number < 0:
            self.note(path, f"not a count: {_show(value)}")
            return None
        return number

    def number(self, value: Any, path: str) -> float | None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        if value is not None:
            self.note(path, f"not a number: {_show(value)}")
        return None

    def date(self, value: Any, path: str) -> str | None:
        text = self.text(value, path)
        if text is None:
            return None
        if _PARTIAL_DATE.match(text) and _is_calendar_date(text):
            return text
        self.note(path, f"invalid date {_show(text)}")
        return None

    def date_struct(self, value: Any, path: str) -> dict[str, Any] | None:
        struct = self.obj(value, path, _DATE_STRUCT)
        if struct is None:
            return None
        date = self.date(struct.get("date"), f"{path}.date")
        if date is None:
            # A date type without its date says nothing; report it so the loss is visible.
            if struct.get("date") is None and struct.get("type"):
                self.note(path, "type without date")
            return None
        return {"date": date, "type": self.text(struct.get("type"), f"{path}.type")}

    def age(self, value: Any, path: str) -> str | None:
        text = self.text(value, path)
        if text is None or text.upper() in _NO_AGE:
            return None
        return text


def _org(r: _Reader, value: dict[str, Any], path: str, name_key: str) -> dict[str, Any] | None:
    name = r.text(value.get(name_key), f"{path}.{name_key}")
    agency_class = r.text(value.get("class"), f"{path}.class")
    if name is None:
        if agency_class is not None:
            r.note(path, f"entry without {name_key}")
        return None
    return {"name": name, "agency_class": agency_class}


def _contact(r: _Reader, value: dict[str, Any], path: str) -> dict[str, Any] | None:
    contact = {
        "name": r.text(value.get("name"), f"{path}.name"),
        "role": r.text(value.get("role"), f"{path}.role"),
        "phone": r.text(value.get("phone"), f"{path}.phone"),
        "phone_ext": r.text(value.get("phoneExt"), f"{path}.phoneExt"),
        "email": r.text(value.get("email"), f"{path}.email"),
    }
    return contact if any(v is not None for v in contact.values()) else None


def _meshes(r: _Reader, value: Any, path: str) -> list[dict[str, Any]]:
    terms = []
    for mesh in r.objs(value, path, _MESH):
        term = r.text(mesh.get("term"), f"{path}.term")
        mesh_id = r.text(mesh.get("id"), f"{path}.id")
        if term is None:
            if mesh_id is not None:
                r.note(path, "entry without term")
            continue
        terms.append({"id": mesh_id, "term": term})
    return terms


def _read_identification(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.identificationModule"
    record["id_aliases"] = r.texts(module.get("nctIdAliases"), f"{path}.nctIdAliases")
    org_id = r.obj(module.get("orgStudyIdInfo"), f"{path}.orgStudyIdInfo", _ORG_STUDY_ID)
    if org_id is not None:
        p = f"{path}.orgStudyIdInfo"
        value = r.text(org_id.get("id"), f"{p}.id")
        if value is not None:
            record["org_study_id"] = {
                "id": value,
                "type": r.text(org_id.get("type"), f"{p}.type"),
                "link": r.text(org_id.get("link"), f"{p}.link"),
            }
        elif org_id.get("type") or org_id.get("link"):
            r.note(p, "entry without id")
    p = f"{path}.secondaryIdInfos"
    secondary = []
    for info in r.objs(module.get("secondaryIdInfos"), p, _SECONDARY_ID):
        value = r.text(info.get("id"), f"{p}.id")
        if value is None:
            if any(info.get(key) for key in ("type", "domain", "link")):
                r.note(p, "entry without id")
            continue
        secondary.append(
            {
                "id": value,
                "type": r.text(info.get("type"), f"{p}.type"),
                "domain": r.text(info.get("domain"), f"{p}.domain"),
                "link": r.text(info.get("link"), f"{p}.link"),
            }
        )
    record["secondary_ids"] = secondary
    record["brief_title"] = r.text(module.get("briefTitle"), f"{path}.briefTitle")
    record["official_title"] = r.text(module.get("officialTitle"), f"{path}.officialTitle")
    record["acronym"] = r.text(module.get("acronym"), f"{path}.acronym")
    organization = r.obj(module.get("organization"), f"{path}.organization", _ORGANIZATION)
    if organization is not None:
        record["organization"] = _org(r, organization, f"{path}.organization", "fullName")


def _read_status(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.statusModule"
    get = module.get
    status: dict[str, Any] = {
        "overall_status": r.text(get("overallStatus"), f"{path}.overallStatus"),
        "last_known_status": r.text(get("lastKnownStatus"), f"{path}.lastKnownStatus"),
        "status_verified_date": r.date(get("statusVerifiedDate"), f"{path}.statusVerifiedDate"),
        "why_stopped": r.markup(get("whyStopped"), f"{path}.whyStopped"),
        "delayed_posting": r.boolean(get("delayedPosting"), f"{path}.delayedPosting"),
        "results_waived": r.boolean(get("resultsWaived"), f"{path}.resultsWaived"),
    }
    for key, field in (
        ("startDateStruct", "start"),
        ("primaryCompletionDateStruct", "primary_completion"),
        ("completionDateStruct", "completion"),
        ("studyFirstPostDateStruct", "first_post"),
        ("resultsFirstPostDateStruct", "results_first_post"),
        ("dispFirstPostDateStruct", "disp_first_post"),
        ("lastUpdatePostDateStruct", "last_update_post"),
    ):
        status[field] = r.date_struct(get(key), f"{path}.{key}")
    for key, field in (
        ("studyFirstSubmitDate", "first_submit"),
        ("studyFirstSubmitQcDate", "first_submit_qc"),
        ("resultsFirstSubmitDate", "results_first_submit"),
        ("resultsFirstSubmitQcDate", "results_first_submit_qc"),
        ("dispFirstSubmitDate", "disp_first_submit"),
        ("dispFirstSubmitQcDate", "disp_first_submit_qc"),
        ("lastUpdateSubmitDate", "last_update_submit"),
    ):
        status[field] = r.date(get(key), f"{path}.{key}")
    p = f"{path}.expandedAccessInfo"
    info = r.obj(get("expandedAccessInfo"), p, _EXPANDED_ACCESS_INFO)
    if info is not None:
        access = {
            "has_expanded_access": r.boolean(info.get("hasExpandedAccess"), f"{p}.hasExpandedAccess"),
            "nct_id": r.text(info.get("nctId"), f"{p}.nctId"),
            "status_for_nct_id": r.text(info.get("statusForNctId"), f"{p}.statusForNctId"),
        }
        if any(v is not None for v in access.values()):
            status["expanded_access"] = access
    record["status"] = status


def _read_sponsors(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.sponsorCollaboratorsModule"
    p = f"{path}.responsibleParty"
    party = r.obj(module.get("responsibleParty"), p, _RESPONSIBLE_PARTY)
    if party is not None:
        responsible = {
            "type": r.text(party.get("type"), f"{p}.type"),
            "investigator_full_name": r.text(party.get("investigatorFullName"), f"{p}.investigatorFullName"),
            "investigator_title": r.text(party.get("investigatorTitle"), f"{p}.investigatorTitle"),
            "investigator_affiliation": r.text(party.get("investigatorAffiliation"), f"{p}.investigatorAffiliation"),
            "old_name_title": r.text(party.get("oldNameTitle"), f"{p}.oldNameTitle"),
            "old_organization": r.text(party.get("oldOrganization"), f"{p}.oldOrganization"),
        }
        if any(v is not None for v in responsible.values()):
            record["responsible_party"] = responsible
    lead = r.obj(module.get("leadSponsor"), f"{path}.leadSponsor", _SPONSOR)
    if lead is not None:
        record["lead_sponsor"] = _org(r, lead, f"{path}.leadSponsor", "name")
    p = f"{path}.collaborators"
    collaborators = []
    for item in r.objs(module.get("collaborators"), p, _SPONSOR):
        org = _org(r, item, p, "name")
        if org is not None:
            collaborators.append(org)
    record["collaborators"] = collaborators


def _read_oversight(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.oversightModule"
    oversight = {
        field: r.boolean(module.get(key), f"{path}.{key}")
        for key, field in (
            ("oversightHasDmc", "has_dmc"),
            ("isFdaRegulatedDrug", "is_fda_regulated_drug"),
            ("isFdaRegulatedDevice", "is_fda_regulated_device"),
            ("isUnapprovedDevice", "is_unapproved_device"),
            ("isPpsd", "is_ppsd"),
            ("isUsExport", "is_us_export"),
            ("fdaaa801Violation", "fdaaa801_violation"),
        )
    }
    if any(v is not None for v in oversight.values()):
        record["oversight"] = oversight


def _read_design(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.designModule"
    get = module.get
    design: dict[str, Any] = {
        "study_type": r.text(get("studyType"), f"{path}.studyType"),
        "phases": r.texts(get("phases"), f"{path}.phases"),
        "patient_registry": r.boolean(get("patientRegistry"), f"{path}.patientRegistry"),
        "target_duration": r.text(get("targetDuration"), f"{path}.targetDuration"),
    }
    design["expanded_access_pointer_count"] = r.integer(get("nPtrsToThisExpAccNctId"), f"{path}.nPtrsToThisExpAccNctId")
    p = f"{path}.expandedAccessTypes"
    types = r.obj(get("expandedAccessTypes"), p, frozenset(_EXPANDED_ACCESS_TYPES))
    if types is not None:
        design["expanded_access_types"] = [
            code for key, code in _EXPANDED_ACCESS_TYPES.items() if r.boolean(types.get(key), f"{p}.{key}")
        ]
    p = f"{path}.designInfo"
    info = r.obj(get("designInfo"), p, _DESIGN_INFO)
    if info is not None:
        design["allocation"] = r.text(info.get("allocation"), f"{p}.allocation")
        design["intervention_model"] = r.text(info.get("interventionModel"), f"{p}.interventionModel")
        design["intervention_model_description"] = r.markup(
            info.get("interventionModelDescription"), f"{p}.interventionModelDescription"
        )
        design["primary_purpose"] = r.text(info.get("primaryPurpose"), f"{p}.primaryPurpose")
        design["observational_model"] = r.text(info.get("observationalModel"), f"{p}.observationalModel")
        design["time_perspective"] = r.text(info.get("timePerspective"), f"{p}.timePerspective")
        masking = r.obj(info.get("maskingInfo"), f"{p}.maskingInfo", _MASKING)
        if masking is not None:
            mp = f"{p}.maskingInfo"
            design["masking"] = r.text(masking.get("masking"), f"{mp}.masking")
            design["masking_description"] = r.markup(masking.get("maskingDescription"), f"{mp}.maskingDescription")
            design["who_masked"] = r.texts(masking.get("whoMasked"), f"{mp}.whoMasked")
    p = f"{path}.bioSpec"
    bio_spec = r.obj(get("bioSpec"), p, _BIO_SPEC)
    if bio_spec is not None:
        design["bio_spec_retention"] = r.text(bio_spec.get("retention"), f"{p}.retention")
        design["bio_spec_description"] = r.markup(bio_spec.get("description"), f"{p}.description")
    p = f"{path}.enrollmentInfo"
    enrollment = r.obj(get("enrollmentInfo"), p, _ENROLLMENT)
    if enrollment is not None:
        design["enrollment_count"] = r.integer(enrollment.get("count"), f"{p}.count")
        design["enrollment_type"] = r.text(enrollment.get("type"), f"{p}.type")
    record["design"] = design


def _read_arms_interventions(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.armsInterventionsModule"
    p = f"{path}.armGroups"
    arms = []
    for arm in r.objs(module.get("armGroups"), p, _ARM):
        label = r.text(arm.get("label"), f"{p}.label")
        if label is None:
            if any(arm.get(key) for key in ("type", "description", "interventionNames")):
                r.note(p, "entry without label")
            continue
        arms.append(
            {
                "label": label,
                "type": r.text(arm.get("type"), f"{p}.type"),
                "description": r.markup(arm.get("description"), f"{p}.description"),
                "intervention_names": r.texts(arm.get("interventionNames"), f"{p}.interventionNames"),
            }
        )
    record["arms"] = arms
    p = f"{path}.interventions"
    interventions = []
    for item in r.objs(module.get("interventions"), p, _INTERVENTION):
        name = r.text(item.get("name"), f"{p}.name")
        if name is None:
            if any(item.get(key) for key in ("type", "description", "armGroupLabels", "otherNames")):
                r.note(p, "entry without name")
            continue
        interventions.append(
            {
                "type": r.text(item.get("type"), f"{p}.type"),
                "name": name,
                "description": r.markup(item.get("description"), f"{p}.description"),
                "arm_group_labels": r.texts(item.get("armGroupLabels"), f"{p}.armGroupLabels"),
                "other_names": r.texts(item.get("otherNames"), f"{p}.otherNames"),
            }
        )
        mapped = item.get("interventionMappedName")
        if mapped is not None and mapped != []:
            r.note(f"{p}.interventionMappedName", f"website export field, not in the v2 schema: {_show(mapped)}")
    record["interventions"] = interventions


def _read_outcomes(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.outcomesModule"
    outcomes = []
    for key, kind in _OUTCOME_LISTS.items():
        p = f"{path}.{key}"
        for item in r.objs(module.get(key), p, _OUTCOME):
            measure = r.text(item.get("measure"), f"{p}.measure")
            if measure is None:
                if item.get("description") or item.get("timeFrame"):
                    r.note(p, "entry without measure")
                continue
            outcomes.append(
                {
                    "kind": kind,
                    "measure": measure,
                    "description": r.markup(item.get("description"), f"{p}.description"),
                    "time_frame": r.text(item.get("timeFrame"), f"{p}.timeFrame"),
                }
            )
    record["outcomes"] = outcomes


def _read_eligibility(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.eligibilityModule"
    get = module.get
    record["eligibility"] = {
        "criteria": r.markup(get("eligibilityCriteria"), f"{path}.eligibilityCriteria"),
        "healthy_volunteers": r.boolean(get("healthyVolunteers"), f"{path}.healthyVolunteers"),
        "sex": r.text(get("sex"), f"{path}.sex"),
        "gender_based": r.boolean(get("genderBased"), f"{path}.genderBased"),
        "gender_description": r.markup(get("genderDescription"), f"{path}.genderDescription"),
        "minimum_age": r.age(get("minimumAge"), f"{path}.minimumAge"),
        "maximum_age": r.age(get("maximumAge"), f"{path}.maximumAge"),
        "std_ages": r.texts(get("stdAges"), f"{path}.stdAges"),
        "study_population": r.markup(get("studyPopulation"), f"{path}.studyPopulation"),
        "sampling_method": r.text(get("samplingMethod"), f"{path}.samplingMethod"),
    }


def _read_contacts_locations(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.contactsLocationsModule"
    p = f"{path}.centralContacts"
    record["central_contacts"] = [
        contact
        for item in r.objs(module.get("centralContacts"), p, _CONTACT)
        if (contact := _contact(r, item, p)) is not None
    ]
    p = f"{path}.overallOfficials"
    officials = []
    for item in r.objs(module.get("overallOfficials"), p, _OFFICIAL):
        name = r.text(item.get("name"), f"{p}.name")
        if name is None:
            if item.get("affiliation") or item.get("role"):
                r.note(p, "entry without name")
            continue
        officials.append(
            {
                "name": name,
                "affiliation": r.text(item.get("affiliation"), f"{p}.affiliation"),
                "role": r.text(item.get("role"), f"{p}.role"),
            }
        )
    record["officials"] = officials
    p = f"{path}.locations"
    sites = []
    countries: dict[str, None] = {}
    for item in r.objs(module.get("locations"), p, _LOCATION):
        site: dict[str, Any] = {
            "facility": r.text(item.get("facility"), f"{p}.facility"),
            "status": r.text(item.get("status"), f"{p}.status"),
            "city": r.text(item.get("city"), f"{p}.city"),
            "state": r.text(item.get("state"), f"{p}.state"),
            "zip": r.text(item.get("zip"), f"{p}.zip"),
            "country": r.text(item.get("country"), f"{p}.country"),
        }
        geo = r.obj(item.get("geoPoint"), f"{p}.geoPoint", _GEO_POINT)
        if geo is not None:
            lat = r.number(geo.get("lat"), f"{p}.geoPoint.lat")
            lon = r.number(geo.get("lon"), f"{p}.geoPoint.lon")
            if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
                site["geo_point"] = {"lat": lat, "lon": lon}
            elif lat is not None or lon is not None:
                r.note(f"{p}.geoPoint", f"incomplete or out-of-range point {geo.get('lat')!r}, {geo.get('lon')!r}")
        cp = f"{p}.contacts"
        site["contacts"] = [
            contact for contact_item in r.objs(item.get("contacts"), cp, _CONTACT)
            if (contact := _contact(r, contact_item, cp)) is not None
        ]  # fmt: skip
        if any(v for v in site.values()):
            sites.append(site)
            if site["country"]:
                countries[site["country"]] = None
    record["sites"] = sites
    nested = module.get("locations_nested")
    if nested is not None and nested != module.get("locations"):
        r.note(f"{path}.locations_nested", "website export copy of locations that differs from locations")
    # v2 has no list of countries (legacy XML's location_countries); the distinct site countries,
    # in site order, are the same fact, and keep both formats giving ResearchStudy the same regions.
    record["location_countries"] = list(countries)


def _read_references(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.referencesModule"
    p = f"{path}.references"
    references = []
    for item in r.objs(module.get("references"), p, _REFERENCE):
        retractions = []
        rp = f"{p}.retractions"
        for retraction in r.objs(item.get("retractions"), rp, _RETRACTION):
            entry = {
                "pmid": r.text(retraction.get("pmid"), f"{rp}.pmid"),
                "source": r.text(retraction.get("source"), f"{rp}.source"),
            }
            if entry["pmid"] or entry["source"]:
                retractions.append(entry)
        reference = {
            "pmid": r.text(item.get("pmid"), f"{p}.pmid"),
            "type": r.text(item.get("type"), f"{p}.type"),
            "citation": r.text(item.get("citation"), f"{p}.citation"),
            "retractions": retractions,
        }
        if reference["pmid"] or reference["citation"]:
            references.append(reference)
        elif reference["type"] or retractions:
            r.note(p, "entry without citation or pmid")
    record["references"] = references
    p = f"{path}.seeAlsoLinks"
    links = []
    for item in r.objs(module.get("seeAlsoLinks"), p, _SEE_ALSO):
        url = r.text(item.get("url"), f"{p}.url")
        label = r.markup(item.get("label"), f"{p}.label")
        if url is None:
            if label is not None:
                r.note(p, "entry without url")
            continue
        links.append({"url": url, "label": label})
    record["see_also_links"] = links
    p = f"{path}.availIpds"
    ipds = []
    for item in r.objs(module.get("availIpds"), p, _AVAIL_IPD):
        ipd = {
            "id": r.text(item.get("id"), f"{p}.id"),
            "type": r.text(item.get("type"), f"{p}.type"),
            "url": r.text(item.get("url"), f"{p}.url"),
            "comment": r.markup(item.get("comment"), f"{p}.comment"),
        }
        if any(v is not None for v in ipd.values()):
            ipds.append(ipd)
    record["avail_ipds"] = ipds


def _read_ipd_sharing(r: _Reader, module: dict[str, Any], record: dict[str, Any]) -> None:
    path = f"{_PS}.ipdSharingStatementModule"
    sharing = {
        "ipd_sharing": r.text(module.get("ipdSharing"), f"{path}.ipdSharing"),
        "description": r.markup(module.get("description"), f"{path}.description"),
        "info_types": r.texts(module.get("infoTypes"), f"{path}.infoTypes"),
        "time_frame": r.markup(module.get("timeFrame"), f"{path}.timeFrame"),
        "access_criteria": r.markup(module.get("accessCriteria"), f"{path}.accessCriteria"),
        "url": r.text(module.get("url"), f"{path}.url"),
    }
    if any(sharing.values()):
        record["ipd_sharing"] = sharing


def _read_documents(r: _Reader, section: dict[str, Any], nct: str, record: dict[str, Any]) -> None:
    path = "documentSection.largeDocumentModule"
    module = r.obj(section.get("largeDocumentModule"), path, _LARGE_DOC_MODULE)
    if module is None:
        return
    record["no_sap"] = r.boolean(module.get("noSap"), f"{path}.noSap")
    p = f"{path}.largeDocs"
    documents = []
    for item in r.objs(module.get("largeDocs"), p, _LARGE_DOC):
        filename = r.text(item.get("filename"), f"{p}.filename")
        document = {
            "label": r.text(item.get("label"), f"{p}.label"),
            "type_abbrev": r.text(item.get("typeAbbrev"), f"{p}.typeAbbrev"),
            "has_protocol": r.boolean(item.get("hasProtocol"), f"{p}.hasProtocol"),
            "has_sap": r.boolean(item.get("hasSap"), f"{p}.hasSap"),
            "has_icf": r.boolean(item.get("hasIcf"), f"{p}.hasIcf"),
            "date": r.date(item.get("date"), f"{p}.date"),
            "upload_date": r.text(item.get("uploadDate"), f"{p}.uploadDate"),
            "filename": filename,
            "url": (
                PROVIDED_DOCS_URL.format(tail=nct[-2:], nct=nct, filename=quote(filename, safe=""))
                if filename
                else None
            ),
            "size": r.integer(item.get("size"), f"{p}.size"),
        }
        if any(v is not None for v in document.values()):
            documents.append(document)
    record["documents"] = documents


def _read_annotations(r: _Reader, section: dict[str, Any], record: dict[str, Any]) -> None:
    path = "annotationSection.annotationModule"
    module = r.obj(section.get("annotationModule"), path, _ANNOTATION_MODULE)
    if module is None:
        return
    annotations: dict[str, Any] = {}
    p = f"{path}.unpostedAnnotation"
    unposted = r.obj(module.get("unpostedAnnotation"), p, _UNPOSTED)
    if unposted is not None:
        annotations["unposted_responsible_party"] = r.text(
            unposted.get("unpostedResponsibleParty"), f"{p}.unpostedResponsibleParty"
        )
        ep = f"{p}.unpostedEvents"
        events = []
        for item in r.objs(unposted.get("unpostedEvents"), ep, _UNPOSTED_EVENT):
            kind = r.text(item.get("type"), f"{ep}.type")
            event = {
                "type": kind,
                "date": r.date(item.get("date"), f"{ep}.date"),
                "date_unknown": r.boolean(item.get("dateUnknown"), f"{ep}.dateUnknown"),
            }
            if kind is None:
                if event["date"] or event["date_unknown"]:
                    r.note(ep, "entry without type")
                continue
            events.append(event)
        annotations["unposted_events"] = events
    p = f"{path}.violationAnnotation.violationEvents"
    violation = r.obj(module.get("violationAnnotation"), f"{path}.violationAnnotation", _VIOLATION)
    if violation is not None:
        events = []
        for item in r.objs(violation.get("violationEvents"), p, _VIOLATION_EVENT):
            kind = r.text(item.get("type"), f"{p}.type")
            event = {
                "type": kind,
                "description": r.markup(item.get("description"), f"{p}.description"),
                "creation_date": r.date(item.get("creationDate"), f"{p}.creationDate"),
                "issued_date": r.date(item.get("issuedDate"), f"{p}.issuedDate"),
                "release_date": r.date(item.get("releaseDate"), f"{p}.releaseDate"),
                "posted_date": r.date(item.get("postedDate"), f"{p}.postedDate"),
            }
            if kind is None:
                if any(v is not None for v in event.values()):
                    r.note(p, "entry without type")
                continue
            events.append(event)
        annotations["violation_events"] = events
    if any(annotations.values()):
        record["annotations"] = annotations


def _read_derived(r: _Reader, section: dict[str, Any], record: dict[str, Any], source: dict[str, Any]) -> None:
    misc = r.obj(section.get("miscInfoModule"), "derivedSection.miscInfoModule", _MISC_INFO)
    if misc is not None:
        source["version"] = r.text(misc.get("versionHolder"), "derivedSection.miscInfoModule.versionHolder")
        record["removed_countries"] = r.texts(
            misc.get("removedCountries"), "derivedSection.miscInfoModule.removedCountries"
        )
    for key, prefix in (("conditionBrowseModule", "condition"), ("interventionBrowseModule", "intervention")):
        p = f"derivedSection.{key}"
        browse = r.obj(section.get(key), p, _BROWSE)
        if browse is not None:
            record[f"{prefix}_meshes"] = _meshes(r, browse.get("meshes"), f"{p}.meshes")
            record[f"{prefix}_mesh_ancestors"] = _meshes(r, browse.get("ancestors"), f"{p}.ancestors")


_MODULE_READERS = (
    ("statusModule", _STATUS, _read_status),
    ("sponsorCollaboratorsModule", _SPONSORS, _read_sponsors),
    ("oversightModule", _OVERSIGHT, _read_oversight),
    ("designModule", _DESIGN, _read_design),
    ("armsInterventionsModule", _ARMS_INTERVENTIONS, _read_arms_interventions),
    ("outcomesModule", frozenset(_OUTCOME_LISTS), _read_outcomes),
    ("eligibilityModule", _ELIGIBILITY, _read_eligibility),
    ("contactsLocationsModule", _CONTACTS_LOCATIONS, _read_contacts_locations),
    ("referencesModule", _REFERENCES, _read_references),
    ("ipdSharingStatementModule", _IPD_SHARING, _read_ipd_sharing),
)


def _describe(identification: dict[str, Any]) -> str:
    """Whatever names a study that lacks a usable NCT id, for the error message."""
    parts = []
    org_id = identification.get("orgStudyIdInfo")
    if isinstance(org_id, dict) and isinstance(org_id.get("id"), str | int) and str(org_id["id"]).strip():
        parts.append(f"org study id {_clean_text(str(org_id['id']))!r}")
    for key in ("briefTitle", "officialTitle", "acronym"):
        value = identification.get(key)
        if isinstance(value, str) and value.strip():
            title = _clean_text(value)
            if len(title) > 80:
                title = title[:77] + "..."
            parts.append(f"title {title!r}")
            break
    organization = identification.get("organization")
    if isinstance(organization, dict) and isinstance(organization.get("fullName"), str):
        parts.append(f"organization {_clean_text(organization['fullName'])!r}")
    return ", ".join(parts) if parts else "no title or org study id either"


def read_study(obj: dict[str, Any], source: str | None = None) -> TrialRecord:
    """Read one v2 study object into a ``TrialRecord``.

    ``source`` names the input in error messages (a file name, ``file#studies[3]``).  Raises
    ``InputError`` for anything that is not a v2 study object and ``RecordError`` for a study
    without a valid NCT id; every other problem is reported in ``record.unmapped``.
    """
    if not isinstance(obj, dict):
        raise InputError(f"expected a ClinicalTrials.gov study object, found {_type_name(obj)}", source)
    if _PS not in obj:
        raise InputError("not a ClinicalTrials.gov API v2 study: no protocolSection", source)
    protocol = obj[_PS]
    if not isinstance(protocol, dict):
        raise RecordError(f"study has no NCT id: protocolSection is {_type_name(protocol)}, not an object", source)
    identification = protocol.get("identificationModule")
    if not isinstance(identification, dict):
        raise RecordError("study has no NCT id (no identificationModule in protocolSection)", source)
    raw_nct = identification.get("nctId")
    if raw_nct is None or (isinstance(raw_nct, str) and not raw_nct.strip()):
        raise RecordError(f"study has no NCT id ({_describe(identification)})", source)
    nct = raw_nct.strip().upper() if isinstance(raw_nct, str) else ""
    if not _NCT.match(nct):
        raise RecordError(f"study has an invalid NCT id {_show(raw_nct)} ({_describe(identification)})", source)

    r = _Reader()
    r.check_keys(obj, _STUDY, "")
    r.check_keys(protocol, _PROTOCOL, _PS)
    source_info: dict[str, Any] = {"registry": REGISTRY, "format": FORMAT, "url": STUDY_URL.format(nct=nct)}
    record: dict[str, Any] = {"source": source_info, "registry_id": nct}

    r.check_keys(identification, _IDENTIFICATION, f"{_PS}.identificationModule")
    _read_identification(r, identification, record)
    for key, known, reader in _MODULE_READERS:
        module = r.obj(protocol.get(key), f"{_PS}.{key}", known)
        if module is not None:
            reader(r, module, record)
    description = r.obj(protocol.get("descriptionModule"), f"{_PS}.descriptionModule", _DESCRIPTION)
    if description is not None:
        p = f"{_PS}.descriptionModule"
        record["brief_summary"] = r.markup(description.get("briefSummary"), f"{p}.briefSummary")
        record["detailed_description"] = r.markup(description.get("detailedDescription"), f"{p}.detailedDescription")
    conditions = r.obj(protocol.get("conditionsModule"), f"{_PS}.conditionsModule", _CONDITIONS)
    if conditions is not None:
        p = f"{_PS}.conditionsModule"
        record["conditions"] = r.texts(conditions.get("conditions"), f"{p}.conditions")
        record["keywords"] = r.texts(conditions.get("keywords"), f"{p}.keywords")

    documents = r.obj(obj.get("documentSection"), "documentSection", _DOCUMENT_SECTION)
    if documents is not None:
        _read_documents(r, documents, nct, record)
    annotations = r.obj(obj.get("annotationSection"), "annotationSection", _ANNOTATION_SECTION)
    if annotations is not None:
        _read_annotations(r, annotations, record)
    derived = r.obj(obj.get("derivedSection"), "derivedSection", _DERIVED)
    if derived is not None:
        _read_derived(r, derived, record, source_info)
    record["has_results"] = r.boolean(obj.get("hasResults"), "hasResults")
    # A results section is not read, but its presence is the fact hasResults states.
    if record["has_results"] is None and isinstance(obj.get("resultsSection"), dict):
        record["has_results"] = True

    record["unmapped"] = sorted(r.unmapped)
    try:
        return TrialRecord.model_validate(record)
    except ValidationError as error:
        # The reader cleans every value it passes on, so this means a reader bug; still name the record.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()[:3]
        )
        raise RecordError(f"{nct}: could not build the record: {problems}", source) from None


def iter_studies(
    obj: Any, source: str | None = None, *, errors: list[InputError] | None = None
) -> Iterator[TrialRecord]:
    """Yield one ``TrialRecord`` per study in a study object, a search page or a JSON array of studies.

    By default the first bad study raises.  Pass ``errors`` (a list) to collect per-study
    ``InputError``/``RecordError`` there and go on with the rest, as a batch over the whole
    registry needs.  Locators in messages follow the pipeline's ``source#studies[3]`` form.
    """
    name = source or "<input>"
    if isinstance(obj, dict) and "studies" in obj and _PS not in obj:
        studies = obj["studies"]
        if not isinstance(studies, list):
            raise InputError(f"search page 'studies' is {_type_name(studies)}, not a list", name)
        items = [(study, f"{name}#studies[{index}]") for index, study in enumerate(studies)]
    elif isinstance(obj, dict):
        items = [(obj, source)]
    elif isinstance(obj, list):
        items = [(study, f"{name}#[{index}]") for index, study in enumerate(obj)]
    else:
        raise InputError(f"expected a JSON object or array, found {_type_name(obj)}", name)
    for study, locator in items:
        if errors is None:
            yield read_study(study, locator)
            continue
        try:
            record = read_study(study, locator)
        except InputError as error:
            errors.append(error)
            continue
        yield record
