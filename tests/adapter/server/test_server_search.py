"""Read, vread, caching and search over HTTP against the fixture-loaded server (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from server_helpers import assert_outcome

from adapter.store.params import MIN_US, TEXT_SUFFIX, index_rows, search_params

SEED = "nct01854957"
RELEASES = ["R4", "R5"]
FV = {"R4": "4.0", "R5": "5.0"}


def search(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text[:600]
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return body


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def typed(bundle: dict[str, Any], mode: str) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == mode
    }


@pytest.fixture
def client(loaded: Any) -> Any:
    with loaded.client() as opened:
        yield opened


def seed(loaded: Any, release: str) -> dict[str, Any]:
    stored = loaded.store.read(FV[release], "ResearchStudy", SEED)
    assert stored is not None
    return orjson.loads(stored.content)


# --- read ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_read_vread_and_caching(client: httpx.Client, loaded: Any, release: str) -> None:
    response = client.get(f"/fhir/{release}/ResearchStudy/{SEED}")
    assert response.status_code == 200
    body = response.json()
    version = body["meta"]["versionId"]
    assert response.headers["etag"] == f'W/"{version}"'
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    modified = response.headers["last-modified"]
    assert body["id"] == SEED and body["resourceType"] == "ResearchStudy"
    if release == "R4":
        assert "progressStatus" not in body, "R4 base serves R4 content"
    else:
        assert "progressStatus" in body

    assert (
        client.get(f"/fhir/{release}/ResearchStudy/{SEED}", headers={"If-None-Match": f'W/"{version}"'}).status_code
        == 304
    )
    assert client.get(f"/fhir/{release}/ResearchStudy/{SEED}", headers={"If-None-Match": 'W/"999"'}).status_code == 200
    assert (
        client.get(f"/fhir/{release}/ResearchStudy/{SEED}", headers={"If-Modified-Since": modified}).status_code == 304
    )
    past = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get(f"/fhir/{release}/ResearchStudy/{SEED}", headers={"If-Modified-Since": past}).status_code == 200

    first = client.get(f"/fhir/{release}/ResearchStudy/{SEED}/_history/1")
    assert first.status_code == 200 and first.json()["meta"]["versionId"] == "1"
    assert_outcome(client.get(f"/fhir/{release}/ResearchStudy/{SEED}/_history/99"), 404)
    assert_outcome(client.get(f"/fhir/{release}/ResearchStudy/{SEED}/_history/x"), 404)
    assert_outcome(client.get(f"/fhir/{release}/ResearchStudy/nct00000000"), 404, contains="not known")
    assert_outcome(client.get(f"/fhir/{release}/Patient/1"), 404, contains="not served")
    assert_outcome(client.get("/fhir/R6/ResearchStudy/x"), 404, contains="/fhir/R4")
    history = client.get(f"/fhir/{release}/ResearchStudy/{SEED}/_history").json()
    assert history["type"] == "history" and [e["resource"]["meta"]["versionId"] for e in history["entry"]] == [
        version,
        *[str(v) for v in range(int(version) - 1, 0, -1)],
    ]


# --- search: the parameters of the issue, with the seed trial ----------------------------------------

IDENTIFIER_QUERIES = [
    "NCT01854957",
    "nct01854957",
    "https://clinicaltrials.gov/nctid|NCT01854957",
    "http://clinicaltrials.gov|NCT01854957",
    "https://clinicaltrials.gov|NCT01854957",
    "https://www.clinicaltrials.gov/|NCT01854957",
    "http://terminology.hl7.org/NamingSystem/ClinicalTrials-Gov|NCT01854957",
    "2011-001295-19",
    "https://eudract.ema.europa.eu|2011-001295-19",
    "EudraCT 2011-001295-19",
    "MESEMS",
    "NCT00000000,NCT01854957",
]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("value", IDENTIFIER_QUERIES)
def test_identifier_variants(client: httpx.Client, release: str, value: str) -> None:
    bundle = search(client, f"/fhir/{release}/ResearchStudy", identifier=value)
    assert ids(bundle) == [SEED] and bundle["total"] == 1


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(
    "value", ["http://clinicaltrials.gov|NCT00000000", "https://eudract.ema.europa.eu|NCT01854957", "|NCT01854957"]
)
def test_identifier_misses(client: httpx.Client, release: str, value: str) -> None:
    assert search(client, f"/fhir/{release}/ResearchStudy", identifier=value)["total"] == 0


def _seed_matches(client: httpx.Client, release: str, **params: Any) -> bool:
    bundle = search(client, f"/fhir/{release}/ResearchStudy", _count=500, **params)
    assert bundle["total"] == len(ids(bundle)) or bundle["total"] > 500
    return SEED in ids(bundle)


@pytest.mark.parametrize("release", RELEASES)
def test_issue_parameters_find_the_seed(client: httpx.Client, loaded: Any, release: str) -> None:
    study = seed(loaded, release)
    title = study["title"]
    hit = lambda **p: _seed_matches(client, release, **p)  # noqa: E731
    assert hit(status=study["status"]) and not hit(status="withdrawn")
    assert hit(title="mesenchymal") and hit(title="MESENCHYMAL stem") and not hit(title="sclerosis")
    assert hit(**{"title:contains": "SCLEROSIS"}) and not hit(**{"title:contains": "diabetes"})
    assert hit(**{"title:exact": title}) and not hit(**{"title:exact": title.upper()})
    assert hit(keyword="Multiple sclerosis") and hit(keyword="https://www.nlm.nih.gov/mesh|D000009422")
    assert hit(**{"keyword:text": "stem cells"})
    assert hit(condition="Multiple Sclerosis") and hit(condition="multiple sclerosis")
    assert hit(condition="D000009103") and hit(condition="https://www.nlm.nih.gov/mesh|D000009103")
    assert hit(**{"condition:text": "sclero"}) and not hit(condition="Diabetes Mellitus")
    assert not hit(condition="http://snomed.info/sct|D000009103")
    phase_system = study["phase"]["coding"][0]["system"]
    assert hit(phase="phase-1-phase-2") and hit(phase=f"{phase_system}|phase-1-phase-2") and hit(phase="PHASE2")
    assert not hit(phase="phase-3")
    sponsor = (
        study["sponsor"]["reference"]
        if release == "R4"
        else next(
            p["party"]["reference"]
            for p in study["associatedParty"]
            if p["role"]["coding"][0]["code"] == "lead-sponsor"
        )
    )
    assert hit(sponsor=sponsor) and hit(sponsor=sponsor.split("/")[1]) and not hit(sponsor="Organization/none")
    assert hit(**{"sponsor:Organization": sponsor.split("/")[1]})
    site = study["site"][0]["reference"]
    assert hit(site=site) and hit(site=f"{loaded.base(release)}/{site}")
    assert hit(protocol=study["protocol"][0]["reference"])
    assert hit(date="ge2013") and hit(date="sa2011") and hit(date="le2012-08") and hit(date="2012-07-15") is False
    assert not hit(date="gt2015") and not hit(date="eb2012")
    assert hit(date=["ge2012", "le2014-12"]), "repeated parameters AND"
    assert hit(_id=SEED) and hit(_id=f"x,{SEED}") and not hit(_id="x")
    assert hit(_lastUpdated="ge2000-01-01") and not hit(_lastUpdated="lt2000")
    assert hit(identifier="NCT01854957", status=study["status"]) and not hit(identifier="NCT01854957", status="x")
    assert hit(**{"title:missing": "false"}) and not hit(**{"title:missing": "true"})
    assert hit(**{"status:not": "withdrawn"}) and not hit(**{"status:not": study["status"]})
    if release == "R4":
        assert hit(enrollment=f"Group/{SEED}-eligibility")
    else:
        assert hit(eligibility=f"Group/{SEED}-eligibility")


@pytest.mark.parametrize("release", RELEASES)
def test_chains_and_has(client: httpx.Client, loaded: Any, release: str) -> None:
    site = seed(loaded, release)["site"][0]["reference"]
    location = orjson.loads(loaded.store.read(FV[release], "Location", site.split("/")[1]).content)
    city = location["address"]["city"]
    bundle = search(client, f"/fhir/{release}/ResearchStudy", **{"site.address-city": city, "_count": 500})
    assert SEED in ids(bundle)
    bundle = search(client, f"/fhir/{release}/ResearchStudy", **{"site:Location.address-city": city, "_count": 500})
    assert SEED in ids(bundle)
    assert SEED not in ids(search(client, f"/fhir/{release}/ResearchStudy", **{"site.address-city": "Nowhere"}))
    has = search(client, f"/fhir/{release}/Location", **{"_has:ResearchStudy:site:identifier": "NCT01854957"})
    assert site.split("/")[1] in ids(has)
    assert all(i.startswith(SEED) for i in ids(has))


# --- every declared parameter, driven by the data --------------------------------------------------


def _query_for(kind: str, row: tuple[Any, ...]) -> tuple[str, str] | None:
    if kind == "token":
        code, system, value = row
        return code, (f"{system}|{value}" if system else value)
    if kind == "string":
        code, _, raw = row
        if code.endswith(TEXT_SUFFIX):
            return code, raw
        return code, raw.strip()[:6]
    if kind == "ref":
        code, ttype, tid = row
        return code, f"{ttype}/{tid}"
    code, low, _ = row
    if low == MIN_US:
        return None
    return code, "ge" + datetime.fromtimestamp(low // 1_000_000, UTC).strftime("%Y-%m-%d")


@pytest.mark.parametrize("release", RELEASES)
def test_every_indexed_value_finds_its_resource(client: httpx.Client, loaded: Any, release: str) -> None:
    """For a sample of stored resources of each type: each index row, searched for, finds the resource."""
    fv = FV[release]
    checked: set[str] = set()
    for rtype, params in search_params(fv).items():
        page = search(client, f"/fhir/{release}/{rtype}", _count=12, _sort="-_lastUpdated")
        resources = [e["resource"] for e in page.get("entry", [])]
        assert resources, f"no {rtype} in the fixtures"
        for resource in resources:
            rows = index_rows(fv, resource)
            firsts: dict[str, tuple[str, tuple[Any, ...]]] = {}
            for kind, items in (
                ("token", rows.tokens),
                ("string", rows.strings),
                ("ref", rows.refs),
                ("date", rows.dates),
            ):
                for row in items:
                    firsts.setdefault(row[0], (kind, row))
            for kind, row in firsts.values():
                query = _query_for(kind, row)
                if query is None:
                    continue
                code, value = query
                found = search(client, f"/fhir/{release}/{rtype}", **{code: value, "_id": resource["id"]})
                assert found["total"] == 1, f"{rtype}?{code}={value} misses {resource['id']}"
                checked.add(f"{rtype}.{code.split(':')[0]}")
        for code in params:
            response = client.get(f"/fhir/{release}/{rtype}", params={f"{code}:missing": "false", "_count": 1})
            assert response.status_code == 200, f"{rtype}.{code}: {response.text[:300]}"
    assert len(checked) >= 30, sorted(checked)


# --- paging, sorting ---------------------------------------------------------------------------------


def _walk(client: httpx.Client, url: str, relation: str = "next") -> list[dict[str, Any]]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.text[:300]
        page = response.json()
        pages.append(page)
        url = next((link["url"] for link in page["link"] if link["relation"] == relation), "")
        assert len(pages) < 1000
    return pages


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(("rtype", "count"), [("ResearchStudy", 4), ("Location", 97), ("Organization", 500)])
def test_paging_through_all_pages(client: httpx.Client, release: str, rtype: str, count: int) -> None:
    pages = _walk(client, f"/fhir/{release}/{rtype}?_count={count}&_sort=_id")
    total = pages[0]["total"]
    seen = [i for page in pages for i in ids(page)]
    assert len(seen) == total == len(set(seen)), "every match exactly once"
    assert seen == sorted(seen)
    assert all(len(ids(page)) == count for page in pages[:-1])
    assert all(page["total"] == total for page in pages)
    if len(pages) > 1:
        last = next(link["url"] for link in pages[0]["link"] if link["relation"] == "last")
        back = _walk(client, last, "previous")
        assert [i for page in reversed(back) for i in ids(page)] == seen, "previous links walk back the same pages"
        cursor = urlsplit(pages[1]["link"][0]["url"])
        assert list(parse_qs(cursor.query)) == ["_cursor"], "paging links are opaque"


@pytest.mark.parametrize("release", RELEASES)
def test_sorting(client: httpx.Client, release: str) -> None:
    def titles(sort: str) -> list[str]:
        bundle = search(client, f"/fhir/{release}/ResearchStudy", _sort=sort, _count=100, _elements="title")
        return [e["resource"].get("title", "") for e in bundle["entry"] if e["search"]["mode"] == "match"]

    ascending = titles("title")
    assert [t.casefold() for t in ascending if t] == sorted(t.casefold() for t in ascending if t)
    assert titles("-title") == list(reversed(ascending)) or [t.casefold() for t in titles("-title")] == sorted(
        (t.casefold() for t in ascending), reverse=True
    )
    by_id = ids(search(client, f"/fhir/{release}/ResearchStudy", _sort="-_id", _count=100))
    assert by_id == sorted(by_id, reverse=True)
    dated = search(client, f"/fhir/{release}/ResearchStudy", _sort="date", _count=100)
    starts = [e["resource"].get("period", {}).get("start") for e in dated["entry"]]
    known = [s for s in starts if s]
    assert known == sorted(known, key=lambda s: s[:7]) and starts[: len(known)] == known, "missing dates last"


# --- _include, _revinclude ---------------------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_includes(client: httpx.Client, loaded: Any, release: str) -> None:
    study = seed(loaded, release)
    base = f"/fhir/{release}/ResearchStudy"
    eligibility = "ResearchStudy:enrollment" if release == "R4" else "ResearchStudy:eligibility"
    bundle = search(
        client,
        base,
        identifier="NCT01854957",
        _include=["ResearchStudy:protocol", "ResearchStudy:site", "ResearchStudy:sponsor", eligibility],
    )
    assert ids(bundle) == [SEED]
    included = typed(bundle, "include")
    assert study["protocol"][0]["reference"] in included
    assert {s["reference"] for s in study["site"]} <= included
    assert f"Group/{SEED}-eligibility" in included
    assert any(i.startswith("Organization/") for i in included)
    assert bundle["total"] == 1, "total counts matches only"
    assert all(
        e["fullUrl"].endswith(e["resource"]["resourceType"] + "/" + e["resource"]["id"]) for e in bundle["entry"]
    )

    everything = typed(search(client, base, identifier="NCT01854957", _include="ResearchStudy:*"), "include")
    assert included <= everything
    only_locations = typed(
        search(client, base, identifier="NCT01854957", _include="ResearchStudy:site:Location"), "include"
    )
    assert only_locations and all(i.startswith("Location/") for i in only_locations)

    iterated = typed(
        search(
            client,
            base,
            identifier="NCT01854957",
            _include="ResearchStudy:site",
            **{"_include:iterate": "Location:organization"},
        ),
        "include",
    )
    assert any(i.startswith("Organization/") for i in iterated) or not any(
        "managingOrganization" in orjson.loads(loaded.store.read(FV[release], "Location", s.split("/")[1]).content)
        for s in (x["reference"] for x in study["site"])
    )

    site_id = study["site"][0]["reference"].split("/")[1]
    reverse = search(client, f"/fhir/{release}/Location", _id=site_id, _revinclude="ResearchStudy:site")
    assert f"ResearchStudy/{SEED}" in typed(reverse, "include")
    protocol = search(
        client, f"/fhir/{release}/PlanDefinition", _id=f"{SEED}-protocol", _revinclude="ResearchStudy:protocol"
    )
    assert typed(protocol, "include") == {f"ResearchStudy/{SEED}"}
    assert_outcome(client.get(base, params={"_include": "Location:organization"}), 400, contains="source type")


# --- _summary, _elements, lenient/strict, bad values ------------------------------------------------------------

SUBSETTED = "SUBSETTED"


@pytest.mark.parametrize("release", RELEASES)
def test_summary_and_elements(client: httpx.Client, release: str) -> None:
    base = f"/fhir/{release}/ResearchStudy"
    count = search(client, base, _summary="count")
    assert "entry" not in count and count["total"] >= 20
    assert search(client, base, _count=0)["total"] == count["total"]
    summary = search(client, base, identifier="NCT01854957", _summary="true")["entry"][0]["resource"]
    assert SUBSETTED in str(summary["meta"]["tag"]) and "title" in summary and "status" in summary
    assert "description" not in summary and "outcomeMeasure" not in summary
    elements = search(client, base, identifier="NCT01854957", _elements="title,identifier")["entry"][0]["resource"]
    expected = {"resourceType", "id", "meta", "title", "identifier", "status"}
    assert set(elements) - {"_status"} == expected, "mandatory status kept (with its extensions)"
    data = search(client, base, identifier="NCT01854957", _summary="data")["entry"][0]["resource"]
    assert "text" not in data and "title" in data
    read = client.get(f"{base}/{SEED}", params={"_summary": "true"}).json()
    assert SUBSETTED in str(read["meta"]["tag"])
    read = client.get(f"{base}/{SEED}", params={"_elements": "title"}).json()
    assert set(read) - {"_status"} == {"resourceType", "id", "meta", "title", "status"}


@pytest.mark.parametrize("release", RELEASES)
def test_lenient_and_strict_handling(client: httpx.Client, release: str) -> None:
    base = f"/fhir/{release}/ResearchStudy"
    bundle = search(client, base, identifier="NCT01854957", colour="blue", _foo="1")
    assert ids(bundle) == [SEED]
    self_link = bundle["link"][0]["url"]
    assert "colour" not in self_link and "_foo" not in self_link and "identifier=NCT01854957" in self_link
    outcome = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "colour" in outcome[0]["issue"][0]["diagnostics"]
    strict = client.get(
        base, params={"identifier": "NCT01854957", "colour": "blue"}, headers={"Prefer": "handling=strict"}
    )
    assert_outcome(strict, 400, contains="colour")
    assert search(client, base, identifier="NCT01854957")["link"][0]["url"].endswith("identifier=NCT01854957")


@pytest.mark.parametrize(
    "params",
    [
        {"date": "July 2012"},
        {"_count": "many"},
        {"_count": "-1"},
        {"_summary": "maybe"},
        {"title:fuzzy": "x"},
        {"status:missing": "perhaps"},
        {"site": "Location/"},
        {"_total": "exact"},
        {"_cursor": "garbage!"},
        {"_summary": "true", "_elements": "title"},
        {"_include": "ResearchStudy"},
    ],
)
def test_bad_values_are_400(client: httpx.Client, params: dict[str, str]) -> None:
    assert_outcome(client.get("/fhir/R4/ResearchStudy", params=params), 400)


def test_count_is_capped(client: httpx.Client, loaded: Any) -> None:
    bundle = search(client, "/fhir/R4/Location", _count=100_000)
    assert len(bundle["entry"]) == loaded.settings.max_count
    assert "_count=500" in bundle["link"][0]["url"]


def test_post_search(client: httpx.Client) -> None:
    response = client.post("/fhir/R4/ResearchStudy/_search", data={"identifier": "NCT01854957"})
    assert response.status_code == 200 and ids(response.json()) == [SEED]
    assert_outcome(
        client.post("/fhir/R4/ResearchStudy/_search", content=b"{}", headers={"Content-Type": "application/json"}), 415
    )
