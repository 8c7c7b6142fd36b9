"""Versioning, history, deletes, atomic transactions, concurrency and the search index, on both databases."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from adapter.store import Query, Store, VersionConflict, open_store
from adapter.store.base import Tx

FV = "4.0"


def org(rid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": rid, "name": name, **extra}


def put(store: Store, resource: dict[str, Any], **options: Any) -> Any:
    return store.transact(lambda tx: tx.put(FV, resource, **options))


def names(store: Store, value: str) -> list[str]:
    query = Query(FV, "Organization")
    query.add(
        "r.rid IN (SELECT rid FROM idx_string WHERE fv = ? AND rtype = ? AND param = ? AND norm = ?)",
        FV,
        "Organization",
        "name",
        value,
    )
    return store.search_ids(query, 100)


def test_versions_history_and_unchanged_writes(store: Store) -> None:
    first = put(store, org("o1", "University of Genova"))
    assert first.outcome == "created" and first.stored.version == 1
    again = put(
        store, org("o1", "University of Genova", meta={"versionId": "7", "lastUpdated": "2000-01-01T00:00:00Z"})
    )
    assert again.outcome == "unchanged" and again.stored.version == 1, "meta.versionId/lastUpdated are not content"
    second = put(store, org("o1", "Università di Genova"))
    assert second.outcome == "updated" and second.stored.version == 2

    current = store.read(FV, "Organization", "o1")
    assert current is not None and current.version == 2
    body = orjson.loads(current.content)
    assert body["meta"]["versionId"] == "2" and body["meta"]["lastUpdated"] == current.last_updated
    assert body["name"] == "Università di Genova"
    old = store.vread(FV, "Organization", "o1", 1)
    assert old is not None and orjson.loads(old.content)["name"] == "University of Genova"
    assert store.vread(FV, "Organization", "o1", 3) is None
    assert [s.version for s in store.history(FV, "Organization", "o1", 10)] == [2, 1]
    assert store.read("5.0", "Organization", "o1") is None, "the two FHIR versions are separate"


def test_delete_is_a_version_and_recreate_continues_the_history(store: Store) -> None:
    put(store, org("o2", "Acme"))
    deleted = store.transact(lambda tx: tx.delete(FV, "Organization", "o2"))
    assert deleted.outcome == "deleted" and deleted.stored.version == 2
    current = store.read(FV, "Organization", "o2")
    assert current is not None and current.deleted and current.content is None
    assert names(store, "acme") == [], "a deleted resource leaves the index"
    again = store.transact(lambda tx: tx.delete(FV, "Organization", "o2"))
    assert again.outcome == "absent"
    recreated = put(store, org("o2", "Acme"))
    assert recreated.outcome == "created" and recreated.stored.version == 3
    assert [s.deleted for s in store.history(FV, "Organization", "o2", 10)] == [False, True, False]
    assert names(store, "acme") == ["o2"]


def test_if_match(store: Store) -> None:
    put(store, org("o3", "Acme"))
    assert put(store, org("o3", "Acme 2"), if_match=1).stored.version == 2
    with pytest.raises(VersionConflict) as caught:
        put(store, org("o3", "Acme 3"), if_match=1)
    assert caught.value.current == 2
    with pytest.raises(VersionConflict):
        put(store, org("missing", "Nobody"), if_match=1)


def test_create_only_keeps_the_first_spelling(store: Store) -> None:
    put(store, org("o4", "University of X"), create_only=True)
    kept = put(store, org("o4", "UNIVERSITY OF X"), create_only=True)
    assert kept.outcome == "kept"
    assert orjson.loads(store.read(FV, "Organization", "o4").content)["name"] == "University of X"


def test_a_failing_transaction_stores_nothing(store: Store) -> None:
    def work(tx: Tx) -> None:
        tx.put(FV, org("a", "A"))
        tx.put(FV, org("b", "B"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transact(work)
    assert store.read(FV, "Organization", "a") is None
    assert store.read(FV, "Organization", "b") is None
    assert names(store, "a") == []


def test_index_follows_the_current_version(store: Store) -> None:
    put(store, org("o5", "Old Name", alias=["Alias One"]))
    assert names(store, "old name") == ["o5"] and names(store, "alias one") == ["o5"]
    put(store, org("o5", "New Name"))
    assert names(store, "old name") == [] and names(store, "alias one") == []
    assert names(store, "new name") == ["o5"]


def test_concurrent_read_modify_write_loses_no_update(store_url: str) -> None:
    """Eight writers (two store objects: two processes' worth of pools) increment one counter with If-Match."""
    stores = [open_store(store_url), open_store(store_url)]
    put(stores[0], org("counter", "Counter", extension=[{"url": "urn:count", "valueInteger": 0}]))
    rounds, writers = 10, 8
    conflicts = []

    def writer(store: Store) -> None:
        done = 0
        while done < rounds:
            current = store.read(FV, "Organization", "counter")
            assert current is not None
            body = orjson.loads(current.content)
            body["extension"][0]["valueInteger"] += 1
            try:
                put(store, body, if_match=current.version)
                done += 1
            except VersionConflict:
                conflicts.append(1)

    threads = [threading.Thread(target=writer, args=(stores[i % 2],)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    final = stores[0].read(FV, "Organization", "counter")
    assert final is not None
    assert orjson.loads(final.content)["extension"][0]["valueInteger"] == rounds * writers
    assert final.version == rounds * writers + 1
    versions = [s.version for s in stores[1].history(FV, "Organization", "counter", 1000)]
    assert versions == list(range(final.version, 0, -1)), "every update is a version, none lost or doubled"
    for opened in stores:
        opened.close()


def test_concurrent_blind_writes_to_a_new_resource(store_url: str) -> None:
    """Racing creators of the same id: one creates, the others update; the history has every write."""
    stores = [open_store(store_url) for _ in range(2)]
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def writer(number: int) -> None:
        barrier.wait()
        outcomes.append(put(stores[number % 2], org("race", f"Writer {number}")).outcome)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["created"] + ["updated"] * 5
    history = stores[0].history(FV, "Organization", "race", 100)
    assert [s.version for s in history] == [6, 5, 4, 3, 2, 1]
    assert len({orjson.loads(s.content)["name"] for s in history}) == 6
    for opened in stores:
        opened.close()


def test_paging_snapshots(store: Store) -> None:
    store.save_page("tok", ["a", "b", "c"], 3)
    assert store.load_page("tok", 60) == (["a", "b", "c"], 3)
    assert store.load_page("tok", 0) is None, "expired"
    assert store.load_page("other", 60) is None


def test_references_both_ways(store: Store) -> None:
    put(store, org("parent", "Parent"))
    put(store, org("child", "Child", partOf={"reference": "Organization/parent"}))
    assert store.refs_from(FV, "Organization", ["child"], ["partof"]) == [("Organization", "parent")]
    assert store.refs_to(FV, "Organization", "partof", "Organization", ["parent"], 10) == ["child"]
    assert store.refs_to(FV, "Organization", "*", "Organization", ["parent"], 10) == ["child"]
    assert set(store.fetch(FV, "Organization", ["parent", "child", "none"])) == {"parent", "child"}
    assert store.counts() == {(FV, "Organization"): 2}


def test_ingest_log(store: Store) -> None:
    assert not store.is_ingested("k")
    store.transact(lambda tx: tx.mark_ingested("k", "file.json", 1))
    store.transact(lambda tx: tx.mark_ingested("k", "file.json", 1))
    assert store.is_ingested("k")


def _index_of(store: Store, rid: str) -> list[tuple[Any, ...]]:
    with store.connection() as conn:
        rows = []
        for table in ("idx_token", "idx_string", "idx_ref", "idx_date"):
            found = store.execute(conn, f"SELECT * FROM {table} WHERE fv = ? AND rid = ?", (FV, rid)).fetchall()
            rows += sorted((table, *row[1:]) for row in found)
        return rows


@pytest.mark.parametrize("prepared", [False, True])
def test_put_many_writes_what_put_would_write(store_url: str, second_store_url: str, prepared: bool) -> None:
    """Bulk loads use ``put_many``; one ``put`` per resource, in a second store, is the reference."""
    from adapter.store.base import prepare

    study = {
        "resourceType": "ResearchStudy",
        "id": "s1",
        "status": "active",
        "title": "Mesenchymal stem cells",
        "identifier": [{"system": "https://clinicaltrials.gov/nctid", "value": "NCT01854957"}],
        "sponsor": {"reference": "Organization/a"},
    }
    batches = [
        [org("a", "Acme"), org("b", "Beta"), org("a", "Acme Corp"), study, org("c", "Gamma")],
        [org("b", "Beta"), org("a", "Acme Corp"), org("c", "Gamma Ltd"), {**study, "title": "MSC in MS"}],
        [org("a", "Acme"), org("a", "Acme"), org("a", "Acme 2"), org("c", "Gamma")],
    ]
    create_only = ("Organization",) if prepared else ("ResearchStudy",)
    bulk, single = open_store(store_url), open_store(second_store_url)
    try:
        for number, batch in enumerate(batches):
            if number == 1:  # a deleted resource written again continues its history
                for target in (bulk, single):
                    target.transact(lambda tx: tx.delete(FV, "Organization", "b"))

            def one_by_one(tx: Tx, batch: list[dict[str, Any]] = batch) -> list[tuple[str, int | None]]:
                results = [tx.put(FV, r, create_only=r["resourceType"] in create_only) for r in batch]
                return [(r.outcome, r.stored.version if r.stored else None) for r in results]

            def at_once(tx: Tx, batch: list[dict[str, Any]] = batch) -> list[tuple[str, int | None]]:
                ready = [prepare(FV, r) for r in batch] if prepared else None
                results = tx.put_many(FV, batch, create_only=create_only, prepared=ready)
                return [(r.outcome, r.stored.version if r.stored else None) for r in results]

            assert bulk.transact(at_once) == single.transact(one_by_one), number

        keys = [("Organization", "a"), ("Organization", "b"), ("Organization", "c"), ("ResearchStudy", "s1")]
        for rtype, rid in keys:
            got, expected = bulk.read(FV, rtype, rid), single.read(FV, rtype, rid)
            assert got is not None and expected is not None, rid
            assert (got.version, got.deleted) == (expected.version, expected.deleted), rid
            bodies = [orjson.loads(got.content), orjson.loads(expected.content)]
            for body in bodies:
                del body["meta"]["lastUpdated"]
            assert bodies[0] == bodies[1], rid
            history = [(s.version, s.deleted) for s in bulk.history(FV, rtype, rid, 50)]
            assert history == [(s.version, s.deleted) for s in single.history(FV, rtype, rid, 50)], rid
            assert _index_of(bulk, rid) == _index_of(single, rid), rid
        assert _index_of(bulk, "s1"), "the study is indexed"
        # Duplicates inside one call were written in order (or kept, for a create-only type).
        assert bulk.read(FV, "Organization", "a").version == (1 if "Organization" in create_only else 4)  # type: ignore[union-attr]
    finally:
        bulk.close()
        single.close()
