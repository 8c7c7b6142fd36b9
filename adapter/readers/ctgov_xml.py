"""Reader for legacy ClinicalTrials.gov XML (``<clinical_study>``, public.xsd) into a TrialRecord.

Every element of public.xsd (2018.08.22 and 2019.02.14, plus the older elements still found in
AllPublicXML dumps) is mapped, with the legacy vocabulary normalised to ClinicalTrials.gov API v2
values.  Decisions worth knowing, each checked against the corpus (2,500 legacy files, 1,000 v2
files, and the 7 studies present in both formats):

- Text.  Legacy ``textblock`` text is hard-wrapped plain text (list items as ``-  x``, numbered
  items as ``1. x``, indented by nesting level).  It is unwrapped and rendered as the Markdown v2
  serves for the same studies: paragraphs separated by blank lines, items as ``* x`` / ``1. x``,
  tight lists, nested lists indented under their parent, and v2's escaping of Markdown
  punctuation (``\\<``, ``\\>``, ``\\&``, ``\\*``, ``\\[``, ``\\]``, ``\\^``, ``\\~``, ``\\\\``, and a
  leading ``1.``/``-``/``+``/``#`` that is not a list marker).  The other fields v2 declares as
  Markdown (arm/intervention/outcome descriptions, why_stopped, link labels, IPD texts ...) get the
  same escaping, with each source line as a paragraph (what v2 does with them).  Everything else is
  plain text with whitespace runs collapsed.
- Dates.  ``July 2012`` -> ``2012-07``, ``May 8, 2013`` -> ``2013-05-08`` (precision kept, never
  padded); ``type`` Actual -> ACTUAL, Anticipated/Estimate -> ESTIMATED; ``Unknown`` -> no date.
- Ids.  Secondary ids (and the org study id) carry no type in XML; ids in the EudraCT pattern get
  ``EUDRACT_NUMBER`` and NIH grant numbers get ``NIH`` with the RePORTER link, because v2 types
  every such id in the corpus that way (32 of 34 EudraCT-shaped ids, all 29 NIH-shaped ids,
  including the paired records).  Anything else stays untyped.
- Masking.  ``Quadruple (Participant, ...)`` -> QUADRUPLE + who_masked.  Pre-2017 forms map only
  when unambiguous: ``Open Label``/``No masking`` -> NONE, ``Single``/``Single Blind`` -> SINGLE,
  ``Double``/``Double Blind``/``Double-Blind`` -> DOUBLE (v2 serves such records as DOUBLE with no
  roles), old party names Subject -> PARTICIPANT, Caregiver -> CARE_PROVIDER.  When an old label
  disagrees with its own party list (``Double Blind`` with three parties: old "double" meant "two
  or more") the label is kept as text and the parties are still mapped.
- Agency class ``NIH`` stays NIH (v2 keeps NIH apart from FED; see the paired NCT00000410),
  ``U.S. Fed`` -> FED.  The registering organization (``source``) gets the class of the sponsor or
  collaborator of the same name, otherwise none (the XML does not state it).
- Derived like v2 does: each arm's ``intervention_names`` (``"Type: Name"`` of the interventions
  that list the arm) and ``eligibility.std_ages`` (CT.gov's Child 0-17 / Adult 18-64 / Older Adult
  65+ rule, which reproduces ``stdAges`` of all 1,000 v2 records); a document's ``filename`` and
  ``type_abbrev`` come from its URL (``Prot_SAP_001.pdf`` -> ``Prot_SAP``, as in all 90 v2 documents).
- Legacy elements replaced by newer ones fill the same fields: ``firstreceived_date``,
  ``lastchanged_date``, ``firstreceived_results_date``, ``firstreceived_results_disposition_date``,
  the comma-separated ``study_design`` string, gender ``Both``, phase ``Phase 0`` (renamed Early
  Phase 1 in 2017), ``Observational [Patient Registry]`` (-> OBSERVATIONAL + patient_registry).
- Retired elements with no v2 field still land in the record: ``last_update_submitted_qc``
  (``status.last_update_submit_qc``), ``is_fda_regulated`` and ``is_section_801`` (``oversight``),
  ``*_outcome/safety_issue`` (``outcomes[].safety_issue``), the ``study_design`` "Endpoint
  Classification" (``design.endpoint_classification``), a site investigator's ``affiliation``
  (``sites[].contacts[].affiliation``), and ``pending_results`` (``annotations.unposted_events``, in
  v2's vocabulary: ``submitted`` = RELEASE, ``returned`` = RESET, ``submission_canceled`` =
  UNRELEASE; ``Unknown`` = ``date_unknown``).
- Not mapped, on purpose: ``clinical_results`` (posted results) only sets ``has_results=True`` (as
  does ``results_first_posted``, for copies trimmed of their results);
  ``required_header/link_text`` (constant boilerplate) and the root ``rank`` attribute (a search
  ranking, not a fact about the study) are dropped.  Anything else the reader does not know is
  listed in ``record.unmapped``.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

from lxml import etree

from adapter.errors import InputError, RecordError
from adapter.readers.safe_xml import parse_xml
from adapter.record import TrialRecord

__all__ = ["markdown_from_textblock", "read_clinical_study"]

# --------------------------------------------------------------------------------------------
# Vocabularies: legacy value -> v2 value.  Keys are lower-cased; a value not found is carried as
# the registry wrote it (TrialRecord enum fields are text so that new values never break a read).
# --------------------------------------------------------------------------------------------

_STATUS = {
    "active, not recruiting": "ACTIVE_NOT_RECRUITING",
    "completed": "COMPLETED",
    "enrolling by invitation": "ENROLLING_BY_INVITATION",
    "not yet recruiting": "NOT_YET_RECRUITING",
    "recruiting": "RECRUITING",
    "suspended": "SUSPENDED",
    "terminated": "TERMINATED",
    "withdrawn": "WITHDRAWN",
    "available": "AVAILABLE",
    "no longer available": "NO_LONGER_AVAILABLE",
    "temporarily not available": "TEMPORARILY_NOT_AVAILABLE",
    "approved for marketing": "APPROVED_FOR_MARKETING",
    "withheld": "WITHHELD",
    "unknown status": "UNKNOWN",
}
_PHASE = {
    "n/a": "NA",
    "early phase 1": "EARLY_PHASE1",
    "phase 0": "EARLY_PHASE1",  # renamed "Early Phase 1" in public.xsd 2017-02-13
    "phase 1": "PHASE1",
    "phase 2": "PHASE2",
    "phase 3": "PHASE3",
    "phase 4": "PHASE4",
}
_STUDY_TYPE = {
    "interventional": "INTERVENTIONAL",
    "observational": "OBSERVATIONAL",
    "observational [patient registry]": "OBSERVATIONAL",
    "expanded access": "EXPANDED_ACCESS",
}
_ALLOCATION = {"randomized": "RANDOMIZED", "non-randomized": "NON_RANDOMIZED", "n/a": "NA"}
_INTERVENTION_MODEL = {
    "single group assignment": "SINGLE_GROUP",
    "parallel assignment": "PARALLEL",
    "crossover assignment": "CROSSOVER",
    "factorial assignment": "FACTORIAL",
    "sequential assignment": "SEQUENTIAL",
}
_PRIMARY_PURPOSE = {
    "treatment": "TREATMENT",
    "prevention": "PREVENTION",
    "diagnostic": "DIAGNOSTIC",
    "supportive care": "SUPPORTIVE_CARE",
    "screening": "SCREENING",
    "health services research": "HEALTH_SERVICES_RESEARCH",
    "basic science": "BASIC_SCIENCE",
    "device feasibility": "DEVICE_FEASIBILITY",
    "educational/counseling/training": "ECT",
    "other": "OTHER",
}
_OBSERVATIONAL_MODEL = {
    "cohort": "COHORT",
    "case-control": "CASE_CONTROL",
    "case control": "CASE_CONTROL",
    "case-only": "CASE_ONLY",
    "case only": "CASE_ONLY",
    "case-crossover": "CASE_CROSSOVER",
    "ecologic or community": "ECOLOGIC_OR_COMMUNITY",
    "family-based": "FAMILY_BASED",
    "defined population": "DEFINED_POPULATION",
    "natural history": "NATURAL_HISTORY",
    "other": "OTHER",
}
_TIME_PERSPECTIVE = {
    "prospective": "PROSPECTIVE",
    "retrospective": "RETROSPECTIVE",
    "cross-sectional": "CROSS_SECTIONAL",
    "other": "OTHER",
}
_MASKING_LEVEL = {
    "none (open label)": "NONE",
    "open label": "NONE",
    "no masking": "NONE",
    "none": "NONE",
    "single": "SINGLE",
    "single blind": "SINGLE",
    "single-blind": "SINGLE",
    "double": "DOUBLE",
    "double blind": "DOUBLE",
    "double-blind": "DOUBLE",
    "triple": "TRIPLE",
    "quadruple": "QUADRUPLE",
}
_MASKING_COUNT = {"NONE": 0, "SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "QUADRUPLE": 4}
_WHO_MASKED = {
    "participant": "PARTICIPANT",
    "subject": "PARTICIPANT",
    "care provider": "CARE_PROVIDER",
    "caregiver": "CARE_PROVIDER",
    "investigator": "INVESTIGATOR",
    "outcomes assessor": "OUTCOMES_ASSESSOR",
}
_BIOSPEC = {
    "none retained": "NONE_RETAINED",
    "samples with dna": "SAMPLES_WITH_DNA",
    "samples without dna": "SAMPLES_WITHOUT_DNA",
}
_SEX = {"all": "ALL", "both": "ALL", "female": "FEMALE", "male": "MALE"}
_SAMPLING = {"probability sample": "PROBABILITY_SAMPLE", "non-probability sample": "NON_PROBABILITY_SAMPLE"}
_HEALTHY = {"accepts healthy volunteers": True, "yes": True, "no": False}
_YES_NO = {"yes": True, "no": False}
_AGENCY_CLASS = {
    "nih": "NIH",
    "u.s. fed": "FED",
    "industry": "INDUSTRY",
    "other": "OTHER",
    "other_gov": "OTHER_GOV",
    "indiv": "INDIV",
    "network": "NETWORK",
    "ambig": "AMBIG",
    "unknown": "UNKNOWN",
}
_ARM_TYPE = {
    "experimental": "EXPERIMENTAL",
    "active comparator": "ACTIVE_COMPARATOR",
    "placebo comparator": "PLACEBO_COMPARATOR",
    "sham comparator": "SHAM_COMPARATOR",
    "no intervention": "NO_INTERVENTION",
    "other": "OTHER",
}
_INTERVENTION_TYPE = {
    "behavioral": "BEHAVIORAL",
    "biological": "BIOLOGICAL",
    "combination product": "COMBINATION_PRODUCT",
    "device": "DEVICE",
    "diagnostic test": "DIAGNOSTIC_TEST",
    "dietary supplement": "DIETARY_SUPPLEMENT",
    "drug": "DRUG",
    "genetic": "GENETIC",
    "procedure": "PROCEDURE",
    "radiation": "RADIATION",
    "other": "OTHER",
}
_ROLE = {
    "principal investigator": "PRINCIPAL_INVESTIGATOR",
    "sub-investigator": "SUB_INVESTIGATOR",
    "study chair": "STUDY_CHAIR",
    "study director": "STUDY_DIRECTOR",
}
_RESPONSIBLE_PARTY = {
    "sponsor": "SPONSOR",
    "principal investigator": "PRINCIPAL_INVESTIGATOR",
    "sponsor-investigator": "SPONSOR_INVESTIGATOR",
}
_IPD_SHARING = {"yes": "YES", "no": "NO", "undecided": "UNDECIDED"}
_IPD_INFO_TYPE = {
    "study protocol": "STUDY_PROTOCOL",
    "statistical analysis plan (sap)": "SAP",
    "informed consent form (icf)": "ICF",
    "clinical study report (csr)": "CSR",
    "analytic code": "ANALYTIC_CODE",
}
_DATE_TYPE = {"actual": "ACTUAL", "anticipated": "ESTIMATED", "estimate": "ESTIMATED", "estimated": "ESTIMATED"}

_MONTHS = {
    "january": "01",
    "february": "02",
    "march": "03",
    "april": "04",
    "may": "05",
    "june": "06",
    "july": "07",
    "august": "08",
    "september": "09",
    "october": "10",
    "november": "11",
    "december": "12",
}
_DATE = re.compile(r"([A-Za-z]+)\.? +(?:(\d{1,2}), *)?(\d{4})")
_EUDRACT = re.compile(r"\d{4}-\d{6}-\d{2}")
# NIH grant number: optional application type, activity code (R01, UG3 ...), institute code
# (restricted to NIH institutes so that company codes of the same shape are not caught), serial,
# optional support year / suffix.
_NIH_GRANT = re.compile(
    r"[1-9]?[A-Z][A-Z0-9][0-9]"
    r"(?:AA|AG|AI|AR|AT|CA|DA|DC|DE|DK|EB|ES|EY|GM|HD|HG|HL|LM|MD|MH|NR|NS|OD|RM|RR|TR|TW)"
    r"\d{6}(?:-\d{2}(?:[A-Z]\d+)*)?"
)
_NCT = re.compile(r"NCT\d{8}")
_WS = re.compile(r"[ \t\r\n\f\v]+")


def _lookup(table: dict[str, Any], text: str) -> Any:
    return table.get(text.lower(), text)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def _raw(el: etree._Element) -> str | None:
    # An element with children here is unexpected markup or an unexpanded entity reference; its
    # text is still the best reading of the field.
    text = el.text if len(el) == 0 else "".join(el.itertext())
    if text is None:
        return None
    if "&" in text:
        text = _decode_entities(text)
    text = text.strip()
    return text or None


_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _decode_entities(text: str) -> str:
    """Decode HTML character references that submitters typed as text (``&gt;``, ``&#8805;``).

    XML parsing has already decoded the XML-level escaping, so what is left was typed literally;
    v2 serves the decoded character for it (the v2 reader decodes the same way).  Unknown names
    stay as written; at most three rounds, because exporters double-escape.
    """
    for _ in range(3):
        decoded = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
        if decoded == text:
            break
        text = decoded
    return text


def _plain(el: etree._Element) -> str | None:
    text = _raw(el)
    if text is None:
        return None
    return _collapse(text)


def _collapse(text: str) -> str:
    """Collapse every run of whitespace (Unicode spaces included) to one space.

    Most values are clean single-line text, and ``isprintable`` is false for any line break, tab
    or non-ASCII space, so the common case costs one C-level scan.
    """
    if text.isprintable() and "  " not in text:
        return text
    return " ".join(text.split())


# One C-level ``in`` scan per character and a str.replace for those that occur: several times
# faster than a regex substitution, whose template calls back into Python for every match.  The
# backslash goes first so that the backslashes added for the other characters are not escaped again.
_INLINE_ESCAPES: tuple[tuple[str, str], ...] = tuple((char, "\\" + char) for char in "\\*<>[]&^~")
# Only at the start of a block: what Markdown would read as a list marker or a heading.
_START_ESCAPE = re.compile(r"^(?:(\d+)([.)])|([-+#]))(?=[ \t]|$)")


def _escape_block(text: str) -> str:
    for char, escaped in _INLINE_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    first = text[:1]
    if not (first in "-+#" or first.isdecimal()):  # \d is a Unicode decimal, as isdecimal() is
        return text
    match = _START_ESCAPE.match(text)
    if match is None:
        return text
    # The backslash goes right before the marker punctuation: "1." -> "1\.", "-" -> "\-".
    cut = len(match.group(1)) if match.group(1) is not None else 0
    return f"{text[:cut]}\\{text[cut:]}"


def _markup(el: etree._Element) -> str | None:
    """A v2 Markdown field given in XML as a plain string: each source line becomes a paragraph."""
    text = _raw(el)
    if text is None:
        return None
    if "\n" not in text and "\r" not in text:
        return _escape_block(_collapse(text))
    lines = (_collapse(line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n\n".join(_escape_block(line) for line in lines if line) or None


_ITEM_MARKER = re.compile(r"(-  |\d{1,3}\. )")
# Characters str.splitlines() breaks at besides \n, \r\n and \r; the legacy layout breaks lines at
# those three only, so text with any of these is split the long way.
_OTHER_LINE_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def markdown_from_textblock(raw: str | None) -> str | None:
    """Render a legacy hard-wrapped ``textblock`` as the Markdown API v2 serves for the same text.

    The legacy formatter wrapped lines (continuations aligned with the text), put a blank line
    between blocks, wrote list items as ``-  text`` / ``1. text`` indented two columns per level
    with continuation lines aligned to the text (numbers right-aligned, so ``12. `` starts one
    column left of ``1. ``), and lost the extra indent of the very first line.  v2 renders the same
    content as tight Markdown lists (``* `` / ``1. ``), children indented under their parent and
    separated from its text by a blank line, with Markdown punctuation escaped.
    """
    if raw is None:
        return None
    if any(separator in raw for separator in _OTHER_LINE_BREAKS):
        lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    else:
        # Same lines, in one pass instead of three (a trailing line break adds no blank row that matters).
        lines = raw.splitlines()
    # (indent, text, blank_before) for every non-blank line, indent relative to the first line,
    # which is always the block's left margin.
    rows: list[tuple[int, str, bool]] = []
    base = -1
    blank = True
    for line in lines:
        stripped = line.strip()
        if not stripped:
            blank = True
            continue
        indent = len(line) - len(line.lstrip(" \t"))
        if base < 0:
            base = indent
        rows.append((indent - base if indent > base else 0, stripped, blank))
        blank = False
    if not rows:
        return None

    # Group rows into blocks: [marker or None, content column, [text pieces]].
    blocks: list[list[Any]] = []
    for index, (indent, text, blank_before) in enumerate(rows):
        # Most lines cannot start a marker; \d in the marker is a Unicode decimal, as isdecimal() is.
        first = text[0]
        marker_match = _ITEM_MARKER.match(text) if first == "-" or first.isdecimal() else None
        current = blocks[-1] if blocks and not blank_before else None
        if current is not None and (marker_match is None or indent == current[1]):
            current[2].append(text)
            continue
        if marker_match is not None and (indent > 0 or index == 0):
            marker = marker_match.group(1)
            body = text[len(marker) :]
            if index == 0 and indent == 0 and not _first_line_is_item(rows, marker):
                blocks.append([None, 0, [text]])
                continue
            # The first line lost its indent: a first-level item's text column is always 5.
            column = indent + len(marker) if indent > 0 else 5
            blocks.append([marker.strip(), column, [body]])
        else:
            blocks.append([None, indent, [text]])

    out: list[str] = []
    # Open items: (text column in the legacy layout, indent of their children in Markdown).
    stack: list[tuple[int, int]] = []
    # Type of the list open at each Markdown depth ("*" or "1."), to tell siblings from new lists.
    lists: list[str] = []
    for marker, column, pieces in blocks:
        text = _escape_block(_collapse(" ".join(pieces)))
        if marker is not None:
            while stack and stack[-1][0] >= column:
                stack.pop()
            depth = len(stack)
            indent = stack[-1][1] if stack else 0
            md_marker = "* " if marker == "-" else marker + " "
            kind = "*" if marker == "-" else "1."
            sibling = len(lists) > depth and lists[depth] == kind
            del lists[depth + 1 :]
            if len(lists) > depth:
                lists[depth] = kind
            else:
                lists.append(kind)
            if out:
                out.append("\n" if sibling else "\n\n")
            out.append(" " * indent + md_marker + text)
            stack.append((column, indent + len(md_marker)))
        else:
            if column == 0:
                stack.clear()
            else:
                while stack and stack[-1][0] > column:
                    stack.pop()
            indent = stack[-1][1] if stack else 0
            del lists[len(stack) :]
            if out:
                out.append("\n\n")
            out.append(" " * indent + text)
    return "".join(out) or None


def _first_line_is_item(rows: list[tuple[int, str, bool]], marker: str) -> bool:
    """Whether a first line starting with a list marker is a list item.

    The legacy formatter wrote the first line at the margin even when it was an item; ``-  ``
    (two spaces) is its own item signature, so that is always an item.  A leading ``1. `` is an item
    only if the lines after it are laid out as one (continuation or next item indented).
    """
    if marker == "-  ":
        return True
    if len(rows) < 2:
        return False
    next_indent, next_text, next_blank = rows[1]
    if not next_blank:
        return next_indent > 0
    return next_indent > 0 and _ITEM_MARKER.match(next_text) is not None


# --------------------------------------------------------------------------------------------
# Dates, ids, names, ages
# --------------------------------------------------------------------------------------------


# Dates repeat across records (month-precision dates and a dump's download date above all), and
# reading one is pure: repeated values are looked up instead of parsed again.
@functools.lru_cache(maxsize=4096)
def _partial_date(text: str | None) -> str | None:
    if not text:
        return None
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    month = _MONTHS.get(match.group(1).lower())
    if month is None:
        return None
    day = match.group(2)
    if day is None:
        return f"{match.group(3)}-{month}"
    if not 1 <= int(day) <= 31:
        return None
    return f"{match.group(3)}-{month}-{int(day):02d}"


@functools.lru_cache(maxsize=256)
def _download_date(text: str) -> str | None:
    """The date in ``ClinicalTrials.gov processed this data on March 5, 2021`` (one text per dump)."""
    match = _DATE.search(text)
    return _partial_date(match.group(0)) if match else None


def _lower_host(url: str) -> str:
    # CT.gov writes "https://ClinicalTrials.gov/ProvidedDocs/..."; host names are case-insensitive
    # and v2 spells the same host in lower case.
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def _identifier(text: str, allow_eudract: bool) -> dict[str, Any]:
    if allow_eudract and _EUDRACT.fullmatch(text):
        return {"id": text, "type": "EUDRACT_NUMBER"}
    if _NIH_GRANT.fullmatch(text):
        return {"id": text, "type": "NIH", "link": f"https://reporter.nih.gov/quickSearch/{text}"}
    return {"id": text}


_AGE = re.compile(r"(\d+) *(year|month|week|day|hour|minute)s?", re.IGNORECASE)
_AGE_UNIT_YEARS = {
    "year": Fraction(1),
    "month": Fraction(1, 12),
    "week": Fraction(7 * 4, 1461),  # 7 days / 365.25
    "day": Fraction(4, 1461),
    "hour": Fraction(4, 1461 * 24),
    "minute": Fraction(4, 1461 * 24 * 60),
}


def _age_years(text: str | None) -> Fraction | None:
    if text is None:
        return None
    match = _AGE.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2).lower()]


def _std_ages(minimum: str | None, maximum: str | None) -> list[str]:
    """CT.gov age groups: Child (birth-17), Adult (18-64), Older Adult (65+)."""
    return list(_std_age_groups(minimum, maximum))


# A handful of age pairs ("18 Years" / "N/A" ...) cover most records, and the exact arithmetic
# (Fractions) is slow: the groups of a pair are computed once.
@functools.lru_cache(maxsize=1024)
def _std_age_groups(minimum: str | None, maximum: str | None) -> tuple[str, ...]:
    low = _age_years(minimum) if minimum else Fraction(0)
    high = _age_years(maximum) if maximum else None
    if low is None or (maximum and high is None):
        return ()  # an age we cannot read: no derivation rather than a wrong one
    groups = []
    if low < 18:
        groups.append("CHILD")
    if low < 65 and (high is None or high >= 18):
        groups.append("ADULT")
    if high is None or high >= 65:
        groups.append("OLDER_ADULT")
    return tuple(groups)


# --------------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------------


class _Reader:
    """One record's worth of state: the dict handed to TrialRecord and the unmapped paths."""

    def __init__(self) -> None:
        self.unmapped: dict[str, None] = {}  # insertion-ordered set
        self.status: dict[str, Any] = {}
        self.design: dict[str, Any] = {}
        self.eligibility: dict[str, Any] = {}
        self.rec: dict[str, Any] = {"status": self.status, "design": self.design}
        self.arms: list[dict[str, Any]] = []
        self.interventions: list[tuple[str | None, dict[str, Any]]] = []  # (type as written, intervention)
        self.outcomes: list[dict[str, Any]] = []
        self.references: list[dict[str, Any]] = []
        self.results_references: list[dict[str, Any]] = []
        self.sites: list[dict[str, Any]] = []
        self.central_contacts: list[dict[str, Any]] = []
        self.legacy_dates: dict[str, str] = {}
        self.header_url: str | None = None
        self.download_date: str | None = None

    # -- helpers ------------------------------------------------------------------------------

    def miss(self, path: str) -> None:
        self.unmapped[path] = None

    def children(
        self, el: etree._Element, path: str, known: tuple[str, ...] = ()
    ) -> Iterator[tuple[str, etree._Element]]:
        """Element children of ``el`` with their tags; comments and entity references are skipped.

        Below the root few elements of public.xsd (outside clinical_results) have attributes, so
        any attribute found is reported, except the ``known`` ones the caller handles.
        """
        for child in el:
            tag = child.tag
            if type(tag) is str:
                if child.keys():
                    self.check_attributes(child, f"{path}/{tag}", known)
                yield tag, child

    def check_attributes(self, el: etree._Element, path: str, known: tuple[str, ...] = ()) -> None:
        if len(el.attrib):
            for name in el.attrib:
                if name not in known:
                    self.miss(f"{path}/@{name}")

    def textblock(self, el: etree._Element, path: str) -> str | None:
        """The Markdown of a ``textblock_struct`` (its one ``textblock`` child)."""
        text: str | None = None
        for tag, child in self.children(el, path):
            if tag != "textblock":
                self.miss(f"{path}/{tag}")
                continue
            raw = child.text if len(child) == 0 else "".join(child.itertext())
            if raw and "&" in raw:
                raw = _decode_entities(raw)
            text = markdown_from_textblock(raw)
        return text

    def date(self, el: etree._Element, path: str) -> str | None:
        self.check_attributes(el, path)
        text = _plain(el)
        if text is None or text.lower() == "unknown":
            return None
        value = _partial_date(text)
        if value is None:
            self.miss(path)
        return value

    def date_struct(self, el: etree._Element, path: str) -> dict[str, Any] | None:
        self.check_attributes(el, path, ("type",))
        text = _plain(el)
        if text is None or text.lower() == "unknown":
            return None
        value = _partial_date(text)
        if value is None:
            self.miss(path)
            return None
        kind = el.get("type")
        return {"date": value, "type": _lookup(_DATE_TYPE, kind.strip()) if kind and kind.strip() else None}

    def yes_no(self, el: etree._Element, path: str) -> bool | None:
        text = _plain(el)
        if text is None:
            return None
        value = _YES_NO.get(text.lower())
        if value is None:
            self.miss(path)
        return value

    def person_name(self, el: etree._Element, path: str, extra: dict[str, Callable[..., None]]) -> str | None:
        """``first middle last, degrees`` from a contact/investigator struct; other children to ``extra``."""
        parts: dict[str, str] = {}
        for tag, child in self.children(el, path):
            if tag in ("first_name", "middle_name", "last_name", "degrees"):
                text = _plain(child)
                if text:
                    parts[tag] = text
            elif tag in extra:
                extra[tag](child)
            else:
                self.miss(f"{path}/{tag}")
        name = " ".join(parts[k] for k in ("first_name", "middle_name", "last_name") if k in parts)
        if "degrees" in parts:
            name = f"{name}, {parts['degrees']}" if name else parts["degrees"]
        return name or None

    # -- sections -----------------------------------------------------------------------------

    def required_header(self, el: etree._Element) -> None:
        for tag, child in self.children(el, "required_header"):
            if tag == "download_date":
                text = _plain(child)
                if text:
                    self.download_date = _download_date(text)
                    if self.download_date is None:
                        self.miss("required_header/download_date")
            elif tag == "url":
                self.header_url = _plain(child)
            elif tag != "link_text":
                self.miss(f"required_header/{tag}")

    def id_info(self, el: etree._Element) -> None:
        secondary: list[dict[str, Any]] = []
        aliases: list[str] = []
        for tag, child in self.children(el, "id_info"):
            if tag not in ("nct_id", "org_study_id", "secondary_id", "nct_alias"):
                self.miss(f"id_info/{tag}")
                continue
            text = _plain(child)
            if tag == "nct_id":
                self.rec["registry_id"] = text
            elif text is None:
                continue
            elif tag == "org_study_id":
                self.rec["org_study_id"] = _identifier(text, allow_eudract=False)
            elif tag == "secondary_id":
                secondary.append(_identifier(text, allow_eudract=True))
            else:
                aliases.append(text)
        self.rec["secondary_ids"] = secondary
        self.rec["id_aliases"] = aliases

    def sponsors(self, el: etree._Element) -> None:
        collaborators: list[dict[str, Any]] = []
        for tag, child in self.children(el, "sponsors"):
            if tag not in ("lead_sponsor", "collaborator"):
                self.miss(f"sponsors/{tag}")
                continue
            org = self.org(child, f"sponsors/{tag}")
            if org is None:
                continue
            if tag == "lead_sponsor":
                self.rec["lead_sponsor"] = org
            else:
                collaborators.append(org)
        self.rec["collaborators"] = collaborators

    def org(self, el: etree._Element, path: str) -> dict[str, Any] | None:
        name = agency_class = None
        for tag, child in self.children(el, path):
            if tag == "agency":
                name = _plain(child)
            elif tag == "agency_class":
                text = _plain(child)
                agency_class = _lookup(_AGENCY_CLASS, text) if text else None
            else:
                self.miss(f"{path}/{tag}")
        if name is None:
            if agency_class is not None:
                self.miss(f"{path}/agency_class")
            return None
        return {"name": name, "agency_class": agency_class}

    def oversight_info(self, el: etree._Element) -> None:
        oversight: dict[str, Any] = self.rec.setdefault("oversight", {})
        authorities: list[str] = oversight.setdefault("authorities", [])
        for tag, child in self.children(el, "oversight_info"):
            field = _OVERSIGHT_FLAGS.get(tag)
            if field is not None:
                oversight[field] = self.yes_no(child, f"oversight_info/{tag}")
            elif tag == "authority":
                text = _plain(child)
                if text:
                    authorities.append(text)
            else:
                self.miss(f"oversight_info/{tag}")

    def expanded_access_info(self, el: etree._Element) -> None:
        types: list[str] = self.design.setdefault("expanded_access_types", [])
        for tag, child in self.children(el, "expanded_access_info"):
            kind = _EXPANDED_ACCESS_TYPES.get(tag)
            if kind is None:
                self.miss(f"expanded_access_info/{tag}")
            elif self.yes_no(child, f"expanded_access_info/{tag}"):
                types.append(kind)

    def study_design_info(self, el: etree._Element) -> None:
        for tag, child in self.children(el, "study_design_info"):
            if tag in ("intervention_model_description", "masking_description"):
                self.design[tag] = _markup(child)
                continue
            if tag not in _DESIGN_VALUES:
                self.miss(f"study_design_info/{tag}")
                continue
            text = _plain(child)
            if text is not None:
                self.design_value(tag, text, f"study_design_info/{tag}")

    def design_value(self, tag: str, text: str, path: str) -> None:
        if tag == "allocation":
            self.design["allocation"] = _lookup(_ALLOCATION, text)
        elif tag == "intervention_model":
            self.design["intervention_model"] = _lookup(_INTERVENTION_MODEL, text)
        elif tag == "primary_purpose":
            self.design["primary_purpose"] = _lookup(_PRIMARY_PURPOSE, text)
        elif tag == "observational_model":
            self.design["observational_model"] = _lookup(_OBSERVATIONAL_MODEL, text)
        elif tag == "time_perspective":
            self.design["time_perspective"] = _lookup(_TIME_PERSPECTIVE, text)
        elif tag == "masking":
            self.design["masking"], self.design["who_masked"] = _masking(text)
        else:
            self.miss(path)

    def study_design(self, el: etree._Element) -> None:
        """Pre-2017 design: ``Allocation: Randomized, Intervention Model: ..., Masking: ...``."""
        text = _plain(el)
        if text is None:
            return
        pieces = _LEGACY_DESIGN_KEY.split(text)
        # split() with one group gives [prefix, key1, value1, key2, value2, ...]
        if pieces[0].strip(" ,"):
            self.miss("study_design")
        for key, value in zip(pieces[1::2], pieces[2::2], strict=True):
            value = value.strip().rstrip(",").strip()
            tag = _LEGACY_DESIGN_KEYS[key.lower()]
            if not value:
                continue
            if tag is None:
                self.design["endpoint_classification"] = value
            elif tag not in self.design or self.design[tag] in (None, []):
                # study_design_info, where both exist, is the newer statement and wins.
                self.design_value(tag, value, f"study_design ({key})")

    def outcome(self, el: etree._Element, kind: str, tag_path: str) -> None:
        outcome: dict[str, Any] = {"kind": kind}
        for tag, child in self.children(el, tag_path):
            if tag == "measure":
                outcome["measure"] = _plain(child)
            elif tag == "time_frame":
                outcome["time_frame"] = _plain(child)
            elif tag == "description":
                outcome["description"] = _markup(child)
            elif tag == "safety_issue":
                outcome["safety_issue"] = self.yes_no(child, f"{tag_path}/safety_issue")
            else:
                self.miss(f"{tag_path}/{tag}")
        if outcome.get("measure") is None:
            if any(value is not None for key, value in outcome.items() if key != "kind"):
                self.miss(f"{tag_path}/measure")
            return
        self.outcomes.append(outcome)

    def enrollment(self, el: etree._Element) -> None:
        self.check_attributes(el, "enrollment", ("type",))
        text = _plain(el)
        if text is not None:
            try:
                self.design["enrollment_count"] = int(text)
            except ValueError:
                self.miss("enrollment")
        kind = el.get("type")
        if kind and kind.strip():
            self.design["enrollment_type"] = _lookup(_DATE_TYPE, kind.strip())

    def number_of_arms(self, el: etree._Element, tag: str) -> None:
        text = _plain(el)
        if text is None:
            return
        try:
            self.design["number_of_arms"] = int(text)
        except ValueError:
            self.miss(tag)

    def arm_group(self, el: etree._Element) -> None:
        arm: dict[str, Any] = {}
        for tag, child in self.children(el, "arm_group"):
            if tag == "arm_group_label":
                arm["label"] = _plain(child)
            elif tag == "arm_group_type":
                text = _plain(child)
                arm["type"] = _lookup(_ARM_TYPE, text) if text else None
            elif tag == "description":
                arm["description"] = _markup(child)
            else:
                self.miss(f"arm_group/{tag}")
        if arm.get("label") is None:
            if any(arm.values()):
                self.miss("arm_group/arm_group_label")
            return
        self.arms.append(arm)

    def intervention(self, el: etree._Element) -> None:
        item: dict[str, Any] = {"arm_group_labels": [], "other_names": []}
        written_type: str | None = None
        for tag, child in self.children(el, "intervention"):
            if tag == "intervention_type":
                written_type = _plain(child)
                item["type"] = _lookup(_INTERVENTION_TYPE, written_type) if written_type else None
            elif tag == "intervention_name":
                item["name"] = _plain(child)
            elif tag == "description":
                item["description"] = _markup(child)
            elif tag == "arm_group_label":
                text = _plain(child)
                if text:
                    item["arm_group_labels"].append(text)
            elif tag == "other_name":
                text = _plain(child)
                if text:
                    item["other_names"].append(text)
            else:
                self.miss(f"intervention/{tag}")
        if item.get("name") is None:
            self.miss("intervention/intervention_name")
            return
        self.interventions.append((written_type, item))

    def eligibility_section(self, el: etree._Element) -> None:
        elig = self.eligibility
        ages_seen = False
        for tag, child in self.children(el, "eligibility"):
            if tag == "criteria":
                elig["criteria"] = self.textblock(child, "eligibility/criteria")
            elif tag == "study_pop":
                elig["study_population"] = self.textblock(child, "eligibility/study_pop")
            elif tag in ("minimum_age", "maximum_age"):
                ages_seen = True
                text = _plain(child)
                elig[tag] = None if text is None or text.upper() == "N/A" else text
            elif tag not in _ELIGIBILITY_VALUES:
                self.miss(f"eligibility/{tag}")
            else:
                text = _plain(child)
                if text is None:
                    continue
                if tag == "gender":
                    elig["sex"] = _lookup(_SEX, text)
                elif tag == "gender_based":
                    elig["gender_based"] = self.yes_no(child, "eligibility/gender_based")
                elif tag == "gender_description":
                    elig["gender_description"] = _markup(child)
                elif tag == "healthy_volunteers":
                    value = _HEALTHY.get(text.lower())
                    if value is None:
                        self.miss("eligibility/healthy_volunteers")
                    elig["healthy_volunteers"] = value
                else:
                    elig["sampling_method"] = _lookup(_SAMPLING, text)
        if ages_seen:
            elig["std_ages"] = _std_ages(elig.get("minimum_age"), elig.get("maximum_age"))

    def overall_official(self, el: etree._Element) -> None:
        official: dict[str, Any] = {}

        def role(child: etree._Element) -> None:
            text = _plain(child)
            official["role"] = _lookup(_ROLE, text) if text else None

        def affiliation(child: etree._Element) -> None:
            official["affiliation"] = _plain(child)

        name = self.person_name(el, "overall_official", {"role": role, "affiliation": affiliation})
        if name is None:
            if official:
                self.miss("overall_official/last_name")
            return
        official["name"] = name
        self.rec.setdefault("officials", []).append(official)

    def contact(self, el: etree._Element, path: str, role: str | None) -> dict[str, Any] | None:
        contact: dict[str, Any] = {}

        def setter(field: str) -> Callable[[etree._Element], None]:
            def set_value(child: etree._Element) -> None:
                contact[field] = _plain(child)

            return set_value

        name = self.person_name(
            el, path, {"phone": setter("phone"), "phone_ext": setter("phone_ext"), "email": setter("email")}
        )
        if name is None and not any(contact.values()):
            return None
        contact["name"] = name
        contact["role"] = role
        return contact

    def location(self, el: etree._Element) -> None:
        site: dict[str, Any] = {}
        contacts: list[dict[str, Any]] = []
        investigators: list[dict[str, Any]] = []
        for tag, child in self.children(el, "location"):
            if tag == "facility":
                for ftag, fchild in self.children(child, "location/facility"):
                    if ftag == "name":
                        site["facility"] = _plain(fchild)
                    elif ftag == "address":
                        for atag, achild in self.children(fchild, "location/facility/address"):
                            if atag in ("city", "state", "zip", "country"):
                                site[atag] = _plain(achild)
                            else:
                                self.miss(f"location/facility/address/{atag}")
                    else:
                        self.miss(f"location/facility/{ftag}")
            elif tag == "status":
                text = _plain(child)
                site["status"] = _lookup(_STATUS, text) if text else None
            elif tag in ("contact", "contact_backup"):
                contact = self.contact(child, f"location/{tag}", "CONTACT")
                if contact is not None:
                    contacts.append(contact)
            elif tag == "investigator":
                investigator = self.location_investigator(child)
                if investigator is not None:
                    investigators.append(investigator)
            else:
                self.miss(f"location/{tag}")
        # v2 lists a site's contacts before its investigators, whatever the XML order.
        site["contacts"] = contacts + investigators
        self.sites.append(site)

    def location_investigator(self, el: etree._Element) -> dict[str, Any] | None:
        found: dict[str, Any] = {}

        def role(child: etree._Element) -> None:
            text = _plain(child)
            found["role"] = _lookup(_ROLE, text) if text else None

        def affiliation(child: etree._Element) -> None:
            found["affiliation"] = _plain(child)

        name = self.person_name(el, "location/investigator", {"role": role, "affiliation": affiliation})
        if name is None:
            return None
        return {"name": name, "role": found.get("role"), "affiliation": found.get("affiliation")}

    def countries(self, el: etree._Element, path: str) -> None:
        found: list[str] = self.rec.setdefault(path, [])
        for tag, child in self.children(el, path):
            if tag == "country":
                text = _plain(child)
                if text:
                    found.append(text)
            else:
                self.miss(f"{path}/{tag}")

    def link(self, el: etree._Element) -> None:
        url = label = None
        for tag, child in self.children(el, "link"):
            if tag == "url":
                url = _plain(child)
            elif tag == "description":
                label = _markup(child)
            else:
                self.miss(f"link/{tag}")
        if url is None:
            if label is not None:
                self.miss("link/url")
            return
        self.rec.setdefault("see_also_links", []).append({"url": url, "label": label})

    def reference(self, el: etree._Element, path: str, kind: str, into: list[dict[str, Any]]) -> None:
        ref: dict[str, Any] = {"type": kind}
        for tag, child in self.children(el, path):
            if tag == "citation":
                ref["citation"] = _plain(child)
            elif tag == "PMID":
                ref["pmid"] = _plain(child)
            else:
                self.miss(f"{path}/{tag}")
        if ref.get("citation") or ref.get("pmid"):
            into.append(ref)

    def responsible_party(self, el: etree._Element) -> None:
        party: dict[str, Any] = {}
        for tag, child in self.children(el, "responsible_party"):
            if tag not in _RESPONSIBLE_PARTY_FIELDS:
                self.miss(f"responsible_party/{tag}")
                continue
            text = _plain(child)
            if text is None:
                continue
            if tag == "responsible_party_type":
                party["type"] = _lookup(_RESPONSIBLE_PARTY, text)
            elif tag in ("investigator_full_name", "investigator_title", "investigator_affiliation"):
                party[tag] = text
            elif tag == "name_title":
                party["old_name_title"] = text
            else:
                party["old_organization"] = text
        if party:
            self.rec["responsible_party"] = party

    def browse(self, el: etree._Element, path: str, field: str) -> None:
        terms: list[dict[str, Any]] = self.rec.setdefault(field, [])
        for tag, child in self.children(el, path):
            if tag == "mesh_term":
                text = _plain(child)
                if text:
                    terms.append({"term": text})
            else:
                self.miss(f"{path}/{tag}")

    def patient_data(self, el: etree._Element) -> None:
        ipd: dict[str, Any] = {"info_types": []}
        for tag, child in self.children(el, "patient_data"):
            if tag == "sharing_ipd":
                text = _plain(child)
                ipd["ipd_sharing"] = _lookup(_IPD_SHARING, text) if text else None
            elif tag == "ipd_info_type":
                text = _plain(child)
                if text:
                    ipd["info_types"].append(_lookup(_IPD_INFO_TYPE, text))
            elif tag in _IPD_FIELDS:
                field, markup = _IPD_FIELDS[tag]
                ipd[field] = _markup(child) if markup else _plain(child)
            else:
                self.miss(f"patient_data/{tag}")
        self.rec["ipd_sharing"] = ipd

    def study_docs(self, el: etree._Element) -> None:
        docs: list[dict[str, Any]] = self.rec.setdefault("avail_ipds", [])
        for tag, child in self.children(el, "study_docs"):
            if tag != "study_doc":
                self.miss(f"study_docs/{tag}")
                continue
            doc: dict[str, Any] = {}
            for dtag, dchild in self.children(child, "study_docs/study_doc"):
                field = _STUDY_DOC_FIELDS.get(dtag)
                if field is None:
                    self.miss(f"study_docs/study_doc/{dtag}")
                else:
                    doc[field] = _markup(dchild) if field == "comment" else _plain(dchild)
            if any(doc.values()):
                docs.append(doc)

    def provided_documents(self, el: etree._Element) -> None:
        docs: list[dict[str, Any]] = self.rec.setdefault("documents", [])
        base = "provided_document_section/provided_document"
        for tag, child in self.children(el, "provided_document_section"):
            if tag != "provided_document":
                self.miss(f"provided_document_section/{tag}")
                continue
            doc: dict[str, Any] = {}
            for dtag, dchild in self.children(child, base):
                if dtag == "document_type":
                    doc["label"] = _plain(dchild)
                elif dtag in ("document_has_protocol", "document_has_icf", "document_has_sap"):
                    doc["has_" + dtag.rsplit("_", 1)[1]] = self.yes_no(dchild, f"{base}/{dtag}")
                elif dtag == "document_date":
                    doc["date"] = self.date(dchild, f"{base}/{dtag}")
                elif dtag == "document_url":
                    url = _plain(dchild)
                    doc["url"] = _lower_host(url) if url else None
                    if url:
                        filename = url.rstrip("/").rsplit("/", 1)[-1]
                        doc["filename"] = filename or None
                        match = _DOC_FILENAME.fullmatch(filename)
                        doc["type_abbrev"] = match.group(1) if match else None
                else:
                    self.miss(f"{base}/{dtag}")
            if any(v is not None for v in doc.values()):
                docs.append(doc)

    def pending_results(self, el: etree._Element) -> None:
        """Results submissions not (yet) posted, as v2 ``unpostedEvents`` (registry order kept)."""
        annotations: dict[str, Any] = self.rec.setdefault("annotations", {})
        events: list[dict[str, Any]] = annotations.setdefault("unposted_events", [])
        # The dates are variable_date_struct, whose optional ``type`` (Actual/Estimate) says nothing
        # for a submission that has happened; v2's unpostedEvents has no such field either.
        for tag, child in self.children(el, "pending_results", ("type",)):
            kind = _PENDING_RESULTS.get(tag)
            if kind is None:
                self.miss(f"pending_results/{tag}")
                continue
            path = f"pending_results/{tag}"
            text = _plain(child)
            if text is None:
                continue
            if text.lower() == "unknown":
                events.append({"type": kind, "date_unknown": True})
                continue
            date = _partial_date(text)
            if date is None:
                self.miss(path)
                continue
            events.append({"type": kind, "date": date})

    # -- assembly -----------------------------------------------------------------------------

    def finish(self, source: str | None) -> dict[str, Any]:
        rec = self.rec
        nct = rec.get("registry_id")
        if not nct:
            named = ", ".join(
                f"{label} {value!r}"
                for label, value in (
                    ("org_study_id", (rec.get("org_study_id") or {}).get("id")),
                    ("brief_title", rec.get("brief_title")),
                )
                if value
            )
            raise RecordError(
                f"clinical_study{f' ({named})' if named else ''} has no id_info/nct_id; "
                "a record without its registry id cannot be mapped",
                source,
            )
        nct = nct.upper()
        if not _NCT.fullmatch(nct):
            raise RecordError(f"clinical_study has an invalid NCT id {nct!r} (expected NCT and 8 digits)", source)
        rec["registry_id"] = nct

        annotations = rec.get("annotations")
        if annotations is not None and not annotations.get("unposted_events"):
            del rec["annotations"]  # only unreadable events: reported, and no annotation to state

        # Legacy date elements only fill what their replacements left empty.
        for field, value in self.legacy_dates.items():
            if self.status.get(field) is None:
                self.status[field] = value

        # Arms list the interventions given in them; the XML only links interventions to arms.
        names_by_arm: dict[str, list[str]] = {}
        for written_type, item in self.interventions:
            label = f"{written_type}: {item['name']}" if written_type else item["name"]
            for arm_label in item["arm_group_labels"]:
                names_by_arm.setdefault(arm_label, []).append(label)
        for arm in self.arms:
            arm["intervention_names"] = names_by_arm.get(arm["label"], [])
        rec["arms"] = self.arms
        rec["interventions"] = [item for _, item in self.interventions]
        rec["outcomes"] = [o for kind in ("primary", "secondary", "other") for o in self.outcomes if o["kind"] == kind]
        rec["references"] = self.references + self.results_references
        rec["sites"] = self.sites
        rec["central_contacts"] = self.central_contacts
        rec["eligibility"] = self.eligibility

        organization = rec.get("organization")
        if organization is not None:
            for org in (rec.get("lead_sponsor"), *rec.get("collaborators", [])):
                if org is not None and org["name"] == organization["name"]:
                    organization["agency_class"] = org["agency_class"]
                    break

        rec["source"] = {
            "registry": "ctgov",
            "format": "ctgov-xml",
            "url": f"https://clinicaltrials.gov/study/{nct}",
            "version": self.download_date,
        }
        if self.header_url:
            match = _NCT.search(self.header_url)
            if match is None or match.group(0) != nct:
                # The header points somewhere other than the record's own id: keep that visible.
                self.miss("required_header/url")
        rec["unmapped"] = list(self.unmapped)
        return rec


_DESIGN_VALUES = frozenset(
    {"allocation", "intervention_model", "primary_purpose", "observational_model", "time_perspective", "masking"}
)
_ELIGIBILITY_VALUES = frozenset(
    {"gender", "gender_based", "gender_description", "healthy_volunteers", "sampling_method"}
)
_RESPONSIBLE_PARTY_FIELDS = frozenset(
    {
        "responsible_party_type",
        "investigator_full_name",
        "investigator_title",
        "investigator_affiliation",
        "name_title",
        "organization",
    }
)
_OVERSIGHT_FLAGS = {
    "has_dmc": "has_dmc",
    "is_fda_regulated_drug": "is_fda_regulated_drug",
    "is_fda_regulated_device": "is_fda_regulated_device",
    "is_unapproved_device": "is_unapproved_device",
    "is_ppsd": "is_ppsd",
    "is_us_export": "is_us_export",
}
_EXPANDED_ACCESS_TYPES = {
    "expanded_access_type_individual": "INDIVIDUAL",
    "expanded_access_type_intermediate": "INTERMEDIATE",
    "expanded_access_type_treatment": "TREATMENT",
}
_LEGACY_DESIGN_KEYS: dict[str, str | None] = {
    "allocation": "allocation",
    "endpoint classification": None,  # dropped by CT.gov in 2017; no v2 field: design.endpoint_classification
    "intervention model": "intervention_model",
    "masking": "masking",
    "primary purpose": "primary_purpose",
    "observational model": "observational_model",
    "time perspective": "time_perspective",
}
_LEGACY_DESIGN_KEY = re.compile(
    r"(?:^|,\s*)(Allocation|Endpoint Classification|Intervention Model|Masking|Primary Purpose|"
    r"Observational Model|Time Perspective):\s*",
    re.IGNORECASE,
)
_IPD_FIELDS = {
    "ipd_description": ("description", True),
    "ipd_time_frame": ("time_frame", True),
    "ipd_access_criteria": ("access_criteria", True),
    "ipd_url": ("url", False),
}
_PENDING_RESULTS = {"submitted": "RELEASE", "returned": "RESET", "submission_canceled": "UNRELEASE"}
_STUDY_DOC_FIELDS = {"doc_id": "id", "doc_type": "type", "doc_url": "url", "doc_comment": "comment"}
_DOC_FILENAME = re.compile(r"([A-Za-z][A-Za-z_]*?)_\d+\.pdf", re.IGNORECASE)
_MASKING_FORM = re.compile(r"([^(]*?)\s*(?:\(([^)]*)\))?")


def _masking(text: str) -> tuple[str | None, list[str]]:
    """Masking level and masked roles from ``Level (Role, Role)`` and its pre-2017 variants."""
    whole = _MASKING_LEVEL.get(text.lower())
    if whole is not None:
        return whole, []
    match = _MASKING_FORM.fullmatch(text)
    if match is None:
        return text, []
    label, roles_text = match.group(1).strip(), match.group(2)
    roles: list[str] = []
    unknown_role = False
    if roles_text:
        for part in roles_text.split(","):
            part = part.strip()
            if part:
                role = _WHO_MASKED.get(part.lower())
                if role is None:
                    unknown_role = True
                elif role not in roles:
                    roles.append(role)
    elif label and all(p.strip().lower() in _WHO_MASKED for p in label.split(",")):
        # "Participant, Investigator, Outcomes Assessor": roles without a level.
        roles = [_WHO_MASKED[p.strip().lower()] for p in label.split(",")]
        return None, roles
    level = _MASKING_LEVEL.get(label.lower()) if label else None
    if level is None or unknown_role:
        return text, roles
    if roles and _MASKING_COUNT[level] != len(roles):
        # e.g. old "Double Blind" (meaning two or more) with three roles: not one v2 value.
        return label, roles
    return level, roles


# Root children: tag -> handler(reader, element).
def _set_plain(field: str) -> Callable[[_Reader, etree._Element], None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        reader.rec[field] = _plain(el)

    return handler


def _set_text(container: str, field: str, convert: Callable[[etree._Element], Any]) -> Callable[..., None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        getattr(reader, container)[field] = convert(el)

    return handler


def _set_textblock(container: str, field: str) -> Callable[[_Reader, etree._Element], None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        getattr(reader, container)[field] = reader.textblock(el, el.tag)

    return handler


def _set_status_date(field: str, struct: bool) -> Callable[[_Reader, etree._Element], None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        reader.status[field] = reader.date_struct(el, el.tag) if struct else reader.date(el, el.tag)

    return handler


def _set_legacy_date(field: str) -> Callable[[_Reader, etree._Element], None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        value = reader.date(el, el.tag)
        if value is not None:
            reader.legacy_dates[field] = value

    return handler


def _status_value(field: str) -> Callable[[_Reader, etree._Element], None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        text = _plain(el)
        reader.status[field] = _lookup(_STATUS, text) if text else None

    return handler


def _phase(reader: _Reader, el: etree._Element) -> None:
    text = _plain(el)
    if text is None:
        return
    whole = _PHASE.get(text.lower())
    if whole is not None:
        reader.design["phases"] = [whole]
        return
    reader.design["phases"] = [_lookup(_PHASE, part.strip()) for part in text.split("/") if part.strip()]


def _study_type(reader: _Reader, el: etree._Element) -> None:
    text = _plain(el)
    if text is None or text.upper() == "N/A":  # N/A marks a redacted device record
        return
    reader.design["study_type"] = _lookup(_STUDY_TYPE, text)
    if text.lower() == "observational [patient registry]":
        reader.design["patient_registry"] = True


def _has_expanded_access(reader: _Reader, el: etree._Element) -> None:
    value = reader.yes_no(el, "has_expanded_access")
    if value is not None:
        reader.status["expanded_access"] = {"has_expanded_access": value}


def _list_append(field: str) -> Callable[[_Reader, etree._Element], None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        text = _plain(el)
        if text:
            reader.rec.setdefault(field, []).append(text)

    return handler


def _source(reader: _Reader, el: etree._Element) -> None:
    text = _plain(el)
    if text:
        reader.rec["organization"] = {"name": text}


def _central_contact(reader: _Reader, el: etree._Element) -> None:
    contact = reader.contact(el, el.tag, "CONTACT")
    if contact is not None:
        reader.central_contacts.append(contact)


def _vocabulary(table: dict[str, Any]) -> Callable[[etree._Element], Any]:
    def convert(el: etree._Element) -> Any:
        text = _plain(el)
        return _lookup(table, text) if text else None

    return convert


def _results_first_posted(reader: _Reader, el: etree._Element) -> None:
    reader.status["results_first_post"] = reader.date_struct(el, "results_first_posted")
    # A posting date states that results are public even where a copy was trimmed of its
    # clinical_results section (NCT03478891 in the corpus); v2 says hasResults for it.
    if reader.status["results_first_post"] is not None:
        reader.rec["has_results"] = True


def _has_results(reader: _Reader, el: etree._Element) -> None:
    # Posted results are not mapped (see the module docstring); only their presence is recorded.
    reader.rec["has_results"] = True


def _oversight_flag(field: str) -> Callable[[_Reader, etree._Element], None]:
    def handler(reader: _Reader, el: etree._Element) -> None:
        value = reader.yes_no(el, el.tag)
        if value is not None:
            reader.rec.setdefault("oversight", {})[field] = value

    return handler


# Root children whose handlers check their own ``type`` attribute.
_TYPED_ELEMENTS = frozenset(
    {
        "start_date",
        "completion_date",
        "primary_completion_date",
        "enrollment",
        "study_first_posted",
        "results_first_posted",
        "disposition_first_posted",
        "last_update_posted",
    }
)

_ROOT: dict[str, Callable[[_Reader, etree._Element], None]] = {
    "required_header": _Reader.required_header,
    "id_info": _Reader.id_info,
    "brief_title": _set_plain("brief_title"),
    "acronym": _set_plain("acronym"),
    "official_title": _set_plain("official_title"),
    "sponsors": _Reader.sponsors,
    "source": _source,
    "oversight_info": _Reader.oversight_info,
    "brief_summary": _set_textblock("rec", "brief_summary"),
    "detailed_description": _set_textblock("rec", "detailed_description"),
    "overall_status": _status_value("overall_status"),
    "last_known_status": _status_value("last_known_status"),
    "why_stopped": _set_text("status", "why_stopped", _markup),
    "start_date": _set_status_date("start", True),
    "completion_date": _set_status_date("completion", True),
    "primary_completion_date": _set_status_date("primary_completion", True),
    "phase": _phase,
    "study_type": _study_type,
    "has_expanded_access": _has_expanded_access,
    "expanded_access_info": _Reader.expanded_access_info,
    "study_design_info": _Reader.study_design_info,
    "study_design": _Reader.study_design,
    "target_duration": _set_text("design", "target_duration", _plain),
    "primary_outcome": lambda r, el: r.outcome(el, "primary", "primary_outcome"),
    "secondary_outcome": lambda r, el: r.outcome(el, "secondary", "secondary_outcome"),
    "other_outcome": lambda r, el: r.outcome(el, "other", "other_outcome"),
    "number_of_arms": lambda r, el: r.number_of_arms(el, "number_of_arms"),
    "number_of_groups": lambda r, el: r.number_of_arms(el, "number_of_groups"),
    "enrollment": _Reader.enrollment,
    "condition": _list_append("conditions"),
    "arm_group": _Reader.arm_group,
    "intervention": _Reader.intervention,
    "biospec_retention": _set_text("design", "bio_spec_retention", _vocabulary(_BIOSPEC)),
    "biospec_descr": _set_textblock("design", "bio_spec_description"),
    "eligibility": _Reader.eligibility_section,
    "overall_official": _Reader.overall_official,
    "overall_contact": _central_contact,
    "overall_contact_backup": _central_contact,
    "location": _Reader.location,
    "location_countries": lambda r, el: r.countries(el, "location_countries"),
    "removed_countries": lambda r, el: r.countries(el, "removed_countries"),
    "link": _Reader.link,
    "reference": lambda r, el: r.reference(el, "reference", "BACKGROUND", r.references),
    "results_reference": lambda r, el: r.reference(el, "results_reference", "RESULT", r.results_references),
    "verification_date": _set_status_date("status_verified_date", False),
    "study_first_submitted": _set_status_date("first_submit", False),
    "study_first_submitted_qc": _set_status_date("first_submit_qc", False),
    "study_first_posted": _set_status_date("first_post", True),
    "results_first_submitted": _set_status_date("results_first_submit", False),
    "results_first_submitted_qc": _set_status_date("results_first_submit_qc", False),
    "results_first_posted": _results_first_posted,
    "disposition_first_submitted": _set_status_date("disp_first_submit", False),
    "disposition_first_submitted_qc": _set_status_date("disp_first_submit_qc", False),
    "disposition_first_posted": _set_status_date("disp_first_post", True),
    "last_update_submitted": _set_status_date("last_update_submit", False),
    "last_update_submitted_qc": _set_status_date("last_update_submit_qc", False),
    "last_update_posted": _set_status_date("last_update_post", True),
    # Retired in 2018 in favour of the elements above (same meaning); older dumps still carry them.
    "firstreceived_date": _set_legacy_date("first_submit"),
    "lastchanged_date": _set_legacy_date("last_update_submit"),
    "firstreceived_results_date": _set_legacy_date("results_first_submit"),
    "firstreceived_results_disposition_date": _set_legacy_date("disp_first_submit"),
    "responsible_party": _Reader.responsible_party,
    "keyword": _list_append("keywords"),
    "condition_browse": lambda r, el: r.browse(el, "condition_browse", "condition_meshes"),
    "intervention_browse": lambda r, el: r.browse(el, "intervention_browse", "intervention_meshes"),
    "patient_data": _Reader.patient_data,
    "study_docs": _Reader.study_docs,
    "provided_document_section": _Reader.provided_documents,
    "pending_results": _Reader.pending_results,
    "clinical_results": _has_results,
    # Removed from public.xsd on 2017-01-11 ("obsolete and abandoned"); older dumps still carry them.
    "is_fda_regulated": _oversight_flag("is_fda_regulated"),
    "is_section_801": _oversight_flag("is_section_801"),
}


def read_clinical_study(data: bytes | etree._Element, source: str | None = None) -> TrialRecord:
    """Read one legacy ClinicalTrials.gov ``<clinical_study>`` document into a TrialRecord.

    ``data`` is the file's bytes (parsed with :func:`adapter.readers.safe_xml.parse_xml`) or an
    already parsed ``clinical_study`` element (for callers splitting a multi-study file).
    ``source`` names the input in error messages.

    Raises :class:`~adapter.errors.InputError` if the input is not safe, well-formed XML or its root
    is not ``clinical_study``, and :class:`~adapter.errors.RecordError` if it has no NCT id.
    """
    root = parse_xml(data, source) if isinstance(data, bytes | bytearray | memoryview) else data
    tag = root.tag
    if tag != "clinical_study":
        shown = tag if isinstance(tag, str) else type(root).__name__
        raise InputError(
            f"not a ClinicalTrials.gov legacy record: root element is <{shown}>, expected <clinical_study>", source
        )

    reader = _Reader()
    reader.check_attributes(root, "clinical_study", ("rank",))
    reader.rec["has_results"] = False
    for child in root:
        child_tag = child.tag
        if type(child_tag) is not str:
            continue
        handler = _ROOT.get(child_tag)
        if handler is None:
            reader.miss(child_tag)
            continue
        if child.keys() and child_tag not in _TYPED_ELEMENTS and child_tag != "clinical_results":
            reader.check_attributes(child, child_tag)
        handler(reader, child)
    record = reader.finish(source)
    try:
        return TrialRecord.model_validate(record)
    except ValueError as exc:
        # A value the model refuses (should not happen: the reader only emits what it validated).
        raise RecordError(f"{record.get('registry_id')}: record does not fit TrialRecord: {exc}", source) from exc
