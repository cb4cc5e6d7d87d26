"""Everything an evidence report (and the explorer's event page) says about one event.

``gather(store, event_id)`` reads the analysis (``events.json``, the hourly
cells) and the store's tables and returns an ``Evidence``: the event, a
plain-language summary, the hourly timeline of the platform in the country
(every hour of the window, hours without data marked as such, never as "ok"),
the networks, the methods with what they mean, and a sample of measurements
with their exact bytes' SHA-256 and signature status. Rendering lives
elsewhere (``explorer.report``); this module only reads and computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from blockproof.errors import InputError
from blockproof.explorer.tables import kept_bytes, parquet
from blockproof.explorer.timeline import (
    MAX_HOURLY_DAYS,
    Bucket,
    data_span,
    platform_name,
    timeline,
)
from blockproof.pipeline.store import Store

CONTEXT_HOURS = 48  # timeline hours shown before the start and after the end
MAX_TIMELINE_HOURS = 24 * MAX_HOURLY_DAYS - 1
SAMPLE_SIZE = 12

METHOD_TEXT = {
    "tls": "resetting or dropping the TLS connection right after the browser's ClientHello "
    "names the site (SNI filtering), while the same handshake succeeds from outside",
    "dns": "answering DNS queries for the site with a wrong address (often a blockpage "
    "server's or a private one), where the uncensored control gets the real one",
    "tcp_ip": "blocking TCP connections to the site's IP addresses",
    "http-diff": "replacing the page with a different one (a blockpage) over plain HTTP",
    "http-failure": "breaking the HTTP exchange (connection reset or dropped mid-request)",
    "throttling": "slowing the site's traffic down to a crawl while connections succeed",
    "outage": "cutting the network off altogether (every platform at once)",
}


@dataclass(frozen=True, slots=True)
class Sample:
    msm_id: str
    measurement_start_time: str
    probe_asn: int
    input: str | None
    outcome: str
    method: str
    rule_id: str
    explanation: str
    fingerprint: str | None
    sha256: str | None  # of the measurement's bytes as received; None if the source is gone
    signature: str  # valid | unsigned | invalid
    key_id: str | None


@dataclass(slots=True)
class Evidence:
    event: dict[str, Any]
    platform_name: str
    summary: str
    timeline: list[Bucket]  # hourly, over the event and CONTEXT_HOURS around it
    samples: list[Sample]
    methods: list[dict[str, Any]] = field(default_factory=list)
    generated: str = ""


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def find_event(store: Store, event_id: str) -> dict[str, Any]:
    """The event with this id (or the one id it is a unique prefix of)."""
    from blockproof.pipeline.analyze import load_events

    events = load_events(store)
    exact = [e for e in events if e["id"] == event_id]
    matches = exact or [e for e in events if e["id"].startswith(event_id)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(e["id"] for e in events[:10]) or "none"
    if not matches:
        raise InputError(f"no event {event_id!r} in {store.root} (events: {known})")
    raise InputError(f"{event_id!r} matches {len(matches)} events; give more of the id")


def summary_sentence(event: dict[str, Any], platform_name: str) -> str:
    """The one sentence a reader needs first."""
    networks = event["networks"]
    first = networks[0] if networks else None
    where = event["country"]
    if first is not None:
        others = len(networks) - 1
        name = f" ({first['name']})" if first.get("name") else ""
        where += f" on AS{first['asn']}{name}" + (
            f" and {others} other network{'s' if others != 1 else ''}" if others else ""
        )
    start = _parse(event["start"])
    earliest = _parse(event["start_earliest"])
    since = (
        f"between {earliest:%Y-%m-%d %H:%M} and {start:%H:%M} UTC"
        if earliest.date() == start.date() and earliest != start
        else f"from {start:%Y-%m-%d %H:%M} UTC"
    )
    if event["end"]:
        until = f"until {_parse(event['end']):%Y-%m-%d %H:%M} UTC"
        verb = "was"
    else:
        until = "and is still blocked at the end of the data"
        verb = "has been"
    if event["kind"] == "outage":
        what = f"The internet was cut off in {where}, {since} {until}"
    else:
        what = f"{platform_name} {verb} blocked in {where} {since} {until}"
    methods = event.get("methods") or []
    how = ""
    if methods and event["kind"] != "outage":
        main = methods[0]["method"]
        how = f", mostly by {METHOD_TEXT.get(main, main)}"
    counts = (
        f"{event['n_measurements']:,} measurements from {event['n_probes']:,} probes, "
        f"{event['n_blocked']:,} of them showing the block"
        + (f" ({event['n_confirmed']:,} confirmed by a known blockpage or DNS fingerprint)"
           if event.get("n_confirmed") else "")
    )  # fmt: skip
    return f"{what}{how}. Evidence: {counts}; confidence: {event['confidence']}."


def _timeline(store: Store, event: dict[str, Any]) -> list[Bucket]:
    """Hourly buckets of the platform in the country, from ``CONTEXT_HOURS`` before the
    earliest start to as long after the latest end (or the last data)."""
    span = data_span(store, event["country"], event["platform"])
    if span is None:
        return []
    start = _parse(event["start_earliest"]) - timedelta(hours=CONTEXT_HOURS)
    end_text = event["end_latest"] or event["end"]
    end = (_parse(end_text) + timedelta(hours=CONTEXT_HOURS)) if end_text else span[1]
    end = min(end, start + timedelta(hours=MAX_TIMELINE_HOURS)) + timedelta(hours=1)
    tl = timeline(
        store, event["country"], event["platform"], since=start, until=end, granularity="hour"
    )
    return tl.buckets


def _day(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%d}"


def _samples(store: Store, event: dict[str, Any], size: int) -> list[Sample]:
    """A sample of the event's blocked measurements: for each network and method, the
    clearest one (fingerprint-confirmed first, then the earliest), with its verdict, the
    SHA-256 of its bytes as received and its signature status (both kept at ingest; a
    store written before they were is read from its kept source files instead)."""
    import duckdb
    import pyarrow.parquet as pq

    asns = [int(n["asn"]) for n in event["networks"]]
    start = _parse(event["start_earliest"])
    end = _parse(event["end_latest"]) if event.get("end_latest") else None
    window = {"cc": event["country"], "first_day": _day(start), "last_day": _day(end)}
    verdict_files = store.files("verdicts", **window)
    measurement_files = store.files("measurements", **window)
    if not asns or not verdict_files or not measurement_files:
        return []
    platform_clause = "" if event["platform"] == "*" else "AND v.platform = $platform"
    kept = {f.name for f in pq.read_schema(measurement_files[-1])}
    digest_columns = (
        "m.raw_sha256, m.signature, m.probe_id"
        if {"raw_sha256", "signature"} <= kept
        else "NULL, NULL, NULL"
    )
    con = duckdb.connect()
    try:
        params: dict[str, Any] = {"cc": event["country"], "asns": asns, "start": start,
                                  "size": size}  # fmt: skip
        if event["platform"] != "*":
            params["platform"] = event["platform"]
        end_clause = ""
        if end is not None:
            end_clause = "AND v.measurement_start_time < $end"
            params["end"] = end
        rows = con.execute(
            f"""
            WITH picked AS (
                SELECT v.msm_id, v.probe_asn, v.outcome, v.method, v.rule_id, v.explanation,
                       v.fingerprint,
                       row_number() OVER (
                           PARTITION BY v.probe_asn, v.method
                           ORDER BY v.outcome <> 'confirmed', v.measurement_start_time, v.msm_id
                       ) AS rank
                FROM {parquet(verdict_files)} v
                WHERE v.probe_cc = $cc AND v.probe_asn IN (SELECT unnest($asns))
                  AND v.measurement_start_time >= $start {end_clause} {platform_clause}
                  AND v.outcome IN ('anomaly', 'confirmed')
            ), chosen AS (
                SELECT * FROM picked WHERE rank = 1
                ORDER BY outcome <> 'confirmed', probe_asn, method LIMIT $size
            )
            SELECT c.msm_id, strftime(m.measurement_start_time, '%Y-%m-%d %H:%M:%S'),
                   c.probe_asn, m.input, c.outcome, c.method, c.rule_id, c.explanation,
                   c.fingerprint, m.source_sha256, m.source_line, {digest_columns}
            FROM chosen c JOIN {parquet(measurement_files)} m USING (msm_id)
            ORDER BY c.probe_asn, c.method
            """,
            params,
        ).fetchall()
    finally:
        con.close()
    samples: list[Sample] = []
    for (msm_id, start_text, asn, url, outcome, method, rule_id, explanation, fingerprint,
         source_sha, source_line, digest, signature, probe_id) in rows:  # fmt: skip
        if digest is None or signature is None:
            _raw, digest, signature, key_id = kept_bytes(store, source_sha, source_line)
        else:
            key_id = probe_id if signature == "valid" else None
        samples.append(
            Sample(
                msm_id,
                start_text,
                int(asn),
                url,
                outcome,
                method,
                rule_id,
                explanation or "",
                fingerprint,
                digest,
                signature,
                key_id,
            )
        )
    return samples


def gather(store: Store, event_id: str, *, sample_size: int = SAMPLE_SIZE) -> Evidence:
    """The evidence for one event (see the module docstring)."""
    store.require()
    event = find_event(store, event_id)
    name = platform_name(event["platform"])
    methods = [
        {**m, "meaning": METHOD_TEXT.get(m["method"], m["method"])}
        for m in event.get("methods") or []
    ]
    return Evidence(
        event=event,
        platform_name=name,
        summary=summary_sentence(event, name),
        timeline=_timeline(store, event),
        samples=_samples(store, event, sample_size),
        methods=methods,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


@dataclass(frozen=True, slots=True)
class NetworkStatus:
    """A platform on one network, over the network's last day of data."""

    platform: str
    asn: int
    name: str
    blocked_probes: int  # probe-hours judged blocked
    clear_probes: int  # probe-hours judged clear
    measurements: int
    last_hour: datetime

    @property
    def state(self) -> str:
        scored = self.blocked_probes + self.clear_probes
        if scored == 0:
            return "no verdict (only failed measurements)"
        share = self.blocked_probes / scored
        if share >= 0.5:
            return f"blocked ({self.blocked_probes} of {scored} probe-hours)"
        if share > 0:
            return f"mostly reachable ({self.blocked_probes} of {scored} probe-hours blocked)"
        return f"reachable ({scored} probe-hours)"


def country_status(store: Store, cc: str, *, hours: int = 24) -> list[NetworkStatus]:
    """Each platform on each network of ``cc``, over that network's last ``hours`` of data."""
    import duckdb

    if not store.cells_path.exists():
        return []
    from blockproof.pipeline.analyze import load_networks

    names = {asn: name for (c, asn), name in load_networks(store).items() if c == cc}
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""
            WITH c AS (SELECT * FROM read_parquet(?) WHERE probe_cc = ?),
                 last AS (SELECT probe_asn, max(hour) AS top FROM c GROUP BY probe_asn)
            SELECT c.platform, c.probe_asn, sum(c.blocked_probes), sum(c.clear_probes),
                   sum(c.n_measurements), max(c.hour)
            FROM c JOIN last USING (probe_asn)
            WHERE c.hour > last.top - {int(hours) * 3600}
            GROUP BY c.platform, c.probe_asn ORDER BY c.platform, c.probe_asn
            """,
            [str(store.cells_path), cc],
        ).fetchall()
    finally:
        con.close()
    return [
        NetworkStatus(
            platform=platform,
            asn=int(asn),
            name=names.get(int(asn), ""),
            blocked_probes=int(blocked),
            clear_probes=int(clear),
            measurements=int(n),
            last_hour=datetime.fromtimestamp(int(top), UTC),
        )
        for platform, asn, blocked, clear, n, top in rows
    ]
