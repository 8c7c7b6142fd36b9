"""Small builders for FHIR data types as plain dicts.

Mappings build plain ``dict`` resources (not fhir.resources models): it is several times faster
for registry-scale batches, and the validators check the result anyway.
"""

from __future__ import annotations

from typing import Any

CTGOV_ENUM = "https://clinicaltrials.gov/data-about-studies/study-data-structure#enum-"
"""Prefix of the systems for ClinicalTrials.gov's own enumerations (as in HL7's CT.gov example)."""

UCUM = "http://unitsofmeasure.org"


def compact(value: Any) -> Any:
    """Drop ``None``, empty strings, empty lists and empty dicts, recursively (FHIR forbids empty elements)."""
    if isinstance(value, dict):
        return _compact_dict(value)
    if isinstance(value, list):
        return _compact_list(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def compact_resource(resource: dict[str, Any], built_clean: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``compact(resource)``, except that the top-level elements named in ``built_clean`` are kept
    or dropped whole: their builders never put an empty value inside them (tests hold them to
    it), so walking their every node again, the largest share of compaction, finds nothing."""
    return _compact_dict(resource, built_clean)


def present(**parts: Any) -> dict[str, Any]:
    """The ``parts`` that have a value, in order: a data type built without empty elements."""
    return {key: value for key, value in parts.items() if value}


# The helpers below run on every element of every resource: exact type tests first (the common
# case, several times cheaper than isinstance chains), strings handled inline (most leaves are
# strings, and a call per leaf was half the cost), the general rule for subclasses after.
def _compact_item(item: Any) -> Any:
    kind = type(item)
    if kind is str:
        return item.strip() or None
    if kind is dict:
        return _compact_dict(item) or None
    if kind is list:
        return _compact_list(item) or None
    if kind is int or kind is bool or kind is float or item is None:
        return item
    item = compact(item)
    return None if item == "" or item == [] or item == {} else item


def _compact_dict(value: dict[str, Any], whole: frozenset[str] = frozenset()) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if type(item) is str:
            item = item.strip()
            if item:
                out[key] = item
        elif key in whole:
            if item:
                out[key] = item
        elif item is not None:
            item = _compact_item(item)
            if item is not None:
                out[key] = item
    return out


def _compact_list(value: list[Any]) -> list[Any]:
    out = []
    for item in value:
        if type(item) is str:
            item = item.strip()
            if item:
                out.append(item)
        elif item is not None:
            item = _compact_item(item)
            if item is not None:
                out.append(item)
    return out


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(*codings: dict[str, str] | None, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # Called for nearly every concept of every resource: text-only concepts skip the filtering,
    # and filter(None, ...) drops the absent codings without a Python-level loop.
    if codings:
        kept = list(filter(None, codings))
        if kept:
            out["coding"] = kept
    if text:
        out["text"] = text
    return out


def ctgov_coding(enum: str, code: str, display: str | None = None) -> dict[str, str]:
    """A coding in one of ClinicalTrials.gov's enumerations, e.g. ``ctgov_coding("DesignAllocation", "RANDOMIZED")``."""
    return coding(CTGOV_ENUM + enum, code, display)


def reference(resource_type: str, resource_id: str, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        out["display"] = display
    return out


def extension(url: str, **value: Any) -> dict[str, Any]:
    """``extension(URL, valueString="x")``; pass ``extension=[...]`` for complex extensions."""
    return {"url": url, **value}
