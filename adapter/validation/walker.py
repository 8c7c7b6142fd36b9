"""Walk a JSON resource against the compiled definitions: structure, bindings, invariants, references.

One pass over the instance does all layers, because they all need the element definition of each
node: the walker finds it (JSON name, choice type, backbone, content reference, contained or
Bundle-entry resource), checks the node's shape and primitive format, checks its binding, runs the
node's FHIRPath invariants, and records each ``Reference`` for the reference checks that run when
the enclosing resource or Bundle is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapter.validation.definitions import Constraint, Definitions, Element, TypeDef, load_definitions
from adapter.validation.fhirpath import FhirPathError, Resolver, evaluate
from adapter.validation.issues import Issue
from adapter.validation.terminology import check_binding, check_known_system

MAX_DEPTH = 64
"""Deepest element nesting accepted (FHIR resources need about 15; guards the recursion)."""

VERSION_LABEL = {"4.0": "R4 (4.0.1)", "5.0": "R5 (5.0.0)"}
OTHER_VERSION = {"4.0": "5.0", "5.0": "4.0"}

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_DATE_PARTS = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?(Z|[+-]\d\d:\d\d)?$"
)
_REFERENCE = re.compile(
    r"^(?:(?P<base>https?://.+?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


MAX_ISSUES = 1000
"""Validation of one input stops after this many errors, and lists at most this many warnings (a
50 MB array of broken items would otherwise produce an OperationOutcome larger than the input)."""


class TooDeep(Exception):
    """The instance nests deeper than :data:`MAX_DEPTH`."""


class TooManyIssues(Exception):
    """More than :data:`MAX_ISSUES` errors were found; the rest of the input is not checked."""


@dataclass(slots=True)
class RefRecord:
    value: dict[str, Any]
    targets: tuple[str, ...]
    expression: str
    container: dict[str, Any]
    """The resource holding ``contained`` for ``#id`` references (the outermost non-Bundle resource)."""


@dataclass(slots=True)
class BundleScope:
    bundle: dict[str, Any]
    kind: str | None
    by_url: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_type_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: list[RefRecord] = field(default_factory=list)


@dataclass(slots=True)
class ResourceContext:
    resource: dict[str, Any]
    root: dict[str, Any]
    owner: TypeDef


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class Walker:
    def __init__(self, definitions: Definitions, issues: list[Issue], *, invariants: bool = True) -> None:
        self.defs = definitions
        self.issues = issues
        self.check_invariants = invariants
        """False: structure, bindings and references only (FHIRPath invariants are most of the cost)."""
        self.errors = 0
        self.listed_warnings = 0
        self.unlisted_warnings = 0
        self.regex_cache: dict[str, re.Pattern[str] | None] = {}
        self.bundles: list[BundleScope] = []
        self.loose_refs: list[RefRecord] = []
        self.flagged_codings: set[int] = set()
        self.engine_failures: set[str] = set()

    # -- helpers -----------------------------------------------------------------------------

    def add(self, severity: str, code: str, diagnostics: str, expression: str | None) -> None:
        self.record(Issue(severity, code, diagnostics, expression))

    def record(self, *issues: Issue) -> None:
        for issue in issues:
            if issue.is_error:
                self.errors += 1
            elif self.listed_warnings >= MAX_ISSUES:
                self.unlisted_warnings += 1
                continue
            else:
                self.listed_warnings += 1
            self.issues.append(issue)

    def _other(self) -> Definitions | None:
        try:
            return load_definitions(OTHER_VERSION[self.defs.fhir_version])
        except Exception:  # the other package may be unavailable offline; the hint is optional
            return None

    def _other_version_has(self, container_path: str, key: str) -> bool:
        other = self._other()
        if other is None:
            return False
        root = container_path.split(".", 1)[0]
        typedef = other.types.get(root)
        if typedef is None:
            return False
        if "." not in container_path:
            props = typedef.props
        else:
            element = typedef.elements.get(container_path)
            props = element.props if element and element.props else {}
        return key.lstrip("_") in props

    def _pattern(self, typedef: TypeDef) -> re.Pattern[str] | None:
        if typedef.name not in self.regex_cache:
            # ASCII mode: the regexes are written for XML Schema / Java, where \s is only ASCII
            # whitespace (a no-break space inside a string is legal FHIR).
            self.regex_cache[typedef.name] = re.compile(typedef.regex, re.ASCII) if typedef.regex else None
        return self.regex_cache[typedef.name]

    # -- resources ---------------------------------------------------------------------------

    def resource(self, value: Any, expression: str | None, container: ResourceContext | None, depth: int) -> None:
        where = expression or "(root)"
        if not isinstance(value, dict):
            self.add("error", "structure", f"Expected a resource (JSON object), found {_json_type(value)}", expression)
            return
        resource_type = value.get("resourceType")
        if not isinstance(resource_type, str):
            self.add("error", "required", "The resource has no resourceType", expression)
            return
        typedef = self.defs.types.get(resource_type)
        expr = expression or resource_type
        if typedef is None or typedef.kind != "resource" or typedef.abstract:
            label = VERSION_LABEL[self.defs.fhir_version]
            other = self._other()
            hint = ""
            if other is not None and resource_type in other.resource_types:
                hint = f" (it is a resource type of FHIR {VERSION_LABEL[other.fhir_version]})"
            self.add("error", "structure", f"Unknown resource type '{resource_type}' in FHIR {label}{hint}", where)
            return
        # %rootResource of a contained resource is its container; a Bundle entry is its own root.
        root = container.root if container is not None else value
        ctx = ResourceContext(resource=value, root=root, owner=typedef)
        scope = None
        if resource_type == "Bundle":
            scope = self._open_bundle(value)
        self.object(value, typedef.props, typedef.required, resource_type, expr, ctx, depth, is_resource=True)
        constraints = typedef.constraints
        if container is not None:
            # dom-6 (narrative) is for resources that stand alone: a contained resource is
            # presented through its container's narrative.
            constraints = tuple(c for c in constraints if c.key != "dom-6")
        self.invariants(constraints, value, resource_type, expr, ctx)
        if scope is not None:
            self.bundles.pop()
            from adapter.validation.references import check_bundle  # circular at import time

            check_bundle(self, scope, expr)

    def _open_bundle(self, bundle: dict[str, Any]) -> BundleScope:
        kind = bundle.get("type") if isinstance(bundle.get("type"), str) else None
        scope = BundleScope(bundle=bundle, kind=kind)
        entries = bundle.get("entry")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                scope.by_url.setdefault(full_url, resource)
                match = _REFERENCE.match(full_url)
                if match:
                    scope.by_type_id.setdefault(f"{match['type']}/{match['id']}", resource)
            if isinstance(resource.get("resourceType"), str) and isinstance(resource.get("id"), str):
                scope.by_type_id.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
        self.bundles.append(scope)
        return scope

    def resolver(self, ctx: ResourceContext) -> Resolver:
        bundles = list(self.bundles)

        def resolve(reference: str) -> dict[str, Any] | None:
            if reference.startswith("#"):
                if reference == "#":
                    return ctx.root
                for item in ctx.root.get("contained") or []:
                    if isinstance(item, dict) and item.get("id") == reference[1:]:
                        return item
                return None
            for scope in reversed(bundles):
                found = resolve_in_bundle(scope, reference)
                if found is not None:
                    return found
            return None

        return resolve

    # -- objects -----------------------------------------------------------------------------

    def object(
        self,
        obj: Any,
        props: dict[str, tuple[Element, str]],
        required: tuple[Element, ...],
        def_path: str,
        expr: str,
        ctx: ResourceContext,
        depth: int,
        *,
        is_resource: bool = False,
    ) -> bool:
        """Check one JSON object against the properties of its definition; False when it is not an object."""
        if depth > MAX_DEPTH:
            raise TooDeep(expr)
        if self.errors > MAX_ISSUES:
            raise TooManyIssues(expr)
        if not isinstance(obj, dict):
            self.add("error", "structure", f"Expected an object for {def_path}, found {_json_type(obj)}", expr)
            return False
        if not is_resource and all(key == "id" for key in obj):
            self.add(
                "error", "invariant", "ele-1: All FHIR elements must have a @value or children (empty element)", expr
            )
        choices: dict[str, list[str]] = {}
        for key, value in obj.items():
            if is_resource and key == "resourceType":
                continue
            name = key[1:] if key.startswith("_") else key
            entry = props.get(name)
            if entry is None:
                self._unknown(def_path, key, expr)
                continue
            element, type_code = entry
            if element.choice:
                keys = choices.setdefault(element.path, [])
                if name not in keys:
                    keys.append(name)
            if key.startswith("_"):
                typedef = self.defs.types.get(type_code)
                if typedef is None or typedef.kind != "primitive-type":
                    self._unknown(def_path, key, expr)
                    continue
                self._primitive_extension(value, obj.get(name), element, typedef, f"{expr}.{name}", ctx, depth)
                continue
            self.property(key, value, obj.get("_" + key), element, type_code, f"{expr}.{key}", ctx, depth)
        for path, keys in choices.items():
            if len(keys) > 1:
                self.add(
                    "error",
                    "structure",
                    f"{path} takes one type only, but {', '.join(keys)} are all present",
                    f"{expr}.{keys[1]}",
                )
        for element in required:
            count = _count(obj, element)
            if count < element.min:
                name = element.name + ("[x]" if element.choice else "")
                self.add(
                    "error",
                    "required",
                    f"{element.path}: minimum required = {element.min}, but only found {count}",
                    f"{expr}.{name}" if count == 0 else expr,
                )
        return True

    def _unknown(self, def_path: str, key: str, expr: str) -> None:
        label = VERSION_LABEL[self.defs.fhir_version]
        if self._other_version_has(def_path, key):
            other = VERSION_LABEL[OTHER_VERSION[self.defs.fhir_version]]
            message = f"Unknown element '{key}' in {def_path}: it is an element of FHIR {other}, not of FHIR {label}"
        else:
            message = f"Unknown element '{key}' in {def_path} (FHIR {label})"
        self.add("error", "structure", message, f"{expr}.{key}")

    def property(
        self,
        key: str,
        value: Any,
        extension_part: Any,
        element: Element,
        type_code: str,
        expr: str,
        ctx: ResourceContext,
        depth: int,
    ) -> None:
        if value is None:
            self.add("error", "structure", f"null is not a valid value for {element.path}", expr)
            return
        if isinstance(value, list):
            if not value:
                self.add("error", "structure", f"{element.path}: an array must not be empty", expr)
                return
            if element.max == 1:
                self.add(
                    "error", "structure", f"{element.path} has at most one value: it must not be a JSON array", expr
                )
            elif element.max > 1 and len(value) > element.max:
                self.add(
                    "error",
                    "structure",
                    f"{element.path}: maximum allowed = {element.max}, but found {len(value)}",
                    expr,
                )
            ext_list = extension_part if isinstance(extension_part, list) else None
            for index, item in enumerate(value):
                item_expr = f"{expr}[{index}]"
                if item is None:
                    paired = ext_list[index] if ext_list is not None and index < len(ext_list) else None
                    if paired is None:
                        self.add("error", "structure", f"null is not a valid value for {element.path}", item_expr)
                    continue
                self.value(item, element, type_code, item_expr, ctx, depth + 1)
            return
        if element.max != 1:
            self.add("error", "structure", f"{element.path} repeats: its value must be a JSON array", expr)
        self.value(value, element, type_code, expr, ctx, depth + 1)

    def value(self, value: Any, element: Element, type_code: str, expr: str, ctx: ResourceContext, depth: int) -> None:
        if element.content_ref:
            target = ctx.owner.elements.get(element.content_ref)
            if target is None or target.props is None:
                return
            if self.object(value, target.props, target.required, target.path, expr, ctx, depth):
                self.invariants(target.constraints, value, target.path, expr, ctx)
            return
        if element.props is not None:
            if self.object(value, element.props, element.required, element.path, expr, ctx, depth):
                self.invariants(element.constraints, value, element.path, expr, ctx)
            return
        typedef = self.defs.types.get(type_code)
        if typedef is None:
            return
        if typedef.kind == "resource":
            # Only contained resources live inside their container; Bundle entries and
            # Parameters resources are resources of their own.
            self.resource(value, expr, ctx if element.name == "contained" else None, depth + 1)
            return
        if typedef.kind == "primitive-type":
            if self.primitive(value, typedef, element, expr) and element.binding:
                self.record(*check_binding(self.defs, element.binding, value, type_code, expr, self.flagged_codings))
            if element.constraints:
                self.invariants(element.constraints, value, type_code, expr, ctx)
            return
        inner = ResourceContext(ctx.resource, ctx.root, typedef)
        if not self.object(value, typedef.props, typedef.required, type_code, expr, inner, depth):
            return
        constraints = _merge(typedef.constraints, element.constraints, *(self._profile(p) for p in element.profiles))
        self.invariants(constraints, value, type_code, expr, ctx)
        if element.binding:
            self.record(*check_binding(self.defs, element.binding, value, type_code, expr, self.flagged_codings))
        if type_code == "Coding" and id(value) not in self.flagged_codings:
            issue = check_known_system(self.defs, value, expr)
            if issue is not None:
                self.record(issue)
        elif type_code == "Reference":
            record = RefRecord(value, element.targets, expr, ctx.root)
            (self.bundles[-1].refs if self.bundles else self.loose_refs).append(record)

    def _profile(self, name: str) -> tuple[Constraint, ...]:
        typedef = self.defs.types.get(name)
        return typedef.constraints if typedef is not None else ()

    # -- primitives --------------------------------------------------------------------------

    def primitive(self, value: Any, typedef: TypeDef, element: Element, expr: str) -> bool:
        """Check a primitive's JSON type, regex and calendar; True when the value is well-formed."""
        kind = typedef.json_kind
        name = typedef.name
        if kind == "boolean":
            if not isinstance(value, bool):
                return self._bad_type(element, name, "a JSON boolean", value, expr)
            return True
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return self._bad_type(element, name, "a JSON integer number", value, expr)
            if not _INT32[0] <= value <= _INT32[1]:
                self.add("error", "value", f"{element.path}: {value} is outside the 32-bit range of {name}", expr)
                return False
            pattern = self._pattern(typedef)
            if pattern is not None and not pattern.fullmatch(str(value)):
                self.add("error", "value", f"{element.path}: {value} is not a valid {name}", expr)
                return False
            return True
        if kind == "decimal":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return self._bad_type(element, name, "a JSON number", value, expr)
            return True
        if not isinstance(value, str):
            return self._bad_type(element, name, "a JSON string", value, expr)
        if value == "":
            self.add(
                "error", "value", f"{element.path}: empty strings are not allowed (omit the element instead)", expr
            )
            return False
        if name == "xhtml":
            return True  # checked by the Narrative invariants (htmlChecks)
        pattern = self._pattern(typedef)
        if pattern is not None and not pattern.fullmatch(value):
            shown = value if len(value) <= 80 else value[:77] + "..."
            self.add("error", "value", f"{element.path}: '{shown}' is not a valid {name}", expr)
            return False
        if name == "integer64":
            if not _INT64[0] <= int(value) <= _INT64[1]:
                self.add("error", "value", f"{element.path}: {value} is outside the 64-bit range", expr)
                return False
        elif name in ("date", "dateTime", "instant"):
            problem = _calendar_problem(value)
            if problem:
                self.add("error", "value", f"{element.path}: '{value}' is not a valid {name}: {problem}", expr)
                return False
        elif len(value) > 1_048_576:
            self.add("error", "value", f"{element.path}: a string may hold at most 1 MB", expr)
            return False
        return True

    def _bad_type(self, element: Element, name: str, expected: str, value: Any, expr: str) -> bool:
        self.add(
            "error",
            "structure",
            f"{element.path} is a {name}: expected {expected}, found {_json_type(value)}",
            expr,
        )
        return False

    def _primitive_extension(
        self,
        part: Any,
        value: Any,
        element: Element,
        typedef: TypeDef,
        expr: str,
        ctx: ResourceContext,
        depth: int,
    ) -> None:
        props = {k: v for k, v in typedef.props.items() if k != "value"}
        if isinstance(part, list):
            if not isinstance(value, list) and value is not None:
                self.add("error", "structure", f"_{element.name} is an array but {element.name} is not", expr)
            elif isinstance(value, list) and len(value) != len(part):
                self.add("error", "structure", f"_{element.name} and {element.name} differ in length", expr)
            for index, item in enumerate(part):
                if item is None:
                    if not isinstance(value, list) or index >= len(value) or value[index] is None:
                        self.add(
                            "error", "structure", "null in both the value and the extension array", f"{expr}[{index}]"
                        )
                    continue
                self.object(item, props, (), typedef.name, f"{expr}[{index}]", ctx, depth + 1)
            if element.max == 1:
                self.add(
                    "error", "structure", f"{element.path} has at most one value: it must not be a JSON array", expr
                )
            return
        if part is None:
            self.add("error", "structure", f"null is not a valid value for _{element.name}", expr)
            return
        self.object(part, props, (), typedef.name, expr, ctx, depth + 1)

    # -- invariants --------------------------------------------------------------------------

    def invariants(
        self, constraints: tuple[Constraint, ...], focus: Any, focus_type: str, expr: str, ctx: ResourceContext
    ) -> None:
        if not self.check_invariants:
            return
        for constraint in constraints:
            key = _memo_key(self.defs.fhir_version, constraint.expression, focus, focus_type)
            verdict = _VERDICTS.get(key) if key is not None else None
            if verdict is None:
                try:
                    result = evaluate(
                        self.defs, constraint.expression, focus, focus_type, ctx.resource, ctx.root, self.resolver(ctx)
                    )
                    verdict = result != [False]
                except FhirPathError as error:
                    verdict = str(error)[:200]
                if key is not None:
                    if len(_VERDICTS) > _MEMO_SIZE:
                        _VERDICTS.clear()
                    _VERDICTS[key] = verdict
            if isinstance(verdict, str):
                self.add(
                    "warning",
                    "not-supported",
                    f"{constraint.key}: the invariant could not be evaluated ({verdict}); it was not checked",
                    expr,
                )
                continue
            if not verdict:
                severity = "error" if constraint.severity == "error" else "warning"
                self.add(severity, "invariant", f"{constraint.key}: {constraint.human}", expr)


_IMPURE = re.compile(r"%resource|%rootResource|resolve\(|now\(|today\(|timeOfDay\(")
_WHOLE_FOCUS = re.compile(r"children\(|descendants\(|repeat\(|%context|\$this|trace\(")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_READS: dict[str, frozenset[str] | None] = {}
"""Per pure expression: the names it can navigate (None: it may read the whole focus)."""
_VERDICTS: dict[tuple[str, str, str, bytes], bool | str] = {}
_MEMO_SIZE = 200_000


def _reads(expression: str) -> frozenset[str] | bool | None:
    """False for an impure expression; else the names it may read from the focus (None: all)."""
    if expression not in _READS:
        if _IMPURE.search(expression):
            _READS[expression] = frozenset({"<impure>"})
        elif _WHOLE_FOCUS.search(expression):
            _READS[expression] = None
        else:
            _READS[expression] = frozenset(_NAME.findall(_STRING.sub("", expression.replace("`", ""))))
    names = _READS[expression]
    if names is not None and "<impure>" in names:
        return False
    return names


def _memo_key(version: str, expression: str, focus: Any, focus_type: str) -> tuple[str, str, str, bytes] | None:
    """Cache key for an invariant whose result depends only on the focus node and its type.

    Converted registries repeat the same small nodes (codings, periods, extensions) thousands of
    times; expressions that look outside the focus (%resource, resolve(), the clock) are never
    cached.  For a JSON object the key holds only the properties the expression can navigate to
    (its identifiers, choice-type variants and ``_`` extensions included), so e.g. ``dom-2``
    (``contained.contained.empty()``) is evaluated once for all resources without ``contained``.
    """
    names = _reads(expression)
    if names is False or not isinstance(focus, dict | str | list):
        return None
    if isinstance(focus, dict) and names is not None:
        focus = {
            k: v
            for k, v in focus.items()
            if k.lstrip("_") in names or any(k.startswith(n) and k[len(n) : len(n) + 1].isupper() for n in names)
        }
    try:
        return version, expression, focus_type, orjson.dumps(focus)
    except (TypeError, orjson.JSONEncodeError):
        return None


def resolve_in_bundle(scope: BundleScope, reference: str) -> dict[str, Any] | None:
    found = scope.by_url.get(reference)
    if found is not None:
        return found
    match = _REFERENCE.match(reference)
    if match:
        return scope.by_type_id.get(f"{match['type']}/{match['id']}") if not match["base"] else None
    return None


def _merge(*groups: tuple[Constraint, ...]) -> tuple[Constraint, ...]:
    seen: set[str] = set()
    out = []
    for group in groups:
        for constraint in group:
            if constraint.key not in seen:
                seen.add(constraint.key)
                out.append(constraint)
    return tuple(out)


def _count(obj: dict[str, Any], element: Element) -> int:
    if element.choice:
        return sum(
            1
            for t in element.types
            if obj.get(element.name + _cap(t)) is not None or "_" + element.name + _cap(t) in obj
        )
    value = obj.get(element.name)
    if value is None:
        value = obj.get("_" + element.name)
    if value is None:
        return 0
    return len(value) if isinstance(value, list) else 1


def _calendar_problem(value: str) -> str | None:
    match = _DATE_PARTS.match(value)
    if not match:
        return None  # the regex already decided; nothing more to say
    year, month, day, time_part, _, _, _, _, zone = match.groups()
    if month and day and int(day) > _days_in(int(year), int(month)):
        return f"{year}-{month} has no day {day}"
    if time_part and not zone:
        return "a time zone is required when a time is given"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
