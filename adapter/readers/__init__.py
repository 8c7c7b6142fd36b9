"""Source detection and dispatch: bytes in, one ``ReadItem`` per registry record out.

The format is detected from content, never from file names: integrators feed files named
``study.txt`` or piped from ``curl``.  Each record is yielded with its locator (``file#studies[3]``)
and either the record or the error that stopped it, so a batch can account for every record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from adapter.errors import InputError, Trial2FhirError
from adapter.record import TrialRecord

MAX_JSON_DEPTH = 64
"""Registry JSON is at most ~8 levels deep; anything far deeper is hostile or broken input."""


@dataclass(frozen=True, slots=True)
class ReadItem:
    """One record of the input: ``record`` on success, else ``error``; ``locator`` names it in reports."""

    locator: str
    record: TrialRecord | None = None
    error: Trial2FhirError | None = None


def _name(source: str | None) -> str:
    return source or "<input>"


def _check_depth(value: Any, source: str) -> None:
    # orjson already refuses nesting deeper than 1024; this tighter bound keeps later recursive
    # code (readers, compact) far from Python's recursion limit.  Walked level by level with exact
    # type tests (orjson builds plain dicts and lists only): it touches every node of every record.
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        if depth > MAX_JSON_DEPTH:
            raise InputError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", source)
        below = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                kind = type(child)
                if kind is dict or kind is list:
                    below.append(child)
        level = below
        depth += 1


def _json_items(obj: Any, source: str) -> Iterator[ReadItem]:
    from adapter.readers.ctgov_json import read_study

    def one(study: Any, locator: str) -> ReadItem:
        try:
            return ReadItem(locator, record=read_study(study, locator))
        except Trial2FhirError as error:
            return ReadItem(locator, error=error)

    if isinstance(obj, dict) and isinstance(obj.get("studies"), list):
        for index, study in enumerate(obj["studies"]):
            yield one(study, f"{source}#studies[{index}]")
    elif isinstance(obj, dict) and "resourceType" in obj:
        raise InputError(
            f"this is a FHIR {obj.get('resourceType')} resource, not a registry record "
            "(use 'trial2fhir validate' to check FHIR resources)",
            source,
        )
    elif isinstance(obj, dict):
        yield one(obj, source)
    elif isinstance(obj, list):
        for index, study in enumerate(obj):
            yield one(study, f"{source}#[{index}]")
    else:
        raise InputError(f"expected a JSON object or array, found {type(obj).__name__}", source)


def _xml_items(data: bytes, source: str) -> Iterator[ReadItem]:
    from adapter.readers.safe_xml import parse_xml

    root = parse_xml(data, source)
    tag = root.tag if isinstance(root.tag, str) else ""
    local = tag.rsplit("}", 1)[-1]
    if local == "clinical_study":
        from adapter.readers.ctgov_xml import read_clinical_study

        try:
            yield ReadItem(source, record=read_clinical_study(root, source))
        except Trial2FhirError as error:
            yield ReadItem(source, error=error)
    elif local in ("Trials_downloaded_from_ICTRP", "Trial"):
        from adapter.readers import who_ictrp

        yield from who_ictrp.read_items(root, source)
    else:
        raise InputError(
            f"XML root <{local}> is not a registry record (expected <clinical_study> or "
            "<Trials_downloaded_from_ICTRP>)",
            source,
        )


def read_items(data: bytes, source: str | None = None) -> Iterator[ReadItem]:
    """Detect the format of ``data`` and yield one ``ReadItem`` per record.

    Raises ``InputError`` when the input as a whole is unreadable (not JSON/XML, hostile XML,
    not a registry format); per-record problems are yielded as items with ``error`` set.
    """
    name = _name(source)
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise InputError("input is empty", name)
    first = text[:1]
    if first == b"<":
        yield from _xml_items(text, name)
        return
    if first not in (b"{", b"["):
        raise InputError("not a registry record: expected ClinicalTrials.gov JSON or XML, or WHO ICTRP XML", name)
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        if first == b"{" and b"\n" in text.rstrip():
            yield from _ndjson_items(text, name)
            return
        raise InputError(f"invalid JSON: {error}", name) from None
    _check_depth(obj, name)
    yield from _json_items(obj, name)


def _ndjson_items(text: bytes, source: str) -> Iterator[ReadItem]:
    """One study per line (the shape of bulk exports and of our own batch inputs)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        locator = f"{source}#{number}"
        try:
            obj = orjson.loads(line)
            _check_depth(obj, locator)
        except orjson.JSONDecodeError as error:
            yield ReadItem(locator, error=InputError(f"invalid JSON: {error}", locator))
            continue
        except InputError as error:
            yield ReadItem(locator, error=error)
            continue
        try:
            yield from _json_items(obj, locator)
        except InputError as error:
            yield ReadItem(locator, error=error)
