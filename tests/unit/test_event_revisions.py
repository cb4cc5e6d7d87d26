"""What the incremental pipeline keeps in the store: the files ingested whole
(``ingested.json``), the events' revisions in ``events.json`` and every id ever given
(``event-history.json``), read back and refused when damaged."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_stored_events import events

from blockproof.pipeline.analyze import Analysis, Event, save
from blockproof.pipeline.events import (
    StoredEvent,
    load_events,
    read_events,
    read_history,
    resolve_event_id,
)
from blockproof.pipeline.store import IngestedFile, Store, StoreError

SECOND = 1_000_000_000
CHECKED = 1_700_000_000 * SECOND


LONG_BEFORE = CHECKED - 60 * SECOND  # written a minute before it was checked
JUST_BEFORE = CHECKED - SECOND  # written a second before it was checked


@pytest.mark.parametrize(
    ("recorded_mtime", "size", "mtime_ns", "expected"),
    [
        (LONG_BEFORE, 100, LONG_BEFORE, True),  # as recorded
        (LONG_BEFORE, 101, LONG_BEFORE, False),  # grew
        (LONG_BEFORE, 100, LONG_BEFORE + SECOND, False),  # written again
        (LONG_BEFORE, 100, LONG_BEFORE - SECOND, False),  # another file moved in its place
        # as recorded, but written just before the check: a later write in the same tick
        # of a coarse clock would have left size and time as they were
        (JUST_BEFORE, 100, JUST_BEFORE, False),
    ],
)
def test_a_file_is_unchanged_by_its_size_and_time_only_when_they_can_tell(
    recorded_mtime: int, size: int, mtime_ns: int, expected: bool
) -> None:
    recorded = IngestedFile("/data/a.jsonl.gz", 100, recorded_mtime, "ab" * 32, CHECKED)
    assert recorded.unchanged(size, mtime_ns) is expected


def _store_with_measurements(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    part = store.table_dir("measurements") / "day=2024-02-17" / "cc=PK"
    part.mkdir(parents=True)
    (part / "part-0.parquet").write_bytes(b"")
    return store


def test_the_files_ingested_whole_are_recorded_and_merged(tmp_path: Path) -> None:
    store = _store_with_measurements(tmp_path)
    assert store.ingested() == {}
    a = IngestedFile("/data/a.jsonl.gz", 10, 1, "aa" * 32, 5)
    b = IngestedFile("/data/b.jsonl.gz", 20, 2, "bb" * 32, 6)
    store.record_ingested({a.path: a})
    store.record_ingested({b.path: b})
    assert store.ingested() == {a.path: a, b.path: b}
    newer = dataclasses.replace(a, size=11, sha256="cc" * 32)
    store.record_ingested({a.path: newer})
    assert store.ingested()[a.path] == newer
    # a store whose tables are gone holds nothing, whatever the record says
    (store.table_dir("measurements") / "day=2024-02-17" / "cc=PK" / "part-0.parquet").unlink()
    assert store.ingested() == {}


BAD_SIZE = {"path": "/a", "size": "1", "mtime_ns": 1, "checked_ns": 1, "sha256": "a" * 64}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "ingested.json is unreadable"),
        ('{"files": 3}', "no 'files' list"),
        ('{"files": [{"path": "/a"}]}', "not an ingested file"),
        (json.dumps({"files": [BAD_SIZE]}), "not an ingested file"),
    ],
)
def test_a_damaged_record_of_ingested_files_is_refused_with_the_way_out(
    tmp_path: Path, text: str, message: str
) -> None:
    store = _store_with_measurements(tmp_path)
    store.ingested_path.write_text(text)
    with pytest.raises(StoreError, match=message) as info:
        store.ingested()
    assert "delete it and ingest again" in str(info.value)
    assert "\n" not in str(info.value)


# -- events.json and the history ---------------------------------------------------------

EMPTY = pa.table({"hour": pa.array([], pa.int64())})
T1 = datetime(2024, 2, 18, 0, 0, tzinfo=UTC)
T2 = datetime(2024, 2, 19, 0, 0, tzinfo=UTC)
T3 = datetime(2024, 2, 26, 0, 0, tzinfo=UTC)


def analysis(found: list[Event]) -> Analysis:
    return Analysis(cells=EMPTY, events=[dataclasses.replace(e) for e in found], engine="duckdb")


def test_saving_twice_keeps_ids_and_revisions_and_an_end_makes_a_revision(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    ongoing, outage = events()
    assert save(store, analysis([ongoing, outage]), now=T1)["new"] == sorted(
        [ongoing.id, outage.id]
    )
    first = {e.id: e for e in read_events(store)}
    assert {(e.revision, e.first_seen, e.updated) for e in first.values()} == {
        (1, "2024-02-18T00:00:00Z", "2024-02-18T00:00:00Z")
    }
    changes = save(store, analysis([ongoing, outage]), now=T2)
    assert changes["unchanged"] == sorted(first)
    assert not changes["updated"]
    assert {e.id: e for e in read_events(store)} == first  # not a byte moved
    # the block ends; the counts grow (not a change that matters), the outage is gone
    ended = dataclasses.replace(
        ongoing,
        id="provisional",
        end="2024-02-25T08:00:00Z",
        end_earliest="2024-02-25T06:00:00Z",
        end_latest="2024-02-25T09:00:00Z",
        ongoing=False,
        networks=[dataclasses.replace(ongoing.networks[0], end="2024-02-25T08:00:00Z")],
        n_measurements=ongoing.n_measurements + 400,
    )
    changes = save(store, analysis([ended]), now=T3)
    assert changes == {
        "new": [], "updated": [ongoing.id], "unchanged": [], "merged": [],
        "vanished": [outage.id],
    }  # fmt: skip
    [now] = read_events(store)
    assert (now.id, now.revision, now.end, now.ongoing) == (
        ongoing.id, 2, "2024-02-25T08:00:00Z", False,
    )  # fmt: skip
    assert (now.first_seen, now.updated) == ("2024-02-18T00:00:00Z", "2024-02-26T00:00:00Z")
    history = {k.id: k for k in read_history(store, "")}
    assert history[outage.id].status == "vanished"
    assert resolve_event_id(store, outage.id) is None
    # the outage comes back: its id again, a new revision
    save(store, analysis([ended, outage]), now=T3)
    back = {e.id: e for e in read_events(store)}
    assert back[outage.id].revision == 2


def test_an_event_written_before_revisions_reads_as_revision_1_and_stays_without(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    save(store, analysis(events()), now=T1)
    data = json.loads(store.events_path.read_text())
    for event in data["events"]:
        for key in ("revision", "first_seen", "updated"):
            del event[key]
    store.events_path.write_text(json.dumps(data, indent=2, sort_keys=True))
    typed = read_events(store)
    assert [(e.revision, e.first_seen, e.updated) for e in typed] == [(1, None, None)] * 2
    assert [e.to_json() for e in typed] == load_events(store)


def test_a_store_analysed_before_there_was_a_history_keeps_its_event_ids(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    old = events()
    save(store, analysis(old), now=T1)
    store.event_history_path.unlink()
    data = json.loads(store.events_path.read_text())
    for event in data["events"]:
        for key in ("revision", "first_seen", "updated"):
            del event[key]
    store.events_path.write_text(json.dumps(data))
    # found again with a start moved earlier by late data: the earlier analysis' id
    moved = [dataclasses.replace(old[0], id="pk-x-2024021713-ffffffff",
                                 start="2024-02-17T13:00:00Z"), old[1]]  # fmt: skip
    save(store, analysis(moved), now=T2)
    typed = read_events(store)
    assert [e.id for e in typed] == [e.id for e in old]
    assert [(e.revision, e.first_seen) for e in typed] == [
        (2, "2024-02-19T00:00:00Z"), (1, "2024-02-19T00:00:00Z"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(events=3), "no 'events' list"),
        (lambda d: d["events"][0].pop("status"), r"entry 0 \(pk-[^)]+\): no 'status'"),
        (lambda d: d["events"][0].update(status="lost"), "status 'lost'"),
        (lambda d: d["events"][0].update(revision=0), "revision 0"),
    ],
)
def test_a_damaged_history_is_refused_by_name(tmp_path: Path, change: Any, message: str) -> None:
    store = Store(tmp_path / "store")
    save(store, analysis(events()), now=T1)
    data = json.loads(store.event_history_path.read_text())
    change(data)
    store.event_history_path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=message):
        save(store, analysis(events()), now=T2)


def test_an_unreadable_history_is_refused_with_the_way_out(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    save(store, analysis(events()), now=T1)
    store.event_history_path.write_text("{")
    with pytest.raises(StoreError, match=r"event-history\.json is unreadable.*delete it"):
        save(store, analysis(events()), now=T2)


def test_a_revision_below_one_is_refused() -> None:
    event = events()[0]
    stored = {**dataclasses.replace(event, first_seen="x", updated="x").as_dict(), "revision": 0}
    with pytest.raises(StoreError, match="'revision' is 0"):
        StoredEvent.from_json(json.loads(json.dumps(stored)))


def test_an_unsaved_event_has_no_revision_fields() -> None:
    assert not {"revision", "first_seen", "updated"} & set(events()[0].as_dict())
