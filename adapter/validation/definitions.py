"""Compile the official StructureDefinitions, ValueSets and CodeSystems into compact lookup tables.

Compiling reads about 2 000 JSON files from the pinned npm package (see :mod:`.packages`) and takes
a few seconds, so the result is pickled into the cache directory and loaded once per process
(:func:`load_definitions`).  The pickle is keyed by the package pin and :data:`SCHEMA`, so a new
pin or a change of these tables recompiles automatically.

Everything the validator checks comes from these tables: element names, types, cardinalities,
choice types, content references, primitive regexes, bindings, reference target types, invariants
(FHIRPath ``constraint.expression``), value set contents and the FHIRPath type model.  The only
corrections to the published data are listed in :data:`R4_CORRECTIONS`.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.validation.packages import DEFINITION_PACKAGES, PINNED, cache_dir, iter_package_json

SCHEMA = 5
"""Bump when the compiled layout changes, so stale pickles are rebuilt."""

FHIRPATH_SYSTEM = "http://hl7.org/fhirpath/System."
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"

R4_CORRECTIONS = {"Resource.id": "id"}
"""Known defects of the published R4 snapshots, fixed at compile time.

The R4 snapshots give ``Resource.id`` (and so every ``X.id`` of a resource) the type ``string``,
while the R4 specification page, XML schema and JSON schema give it type ``id`` (1-64 characters
of ``[A-Za-z0-9-.]``); the snapshot's own ``fhir-type`` extension is the defect, fixed in R5.
"""


@dataclass(slots=True, frozen=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str
    source: str


@dataclass(slots=True, frozen=True)
class Binding:
    strength: str
    value_set: str


@dataclass(slots=True)
class Element:
    """One element of a type or resource (one snapshot ``ElementDefinition``)."""

    path: str
    name: str
    min: int
    max: int
    """Maximum cardinality; ``-1`` for ``*``."""
    types: tuple[str, ...]
    choice: bool
    targets: tuple[str, ...] = ()
    """Resource types a ``Reference`` may point to (empty: any); from ``type.targetProfile``."""
    profiles: tuple[str, ...] = ()
    """Core data-type profiles the value must meet (e.g. ``SimpleQuantity``)."""
    binding: Binding | None = None
    constraints: tuple[Constraint, ...] = ()
    content_ref: str | None = None
    props: dict[str, tuple[Element, str]] | None = None
    """For backbone elements: JSON property name -> (child element, type code of that property)."""
    required: tuple[Element, ...] = ()
    """For backbone elements: children with ``min > 0``."""


@dataclass(slots=True)
class TypeDef:
    """A resource, complex data type or primitive type (a ``specialization`` StructureDefinition)."""

    name: str
    kind: str
    abstract: bool
    base: str | None
    props: dict[str, tuple[Element, str]] = field(default_factory=dict)
    required: tuple[Element, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    regex: str | None = None
    json_kind: str | None = None
    """Primitives only: ``boolean``, ``integer``, ``decimal`` or ``string`` (the JSON representation)."""
    elements: dict[str, Element] = field(default_factory=dict)
    """Every element of the definition by path (``Group.characteristic.value[x]``)."""


@dataclass(slots=True)
class ValueSetContent:
    codes: dict[str, frozenset[str]]
    """system -> codes; only meaningful when ``complete``."""
    complete: bool
    """False when some part cannot be enumerated from the package (external systems, filters)."""

    def contains(self, system: str | None, code: str) -> bool:
        if system is None:
            return any(code in codes for codes in self.codes.values())
        return code in self.codes.get(system, ())


@dataclass(slots=True)
class Definitions:
    fhir_version: str
    package: str
    types: dict[str, TypeDef]
    value_sets: dict[str, ValueSetContent]
    code_systems: dict[str, frozenset[str]]
    """Complete code systems of the package: url -> every code."""
    code_system_names: dict[str, str]
    fhirpath_model: dict[str, Any]
    resource_types: frozenset[str]


def _type_codes(element: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for type_ in element.get("type", []):
        code = type_["code"]
        if code.startswith(FHIRPATH_SYSTEM):
            ext = {e["url"]: e.get("valueUrl") or e.get("valueUri") for e in type_.get("extension", [])}
            code = ext.get(FHIR_TYPE_EXT) or code
        out.append({**type_, "code": code})
    return out


def _constraints(element: dict[str, Any]) -> tuple[Constraint, ...]:
    out = []
    for c in element.get("constraint", []):
        # ele-1 ("a @value or children") is checked natively for every node, which is equivalent
        # and avoids running the FHIRPath engine on every element of every resource.
        if c.get("key") == "ele-1" or not c.get("expression"):
            continue
        out.append(
            Constraint(
                key=c["key"],
                severity=c.get("severity", "error"),
                human=c.get("human", ""),
                expression=c["expression"],
                source=c.get("source", ""),
            )
        )
    return tuple(out)


def _cap(code: str) -> str:
    return code[:1].upper() + code[1:]


def _max(value: str | None) -> int:
    return -1 if value in (None, "*") else int(value)


def _compile_type(sd: dict[str, Any], fhir_version: str) -> TypeDef:
    name = sd["type"] if sd["kind"] != "logical" else sd["id"]
    base = sd.get("baseDefinition", "").rsplit("/", 1)[-1] or None
    typedef = TypeDef(name=name, kind=sd["kind"], abstract=bool(sd.get("abstract")), base=base)
    snapshot = [e for e in sd["snapshot"]["element"] if ":" not in e.get("id", e["path"])]
    root = snapshot[0]
    typedef.constraints = _constraints(root)
    children: dict[str, list[Element]] = {}
    by_path: dict[str, Element] = {}
    for raw in snapshot[1:]:
        path = raw["path"]
        if fhir_version == "4.0" and raw.get("base", {}).get("path") in R4_CORRECTIONS and path.endswith(".id"):
            types = [{"code": R4_CORRECTIONS[raw["base"]["path"]]}]
        else:
            types = _type_codes(raw)
        last = path.rsplit(".", 1)[-1]
        choice = last.endswith("[x]")
        targets: list[str] = []
        profiles: list[str] = []
        for t in types:
            targets += [p.rsplit("/", 1)[-1] for p in t.get("targetProfile", []) if p.startswith(SD_PREFIX)]
            profiles += [p.rsplit("/", 1)[-1] for p in t.get("profile", []) if p.startswith(SD_PREFIX)]
        binding = None
        if raw.get("binding", {}).get("valueSet"):
            binding = Binding(raw["binding"]["strength"], raw["binding"]["valueSet"].split("|", 1)[0])
        content_ref = raw.get("contentReference")
        element = Element(
            path=path,
            name=last[:-3] if choice else last,
            min=int(raw.get("min", 0)),
            max=_max(raw.get("max")),
            types=tuple(t["code"] for t in types),
            choice=choice,
            targets=tuple(dict.fromkeys(targets)) if "Resource" not in targets else (),
            profiles=tuple(dict.fromkeys(profiles)),
            binding=binding,
            constraints=_constraints(raw),
            content_ref=content_ref.split("#", 1)[1] if content_ref else None,
        )
        by_path[path] = element
        children.setdefault(path.rsplit(".", 1)[0], []).append(element)
    typedef.elements = by_path

    def props_of(elements: list[Element]) -> dict[str, tuple[Element, str]]:
        props: dict[str, tuple[Element, str]] = {}
        for element in elements:
            if element.choice:
                for code in element.types:
                    props[element.name + _cap(code)] = (element, code)
            else:
                props[element.name] = (element, element.types[0] if element.types else "")
        return props

    typedef.props = props_of(children.get(root["path"], []))
    typedef.required = tuple(e for e in children.get(root["path"], []) if e.min > 0)
    for path, element in by_path.items():
        if path in children:
            element.props = props_of(children[path])
            element.required = tuple(e for e in children[path] if e.min > 0)
    if sd["kind"] == "primitive-type":
        for raw in snapshot:
            if raw["path"] == f"{name}.value":
                for t in raw.get("type", []):
                    for ext in t.get("extension", []):
                        if ext["url"] == REGEX_EXT:
                            typedef.regex = ext["valueString"]
    return typedef


def _flatten_concepts(concepts: list[dict[str, Any]], parent: str | None, out: dict[str, str | None]) -> None:
    for concept in concepts:
        code = concept.get("code")
        if code is not None:
            out[code] = parent
        _flatten_concepts(concept.get("concept", []), code, out)


def _descendants(hierarchy: dict[str, str | None], code: str) -> set[str]:
    found = {code}
    changed = True
    while changed:
        changed = False
        for child, parent in hierarchy.items():
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return found


def _expand(
    url: str,
    value_sets: dict[str, dict[str, Any]],
    systems: dict[str, dict[str, Any]],
    seen: frozenset[str] = frozenset(),
) -> ValueSetContent:
    vs = value_sets.get(url)
    if vs is None or url in seen:
        return ValueSetContent({}, False)
    seen = seen | {url}
    codes: dict[str, set[str]] = {}
    complete = True
    compose = vs.get("compose")
    if not compose:
        contains = vs.get("expansion", {}).get("contains")
        if not contains:
            return ValueSetContent({}, False)
        stack = list(contains)
        while stack:
            item = stack.pop()
            if item.get("system") and item.get("code"):
                codes.setdefault(item["system"], set()).add(item["code"])
            stack += item.get("contains", [])
        return ValueSetContent({k: frozenset(v) for k, v in codes.items()}, True)

    def part(include: dict[str, Any]) -> tuple[dict[str, set[str]], bool]:
        found: dict[str, set[str]] = {}
        ok = True
        system = include.get("system")
        if system:
            cs = systems.get(system)
            hierarchy = cs["hierarchy"] if cs else None
            if include.get("concept"):
                found[system] = {c["code"] for c in include["concept"]}
            elif include.get("filter"):
                if hierarchy is None:
                    return found, False
                selected: set[str] | None = None
                for flt in include["filter"]:
                    if flt.get("property") == "concept" and flt.get("op") in ("is-a", "descendent-of"):
                        sub = _descendants(hierarchy, flt["value"])
                        if flt["op"] == "descendent-of":
                            sub.discard(flt["value"])
                    else:
                        return found, False
                    selected = sub if selected is None else selected & sub
                found[system] = selected or set()
            else:
                if hierarchy is None or not cs or not cs["complete"]:
                    return found, False
                found[system] = set(hierarchy)
        for ref in include.get("valueSet", []):
            sub_vs = _expand(ref.split("|", 1)[0], value_sets, systems, seen)
            ok = ok and sub_vs.complete
            if system:  # both given: the intersection
                found = {s: c & sub_vs.codes.get(s, frozenset()) for s, c in found.items()}
            else:
                for s, c in sub_vs.codes.items():
                    found.setdefault(s, set()).update(c)
        return found, ok

    for include in compose.get("include", []):
        found, ok = part(include)
        complete = complete and ok
        for s, c in found.items():
            codes.setdefault(s, set()).update(c)
    for exclude in compose.get("exclude", []):
        found, _ = part(exclude)
        for s, c in found.items():
            codes.get(s, set()).difference_update(c)
    return ValueSetContent({k: frozenset(v) for k, v in codes.items()}, complete)


def _fhirpath_model(types: dict[str, TypeDef]) -> dict[str, Any]:
    """The type model fhirpathpy expects (the layout of its bundled ``models/r4``), from our tables."""
    choice: dict[str, list[str]] = {}
    path2type: dict[str, str] = {}
    elsewhere: dict[str, str] = {}
    type2parent: dict[str, str] = {}
    for typedef in types.values():
        if typedef.base:
            type2parent[typedef.name] = typedef.base
        for path, element in typedef.elements.items():
            if element.content_ref:
                elsewhere[path] = element.content_ref
                continue
            if element.choice:
                base = path[:-3]
                choice[base] = [_cap(t) for t in element.types]
                for t in element.types:
                    path2type[base + _cap(t)] = t
            elif element.props is None and element.types:
                code = element.types[0]
                path2type[path] = code
    return {
        "choiceTypePaths": choice,
        "path2Type": path2type,
        "pathsDefinedElsewhere": elsewhere,
        "type2Parent": type2parent,
    }


def _json_kind(name: str, types: dict[str, TypeDef]) -> str:
    if name == "integer64":  # the one integer carried as a JSON string (R5 JSON format)
        return "string"
    current: str | None = name
    while current:
        if current in ("boolean", "integer", "decimal"):
            return current
        parent = types.get(current)
        current = parent.base if parent and parent.kind == "primitive-type" else None
    return "string"


def compile_definitions(fhir_version: str) -> Definitions:
    """Read the pinned core package of ``fhir_version`` and build the lookup tables."""
    name, version = DEFINITION_PACKAGES[fhir_version]
    types: dict[str, TypeDef] = {}
    profiles: dict[str, dict[str, Any]] = {}
    raw_value_sets: dict[str, dict[str, Any]] = {}
    raw_systems: dict[str, dict[str, Any]] = {}
    wanted = ("StructureDefinition-", "ValueSet-", "CodeSystem-")
    for _, data in iter_package_json(name, version, lambda f: f.startswith(wanted)):
        kind = data.get("resourceType")
        if kind == "StructureDefinition":
            if data.get("kind") not in ("primitive-type", "complex-type", "resource") or "snapshot" not in data:
                continue
            if data.get("derivation", "specialization") == "specialization":
                typedef = _compile_type(data, fhir_version)
                types[typedef.name] = typedef
            elif data.get("type") != "Extension" and data.get("url", "").startswith(SD_PREFIX):
                profiles[data["id"]] = data
        elif kind == "ValueSet" and data.get("url"):
            raw_value_sets[data["url"]] = data
        elif kind == "CodeSystem" and data.get("url"):
            hierarchy: dict[str, str | None] = {}
            _flatten_concepts(data.get("concept", []), None, hierarchy)
            raw_systems[data["url"]] = {
                "hierarchy": hierarchy,
                "complete": data.get("content") == "complete",
                "name": data.get("title") or data.get("name") or data["url"],
            }
    # Core data-type profiles (SimpleQuantity, MoneyQuantity): only their invariants are kept,
    # attached to a pseudo type named after the profile.
    for profile_id, sd in profiles.items():
        root = sd["snapshot"]["element"][0]
        base_type = types.get(sd["type"])
        if base_type is None or base_type.kind == "resource":
            continue
        types[profile_id] = TypeDef(
            name=profile_id,
            kind="profile",
            abstract=False,
            base=sd["type"],
            constraints=tuple(c for c in _constraints(root) if c.key not in {x.key for x in base_type.constraints}),
        )
    for typedef in types.values():
        if typedef.kind == "primitive-type":
            typedef.json_kind = _json_kind(typedef.name, types)
    # Snapshots should repeat the invariants of their base types, but some R5 ones do not (the
    # canonical resources such as PlanDefinition lack dom-2..dom-6), so the base chain is merged in.
    inherited: dict[str, tuple[Constraint, ...]] = {}
    for typedef in types.values():
        chain = []
        current = types.get(typedef.base) if typedef.base else None
        while current is not None and current.name not in chain:
            chain.append(current.name)
            current = types.get(current.base) if current.base else None
        own = {c.key for c in typedef.constraints}
        extra = []
        for ancestor in chain:
            for constraint in types[ancestor].constraints:
                if constraint.key not in own:
                    own.add(constraint.key)
                    extra.append(constraint)
        inherited[typedef.name] = typedef.constraints + tuple(extra)
    for type_name, constraints in inherited.items():
        types[type_name].constraints = constraints
    bound: set[str] = set()
    for typedef in types.values():
        for element in typedef.elements.values():
            if element.binding:
                bound.add(element.binding.value_set)
    value_sets = {url: _expand(url, raw_value_sets, raw_systems) for url in sorted(bound)}
    code_systems = {url: frozenset(cs["hierarchy"]) for url, cs in raw_systems.items() if cs["complete"]}
    resource_types = frozenset(
        t.name for t in types.values() if t.kind == "resource" and not t.abstract and t.name[0].isupper()
    )
    return Definitions(
        fhir_version=fhir_version,
        package=f"{name}@{version}",
        types=types,
        value_sets=value_sets,
        code_systems=code_systems,
        code_system_names={url: cs["name"] for url, cs in raw_systems.items()},
        fhirpath_model=_fhirpath_model(types),
        resource_types=resource_types,
    )


_LOADED: dict[str, Definitions] = {}
_LOCK = threading.Lock()


def _pickle_path(fhir_version: str) -> Path:
    name, version = DEFINITION_PACKAGES[fhir_version]
    pin = re.sub(r"[^A-Za-z0-9]", "", PINNED[(name, version)])[7:19]
    return cache_dir() / "fhir-definitions" / f"{name}-{version}-{pin}-s{SCHEMA}.pickle"


def load_definitions(fhir_version: str) -> Definitions:
    """The compiled definitions of ``"4.0"`` or ``"5.0"``: memory, then the pickle, then a compile."""
    if fhir_version not in DEFINITION_PACKAGES:
        raise ValueError(f"unsupported FHIR version {fhir_version!r} (use 4.0 or 5.0)")
    with _LOCK:
        cached = _LOADED.get(fhir_version)
        if cached is not None:
            return cached
        path = _pickle_path(fhir_version)
        definitions: Definitions | None = None
        if path.exists():
            try:
                with path.open("rb") as handle:
                    definitions = pickle.load(handle)
            except Exception:  # a truncated or foreign pickle: rebuild it
                definitions = None
        if definitions is None:
            definitions = compile_definitions(fhir_version)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(definitions, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        _LOADED[fhir_version] = definitions
        return definitions
