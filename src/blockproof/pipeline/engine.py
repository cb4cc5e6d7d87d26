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

import os
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
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EngineError(
                "the Spark engine needs the [spark] extra: pip install 'blockproof[spark]'"
            ) from exc
        master = spark_master or os.environ.get("BLOCKPROOF_SPARK_MASTER") or "local[*]"
        builder = SparkSession.builder.master(master)
        if master.startswith("local"):
            # local mode: everything on loopback, never another interface
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
        try:
            session = (
                builder.appName("blockproof")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "8")
                .config("spark.driver.memory", os.environ.get("BLOCKPROOF_SPARK_MEMORY", "2g"))
                .getOrCreate()
            )
        except Exception as exc:
            raise EngineError(f"cannot start Spark ({master}): {exc}") from exc
        session.sparkContext.setLogLevel("ERROR")
        return Engine("spark", ibis.pyspark.connect(session), store)
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


def cells(v: ir.Table) -> ir.Table:
    """Per (platform, country, ASN, hour): outcome counts and blocked/clear probe counts.

    A probe counts once per cell: blocked when most of its scored measurements
    there were anomaly or confirmed, clear otherwise; a probe with only failures
    or "down" measurements (our outcome: ABSTAINING) counts in ``n_probes`` but
    neither blocked nor clear.
    """
    s = _scored_verdicts(v)
    keys = list(CELL_KEYS)
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
    return joined.select(
        *keys,
        "n_measurements",
        "ok",
        "anomaly",
        "confirmed",
        "down",
        "failure",
        "n_probes",
        "blocked_probes",
        "clear_probes",
        "witness",
    ).order_by(keys)


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
