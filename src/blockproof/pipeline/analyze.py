"""`blockproof analyze`: verdicts -> hourly cells -> change points -> events.

Theory of operation:

1. **Cells** (``engine.cells_table``: one pass, SQL on DuckDB, Ibis on Spark): per (platform,
   country, ASN, hour) the ok / anomaly / confirmed / down / failure counts
   (our outcome), distinct probes, and blocked / clear probes (a probe counts once
   per cell, by the majority of its scored measurements; "down" and "failure"
   abstain). Hours without data have no cell: "no
   data" is never "ok".
2. **Network segments** (``detect``): per (platform, country, ASN) series, the
   Bernoulli CUSUM finds blocked segments with onset and end intervals;
   segments of one series closer than ``merge_gap_hours`` (24 h) are joined, the
   gap recorded as a brief restoration; only segments above the evidence floor
   are kept.
3. **Outage or platform block.** A segment is a *connectivity outage* rather
   than a platform block when, on the same network and in the same hours, most
   of the other platforms measured there (at least two with data) were blocked
   too.
4. **Events.** Segments of the same kind, platform (all platforms for an
   outage) and country whose spans overlap or follow within ``merge_gap_hours``
   become one event: networks, start/end as intervals (the block started when
   the first network went, ended when the last came back), brief restorations
   (hours in which no network of the event was blocked), dominant methods,
   confidence, exact measurement and distinct-probe counts, and representative
   measurements (fingerprint-confirmed first) — those come from the engine.
5. **Confidence**: ``confirmed`` when a censor's fingerprint was matched or 3+
   networks agree on the method; ``high`` with 2+ networks and a method share of
   70%+; ``medium`` otherwise (one network above the floor).

Everything is recomputed from the verdicts at each run, so late uploads and
re-judged verdicts are taken into account by simply running it again. The one
state kept from run to run is the events' identity: ``save`` matches the events
found with every event id given before (``pipeline.identity``, the store's
``event-history.json``), so that an event keeps its id while late or new
measurements move its start, extend it, add networks or end it, and gets a new
``revision`` (with ``updated``, the analysis time) whenever what matters of it
changes. An analysis that is not saved carries the provisional ids (derived from
the start, as the first analysis of a store gives them) and no revision times.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from blockproof.pipeline import engine as q
from blockproof.pipeline.detect import DetectorConfig, Segment, detect, merge_gaps
from blockproof.pipeline.events import read_history
from blockproof.pipeline.identity import Facts, Identified, event_id, identify, stamp
from blockproof.pipeline.store import Store, write_atomically
from blockproof.verdict.judge import RULES_VERSION

HOUR = 3600
OUTAGE_SHARE = 0.5
WITNESSES = 5
SAMPLES = 12  # sample measurements kept per event for its evidence report
CELLS_ROW_GROUP = 16_384


def iso(hour: int | None) -> str | None:
    """Epoch hour -> ``2024-02-17T17:00:00Z``."""
    if hour is None:
        return None
    return datetime.fromtimestamp(hour * HOUR, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class NetworkSpan:
    asn: int
    name: str
    start: str
    start_earliest: str
    start_latest: str
    end: str | None
    end_earliest: str | None
    end_latest: str | None
    blocked_probe_hours: int
    scored_probe_hours: int
    floor_p_value: float
    restorations: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Event:
    """One event as ``analyze`` finds it; ``save`` writes it to ``events.json`` and
    ``pipeline.events`` reads it back (``StoredEvent``, the same fields)."""

    id: str
    kind: str  # platform_block | outage
    platform: str  # platform id, or "*" for an outage of everything
    country: str
    start: str
    start_earliest: str
    start_latest: str
    end: str | None
    end_earliest: str | None
    end_latest: str | None
    ongoing: bool
    networks: list[NetworkSpan]
    methods: list[dict[str, Any]]
    confidence: str
    n_measurements: int
    n_probes: int
    n_blocked: int
    n_confirmed: int
    restorations: list[tuple[str, str]]
    witnesses: list[dict[str, Any]]
    # the evidence report's sample: per network and method the clearest blocked
    # measurement, with its hash, signature and receipt (see engine.event_samples)
    samples: list[dict[str, Any]] = field(default_factory=list)
    rules_version: str = RULES_VERSION
    # given by ``save`` (pipeline.identity): the revision, and the analysis times of the
    # first revision and of the last change; None until the analysis is saved
    revision: int = 1
    first_seen: str | None = None
    updated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The event as ``events.json`` stores it; an event not yet saved has no
        revision fields."""
        out = asdict(self)
        if self.first_seen is None:
            for key in ("revision", "first_seen", "updated"):
                del out[key]
        return out

    def facts(self) -> Facts:
        """What identifies the event across analyses (``pipeline.identity``)."""
        return Facts(
            kind=self.kind,
            platform=self.platform,
            country=self.country,
            start=self.start,
            end=self.end,
            ongoing=self.ongoing,
            networks=tuple(sorted((n.asn, n.end) for n in self.networks)),
            method=self.methods[0]["method"] if self.methods else None,
            confidence=self.confidence,
        )


@dataclass
class Analysis:
    cells: pa.Table
    events: list[Event]
    engine: str
    networks: dict[tuple[str, int], str] = field(default_factory=dict)  # (cc, asn) -> name
    merge_gap_hours: int = 24  # events this close are one: also how far an event may move


# A network's onset interval up to this wide can set its event's start.
PRECISE_START_HOURS = 24


def leading_segment(segments: list[Segment]) -> Segment:
    """The segment whose start is the event's: the earliest among those dated to within
    PRECISE_START_HOURS. A thinly measured network whose onset could be anywhere in
    several days (its likelihood interval) widens the event's start interval but does
    not set its start; when no network is that precise, the earliest start."""
    precise = [s for s in segments if s.start_latest - s.start_earliest <= PRECISE_START_HOURS]
    return min(precise or segments, key=lambda s: s.start)


@dataclass(frozen=True)
class AnalyzeConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    merge_gap_hours: int = 24
    min_other_platforms: int = 2


@dataclass
class _Seg:
    platform: str
    cc: str
    asn: int
    seg: Segment
    kind: str = "platform_block"

    def end_or(self, horizon: int) -> int:
        return self.seg.end if self.seg.end is not None else horizon


def _series(cells: pa.Table) -> dict[tuple[str, str, int], tuple[list[int], list[int], list[int]]]:
    out: dict[tuple[str, str, int], tuple[list[int], list[int], list[int]]] = {}
    cols = cells.select(
        ["platform", "probe_cc", "probe_asn", "hour", "blocked_probes", "clear_probes"]
    ).to_pydict()
    for p, cc, asn, hour, b, c in zip(
        cols["platform"],
        cols["probe_cc"],
        cols["probe_asn"],
        cols["hour"],
        cols["blocked_probes"],
        cols["clear_probes"],
        strict=True,
    ):
        hours, k, n = out.setdefault((p, cc, asn), ([], [], []))
        hours.append(hour // HOUR)
        k.append(b)
        n.append(b + c)
    return out


def normalise_cells(table: pa.Table) -> pa.Table:
    """Cells in one canonical form (types, order) whichever engine produced them."""
    schema = pa.schema(
        [
            ("platform", pa.string()),
            ("probe_cc", pa.string()),
            ("probe_asn", pa.int64()),
            ("hour", pa.int64()),
            ("n_measurements", pa.int64()),
            ("ok", pa.int64()),
            ("anomaly", pa.int64()),
            ("confirmed", pa.int64()),
            ("down", pa.int64()),
            ("failure", pa.int64()),
            ("n_probes", pa.int64()),
            ("blocked_probes", pa.int64()),
            ("clear_probes", pa.int64()),
            ("witness", pa.string()),
        ]
    )
    table = table.select(schema.names).cast(schema)
    return table.sort_by(
        [
            ("platform", "ascending"),
            ("probe_cc", "ascending"),
            ("probe_asn", "ascending"),
            ("hour", "ascending"),
        ]
    )


def analyze_store(
    store: Store,
    *,
    engine: str = "duckdb",
    spark_master: str | None = None,
    config: AnalyzeConfig | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Analysis:
    cfg = config or AnalyzeConfig()
    store.require()
    step = on_step or (lambda _msg: None)
    eng = q.connect(engine, store, spark_master=spark_master)
    try:
        step(f"cells ({engine})")
        v = eng.table("verdicts")
        cells = normalise_cells(q.cells_table(eng))
        methods = eng.to_arrow(q.cell_methods(v)).to_pydict()
        names_raw = eng.to_arrow(q.network_names(eng.table("measurements"))).to_pydict()
        step("change points")
        series = _series(cells)
        horizon = max((h[-1] + 1 for h, _, _ in series.values()), default=0)
        segs: list[_Seg] = []
        for (platform, cc, asn), (hours, k, n) in sorted(series.items()):
            found = merge_gaps(detect(hours, k, n, cfg.detector), cfg.merge_gap_hours)
            segs.extend(_Seg(platform, cc, asn, s) for s in found if s.supported)
        _label_outages(segs, series, horizon, cfg)
        step("events")
        events = _assemble(segs, horizon, cfg)
        names = _network_names(names_raw)
        method_index = _method_index(methods)
        out: list[Event] = []
        for group in events:
            out.append(_event(eng, group, horizon, names, method_index))
        out.sort(key=lambda e: (e.start, e.country, e.platform))
        return Analysis(
            cells=cells,
            events=out,
            engine=engine,
            networks=names,
            merge_gap_hours=cfg.merge_gap_hours,
        )
    finally:
        eng.close()


def _share(series: tuple[list[int], list[int], list[int]], lo: int, hi: int) -> tuple[int, int]:
    hours, k, n = series
    kk = nn = 0
    for h, a, b in zip(hours, k, n, strict=True):
        if lo <= h < hi:
            kk += a
            nn += b
    return kk, nn


def _label_outages(
    segs: list[_Seg], series: dict[tuple[str, str, int], Any], horizon: int, cfg: AnalyzeConfig
) -> None:
    platforms_on: dict[tuple[str, int], list[str]] = defaultdict(list)
    for platform, cc, asn in series:
        platforms_on[(cc, asn)].append(platform)
    for s in segs:
        lo, hi = s.seg.start, s.end_or(horizon)
        others = with_data = blocked = 0
        for other in platforms_on[(s.cc, s.asn)]:
            if other == s.platform:
                continue
            others += 1
            k, n = _share(series[(other, s.cc, s.asn)], lo, hi)
            if n == 0:
                continue
            with_data += 1
            if k / n >= OUTAGE_SHARE:
                blocked += 1
        if with_data >= cfg.min_other_platforms and blocked / with_data >= OUTAGE_SHARE:
            s.kind = "outage"


def _assemble(segs: list[_Seg], horizon: int, cfg: AnalyzeConfig) -> list[list[_Seg]]:
    groups: dict[tuple[str, str, str], list[_Seg]] = defaultdict(list)
    for s in segs:
        platform = "*" if s.kind == "outage" else s.platform
        groups[(s.kind, platform, s.cc)].append(s)
    clusters: list[list[_Seg]] = []
    for key in sorted(groups):
        current: list[_Seg] = []
        current_end = -1
        for s in sorted(groups[key], key=lambda x: (x.seg.start, x.asn, x.platform)):
            if current and s.seg.start <= current_end + cfg.merge_gap_hours:
                current.append(s)
                current_end = max(current_end, s.end_or(horizon))
                continue
            if current:
                clusters.append(current)
            current = [s]
            current_end = s.end_or(horizon)
        if current:
            clusters.append(current)
    return clusters


def _network_names(raw: dict[str, list[Any]]) -> dict[tuple[str, int], str]:
    best: dict[tuple[str, int], tuple[int, str]] = {}
    for cc, asn, name, count in zip(
        raw["probe_cc"], raw["probe_asn"], raw["probe_network_name"], raw["count"], strict=True
    ):
        key = (cc, asn)
        if key not in best or (count, name) > best[key]:
            best[key] = (count, name)
    return {k: v[1] for k, v in best.items()}


def _method_index(
    raw: dict[str, list[Any]],
) -> dict[tuple[str, str, int], list[tuple[int, str, int]]]:
    index: dict[tuple[str, str, int], list[tuple[int, str, int]]] = defaultdict(list)
    for p, cc, asn, hour, method, count in zip(
        raw["platform"],
        raw["probe_cc"],
        raw["probe_asn"],
        raw["hour"],
        raw["method"],
        raw["count"],
        strict=True,
    ):
        index[(p, cc, asn)].append((hour // HOUR, method, count))
    return index


def _restorations(
    spans: list[tuple[int, int, list[tuple[int, int]]]], lo: int, hi: int
) -> list[tuple[int, int]]:
    """Hours in [lo, hi) in which no network was blocked."""
    blocked: list[tuple[int, int]] = []
    for start, end, gaps in spans:
        cursor = start
        for g0, g1 in sorted(gaps):
            blocked.append((cursor, g0))
            cursor = g1
        blocked.append((cursor, end))
    blocked.sort()
    out: list[tuple[int, int]] = []
    cursor = lo
    for b0, b1 in blocked:
        if b0 > cursor:
            out.append((cursor, b0))
        cursor = max(cursor, b1)
    if cursor < hi:
        out.append((cursor, hi))
    return out


def _event(
    eng: q.Engine,
    group: list[_Seg],
    horizon: int,
    names: dict[tuple[str, int], str],
    method_index: dict[tuple[str, str, int], list[tuple[int, str, int]]],
) -> Event:
    first = group[0]
    cc = first.cc
    kind = first.kind
    platform = "*" if kind == "outage" else first.platform
    by_asn: dict[int, list[_Seg]] = defaultdict(list)
    for s in group:
        by_asn[s.asn].append(s)
    networks: list[NetworkSpan] = []
    spans: list[tuple[int, int, list[tuple[int, int]]]] = []
    method_counts: dict[str, int] = defaultdict(int)
    for asn in sorted(by_asn):
        items = by_asn[asn]
        start = min(items, key=lambda s: s.seg.start).seg
        ongoing = any(s.seg.end is None for s in items)
        last = max(items, key=lambda s: s.end_or(horizon)).seg
        gaps = sorted({g for s in items for g in s.seg.restorations})
        end_h = None if ongoing else last.end
        spans.append((start.start, end_h if end_h is not None else horizon, gaps))
        networks.append(
            NetworkSpan(
                asn=asn,
                name=names.get((cc, asn), ""),
                start=iso(start.start) or "",
                start_earliest=iso(start.start_earliest) or "",
                start_latest=iso(start.start_latest) or "",
                end=iso(end_h),
                end_earliest=None if ongoing else iso(last.end_earliest),
                end_latest=None if ongoing else iso(last.end_latest),
                blocked_probe_hours=sum(s.seg.blocked for s in items),
                scored_probe_hours=sum(s.seg.scored for s in items),
                floor_p_value=min(s.seg.p_value for s in items),
                restorations=[(iso(a) or "", iso(b) or "") for a, b in gaps],
            )
        )
        for s in items:
            lo, hi = s.seg.start, s.end_or(horizon)
            for hour, method, count in method_index.get((s.platform, cc, asn), []):
                if lo <= hour < hi:
                    method_counts[method] += count
    window_start = min(s.seg.start for s in group)  # verdicts count from here
    first_seg = leading_segment([s.seg for s in group])
    start_h = first_seg.start
    start_earliest = min(s.seg.start_earliest for s in group)
    ongoing = any(s.seg.end is None for s in group)
    end_h = None if ongoing else max(s.end_or(horizon) for s in group)
    last_seg = max(group, key=lambda s: s.end_or(horizon)).seg
    total = sum(method_counts.values()) or 1
    top_share = max(method_counts.values(), default=0) / total
    methods: list[dict[str, Any]] = [
        {"method": m, "count": c, "share": round(c / total, 4)}
        for m, c in sorted(method_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    window_end = end_h if end_h is not None else horizon
    sel = q.event_verdicts(
        _window_table(eng, "verdicts", cc, window_start * HOUR, window_end * HOUR),
        None if kind == "outage" else platform,
        cc,
        sorted(by_asn),
        window_start * HOUR,
        window_end * HOUR,
    )
    stats = eng.to_arrow(q.event_stats(sel)).to_pylist()[0]
    witnesses = eng.to_arrow(q.event_witnesses(sel, WITNESSES)).to_pylist()
    samples = _event_samples(eng, sel, cc, window_start * HOUR, window_end * HOUR)
    n_confirmed = int(stats["confirmed"] or 0)
    if n_confirmed > 0 or (len(by_asn) >= 3 and top_share >= 0.7):
        confidence = "confirmed"
    elif len(by_asn) >= 2 and top_share >= 0.7:
        confidence = "high"
    else:
        confidence = "medium"
    return Event(
        id=event_id(kind, platform, cc, start_h),  # provisional: ``save`` gives the lasting one
        kind=kind,
        platform=platform,
        country=cc,
        start=iso(start_h) or "",
        start_earliest=iso(start_earliest) or "",
        start_latest=iso(first_seg.start_latest) or "",
        end=iso(end_h),
        end_earliest=None if ongoing else iso(last_seg.end_earliest),
        end_latest=None if ongoing else iso(last_seg.end_latest),
        ongoing=ongoing,
        networks=networks,
        methods=methods,
        confidence=confidence,
        n_measurements=int(stats["n_measurements"] or 0),
        n_probes=int(stats["n_probes"] or 0),
        n_blocked=int(stats["blocked"] or 0),
        n_confirmed=n_confirmed,
        restorations=[
            (iso(a) or "", iso(b) or "") for a, b in _restorations(spans, window_start, window_end)
        ],
        witnesses=[
            {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in w.items()}
            for w in witnesses
        ],
        samples=samples,
    )


def _window_table(eng: q.Engine, name: str, cc: str, start_s: int, end_s: int) -> Any:
    """The table ``name`` for queries of one country between two times: on DuckDB only
    the files of the partitions (day, country) that can hold such rows, so that an event's
    queries open a few files, not the whole table's (the rows are the same: a row's
    partition is its own day and country). Spark reads the table as it does."""
    first_day = datetime.fromtimestamp(start_s, UTC).strftime("%Y-%m-%d")
    last_day = datetime.fromtimestamp(max(start_s, end_s - 1), UTC).strftime("%Y-%m-%d")
    files = eng.store.files(name, cc=cc, first_day=first_day, last_day=last_day)
    if eng.name != "duckdb" or not files:
        return eng.table(name)
    return eng.con.read_parquet([str(p) for p in files])


def _event_samples(
    eng: q.Engine, sel: Any, cc: str, start_s: int, end_s: int
) -> list[dict[str, Any]]:
    """The event's sample measurements, each with its verdict and its measurement's facts
    (URL, SHA-256 of its bytes, signature, receipt), so that pages and reports need not
    search the tables again."""
    picked = eng.to_arrow(q.event_samples(sel, SAMPLES)).to_pylist()
    if not picked:
        return []
    ids = [p["msm_id"] for p in picked]
    details = {
        d["msm_id"]: d
        for d in eng.to_arrow(
            q.sample_details(
                _window_table(eng, "measurements", cc, start_s, end_s), cc, ids, start_s, end_s
            )
        ).to_pylist()
    }
    out = []
    for p in picked:
        row = {**p, **details.get(p["msm_id"], {})}
        row["measurement_start_time"] = (
            p["measurement_start_time"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        )
        out.append({k: row.get(k) for k in (*p.keys(), *q.SAMPLE_DETAILS)})
    return out


def number_events(store: Store, analysis: Analysis, now: datetime | None = None) -> Identified:
    """Give the analysis' events their lasting ids, revisions and times, matched with
    every id given before (``pipeline.identity``); ``analysis.events`` is replaced.
    Returns what was decided, with the history to keep (written by ``save``)."""
    when = stamp(now or datetime.now(UTC))
    result = identify(
        read_history(store, when),
        [e.facts() for e in analysis.events],
        when,
        proposed=[e.id for e in analysis.events],
        gap_hours=analysis.merge_gap_hours,
    )
    analysis.events = [
        replace(e, id=n.id, revision=n.revision, first_seen=n.first_seen, updated=n.updated)
        for e, n in zip(analysis.events, result.events, strict=True)
    ]
    return result


def save(store: Store, analysis: Analysis, *, now: datetime | None = None) -> dict[str, list[str]]:
    """Write cells and events into the store (replacing the previous analysis).

    The events first get their lasting ids and revisions (``number_events``: the
    event objects of ``analysis.events`` are replaced); the history of ids is written
    before ``events.json``, so a crash between the two leaves a history that the next
    analysis matches against. Returns the ids by what happened to them (new, updated,
    unchanged, merged, vanished)."""
    numbered = number_events(store, analysis, now)
    history = {"version": 1, "events": [k.to_json() for k in numbered.history]}
    write_atomically(
        store.event_history_path, (json.dumps(history, indent=1, sort_keys=True) + "\n").encode()
    )
    store.cells_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.cells_path.with_suffix(".tmp")
    # cells are sorted by platform, country, ASN, hour: small row groups let a reader of
    # one platform in one country skip the rest by the row groups' statistics
    pq.write_table(analysis.cells, tmp, compression="zstd", row_group_size=CELLS_ROW_GROUP)
    tmp.replace(store.cells_path)
    networks = [
        {"cc": cc, "asn": asn, "name": name}
        for (cc, asn), name in sorted(analysis.networks.items())
    ]
    tmp_networks = store.networks_path.with_suffix(".tmp")
    tmp_networks.write_text(json.dumps({"networks": networks}, indent=1) + "\n")
    tmp_networks.replace(store.networks_path)
    payload = {
        "engine": analysis.engine,
        "rules_version": RULES_VERSION,
        "events": [e.as_dict() for e in analysis.events],
    }
    write_atomically(
        store.events_path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()
    )
    return numbered.changes


def load_networks(store: Store) -> dict[tuple[str, int], str]:
    """(country, ASN) -> the network's most reported name, as of the last analysis."""
    try:
        data = json.loads(store.networks_path.read_text())
    except FileNotFoundError:
        return {}
    return {(n["cc"], int(n["asn"])): n["name"] for n in data["networks"]}
