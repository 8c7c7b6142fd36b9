"""JSON and XML serialisation of FHIR resources.

JSON goes through orjson: deterministic (dict order is the mapping's order), UTF-8, and about ten
times faster than the pydantic models' serialiser.  XML goes through fhir.resources' models
(R5, or R4B for 4.0.1 output: our R4 dicts hold only elements R4 and R4B share, and the XML
wire format of those elements is identical), so no FHIR XML serialiser is hand-written here.
"""

from __future__ import annotations

from typing import Any

import orjson


def to_json(resource: dict[str, Any], pretty: bool = True) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(resource, option=option) + b"\n"


def to_ndjson_line(resource: dict[str, Any]) -> bytes:
    return orjson.dumps(resource) + b"\n"


def to_xml(resource: dict[str, Any], fhir_version: str) -> bytes:
    """FHIR XML for ``resource`` (any type fhir.resources knows) in the given version."""
    from fhir.resources import get_fhir_model_class as r5_class
    from fhir.resources.R4B import get_fhir_model_class as r4b_class

    model_class = (r4b_class if fhir_version == "4.0" else r5_class)(resource["resourceType"])
    model = model_class.model_validate(resource)
    return model.model_dump_xml(pretty_print=True)
