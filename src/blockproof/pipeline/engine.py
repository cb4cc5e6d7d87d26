"""The two engines behind one analysis: embedded DuckDB and Apache Spark, via Ibis.

Every query of the analysis is an Ibis expression built once (``cells``,
``network_names``, ``event_stats``...) and executed by whichever backend
``connect`` returns:

* ``duckdb`` (default): in-process, reads the store's Parquet files directly;
* ``spark``: a SparkSession, ``local[*]`` unless a master URL is given
  (``--spark-master spark://host:7077``). The session's time zone is forced to
  UTC so that hour truncation means the same thing on both engines.

Results come back as Arrow tables; anything engine-specific (timestamp types,
ordering) is normalised here, so the detector downstream sees identical input
whichever engine ran. Times cross the boundary as integer epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from blockproof.model.verdict import ABSTAINING
from blockproof.pipeline.store import Store

ENGINES = ("duckdb", "spark")


class EngineError(RuntimeError):
    """An engine that cannot start (no Java for Spark, a bad master URL...)."""


@dataclass
class Engine:
    name: str
    con: Any  # an Ibis backend
    store: Store

    def table(self, name: str) -> ir.Table:
        files = self.store.files(name)
        if not files:
            raise EngineError(f"the store has no {name} table yet")
        if self.name == "duckdb":
            return self.con.read_parquet([str(p) for p in files])
        # Spark: read the table's files; partition directories add day/cc columns we ignore.
        from blockproof.pipeline.schema import TABLES

        cols = TABLES[name].names
        t = self.con.read_parquet(str(self.store.table_dir(name)))
        return t.select(*cols)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        return expr.to_pyarrow()

    def close(self) -> None:
        if self.name == "spark":
            self.con._session.stop()
        else:
            self.con.disconnect()


def connect(engine: str, store: Store, *, spark_master: str | None = None) -> Engine:
    if engine == "duckdb":
        return Engine("duckdb", ibis.duckdb.connect(), store)
    if engine == "spark":
        from blockproof.pipeline.spark import SparkUnavailable, session

        try:
            spark = session(spark_master)
        except SparkUnavailable as exc:
            raise EngineError(str(exc)) from exc
        return Engine("spark", ibis.pyspark.connect(spark), store)
    raise EngineError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")


# -- the queries (engine-independent) ------------------------------------------------

CELL_KEYS = ("platform", "probe_cc", "probe_asn", "hour")


def _scored_verdicts(v: ir.Table) -> ir.Table:
    v = v.filter(v.platform.notnull())
    return v.mutate(
        hour=v.measurement_start_time.truncate("h").epoch_seconds().cast("int64"),
        is_blocked=v.outcome.isin(["anomaly", "confirmed"]).cast("int64"),
        is_scored=(~v.outcome.isin(list(ABSTAINING))).cast("int64"),
    )


OUTCOMES = ("ok", "anomaly", "confirmed", "down", "failure")  # ours: one count column each
BLOCKED = ("anomaly", "confirmed")
assert set(OUTCOMES) >= ABSTAINING
assert set(OUTCOMES) >= set(BLOCKED)

CELL_COLUMNS = (
    *CELL_KEYS, "n_measurements", *OUTCOMES, "n_probes", "blocked_probes", "clear_probes",
    "witness",
)  # fmt: skip


def cells(v: ir.Table) -> ir.Table:
    """Per (platform, country, ASN, hour): outcome counts and blocked/clear probe counts.

    A probe counts once per cell: blocked when most of its scored measurements
    there were anomaly or confirmed, clear otherwise; a probe with only failures
    or "down" measurements (our outcome: ABSTAINING) counts in ``n_probes`` but
    neither blocked nor clear. A probe id that is null is one probe. The witness
    is the smallest ``msm_id`` of the cell's blocked measurements (null if none).

    One pass over the verdicts: a first aggregation per (cell, probe) counts
    everything a cell needs, a second one per cell sums it up (no join, no order:
    ``analyze.normalise_cells`` sorts). ``cells_table`` runs this expression on
    Spark and the same query, written in SQL (``CELLS_SQL``), on DuckDB.
    """
    s = _scored_verdicts(v)
    keys = list(CELL_KEYS)
    per_probe = s.group_by([*keys, "probe_id"]).aggregate(
        n=s.count(),
        **{o: (s.outcome == o).cast("int64").sum() for o in OUTCOMES},
        pb=s.is_blocked.sum(),
        ps=s.is_scored.sum(),
        w=s.msm_id.min(where=s.is_blocked == 1),
    )
    p = per_probe
    return (
        p.group_by(keys)
        .aggregate(
            n_measurements=p.n.sum(),
            **{o: p[o].sum() for o in OUTCOMES},
            n_probes=p.count(),
            blocked_probes=((p.ps > 0) & (p.pb * 2 > p.ps)).cast("int64").sum(),
            clear_probes=((p.ps > 0) & (p.pb * 2 <= p.ps)).cast("int64").sum(),
            witness=p.w.min(),
        )
        .select(*CELL_COLUMNS)
    )


def _in(values: tuple[str, ...] | frozenset[str]) -> str:
    return "(" + ", ".join(f"'{x}'" for x in sorted(values)) + ")"


# ``cells`` in DuckDB's SQL, over the verdicts' files (``$files``): the same two
# aggregations, with the hour computed from the integer epoch (floored, as
# ``date_trunc`` does, without a time-zone library call per row) and no Parquet
# column read that the cells do not need. Tested equal to ``cells`` on both engines.
_US_PER_HOUR = 3_600_000_000
CELLS_SQL = f"""
WITH per_probe AS (
    SELECT
        platform, probe_cc, probe_asn,
        (epoch_us(measurement_start_time)
         - ((epoch_us(measurement_start_time) % {_US_PER_HOUR}) + {_US_PER_HOUR}) % {_US_PER_HOUR}
        ) // 1000000 AS hour,
        probe_id,
        count(*) AS n,
        {", ".join(f"count(*) FILTER (WHERE outcome = '{o}') AS {o}" for o in OUTCOMES)},
        count(*) FILTER (WHERE outcome IN {_in(BLOCKED)}) AS pb,
        count(*) FILTER (WHERE outcome NOT IN {_in(ABSTAINING)}) AS ps,
        min(msm_id) FILTER (WHERE outcome IN {_in(BLOCKED)}) AS w
    FROM read_parquet($files, hive_partitioning = false)
    WHERE platform IS NOT NULL
    GROUP BY platform, probe_cc, probe_asn, hour, probe_id
)
SELECT
    platform, probe_cc, probe_asn, hour,
    sum(n)::BIGINT AS n_measurements,
    {", ".join(f"sum({o})::BIGINT AS {o}" for o in OUTCOMES)},
    count(*) AS n_probes,
    count(*) FILTER (WHERE ps > 0 AND pb * 2 > ps) AS blocked_probes,
    count(*) FILTER (WHERE ps > 0 AND pb * 2 <= ps) AS clear_probes,
    min(w) AS witness
FROM per_probe
GROUP BY platform, probe_cc, probe_asn, hour
"""


def cells_table(eng: Engine) -> pa.Table:
    """The cells of the store's verdicts (``cells``), as Arrow, in no particular order."""
    if eng.name == "duckdb":
        files = eng.store.files("verdicts")
        if not files:
            raise EngineError("the store has no verdicts table yet")
        con = eng.con.con  # Ibis' own DuckDB connection
        return con.sql(CELLS_SQL, params={"files": [str(p) for p in files]}).to_arrow_table()
    return eng.to_arrow(cells(eng.table("verdicts")))


def cell_methods(v: ir.Table) -> ir.Table:
    """Per cell and method: how many blocked (anomaly/confirmed) measurements."""
    s = _scored_verdicts(v)
    b = s.filter(s.is_blocked == 1)
    keys = [*CELL_KEYS, "method"]
    return b.group_by(keys).aggregate(count=b.count()).order_by(keys)


def network_names(m: ir.Table) -> ir.Table:
    """(probe_cc, probe_asn, probe_network_name, count) for naming networks."""
    m = m.filter(m.probe_network_name.notnull() & (m.probe_network_name != ""))
    keys = ["probe_cc", "probe_asn", "probe_network_name"]
    return m.group_by(keys).aggregate(count=m.count()).order_by(keys)


def event_verdicts(
    v: ir.Table, platform: str | None, cc: str, asns: list[int], start_s: int, end_s: int
) -> ir.Table:
    """The verdicts behind one event: its platform (None = all), country, networks, window.

    The window is compared with the stored timestamp itself (not the computed hour), so
    that engines can skip files and row groups by their time statistics."""
    start = ibis.literal(datetime.fromtimestamp(start_s, UTC), type="timestamp('UTC')")
    end = ibis.literal(datetime.fromtimestamp(end_s, UTC), type="timestamp('UTC')")
    t = v.measurement_start_time
    v = v.filter((v.probe_cc == cc) & (t >= start) & (t < end) & v.probe_asn.isin(asns))
    s = _scored_verdicts(v)
    if platform is not None:
        s = s.filter(s.platform == platform)
    return s


def event_stats(sel: ir.Table) -> ir.Table:
    return sel.aggregate(
        n_measurements=sel.count(),
        n_probes=sel.probe_id.nunique(),
        blocked=sel.is_blocked.sum(),
        confirmed=(sel.outcome == "confirmed").cast("int64").sum(),
    )


def event_samples(sel: ir.Table, limit: int) -> ir.Table:
    """The event's clearest blocked measurement per network and method (fingerprint-
    confirmed first, then the earliest), confirmed ones and then by network first, at
    most ``limit``: the sample an evidence report shows."""
    b = sel.filter(sel.is_blocked == 1).mutate(
        unconfirmed=(sel.outcome != "confirmed").cast("int64")
    )
    window = ibis.window(
        group_by=[b.probe_asn, b.method],
        order_by=[b.unconfirmed, b.measurement_start_time, b.msm_id],
    )
    ranked = b.mutate(pick=ibis.row_number().over(window))
    best = ranked.filter(ranked.pick == 0)
    return (
        best.order_by([best.unconfirmed, best.probe_asn, best.method])
        .select(
            "msm_id", "measurement_start_time", "probe_asn", "outcome", "method", "rule_id",
            "explanation", "fingerprint",
        )
        .limit(limit)
    )  # fmt: skip


SAMPLE_DETAILS = (
    "msm_id", "input", "raw_sha256", "signature", "probe_id", "receipt", "inclusion",
    "source_sha256", "source_line",
)  # fmt: skip


def sample_details(m: ir.Table, cc: str, ids: list[str], start_s: int, end_s: int) -> ir.Table:
    """The measurements' rows behind sample verdicts (columns of ``SAMPLE_DETAILS`` that
    the table has: a store written before a column existed lacks it)."""
    start = ibis.literal(datetime.fromtimestamp(start_s, UTC), type="timestamp('UTC')")
    end = ibis.literal(datetime.fromtimestamp(end_s, UTC), type="timestamp('UTC')")
    t = m.measurement_start_time
    m = m.filter((m.probe_cc == cc) & (t >= start) & (t < end) & m.msm_id.isin(ids))
    return m.select(*[c for c in SAMPLE_DETAILS if c in m.columns])


def event_witnesses(sel: ir.Table, limit: int) -> ir.Table:
    b = sel.filter(sel.is_blocked == 1)
    return (
        b.mutate(rank=(b.outcome != "confirmed").cast("int64"))
        .order_by(["rank", "measurement_start_time", "msm_id"])
        .select("msm_id", "probe_asn", "outcome", "method", "rule_id", "fingerprint")
        .limit(limit)
    )
