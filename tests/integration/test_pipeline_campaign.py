"""Simulated campaigns with known truth, end to end: simulate -> ingest -> analyze.

* test-block: 200 probes, 90 days, X blocked on two of four networks with a brief
  restoration: one event, on the right networks, start and end within 2 hours of
  the truth, the restoration inside it, no other event.
* test-outage: one network loses connectivity for 12 hours: labelled an outage
  of everything, not a platform block.
* The same analysis on DuckDB and on Spark gives identical cells and events.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from blockproof.pipeline.analyze import Analysis, analyze_store
from blockproof.pipeline.ingest import ingest
from blockproof.pipeline.store import Store
from blockproof.simulate import resolve_sim_scenario, simulate

TOLERANCE_S = 2 * 3600
# simulating and ingesting 200 probes x 90 days (about 110,000 measurements) takes a
# minute or two on 2 cores
pytestmark = pytest.mark.timeout(900)


def when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def campaign(tmp: Path, scenario: str, probes: int, days: int) -> tuple[Store, dict[str, Any]]:
    out = tmp / f"{scenario}.jsonl.gz"
    result = simulate(resolve_sim_scenario(scenario), out, probes=probes, days=days, seed=7)
    store = Store(tmp / "store")
    report = ingest([out], store, jobs=2)
    assert report.new == result.measurements
    assert report.bad == 0
    return store, json.loads(result.truth.read_text())


@pytest.fixture(scope="module")
def block(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, Any], Analysis]:
    store, truth = campaign(tmp_path_factory.mktemp("block"), "test-block", 200, 90)
    return store, truth, analyze_store(store, engine="duckdb")


def test_block_found_on_the_right_networks_at_the_right_times(
    block: tuple[Store, dict[str, Any], Analysis],
) -> None:
    _, truth, analysis = block
    [episode] = [e for e in truth["episodes"] if e["kind"] == "platform_block"]
    events = [e for e in analysis.events if e.kind == "platform_block"]
    assert len(events) == 1, [e.id for e in analysis.events]
    event = events[0]
    assert event.platform == episode["platform"] == "x"
    assert event.country == truth["country"]
    assert sorted(f"AS{n.asn}" for n in event.networks) == sorted(episode["networks"])
    assert abs(when(event.start) - when(episode["start"])) <= TOLERANCE_S
    assert event.end is not None
    assert not event.ongoing
    assert abs(when(event.end) - when(episode["end"])) <= TOLERANCE_S
    # the intervals contain the point estimates
    assert when(event.start_earliest) <= when(event.start) <= when(event.start_latest)
    assert event.methods[0]["method"] == episode["verdict_method"]
    assert event.n_probes >= 3
    assert event.n_measurements > event.n_probes
    assert event.witnesses
    assert all(w["outcome"] in ("anomaly", "confirmed") for w in event.witnesses)


def test_brief_restoration_does_not_split_the_event(
    block: tuple[Store, dict[str, Any], Analysis],
) -> None:
    _, truth, analysis = block
    [episode] = [e for e in truth["episodes"] if e["kind"] == "platform_block"]
    [event] = [e for e in analysis.events if e.kind == "platform_block"]
    assert episode["restorations"], "the scenario must have a restoration"
    for r in episode["restorations"]:
        assert any(
            abs(when(a) - when(r["start"])) <= TOLERANCE_S
            and abs(when(b) - when(r["end"])) <= TOLERANCE_S
            for a, b in event.restorations
        ), (r, event.restorations)


def test_no_event_where_there_was_no_block(
    block: tuple[Store, dict[str, Any], Analysis],
) -> None:
    _, truth, analysis = block
    episodes = truth["episodes"]
    for event in analysis.events:
        overlapping = [
            e
            for e in episodes
            if when(e["start"]) - TOLERANCE_S <= when(event.start)
            and (e["end"] is None or when(event.start) <= when(e["end"]) + TOLERANCE_S)
        ]
        assert overlapping, f"event {event.id} matches no episode of the truth"
    # the cells say "no data" by having no row, never a row of zeros
    assert min(analysis.cells.column("n_measurements").to_pylist()) > 0


def test_outage_of_everything_is_not_a_platform_block(tmp_path: Path) -> None:
    store, truth = campaign(tmp_path, "test-outage", 100, 45)
    analysis = analyze_store(store)
    [episode] = truth["episodes"]
    assert [e.kind for e in analysis.events] == ["outage"]
    event = analysis.events[0]
    assert event.platform == "*"
    assert [f"AS{n.asn}" for n in event.networks] == episode["networks"]
    assert abs(when(event.start) - when(episode["start"])) <= TOLERANCE_S
    assert event.end is not None
    assert abs(when(event.end) - when(episode["end"])) <= TOLERANCE_S


def _canonical(analysis: Analysis) -> tuple[Any, Any]:
    return analysis.cells.to_pylist(), [e.as_dict() for e in analysis.events]


@pytest.mark.spark
@pytest.mark.timeout(600)
# PySpark leaves its local result sockets to the garbage collector: not ours to close
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_duckdb_and_spark_give_identical_cells_and_events(
    block: tuple[Store, dict[str, Any], Analysis],
) -> None:
    store, _, on_duckdb = block
    on_spark = analyze_store(store, engine="spark")
    assert on_spark.engine == "spark"
    cells_duck, events_duck = _canonical(on_duckdb)
    cells_spark, events_spark = _canonical(on_spark)
    assert len(cells_spark) == len(cells_duck) > 0
    assert cells_spark == cells_duck
    assert events_spark == events_duck
