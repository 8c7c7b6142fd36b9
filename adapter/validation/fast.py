"""A compiled yes/no structural check, for bulk runs: ``accepts(resource)`` in pydantic-core (Rust).

The structure tier of the walker (:mod:`.walker` without FHIRPath invariants) costs about 2 ms
per converted study in Python, as much as the conversion itself.  This module compiles the same
definitions into one pydantic-core schema per resource type (typed dicts that forbid unknown
keys, strict JSON types, cardinalities, the primitives' regexes, calendar checks, required
bindings, reference forms and target types) and answers only "no error-level issue?".

Where a check needs Python (references, calendar days, ele-1 on elements without a required
part), a Rust-only form that accepts the usual values comes first in a left-to-right union and the
Python-checked form only behind it, so converter output rarely leaves Rust.

It is built to be *at least as strict* as the walker, never looser: when it says yes, the walker
(``invariants=False``) reports no error; when it says no, or meets something it does not model
(contained resources, arrays of primitive extensions, ``#`` references), the caller runs the
walker, which says exactly what is wrong and where.  The mutation suite checks that direction on
every mutation.  One limit is not modelled: the walker's nesting guard (``MAX_DEPTH``) is a guard
against hostile input, which converter output, whose shape the mappings fix, cannot reach.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from pydantic_core import CoreSchema, SchemaError, SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from adapter.validation.definitions import Binding, Definitions, Element, TypeDef, load_definitions
from adapter.validation.references import check_reference
from adapter.validation.terminology import check_binding
from adapter.validation.walker import _INT32, _INT64, RefRecord, Walker, _calendar_problem

_ANY_NON_EMPTY = ("^[\\s\\S]+$",)
"""Regexes that every non-empty string meets (R5 ``string`` and ``markdown``): no regex call needed."""


_ASCII_CLASSES = {
    "s": r"[\t\n\x0B\x0C\r ]",
    "S": r"[^\t\n\x0B\x0C\r ]",
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": "[0-9A-Za-z_]",
    "W": "[^0-9A-Za-z_]",
}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def ascii_classes(regex: str) -> str:
    """``regex`` with ``\\s``, ``\\d``, ``\\w`` (and negations) as the explicit ASCII classes Python's
    ``re.ASCII`` gives them; inside ``[...]`` they become nested classes, which Rust's engine takes."""
    return _ESCAPE.sub(lambda m: _ASCII_CLASSES.get(m[1], m[0]), regex)


class _Reject(ValueError):
    """Raised inside the schema's Python checks: the walker must look at this resource."""


def _fail(_: Any) -> Any:
    raise _Reject("not modelled by the fast check")


_NEVER = cs.no_info_plain_validator_function(_fail)


def _non_empty(value: dict[str, Any]) -> dict[str, Any]:
    # ele-1 as the walker applies it: an element needs more than an id.
    if len(value) > 1 or (value and "id" not in value):
        return value
    raise _Reject("empty element")


class _Compiler:
    def __init__(self, definitions: Definitions) -> None:
        self.defs = definitions
        self.refs: dict[str, CoreSchema] = {}

    # -- objects -------------------------------------------------------------------------------

    def _ref(self, key: str, build: Callable[[], CoreSchema]) -> CoreSchema:
        if key not in self.refs:
            self.refs[key] = _NEVER  # placeholder while building: recursion lands on the reference
            self.refs[key] = {**build(), "ref": key}  # type: ignore[typeddict-item]
        return cs.definition_reference_schema(key)

    def object(
        self,
        props: dict[str, tuple[Element, str]],
        owner: TypeDef,
        *,
        resource_type: str | None = None,
        drop_value: bool = False,
        overrides: dict[str, CoreSchema] | None = None,
        usual: tuple[str, ...] = (),
    ) -> CoreSchema:
        fields: dict[str, cs.TypedDictField] = {}
        groups: dict[str, list[str]] = {}
        required_groups: set[str] = set()
        for key, (element, type_code) in props.items():
            if drop_value and key == "value":
                continue
            schema = overrides[key] if overrides and key in overrides else self.property(element, type_code, owner)
            fields[key] = cs.typed_dict_field(schema, required=element.min >= 1 and not element.choice)
            typedef = self.defs.types.get(type_code)
            if typedef is not None and typedef.kind == "primitive-type":
                # A primitive's extension part: one object for a single value; arrays of them are
                # rare and left to the walker.
                extension_part = self._ref(
                    f"_:{type_code}", lambda t=typedef: self.object(t.props, t, drop_value=True, usual=("extension",))
                )
                fields["_" + key] = cs.typed_dict_field(extension_part if element.max == 1 else _NEVER, required=False)
            if element.choice:
                groups.setdefault(element.path, []).append(key)
                if element.min >= 1:
                    required_groups.add(element.path)
        if resource_type is not None:
            fields["resourceType"] = cs.typed_dict_field(cs.literal_schema([resource_type]), required=True)
        # A required (non-choice) field other than id already makes the object non-empty.
        required_count = sum(1 for k, f in fields.items() if f.get("required") and k not in ("id", "resourceType"))
        exclusive = dict(groups)
        wide = max(groups, key=lambda p: len(groups[p]), default=None)
        plain: list[CoreSchema] = []
        if wide is not None and len(groups[wide]) > _WIDE_CHOICE:
            schema = _one_type_of(fields, groups[wide])
            del exclusive[wide]  # "at most one type" is the union's job for this element
        else:
            schema = cs.typed_dict_schema(fields, extra_behavior="forbid", total=False)
            if len(exclusive) == 1 and required_groups == set(exclusive):
                # One required choice element (Group.characteristic.value[x]): a typed dict per
                # type, that type's key required and the others unknown, says it all in Rust.
                names = next(iter(exclusive.values()))
                plain = [_requiring(_without(schema, [n for n in names if n != name]), name) for name in names]
        check = _object_check(
            [tuple(names + ["_" + n for n in names]) for names in exclusive.values()],
            [tuple(groups[p] + ["_" + n for n in groups[p]]) for p in required_groups],
            empty_allowed=resource_type is not None or required_count > 0 or bool(required_groups),
            fixed_keys=required_count + (resource_type is not None),
        )
        if check is None:
            return schema
        if check is _non_empty and schema["type"] == "typed-dict":
            # An element with no required part: requiring the one it usually has makes it non-empty
            # in Rust; one that lacks them all takes the Python check.
            plain = [_requiring(schema, key) for key in usual if key in fields]
            if owner.name not in _EXTENDED_PRIMITIVES:
                plain = [_without_extension_parts(variant) for variant in plain]
        checked = cs.no_info_after_validator_function(check, schema)
        return cs.union_schema([*plain, checked], mode="left_to_right") if plain else checked

    def property(self, element: Element, type_code: str, owner: TypeDef) -> CoreSchema:
        if element.max == 0:
            return _NEVER
        value = self.value(element, type_code, owner)
        if element.max == 1:
            return value
        return cs.list_schema(
            value,
            min_length=max(1, element.min),
            max_length=element.max if element.max > 1 else None,
            strict=True,
        )

    def value(self, element: Element, type_code: str, owner: TypeDef) -> CoreSchema:
        if element.content_ref:
            target = owner.elements.get(element.content_ref)
            if target is None or target.props is None:
                return _NEVER  # not modelled (the walker only checks null and arrays here)
            return self._backbone(target, owner)
        if element.props is not None:
            return self._backbone(element, owner)
        typedef = self.defs.types.get(type_code)
        if typedef is None:
            return _NEVER  # likewise
        if typedef.kind == "resource":
            return _NEVER  # contained resources, Bundle entries: the walker's job
        binding = element.binding if element.binding is not None and self._binding_can_fail(element.binding) else None
        if typedef.kind == "primitive-type":
            if binding is not None and type_code in ("code", "string", "uri"):
                # A required binding of a coded primitive: exactly the codes of the value set that
                # are also valid values of the primitive, compared in Rust.
                content = self.defs.value_sets[binding.value_set]
                return self._literal(typedef, {code for codes in content.codes.values() for code in codes})
            schema = self.primitive(typedef)
        else:
            usual = _USUAL_ELEMENTS.get(type_code, ())
            schema = self._ref(f"T:{type_code}", lambda: self.object(typedef.props, typedef, usual=usual))
        if binding is not None:
            schema = cs.no_info_after_validator_function(_binding_check(self.defs, binding, type_code), schema)
        if type_code == "Reference":
            checked = cs.no_info_after_validator_function(_reference_check(self.defs, element.targets), schema)
            plain = self._plain_reference(typedef, element.targets)
            schema = checked if plain is None else cs.union_schema([plain, checked], mode="left_to_right")
        return schema

    def _literal(self, typedef: TypeDef, values: Iterable[str]) -> CoreSchema:
        """Exactly ``values`` that are also valid values of the string primitive ``typedef``."""
        pattern = re.compile(typedef.regex, re.ASCII) if typedef.regex else None
        valid = sorted(v for v in values if v and len(v) <= 1_048_576 and (pattern is None or pattern.fullmatch(v)))
        return cs.literal_schema(valid) if valid else _NEVER

    def _plain_reference(self, typedef: TypeDef, targets: tuple[str, ...]) -> CoreSchema | None:
        """A Reference whose ``reference`` is a plain ``[base/]Type/id[/_history/v]`` of an allowed type.

        Every such Reference passes the walker's reference check outside a Bundle, so this Rust-only
        form spares the Python check for the usual case; any other form (``#id``, URNs, conditional
        references) is left to it.  The type alternation lists only allowed resource types: as the
        ``Type/id`` tail of a match is unique (``_history`` is no type), the walker's regex then finds
        the same type.
        """
        allowed = [t for t in targets if t in self.defs.resource_types] if targets else sorted(self.defs.resource_types)
        if not allowed:
            return None
        id_part = "[A-Za-z0-9\\-.]{1,64}"
        # The base is printable ASCII, so the value is a valid FHIR string of every version too.
        pattern = f"^(?:https?://[!-~]+?/)?(?:{'|'.join(allowed)})/{id_part}(?:/_history/{id_part})?$"
        overrides = {"reference": cs.str_schema(strict=True, max_length=1_048_576, pattern=pattern)}
        if targets:
            overrides["type"] = self._literal(self.defs.types["uri"], targets)
        key = f"R:{','.join(targets)}"
        usual = _USUAL_ELEMENTS["Reference"]
        return self._ref(key, lambda: self.object(typedef.props, typedef, overrides=overrides, usual=usual))

    def _backbone(self, element: Element, owner: TypeDef) -> CoreSchema:
        assert element.props is not None
        props = element.props
        return self._ref(f"E:{owner.name}:{element.path}", lambda: self.object(props, owner))

    def _binding_can_fail(self, binding: Binding) -> bool:
        # Only required bindings to value sets the package enumerates give errors.
        content = self.defs.value_sets.get(binding.value_set)
        return binding.strength == "required" and content is not None and content.complete

    # -- primitives ----------------------------------------------------------------------------

    def primitive(self, typedef: TypeDef) -> CoreSchema:
        name, kind = typedef.name, typedef.json_kind
        if kind == "boolean":
            return cs.bool_schema(strict=True)
        if kind == "integer":
            low = {"positiveInt": 1, "unsignedInt": 0}.get(name, _INT32[0])
            if name not in ("integer", "positiveInt", "unsignedInt"):
                return _NEVER  # an integer type with a regex not modelled here
            return cs.int_schema(strict=True, ge=low, le=_INT32[1])
        if kind == "decimal":
            return cs.union_schema([cs.int_schema(strict=True), cs.float_schema(strict=True)])
        limit = 1_048_576 if name not in ("date", "dateTime", "instant", "integer64") else None
        schema = self._string(typedef.regex, limit)
        if name in ("date", "dateTime", "instant"):
            checked = cs.no_info_after_validator_function(_calendar_check, schema)
            plain = cs.chain_schema([schema, cs.str_schema(strict=True, pattern=_PLAIN_CALENDAR)])
            return cs.union_schema([plain, checked], mode="left_to_right")
        if name == "integer64":
            return cs.no_info_after_validator_function(_int64_check, schema)
        return schema

    def _string(self, regex: str | None, limit: int | None) -> CoreSchema:
        if not regex or regex in _ANY_NON_EMPTY:
            return cs.str_schema(strict=True, min_length=1, max_length=limit)
        try:
            # Rust's engine, with the walker's ASCII classes spelled out (it reads \\s as Unicode).
            schema = cs.str_schema(strict=True, min_length=1, max_length=limit, pattern=f"^(?:{ascii_classes(regex)})$")
            SchemaValidator(schema)
        except SchemaError:  # syntax Rust does not take: Python's engine, called per value
            schema = cs.str_schema(
                strict=True,
                min_length=1,
                max_length=limit,
                pattern=f"(?a)\\A(?:{regex})\\Z",
                regex_engine="python-re",
            )
        return schema

    # -- resources -----------------------------------------------------------------------------

    def resource(self, resource_type: str) -> SchemaValidator | None:
        typedef = self.defs.types.get(resource_type)
        if typedef is None or typedef.kind != "resource" or typedef.abstract:
            return None
        root = self.object(typedef.props, typedef, resource_type=resource_type)
        return SchemaValidator(cs.definitions_schema(root, list(self.refs.values())))


_PLAIN_CALENDAR = (
    r"^[0-9]{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|1[0-9]|2[0-8]))?|-(?:0[13-9]|1[0-2])-(?:29|30)|-(?:0[13578]|1[02])-31)?"
    r"(?:T[0-9:.]+(?:Z|[+-][0-9]{2}:[0-9]{2}))?$"
)
"""Dates (of a value that already meets its type's regex) that pass the walker's calendar check
whatever the year: days up to 28, the 29th and 30th outside February, the 31st of long months, and
a time only with its zone.  The rest (29 February, odd zones) take the Python check."""


_USUAL_ELEMENTS = {
    "Address": ("city", "country", "text", "line"),
    "Age": ("value",),
    "CodeableConcept": ("coding", "text"),
    "Coding": ("code",),
    "ContactDetail": ("name", "telecom"),
    "ContactPoint": ("value",),
    "Count": ("value",),
    "Distance": ("value",),
    "Duration": ("value",),
    "HumanName": ("text", "family"),
    "Identifier": ("value",),
    "Period": ("start", "end"),
    "Quantity": ("value",),
    "Range": ("low", "high"),
    "Reference": ("reference", "display"),
    "Timing": ("repeat", "event"),
}
"""For data types with no required element: the elements one of which nearly every value has (in
the order tried).  ele-1 (not empty) then holds in Rust; a failed try costs one more pass over the
value, so a value without any of them is no error, only slower."""


_EXTENDED_PRIMITIVES = frozenset({"Address"})
"""Data types whose primitive elements converter output extends (``Address._country``): their
Rust-only forms keep the extension parts (``_country``).  The others leave them out, as each is
one more key lookup for every value; a value with one takes the general form."""


def _without_extension_parts(schema: CoreSchema) -> CoreSchema:
    fields = schema["fields"]  # type: ignore[typeddict-item]
    return {**schema, "fields": {k: f for k, f in fields.items() if not k.startswith("_")}}  # type: ignore[return-value]


def _requiring(schema: CoreSchema, key: str) -> CoreSchema:
    """The typed dict ``schema`` with its field ``key`` required."""
    fields = schema["fields"]  # type: ignore[typeddict-item]
    return {**schema, "fields": {**fields, key: {**fields[key], "required": True}}}  # type: ignore[return-value]


def _without(schema: CoreSchema, names: list[str]) -> CoreSchema:
    """The typed dict ``schema`` without the fields of ``names`` and their extension parts (unknown keys then)."""
    drop = {*names, *("_" + n for n in names)}
    fields = schema["fields"]  # type: ignore[typeddict-item]
    return {**schema, "fields": {k: f for k, f in fields.items() if k not in drop}}  # type: ignore[return-value]


_WIDE_CHOICE = 8
"""Choice elements with more types than this (``Extension.value[x]``: 50) get a union of small typed
dicts instead of one field per type: pydantic-core looks up every field of a typed dict, so one
Extension cost a hundred lookups; the union's Python discriminator costs one pass over its keys."""


def _one_type_of(fields: dict[str, cs.TypedDictField], names: list[str]) -> CoreSchema:
    """A typed dict per type of the choice element ``names`` (and one without it), picked by the key present."""
    choice_keys = {*names, *("_" + n for n in names)}
    common = {k: v for k, v in fields.items() if k not in choice_keys}
    variants: dict[Hashable, CoreSchema] = {"": cs.typed_dict_schema(common, extra_behavior="forbid", total=False)}
    tag_of: dict[str, str] = {}
    for name in names:
        own = {name: fields[name]}
        if "_" + name in fields:
            own["_" + name] = fields["_" + name]
            tag_of["_" + name] = name
        tag_of[name] = name
        variants[name] = cs.typed_dict_schema({**common, **own}, extra_behavior="forbid", total=False)

    def tag(value: Any) -> str | None:
        if type(value) is not dict:
            return None  # no variant: rejected, and the walker says why
        for key in value:
            found = tag_of.get(key)
            if found is not None:
                return found  # a second type's key is then an unknown key of this variant
        return ""

    return cs.tagged_union_schema(variants, tag)


def _object_check(
    groups: list[tuple[str, ...]], required: list[tuple[str, ...]], *, empty_allowed: bool, fixed_keys: int
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    # Choice keys of one element ([x]): at most one type present, and one when the element is
    # required.  ``valueString`` with ``_valueString`` counts twice here (the walker counts it
    # once): stricter, so the walker decides.
    sets = [frozenset(g) for g in groups if len(g) > 2]
    required_sets = [frozenset(g) for g in required]
    if not sets and not required_sets:
        return None if empty_allowed else _non_empty

    def check(value: dict[str, Any]) -> dict[str, Any]:
        if not empty_allowed:
            _non_empty(value)
        # ``fixed_keys`` required keys are present, so fewer than two keys are left for choices
        # (an Extension's url and one value[x]) in most objects.  Else set intersections: they
        # cost the object's size, not the (up to ~100) choice keys of value[x].
        if len(value) - fixed_keys > 1:
            for keys in sets:
                if len(keys & value.keys()) > 1:
                    raise _Reject("more than one type of a choice element")
        for keys in required_sets:
            if keys.isdisjoint(value):
                raise _Reject("required choice element missing")
        return value

    return check


def _calendar_check(value: str) -> str:
    if _calendar_problem(value):
        raise _Reject("not a calendar date")
    return value


def _int64_check(value: str) -> str:
    if not _INT64[0] <= int(value) <= _INT64[1]:
        raise _Reject("outside the 64-bit range")
    return value


def _binding_check(definitions: Definitions, binding: Binding, type_code: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        for issue in check_binding(definitions, binding, value, type_code, "", set()):
            if issue.is_error:
                raise _Reject("code not in a required value set")
        return value

    return check


def _reference_check(definitions: Definitions, targets: tuple[str, ...]) -> Callable[[Any], Any]:
    """The walker's own reference check, as made on a resource outside a Bundle.

    ``#id`` references resolve against the resource's contained resources, which this check does
    not see: with an empty container they fail here, and the walker decides.
    """

    scratch = threading.local()  # one walker per thread to collect into: a new one per reference costs more

    def check(value: dict[str, Any]) -> dict[str, Any]:
        walker = getattr(scratch, "walker", None)
        if walker is None:
            walker = scratch.walker = Walker(definitions, [], invariants=False)
        check_reference(walker, RefRecord(value, targets, "", {}), None)
        if walker.errors:
            walker.errors = 0
            walker.issues.clear()
            raise _Reject("reference")
        return value

    return check


class FastStructure:
    """``accepts(resource)``: True only when the walker (no invariants) finds no error in it."""

    def __init__(self, fhir_version: str) -> None:
        self._compiler = _Compiler(load_definitions(fhir_version))
        self._validators: dict[str, SchemaValidator | None] = {}

    def _validator(self, resource_type: str) -> SchemaValidator | None:
        if resource_type not in self._validators:
            try:
                self._validators[resource_type] = self._compiler.resource(resource_type)
            except SchemaError:  # a definition this compiler cannot express: the walker decides
                self._validators[resource_type] = None
        return self._validators[resource_type]

    def accepts(self, resource: Any) -> bool:
        if not isinstance(resource, dict):
            return False
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or resource_type == "Bundle":
            return False  # Bundles resolve references across entries: the walker's job
        validator = self._validator(resource_type)
        if validator is None:
            return False
        try:
            validator.validate_python(resource)
        except ValidationError:
            return False
        return True


@functools.cache
def fast_structure(fhir_version: str) -> FastStructure:
    return FastStructure(fhir_version)
