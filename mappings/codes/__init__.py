"""Code tables as data: each ``*.json`` file here maps a registry value to FHIR codes.

Keeping them as data (not Python branches) lets a terminologist review and extend a table without
reading code, and lets the tests pair every row with an assertion.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def table(name: str) -> dict[str, Any]:
    """Load ``mappings/codes/<name>.json`` (cached; tables are read-only)."""
    text = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    data.pop("_comment", None)
    return data
