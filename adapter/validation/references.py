"""Reference checks: resolution inside Bundles and contained resources, target types, duplicates."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from adapter.validation.walker import _REFERENCE, BundleScope, RefRecord, resolve_in_bundle

if TYPE_CHECKING:
    from adapter.validation.walker import Walker

_ABSOLUTE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
UNRESOLVED_OK = ("searchset", "history")
"""Bundle types that need not hold every resource they point to."""


def _contained(record: RefRecord, reference: str) -> dict[str, Any] | None:
    if reference == "#":
        return record.container
    for item in record.container.get("contained") or []:
        if isinstance(item, dict) and item.get("id") == reference[1:]:
            return item
    return None


def check_reference(walker: Walker, record: RefRecord, scope: BundleScope | None) -> None:
    """Check one Reference: its form, that it resolves (where it can), and its target type."""
    value = record.value
    reference = value.get("reference")
    expr = record.expression
    declared = value.get("type")
    if isinstance(declared, str) and record.targets and declared not in record.targets:
        walker.add(
            "error",
            "structure",
            f"Reference.type '{declared}' is not an allowed target ({', '.join(record.targets)})",
            f"{expr}.type",
        )
    if not isinstance(reference, str):
        return
    target: dict[str, Any] | None = None
    target_type: str | None = None
    where = f"{expr}.reference"
    if reference.startswith("#"):
        target = _contained(record, reference)
        if target is None:
            walker.add("error", "not-found", f"Reference '{reference}' does not match a contained resource", where)
            return
    else:
        match = _REFERENCE.match(reference)
        if scope is not None:
            target = resolve_in_bundle(scope, reference)
        if match:
            target_type = match["type"]
            if target_type not in walker.defs.resource_types:
                walker.add(
                    "error", "structure", f"Reference '{reference}': unknown resource type '{target_type}'", where
                )
                return
        elif "?" in reference and reference.split("?", 1)[0] in walker.defs.resource_types:
            return  # conditional reference, resolved by the server processing a transaction
        elif not _ABSOLUTE.match(reference):
            walker.add(
                "error",
                "structure",
                f"Reference '{reference}' is neither Type/id, an absolute URL, a URN nor #id",
                where,
            )
            return
        if target is None and scope is not None and scope.kind not in UNRESOLVED_OK:
            external = match is not None and match["base"] is not None
            if not external and not reference.startswith(("http://", "https://")):
                walker.add(
                    "error",
                    "not-found",
                    f"Reference '{reference}' does not resolve to an entry of the Bundle",
                    where,
                )
                return
    if target is not None and isinstance(target.get("resourceType"), str):
        target_type = target["resourceType"]
    if target_type and record.targets and target_type not in record.targets:
        walker.add(
            "error",
            "structure",
            f"Reference '{reference}' points to a {target_type}; allowed targets are {', '.join(record.targets)}",
            where,
        )


def check_bundle(walker: Walker, scope: BundleScope, expr: str) -> None:
    """Resolve the references collected inside a Bundle and report duplicate entries."""
    for record in scope.refs:
        check_reference(walker, record, scope)
    if scope.kind == "history":
        return
    entries = scope.bundle.get("entry")
    seen_urls: dict[str, int] = {}
    seen_ids: dict[tuple[str, str, Any, str | None], int] = {}
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            if full_url in seen_urls:
                walker.add(
                    "error",
                    "duplicate",
                    f"Duplicate fullUrl '{full_url}' (also entry[{seen_urls[full_url]}])",
                    f"{expr}.entry[{index}].fullUrl",
                )
            else:
                seen_urls[full_url] = index
        resource = entry.get("resource")
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            meta = resource.get("meta")
            version = meta.get("versionId") if isinstance(meta, dict) else None
            # Entries from different servers may share Type/id; they are told apart by the base
            # of their absolute fullUrl.
            base = full_url.rsplit("/", 2)[0] if isinstance(full_url, str) and full_url.startswith("http") else None
            key = (str(resource.get("resourceType")), resource["id"], version, base)
            if key in seen_ids:
                walker.add(
                    "error",
                    "duplicate",
                    f"Duplicate resource {key[0]}/{key[1]} (also entry[{seen_ids[key]}])",
                    f"{expr}.entry[{index}].resource",
                )
            else:
                seen_ids[key] = index


def check_loose_references(walker: Walker) -> None:
    """References outside any Bundle: contained ones must resolve, all must have a valid form and target."""
    for record in walker.loose_refs:
        check_reference(walker, record, None)
    walker.loose_refs.clear()
