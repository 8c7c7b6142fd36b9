"""Format detection and per-record accounting in the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.errors import InputError, RecordError
from adapter.pipeline import convert_bytes, convert_record
from adapter.readers import read_items

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures"
SEED_XML = (FIXTURES / "seed" / "NCT01854957.xml").read_bytes()
SEED_JSON = (FIXTURES / "seed" / "NCT01854957.json").read_bytes()


def test_detects_xml_and_json_from_content_not_name():
    (xml_item,) = read_items(SEED_XML, "study.txt")
    (json_item,) = read_items(SEED_JSON, "study.xml")
    assert xml_item.record.source.format == "ctgov-xml"
    assert json_item.record.source.format == "ctgov-v2-json"
    assert xml_item.record.registry_id == json_item.record.registry_id == "NCT01854957"


def test_leading_bom_and_whitespace_are_tolerated():
    (item,) = read_items(b"\xef\xbb\xbf\n  " + SEED_JSON, "bom.json")
    assert item.record.registry_id == "NCT01854957"


def test_search_page_yields_each_study_with_its_locator():
    study = json.loads(SEED_JSON)
    page = {"studies": [study, {"protocolSection": {}}, study], "nextPageToken": "abc"}
    items = list(read_items(json.dumps(page).encode(), "page.json"))
    assert [i.locator for i in items] == ["page.json#studies[0]", "page.json#studies[1]", "page.json#studies[2]"]
    assert items[0].record and items[2].record
    assert isinstance(items[1].error, RecordError)


def test_array_and_ndjson_inputs():
    study = json.loads(SEED_JSON)
    array = list(read_items(json.dumps([study, study]).encode(), "a.json"))
    assert [i.locator for i in array] == ["a.json#[0]", "a.json#[1]"]
    lines = json.dumps(study) + "\n\n" + "{broken\n" + json.dumps(study) + "\n"
    items = list(read_items(lines.encode(), "s.ndjson"))
    assert [i.locator for i in items] == ["s.ndjson#1", "s.ndjson#3", "s.ndjson#4"]
    assert items[0].record and items[2].record
    assert isinstance(items[1].error, InputError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"hello", "not a registry record"),
        (b"{", "invalid JSON"),
        (b"42", "not a registry record"),
        (b'"text"', "not a registry record"),
        (b'{"resourceType": "Patient"}', "FHIR Patient resource"),
        (b"<html><body/></html>", "not a registry record"),
        (b"<clinical_study>", "XML"),
    ],
)
def test_unreadable_inputs_raise_one_clear_error(data, message):
    with pytest.raises(InputError) as caught:
        list(read_items(data, "in.dat"))
    assert message in str(caught.value)
    assert "in.dat" in str(caught.value)


def test_hostile_xml_is_refused_not_expanded():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<clinical_study><id_info><nct_id>&lol2;</nct_id></id_info></clinical_study>"
    )
    with pytest.raises(InputError):
        list(read_items(bomb, "bomb.xml"))
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<clinical_study><brief_title>&e;</brief_title></clinical_study>"
    )
    with pytest.raises(InputError):
        list(read_items(xxe, "xxe.xml"))


def test_deeply_nested_json_is_refused():
    deep = b"[" * 200 + b"]" * 200
    with pytest.raises(InputError, match="nested deeper"):
        list(read_items(deep, "deep.json"))


def test_record_without_nct_id_names_the_record():
    study = json.loads(SEED_JSON)
    del study["protocolSection"]["identificationModule"]["nctId"]
    (result,) = convert_bytes(json.dumps(study).encode(), "no-id.json")
    assert isinstance(result.error, RecordError)
    assert "no-id.json" in str(result.error)
    assert result.resources == []


def test_output_is_deterministic_and_version_specific():
    (item,) = read_items(SEED_XML, "seed.xml")
    assert convert_record(item.record, "5.0") == convert_record(item.record, "5.0")
    r4, r5 = convert_record(item.record, "4.0"), convert_record(item.record, "5.0")
    assert [r["id"] for r in r4] == [r["id"] for r in r5]
    assert "progressStatus" in r5[0] and "progressStatus" not in r4[0]
    with pytest.raises(ValueError, match="unsupported FHIR version"):
        convert_record(item.record, "3.0")


def test_unknown_source_fields_become_warnings_not_silence():
    study = json.loads(SEED_JSON)
    study["protocolSection"]["identificationModule"]["brandNewField"] = "x"
    (result,) = convert_bytes(json.dumps(study).encode(), "new.json")
    assert any("brandNewField" in w for w in result.warnings)
