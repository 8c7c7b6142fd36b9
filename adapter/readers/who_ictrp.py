"""WHO ICTRP XML export (``<Trials_downloaded_from_ICTRP>``, one ``<Trial>`` per study) -> ``TrialRecord``.

The WHO International Clinical Trials Registry Platform republishes every primary registry
(ClinicalTrials.gov, EU CTR, CTIS, DRKS, ISRCTN, ChiCTR, JPRN, CRIS, ANZCTR, CTRI, IRCT, PACTR, ...)
in one flat format: one text element per item of the WHO Trial Registration Data Set.  Lists are
joined with ``;`` (contacts are parallel ``;`` lists), line breaks are written as ``<br>`` inside
the text, dates as ``dd/mm/yyyy``.  How each element lands in the record:

======================================  ===========================================================
ICTRP element                           TrialRecord
======================================  ===========================================================
TrialID                                 ``registry_id`` as written (``EUCTR2011-001295-19-IT``)
Source_Register (+ TrialID pattern)     ``source.registry``: family code of
                                        ``mappings/codes/registries.json``
web_address / url                       ``source.url``
Last_Refreshed_on                       ``source.version`` (ISO date: changes whenever ICTRP
                                        re-imports a changed record)
Secondary_ID(s)                         ``secondary_ids``, typed by id pattern (NCT -> REGISTRY
                                        ClinicalTrials.gov, EudraCT -> EUDRACT_NUMBER, EU CT
                                        number -> CTIS, UTN, DRKS, ...); an EU CTR record id
                                        (primary or secondary) also yields its EudraCT number
Public_title / Scientific_title         ``brief_title`` / ``official_title``; Acronym -> ``acronym``
Primary_sponsor / Secondary_Sponsor     ``lead_sponsor`` / ``collaborators`` (split on ``;``)
Source_Support                          ``funders`` (split on ``;``; CT.gov's "Please refer to
                                        primary and secondary sponsors" and ``-`` are no funders)
Ethics_review_* (parallel ``;`` lists)  ``ethics_reviews``: status as written, approval date
                                        (``01/01/1900`` = none), contact name / address / phone /
                                        e-mail under ICTRP's labels (registries fill them shifted,
                                        so they are not reinterpreted); lists of different lengths
                                        are reported, not paired by guess
Recruitment_Status                      ``status.overall_status``: v2 code when the WHO value means
                                        exactly one (Recruiting, Pending = not yet recruiting,
                                        Suspended, Completed, Withdrawn, Terminated, ...), else
                                        the text (``Not recruiting`` and EU ``Authorised`` say
                                        nothing about whether the study is active or over)
Date_registration (Date_registration3)  ``status.first_submit`` (ICTRP takes CT.gov's first
                                        submitted date); the yyyymmdd twin is only cross-checked
Retrospective_flag                      ``status.registered_retrospectively`` (Yes / No)
other_records                           ``other_registry_records`` (Yes / No)
Date_enrollement                        ``status.start`` (date only: the export has no
                                        actual/anticipated flag)
results_date_completed                  ``status.completion``
results_date_posted                     ``status.results_first_post``
results_yes_no                          ``has_results``
results_url_link                        ``see_also_links`` (label ``Results``)
Target_size                             ``design.enrollment_count``: a number, or the sum of a
                                        list of ``group: number`` items; any other text is
                                        reported
Study_type                              ``design.study_type`` (v2 code, else text)
Study_design                            full text in ``design.intervention_model_description``;
                                        allocation, masking (+ who masked), model, purpose and the
                                        EU number of arms parsed when the text states them
                                        unambiguously (CT.gov ``Key: value.`` lists, EU
                                        ``Randomised: yes`` flags, DRKS/KCT key lists, keyword
                                        phrases)
Phase                                   ``design.phases``: v2 values (``Phase 2/Phase 3``, ``Phase
                                        III``, ``3``, ``Phase1/Phase2``, ``N/A``, EU ``(Phase II):
                                        yes`` flags giving one phase or an adjacent pair), else
                                        the text as the single list item
Inclusion/Exclusion_Criteria            ``eligibility.criteria`` with ``Inclusion Criteria:`` /
                                        ``Exclusion Criteria:`` headings (CT.gov records already
                                        carry both in Inclusion_Criteria and are kept as written,
                                        once: the export repeats them)
EU age block in Inclusion_Criteria      ``eligibility.std_ages`` (EU CTR groups under 18 / 18-64 /
("Are the trial subjects under 18?")    65+ are v2's CHILD / ADULT / OLDER_ADULT); taken out of the
                                        criteria text; subject counts per group ->
                                        ``design.planned_subjects_per_age_group``
Inclusion_agemin / _agemax              ``eligibility.minimum_age`` / ``maximum_age`` in the v2
                                        ``18 Years`` form; no-limit words -> None; anything else
                                        (``65+`` as a maximum, ``> 18``) is reported, not guessed
Inclusion_gender                        ``eligibility.sex`` ALL / FEMALE / MALE
Condition                               ``conditions`` (split on ``;`` and ``<br>``; bullet lists
                                        split by line; de-duplicated); MedDRA codings (version,
                                        level, code, term, SOC) -> ``condition_codes``; EU
                                        therapeutic areas -> ``therapeutic_areas``; bare codes ->
                                        ``condition_codes`` only where the registry's terminology
                                        is known (``condition_code_system.json``: DRKS ICD-10-GM),
                                        else reported
Intervention                            CT.gov ``Type: name`` lists -> ``interventions`` with v2
                                        types; EU CTR/CTIS product blocks -> one intervention per
                                        product (name, other names, block as description);
                                        DRKS ``Group n:``, ChiCTR ``group:intervention`` and
                                        ``Experimental: label`` blocks -> ``arms``; UMIN one per
                                        line; otherwise one intervention holding the text
Primary/Secondary_outcome               ``outcomes`` (split on ``;``); EU CTR/CTIS labelled text:
                                        end points -> outcomes with their time points, Main /
                                        Secondary Objective -> ``objectives`` (primary / secondary)
Countries                               ``location_countries`` (de-duplicated); region names such
                                        as ``Europe`` -> ``location_regions``
Contact_* (parallel ``;`` lists)        ``central_contacts`` (name = first + last name, email,
                                        phone, affiliation, address)
Export_date, Internal_Number            not mapped on purpose (``NOT_MAPPED_ON_PURPOSE``: ICTRP's
                                        housekeeping), so not reported either
======================================  ===========================================================

Reported in ``unmapped``: elements the reader does not know, bare condition codes of registries
whose terminology is not tabled, and any value that could not be read (bad date, age, size or
yes/no, parallel lists that do not line up).  ICTRP's placeholders are dropped, not reported:
``01/01/1900`` dates, CT.gov's ``Please refer to primary and secondary sponsors`` support text,
``-`` and ``Not applicable`` secondary ids.

Identifier systems (``mappings/codes/registries.json``, one entry per family): HL7 THO has
NamingSystems for ClinicalTrials.gov, CTIS and ISRCTN.  CTIS uses the THO preferred uniqueId
``https://euclinicaltrials.eu/clinicalTrialId`` and ClinicalTrials.gov ``https://clinicaltrials.gov/nctid``
(the value ``mappings/research_study.py`` uses, so both registries' paths give one system).  The
uniqueId of THO's ISRCTN entry could not be read here, so ISRCTN uses the registry's address and
names the THO entry to check.  No THO NamingSystem exists for EU CTR, EudraCT, DRKS, ChiCTR,
JPRN, CRIS, OMON, ANZCTR, CTRI, IRCT, PACTR and the others; each uses the registry's own
canonical https address (``system_basis: registry-url``; EudraCT as ``secondary_id_type.json``).
``registry_id`` keeps ICTRP's prefix (``CTIS``, ``EUCTR``, ``JPRN-``); the table's
``ictrp_prefix`` tells a mapping how to get the registry's own number.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterator
from datetime import date
from functools import cache
from typing import Any

from lxml import etree
from pydantic import ValidationError

from adapter.errors import InputError, RecordError, Trial2FhirError
from adapter.readers import ReadItem
from adapter.readers.safe_xml import parse_xml
from adapter.record import TrialRecord
from mappings.codes import table

FORMAT = "who-ictrp-xml"

__all__ = ["FORMAT", "classify_id", "iter_trials", "read_items", "read_trial", "registry_family"]


# -- registry table -------------------------------------------------------------------------------


@cache
def _registries() -> dict[str, dict[str, Any]]:
    return table("registries")


@cache
def _id_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((code, re.compile(entry["id_regex"])) for code, entry in _registries().items())


@cache
def _register_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for code, entry in _registries().items():
        for name in entry.get("ictrp_names", ()):
            names[name.casefold()] = code
    return names


def classify_id(value: str) -> str | None:
    """The family code (``registries.json`` key) whose id pattern ``value`` matches, else ``None``."""
    for code, pattern in _id_patterns():
        if pattern.match(value):
            return code
    return None


def registry_family(trial_id: str, register_name: str | None = None) -> str:
    """Family code of a primary registry, from the TrialID pattern, else from ICTRP's register name.

    A register nobody has tabled yet gets a code made from its name, so the record still reads.
    """
    code = classify_id(trial_id)
    if code is not None and _registries()[code].get("ictrp_names"):
        return code
    if register_name:
        known = _register_names().get(register_name.strip().casefold())
        if known:
            return known
        slug = re.sub(r"[^a-z0-9]+", "-", register_name.casefold()).strip("-")
        if slug:
            return slug
    return code or "unknown"


# -- text ---------------------------------------------------------------------------------------

_BR = re.compile(r"[ \t]*(?:\r?\n)?[ \t]*<br\s*/?>", re.IGNORECASE)
# "<br />" followed by ICTRP's own "<br>" for the same line end (OMON's HTML) is one break.
_DOUBLED_BR = re.compile(r"<br\s*/>[ \t]*(?:\r?\n)?[ \t]*<br\s*>", re.IGNORECASE)
_P_TAG = re.compile(r"</?p\s*>", re.IGNORECASE)
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")


def _unescape(text: str) -> str:
    # Some registries' text reaches ICTRP already HTML-escaped (sometimes twice); decode
    # well-formed entities only, so a bare "&" stays as written.
    for _ in range(2):
        decoded = _ENTITY.sub(lambda match: html.unescape(match.group(0)), text)
        if decoded == text:
            break
        text = decoded
    return text


def _markup(text: str | None) -> str:
    """ICTRP text with its ``<br>``/``<p>`` line breaks as newlines, indentation kept, tidy blank lines."""
    if not text:
        return ""
    if "&" in text:
        text = _unescape(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DOUBLED_BR.sub("<br>", text)
    text = _BR.sub("\n", text)
    text = _P_TAG.sub("\n", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = textwrap.dedent("\n".join(lines))
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip("\n").strip()


def _line(text: str | None) -> str:
    """One-line text: markup breaks and runs of whitespace become single spaces."""
    return _SPACES.sub(" ", _markup(text)).strip()


def _show(value: str) -> str:
    """A value quoted for a report line, cut short so one long field cannot flood the warnings."""
    text = repr(_SPACES.sub(" ", value).strip())
    return text if len(text) <= 80 else text[:77] + "..."


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.casefold()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
    return out


_ITEM_SEPARATOR = re.compile(r";(?![ \t])")


def _items(text: str) -> list[str]:
    """Raw items of a ``;``-joined list of prose (outcomes, conditions, interventions).

    ICTRP joins list items with a bare ``;``; a ``;`` followed by a space is the registry's own
    punctuation inside one item ("Change in NIS; NIS (Total), NIS-LL ..."), so it does not split.
    """
    return _ITEM_SEPARATOR.split(text)


def _split(text: str | None) -> list[str]:
    """A ``;``-joined ICTRP list as one-line items, empty items dropped, order kept."""
    if not text:
        return []
    return [item for item in (_line(part) for part in text.split(";")) if item]


# -- dates --------------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
            ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
            ("october", "oct"), ("november", "nov"), ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip
_ISO = re.compile(r"^(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?$")
_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MONTH_YEAR = re.compile(r"^([A-Za-z]+)\.?\s+(\d{4})$")
_MONTH_DAY_YEAR = re.compile(r"^([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})$")
_DATE_TIME = re.compile(r"^(\S+)\s+\d{1,2}:\d{2}(?::\d{2})?$")
_NULL_DATE = "1900-01-01"
"""ICTRP writes ``01/01/1900`` where a registry gave no date."""


def _ymd(year: int, month: int | None = None, day: int | None = None) -> str | None:
    if month is None:
        return f"{year:04d}"
    if not 1 <= month <= 12:
        return None
    if day is None:
        return f"{year:04d}-{month:02d}"
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_date(text: str | None) -> str | None:
    """A registry date at the precision given (``2012``, ``2012-03``, ``2012-03-20``), else ``None``.

    ``nn/nn/yyyy`` is day first: that is how the ICTRP export writes every registry's dates.
    """
    value = _line(text)
    if not value:
        return None
    match = _DATE_TIME.match(value)
    if match:
        value = match.group(1)
    if match := _ISO.match(value):
        year, month, day = match.groups()
        return _ymd(int(year), int(month) if month else None, int(day) if day else None)
    if match := _DMY.match(value):
        return _ymd(int(match.group(3)), int(match.group(2)), int(match.group(1)))
    if match := _COMPACT.match(value):
        return _ymd(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if match := _MONTH_YEAR.match(value):
        month = _MONTHS.get(match.group(1).casefold())
        return _ymd(int(match.group(2)), month) if month else None
    if match := _MONTH_DAY_YEAR.match(value):
        month = _MONTHS.get(match.group(1).casefold())
        return _ymd(int(match.group(3)), month, int(match.group(2))) if month else None
    if match := _DAY_MONTH_YEAR.match(value):
        month = _MONTHS.get(match.group(2).casefold())
        return _ymd(int(match.group(3)), month, int(match.group(1))) if month else None
    return None


# -- ages and sex -------------------------------------------------------------------------------

_NO_AGE = frozenset(
    {"", "none", "no limit", "nolimit", "no limitation", "n/a", "na", "not applicable", "not stated", "-", "no",
     "not specified", "no age limit"}
)  # fmt: skip
_AGE = re.compile(
    r"^(?P<op>>=|=>|≥|<=|=<|≤)?\s*(?P<num>\d+)\s*(?P<unit>[a-z]*)\s*(?:\(\s*(?P<punit>[a-z]+)\s*\))?"
    r"\s*(?:-?\s*olds?|old)?\s*(?P<plus>\+)?$"
)
_AGE_UNITS = {
    "Year": {"", "y", "yr", "yrs", "year", "years", "age", "years-old", "yearsold", "a"},
    "Month": {"m", "mo", "mos", "mon", "month", "months"},
    "Week": {"w", "wk", "wks", "week", "weeks"},
    "Day": {"d", "day", "days"},
    "Hour": {"h", "hr", "hrs", "hour", "hours"},
    "Minute": {"min", "mins", "minute", "minutes"},
}
_UNIT_OF = {alias: unit for unit, aliases in _AGE_UNITS.items() for alias in aliases}


def parse_age(text: str | None, bound: str) -> tuple[str | None, bool]:
    """``("18 Years", True)`` for ``18``, ``18Y``, ``18 Years``, ``>= 18age old``, ``60(Year)``.

    ``bound`` is ``"min"`` or ``"max"``: an inclusive operator must point the right way (``>=``
    for a minimum); a strict one (``> 18``), an open maximum (``65+``) or anything unreadable gives
    ``(None, False)`` so the caller reports it.  No-limit words give ``(None, True)``.
    """
    value = _line(text).casefold()
    if value in _NO_AGE:
        return None, True
    match = _AGE.match(value.replace("years old", "years").replace("year old", "year"))
    if not match:
        return None, False
    op, plus = match.group("op"), match.group("plus")
    allowed = {None, ">=", "=>", "≥"} if bound == "min" else {None, "<=", "=<", "≤"}
    if op not in allowed or (plus and bound != "min"):
        return None, False
    unit_text = match.group("unit") or ""
    if match.group("punit"):
        if unit_text:
            return None, False
        unit_text = match.group("punit")
    unit = _UNIT_OF.get(unit_text)
    if unit is None:
        return None, False
    number = int(match.group("num"))
    return f"{number} {unit}{'' if number == 1 else 's'}", True


_SEX_FLAGS = re.compile(r"\b(female|male)\s*:\s*(yes|no)\b", re.IGNORECASE)
_SEX_WORDS = {
    "ALL": {"all", "both", "male and female", "female and male", "males and females", "females and males",
            "both males and females", "both male and female", "m/f", "f/m", "men and women", "women and men"},
    "MALE": {"male", "males", "men", "m"},
    "FEMALE": {"female", "females", "women", "f"},
}  # fmt: skip
_SEX_OF = {word: code for code, words in _SEX_WORDS.items() for word in words}


def parse_sex(text: str | None) -> tuple[str | None, bool]:
    """``ALL``/``MALE``/``FEMALE`` from ``Both``, ``All``, ``Male and Female``, ``Female: yes Male: no``."""
    value = _line(text)
    if not value:
        return None, True
    flags = {sex.casefold(): answer.casefold() == "yes" for sex, answer in _SEX_FLAGS.findall(value)}
    if len(flags) == 2:
        if flags["female"] and flags["male"]:
            return "ALL", True
        if flags["female"]:
            return "FEMALE", True
        if flags["male"]:
            return "MALE", True
        return None, False
    code = _SEX_OF.get(value.casefold().rstrip("."))
    return code, code is not None


# -- status, type, phase, design ----------------------------------------------------------------

_STATUS = {
    "recruiting": "RECRUITING",
    "pending": "NOT_YET_RECRUITING",  # WHO TRDS: "participants are not yet being recruited or enrolled"
    "not yet recruiting": "NOT_YET_RECRUITING",
    "suspended": "SUSPENDED",
    "temporarily halted": "SUSPENDED",
    "complete": "COMPLETED",
    "completed": "COMPLETED",
    "withdrawn": "WITHDRAWN",
    "terminated": "TERMINATED",
    "stopped early": "TERMINATED",
    "active, not recruiting": "ACTIVE_NOT_RECRUITING",
    "enrolling by invitation": "ENROLLING_BY_INVITATION",
    "available": "AVAILABLE",
    "no longer available": "NO_LONGER_AVAILABLE",
    "temporarily not available": "TEMPORARILY_NOT_AVAILABLE",
    "approved for marketing": "APPROVED_FOR_MARKETING",
}

_STUDY_TYPES = {
    "interventional": "INTERVENTIONAL",
    "interventional study": "INTERVENTIONAL",
    "interventional clinical trial of medicinal product": "INTERVENTIONAL",
    "observational": "OBSERVATIONAL",
    "observational study": "OBSERVATIONAL",
    "observational [patient registry]": "OBSERVATIONAL",
    "expanded access": "EXPANDED_ACCESS",
}

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_PHASE_NA = frozenset({"n/a", "na", "not applicable", "not-applicable", "none (n/a)"})
_PHASE_PART = re.compile(r"^(?:phase\s*)?(i{1,3}|iv|[1-4])$")
_PHASE_SPLIT = re.compile(r"\s*(?:/|-|,|&|\+|\band\b|\bto\b)\s*")
_EU_PHASE = re.compile(r"\(phase\s+(i{1,3}|iv)\)\s*:\s*(yes|no)\b", re.IGNORECASE)
_EARLY_PHASE1 = re.compile(r"^early\s+phase\s*(1|i)$")


def _phase_codes(numbers: list[int]) -> list[str] | None:
    numbers = sorted(set(numbers))
    if len(numbers) == 1 or numbers in ([1, 2], [2, 3]):
        return [f"PHASE{n}" for n in numbers]
    return None  # non-adjacent or 3+ phases: v2 has no value for them


def parse_phases(text: str | None) -> list[str]:
    """v2 ``Phase`` values where the text means them unambiguously, else ``[text]``."""
    value = _line(text)
    if not value:
        return []
    low = value.casefold()
    if low in _PHASE_NA:
        return ["NA"]
    if _EARLY_PHASE1.match(low):
        return ["EARLY_PHASE1"]
    flags = _EU_PHASE.findall(value)
    if flags:
        codes = _phase_codes([_ROMAN[numeral.casefold()] for numeral, answer in flags if answer.casefold() == "yes"])
        return codes or [value]
    numbers = []
    for part in _PHASE_SPLIT.split(low):
        match = _PHASE_PART.match(part.strip())
        if not match:
            return [value]
        numbers.append(_ROMAN[match.group(1)])
    return _phase_codes(numbers) or [value]


_ALLOCATION = {
    "randomized": "RANDOMIZED", "randomised": "RANDOMIZED", "randomized controlled trial": "RANDOMIZED",
    "randomised controlled trial": "RANDOMIZED", "non-randomized": "NON_RANDOMIZED",
    "non-randomised": "NON_RANDOMIZED", "nonrandomized": "NON_RANDOMIZED", "non randomized": "NON_RANDOMIZED",
    "non-randomized controlled trial": "NON_RANDOMIZED", "n/a": "NA", "na": "NA", "not applicable": "NA",
}  # fmt: skip
_MODEL = {
    "parallel assignment": "PARALLEL", "parallel": "PARALLEL", "parallel group": "PARALLEL",
    "single group assignment": "SINGLE_GROUP", "single group": "SINGLE_GROUP", "single arm": "SINGLE_GROUP",
    "single": "SINGLE_GROUP", "single (group)": "SINGLE_GROUP", "crossover assignment": "CROSSOVER",
    "crossover": "CROSSOVER", "cross-over": "CROSSOVER", "cross over": "CROSSOVER",
    "factorial assignment": "FACTORIAL", "factorial": "FACTORIAL", "sequential assignment": "SEQUENTIAL",
    "sequential": "SEQUENTIAL",
}  # fmt: skip
_PURPOSE = {
    "treatment": "TREATMENT", "prevention": "PREVENTION", "diagnostic": "DIAGNOSTIC", "diagnosis": "DIAGNOSTIC",
    "supportive care": "SUPPORTIVE_CARE", "screening": "SCREENING",
    "health services research": "HEALTH_SERVICES_RESEARCH", "basic science": "BASIC_SCIENCE",
    "device feasibility": "DEVICE_FEASIBILITY", "educational/counseling/training": "ECT", "other": "OTHER",
    "treatment purpose": "TREATMENT", "prevention purpose": "PREVENTION", "diagnostic purpose": "DIAGNOSTIC",
}  # fmt: skip
_MASKING = {
    "none (open label)": "NONE", "none": "NONE", "open": "NONE", "open label": "NONE", "open-label": "NONE",
    "open (masking not used)": "NONE", "open(masking not used)": "NONE", "single": "SINGLE",
    "single blind": "SINGLE", "single-blind": "SINGLE", "double": "DOUBLE", "double blind": "DOUBLE",
    "double-blind": "DOUBLE", "triple": "TRIPLE", "triple blind": "TRIPLE", "triple-blind": "TRIPLE",
    "quadruple": "QUADRUPLE",
}  # fmt: skip
_WHO_MASKED = {
    "participant": "PARTICIPANT", "subject": "PARTICIPANT", "care provider": "CARE_PROVIDER",
    "caregiver": "CARE_PROVIDER", "investigator": "INVESTIGATOR", "outcomes assessor": "OUTCOMES_ASSESSOR",
}  # fmt: skip
_DESIGN_KEYS = re.compile(
    r"(?:^|(?<=[\s.;,]))(Allocation|Intervention model|Intervention Model|Primary purpose|Primary Purpose|"
    r"Masking|Blinding/Masking|Control|Assignment|Study design purpose|Observational model|Time perspective)"
    r"\s*:",
)
_EU_DESIGN = re.compile(
    r"\b(Controlled|Randomised|Open|Single blind|Double blind|Parallel group|Cross over)\s*:\s*(yes|no)\b",
    re.IGNORECASE,
)
_EU_ARMS = re.compile(r"Number of treatment arms in the trial\s*:\s*(\d+)", re.IGNORECASE)
_MASK_ROLES = re.compile(r"^(?P<level>[a-z ()-]+?)\s*\((?P<roles>[^)]*)\)$")


def _one(found: set[str]) -> str | None:
    """The single value found, or ``None`` when nothing or contradicting values were found."""
    return next(iter(found)) if len(found) == 1 else None


def _masking(value: str) -> tuple[str | None, list[str]]:
    low = value.casefold().strip(" .")
    if low in _MASKING:
        return _MASKING[low], []
    match = _MASK_ROLES.match(low)
    if match and match.group("level").strip() in ("single", "double", "triple", "quadruple"):
        roles = [_WHO_MASKED.get(role.strip()) for role in match.group("roles").split(",")]
        if all(roles):
            return _MASKING[match.group("level").strip()], [role for role in roles if role]
    return None, []


def parse_design(text: str, interventional: bool) -> dict[str, Any]:
    """Design codes the ``Study_design`` text states unambiguously (only non-empty keys returned)."""
    design: dict[str, Any] = {}
    keyed = list(_DESIGN_KEYS.finditer(text))
    eu = _EU_DESIGN.findall(text)
    if keyed:
        values: dict[str, str] = {}
        for index, match in enumerate(keyed):
            end = keyed[index + 1].start() if index + 1 < len(keyed) else len(text)
            key = match.group(1).casefold()
            values[key] = text[match.end() : end].strip(" \t\n.;,")
        purpose = values.get("primary purpose") or values.get("study design purpose")
        if purpose and purpose.casefold() in _PURPOSE:
            design["primary_purpose"] = _PURPOSE[purpose.casefold()]
        if interventional:
            allocation = values.get("allocation", "").casefold()
            if allocation in _ALLOCATION:
                design["allocation"] = _ALLOCATION[allocation]
            model = (values.get("intervention model") or values.get("assignment") or "").casefold()
            if model in _MODEL:
                design["intervention_model"] = _MODEL[model]
            masking, who = _masking(values.get("masking") or values.get("blinding/masking") or "")
            if masking:
                design["masking"] = masking
                design["who_masked"] = who
    elif eu:
        flags = {key.casefold(): answer.casefold() == "yes" for key, answer in eu}
        if interventional:
            if flags.get("randomised"):
                design["allocation"] = "RANDOMIZED"
            blinding = {
                code for key, code in (("open", "NONE"), ("single blind", "SINGLE"), ("double blind", "DOUBLE"))
                if flags.get(key)
            }  # fmt: skip
            if masking := _one(blinding):
                design["masking"] = masking
            models = {
                code for key, code in (("parallel group", "PARALLEL"), ("cross over", "CROSSOVER")) if flags.get(key)
            }
            if model := _one(models):
                design["intervention_model"] = model
        arms = _EU_ARMS.search(text)
        if arms and int(arms.group(1)) > 0:
            design["number_of_arms"] = int(arms.group(1))
    else:
        low = text.casefold()
        segments = {segment.strip(" .") for segment in re.split(r"[,;\n]", low)}
        purposes = {_PURPOSE[segment] for segment in segments if segment in _PURPOSE}
        if purpose := _one(purposes):
            design["primary_purpose"] = purpose
        if interventional:
            allocations = set()
            if re.search(r"\bnon[- ]?randomi[sz]ed\b", low):
                allocations.add("NON_RANDOMIZED")
            if re.search(r"(?<![-\w])(?<!non )randomi[sz]ed\b", low):
                allocations.add("RANDOMIZED")
            if allocation := _one(allocations):
                design["allocation"] = allocation
            maskings = set()
            # "open" alone only as a list item of its own ("Randomized, Open (masking not used)"), so
            # prose such as "open to patients of study X" is not read as open-label.
            if re.search(r"\bopen[- ]label\b|masking not used|(?:^|[,;\n])\s*open\s*(?:$|[,;\n(])", low):
                maskings.add("NONE")
            for level in ("single", "double", "triple", "quadruple"):
                if re.search(rf"\b{level}[- ](?:blind|mask)", low):
                    maskings.add(level.upper())
            if masking := _one(maskings):
                design["masking"] = masking
            models = set()
            for pattern, code in (
                (r"\bparallel\b", "PARALLEL"), (r"\bcross[- ]?over\b", "CROSSOVER"), (r"\bfactorial\b", "FACTORIAL"),
                (r"\bsingle[- ](?:arm|group)\b", "SINGLE_GROUP"), (r"\bsequential\b", "SEQUENTIAL"),
            ):  # fmt: skip
                if re.search(pattern, low):
                    models.add(code)
            if model := _one(models):
                design["intervention_model"] = model
    return design


# -- conditions, interventions, outcomes --------------------------------------------------------

_MEDDRA = re.compile(
    r"MedDRA version\s*:\s*(?P<version>[\d.]+)\s*Level\s*:\s*(?P<level>[A-Z]+?)\s*Classification code\s*:?\s*"
    r"(?P<code>\d+)\s*Term\s*:\s*(?P<term>.*?)\s*(?:System Organ Class\s*:\s*(?P<soc>.*?))?\s*$",
    re.DOTALL,
)
_CODE_ONLY = re.compile(r"^(?:[A-Z]\d{2}(?:\.\d{1,4})?|\d{5,9})$")
_BULLET = re.compile(r"^\s*[-•*]\s*")


@cache
def _bare_code_rules() -> dict[str, tuple[str, re.Pattern[str]]]:
    """Registry family -> (terminology, code pattern) for codes a registry writes without naming the terminology."""
    rules = table("condition_code_system")["bare_codes"]
    return {family: (rule["terminology"], re.compile(rule["pattern"])) for family, rule in rules.items()}


def _conditions(text: str, family: str, report: _Report) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """``(condition texts, condition codes, EU therapeutic areas)`` of the Condition element."""
    conditions: list[str] = []
    codes: list[dict[str, Any]] = []
    areas: list[str] = []
    bare = _bare_code_rules().get(family)
    for segment in _items(text):
        for part in re.split(r"<br\s*/?>", segment, flags=re.IGNORECASE):
            value = _markup(part)
            if not value:
                continue
            flat = _SPACES.sub(" ", value)
            if flat.casefold().startswith("meddra version"):
                match = _MEDDRA.match(value)
                if match:
                    soc = _SPACES.sub(" ", match.group("soc") or "").strip()
                    code = {
                        "system": "MedDRA",
                        "code": match.group("code"),
                        "display": _SPACES.sub(" ", match.group("term")).strip() or None,
                        "version": match.group("version"),
                        "level": match.group("level"),
                        "system_organ_class": soc or None,
                    }
                    if code not in codes:
                        codes.append(code)
                else:
                    report.add("Condition", "MedDRA coding not understood", flat)
                continue
            if flat.casefold().startswith("therapeutic area:"):
                area = flat.split(":", 1)[1].strip()
                if area and area not in areas:
                    areas.append(area)
                continue
            if _CODE_ONLY.match(flat):
                if bare is not None and bare[1].match(flat):
                    code = {"system": bare[0], "code": flat}
                    if code not in codes:
                        codes.append(code)
                else:
                    report.add("Condition", "condition code without a named system", flat)
                continue
            lines = [line for line in value.split("\n") if line.strip()]
            if len(lines) > 1 and all(_BULLET.match(line) for line in lines):
                conditions.extend(_BULLET.sub("", line).strip() for line in lines)
            else:
                conditions.append(value if "\n\n" in value else flat)
    return _dedupe(conditions), codes, areas


_INTERVENTION_TYPES = {
    "drug": "DRUG", "device": "DEVICE", "biological": "BIOLOGICAL", "biological/vaccine": "BIOLOGICAL",
    "procedure": "PROCEDURE", "procedure/surgery": "PROCEDURE", "radiation": "RADIATION",
    "behavioral": "BEHAVIORAL", "behavioural": "BEHAVIORAL", "genetic": "GENETIC",
    "dietary supplement": "DIETARY_SUPPLEMENT", "combination product": "COMBINATION_PRODUCT",
    "diagnostic test": "DIAGNOSTIC_TEST", "other": "OTHER",
}  # fmt: skip
_TYPED = re.compile(r"^(?P<type>[A-Za-z /]+?)\s*:\s*(?P<name>.+)$", re.DOTALL)
_ARM_TYPES = {
    "experimental": "EXPERIMENTAL", "active comparator": "ACTIVE_COMPARATOR",
    "placebo comparator": "PLACEBO_COMPARATOR", "sham comparator": "SHAM_COMPARATOR",
    "no intervention": "NO_INTERVENTION", "other": "OTHER",
}  # fmt: skip
_GROUP = re.compile(r"(?:^|\n)\s*(Group \d+)\s*:\s*", re.IGNORECASE)
_EU_PRODUCT_KEYS = (
    "Trade Name", "Product Name", "Product Code", "Pharmaceutical Form", "INN or Proposed INN", "CAS Number",
    "Current Sponsor code", "Other descriptive name", "Strength", "Concentration unit", "Concentration type",
    "Concentration number", "Pharmaceutical form of the placebo", "Route of administration of the placebo",
)  # fmt: skip
_EU_KEY_BOUNDARY = re.compile(r",\s*(?=(?:" + "|".join(re.escape(key) for key in _EU_PRODUCT_KEYS) + r")\s*:)")
_EU_LINE = re.compile(r"^(?P<key>" + "|".join(re.escape(key) for key in _EU_PRODUCT_KEYS) + r")\s*:\s*(?P<value>.*)$")
_EU_NAME_KEYS = ("Product Name", "Trade Name", "INN or Proposed INN", "Product Code", "Current Sponsor code")
_EU_OTHER_NAME_KEYS = (*_EU_NAME_KEYS, "Other descriptive name")


def _typed_list(text: str) -> list[dict[str, Any]] | None:
    """CT.gov's ``Drug: a;Other: placebo`` list (also KCT's ``Radiation : ...``), every item typed.

    An item spanning several lines keeps its first line as the name and the rest as description.
    """
    out = []
    for item in _items(text):
        value = _markup(item)
        if not value:
            continue
        first, _, rest = value.partition("\n")
        match = _TYPED.match(first.strip())
        kind = _INTERVENTION_TYPES.get(match.group("type").strip().casefold()) if match else None
        if match is None or kind is None:
            return None
        name = _SPACES.sub(" ", match.group("name")).strip()
        entry: dict[str, Any] = {"type": kind, "name": name}
        if rest.strip():
            entry["description"] = rest.strip()
        if entry not in out:
            out.append(entry)
    return out or None


def _eu_products(text: str) -> list[dict[str, Any]] | None:
    """EU CTR/CTIS ``Product Name: ...`` blocks, one intervention per product."""
    value = _markup(text)
    value = _EU_KEY_BOUNDARY.sub("\n", value)  # CTIS writes the block on one line, comma-separated
    products: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in value.split("\n"):
        line = line.strip()
        if not line:
            if current:
                products.append(current)
                current = []
            continue
        match = _EU_LINE.match(line)
        if match is None:
            if not current:
                return None
            key, previous = current[-1]
            current[-1] = (key, f"{previous} {line}".strip())
            continue
        key = match.group("key")
        if any(existing == key for existing, _ in current):
            products.append(current)
            current = []
        current.append((key, match.group("value").strip()))
    if current:
        products.append(current)
    out = []
    for fields in products:
        named = {key: val for key, val in fields if val}
        names = _dedupe([named[key] for key in _EU_OTHER_NAME_KEYS if key in named])
        description = "\n".join(f"{key}: {val}" for key, val in fields)
        if not names:
            out.append({"name": description})
            continue
        primary = next(named[key] for key in _EU_OTHER_NAME_KEYS if key in named)
        out.append(
            {
                "name": primary,
                "other_names": [name for name in names if name != primary],
                "description": description,
            }
        )
    return out or None


def _arm_blocks(text: str) -> list[dict[str, Any]] | None:
    """CT.gov-style arm blocks ``Experimental: label`` + description, blank-line separated."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", _markup(text)) if block.strip()]
    arms = []
    for block in blocks:
        first, _, rest = block.partition("\n")
        match = _TYPED.match(first)
        kind = _ARM_TYPES.get(match.group("type").strip().casefold()) if match else None
        if match is None or kind is None:
            return None
        arms.append({"label": match.group("name").strip(), "type": kind, "description": rest.strip() or None})
    return arms or None


def _group_arms(text: str) -> list[dict[str, Any]] | None:
    """DRKS ``Group 1: description`` paragraphs."""
    value = _markup(text)
    parts = _GROUP.split(value)
    if len(parts) < 3 or parts[0].strip():
        return None
    return [
        {"label": parts[index].strip(), "description": parts[index + 1].strip() or None}
        for index in range(1, len(parts) - 1, 2)
    ]


def _label_arms(text: str) -> list[dict[str, Any]] | None:
    """ChiCTR ``control group:No;sepsis group:drug X;`` (group name: its intervention)."""
    arms = []
    for item in (_line(part) for part in _items(text)):
        if not item:
            continue
        label, sep, intervention = item.partition(":")
        if not sep or not label.strip():
            return None
        arms.append({"label": label.strip(), "description": intervention.strip() or None})
    return arms or None


def _free_intervention(text: str) -> list[dict[str, Any]]:
    value = _markup(text)
    first, _, rest = value.partition("\n")
    if rest.strip():
        return [{"name": first.strip(), "description": value}]
    return [{"name": _line(value)}]


def _interventions(text: str, family: str, trial_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(interventions, arms)`` read from the Intervention text as the registry lays it out."""
    if typed := _typed_list(text):
        return typed, []
    if family in ("euctr", "ctis") and (products := _eu_products(text)):
        return products, []
    if family == "drks" and (groups := _group_arms(text)):
        return [], groups
    if family == "chictr" and (labelled := _label_arms(text)):
        return [], labelled
    if arms := _arm_blocks(text):
        return [], arms
    if family == "jprn" and "UMIN" in trial_id:
        lines = _dedupe([line.strip() for line in _markup(text).split("\n") if line.strip()])
        return [{"name": line} for line in lines], []
    return _free_intervention(text), []


_EU_OUTCOME_LABEL = re.compile(
    r"(?:^|;)\s*(Main Objective|Secondary Objective|Primary end point\(s\)|Secondary end point\(s\)|"
    r"Timepoint\(s\) of evaluation of this end point)\s*:",
    re.IGNORECASE,
)


def _outcomes(
    text: str, kind: str, family: str, element: str, report: _Report, objectives: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Outcomes of a Primary/Secondary_outcome element; EU objectives found in it go to ``objectives``."""
    labels = list(_EU_OUTCOME_LABEL.finditer(text))
    if family in ("euctr", "ctis") and labels and not text[: labels[0].start()].strip():
        outcomes: list[dict[str, Any]] = []
        for index, match in enumerate(labels):
            end = labels[index + 1].start() if index + 1 < len(labels) else len(text)
            label = match.group(1).casefold()
            body = _markup(text[match.end() : end])
            if not body:
                continue
            if "objective" in label:
                objective = {"kind": "primary" if label.startswith("main") else "secondary", "description": body}
                if objective not in objectives:
                    objectives.append(objective)
            elif label.startswith("timepoint"):
                if outcomes and not outcomes[-1].get("time_frame"):
                    outcomes[-1]["time_frame"] = body
                else:
                    report.add(element, "time point without an end point", body)
            else:
                outcome_kind = "primary" if label.startswith("primary") else "secondary"
                outcomes.append({"kind": outcome_kind, "measure": body})
        return outcomes
    return [{"kind": kind, "measure": measure} for measure in _dedupe([_markup(part) for part in _items(text)])]


# -- identifiers, contacts, criteria ------------------------------------------------------------

_ID_PLACEHOLDERS = frozenset({"-", "none", "nil", "n/a", "na", "not applicable", "not available"})
_EUDRACT_IN = re.compile(r"(\d{4}-\d{6}-\d{2})")


def _secondary_ids(text: str | None, primary: str, family: str) -> list[dict[str, Any]]:
    registries = _registries()
    out: list[dict[str, Any]] = []
    seen: set[str] = {primary.casefold()}

    def add(value: str, code: str | None) -> None:
        if value.casefold() in seen:
            return
        seen.add(value.casefold())
        item: dict[str, Any] = {"id": value}
        if code is not None:
            entry = registries[code]
            item["type"] = entry["v2_secondary_id_type"]
            if item["type"] in ("REGISTRY", "OTHER"):
                item["domain"] = entry["display"]
            if "record_url" in entry:
                item["link"] = entry["record_url"].format(id=value)
        out.append(item)

    def add_eudract(value: str, code: str | None) -> None:
        # An EU CTR record id is EudraCT number + member state: the number itself identifies the
        # trial across all member states (and is how CT.gov and CTIS records cite it).
        if code == "euctr":
            match = _EUDRACT_IN.search(value)
            if match:
                add(match.group(1), "eudract")

    add_eudract(primary, family)
    for value in _split(text):
        if value.casefold() in _ID_PLACEHOLDERS:
            continue
        code = classify_id(value)
        add(value, code)
        add_eudract(value, code)
    return out


_REGIONS = frozenset(
    {"africa", "asia", "asia except japan", "europe", "north america", "south america", "latin america",
     "central america", "oceania", "middle east", "worldwide", "international", "other"}
)  # fmt: skip


def _contacts(fields: _Fields, report: _Report) -> list[dict[str, Any]]:
    names = ("Contact_Firstname", "Contact_Lastname", "Contact_Email", "Contact_Tel", "Contact_Affiliation",
             "Contact_Address")  # fmt: skip
    raw = {name: fields.take(name) for name in names}
    columns = {name: [_line(part) for part in value.split(";")] if value else [] for name, value in raw.items()}
    lengths = {len(values) for values in columns.values() if any(values)}
    if len(lengths) > 1:
        # The parallel lists do not line up, so which value belongs to whom is unknown.
        for name, value in raw.items():
            if value:
                report.add(name, "contact lists of different lengths", value)
        return []
    count = max((len(values) for values in columns.values()), default=0)
    contacts: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for index in range(count):

        def cell(name: str, index: int = index) -> str:
            values = columns[name]
            return values[index] if index < len(values) else ""

        name = " ".join(part for part in (cell("Contact_Firstname"), cell("Contact_Lastname")) if part)
        email, phone = cell("Contact_Email"), cell("Contact_Tel")
        affiliation, address = cell("Contact_Affiliation"), cell("Contact_Address")
        key = (name.casefold(), email.casefold(), phone, affiliation.casefold(), address.casefold())
        if key in seen or not any(key):
            continue
        seen.add(key)
        # A row with only an affiliation (jRCT: "Medpace Japan KK") still says where to turn.
        contacts.append(
            {
                "name": name or None,
                "email": email or None,
                "phone": phone or None,
                "affiliation": affiliation or None,
                "address": address or None,
            }
        )
    return contacts


_CRITERIA_PREFIX = re.compile(r"^\s*(?:inclusion|exclusion)\s+criteria[ \t]*:[ \t]*\n?", re.IGNORECASE)
_EXCLUSION_HEADING = re.compile(r"^\s*(?:key\s+)?exclusion\s+criteria\s*:?\s*$", re.IGNORECASE | re.MULTILINE)


def _unrepeated(text: str | None) -> str:
    """Criteria text once: the export repeats a CT.gov record's criteria, ``;``-joined, per site list."""
    if not text:
        return ""
    copies = {_markup(part) for part in _items(text)} - {""}
    return copies.pop() if len(copies) == 1 else _markup(text)


def _criteria_body(text: str) -> str:
    """The text after ICTRP's ``Inclusion criteria:`` prefix, its own indentation kept."""
    return textwrap.dedent(_CRITERIA_PREFIX.sub("", text, count=1)).strip("\n").rstrip()


def _criteria(inclusion: str, exclusion: str) -> str | None:
    """One criteria text with CT.gov's ``Inclusion Criteria:``/``Exclusion Criteria:`` headings.

    Takes the two texts already through ``_unrepeated``.
    """
    if inclusion and not exclusion and _EXCLUSION_HEADING.search(inclusion):
        return inclusion  # CT.gov text: ICTRP passes the whole criteria block, both headings included
    parts = []
    if body := _criteria_body(inclusion):
        parts.append(f"Inclusion Criteria:\n\n{body}")
    if body := _criteria_body(exclusion):
        parts.append(f"Exclusion Criteria:\n\n{body}")
    return "\n\n".join(parts) or None


# EU CTR section F.1 (age groups of the subjects), which ICTRP appends to the inclusion criteria.
_EU_AGES_START = re.compile(r"^Are the trial subjects under 18\?", re.MULTILINE)
_EU_UNDER_18 = re.compile(r"^Are the trial subjects under 18\?\s*(?P<answer>yes|no)?$", re.IGNORECASE)
_EU_AGE_COUNT = re.compile(r"^(?:F\.1\.[\d.]*1\s+)?Number of subjects for this age range:?\s*(?P<count>\d*)$")
_EU_AGE_GROUP = re.compile(r"^F\.1\.(?P<number>\d(?:\.\d)*)\s+(?P<label>.+?)\s+(?P<answer>yes|no)$", re.IGNORECASE)


def _eu_age_groups(text: str) -> tuple[str, list[str], list[dict[str, Any]]]:
    """Split EU CTR's age-group block off the inclusion criteria: ``(criteria, v2 std_ages, subject counts)``.

    EU CTR's groups are exactly v2's: under 18 (and its F.1.1.x sub-groups) = CHILD, F.1.2 adults
    18-64 = ADULT, F.1.3 elderly 65+ = OLDER_ADULT.  The planned number of subjects per group goes
    to ``design.planned_subjects_per_age_group``.  Text that does not read as that block in full is
    left in the criteria.
    """
    start = _EU_AGES_START.search(text)
    if start is None:
        return text, [], []
    ages: set[str] = set()
    counts: list[dict[str, Any]] = []
    label = "Under 18"
    for line in (line.strip() for line in text[start.start() :].split("\n")):
        if not line:
            continue
        if match := _EU_UNDER_18.match(line):
            if (match.group("answer") or "").casefold() == "yes":
                ages.add("CHILD")
        elif match := _EU_AGE_COUNT.match(line):
            if match.group("count"):
                counts.append({"label": label, "count": int(match.group("count"))})
        elif match := _EU_AGE_GROUP.match(line):
            label = match.group("label")
            if match.group("answer").casefold() == "yes":
                group = match.group("number").split(".")[0]
                ages.add({"1": "CHILD", "2": "ADULT", "3": "OLDER_ADULT"}.get(group, ""))
        else:
            return text, [], []
    ages.discard("")
    order = ("CHILD", "ADULT", "OLDER_ADULT")
    return text[: start.start()].rstrip(), [age for age in order if age in ages], counts


_SIZE_ITEM = re.compile(r"^[^:;]*:\s*(\d{1,3}(?:,\d{3})+|\d+)\s*$")
_NUMBER = re.compile(r"^(\d{1,3}(?:,\d{3})+|\d+)$")


def parse_target_size(text: str | None) -> tuple[int | None, bool]:
    """A count from ``100``, ``1,000`` or ``Treatment: 100; Control: 100`` (summed), else ``(None, False)``."""
    value = _line(text)
    if not value:
        return None, True
    if _NUMBER.match(value):
        return int(value.replace(",", "")), True
    items = [item.strip() for item in value.split(";") if item.strip()]
    matches = [_SIZE_ITEM.match(item) for item in items]
    if items and all(matches):
        return sum(int(match.group(1).replace(",", "")) for match in matches if match), True
    return None, False


# -- element access -----------------------------------------------------------------------------


def _key(tag: str) -> str:
    return re.sub(r"[^a-z0-9]", "", tag.casefold())


_ALIASES = {
    "url": "webaddress",
    "secondaryids": "secondaryid",
    "dateenrolment": "dateenrollement",
    "dateenrollment": "dateenrollement",
    "secondarysponsors": "secondarysponsor",
    "conditions": "condition",
    "interventions": "intervention",
    "primaryoutcomes": "primaryoutcome",
    "secondaryoutcomes": "secondaryoutcome",
    "country": "countries",
}


class _Report:
    """What the reader found but could not place, as ``Element (problem: 'value')`` lines."""

    def __init__(self) -> None:
        self.lines: set[str] = set()

    def add(self, element: str, problem: str, value: str) -> None:
        self.lines.add(f"{element} ({problem}: {_show(value)})" if value else f"{element} ({problem})")


class _Fields:
    """The text of a ``<Trial>``'s child elements, looked up by tag name in any spelling."""

    def __init__(self, trial: etree._Element) -> None:
        self.values: dict[str, str] = {}
        self.names: dict[str, str] = {}
        for child in trial:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child).localname
            key = _key(tag)
            key = _ALIASES.get(key, key)
            text = "".join(child.itertext()).strip()
            self.names.setdefault(key, tag)
            if not text:
                continue
            # A repeated element is the same list continued (the export's multi-value join).
            self.values[key] = f"{self.values[key]};{text}" if key in self.values else text
        self.used: set[str] = set()

    def take(self, name: str) -> str | None:
        key = _ALIASES.get(_key(name), _key(name))
        self.used.add(key)
        return self.values.get(key)

    def leftovers(self) -> Iterator[tuple[str, str]]:
        for key, value in self.values.items():
            if key not in self.used:
                yield self.names[key], value


# -- the record ---------------------------------------------------------------------------------

_SUPPORT_PLACEHOLDERS = frozenset({"please refer to primary and secondary sponsors", "-", "none", "n/a"})
NOT_MAPPED_ON_PURPOSE: dict[str, str] = {
    "Export_date": "when ICTRP produced the export file: a fact about the file, not the trial",
    "Internal_Number": "ICTRP's own database row number: not an identifier of the trial anywhere else",
}
"""ICTRP housekeeping elements read and deliberately not mapped (so not reported either)."""
_ETHICS_FIELDS = {
    "Ethics_review_status": "status",
    "Ethics_review_approval_date": "approval_date",
    "Ethics_review_contact_name": "contact_name",
    "Ethics_review_contact_address": "contact_address",
    "Ethics_review_contact_phone": "contact_phone",
    "Ethics_review_contact_email": "contact_email",
}
_YES_NO = {"yes": True, "no": False}


def _yes_no(fields: _Fields, name: str, report: _Report) -> bool | None:
    value = _line(fields.take(name))
    if not value:
        return None
    answer = _YES_NO.get(value.casefold())
    if answer is None:
        report.add(name, "not yes/no", value)
    return answer


def _ethics_reviews(fields: _Fields, report: _Report) -> list[dict[str, Any]]:
    """One review per item of the ``;``-joined, parallel Ethics_review_* lists (OMON lists two committees)."""
    raw = {name: fields.take(name) for name in _ETHICS_FIELDS}
    columns = {name: [_line(part) for part in value.split(";")] if value else [] for name, value in raw.items()}
    lengths = {len(values) for values in columns.values() if any(values)}
    if len(lengths) > 1:
        # Which date or contact belongs to which committee is unknown: nothing is paired by guess.
        for name, value in raw.items():
            if value and any(columns[name]):
                report.add(name, "ethics review lists of different lengths", value)
        return []
    reviews: list[dict[str, Any]] = []
    for index in range(max(lengths, default=0)):
        review: dict[str, Any] = {}
        for name, key in _ETHICS_FIELDS.items():
            values = columns[name]
            value = values[index] if index < len(values) else ""
            if not value:
                continue
            if key == "approval_date":
                date = parse_date(value)
                if date is None:
                    report.add(name, "not a date", value)
                elif date != _NULL_DATE:
                    review[key] = date
            else:
                review[key] = value
        if review:
            reviews.append(review)
    return reviews


def _date_field(fields: _Fields, name: str, report: _Report) -> str | None:
    raw = fields.take(name)
    if not raw:
        return None
    value = parse_date(raw)
    if value is None:
        report.add(name, "not a date", raw)
    return None if value == _NULL_DATE else value


def _describe(fields: _Fields) -> str:
    for name in ("Public_title", "Scientific_title", "Primary_sponsor"):
        value = fields.values.get(_key(name))
        if value:
            text = _line(value)
            return f"{name} {text[:77] + '...' if len(text) > 80 else text!r}"
    return "no title or sponsor either"


def read_trial(trial: etree._Element, source: str | None = None) -> TrialRecord:
    """Read one ``<Trial>`` element into a ``TrialRecord``.

    Raises ``RecordError`` when the trial has no TrialID; everything else the reader cannot place
    is reported in ``record.unmapped``.
    """
    fields = _Fields(trial)
    report = _Report()
    trial_id = _line(fields.take("TrialID"))
    if not trial_id:
        raise RecordError(f"ICTRP trial has no TrialID ({_describe(fields)})", source)
    register = _line(fields.take("Source_Register")) or None
    family = registry_family(trial_id, register)
    entry = _registries().get(family, {})

    url = _line(fields.take("web_address")) or None
    if url is None and "record_url" in entry:
        url = entry["record_url"].format(id=trial_id)
    version = _date_field(fields, "Last_Refreshed_on", report)
    record: dict[str, Any] = {
        "source": {"registry": family, "format": FORMAT, "url": url, "version": version},
        "registry_id": trial_id,
        "brief_title": _line(fields.take("Public_title")) or None,
        "official_title": _line(fields.take("Scientific_title")) or None,
        "acronym": _line(fields.take("Acronym")) or None,
        "secondary_ids": _secondary_ids(fields.take("Secondary_ID"), trial_id, family),
    }

    sponsor = _line(fields.take("Primary_sponsor"))
    if sponsor:
        record["lead_sponsor"] = {"name": sponsor}
    record["collaborators"] = [{"name": name} for name in _dedupe(_split(fields.take("Secondary_Sponsor")))]
    record["funders"] = [
        {"name": name}
        for name in _dedupe(_split(fields.take("Source_Support")))
        if name.casefold() not in _SUPPORT_PLACEHOLDERS
    ]
    record["ethics_reviews"] = _ethics_reviews(fields, report)

    status: dict[str, Any] = {}
    recruitment = _line(fields.take("Recruitment_Status"))
    if recruitment:
        status["overall_status"] = _STATUS.get(recruitment.casefold(), recruitment)
    registered = _date_field(fields, "Date_registration", report)
    registered_compact = fields.take("Date_registration3")
    if registered_compact:
        compact = parse_date(registered_compact)
        if registered is None and compact not in (None, _NULL_DATE):
            registered = compact
        elif compact != registered:
            report.add("Date_registration3", f"differs from Date_registration {registered}", registered_compact)
    if registered:
        status["first_submit"] = registered
    status["registered_retrospectively"] = _yes_no(fields, "Retrospective_flag", report)
    for element, key in (
        ("Date_enrollement", "start"),
        ("results_date_completed", "completion"),
        ("results_date_posted", "results_first_post"),
    ):
        value = _date_field(fields, element, report)
        if value:
            status[key] = {"date": value}
    record["status"] = status

    results = _line(fields.take("results_yes_no")).casefold()
    if results in ("yes", "no"):
        record["has_results"] = results == "yes"
    elif results:
        report.add("results_yes_no", "not yes/no", results)
    results_url = _line(fields.take("results_url_link"))
    if results_url:
        record["see_also_links"] = [{"url": results_url, "label": "Results"}]

    design: dict[str, Any] = {}
    study_type = _line(fields.take("Study_type"))
    if study_type:
        design["study_type"] = _STUDY_TYPES.get(study_type.casefold(), study_type)
        if study_type.casefold() == "observational [patient registry]":
            design["patient_registry"] = True
    design_text = _markup(fields.take("Study_design"))
    if design_text:
        design["intervention_model_description"] = design_text
        design.update(parse_design(design_text, design.get("study_type") != "OBSERVATIONAL"))
    design["phases"] = parse_phases(fields.take("Phase"))
    size_text = fields.take("Target_size")
    size, ok = parse_target_size(size_text)
    if size is not None:
        design["enrollment_count"] = size
    elif not ok:
        report.add("Target_size", "not a count", size_text or "")
    record["design"] = design

    inclusion, std_ages, age_counts = _eu_age_groups(_unrepeated(fields.take("Inclusion_Criteria")))
    design["planned_subjects_per_age_group"] = age_counts
    eligibility: dict[str, Any] = {
        "criteria": _criteria(inclusion, _unrepeated(fields.take("Exclusion_Criteria"))),
        "std_ages": std_ages,
    }
    for element, key, bound in (("Inclusion_agemin", "minimum_age", "min"), ("Inclusion_agemax", "maximum_age", "max")):
        raw = fields.take(element)
        age, ok = parse_age(raw, bound)
        eligibility[key] = age
        if not ok:
            report.add(element, "not a v2 age", raw or "")
    sex_text = fields.take("Inclusion_gender")
    sex, ok = parse_sex(sex_text)
    eligibility["sex"] = sex
    if not ok:
        report.add("Inclusion_gender", "not a v2 sex", sex_text or "")
    record["eligibility"] = eligibility

    condition_text = fields.take("Condition")
    if condition_text:
        record["conditions"], record["condition_codes"], record["therapeutic_areas"] = _conditions(
            condition_text, family, report
        )
    intervention_text = fields.take("Intervention")
    if intervention_text and _line(intervention_text):
        record["interventions"], record["arms"] = _interventions(intervention_text, family, trial_id)
    outcomes: list[dict[str, Any]] = []
    objectives: list[dict[str, Any]] = []
    for element, kind in (("Primary_outcome", "primary"), ("Secondary_outcome", "secondary")):
        text = fields.take(element)
        if text:
            outcomes.extend(_outcomes(text, kind, family, element, report, objectives))
    record["outcomes"] = [outcome for outcome in outcomes if outcome["measure"]]
    record["objectives"] = objectives

    countries, regions = [], []
    for country in _dedupe(_split(fields.take("Countries"))):
        (regions if country.casefold() in _REGIONS else countries).append(country)
    record["location_countries"] = countries
    record["location_regions"] = regions
    record["central_contacts"] = _contacts(fields, report)
    record["other_registry_records"] = _yes_no(fields, "other_records", report)

    for element in NOT_MAPPED_ON_PURPOSE:
        fields.take(element)
    for tag, value in fields.leftovers():
        report.add(tag, "element not known to the reader", value)

    record["unmapped"] = sorted(report.lines)
    try:
        return TrialRecord.model_validate(record)
    except ValidationError as error:
        # The reader cleans every value it passes on, so this means a reader bug; still name the record.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()[:3]
        )
        raise RecordError(f"{trial_id}: could not build the record: {problems}", source) from None


def _trials(root: etree._Element, source: str) -> list[tuple[etree._Element, str]]:
    local = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if local == "Trial":
        return [(root, source)]
    if local != "Trials_downloaded_from_ICTRP":
        raise InputError(
            f"XML root <{local}> is not a WHO ICTRP export (expected <Trials_downloaded_from_ICTRP>)", source
        )
    trials = [child for child in root if isinstance(child.tag, str) and etree.QName(child).localname == "Trial"]
    if not trials:
        raise InputError("WHO ICTRP export holds no <Trial> records", source)
    if len(trials) == 1:
        return [(trials[0], source)]
    return [(trial, f"{source}#Trial[{index}]") for index, trial in enumerate(trials)]


def read_items(root: etree._Element, source: str | None = None) -> Iterator[ReadItem]:
    """One ``ReadItem`` per ``<Trial>`` of a parsed export (the dispatcher in ``adapter.readers`` calls this).

    Locators are the source name for a one-trial export, ``source#Trial[3]`` otherwise.
    """
    for trial, locator in _trials(root, source or "<input>"):
        try:
            yield ReadItem(locator, record=read_trial(trial, locator))
        except Trial2FhirError as error:
            yield ReadItem(locator, error=error)


def iter_trials(data: bytes, source: str | None = None) -> Iterator[TrialRecord]:
    """Parse an ICTRP XML export safely and yield one ``TrialRecord`` per ``<Trial>``.

    Hostile or malformed XML raises ``InputError`` before any record is read; a trial without a
    TrialID raises ``RecordError`` when reached (use ``read_items`` to collect per-trial errors
    and go on).
    """
    name = source or "<input>"
    root = parse_xml(data, name)
    for trial, locator in _trials(root, name):
        yield read_trial(trial, locator)
