"""Structured timing from the free text of arm and intervention descriptions.

Registries hold no structured schedule: "At week 24 treatments will be reversed", "twice daily for
12 weeks" or "days 1-5 of each 28-day cycle" are sentences.  This module finds the statements whose
meaning is unambiguous and returns them as typed values; everything else is left to the text, which
the mappings keep anyway.  Precision matters more than recall here: an EHR that schedules from a
wrong offset does harm, a missing offset only costs a look at the description.  So:

* alternatives ("week 4 or 8", "once or twice daily"), limits ("up to 6 cycles") and optional
  switches ("patients may cross over after 6 months") yield nothing;
* a numbered study day/week ("week 24", "day 28") is only ever related to another numbered
  day/week of the same text (their difference is exact whatever the registry's numbering
  convention); a lone "day 14" yields nothing;
* an elapsed time ("at 6 months") is only taken when its reference point is stated
  ("... after randomization") or when it times a crossover ("At 6 months treatments will be
  reversed", "crossover after 8 weeks").

Units are UCUM codes of FHIR ``UnitsOfTime``: ``min``, ``h``, ``d``, ``wk``, ``mo``, ``a``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mappings.fhir import UCUM

Number = int | float

UNIT_NAMES: dict[str, tuple[str, str]] = {
    "min": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "d": ("day", "days"),
    "wk": ("week", "weeks"),
    "mo": ("month", "months"),
    "a": ("year", "years"),
}

# Nominal lengths, only to tell a per-occurrence duration ("every day for 20 minutes") from the
# bounds of a schedule ("every day for 4 weeks"); never used to convert an offset.
_UNIT_MINUTES = {"min": 1, "h": 60, "d": 1440, "wk": 10080, "mo": 43200, "a": 525600}

_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
_WORD = "|".join(_WORD_NUMBERS)
_NUM = rf"(?:\d+(?:\.\d+)?|(?:{_WORD})\b)"
_INT = r"\d{1,3}"
_UNIT = r"(?:min(?:ute)?s?|h(?:ou)?rs?|hours?|days?|weeks?|wks?|months?|years?|yrs?)"
_ORD_UNIT = r"(?:day|week|month|year)"
_APPROX = r"approx(?:imately|imate|\.)?|about|around|roughly|~|±|\+/-"


@dataclass(frozen=True)
class Quantity:
    """An amount of time: ``value`` in UCUM ``unit``."""

    value: Number
    unit: str

    def to_fhir(self) -> dict[str, Any]:
        """A FHIR ``Duration`` (UCUM coded, ``drt-1``)."""
        singular, plural = UNIT_NAMES[self.unit]
        return {"value": self.value, "unit": singular if self.value == 1 else plural, "system": UCUM, "code": self.unit}


@dataclass(frozen=True)
class Timepoint:
    """A point in time the text names.

    ``ordinal`` timepoints are positions on the study's own numbered scale ("week 24", "day 28");
    only differences between two of them on the same scale are offsets (``offset_from``).
    Elapsed timepoints ("at 6 months", "after 8 weeks") are offsets from the start of whatever the
    text describes (the arm, or the intervention).
    """

    value: int | Number
    unit: str
    ordinal: bool
    label: str
    """As written, e.g. ``week 24`` or ``6 months``."""
    sentence: str
    start: int
    """Character offset in the text, for ordering."""

    @property
    def key(self) -> tuple[Number, str, bool]:
        return (self.value, self.unit, self.ordinal)

    def offset_from(self, anchor: Timepoint) -> Quantity | None:
        """Exact offset from an earlier ordinal timepoint on the same scale, else ``None``."""
        if not (self.ordinal and anchor.ordinal and self.unit == anchor.unit and self.value >= anchor.value):
            return None
        return Quantity(_tidy(self.value - anchor.value), self.unit)


@dataclass(frozen=True)
class Repeat:
    """A repeating schedule, in the terms of FHIR ``Timing.repeat``."""

    text: str
    """The phrase it was read from, e.g. ``twice daily for 12 weeks``."""
    sentence: str
    start: int
    frequency: int | None = None
    period: Number | None = None
    period_max: Number | None = None
    period_unit: str | None = None
    count: int | None = None
    count_max: int | None = None
    bounds: Quantity | None = None
    bounds_max: Quantity | None = None
    """With ``bounds``: a range of total lengths ("for 7-10 days")."""
    duration: Quantity | None = None
    """How long each occurrence lasts ("every day for 20 minutes")."""

    def to_fhir(self) -> dict[str, Any]:
        """A FHIR ``Timing``."""
        repeat: dict[str, Any] = {}
        if self.bounds is not None and self.bounds_max is not None:
            repeat["boundsRange"] = {"low": _simple(self.bounds), "high": _simple(self.bounds_max)}
        elif self.bounds is not None:
            repeat["boundsDuration"] = self.bounds.to_fhir()
        if self.count is not None:
            repeat["count"] = self.count
        if self.count_max is not None:
            repeat["countMax"] = self.count_max
        if self.duration is not None:
            repeat["duration"] = self.duration.value
            repeat["durationUnit"] = self.duration.unit
        if self.frequency is not None:
            repeat["frequency"] = self.frequency
        if self.period is not None:
            repeat["period"] = self.period
        if self.period_max is not None:
            repeat["periodMax"] = self.period_max
        if self.period_unit is not None:
            repeat["periodUnit"] = self.period_unit
        return {"repeat": repeat}


@dataclass(frozen=True)
class Cycle:
    """A treatment cycle: its length, the cycle days treatment is given on, how many cycles."""

    text: str
    sentence: str
    start: int
    length: Quantity
    days: tuple[tuple[int, int], ...] = ()
    """Cycle-day spans, first and last day inclusive: ``days 1-5 and 8`` -> ``((1, 5), (8, 8))``."""
    count: int | None = None
    count_max: int | None = None

    def to_fhir(self) -> dict[str, Any]:
        """A FHIR ``Timing`` repeating once per cycle."""
        repeat: dict[str, Any] = {}
        if self.count is not None:
            repeat["count"] = self.count
        if self.count_max is not None:
            repeat["countMax"] = self.count_max
        repeat["period"] = self.length.value
        repeat["periodUnit"] = self.length.unit
        return {"repeat": repeat}


@dataclass(frozen=True)
class Washout:
    """A washout: its length, or the range of lengths ("7-10 days"), or a minimum ("at least 7 days")."""

    text: str
    sentence: str
    start: int
    low: Quantity
    high: Quantity | None = None
    at_least: bool = False

    def to_fhir(self) -> dict[str, Any]:
        """A FHIR ``Timing`` whose bounds are the washout's length."""
        if self.high is not None:
            return {"repeat": {"boundsRange": {"low": _simple(self.low), "high": _simple(self.high)}}}
        if self.at_least:
            return {"repeat": {"boundsRange": {"low": _simple(self.low)}}}
        return {"repeat": {"boundsDuration": self.low.to_fhir()}}


@dataclass(frozen=True)
class Crossover:
    """A statement that participants switch treatment ("treatments will be reversed", "crossover").

    ``at`` is when the next period starts, when the same sentence says so unambiguously.
    ``reversal`` is true when the wording says the treatments are exchanged ("reversed", "switch to
    the other arm"), not merely that a crossover happens.
    """

    marker: str
    sentence: str
    start: int
    reversal: bool
    at: Timepoint | None = None


@dataclass(frozen=True)
class ExtractedTiming:
    timepoints: tuple[Timepoint, ...] = ()
    repeats: tuple[Repeat, ...] = ()
    cycles: tuple[Cycle, ...] = ()
    washouts: tuple[Washout, ...] = ()
    crossovers: tuple[Crossover, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.timepoints or self.repeats or self.cycles or self.washouts or self.crossovers)

    def ordinal_chains(self) -> dict[str, list[Timepoint]]:
        """Ordinal timepoints by unit, distinct values in increasing order; only scales with an anchor and
        at least one later point (a lone "day 14" has no reference point)."""
        chains: dict[str, dict[Number, Timepoint]] = {}
        for point in self.timepoints:
            if point.ordinal:
                chains.setdefault(point.unit, {}).setdefault(point.value, point)
        return {unit: [points[v] for v in sorted(points)] for unit, points in chains.items() if len(points) > 1}

    def elapsed(self) -> list[Timepoint]:
        return [p for p in self.timepoints if not p.ordinal]

    def period_starts(self) -> list[Crossover]:
        """Crossovers whose start is structured: elapsed, or ordinal with an earlier anchor on its scale."""
        chains = self.ordinal_chains()
        out = []
        seen: set[tuple[Number, str, bool]] = set()
        for crossover in self.crossovers:
            at = crossover.at
            if at is None or at.key in seen:
                continue
            if at.ordinal:
                chain = chains.get(at.unit, [])
                if not chain or chain[0].value >= at.value:
                    continue
            seen.add(at.key)
            out.append(crossover)
        return out


def _simple(quantity: Quantity) -> dict[str, Any]:
    """A ``SimpleQuantity`` for ``Range`` (same fields as a Duration)."""
    return quantity.to_fhir()


def _tidy(value: float | int) -> Number:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(text: str) -> Number:
    text = text.strip().casefold()
    if text in _WORD_NUMBERS:
        return _WORD_NUMBERS[text]
    return _tidy(float(text)) if "." in text else int(text)


def unit_code(word: str) -> str:
    """UCUM code of a time-unit word (``weeks`` -> ``wk``)."""
    word = word.casefold()
    if word.startswith("min"):
        return "min"
    if word.startswith("h"):
        return "h"
    if word.startswith("d"):
        return "d"
    if word.startswith("w"):
        return "wk"
    if word.startswith("mo"):
        return "mo"
    if word.startswith("y"):
        return "a"
    raise ValueError(f"not a time unit: {word!r}")


# --- sentences --------------------------------------------------------------------------------

# A break is whitespace after one of .!?; before what starts a sentence, a blank line, or a line break
# before a list item.  Every break starts with a whitespace character; taking it first (the
# alternatives then look behind at it) lets the search skip in C from one space to the next,
# instead of trying a match at every character.
_SENTENCE_BREAK = re.compile(
    r"\s(?:(?<=[.!?;]\s)\s*(?=[\"'(\[A-Z0-9*\\-])|(?<=\n)\s*\n|(?<=\n)(?=\s*(?:[-*•]|\d+[.)]\s|\\\*)))"
)


# Every _SENTENCE_BREAK match is whitespace after one of .!?; or a line break.  Most texts (one
# sentence) have neither, and searching for them only stops at the rarer punctuation characters.
_PUNCTUATION_SPACE = re.compile(r"[.!?;]\s").search


def _sentences(text: str) -> list[tuple[int, str]]:
    if "\n" not in text and not _PUNCTUATION_SPACE(text):
        return [(0, text)] if text.strip() else []
    out = []
    pos = 0
    for match in _SENTENCE_BREAK.finditer(text):
        out.append((pos, text[pos : match.start()]))
        pos = match.end()
    out.append((pos, text[pos:]))
    return [(start, s) for start, s in out if s.strip()]


def _one_line(sentence: str) -> str:
    # str.split() splits on exactly the characters re's \s matches in a str pattern
    return " ".join(sentence.split())


# --- keyword prefilters ------------------------------------------------------------------------

# Most sentences state no timing, and a regex search for a case-insensitive pattern that starts with
# a word boundary tries every character position; a substring test, in a lower-case copy of the
# text, of the words every match must contain is far cheaper.  The words are ASCII letters, which
# ``re.I`` matches in exactly the characters lower() maps to them, except for these: it also takes
# the dotted and dotless i for "i" and the long s for "s" (and lower() makes "İ" two characters,
# which would shift the offsets).  A text with one of them gets no prefilter.
_FOLD_UNSAFE = ("İ", "ı", "ſ")


def _fold(text: str) -> str | None:
    """The lower-case copy of ``text`` the keyword prefilters test, ``None`` where they cannot be used."""
    if not text.isascii() and any(char in text for char in _FOLD_UNSAFE):
        return None
    return text.lower()


def _mentions(folded: str | None, words: tuple[str, ...]) -> bool:
    """Whether a text may contain one of ``words``: ``folded`` is its ``_fold`` copy and the words are
    lower-case, or, for a case-sensitive pattern, it is the text as written.  ``None``: always."""
    if folded is None:
        return True
    # a plain loop: any() over a generator costs more than the substring tests themselves
    for word in words:  # noqa: SIM110
        if word in folded:
            return True
    return False


# --- timepoints ------------------------------------------------------------------------------

_ORDINAL = re.compile(
    rf"\b(?P<unit>{_ORD_UNIT})(?P<plural>s)?[ \t]*(?P<num>{_INT})(?![\d.,]\d)\b"
    rf"(?P<more>(?:[ \t]*(?:,|,?[ \t]+and|&)[ \t]*(?:{_ORD_UNIT}s?[ \t]*)?{_INT}(?![\d.,]\d)\b)*)",
    re.I,
)
_ORDINAL_ITEM = re.compile(rf"(?:(?P<unit>{_ORD_UNIT})s?[ \t]*)?(?P<num>{_INT})\b", re.I)
# A number followed by these words is an amount ("5 days 3 times a week"), not a study day.
_AMOUNT_AFTER = re.compile(
    r"^\s*(?:-?\s*(?:times|x\b|doses?|mg\b|g\b|mcg|µg|ml\b|%|tablets?|capsules?|sessions?"
    r"|min(?:ute)?s?\b|h(?:ou)?rs?\b|hours?|days?|weeks?|months?|years?))",
    re.I,
)
_RANGE_AFTER = re.compile(r"^\s*(?:-|–|—|to\b|through\b|thru\b|until\b|till\b)\s*(?:day|week|month|year)?s?\s*\d", re.I)
_OR_AFTER = re.compile(rf"^[ \t]*(?:,[ \t]*)?or[ \t]+(?:{_ORD_UNIT}s?[ \t]*)?\d", re.I)
# "prior to day 10", "until day 120": a limit, not a point at which something is done
_ORDINAL_NOT_BEFORE = re.compile(
    r"(?:\bprior\s+to|\bbefore|\bby|\buntil|\btill|\bthrough|\bthru|\bto|\bbeyond|\bafter|\bwithin|[<>≤≥]"
    rf"|\b(?:{_APPROX}))\s*$"
    r"|\bdays?\s+[\d,\s]*(?:and\s+\d+\s+)?of\s+(?:the\s+)?$",
    re.I,
)
# "day 1 of week 25": a day inside another unit, not on the study's day scale
_ORDINAL_OF = re.compile(r"^\s*of\s+(?:each\s+|every\s+|the\s+)?(?:week|month|year|cycle|course)", re.I)
_CYCLE_NEAR = re.compile(r"\bcycles?\b", re.I)
_ORDINAL_MAX = {"day": 400, "week": 260, "month": 120, "year": 20}

_ELAPSED = re.compile(
    rf"\bat[ \t]+(?P<list>{_NUM}(?:[ \t]*(?:,|,?[ \t]*and|&)[ \t]*{_NUM})*)[ \t]*[- ]?[ \t]*(?P<unit>{_UNIT})\b",
    re.I,
)
# The reference point an elapsed time must name to be taken outside a crossover statement.
_START_ANCHOR = re.compile(
    r"^\s*(?:after|following|from|post|since)\s+(?:the\s+)?(?:randomi[sz]ation|baseline|enrol(?:l)?ment|inclusion"
    r"|study\s+entry|(?:start|initiation|beginning)\s+of\s+(?:the\s+)?(?:study|treatment|therapy|intervention)"
    r"|(?:the\s+)?(?:first|initial)\s+(?:dose|infusion|injection|administration|treatment|vaccination|session))\b",
    re.I,
)
# After an elapsed time these make it relative to something else, or an age.
_ELAPSED_NOT = re.compile(
    r"^\s*(?:of\s+age|old\b|of\s+life|or\b|and\s+older|after|following|post|from|before|prior|later|earlier"
    r"|intervals?|apart|each|per\b|postpartum|postoperative|post-op)",
    re.I,
)


_ORDINAL_START = re.compile(r"(?:day|week|month|year)s?[ \t]*\d").search
"""How every ``_ORDINAL`` match starts, looked for in the ``_fold`` copy: most sentences that name a
unit have no "day 1" or "week 24", and without ``re.I`` this search skips ahead to the units' first
letters (``_fold`` leaves digits, spaces and tabs as they are)."""
_ORDINAL_ALTERNATIVE_BEFORE = re.compile(r"(?:[-/]|\bor|\beither)\s*$", re.I)
_ORDINAL_CYCLE_BEFORE = re.compile(r"\bcycle\s*\d*\s*,?\s*$", re.I)


def _ordinal_timepoints(sentence: str, offset: int, folded: str | None = None) -> list[Timepoint]:
    if folded is not None and not _ORDINAL_START(folded):
        return []
    out = []
    for match in _ORDINAL.finditer(sentence):
        more = match.group("more") or ""
        after = sentence[match.end() :]
        before = sentence[max(0, match.start() - 20) : match.start()]
        if match.group("plural") and not more:
            continue  # "days 3" is an amount or a range start, not a study day
        if _AMOUNT_AFTER.match(after) or _RANGE_AFTER.match(after) or _OR_AFTER.match(after):
            continue
        if _ORDINAL_NOT_BEFORE.search(before) or _ORDINAL_OF.match(after):
            continue
        if _ORDINAL_ALTERNATIVE_BEFORE.search(before) or _ORDINAL_CYCLE_BEFORE.search(before):
            continue
        if _CYCLE_NEAR.search(after[:40].split(".")[0]):
            continue  # cycle days are relative to each cycle, handled by _cycles
        word = match.group("unit").casefold()
        items = [(word, int(match.group("num")))]
        for item in _ORDINAL_ITEM.finditer(more):
            # "day 1 and week 4": each item may name its own scale; a bare number keeps the last one
            word = item.group("unit").casefold() if item.group("unit") else word
            items.append((word, int(item.group("num"))))
        if any(value > _ORDINAL_MAX[word] for word, value in items):
            continue
        out.extend(
            Timepoint(value, unit_code(word), True, f"{word} {value}", _one_line(sentence), offset + match.start())
            for word, value in items
        )
    return out


_NUMBER = re.compile(_NUM, re.I)
_ANCHOR_WORDS = ("after", "following", "from", "post", "since")
"""A ``_START_ANCHOR`` match, which an anchored elapsed time needs, begins with one of these."""


def _elapsed_list(match: re.Match[str]) -> list[Number]:
    return [_number(n) for n in _NUMBER.findall(match.group("list"))]


def _anchored_elapsed(sentence: str, offset: int, folded: str | None = None) -> list[Timepoint]:
    if not _mentions(folded, _ANCHOR_WORDS):
        return []
    out = []
    for match in _ELAPSED.finditer(sentence):
        after = sentence[match.end() :]
        if not _START_ANCHOR.match(after):
            continue
        unit = unit_code(match.group("unit"))
        for value in _elapsed_list(match):
            label = f"{value} {UNIT_NAMES[unit][0 if value == 1 else 1]}"
            out.append(Timepoint(value, unit, False, label, _one_line(sentence), offset + match.start()))
    return out


# --- repeats ---------------------------------------------------------------------------------

_FREQ_WORDS = {"once": 1, "twice": 2, "thrice": 3}
_PER_UNIT = {"day": "d", "daily": "d", "week": "wk", "weekly": "wk", "month": "mo", "monthly": "mo",
             "hour": "h", "hourly": "h", "year": "a", "yearly": "a"}  # fmt: skip
_TIMES = re.compile(
    rf"\b(?P<f>once|twice|thrice|(?P<n>\d+|{_WORD})\s*(?:times|x)(?=\W))[ \t-]*(?:a|an|per|each|every|/)?[ \t]*"
    r"(?P<u>day|daily|week|weekly|month|monthly|hour|hourly|year|yearly)\b",
    re.I,
)
_DAYS_A_WEEK = re.compile(rf"\b(?P<n>[1-7]|{_WORD})[ \t]*days?[ \t]*(?:a|per|each|/)[ \t]*week\b", re.I)
_ABBREV = re.compile(r"\b(?P<a>QD|BID|TID|QID|QOD)\b|(?P<d>\b[bt]\.i\.d\b|\bq\.i\.d\b|\bq\.d\b)\.?")
_ABBREV_LOWER = re.compile(
    r"(?:mg|g|mcg|µg|μg|ml|mL|IU|units?|tablets?|capsules?|puffs?|drops?)[ \t]+(?P<a>bid|tid|qid)\b"
)
_ABBREV_FREQ = {"QD": (1, 1), "BID": (2, 1), "TID": (3, 1), "QID": (4, 1), "QOD": (1, 2),
                "B.I.D": (2, 1), "T.I.D": (3, 1), "Q.I.D": (4, 1), "Q.D": (1, 1)}  # fmt: skip
_Q_INTERVAL = re.compile(r"\bq[ \t]?(?P<n>\d{1,2})[ \t]?(?P<u>h|hrs?|d|w|wks?)\b", re.I)
_EVERY = re.compile(
    rf"\bevery[ \t]+(?:(?P<other>other|second)[ \t]+|(?P<n>{_NUM})(?:[ \t]*(?:-|–|to)[ \t]*(?P<n2>{_NUM}))?[ \t]*)?"
    r"(?P<u>min(?:ute)?s?|hours?|hrs?|days?|weeks?|months?|years?)\b",
    re.I,
)
# Before a frequency these make it an alternative or a limit, not a schedule.
_FREQ_NOT_BEFORE = re.compile(
    r"(?:\bor|up\s+to|at\s+most|maximum\s+of|max\.?|no\s+more\s+than|less\s+than|more\s+than|at\s+least|-|–|to|/"
    rf"|\b(?:{_APPROX}))\s*\(?\s*$",
    re.I,
)
_FREQ_NOT_AFTER = re.compile(r"^\s*(?:or\b|to\b|-|–|/|\bas\s+needed)", re.I)
_BOUND = re.compile(
    rf"^[ \t]*,?[ \t]*\(?[ \t]*(?:for|during|x|×)[ \t]+(?:a[ \t]+(?:total|period)[ \t]+of[ \t]+)?"
    rf"(?P<n>{_NUM})(?:[ \t]*(?:-|–|to)[ \t]*(?P<n2>{_NUM}))?[ \t]*[- ]?[ \t]*"
    r"(?P<u>min(?:ute)?s?|hours?|hrs?|days?|weeks?|months?|years?|cycles?|doses?|administrations?|injections?"
    r"|infusions?|sessions?|treatments?|times|courses?)\b",
    re.I,
)


def _bounds(repeat: dict[str, Any], after: str, interval: bool) -> tuple[dict[str, Any], str]:
    """Read "for 12 weeks" / "for 6 cycles" / "for 10 doses" right after a frequency."""
    match = _BOUND.match(after)
    if not match:
        return repeat, ""
    low = _number(match.group("n"))
    high = _number(match.group("n2")) if match.group("n2") else None
    word = match.group("u").casefold()
    if high is not None and high <= low:
        return repeat, ""
    if word.startswith(("cycle", "course")):
        if not interval or not isinstance(low, int):
            return repeat, ""  # "twice daily for 6 cycles": the cycle length is not this period
        return {**repeat, "count": low, "count_max": high}, match.group(0)
    if word.startswith(("dose", "admin", "inj", "inf", "sess", "treat", "time")):
        if not isinstance(low, int) or (high is not None and not isinstance(high, int)):
            return repeat, ""
        return {**repeat, "count": low, "count_max": high}, match.group(0)
    unit = unit_code(word)
    period_minutes = (repeat.get("period") or 1) * _UNIT_MINUTES[repeat["period_unit"]]
    if low * _UNIT_MINUTES[unit] < period_minutes:
        if high is not None:
            return repeat, ""
        return {**repeat, "duration": Quantity(low, unit)}, match.group(0)
    return {
        **repeat,
        "bounds": Quantity(low, unit),
        "bounds_max": Quantity(high, unit) if high is not None else None,
    }, match.group(0)


# Words every match of each frequency pattern contains: lower-case for the case-insensitive ones;
# _ABBREV and _ABBREV_LOWER are case-sensitive, so theirs are looked for in the text as written.
_TIMES_WORDS = ("once", "twice", "thrice", "times")
_TIMES_X = re.compile(r"x\W").search
"""The other frequency word of ``_TIMES``, "x", which must be followed by a non-word character (which
``_fold`` leaves one): "3 x a day", not "experimental" or "next"."""
_TIMES_UNIT_WORDS = ("day", "daily", "week", "month", "hour", "year")
_ABBREV_WORDS = ("Q", "ID", ".d")  # QD QID QOD, BID TID, b.i.d t.i.d q.i.d q.d
_ABBREV_LOWER_WORDS = ("bid", "tid", "qid")


def _repeats(sentence: str, offset: int, folded: str | None = None) -> list[Repeat]:
    found: list[tuple[int, int, dict[str, Any], bool]] = []
    times_word = folded is None or _mentions(folded, _TIMES_WORDS) or _TIMES_X(folded) is not None
    if times_word and _mentions(folded, _TIMES_UNIT_WORDS):
        for match in _TIMES.finditer(sentence):
            words = match.group("f").casefold()
            frequency = _FREQ_WORDS.get(words) or _number(match.group("n"))
            if not isinstance(frequency, int) or frequency < 1:
                continue
            unit = _PER_UNIT[match.group("u").casefold()]
            spec: dict[str, Any] = {"frequency": frequency, "period": 1, "period_unit": unit}
            found.append((match.start(), match.end(), spec, False))
    if _mentions(folded, ("day",)) and _mentions(folded, ("week",)):  # both words are needed
        for match in _DAYS_A_WEEK.finditer(sentence):
            days = _number(match.group("n"))
            if isinstance(days, int) and 1 <= days <= 7:
                spec = {"frequency": days, "period": 1, "period_unit": "wk"}
                found.append((match.start(), match.end(), spec, False))
    for pattern, abbreviations in ((_ABBREV, _ABBREV_WORDS), (_ABBREV_LOWER, _ABBREV_LOWER_WORDS)):
        if not _mentions(sentence, abbreviations):
            continue  # a case-sensitive pattern: its words are looked for in the text as written
        for match in pattern.finditer(sentence):
            key = (match.groupdict().get("a") or match.groupdict().get("d") or "").upper()
            frequency, days = _ABBREV_FREQ[key]
            found.append(
                (match.start(), match.end(), {"frequency": frequency, "period": days, "period_unit": "d"}, days > 1)
            )
    if _mentions(folded, ("q",)):
        for match in _Q_INTERVAL.finditer(sentence):
            n = int(match.group("n"))
            if n < 1:
                continue
            spec = {"frequency": 1, "period": n, "period_unit": unit_code(match.group("u"))}
            found.append((match.start(), match.end(), spec, True))
    if _mentions(folded, ("every",)):
        for match in _EVERY.finditer(sentence):
            if match.group("other"):
                period: Number = 2
            elif match.group("n"):
                period = _number(match.group("n"))
            else:
                period = 1
            period_max = _number(match.group("n2")) if match.group("n2") else None
            if period <= 0 or (period_max is not None and period_max <= period):
                continue
            unit = unit_code(match.group("u"))
            spec = {"frequency": 1, "period": period, "period_max": period_max, "period_unit": unit}
            found.append((match.start(), match.end(), spec, True))
    out = []
    for start, end, spec, interval in sorted(found, key=lambda f: f[0]):
        if _FREQ_NOT_BEFORE.search(sentence[max(0, start - 15) : start]) or _FREQ_NOT_AFTER.match(sentence[end:]):
            continue
        if any(start < e and s < end for s, e, *_ in found if (s, e) != (start, end) and e - s > end - start):
            continue  # inside a longer match ("once every 3 weeks" is read by "every")
        spec, bound_text = _bounds(spec, sentence[end:], interval)
        if bound_text and _FREQ_NOT_AFTER.match(sentence[end + len(bound_text) :]):
            continue  # "every 21 days for 13 cycles or every 6 weeks for 12 cycles"
        text = _one_line(sentence[start : end + len(bound_text)])
        out.append(Repeat(text=text, sentence=_one_line(sentence), start=offset + start, **spec))
    return out


# --- cycles ----------------------------------------------------------------------------------

_CYCLE_LENGTH = re.compile(
    rf"\b(?P<n>\d{{1,3}}|{_WORD})[ \t]*[- ]?[ \t]*(?P<u>day|week)s?[ \t]*[- ]?[ \t]*(?:treatment[ \t]+)?cycles?\b"
    rf"|\bcycles?[ \t]+(?:of|lasting)[ \t]+(?P<n2>\d{{1,3}}|{_WORD})[ \t]*(?P<u2>days?|weeks?)\b",
    re.I,
)
_CYCLE_DAY = r"(?:\d{1,2}|one)(?:[ \t]*(?:-|–|to|through)[ \t]*\d{1,2})?"
_CYCLE_DAYS = re.compile(
    rf"\bdays?[ \t]+(?P<list>{_CYCLE_DAY}(?:[ \t]*(?:,|,?[ \t]*and|&)[ \t]*{_CYCLE_DAY})*)[ \t]+(?:of|in)[ \t]+"
    r"(?:(?:each|every|a|the|all)[ \t]+)?(?:subsequent[ \t]+)?(?:\d{1,3}[ \t]*[- ]?[ \t]*(?:day|week)[ \t]+)?"
    r"(?:treatment[ \t]+)?cycles?\b(?![ \t]*\d)",
    re.I,
)
_CYCLE_COUNT = re.compile(
    r"(?:\bfor|\btotal\s+of|\breceive[sd]?|\bx|×)[ \t]+(?:a[ \t]+total[ \t]+of[ \t]+)?"
    r"(?P<n>\d{1,2})(?:[ \t]*(?:-|–|to)[ \t]*(?P<n2>\d{1,2}))?[ \t]+(?:treatment[ \t]+)?cycles\b",
    re.I,
)


_CYCLE_OR = re.compile(r"\bor\b", re.I)
_CYCLE_DAY_ITEM = re.compile(_CYCLE_DAY, re.I)
_CYCLE_DAY_RANGE = re.compile(r"\s*(?:-|–|to|through)\s*", re.I)


def _cycles(sentence: str, offset: int, folded: str | None = None) -> list[Cycle]:
    if not _mentions(folded, ("cycle",)):
        return []  # every _CYCLE_LENGTH match says "cycle", and there is no cycle without a length
    lengths = {}
    first = None
    for match in _CYCLE_LENGTH.finditer(sentence):
        n = _number(match.group("n") or match.group("n2"))
        unit = unit_code(match.group("u") or match.group("u2"))
        lengths[(n, unit)] = match
        first = first or match
    if len(lengths) != 1 or first is None:
        return []  # no cycle, or several cycle lengths in one sentence: which days go where is unclear
    ((value, unit),) = lengths
    if not isinstance(value, int) or value < 1:
        return []
    days: list[tuple[int, int]] = []
    for match in _CYCLE_DAYS.finditer(sentence):
        if _CYCLE_OR.search(match.group("list")):
            return []
        for item in _CYCLE_DAY_ITEM.findall(match.group("list")):
            bounds = _CYCLE_DAY_RANGE.split(item.strip())
            low = 1 if bounds[0].casefold() == "one" else int(bounds[0])
            high = int(bounds[1]) if len(bounds) > 1 else low
            length_days = value * (7 if unit == "wk" else 1)
            if not 1 <= low <= high <= length_days:
                return []
            if (low, high) not in days:
                days.append((low, high))
    days.sort()
    counts = {(m.group("n"), m.group("n2")) for m in _CYCLE_COUNT.finditer(sentence)}
    count = count_max = None
    if len(counts) == 1:
        ((n, n2),) = counts
        count = int(n)
        count_max = int(n2) if n2 else None
        if count_max is not None and count_max <= count:
            count = count_max = None
    return [
        Cycle(
            text=_one_line(first.group(0)),
            sentence=_one_line(sentence),
            start=offset + first.start(),
            length=Quantity(value, unit),
            days=tuple(days),
            count=count,
            count_max=count_max,
        )
    ]


# --- washouts ------------------------------------------------------------------------------

_WASHOUT_BEFORE = re.compile(
    rf"\b(?P<n>{_NUM})(?:[ \t]*(?:-|–|to)[ \t]*(?P<n2>{_NUM}))?[ \t]*[- ]?[ \t]*(?P<u>days?|weeks?|months?|hours?)"
    r"[ \t]*[- ]?[ \t]*(?:\(?[ \t]*(?:drug[ \t]+|treatment[ \t]+)?)wash[- ]?out\b",
    re.I,
)
_WASHOUT_AFTER = re.compile(
    rf"\bwash[- ]?out(?:[ \t]+(?:period|phase|interval))?[ \t]*(?:of|lasting|for|:|=)?[ \t]*"
    rf"(?P<least>(?:at[ \t]+least|a[ \t]+minimum[ \t]+of|minimum(?:[ \t]+of)?|≥|>=)[ \t]*)?"
    rf"(?P<n>{_NUM})(?:[ \t]*(?:-|–|to)[ \t]*(?P<n2>{_NUM}))?[ \t]*[- ]?[ \t]*(?P<u>days?|weeks?|months?|hours?)\b",
    re.I,
)
_WASHOUT_LEAST_BEFORE = re.compile(r"(?:at\s+least|a\s+minimum\s+of|minimum\s+of)\s+(?:an?\s+)?$", re.I)
_WASHOUT_VAGUE_BEFORE = re.compile(
    rf"(?:up\s+to|maximum\s+of|at\s+most|less\s+than|\bor|\b(?:{_APPROX}))\s+(?:an?\s+)?$", re.I
)


def _washouts(sentence: str, offset: int, folded: str | None = None) -> list[Washout]:
    if not _mentions(folded, ("wash",)):
        return []  # both patterns need "wash-out", "wash out" or "washout"
    out = []
    for pattern in (_WASHOUT_BEFORE, _WASHOUT_AFTER):
        for match in pattern.finditer(sentence):
            prefix = sentence[max(0, match.start() - 20) : match.start()]
            if _WASHOUT_VAGUE_BEFORE.search(prefix):
                continue
            unit = unit_code(match.group("u"))
            low = _number(match.group("n"))
            high = _number(match.group("n2")) if match.group("n2") else None
            if low <= 0 or (high is not None and high <= low):
                continue
            at_least = bool(match.groupdict().get("least")) or bool(_WASHOUT_LEAST_BEFORE.search(prefix))
            washout = Washout(
                text=_one_line(match.group(0)),
                sentence=_one_line(sentence),
                start=offset + match.start(),
                low=Quantity(low, unit),
                high=Quantity(high, unit) if high is not None else None,
                at_least=at_least and high is None,
            )
            if not any(w.start <= washout.start < w.start + len(w.text) + 5 for w in out):
                out.append(washout)
    return out


# --- crossovers --------------------------------------------------------------------------------

_REVERSAL = re.compile(
    r"\b(?:treatments?|interventions?|groups?|arms?|allocations?|order|sequences?)[ \t]+"
    r"(?:will[ \t]+be[ \t]+|are[ \t]+|were[ \t]+|is[ \t]+|being[ \t]+|shall[ \t]+be[ \t]+)?"
    r"(?:reversed|switched|swapped|exchanged|inverted|interchanged)\b",
    re.I,
)
_CROSS = re.compile(r"\bcross(?:ed|es|ing)?[ \t]*-?[ \t]*over\b|\bcrossover\b", re.I)
_TO_OTHER = re.compile(
    r"^[ \t]*(?:to|into|onto)[ \t]+(?:the[ \t]+)?(?:other|alternate|alternative|opposite)[ \t]+"
    r"(?:treatment|arm|group|intervention|study[ \t]+drug)",
    re.I,
)
# A crossover that is optional or conditional does not start a period for everyone.
_OPTIONAL = re.compile(
    r"\b(?:may|might|can|could|able[ \t]+to|allowed|permitted|option(?:al)?|eligible|offered|if|unless|choose"
    r"|elect|opportunity|possibility|wish|request)\b",
    re.I,
)
_POINT_BEFORE = re.compile(
    rf"\b(?:(?P<op>at|on|from|beginning(?:[ \t]+at)?|starting(?:[ \t]+at)?|in)[ \t]+(?P<ord>{_ORD_UNIT})[ \t]*"
    rf"(?P<on>{_INT})(?![\d.]\d)\b"
    rf"|(?P<ep>at|after)[ \t]+(?P<en>{_NUM})[ \t]*[- ]?[ \t]*(?P<eu>{_UNIT})\b)",
    re.I,
)
_POINT_AFTER = re.compile(
    rf"^[^.;]{{0,25}}?\b(?:(?:at|on|from|beginning(?:[ \t]+at)?|starting(?:[ \t]+at)?)[ \t]+(?P<ord>{_ORD_UNIT})"
    rf"[ \t]*(?P<on>{_INT})(?![\d.]\d)\b|(?:at|after)[ \t]+(?P<en>{_NUM})[ \t]*[- ]?[ \t]*(?P<eu>{_UNIT})\b)",
    re.I,
)


_OF_TREATMENT = re.compile(r"^\s*of\s+(?:treatment|therapy)", re.I)
_ELAPSED_AMOUNT = re.compile(rf"\b{_NUM}\s*{_UNIT}\b", re.I)


def _point_from(match: re.Match[str], sentence: str, offset: int, base: int) -> Timepoint | None:
    if match.group("ord"):
        word = match.group("ord").casefold()
        value = int(match.group("on"))
        if value > _ORDINAL_MAX[word]:
            return None
        return Timepoint(value, unit_code(word), True, f"{word} {value}", _one_line(sentence), offset + base)
    value = _number(match.group("en"))
    unit = unit_code(match.group("eu"))
    after = sentence[base + len(match.group(0)) :]
    if _ELAPSED_NOT.match(after) and not _OF_TREATMENT.match(after):
        return None
    label = f"{value} {UNIT_NAMES[unit][0 if value == 1 else 1]}"
    return Timepoint(value, unit, False, label, _one_line(sentence), offset + base)


_CROSSOVER_WORDS = ("cross", "reversed", "switched", "swapped", "exchanged", "inverted", "interchanged")
"""Every ``_CROSS`` or ``_REVERSAL`` match, the only crossover markers, contains one of these."""


def _crossovers(sentence: str, offset: int, folded: str | None = None) -> list[Crossover]:
    if not _mentions(folded, _CROSSOVER_WORDS):
        return []
    markers: list[tuple[int, int, bool]] = []
    for match in _REVERSAL.finditer(sentence):
        markers.append((match.start(), match.end(), True))
    for match in _CROSS.finditer(sentence):
        if any(s <= match.start() < e for s, e, _ in markers):
            continue
        markers.append((match.start(), match.end(), bool(_TO_OTHER.match(sentence[match.end() :]))))
    optional = bool(_OPTIONAL.search(sentence))
    out = []
    for start, end, reversal in sorted(markers):
        at = None
        if not optional:
            before = list(_POINT_BEFORE.finditer(sentence[:start]))
            if before:
                last = before[-1]
                gap = sentence[last.end() : start]
                if len(gap) <= 80 and not _ORDINAL.search(gap) and not _ELAPSED_AMOUNT.search(gap):
                    at = _point_from(last, sentence, offset, last.start())
            if at is None:
                following = _POINT_AFTER.match(sentence[end:])
                if following:
                    at = _point_from(following, sentence, offset, end)
        out.append(
            Crossover(
                marker=_one_line(sentence[start:end]),
                sentence=_one_line(sentence),
                start=offset + start,
                reversal=reversal,
                at=at,
            )
        )
    return out


# --- entry point ------------------------------------------------------------------------------


def extract_timing(text: str | None) -> ExtractedTiming:
    """All unambiguous timing statements of ``text`` (empty when there are none)."""
    if not text or not text.strip():
        return ExtractedTiming()
    return _extract(text, _fold(text))


def may_state_crossover(text: str | None) -> bool:
    """A quick test for callers that only need crossovers: when false, ``extract_timing(text)`` finds none."""
    return bool(text) and _mentions(_fold(text), _CROSSOVER_WORDS)


def _extract(text: str, folded: str | None) -> ExtractedTiming:
    """``extract_timing``, skipping the patterns whose words ``folded`` (``_fold(text)``) lacks; with
    ``None``, every pattern runs on every sentence."""
    timepoints: list[Timepoint] = []
    repeats: list[Repeat] = []
    cycles: list[Cycle] = []
    washouts: list[Washout] = []
    crossovers: list[Crossover] = []
    for offset, sentence in _sentences(text):
        # _fold keeps the length of the text, so the offsets hold in the folded copy
        folded_sentence = None if folded is None else folded[offset : offset + len(sentence)]
        timepoints.extend(_ordinal_timepoints(sentence, offset, folded_sentence))
        timepoints.extend(_anchored_elapsed(sentence, offset, folded_sentence))
        repeats.extend(_repeats(sentence, offset, folded_sentence))
        cycles.extend(_cycles(sentence, offset, folded_sentence))
        washouts.extend(_washouts(sentence, offset, folded_sentence))
        crossovers.extend(_crossovers(sentence, offset, folded_sentence))
    return ExtractedTiming(
        timepoints=tuple(_dedupe_points(timepoints)),
        repeats=tuple(_dedupe(repeats)),
        cycles=tuple(_dedupe(cycles)),
        washouts=tuple(_dedupe(washouts)),
        crossovers=tuple(crossovers),
    )


def _dedupe_points(points: list[Timepoint]) -> list[Timepoint]:
    seen: set[tuple[Number, str, bool]] = set()
    out = []
    for point in sorted(points, key=lambda p: p.start):
        if point.key not in seen:
            seen.add(point.key)
            out.append(point)
    return out


def _dedupe(items: list[Any]) -> list[Any]:
    """The same statement repeated in one text ("At week 24 ... at week 24 ...") counts once."""
    seen: set[Any] = set()
    out = []
    for item in items:
        key = tuple((k, v) for k, v in vars(item).items() if k not in ("sentence", "start"))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
