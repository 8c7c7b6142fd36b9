"""FHIRPath evaluation of the invariants of the core definitions, on top of fhirpathpy.

fhirpathpy implements the FHIRPath language but not the FHIR-specific functions the core
invariants use.  This module adds them (``hasValue``, ``htmlChecks``, ``resolve``, ``memberOf``,
``lowBoundary``, ``highBoundary``, ``comparable``) through fhirpathpy's user-invocation table and
sets the FHIR environment variables (``%resource``, ``%rootResource``, ``%context``, ``%ucum``).

fhirpathpy keeps some state in module globals (its type model, a ``now()`` cache), so evaluation
is serialised with a lock; an expression is parsed once per process.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from fhirpathpy.engine import do_eval
from fhirpathpy.engine.invocations import invocation_registry as base_invocation_registry
from fhirpathpy.engine.invocations.constants import constants
from fhirpathpy.engine.invocations.filtering import of_type_fn
from fhirpathpy.engine.invocations.navigation import descendants
from fhirpathpy.engine.nodes import FP_DateTime, FP_Quantity, ResourceNode, TypeInfo
from fhirpathpy.engine.util import get_data
from fhirpathpy.parser import parse
from lxml import etree

from adapter.validation.definitions import Definitions

XHTML_NS = "http://www.w3.org/1999/xhtml"

Resolver = Callable[[str], dict[str, Any] | None]
"""Turns a reference string into the resource it points to (or None)."""


class FhirPathError(Exception):
    """The engine could not parse or evaluate an expression (not a verdict on the data)."""


@lru_cache(maxsize=4096)
def _parse(expression: str) -> dict[str, Any] | str:
    # A failure is cached as its message (lru_cache does not cache exceptions), and ANTLR's
    # error reporting, which prints to stdout, is captured.
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return parse(expression)
    except Exception as error:  # the ANTLR front end raises assorted types
        return f"cannot parse: {error or sink.getvalue().strip()}"


def compile_expression(expression: str) -> dict[str, Any]:
    """The parse tree of an expression; raises :class:`FhirPathError` when it does not parse."""
    parsed = _parse(expression)
    if isinstance(parsed, str):
        raise FhirPathError(parsed)
    return parsed


def _primitive(value: Any) -> bool:
    return isinstance(value, str | bool | int | float | Decimal | FP_DateTime)


def _has_value(ctx: dict[str, Any], coll: list[Any]) -> list[bool]:
    return [len(coll) == 1 and _primitive(get_data(coll[0]))]


# The XHTML subset the FHIR narrative allows (Narrative datatype, "xhtml" rules): these elements,
# no event or script attributes, no external references other than plain links and images.
_ALLOWED_HTML = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "ul",
        "var",
    ]
)
_HTML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def html_problem(div: str) -> str | None:
    """Why an xhtml narrative ``div`` breaks the FHIR narrative rules, or None when it is fine."""
    if "<!DOCTYPE" in div or "<!ENTITY" in div:
        return "the narrative must not declare a DOCTYPE or entities"
    try:
        root = etree.fromstring(div.encode("utf-8"), _HTML_PARSER)
    except etree.XMLSyntaxError as error:
        return f"the narrative is not well-formed XHTML: {error}"
    if root.tag != f"{{{XHTML_NS}}}div":
        return "the narrative root must be an XHTML <div> (namespace http://www.w3.org/1999/xhtml)"
    has_content = False
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue  # comments and processing instructions
        namespace, _, local = node.tag[1:].partition("}") if node.tag.startswith("{") else ("", "", node.tag)
        if namespace != XHTML_NS or local not in _ALLOWED_HTML:
            return f"element <{local}> is not allowed in a narrative"
        for attribute in node.attrib:
            name = attribute.rsplit("}", 1)[-1].lower()
            if name.startswith("on") or name in ("script", "formaction"):
                return f"attribute {name} is not allowed in a narrative"
        if (
            local == "img"
            or (node.text and node.text.strip())
            or (node.tail and node.tail.strip() and node is not root)
        ):
            has_content = True
    if not has_content:
        return "the narrative has no content"
    return None


def _html_checks(ctx: dict[str, Any], coll: list[Any]) -> list[bool]:
    return [all(isinstance(get_data(x), str) and html_problem(get_data(x)) is None for x in coll)]


def _resolve(ctx: dict[str, Any], coll: list[Any]) -> list[Any]:
    resolver: Resolver | None = ctx.get("resolver")
    out = []
    for item in coll:
        data = get_data(item)
        reference = data.get("reference") if isinstance(data, dict) else data
        if not isinstance(reference, str) or resolver is None:
            continue
        target = resolver(reference)
        if target is not None:
            out.append(ResourceNode.create_node(target, target.get("resourceType")))
    return out


def _member_of(ctx: dict[str, Any], coll: list[Any], url: str) -> list[bool]:
    definitions: Definitions = ctx["definitions"]
    content = definitions.value_sets.get(url.split("|", 1)[0])
    if content is None or not content.complete:
        raise FhirPathError(f"memberOf: value set {url} cannot be expanded from the core package")
    if len(coll) != 1:
        return []
    data = get_data(coll[0])
    if isinstance(data, str):
        return [content.contains(None, data)]
    if isinstance(data, dict):
        codings = data.get("coding") if "coding" in data else [data]
        return [
            any(isinstance(c, dict) and content.contains(c.get("system"), str(c.get("code"))) for c in codings or [])
        ]
    return []


_DATE_PARTS = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?)?(Z|[+-]\d{2}:\d{2})?$"
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return _MONTH_DAYS[month - 1]


def _date_boundary(text: str, high: bool) -> FP_DateTime | None:
    match = _DATE_PARTS.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    month = month or ("12" if high else "01")
    day = day or (f"{_days_in(int(year), int(month)):02d}" if high else "01")
    hour = hour or ("23" if high else "00")
    minute = minute or ("59" if high else "00")
    second = second or ("59" if high else "00")
    if fraction is None or len(fraction) < 3:
        fraction = (fraction or "").ljust(3, "9" if high else "0")
    # Without a zone the instant is uncertain by the full range of zones (FHIRPath boundary rules).
    zone = zone or ("-12:00" if high else "+14:00")
    return FP_DateTime(f"{year}-{month}-{day}T{hour}:{minute}:{second}.{fraction}{zone}")


def _decimal_boundary(value: Decimal, high: bool) -> Decimal:
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    half = Decimal(5) * Decimal(10) ** -(places + 1)
    return value + half if high else value - half


def _boundary(high: bool) -> Callable[[dict[str, Any], list[Any]], list[Any]]:
    def boundary(ctx: dict[str, Any], coll: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in coll:
            data = get_data(item)
            if isinstance(data, FP_DateTime):
                data = str(data)
            if isinstance(data, str):
                result = _date_boundary(data, high)
                if result is not None:
                    out.append(result)
            elif isinstance(data, bool):
                continue
            elif isinstance(data, int | Decimal):
                out.append(_decimal_boundary(Decimal(data), high))
            elif isinstance(data, dict) and isinstance(data.get("value"), int | float | Decimal):
                unit = data.get("code") or data.get("unit") or "1"
                value = _decimal_boundary(Decimal(str(data["value"])), high)
                out.append(FP_Quantity(value, f"'{unit}'"))
        return out

    return boundary


def _comparable(ctx: dict[str, Any], coll: list[Any], other: list[Any]) -> list[bool]:
    if len(coll) != 1 or len(other) != 1:
        return []
    left, right = get_data(coll[0]), get_data(other[0])
    if isinstance(left, FP_Quantity) and isinstance(right, FP_Quantity):
        # Identical units, or two UCUM time units; other conversions are not attempted, so a
        # range in other mixed units is never reported as inverted.
        units = (str(left.unit).strip("'"), str(right.unit).strip("'"))
        return [units[0] == units[1] or (units[0] in _UCUM_SECONDS and units[1] in _UCUM_SECONDS)]
    return [type(left) is type(right)]


def _as_quantity(value: Any) -> tuple[Decimal, str] | None:
    if isinstance(value, FP_Quantity):
        return Decimal(str(value.value)), str(value.unit).strip("'")
    if not isinstance(value, dict) or "resourceType" in value:
        return None
    number = value.get("value")
    if isinstance(number, int | float | Decimal) and not isinstance(number, bool):
        return Decimal(str(number)), str(value.get("code") or value.get("unit") or "1")
    return None


_UCUM_SECONDS = {
    "s": Decimal(1),
    "min": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
    "wk": Decimal(604800),
    "a": Decimal("31557600"),  # UCUM: a = 365.25 d (Julian year)
    "mo": Decimal("2629800"),  # UCUM: mo = a / 12
}
"""UCUM time units (the units of ages and durations), in seconds, as UCUM defines them."""


def _quantity_aware(op: str) -> dict[str, Any]:
    """Wrap a comparison operator so it also orders two Quantities (fhirpathpy cannot).

    Quantities in the same unit compare by value; different units raise, because converting
    UCUM units is beyond this engine and guessing would report false errors.
    """
    original = base_invocation_registry[op]["fn"]
    compare = {"<": Decimal.__lt__, "<=": Decimal.__le__, ">": Decimal.__gt__, ">=": Decimal.__ge__}[op]

    def fn(ctx: dict[str, Any], left: list[Any], right: list[Any]) -> Any:
        if len(left) == 1 and len(right) == 1:
            a, b = _as_quantity(get_data(left[0])), _as_quantity(get_data(right[0]))
            if a is not None and b is not None:
                if a[1] == b[1]:
                    return [compare(a[0], b[0])]
                if a[1] in _UCUM_SECONDS and b[1] in _UCUM_SECONDS:
                    return [compare(a[0] * _UCUM_SECONDS[a[1]], b[0] * _UCUM_SECONDS[b[1]])]
                raise FhirPathError(f"cannot compare quantities in {a[1]!r} and {b[1]!r}")
        return original(ctx, left, right)

    return {"fn": fn, "arity": {2: ["Any", "Any"]}, "nullable": True}


_TYPE_VERDICTS: dict[tuple[int, str, str, str | None], bool] = {}


def _of_type(ctx: dict[str, Any], coll: list[Any], type_info: Any) -> list[Any]:
    """``ofType()``, with the verdict per (node type path, wanted type) memoised.

    fhirpathpy recomputes the type of every node by walking the model, which made dom-3
    (``%resource.descendants().as(canonical)``, per contained resource) dominate validation time.
    """
    model = ctx.get("model")
    TypeInfo.model = model
    out = []
    for item in coll:
        path = item.path if isinstance(item, ResourceNode) else None
        if path is None:
            if of_type_fn(ctx, [item], type_info):
                out.append(item)
            continue
        key = (id(model), path, type_info.name, type_info.namespace)
        verdict = _TYPE_VERDICTS.get(key)
        if verdict is None:
            verdict = _TYPE_VERDICTS[key] = bool(of_type_fn(ctx, [item], type_info))
        if verdict:
            out.append(item)
    return out


def _lenient_as(ctx: dict[str, Any], coll: list[Any], type_info: Any) -> list[Any]:
    # The R4 invariants (dom-3) apply as() to whole collections, as FHIRPath 1.x allowed;
    # fhirpathpy insists on a singleton, so filter like ofType() does.
    return _of_type(ctx, coll, type_info)


def _cached_descendants(ctx: dict[str, Any], coll: list[Any]) -> list[Any]:
    # dom-3 walks %resource.descendants() four times for every contained resource; the tree does
    # not change during one evaluation, so the walk is memoised for its duration.
    cache: dict[tuple[int, ...], list[Any]] = ctx.setdefault("_descendants", {})
    key = tuple(id(get_data(x)) for x in coll)
    if key not in cache:
        cache[key] = descendants(ctx, coll)
    return cache[key]


_EXTRA_FUNCTIONS: dict[str, dict[str, Any]] = {
    "descendants": {"fn": _cached_descendants},
    "as": {"fn": _lenient_as, "arity": {1: ["TypeSpecifier"]}},
    "ofType": {"fn": _of_type, "arity": {1: ["TypeSpecifier"]}},
    **{op: _quantity_aware(op) for op in ("<", "<=", ">", ">=")},
    "hasValue": {"fn": _has_value},
    "htmlChecks": {"fn": _html_checks},
    "resolve": {"fn": _resolve},
    "memberOf": {"fn": _member_of, "arity": {1: ["String"]}},
    "lowBoundary": {"fn": _boundary(high=False), "arity": {0: [], 1: ["Integer"]}},
    "highBoundary": {"fn": _boundary(high=True), "arity": {0: [], 1: ["Integer"]}},
    "comparable": {"fn": _comparable, "arity": {1: ["Any"]}},
}
# fhirpathpy passes macro-style parameters positionally; lowBoundary(precision) ignores it.
for _name in ("lowBoundary", "highBoundary"):
    _fn = _EXTRA_FUNCTIONS[_name]["fn"]
    _EXTRA_FUNCTIONS[_name]["fn"] = lambda ctx, coll, *_, __fn=_fn: __fn(ctx, coll)

_LOCK = threading.RLock()


def evaluate(
    definitions: Definitions,
    expression: str,
    focus: Any,
    focus_type: str,
    resource: dict[str, Any] | None,
    root_resource: dict[str, Any] | None,
    resolver: Resolver | None = None,
) -> list[Any]:
    """Evaluate ``expression`` on ``focus`` (a JSON node whose FHIR type path is ``focus_type``).

    Raises :class:`FhirPathError` when the expression does not parse or the engine fails.
    """
    parsed = compile_expression(expression)
    node = ResourceNode.create_node(focus, focus_type)
    with _LOCK:
        constants.reset()
        TypeInfo.model = definitions.fhirpath_model
        ctx = {
            "dataRoot": [node],
            "vars": {
                "context": node,
                "resource": resource,
                "rootResource": root_resource,
                "ucum": "http://unitsofmeasure.org",
            },
            "model": definitions.fhirpath_model,
            "userInvocationTable": _EXTRA_FUNCTIONS,
            "definitions": definitions,
            "resolver": resolver,
            "traceFn": lambda *args: None,
        }
        try:
            result = do_eval(ctx, [node], parsed["children"][0])
        except RecursionError as error:
            raise FhirPathError("expression nests too deeply for the engine") from error
        except Exception as error:  # fhirpathpy raises bare Exceptions for unsupported cases
            raise FhirPathError(f"{type(error).__name__}: {error}") from error
    return [get_data(x) for x in result] if isinstance(result, list) else [get_data(result)]
