"""Checks that outputs built from caches do not share mutable parts."""

from __future__ import annotations

from typing import Any


def containers(value: Any) -> set[int]:
    """The ids of every dict and list in ``value``: two outputs whose sets do not intersect can be
    changed by a caller (the R4 conversion edits resources in place) without touching each other."""
    found: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.add(id(item))
            stack.extend(item.values())
        elif isinstance(item, list):
            found.add(id(item))
            stack.extend(item)
    return found
