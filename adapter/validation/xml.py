"""FHIR XML to the JSON form, generically from the definitions, so XML and JSON validate alike.

The conversion follows the XML representation rules of the specification: primitive values sit
in a ``value`` attribute (their ``id`` and ``extension`` become the JSON ``_name`` object),
repeating elements (maximum cardinality above one) become arrays, ``Extension.url`` is an
attribute, a resource inside ``contained`` / ``Bundle.entry.resource`` is wrapped in an element
named after its type, and the narrative ``div`` is kept as an XHTML string.  Element order is not
checked.  Anything unknown is carried over under its own name so the validator reports it.

Parsing is safe: no DTD, no entity expansion, no network, and a document with a DOCTYPE is refused.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from adapter.validation.definitions import Definitions, Element
from adapter.validation.issues import Issue

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False, remove_comments=True
)
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


class XmlInputError(Exception):
    """The bytes are not a FHIR XML resource that can be converted."""


def _local(tag: Any) -> tuple[str, str]:
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _primitive_value(text: str, json_kind: str | None) -> Any:
    if json_kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if json_kind == "integer" and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if json_kind == "decimal" and _NUMBER.match(text):
        number = float(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    return text


class _Converter:
    def __init__(self, definitions: Definitions, issues: list[Issue]) -> None:
        self.defs = definitions
        self.issues = issues

    def resource(self, node: Any, expr: str) -> dict[str, Any]:
        namespace, name = _local(node.tag)
        if namespace != FHIR_NS:
            self.issues.append(Issue("error", "structure", f"Element <{name}> is not in the FHIR namespace", expr))
        out: dict[str, Any] = {"resourceType": name}
        typedef = self.defs.types.get(name)
        props = typedef.props if typedef is not None else {}
        owner = typedef.elements if typedef is not None else {}
        self._children(node, out, props, owner, expr or name)
        return out

    def _children(
        self,
        node: Any,
        out: dict[str, Any],
        props: dict[str, tuple[Element, str]],
        owner: dict[str, Element],
        expr: str,
        *,
        primitive: bool = False,
    ) -> None:
        if node.text and node.text.strip():
            self.issues.append(Issue("error", "structure", "Text content is not allowed in a FHIR element", expr))
        for attribute, value in node.attrib.items():
            _, name = _local(attribute)
            if primitive and name == "value":
                continue
            if name in ("id", "url") and name in props:
                out[name] = value
            elif attribute != "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation":
                self.issues.append(Issue("error", "structure", f"Unknown attribute '{name}'", expr))
        collected: dict[str, list[tuple[Any, dict[str, Any] | None]]] = {}
        repeats: dict[str, bool] = {}
        for child in node:
            namespace, name = _local(child.tag)
            if not name:
                continue
            if child.tail and child.tail.strip():
                self.issues.append(Issue("error", "structure", "Text content is not allowed in a FHIR element", expr))
            entry = props.get(name)
            child_expr = f"{expr}.{name}"
            items = collected.setdefault(name, [])
            if entry is None or (namespace != FHIR_NS and not (namespace == XHTML_NS and name == "div")):
                items.append((self._unknown(child), None))
                repeats[name] = True
                continue
            element, type_code = entry
            repeats[name] = element.max != 1
            typedef = self.defs.types.get(type_code)
            if namespace == XHTML_NS or type_code == "xhtml":
                items.append((etree.tostring(child, encoding="unicode", with_tail=False), None))
            elif element.content_ref or element.props is not None:
                target = owner.get(element.content_ref) if element.content_ref else element
                value: dict[str, Any] = {}
                self._children(child, value, (target.props if target else None) or {}, owner, child_expr)
                items.append((value, None))
            elif typedef is not None and typedef.kind == "resource":
                inner = [c for c in child if isinstance(c.tag, str)]
                if len(inner) != 1:
                    self.issues.append(
                        Issue("error", "structure", f"{name} must hold exactly one resource", child_expr)
                    )
                    continue
                items.append((self.resource(inner[0], child_expr), None))
            elif typedef is not None and typedef.kind == "primitive-type":
                text = child.get("value")
                extra: dict[str, Any] = {}
                others = {k: v for k, v in typedef.props.items() if k != "value"}
                self._children(child, extra, others, owner, child_expr, primitive=True)
                items.append((_primitive_value(text, typedef.json_kind) if text is not None else None, extra or None))
            else:
                value = {}
                inner_owner = typedef.elements if typedef is not None else owner
                self._children(child, value, typedef.props if typedef else {}, inner_owner, child_expr)
                items.append((value, None))
        for name, items in collected.items():
            values = [v for v, _ in items]
            extensions = [e for _, e in items]
            if repeats.get(name) or len(items) > 1:
                if any(v is not None for v in values):
                    out[name] = values
                if any(e is not None for e in extensions):
                    out[f"_{name}"] = extensions
            else:
                if values[0] is not None:
                    out[name] = values[0]
                if extensions[0] is not None:
                    out[f"_{name}"] = extensions[0]

    def _unknown(self, node: Any) -> Any:
        """Carry an element the definitions do not know, so the validator reports it by name."""
        if "value" in node.attrib and len(node) == 0:
            return node.get("value")
        out: dict[str, Any] = {}
        for child in node:
            _, name = _local(child.tag)
            if name:
                out.setdefault(name, []).append(self._unknown(child))
        return out


def xml_to_json(data: bytes, definitions: Definitions) -> tuple[dict[str, Any] | None, list[Issue]]:
    """Convert one FHIR XML resource; a None resource comes with a fatal issue saying why."""
    if _DOCTYPE.search(data[:65536]) or _DOCTYPE.search(data):
        return None, [Issue("fatal", "security", "XML with a DOCTYPE or entity declarations is refused")]
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        return None, [Issue("fatal", "structure", f"The XML is not well-formed: {error}")]
    except ValueError as error:
        return None, [Issue("fatal", "structure", f"The XML cannot be read: {error}")]
    issues: list[Issue] = []
    converter = _Converter(definitions, issues)
    try:
        resource = converter.resource(root, "")
    except RecursionError:
        return None, [Issue("fatal", "structure", "The XML nests too deeply")]
    return resource, issues
