"""Search parameters (as a client writes them) -> SQL conditions on the shared index tables.

Every condition is an uncorrelated ``rid IN (SELECT rid FROM idx_... WHERE ...)`` over one index
table, so both databases answer it from an index.  Supported, per parameter type:

* token: ``code``, ``system|code``, ``|code``, ``system|``; modifiers ``:text``, ``:not``,
  ``:missing``.  A value without ``|`` also matches a CodeableConcept whose text (or a coding's
  display) is that value, case- and accent-insensitively: registry conditions and keywords are
  mostly free text.  Identifiers are matched with the tolerance of :mod:`adapter.store.params`.
* string: starts-with (case- and accent-insensitive), ``:contains``, ``:exact``, ``:missing``.
* reference: ``Type/id``, ``id``, absolute URL, ``:Type`` modifier, ``:missing``, chains
  (``sponsor.name=X``, ``sponsor:Organization.name=X``, any depth) and ``_has``.
* date: prefixes ``eq ne gt lt ge le sa eb ap`` at any precision (a date is a range).
* uri: exact, ``:below``.
* ``_id``, ``_lastUpdated``; ``_sort`` on ``_id``, ``_lastUpdated`` and any string, token, uri,
  date or reference parameter.

Parameters the server does not know raise :class:`UnknownParameter`; the caller ignores them
(lenient, the default) or answers 400 (``Prefer: handling=strict``).  A known parameter with a
value that cannot be understood is always a 400.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from adapter.server.fhir_io import FhirError
from adapter.store.base import Query
from adapter.store.params import (
    MAX_INDEXED,
    RESOURCE_TYPES,
    TEXT_SUFFIX,
    SearchParam,
    canonical_system,
    date_range,
    identifier_keys,
    normalize_identifier,
    normalize_text,
    parse_reference,
    search_params,
)

RESULT_PARAMS = ("_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total")
FORMAT_PARAMS = ("_format", "_pretty")
IGNORED_PARAMS = ("_contained", "_containedType", "_cursor")
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
SUMMARY_VALUES = ("true", "false", "text", "data", "count")
_HIGH = "\U0010ffff"
"""Sorts after every character: ``[q, q + _HIGH)`` is the range of strings starting with ``q``."""


class UnknownParameter(Exception):
    """A parameter (or _include/_sort target) the server does not support."""


def _bad_modifier(name: str) -> FhirError:
    # Unlike an unknown parameter, an unsupported modifier is never ignored: the search would mean something else.
    return FhirError(400, f"unsupported modifier in {name!r}", "not-supported")


@dataclass(frozen=True, slots=True)
class Include:
    source: str
    param: str
    target: str | None
    iterate: bool
    reverse: bool


@dataclass(slots=True)
class SearchSpec:
    fv: str
    rtype: str
    query: Query
    count: int
    summary: str | None = None
    elements: list[str] | None = None
    total: str = "accurate"
    includes: list[Include] = field(default_factory=list)
    criteria: list[tuple[str, str]] = field(default_factory=list)
    """The search and result parameters used, in request order (the ``self`` link)."""
    ignored: list[str] = field(default_factory=list)

    def link_query(self, extra: list[tuple[str, str]] | None = None) -> str:
        return urlencode([*self.criteria, *(extra or [])], safe=":|,/$*")


# --- value syntax ---------------------------------------------------------------------------


def split_unescaped(value: str, separator: str) -> list[str]:
    """Split on ``separator`` not preceded by a backslash; ``\\,`` ``\\|`` ``\\$`` ``\\\\`` are unescaped."""
    parts, current, escaped = [], [], False
    for char in value:
        if escaped:
            current.append(char if char in ",|$\\" else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _or_values(value: str) -> list[str]:
    return split_unescaped(value, ",")


def _token(value: str) -> tuple[str | None, str]:
    # Split on the first unescaped '|' only; the code keeps anything after it.
    index, escaped = -1, False
    for position, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            index = position
            break
    if index < 0:
        return None, _unescape(value)
    return _unescape(value[:index]), _unescape(value[index + 1 :])


def _unescape(value: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", value)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- conditions -----------------------------------------------------------------------------


class _Builder:
    """Builds the condition of one parameter for resources of ``rtype`` under SQL alias ``alias``."""

    def __init__(self, fv: str, rtype: str, alias: str, depth: int = 0) -> None:
        self.fv = fv
        self.rtype = rtype
        self.alias = alias
        self.depth = depth
        self.params = search_params(fv).get(rtype, {})

    def _in(self, table: str, cond: str, *values: Any, negate: bool = False) -> tuple[str, list[Any]]:
        op = "NOT IN" if negate else "IN"
        sql = f"{self.alias}.rid {op} (SELECT rid FROM {table} WHERE fv = ? AND rtype = ? AND {cond})"
        return sql, [self.fv, self.rtype, *values]

    def _in_any(self, table: str, alternatives: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
        """``rid IN (... UNION ALL ...)``: each alternative keeps its own index lookup (an OR inside one
        subquery would make both databases scan every row of the parameter)."""
        parts, params = [], []
        for cond, values in alternatives:
            parts.append(f"SELECT rid FROM {table} WHERE fv = ? AND rtype = ? AND {cond}")
            params.extend([self.fv, self.rtype, *values])
        return f"{self.alias}.rid IN ({' UNION ALL '.join(parts)})", params

    def condition(self, key: str, value: str) -> tuple[str, list[Any]]:
        if key.startswith("_has:"):
            return self._has(key, value)
        name, _, chain = key.partition(".")
        code, _, modifier = name.partition(":")
        if code == "_id":
            if modifier or chain:
                raise UnknownParameter(key)
            ids = [v for v in _or_values(value) if v]
            if not ids:
                raise FhirError(400, "_id needs a value", "invalid")
            return f"{self.alias}.rid IN ({', '.join('?' * len(ids))})", ids
        if code == "_lastUpdated":
            if modifier or chain:
                raise UnknownParameter(key)
            return self._dates(key, value, column=True)
        param = self.params.get(code)
        if param is None:
            raise UnknownParameter(key)
        if chain:
            if param.type != "reference":
                raise FhirError(400, f"{code} is not a reference parameter, so it cannot be chained", "invalid")
            return self._chain(param, modifier, chain, value)
        if modifier == "missing":
            return self._missing(param, value)
        handler = {
            "token": self._tokens,
            "string": self._strings,
            "reference": self._references,
            "date": self._date_param,
            "uri": self._uris,
        }[param.type]
        return handler(param, modifier, value)

    def _missing(self, param: SearchParam, value: str) -> tuple[str, list[Any]]:
        if value not in ("true", "false"):
            raise FhirError(400, f"{param.code}:missing takes true or false, not {value!r}", "invalid")
        negate = value == "true"
        table = {
            "token": "idx_token",
            "uri": "idx_token",
            "string": "idx_string",
            "reference": "idx_ref",
            "date": "idx_date",
        }[param.type]
        if param.type == "token":
            op = "NOT IN" if negate else "IN"
            sql = (
                f"{self.alias}.rid {op} (SELECT rid FROM idx_token WHERE fv = ? AND rtype = ? AND param = ? "
                "UNION SELECT rid FROM idx_string WHERE fv = ? AND rtype = ? AND param = ?)"
            )
            return sql, [self.fv, self.rtype, param.code, self.fv, self.rtype, param.code + TEXT_SUFFIX]
        return self._in(table, "param = ?", param.code, negate=negate)

    # tokens

    def _tokens(self, param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
        if modifier not in ("", "text", "not"):
            raise _bad_modifier(f"{param.code}:{modifier}")
        if modifier == "text" and param.identifier:
            raise _bad_modifier(f"{param.code}:text")
        parts, params = [], []
        for item in _or_values(value):
            if modifier == "text":
                sql, values = self._text(param, item)
            else:
                sql, values = self._token(param, item)
            parts.append(sql)
            params.extend(values)
        sql = "(" + " OR ".join(parts) + ")"
        return (f"NOT {sql}" if modifier == "not" else sql), params

    def _text(self, param: SearchParam, item: str) -> tuple[str, list[Any]]:
        words = normalize_text(item)
        if not words:
            raise FhirError(400, f"{param.code}:text needs a value", "invalid")
        return self._in(
            "idx_string",
            "param = ? AND (norm LIKE ? ESCAPE '\\' OR norm LIKE ? ESCAPE '\\')",
            param.code + TEXT_SUFFIX,
            _like(words) + "%",
            "% " + _like(words) + "%",
        )

    def _token(self, param: SearchParam, item: str) -> tuple[str, list[Any]]:
        system, code = _token(item)
        if param.identifier:
            return self._identifier(param, system, code)
        code = code[:MAX_INDEXED]
        if system is None:
            if not code:
                raise FhirError(400, f"{param.code} needs a value", "invalid")
            by_code = (
                "SELECT rid FROM idx_token WHERE fv = ? AND rtype = ? AND param = ? AND code = ?",
                [self.fv, self.rtype, param.code, code],
            )
            by_text = (
                "SELECT rid FROM idx_string WHERE fv = ? AND rtype = ? AND param = ? AND norm = ?",
                [self.fv, self.rtype, param.code + TEXT_SUFFIX, normalize_text(code)],
            )
            return f"{self.alias}.rid IN ({by_code[0]} UNION ALL {by_text[0]})", by_code[1] + by_text[1]
        if not code:
            return self._in("idx_token", "param = ? AND sys = ?", param.code, system)
        if system == "":
            return self._in("idx_token", "param = ? AND code = ? AND sys = ''", param.code, code)
        # A primitive code (status, active ...) is indexed without a system: the system is implicit.
        return self._in("idx_token", "param = ? AND code = ? AND (sys = ? OR sys = '')", param.code, code, system)

    def _identifier(self, param: SearchParam, system: str | None, value: str) -> tuple[str, list[Any]]:
        if system is not None and not value:
            return self._in("idx_token", "param = ? AND sys = ?", param.code, canonical_system(system))
        if not value:
            raise FhirError(400, f"{param.code} needs a value", "invalid")
        if system == "":
            return self._in("idx_token", "param = ? AND sys = '' AND code = ?", param.code, normalize_identifier(value))
        keys = identifier_keys(system, value)
        if system is not None:
            wanted = canonical_system(system)
            keys = [k for k in keys if k[0] == wanted]
            return self._in_any(
                "idx_token", [("param = ? AND code = ? AND sys = ?", [param.code, code, sys]) for sys, code in keys]
            )
        # No system: the value in any system, or a registry number the value contains under its registry.
        alternatives = [("param = ? AND code = ?", [param.code, normalize_identifier(value)])]
        alternatives += [("param = ? AND code = ? AND sys = ?", [param.code, code, sys]) for sys, code in keys[1:]]
        return self._in_any("idx_token", alternatives)

    # strings and uris

    def _strings(self, param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
        if modifier not in ("", "contains", "exact"):
            raise _bad_modifier(f"{param.code}:{modifier}")
        parts, params = [], []
        for item in _or_values(value):
            text = normalize_text(item)
            if modifier == "exact":
                sql, values = self._in("idx_string", "param = ? AND norm = ? AND raw = ?", param.code, text, item)
            elif modifier == "contains":
                sql, values = self._in(
                    "idx_string", "param = ? AND norm LIKE ? ESCAPE '\\'", param.code, "%" + _like(text) + "%"
                )
            else:
                sql, values = self._in(
                    "idx_string", "param = ? AND norm >= ? AND norm < ?", param.code, text, text + _HIGH
                )
            parts.append(sql)
            params.extend(values)
        return "(" + " OR ".join(parts) + ")", params

    def _uris(self, param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
        if modifier not in ("", "below"):
            raise _bad_modifier(f"{param.code}:{modifier}")
        parts, params = [], []
        for item in _or_values(value):
            if modifier == "below":
                sql, values = self._in(
                    "idx_token", "param = ? AND code >= ? AND code < ?", param.code, item, item + _HIGH
                )
            else:
                sql, values = self._in("idx_token", "param = ? AND code = ?", param.code, item)
            parts.append(sql)
            params.extend(values)
        return "(" + " OR ".join(parts) + ")", params

    # references, chains, _has

    def _references(self, param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
        if modifier and modifier not in RESOURCE_TYPES:
            raise _bad_modifier(f"{param.code}:{modifier}")
        parts, params = [], []
        for item in _or_values(value):
            item = item.strip()
            parsed = parse_reference(item) if "/" in item else None
            if "/" in item and parsed is None:
                raise FhirError(400, f"{param.code}={item!r} is not a reference (Type/id, id or URL)", "invalid")
            target_type, target_id = parsed if parsed else (modifier or None, item)
            if modifier and target_type != modifier:
                raise FhirError(400, f"{param.code}:{modifier}={item!r} names another type", "invalid")
            if target_type is None and len(param.targets) == 1:
                target_type = param.targets[0]
            if not target_id:
                raise FhirError(400, f"{param.code} needs a value", "invalid")
            if target_type:
                sql, values = self._in(
                    "idx_ref", "param = ? AND ttype = ? AND tid = ?", param.code, target_type, target_id
                )
            else:
                sql, values = self._in("idx_ref", "param = ? AND tid = ?", param.code, target_id)
            parts.append(sql)
            params.extend(values)
        return "(" + " OR ".join(parts) + ")", params

    def _chain(self, param: SearchParam, modifier: str, chain: str, value: str) -> tuple[str, list[Any]]:
        if self.depth >= 3:
            raise FhirError(400, "chains are limited to three levels", "too-costly")
        if modifier and modifier not in RESOURCE_TYPES:
            raise _bad_modifier(f"{param.code}:{modifier}")
        targets = [modifier] if modifier else [t for t in param.targets if t in RESOURCE_TYPES]
        parts, params = [], []
        for target in targets:
            inner = _Builder(self.fv, target, f"c{self.depth + 1}", self.depth + 1)
            try:
                sql, values = inner.condition(chain, value)
            except UnknownParameter:
                continue
            alias = inner.alias
            sub = (
                f"SELECT {alias}.rid FROM resources {alias} WHERE {alias}.fv = ? AND {alias}.rtype = ? "
                f"AND {alias}.deleted = 0 AND {sql}"
            )
            part, head = self._in("idx_ref", f"param = ? AND ttype = ? AND tid IN ({sub})", param.code, target)
            parts.append(part)
            params.extend([*head, self.fv, target, *values])
        if not parts:
            raise UnknownParameter(f"{param.code}.{chain}")
        return "(" + " OR ".join(parts) + ")", params

    def _has(self, key: str, value: str) -> tuple[str, list[Any]]:
        # _has:SourceType:referenceParam:searchParam=value (search param may itself be a chain or _has)
        pieces = key.split(":", 3)
        if len(pieces) < 4 or self.depth >= 3:
            raise FhirError(400, f"{key}: write _has:Type:reference:parameter=value", "invalid")
        _, source, ref_code, rest = pieces
        source_params = search_params(self.fv).get(source)
        if source_params is None or source_params.get(ref_code, None) is None:
            raise UnknownParameter(key)
        if source_params[ref_code].type != "reference":
            raise FhirError(400, f"{key}: {ref_code} is not a reference parameter", "invalid")
        inner = _Builder(self.fv, source, f"h{self.depth + 1}", self.depth + 1)
        sql, values = inner.condition(rest, value)
        alias = inner.alias
        sub = (
            f"SELECT {alias}.rid FROM resources {alias} WHERE {alias}.fv = ? AND {alias}.rtype = ? "
            f"AND {alias}.deleted = 0 AND {sql}"
        )
        outer = (
            f"{self.alias}.rid IN (SELECT tid FROM idx_ref WHERE fv = ? AND rtype = ? AND param = ? AND ttype = ? "
            f"AND rid IN ({sub}))"
        )
        return outer, [self.fv, source, ref_code, self.rtype, self.fv, source, *values]

    # dates

    def _date_param(self, param: SearchParam, modifier: str, value: str) -> tuple[str, list[Any]]:
        if modifier:
            raise _bad_modifier(f"{param.code}:{modifier}")
        return self._dates(param.code, value, column=False)

    def _dates(self, code: str, value: str, column: bool) -> tuple[str, list[Any]]:
        parts, params = [], []
        for item in _or_values(value):
            prefix, text = ("eq", item)
            if len(item) > 2 and item[:2] in PREFIXES:
                prefix, text = item[:2], item[2:]
            try:
                low, high, _ = date_range(text)
            except ValueError:
                raise FhirError(400, f"{code}={item!r} is not a FHIR date (e.g. ge2020-01-01)", "invalid") from None
            template, values = _date_condition(prefix, low, high)
            if column:
                cond = template.format(lo=f"{self.alias}.updated_us", hi=f"({self.alias}.updated_us + 1000)")
                parts.append(f"({cond})")
                params.extend(values)
            else:
                sql, head = self._in("idx_date", f"param = ? AND ({template.format(lo='lo', hi='hi')})", code)
                parts.append(sql)
                params.extend([*head, *values])
        return "(" + " OR ".join(parts) + ")", params


def _date_condition(prefix: str, low: int, high: int) -> tuple[str, list[Any]]:
    """Condition template on an indexed range [{lo}, {hi}) for a search range [low, high) (FHIR prefix rules)."""
    if prefix == "eq":
        return "{lo} >= ? AND {hi} <= ?", [low, high]
    if prefix == "ne":
        return "{lo} < ? OR {hi} > ?", [low, high]
    if prefix == "gt":
        return "{hi} > ?", [high]
    if prefix == "lt":
        return "{lo} < ?", [low]
    if prefix == "ge":
        return "{hi} > ? OR {lo} >= ?", [high, low]
    if prefix == "le":
        return "{lo} < ? OR {hi} <= ?", [low, high]
    if prefix == "sa":
        return "{lo} >= ?", [high]
    if prefix == "eb":
        return "{hi} <= ?", [low]
    # ap: overlaps the range widened by 10 % of its distance from now (at least a day)
    now = time.time_ns() // 1000
    margin = max(abs(now - low) // 10, 86_400_000_000)
    return "{lo} < ? AND {hi} > ?", [high + margin, low - margin]


def condition(fv: str, rtype: str, key: str, value: str) -> tuple[str, list[Any]]:
    """SQL condition (alias ``r``) for one ``key=value`` search parameter; raises UnknownParameter."""
    return _Builder(fv, rtype, "r").condition(key, value)


# --- sorting and includes ----------------------------------------------------------------------

_SORT_SQL = {
    "string": "(SELECT MIN(s.norm) FROM idx_string s WHERE s.fv = r.fv AND s.rtype = r.rtype AND s.rid = r.rid "
    "AND s.param = ?)",
    "token": "(SELECT MIN(s.code) FROM idx_token s WHERE s.fv = r.fv AND s.rtype = r.rtype AND s.rid = r.rid "
    "AND s.param = ?)",
    "reference": "(SELECT MIN(s.tid) FROM idx_ref s WHERE s.fv = r.fv AND s.rtype = r.rtype AND s.rid = r.rid "
    "AND s.param = ?)",
    "date_asc": "(SELECT MIN(s.lo) FROM idx_date s WHERE s.fv = r.fv AND s.rtype = r.rtype AND s.rid = r.rid "
    "AND s.param = ?)",
    "date_desc": "(SELECT MAX(s.hi) FROM idx_date s WHERE s.fv = r.fv AND s.rtype = r.rtype AND s.rid = r.rid "
    "AND s.param = ?)",
}


def sort_clause(fv: str, rtype: str, item: str) -> tuple[str, list[Any]]:
    descending = item.startswith("-")
    code = item[1:] if descending else item
    direction = " DESC" if descending else " ASC"
    if code == "_id":
        return "r.rid" + direction, []
    if code == "_lastUpdated":
        return "r.updated_us" + direction, []
    param = search_params(fv).get(rtype, {}).get(code)
    if param is None:
        raise UnknownParameter(f"_sort={item}")
    kind = param.type if param.type != "uri" else "token"
    if kind == "date":
        kind = "date_desc" if descending else "date_asc"
    suffix = " DESC NULLS LAST" if descending else " ASC NULLS LAST"
    return _SORT_SQL[kind] + suffix, [code]


def parse_include(fv: str, rtype: str, key: str, value: str) -> Include:
    base, _, modifier = key.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise UnknownParameter(f"{key}={value}")
    reverse = base == "_revinclude"
    pieces = value.split(":")
    if len(pieces) not in (2, 3):
        raise FhirError(400, f"{key}={value!r}: write SourceType:parameter[:TargetType]", "invalid")
    source, code = pieces[0], pieces[1]
    target = pieces[2] if len(pieces) == 3 else None
    iterate = bool(modifier)
    source_params = search_params(fv).get(source)
    if source_params is None:
        raise UnknownParameter(f"{key}={value}")
    if code != "*":
        param = source_params.get(code)
        if param is None or param.type != "reference":
            raise UnknownParameter(f"{key}={value}")
        if target is not None and target not in param.targets:
            raise UnknownParameter(f"{key}={value}")
    if target is not None and target not in RESOURCE_TYPES:
        raise UnknownParameter(f"{key}={value}")
    if not iterate and not reverse and source != rtype:
        raise FhirError(400, f"{key}={value!r}: the source type must be {rtype} (or use {base}:iterate)", "invalid")
    return Include(source, code, target, iterate, reverse)


# --- the whole request --------------------------------------------------------------------------


def parse_search(
    fv: str,
    rtype: str,
    items: list[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
) -> SearchSpec:
    """Parse a search request (query and/or form parameters) into a :class:`SearchSpec`."""
    spec = SearchSpec(fv, rtype, Query(fv, rtype), count=default_count)

    def unknown(name: str) -> None:
        if strict:
            raise FhirError(400, f"unknown or unsupported search parameter {name!r} for {rtype}", "not-supported")
        spec.ignored.append(name)

    for key, value in items:
        if key in FORMAT_PARAMS or key in IGNORED_PARAMS:
            continue
        base = key.split(":", 1)[0]
        if key == "_count":
            try:
                count = int(value)
            except ValueError:
                raise FhirError(400, f"_count={value!r} is not a number", "invalid") from None
            if count < 0:
                raise FhirError(400, "_count cannot be negative", "invalid")
            spec.count = min(count, max_count)
            spec.criteria.append((key, str(spec.count)))
        elif key == "_sort":
            kept = []
            for item in (v.strip() for v in value.split(",")):
                if not item:
                    continue
                try:
                    sql, params = sort_clause(fv, rtype, item)
                except UnknownParameter as error:
                    unknown(str(error))
                    continue
                spec.query.order.append(sql)
                spec.query.order_params.extend(params)
                kept.append(item)
            if kept:
                spec.criteria.append((key, ",".join(kept)))
        elif base in ("_include", "_revinclude"):
            try:
                spec.includes.append(parse_include(fv, rtype, key, value))
                spec.criteria.append((key, value))
            except UnknownParameter as error:
                unknown(str(error))
        elif key == "_summary":
            if value not in SUMMARY_VALUES:
                raise FhirError(400, f"_summary={value!r}: use one of {', '.join(SUMMARY_VALUES)}", "invalid")
            spec.summary = value
            spec.criteria.append((key, value))
        elif key == "_elements":
            spec.elements = [e.strip() for e in value.split(",") if e.strip()]
            spec.criteria.append((key, value))
        elif key == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise FhirError(400, f"_total={value!r}: use none, estimate or accurate", "invalid")
            spec.total = value
            spec.criteria.append((key, value))
        elif key.startswith("_") and base not in ("_id", "_lastUpdated", "_has"):
            unknown(key)
        else:
            try:
                sql, params = condition(fv, rtype, key, value)
            except UnknownParameter as error:
                unknown(str(error))
                continue
            spec.query.add(sql, *params)
            spec.criteria.append((key, value))
    if spec.summary is not None and spec.elements is not None:
        raise FhirError(400, "_summary and _elements cannot be combined", "invalid")
    return spec
