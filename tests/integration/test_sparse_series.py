"""A sparse, real-like series through the real `analyze`, on DuckDB and on Spark.

The series (``tests/sparse_series.py``): twitter.com on one mobile network, 10 weeks of
runs at irregular hours, 2 to 20 a day, a new report id for each run; a 6-day block in
which about 85% of the measurements were anomalies by a mix of methods (DNS answers with
another network's address, TCP timeouts, TCP refused, a few TLS resets); stray anomalies
4-5 days before the onset, a week after the end and a month earlier. Its verdict rows
(and the measurement rows `analyze` reads names and samples from) are written into a
store, and the real `analyze_store` runs over it: exactly one event, its start interval
holding the onset's day, its end interval within a day of the last blocked measurement
(as far as the data can tell), its methods the mix; with the stray anomalies alone, no
event at all. Spark must give the same events as DuckDB.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from blockproof.pipeline.analyze import Analysis, analyze_store
from blockproof.pipeline.schema import TABLES
from blockproof.pipeline.store import Store
from blockproof.verdict.judge import RULES_VERSION
from sparse_series import HOUR, Series, hourly, real_like

CC, ASN, NETWORK = "XY", 64500, "Example Mobile"
URL = "https://twitter.com/"


def _column(field: pa.Field, values: dict[str, list[Any]], rows: int) -> pa.Array:
    if field.name in values:
        return pa.array(values[field.name], type=field.type)
    if field.nullable:  # a column this test does not know (yet): no value
        return pa.nulls(rows, field.type)
    raise AssertionError(f"no value for the required column {field.name}")


def write_series(root: Path, series: Series) -> Store:
    """The series as measurement and verdict rows of one store."""
    ms = series.measurements
    rows = len(ms)
    ids = [hashlib.sha256(f"{m.t}-{i}".encode()).hexdigest()[:32] for i, m in enumerate(ms)]
    # every run has its own report id, and OONI's data have no probe key: one probe each
    reports = [f"{i:08d}_webconnectivity_{CC}_{ASN}_n1_{ids[i][:16]}" for i in range(rows)]
    common: dict[str, list[Any]] = {
        "msm_id": ids,
        "measurement_start_time": [datetime.fromtimestamp(m.t, UTC) for m in ms],
        "probe_cc": [CC] * rows,
        "probe_asn": [ASN] * rows,
        "report_id": reports,
        "input": [URL] * rows,
        "test_name": ["web_connectivity"] * rows,
        "platform": ["x"] * rows,
        "probe_id": reports,
        "software_name": ["ooniprobe-android"] * rows,
    }
    measurements = {
        **common,
        "test_version": ["0.5.28"] * rows,
        "domain": ["twitter.com"] * rows,
        "probe_network_name": [NETWORK] * rows,
        "signature": ["unsigned"] * rows,
    }
    verdicts = {
        **common,
        "outcome": [m.outcome for m in ms],
        "ooni_outcome": [m.outcome for m in ms],
        "method": [m.method for m in ms],
        "rule_id": [m.rule for m in ms],
        "explanation": [f"{m.rule} on {URL}" for m in ms],
        "blocking": [{"ok": "false", "failure": None}.get(m.outcome, m.method) for m in ms],
        "rules_version": [RULES_VERSION] * rows,
    }
    tables = {
        name: pa.Table.from_arrays(
            [_column(f, values, rows) for f in TABLES[name]], schema=TABLES[name]
        )
        for name, values in (("measurements", measurements), ("verdicts", verdicts))
    }
    store = Store(root)
    store.commit(store.stage(tables, "sparse"))
    return store


def hour_of(text: str | None) -> int:
    assert text is not None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) // HOUR


def check_event(analysis: Analysis, series: Series) -> None:
    assert len(analysis.events) == 1, [e.id for e in analysis.events]
    [event] = analysis.events
    assert (event.kind, event.platform, event.country) == ("platform_block", "x", CC)
    assert [(n.asn, n.name) for n in event.networks] == [(ASN, NETWORK)]
    assert not event.ongoing
    assert series.onset is not None
    # the start interval holds the onset's day
    onset_day = series.onset // HOUR // 24
    assert hour_of(event.start_earliest) // 24 <= onset_day <= hour_of(event.start_latest) // 24
    assert hour_of(event.start_earliest) > series.strays[0] // HOUR
    # the end interval: within a day of the last blocked measurement, as far as the data
    # can tell (see tests/unit/test_detect_sparse.py)
    hours, k, n = hourly(series.measurements)
    last = series.last_blocked // HOUR
    i = bisect_right(hours, last)
    runs = [hours[j] for j in range(1, i) if k[j] == n[j] and k[j - 1] == n[j - 1] > 0]
    low = min(last - 24, runs[-1] if runs else last)
    high = max(last + 24, hours[i + 1])
    assert low <= hour_of(event.end_earliest) <= last + 1 <= hour_of(event.end_latest) <= high
    # one event across the change of method: DNS, TCP and TLS all counted in it
    methods = {m["method"] for m in event.methods}
    assert {"dns", "tcp_ip"} <= methods
    blocked_inside = [
        m for m in series.measurements if m.outcome == "anomaly" and hour_of(event.start) * HOUR
        <= m.t < hour_of(event.end) * HOUR
    ]  # fmt: skip
    assert event.n_blocked == len(blocked_inside) >= 3
    assert event.n_probes == event.n_measurements  # a new report id for every run


@pytest.mark.parametrize("seed", [0, 7])
def test_one_event_on_duckdb(tmp_path: Path, seed: int) -> None:
    series = real_like(seed)
    analysis = analyze_store(write_series(tmp_path / "store", series), engine="duckdb")
    check_event(analysis, series)


@pytest.mark.parametrize("seed", [0, 7])
def test_stray_anomalies_alone_give_no_event_on_duckdb(tmp_path: Path, seed: int) -> None:
    series = real_like(seed, block=False)
    analysis = analyze_store(write_series(tmp_path / "store", series), engine="duckdb")
    assert analysis.events == []
    assert analysis.cells.num_rows > 300  # the series is there, and judged clear


@pytest.mark.spark
@pytest.mark.timeout(600)
# PySpark leaves its local result sockets to the garbage collector: not ours to close
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_same_on_spark(tmp_path: Path) -> None:
    series = real_like(0)
    store = write_series(tmp_path / "block", series)
    on_spark = analyze_store(store, engine="spark")
    check_event(on_spark, series)
    on_duckdb = analyze_store(store, engine="duckdb")
    assert [e.as_dict() for e in on_spark.events] == [e.as_dict() for e in on_duckdb.events]
    assert on_spark.cells.to_pylist() == on_duckdb.cells.to_pylist()
    quiet = write_series(tmp_path / "quiet", real_like(0, block=False))
    assert analyze_store(quiet, engine="spark").events == []
