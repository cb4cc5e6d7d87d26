"""Events read back from ``events.json`` (pipeline.events): typed, checked once, and turned
back into exactly the JSON stored."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from blockproof.pipeline import engine
from blockproof.pipeline.analyze import Analysis, Event, NetworkSpan, save
from blockproof.pipeline.events import (
    StoredEvent,
    StoredNetwork,
    StoredSample,
    StoredWitness,
    load_events,
    read_events,
)
from blockproof.pipeline.store import Store, StoreError

SAMPLE = {
    "msm_id": "20240217160500.000000_PK_webconnectivity_0011223344556677",
    "measurement_start_time": "2024-02-17 16:05:00",
    "probe_asn": 17557,
    "outcome": "confirmed",
    "method": "tls",
    "rule_id": "wc.tls.reset",
    "explanation": "The TLS handshake was reset.",
    "fingerprint": "pk_sni_reset",
    "input": "https://x.com/",
    "raw_sha256": "9f" * 32,
    "signature": "unsigned",
    "probe_id": None,
    "receipt": None,
    "inclusion": None,
    "source_sha256": "ab" * 32,
    "source_line": 12,
}
WITNESS = {
    "msm_id": SAMPLE["msm_id"],
    "probe_asn": 17557,
    "outcome": "confirmed",
    "method": "tls",
    "rule_id": "wc.tls.reset",
    "fingerprint": None,
}


def events() -> list[Event]:
    ptcl = NetworkSpan(
        asn=17557,
        name="PTCL",
        start="2024-02-17T16:00:00Z",
        start_earliest="2024-02-17T15:00:00Z",
        start_latest="2024-02-17T16:00:00Z",
        end=None,
        end_earliest=None,
        end_latest=None,
        blocked_probe_hours=40,
        scored_probe_hours=44,
        floor_p_value=1.5e-12,
        restorations=[("2024-02-18T02:00:00Z", "2024-02-18T04:00:00Z")],
    )
    ongoing = Event(
        id="pk-x-2024021716-0a1b2c3d",
        kind="platform_block",
        platform="x",
        country="PK",
        start="2024-02-17T16:00:00Z",
        start_earliest="2024-02-17T15:00:00Z",
        start_latest="2024-02-17T16:00:00Z",
        end=None,
        end_earliest=None,
        end_latest=None,
        ongoing=True,
        networks=[ptcl],
        methods=[
            {"method": "tls", "count": 30, "share": 0.9375},
            {"method": "dns", "count": 2, "share": 0.0625},
        ],
        confidence="confirmed",
        n_measurements=120,
        n_probes=33,
        n_blocked=32,
        n_confirmed=4,
        restorations=[("2024-02-18T02:00:00Z", "2024-02-18T04:00:00Z")],
        witnesses=[WITNESS],
        samples=[SAMPLE],
    )
    ended = dataclasses.replace(
        ongoing,
        id="pk-all-2024020803-98475c51",
        kind="outage",
        platform="*",
        end="2024-02-08T20:00:00Z",
        end_earliest="2024-02-08T18:00:00Z",
        end_latest="2024-02-08T21:00:00Z",
        ongoing=False,
        networks=[dataclasses.replace(ptcl, end="2024-02-08T20:00:00Z", restorations=[])],
        methods=[{"method": "dns", "count": 16, "share": 1.0}],
        n_confirmed=0,
        restorations=[],
        samples=[],
    )
    return [ongoing, ended]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    empty_cells = pa.table({"hour": pa.array([], pa.int64())})
    save(store, Analysis(cells=empty_cells, events=events(), engine="duckdb"))
    return store


def test_what_analyze_saves_reads_back_typed_and_writes_back_unchanged(store: Store) -> None:
    stored = load_events(store)
    typed = read_events(store)
    assert [e.id for e in typed] == [e.id for e in events()]
    first = typed[0]
    assert first.networks[0].name == "PTCL"
    assert first.networks[0].restorations == (("2024-02-18T02:00:00Z", "2024-02-18T04:00:00Z"),)
    assert [m.method for m in first.methods] == ["tls", "dns"]
    assert first.samples is not None
    assert first.samples[0].source_line == 12
    assert typed[1].samples == ()
    assert [e.to_json() for e in typed] == stored
    # byte for byte, key order included: JSON served from the objects is the file's
    assert json.dumps([e.to_json() for e in typed]) == json.dumps(stored)


def test_the_read_side_has_exactly_the_fields_written() -> None:
    def names(cls: Any) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert names(StoredEvent) == names(Event)
    assert names(StoredNetwork) == names(NetworkSpan)
    assert names(StoredSample) == set(engine.SAMPLE_DETAILS) | {
        "measurement_start_time", "probe_asn", "outcome", "method", "rule_id", "explanation",
        "fingerprint",
    }  # fmt: skip
    assert names(StoredWitness) == set(WITNESS)


def test_an_analysis_without_samples_reads_as_none_and_stays_without(store: Store) -> None:
    data = json.loads(store.events_path.read_text())
    for event in data["events"]:
        del event["samples"]
    store.events_path.write_text(json.dumps(data, indent=2, sort_keys=True))
    typed = read_events(store)
    assert [e.samples for e in typed] == [None, None]
    assert [e.to_json() for e in typed] == data["events"]


def test_numbers_are_kept_as_written() -> None:
    event = events()[1].as_dict()
    event["methods"][0]["share"] = 1  # an int where a float is usual
    assert StoredEvent.from_json(event).to_json()["methods"][0]["share"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("country"), r"event \(pk-x-2024021716-0a1b2c3d\): no 'country'"),
        (lambda e: e.update(n_probes="33"), r"'n_probes' is '33', not an integer"),
        (lambda e: e.update(ongoing=1), r"'ongoing' is 1, not true or false"),
        (lambda e: e["networks"][0].update(asn=None), r"networks\[0\]: 'asn' is None"),
        (lambda e: e["samples"][0].pop("source_line"), r"samples\[0\]: no 'source_line'"),
        (lambda e: e.update(restorations=[["a"]]), r"restorations\[0\]: \['a'\] is not a \[from"),
        (lambda e: e.update(novel=1), r"unknown 'novel': the store was analysed by another"),
        (lambda e: e["methods"].append(3), r"methods\[2\]: not a JSON object"),
    ],
)
def test_a_stored_event_unlike_what_analyze_writes_is_refused_by_name(
    change: Any, message: str
) -> None:
    event = json.loads(json.dumps(events()[0].as_dict()))
    change(event)
    with pytest.raises(StoreError, match=message):
        StoredEvent.from_json(event)


def test_read_events_names_the_file_and_the_event(store: Store) -> None:
    data = json.loads(store.events_path.read_text())
    data["events"][1]["kind"] = None
    store.events_path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=r"events.json: event 1 \(pk-all-[^)]+\): 'kind' is None"):
        read_events(store)


def test_before_the_first_analysis_there_are_no_events(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `blockproof analyze"):
        read_events(Store(tmp_path))
