"""The cells query (``pipeline.engine.cells`` / ``cells_table``) gives exactly what the
first one gave (two aggregations joined, kept here as ``old_cells``) on a generated
store with blocks, ties, probes with only failures or "down", null probe ids, rows
without a platform, hours before 1970: on DuckDB (its SQL and the Ibis expression) and
on Spark."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pytest

from blockproof.pipeline import engine as q
from blockproof.pipeline.analyze import normalise_cells
from blockproof.pipeline.schema import VERDICTS
from blockproof.pipeline.store import Store

ROWS = 300_000
T0 = 1_718_000_000  # 2024-06-10
OUTCOMES = ["ok", "anomaly", "confirmed", "down", "failure"]


def old_cells(v: ir.Table) -> ir.Table:
    """The cells query as first written: outcome counts per cell, probe counts per cell
    from a second aggregation per (cell, probe), joined; the reference."""
    s = q._scored_verdicts(v)
    keys = list(q.CELL_KEYS)
    per_probe = s.group_by([*keys, "probe_id"]).aggregate(
        pb=s.is_blocked.sum(), ps=s.is_scored.sum()
    )
    probes = per_probe.group_by(keys).aggregate(
        n_probes=per_probe.count(),
        blocked_probes=((per_probe.ps > 0) & (per_probe.pb * 2 > per_probe.ps)).cast("int64").sum(),
        clear_probes=((per_probe.ps > 0) & (per_probe.pb * 2 <= per_probe.ps)).cast("int64").sum(),
    )
    counts = s.group_by(keys).aggregate(
        n_measurements=s.count(),
        ok=(s.outcome == "ok").cast("int64").sum(),
        anomaly=(s.outcome == "anomaly").cast("int64").sum(),
        confirmed=(s.outcome == "confirmed").cast("int64").sum(),
        down=(s.outcome == "down").cast("int64").sum(),
        failure=(s.outcome == "failure").cast("int64").sum(),
        witness=s.msm_id.min(where=s.is_blocked == 1),
    )
    joined = counts.join(probes, keys)
    return joined.select(*q.CELL_COLUMNS).order_by(keys)


def _hand_made() -> list[dict[str, Any]]:
    """Cells whose values are checked by hand (platform "hand", country "ZZ")."""
    rows: list[dict[str, Any]] = []

    def add(asn: int, hour: int, probe: str | None, outcomes: list[str], tag: str) -> None:
        for i, outcome in enumerate(outcomes):
            rows.append(
                {"asn": asn, "t": T0 + hour * 3600 + 60 * i, "probe": probe, "outcome": outcome,
                 "msm_id": f"{tag}-{i:02d}"}
            )  # fmt: skip

    # hour 0: a tie (1 anomaly, 1 ok: clear), a majority (2 of 3 scored: blocked, failures
    # abstain), a probe with only failures and "down" (counted, neither), a null probe
    add(1, 0, "tie", ["anomaly", "ok"], "b-tie")
    add(1, 0, "most", ["anomaly", "confirmed", "ok", "failure", "failure", "down"], "a-most")
    add(1, 0, "mute", ["failure", "down", "failure"], "0-mute")
    add(1, 0, None, ["confirmed"], "c-null")
    # hour 1: nothing blocked, so no witness
    add(1, 1, "tie", ["ok", "failure"], "d")
    return rows


def verdicts_table(seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = ROWS
    networks = [("IR", 44244), ("IR", 197207), ("PK", 17557), ("RU", 12389), ("RU", 8359)]
    net = rng.integers(0, len(networks), n)
    # three days, a few rows before 1970 (hours are floored there too) and on hour marks
    t = T0 + rng.integers(0, 3 * 86_400, n)
    t[rng.random(n) < 0.002] = rng.integers(-3 * 3600, 3600, 1)[0]
    t[rng.random(n) < 0.01] = T0 + 3600 * rng.integers(0, 72, 1)[0]
    probes = np.array([f"p{i:03d}" for i in range(40)], dtype=object)
    probe: list[str | None] = list(probes[rng.integers(0, 40, n)])
    for i in np.flatnonzero(rng.random(n) < 0.03):
        probe[i] = None
    # probe-dependent mixes: some probes mostly fail, some mostly see blocks
    mix = {
        "plain": [0.85, 0.06, 0.01, 0.03, 0.05],
        "failing": [0.02, 0.01, 0.0, 0.37, 0.60],
        "blocked": [0.25, 0.55, 0.10, 0.05, 0.05],
    }
    kind = np.array(["plain"] * 30 + ["failing"] * 5 + ["blocked"] * 5)
    probe_kind = np.array([kind[int(p[1:])] if p else "plain" for p in probe])
    outcome = np.empty(n, dtype=object)
    for name, p in mix.items():
        idx = np.flatnonzero(probe_kind == name)
        outcome[idx] = np.array(OUTCOMES, dtype=object)[rng.choice(5, len(idx), p=p)]
    # a block: one platform on one network for a day, 80% anomalies
    platforms = np.array(["x", "youtube", "telegram", "signal"], dtype=object)
    plat: list[str | None] = list(platforms[rng.integers(0, 4, n)])
    block = (net == 2) & (np.array(plat) == "x") & (t >= T0 + 86_400) & (t < T0 + 2 * 86_400)
    hit = np.flatnonzero(block & (rng.random(n) < 0.8))
    outcome[hit] = "anomaly"
    for i in np.flatnonzero(rng.random(n) < 0.01):
        plat[i] = None  # no platform: not in any cell
    hexes = rng.integers(0, 16**8, n)
    msm = [f"{ts}_{networks[k][0]}_{h:08x}" for ts, k, h in zip(t, net, hexes, strict=True)]
    msm[:50] = ["same-id"] * 50  # ids repeated (a witness tie)
    cc = [networks[k][0] for k in net]
    asn = [networks[k][1] for k in net]
    for r in _hand_made():
        cc.append("ZZ")
        asn.append(r["asn"])
        t = np.append(t, r["t"])
        probe.append(r["probe"])
        outcome = np.append(outcome, r["outcome"])
        plat.append("hand")
        msm.append(r["msm_id"])
    size = len(msm)
    columns: dict[str, Any] = {
        "msm_id": pa.array(msm),
        "measurement_start_time": pa.array(t * 1_000_000).cast(VERDICTS.field(1).type),
        "probe_cc": pa.array(cc),
        "probe_asn": pa.array(asn, pa.int64()),
        "platform": pa.array(plat, pa.string()),
        "probe_id": pa.array(probe, pa.string()),
        "outcome": pa.array(list(outcome)),
    }
    for field in VERDICTS:
        if field.name not in columns:
            fill = "x" if not field.nullable else None
            columns[field.name] = pa.array([fill] * size, field.type)
    columns["ooni_outcome"] = columns["outcome"]
    return pa.Table.from_arrays([columns[f.name] for f in VERDICTS], schema=VERDICTS)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("cells"))
    s.replace_table("verdicts", verdicts_table(), "test")
    shutil.rmtree(s.staging, ignore_errors=True)
    assert len(s.files("verdicts")) > 12  # days x countries, 1969 and 1970
    return s


@pytest.fixture(scope="module")
def reference(store: Store) -> pa.Table:
    eng = q.connect("duckdb", store)
    try:
        return normalise_cells(eng.to_arrow(old_cells(eng.table("verdicts"))))
    finally:
        eng.close()


def test_the_generated_store_has_the_hard_cases(reference: pa.Table) -> None:
    cells = reference.to_pylist()
    assert len(cells) > 1_000
    assert sum(c["n_measurements"] for c in cells) < ROWS  # rows without a platform: none
    assert any(c["blocked_probes"] > 0 for c in cells)
    assert any(c["blocked_probes"] > 0 and c["clear_probes"] > 0 for c in cells)
    assert any(c["n_probes"] > c["blocked_probes"] + c["clear_probes"] for c in cells)
    assert any(c["witness"] is None for c in cells)
    assert any(c["hour"] < 0 for c in cells)  # before 1970
    assert any(c["down"] > 0 for c in cells)


def test_hand_made_cells(reference: pa.Table) -> None:
    hand = [c for c in reference.to_pylist() if c["platform"] == "hand"]
    assert hand == [
        {"platform": "hand", "probe_cc": "ZZ", "probe_asn": 1, "hour": T0 // 3600 * 3600,
         "n_measurements": 12, "ok": 2, "anomaly": 2, "confirmed": 2, "down": 2,
         "failure": 4, "n_probes": 4, "blocked_probes": 2, "clear_probes": 1,
         "witness": "a-most-00"},
        {"platform": "hand", "probe_cc": "ZZ", "probe_asn": 1, "hour": T0 // 3600 * 3600 + 3600,
         "n_measurements": 2, "ok": 1, "anomaly": 0, "confirmed": 0, "down": 0,
         "failure": 1, "n_probes": 1, "blocked_probes": 0, "clear_probes": 1,
         "witness": None},
    ]  # fmt: skip


def test_duckdb_cells_equal_the_first_query(store: Store, reference: pa.Table) -> None:
    eng = q.connect("duckdb", store)
    try:
        by_sql = q.cells_table(eng)
        by_ibis = eng.to_arrow(q.cells(eng.table("verdicts")))
    finally:
        eng.close()
    assert by_sql.num_rows == reference.num_rows
    assert normalise_cells(by_sql).equals(reference)
    assert normalise_cells(by_ibis).equals(reference)


def test_cells_table_of_a_store_without_verdicts(tmp_path: Path) -> None:
    eng = q.connect("duckdb", Store(tmp_path))
    try:
        with pytest.raises(q.EngineError, match="no verdicts"):
            q.cells_table(eng)
    finally:
        eng.close()


@pytest.mark.spark
@pytest.mark.timeout(600)
# PySpark leaves its local result sockets to the garbage collector: not ours to close
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_spark_cells_equal_the_first_query(store: Store, reference: pa.Table) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime")
    eng = q.connect("spark", store)
    try:
        on_spark = normalise_cells(q.cells_table(eng))
    finally:
        eng.close()
    assert on_spark.to_pylist() == reference.to_pylist()
