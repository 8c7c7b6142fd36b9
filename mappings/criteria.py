"""Split a registry's free-text eligibility criteria into individual inclusion/exclusion criteria.

The input is ClinicalTrials.gov's criteria text in either of its two renderings:

* API v2 ``eligibilityCriteria``: light markdown (``* item``, ``1. item``, ``2\\.`` escapes,
  nested items indented under their parent's text, a blank line between paragraphs, one line per
  list item);
* the legacy XML ``textblock``: the same text re-flowed, hard-wrapped at about 100 columns and
  indented (``-  item`` bullets at +2, nested bullets at +7, +12 ...).

Both renderings of one record give the same criteria (modulo whitespace).  Nothing is dropped:
every line of the text ends up either in exactly one criterion or in a heading (``outline``
returns both, in document order), so the Group can carry the whole text as individual
characteristics and an integrator can trust that a criterion not shown is not in the source.

How structure is recognised, and why:

* A *block* is a paragraph or list item: lines separated by blank lines.  In hard-wrapped text
  (any unmarked line directly below a non-blank line, which never happens in v2 text) a line
  directly below another is always its continuation, even when it starts like a list marker
  ("...Hepatitis\\nB) No known ..."); in v2 text each marked line is its own item.
* Nesting follows markdown: an item belongs to the item above it when its marker starts at or
  beyond the text column of that item.  Because authors also nest by numbering style alone
  ("1. Diagnosis" followed by "a." and "i." lines at the same indentation, as in the seed trial),
  an enumerated item also nests under a less deeply ranked enumeration (upper roman < upper
  letter < number < lower letter < lower roman) unless its own style is already open above it.
  Sub-items stay inside their parent criterion, one per line, marker kept.
* Headings: inclusion/exclusion section headings (also as list items, inline before text, or in
  the middle of an unstructured paragraph); capitalised sub-section headings of the old NCI
  format ("DISEASE CHARACTERISTICS:"); and lead-in lines directly followed by a list ("Age:",
  "Patients must meet the following criteria:").  Text before any heading is inclusion.
* A paragraph that is only a connector ("OR") joins the criteria on both sides into one, so the
  alternative is not turned into two criteria that must both hold.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")

# Marker grammar.  A bullet may be followed by an enumerator ("-  1.", "* 1\."): the enumerator
# then decides the item's kind, the bullet is decoration added by the XML rendering.
_BULLET = re.compile(r"(?:\\?[*+\-]|[•·▪◦●○■□➢►✓]|o(?=\s))(?:\s+|$)|[•▪◦●○■□➢►](?=\S)")
_ROMAN = re.compile(r"x{0,3}(ix|iv|v?i{0,3})", re.IGNORECASE)
_ENUM = re.compile(
    r"(?P<decimal>[1-9]\d?(?:\.\d{1,2})+)\.?(?:\s+|$)"
    r"|(?:\((?P<paren>\d{1,3}|[A-Za-z]{1,5})\)|(?P<plain>\d{1,3}|[A-Za-z]{1,5})\\?[.)])(?:\s+|$)"
    r"|(?P<glued>\d{1,3})\.(?=[A-Z][a-z])"
    r"|(?P<circled>[\u2460-\u2473])\s*"
)
_TRAILING_OR = re.compile(r"\s(?:or|and/or)$", re.IGNORECASE)
_LEADING_OR = re.compile(r"(?:or|and/or)\s", re.IGNORECASE)
_CONNECTORS = {"or", "and", "and/or", "or:", "and:", "either", "either:"}
_CONNECTOR_LENGTH = max(map(len, _CONNECTORS))

# Outline ranks: an enumerated item nests under a lower-ranked enumeration written above it.
_CANDIDATES = {"roman?": ("roman", "alpha"), "ROMAN?": ("ROMAN", "ALPHA")}
"""What a lone ``i``/``v``/``x`` marker may turn out to be."""
_RANK = {"ROMAN": 0, "ALPHA": 1, "num": 2, "circled": 3, "alpha": 4, "roman": 5}

_EXCLUSION = re.compile(
    r"\bexclu(?:sions?|sionary|ded)\b|\bnon[- ]?inclusion\b|\bineligib"
    r"|\bnot\s+(?:be\s+)?(?:eligible|included|enrolled)\b",
    re.IGNORECASE,
)
_INCLUSION = re.compile(r"(?<!non-)(?<!non )(?<!non)\binclusions?\b|\beligibility criteria\b", re.IGNORECASE)
_HEADING_START = re.compile(
    r"(?:\S+\s+){0,2}(?:inclusions?|exclusions?|non[- ]?inclusion|eligibility)"
    r"(?:\s+(?:criteria|criterion|requirements))?\b",
    re.IGNORECASE,
)
_PLAIN_SECTION = re.compile(r"(?:inclusion|exclusion)(?: criteria| criterion)?", re.IGNORECASE)
_STRICT_SECTION_LINE = re.compile(
    r"(?:(?:key|main|major|general|specific|additional|other|patient|subject)\s+)?"
    r"(?:inclusion|exclusion|eligibility)\s+criteria\s*:?",
    re.IGNORECASE,
)
# A section heading written before the text of the same paragraph ("Inclusion Criteria: Adults
# ..."), and, mid-paragraph, only the capitalised form so running prose such as "meets the
# inclusion criteria: ..." is not split.
_INLINE_SECTION = re.compile(
    r"(?P<h>(?:(?:key|main|major)\s+)?(?:inclusion|exclusion|eligibility)\s+criteria(?:\s*\([^)]{1,40}\))?\s*:)\s*(?P<rest>\S.*)",
    re.IGNORECASE | re.DOTALL,
)
_MID_SECTION = re.compile(
    r"(?<=[\s.;,)])(?=(?:(?:Key|KEY|Main|MAIN)\s+)?(?:Inclusion|INCLUSION|Exclusion|EXCLUSION)\s+(?:Criteria|criteria|CRITERIA)\s*:)"
)
# Old NCI PDQ format: "DISEASE CHARACTERISTICS: Histologically confirmed ..." in one paragraph.
_INLINE_CAPS = re.compile(
    r"(?P<h>(?:[A-Z]+[ /])*(?:CHARACTERISTICS|THERAPY|CRITERIA|HISTORY|REQUIREMENTS|ELIGIBILITY)\s*:)\s*(?P<rest>\S.*)",
    re.DOTALL,
)
# Office of Rare Diseases format: "--Disease Characteristics-- ... --Prior/Concurrent Therapy-- ...".
_DASH_HEADING = re.compile(r"(--[A-Z][A-Za-z/ ]{2,40}--)")
_JOINING_END = re.compile(r"\b(?:and|or)$|&$", re.IGNORECASE)
"""Text before a mid-paragraph section heading that makes it part of the heading ("Inclusion and")."""
_NEGATION = re.compile(r"(?:no|not|none)\b", re.IGNORECASE)
_TITLE = re.compile(r"[^\W\d_][\w /&'():-]*")
"""A short title used as a lead-in without a colon ("Performance status", "BrCa carriers (cases)")."""
_DIGIT = re.compile(r"\d")
_FOLLOWING = re.compile(r"\bfollowing\b", re.IGNORECASE)
_GROUP_LABEL = re.compile(
    r"(?:cohort|group|arm|part|phase|stage|step|visit|population|subgroup|stratum|panel)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One eligibility criterion.

    ``text`` is plain text (markdown escapes removed, top-level marker removed); sub-items are
    kept inside it, one per line, indented two spaces per level, with their own marker.
    ``heading`` is the path of headings above it that say more than "inclusion"/"exclusion"
    (e.g. ``PATIENT CHARACTERISTICS / Age`` or ``Key Inclusion Criteria``), joined by `` / ``.
    """

    text: str
    exclude: bool
    heading: str | None = None


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading line of the criteria text, as written (markdown escapes and list marker removed)."""

    text: str
    level: int
    """1: inclusion/exclusion section; 2: capitalised sub-section (``DISEASE CHARACTERISTICS:``); 3: lead-in line."""


def unescape_markdown(text: str) -> str:
    """``eGFR \\< 60`` -> ``eGFR < 60``: v2 markup escapes, which the legacy XML never carries."""
    # A function replacement: re's "\1" templates are expanded by Python code for every match.
    return _ESCAPE.sub(_escaped_char, text) if "\\" in text else text


def _escaped_char(match: re.Match[str]) -> str:
    return match.group(1)


def split_criteria(text: str | None) -> list[Criterion]:
    """The criteria of an eligibility text in document order (empty for no text)."""
    return [item for item in outline(text) if isinstance(item, Criterion)]


def outline(text: str | None) -> list[Heading | Criterion]:
    """Headings and criteria in document order: together they hold every word of ``text``."""
    if not text or not text.strip():
        return []
    blocks = _split_blocks(_lines(text))
    return _merge_connectors(_Builder(blocks, text).run())


# --- lines and blocks ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Marker:
    kind: str
    """``bullet``, ``bullet:<char>``, ``num``, ``decimal`` (``1.2.1``), ``alpha``, ``ALPHA``, ``roman``,
    ``ROMAN``, ``circled``; single ``i``/``v``/``x`` letters are ``roman?``/``ROMAN?`` until placed."""
    label: str
    """How the marker is rendered inside a parent criterion (``-`` for bullets, ``a.``, ``(ii)``)."""
    value: str
    first: int
    """Length of the first marker token (the bullet, or the enumerator when there is no bullet)."""
    full: int
    """Length of the whole marker, bullet and enumerator, with the spaces after it."""
    body: int
    """Where the item's text starts: ``full``, except that decimal outline numbers stay in the text."""


def _parse_marker(line: str) -> _Marker | None:
    bullet = _BULLET.match(line)
    start = bullet.end() if bullet else 0
    enum = _ENUM.match(line, start)
    if enum is not None and not _enumerator_ok(enum):
        enum = None
    if enum is None:
        if bullet is None:
            return None
        char = bullet.group().strip().lstrip("\\")
        kind = "bullet" if char in ("*", "-", "+", "•", "") else f"bullet:{char}"
        return _Marker(kind, "-", "", bullet.end(), bullet.end(), bullet.end())
    value = enum.group("plain") or enum.group("paren") or enum.group("glued") or enum.group("circled")
    if enum.group("decimal"):
        # "1.2.1": the outline number says where the item belongs; it stays in the text (label "").
        kind, label, value = "decimal", "", enum.group("decimal")
    elif enum.group("circled"):
        kind, label = "circled", value
    else:
        if value.isdigit():
            kind = "num"
        elif len(value) == 1 and value in "ivxIVX":
            kind = "roman?" if value.islower() else "ROMAN?"
        elif len(value) == 1:
            kind = "alpha" if value.islower() else "ALPHA"
        else:
            kind = "roman" if value.islower() else "ROMAN"
        if enum.group("paren"):
            label = f"({value})"
        elif enum.group("glued"):
            label = f"{value}."
        else:
            label = unescape_markdown(enum.group().strip())
    first = bullet.end() if bullet else enum.end()
    body = start if kind == "decimal" else enum.end()
    return _Marker(kind, label, value, first, enum.end(), body)


def _enumerator_ok(enum: re.Match[str]) -> bool:
    # Multi-letter enumerators must be roman numerals in one case ("iv", "XII"), not words or
    # abbreviations such as "(ULN)" or "Dr.".
    value = enum.group("plain") or enum.group("paren") or ""
    if len(value) <= 1 or value.isdigit():
        return True
    return value in (value.lower(), value.upper()) and bool(_ROMAN.fullmatch(value))


@dataclass(slots=True)
class _Line:
    indent: int
    text: str
    marker: _Marker | None
    width: int
    """Length of the line as written, indentation included."""
    guessed: bool = False
    """``width`` is estimated (first line of a stripped text)."""


def _lines(text: str) -> list[_Line | None]:
    """Lines with indentation relative to the text's base (``None`` for blank lines).

    The base is taken from the lines after the first because readers strip the whole string,
    which removes the first line's indentation only.
    """
    raw = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4).split("\n")
    bodies = [line.strip() for line in raw]
    indents = [len(line) - len(line.lstrip()) if body else 0 for line, body in zip(raw, bodies, strict=True)]
    base = min((indents[i] for i in range(1, len(raw)) if bodies[i]), default=0)
    out: list[_Line | None] = []
    for index, (body, indent) in enumerate(zip(bodies, indents, strict=True)):
        if not body:
            out.append(None)
            continue
        # A stripped first line lost its indentation: its width is only known to be about this.
        guessed = index == 0 and indent == 0 and base > 0
        # Without its trailing blanks a line is its indentation followed by its text.
        width = indent + len(body) + (base if guessed else 0)
        out.append(_Line(max(0, indent - base), body, _parse_marker(body), width, guessed))
    return out


_WRAP_WIDTH = 100
"""Column at which ClinicalTrials.gov's legacy XML hard-wrapped text (indentation included)."""


def _hard_wrapped(lines: list[_Line | None]) -> bool:
    """Whether line breaks inside paragraphs are wrapping (legacy XML) rather than the author's.

    Wrapped text never exceeds the wrap width, and a wrapped line breaks where the next word
    would not have fitted.  v2 text has no line breaks inside paragraphs at all; other registries
    (WHO ICTRP) break lines between criteria, which must not be joined.
    """
    present = [line for line in lines if line is not None]
    if not present or max((line.width for line in present if not line.guessed), default=0) > _WRAP_WIDTH:
        return False
    return any(
        a is not None
        and b is not None
        and b.marker is None
        and a.width + 1 + len(b.text.split(maxsplit=1)[0]) > _WRAP_WIDTH - 5
        for a, b in itertools.pairwise(lines)
    )


@dataclass(slots=True)
class _Block:
    indent: int
    text: str
    """Joined text, marker removed, markdown escapes kept (removed when rendering)."""
    marker: _Marker | None
    heading: int = 0
    """Level of a heading split off the inside of a paragraph (0: not such a heading)."""
    inline: bool = False
    """Text that followed a heading on the same line: its column says nothing about nesting."""
    section: bool | None = field(default=None, init=False, repr=False, compare=False)
    """Memo of ``_is_section_heading``, which most blocks are asked twice (as the next block, then
    as themselves)."""

    @property
    def first_col(self) -> int:
        if self.inline:
            return _NOWHERE
        return self.indent + (self.marker.first if self.marker else 0)

    @property
    def full_col(self) -> int:
        if self.inline:
            return _NOWHERE
        return self.indent + (self.marker.full if self.marker else 0)


_NOWHERE = 1 << 30
"""Text column of a block nothing may nest under by indentation."""


def _body(text: str, marker: _Marker | None) -> str:
    """A line's text after its marker; decimal outline numbers ("1.2 Staging") stay in the text."""
    return text[marker.body :].strip() if marker else text


def _is_section_line(body: str) -> bool:
    # Capitalised only: in hard-wrapped text a line "exclusion criteria" continues a sentence.
    body = _BULLET.sub("", body, count=1).strip()
    return body[:1].isupper() and bool(_STRICT_SECTION_LINE.fullmatch(body))


def _split_blocks(lines: list[_Line | None]) -> list[_Block]:
    wrapped = _hard_wrapped(lines)
    groups: list[list[_Line]] = []
    previous: _Line | None = None
    previous_section = False
    for line in lines:
        if line is None:
            previous = None
            continue
        # Only wrapped text joins lines, so only there does a section line need spotting.
        section = wrapped and _is_section_line(line.text)
        starts_new = previous is None or not wrapped or section or previous_section
        previous_section = section
        if starts_new:
            groups.append([line])
        else:
            groups[-1].append(line)
        previous = line
    blocks: list[_Block] = []
    for head, *rest in groups:
        text = _body(head.text, head.marker)
        if rest:
            text = " ".join([text, *(line.text for line in rest)])
        block = _Block(head.indent, _collapse_whitespace(text), head.marker)
        # Every inline heading form is "--Heading--" or ends in a colon: most paragraphs have neither.
        if ":" in block.text or "--" in block.text:
            blocks.extend(_split_inline_headings(block))
        else:
            blocks.append(block)
    return blocks


def _collapse_whitespace(text: str) -> str:
    """Runs of whitespace as one space, none at the ends."""
    # The space is the only printable whitespace character: a printable text without a double,
    # leading or trailing space (nearly every line) has nothing to collapse.
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    # str.split() splits on exactly the characters regex \s matches (Unicode whitespace), and
    # is several times faster than re.sub for collapsing them.
    return " ".join(text.split())


def _split_inline_headings(block: _Block) -> list[_Block]:
    """Split headings written inside a paragraph into heading blocks of their own."""
    out: list[_Block] = []
    parts = _DASH_HEADING.split(block.text) if "--" in block.text else [block.text]
    for part_index, part in enumerate(parts):
        if part_index % 2:
            out.append(_Block(block.indent, part, None, heading=2))
            continue
        # The mid-paragraph heading pattern needs one of its literal spellings of "criteria".
        has_criteria = "riteria" in part or "RITERIA" in part
        pieces = [piece.strip() for piece in _MID_SECTION.split(part)] if has_criteria else [part.strip()]
        if (
            len(pieces) == 2
            and _INLINE_SECTION.match(pieces[1]) is None
            and (
                _JOINING_END.search(pieces[0])
                or (len(pieces[0].split()) <= 2 and all(word[:1].isupper() for word in pieces[0].split()))
            )
        ):
            # "Other Exclusion Criteria:" and "Inclusion and Exclusion Criteria:" are one heading.
            pieces[:2] = [f"{pieces[0]} {pieces[1]}"]
        for index, piece in enumerate(pieces):
            if (index or part_index) and not piece:
                continue
            marker = block.marker if index == 0 and part_index == 0 else None
            level = 1
            match = _INLINE_SECTION.match(piece)
            if match is None and marker is None:
                level, match = 2, _INLINE_CAPS.match(piece)
            if match is None:
                out.append(_Block(block.indent, piece, marker))
                continue
            out.append(_Block(block.indent, match.group("h").strip(), None, heading=level))
            rest = match.group("rest").strip()
            rest_marker = _parse_marker(rest)
            out.append(_Block(block.indent, _body(rest, rest_marker), rest_marker, inline=True))
    return out


# --- headings ------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return unescape_markdown(text).strip()


def _strip_colon(text: str) -> str:
    return text.rstrip().rstrip(":").rstrip()


def _label(heading: str) -> str:
    """A heading as ``Criterion.heading`` shows it: ``--Disease Characteristics--`` -> ``Disease Characteristics``."""
    return _strip_colon(heading).strip("-").strip()


@functools.lru_cache(maxsize=4096)
def _section_kind(text: str) -> bool | str | None:
    """``True`` exclusion, ``False`` inclusion, ``"both"`` (e.g. "Inclusion/Exclusion"), ``None`` neither."""
    # Cached: asked of short lines only, mostly the same few headings in every record ("Inclusion
    # Criteria:"), each twice (to spot the heading, then to know its section).
    excl = bool(_EXCLUSION.search(text))
    incl = bool(_INCLUSION.search(text))
    if excl and incl:
        return "both"
    if excl:
        return True
    if incl:
        return False
    return None


def _is_section_heading(block: _Block) -> bool:
    if block.section is None:
        block.section = _section_heading(block.text, block.marker is not None)
    return block.section


def _section_heading(text: str, marked: bool) -> bool:
    text = _clean(text)
    if not text:
        return False
    core = _strip_colon(text)
    # Most blocks are criteria, far longer than any heading: the word count rules them out
    # before the (costlier) section-kind patterns run.  Splitting off one word more than the
    # limit is enough to tell.
    limit = 8 if marked else 30
    words = core.split(maxsplit=limit + 1)
    if not words or len(words) > limit:
        return False
    if text.endswith(":"):
        return _section_kind(text) is not None
    # Without a colon only a short line that starts like a heading ("Key Inclusion Criteria",
    # "Exclusion criteria for all randomisations"), so that a criterion such as "RRMS not
    # fulfilling inclusion criteria" stays a criterion.  The anchored patterns are cheaper than
    # the section-kind search, so they go first.
    return (
        len(words) <= (6 if marked else 10)
        and core[-1] not in ".;,!?"
        and bool(_HEADING_START.match(core))
        and not _NEGATION.match(core)
        and _section_kind(text) is not None
    )


def _mostly_capitals(text: str) -> bool:
    letters = "".join(filter(str.isalpha, text))
    return bool(letters) and sum(map(str.isupper, letters)) > 0.7 * len(letters)


def _is_caps_heading(block: _Block, has_next: bool, shouting: Callable[[], bool]) -> bool:
    text = _clean(block.text)
    core = _strip_colon(text)
    # Stops at the first small letter, which in ordinary text is the second character.
    if any(c.isalpha() and not c.isupper() for c in core):
        return False
    if sum(map(str.isalpha, core)) < 4 or _is_connector(core):
        return False
    words = core.split()
    if text.endswith(":"):
        # Whether the whole text shouts only matters between 5 and 8 words.
        return len(words) <= 4 or (len(words) <= 8 and not shouting())
    return len(words) <= 4 and has_next and core[-1] not in ".;,!?" and not shouting()


def _is_lead_in(block: _Block, next_block: _Block | None) -> bool:
    if next_block is None or next_block.marker is None or next_block.heading or _is_section_heading(next_block):
        return False
    text = _clean(block.text)
    core = _strip_colon(text)
    words = core.split(maxsplit=41)  # enough to tell whether there are more than 40
    if not words or _is_connector(core):
        return False
    if text.endswith(":"):
        return len(words) <= 40
    # Without a colon only a short title: "Age", "Performance status", "BrCa carriers (cases)",
    # "Group 1: Metabolic syndrome"; not the start of a sentence cut by a line break.
    if len(words) > 6 or not core[0].isupper() or not _TITLE.fullmatch(core):
        return False
    if core.count("(") != core.count(")"):
        return False
    return not _DIGIT.search(core) or bool(_GROUP_LABEL.match(core))


# --- tree ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    block: _Block
    kind: str
    """Resolved marker kind; ``para`` for an unmarked paragraph, ``lead`` for a lead-in paragraph
    inside an outline (it takes the list that follows it)."""
    children: list[_Item] = field(default_factory=list)


class _Builder:
    def __init__(self, blocks: list[_Block], text: str) -> None:
        self.blocks = blocks
        self.text = text
        self.out: list[Heading | Criterion | _Item] = []
        self.stack: list[_Item] = []
        self.exclude = False
        self.path: dict[int, str] = {}
        self.heading: str | None = None
        """``path`` as ``Criterion.heading`` shows it (joined when the path changes, not per criterion)."""
        self.owner: dict[int, tuple[bool, str | None]] = {}
        """For each emitted top-level item (by id): its section and heading path."""

    @functools.cached_property
    def shouting(self) -> bool:
        """The whole text is mostly capitals; asked only about all-capitals lines, so mostly never."""
        return _mostly_capitals(self.text)

    def run(self) -> list[Heading | Criterion]:
        for block, following in itertools.zip_longest(self.blocks, self.blocks[1:]):
            self._place(block, following)
        result: list[Heading | Criterion] = []
        for entry in self.out:
            if isinstance(entry, _Item):
                if entry.children:
                    text = "\n".join(_render(entry, 0)).strip()
                else:
                    text = unescape_markdown(entry.block.text).strip()
                if text:
                    exclude, heading = self.owner[id(entry)]
                    result.append(Criterion(text, exclude, heading))
            else:
                result.append(entry)
        return result

    def _heading(self, block: _Block, level: int) -> None:
        text = _clean(block.text)
        self.stack.clear()
        self.out.append(Heading(text, level))
        if level == 1:
            kind = _section_kind(text)
            if isinstance(kind, bool):
                self.exclude = kind
            self._set_path({} if _PLAIN_SECTION.fullmatch(_label(text)) else {1: _label(text)})
        else:
            self._set_path({**{k: v for k, v in self.path.items() if k < level}, level: _label(text)})

    def _set_path(self, path: dict[int, str]) -> None:
        self.path = path
        self.heading = " / ".join(path[k] for k in sorted(path)) or None

    def _top_level(self, item: _Item) -> None:
        self.out.append(item)
        self.owner[id(item)] = (self.exclude, self.heading)

    def _place(self, block: _Block, following: _Block | None) -> None:
        if block.heading or _is_section_heading(block):
            self._heading(block, block.heading or 1)
            return
        if block.marker is None:
            parent = next(
                (item for item in reversed(self.stack) if item.kind != "lead" and block.indent >= item.block.first_col),
                None,
            )
            if parent is not None:
                # Indented paragraph inside a list item (markdown continuation paragraph).
                while self.stack[-1] is not parent:
                    self.stack.pop()
                parent.children.append(_Item(block, "para"))
                return
            if self._lead_in_list(block, following):
                assert following is not None and following.marker is not None
                lead = _Item(block, "lead")
                self.stack[-1].children.append(lead)
                self.stack.append(lead)
                return
            if _is_caps_heading(block, following is not None, lambda: self.shouting):
                self._heading(block, 2)
                return
            if _is_lead_in(block, following):
                self._heading(block, 3)
                return
            self.stack.clear()
            if 3 in self.path:
                self._set_path({k: v for k, v in self.path.items() if k != 3})
            self._top_level(_Item(block, "para"))
            return
        if not block.text:
            # An empty bullet ("-" on its own line) carries no criterion.
            return
        kind = self._resolve(block)
        while self.stack and not self._nests(block, kind, self.stack[-1]):
            self.stack.pop()
        if not self.stack and _is_label(block, kind, following):
            self._heading(block, 3)
            return
        item = _Item(block, kind)
        if self.stack:
            self.stack[-1].children.append(item)
        else:
            self._top_level(item)
        self.stack.append(item)

    def _lead_in_list(self, block: _Block, following: _Block | None) -> bool:
        """A lead-in paragraph inside an enumerated outline, introducing a list that nests there.

        ("a) ...", "i) ...", "Examples include:", "* ...", "ii) ...": the examples belong to i).)
        A list whose style is already open above ("For cohort B:" then "1.") is a new section.
        """
        if not self.stack or following is None or following.marker is None:
            return False
        top = self.stack[-1]
        if _rank(top) is None or not _is_lead_in(block, following):
            return False
        kind = following.marker.kind
        return kind.startswith("bullet") or not self._open(kind)

    def _resolve(self, block: _Block) -> str:
        """Decide whether a lone ``i``/``v``/``x`` is a letter (after ``h``/``u``/``w``) or a roman numeral."""
        assert block.marker is not None
        kind = block.marker.kind
        if not kind.endswith("?"):
            return kind
        letters = "alpha" if kind == "roman?" else "ALPHA"
        previous = {"i": "h", "v": "u", "x": "w"}[block.marker.value.lower()]
        for item in reversed(self.stack):
            if item.kind == letters and item.block.marker and item.block.marker.value.lower() == previous:
                return letters
        return "roman" if kind == "roman?" else "ROMAN"

    def _nests(self, block: _Block, kind: str, parent: _Item) -> bool:
        col = block.indent
        if kind == "decimal" and parent.kind in ("num", "decimal"):
            assert block.marker is not None and parent.block.marker is not None
            return block.marker.value.startswith(parent.block.marker.value + ".")
        if parent.kind == "lead":
            # Bullets nest by indentation only, so an open bullet above does not end the list.
            return kind.startswith("bullet") or not self._open(kind)
        if col >= parent.block.first_col and (kind != parent.kind or col >= parent.block.full_col):
            return True
        if kind.startswith("bullet") and col >= parent.block.indent and _takes_bullets(parent, kind):
            return True
        rank = _rank(parent)
        if rank is None or kind not in _RANK or _RANK[kind] <= rank or self._open(kind):
            return False
        return col >= parent.block.indent - 2

    def _open(self, kind: str) -> bool:
        """Whether an item of this kind is already open above (its kind then marks a sibling, not a child)."""
        kinds = {kind, *_CANDIDATES.get(kind, ())}
        return any(item.kind in kinds for item in self.stack)


def _rank(item: _Item) -> int | None:
    if item.kind in _RANK:
        return _RANK[item.kind]
    # A bullet that announces a list ("... one of the following criteria, a), b) or c)") takes
    # the enumerated items written below it, even at the same indentation.
    if item.kind.startswith("bullet") and _introduces(item.block.text):
        return -1
    return None


def _is_label(block: _Block, kind: str, following: _Block | None) -> bool:
    """An enumerated sub-section title with a flush bullet list under it ("B) Concomitant medication:")."""
    if kind.startswith("bullet") or following is None or following.marker is None:
        return False
    words = _strip_colon(block.text).split()
    return (
        block.text.endswith(":")
        and 0 < len(words) <= 6
        and following.marker.kind.startswith("bullet")
        and following.indent <= block.indent
    )


def _takes_bullets(parent: _Item, kind: str) -> bool:
    """A bullet list written flush under an enumerated item that announces it ("1.2.2 ... one of
    the following criteria:") belongs to that item (renderings that lost the list's indentation)."""
    if parent.kind not in _RANK and parent.kind != "decimal":
        return False
    return _introduces(parent.block.text) and all(child.kind == kind for child in parent.children)


def _introduces(text: str) -> bool:
    # Prefilter: no letter of "follow" has a non-ASCII case variant (as "i" and "s" have), so
    # the lower-cased text contains it whenever the case-blind pattern matches.
    return text.rstrip().endswith(":") or ("follow" in text.lower() and bool(_FOLLOWING.search(text)))


def _render(item: _Item, depth: int) -> list[str]:
    text = unescape_markdown(item.block.text)
    if depth == 0:
        lines = [text] if text else []
    else:
        label = item.block.marker.label if item.block.marker and item.kind != "para" else ""
        lines = ["  " * depth + (f"{label} {text}" if label else text)]
    for child in item.children:
        lines.extend(_render(child, depth + 1))
    return lines


def _merge_connectors(items: list[Heading | Criterion]) -> list[Heading | Criterion]:
    """Join criteria linked by "OR" into one, so alternatives do not become criteria that must all hold.

    ``A`` / ``OR`` / ``B`` paragraphs, ``A OR`` followed by ``B``, and ``A`` followed by ``OR B``
    become one criterion with the parts on separate lines.
    """
    out: list[Heading | Criterion] = []
    for item in items:
        previous = out[-1] if out else None
        if (
            isinstance(item, Criterion)
            and isinstance(previous, Criterion)
            and previous.exclude == item.exclude
            and previous.heading == item.heading
            and (_dangling(previous.text) or _is_connector(item.text) or _LEADING_OR.match(item.text))
        ):
            out[-1] = Criterion(f"{previous.text}\n{item.text}", previous.exclude, previous.heading)
        else:
            out.append(item)
    return out


def _dangling(text: str) -> bool:
    # The pattern is anchored at the end and at most 8 characters long (its "$" may stand before
    # a final newline): searching only the tail gives the same answer without scanning the text.
    return _is_connector(text) or bool(_TRAILING_OR.search(text[-8:]))


def _is_connector(text: str) -> bool:
    # Case folding never shortens a text, so a longer one need not be folded to be ruled out.
    return len(text) <= _CONNECTOR_LENGTH and text.casefold() in _CONNECTORS
