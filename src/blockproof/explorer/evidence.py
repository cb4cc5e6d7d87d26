"""Everything an evidence report (and the explorer's event page) says about one event.

``gather(store, event_id)`` reads the analysis (``events.json`` through
``pipeline.events``, typed; the hourly cells) and the store's tables and returns an
``Evidence``: the event, a
plain-language summary, the hourly timeline of the platform in the country
(every hour of the window, hours without data marked as such, never as "ok"),
the networks, the methods with what they mean, and a sample of measurements
with their exact bytes' SHA-256 and signature status. Rendering lives
elsewhere (``explorer.report``); this module only reads and computes.

The sample: for each network and method of the event, its clearest blocked
measurement, fingerprint-confirmed first, then one whose custody can be checked
(a valid probe signature *and* a valid inclusion proof in a collector's log),
then the earliest. ``analyze`` keeps a sample with the event that does not look
at custody; when the store holds checkable measurements of the event, each
sample measurement that is not checkable is swapped for a checkable one of the
same network and method (never a confirmed one for one that is not).

With ``since`` (a date), ``gather`` adds the compliance view: each network's
hourly state from that date on, computed by ``explorer.compliance`` from the
hourly cells (``compliance_since``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from blockproof.custody.proofs import inclusion_status
from blockproof.errors import InputError
from blockproof.explorer.compliance import BLOCKED, NO_DATA, Compliance, compliance, judge
from blockproof.explorer.tables import kept_bytes, parquet
from blockproof.explorer.timeline import (
    HOUR,
    MAX_HOURLY_DAYS,
    Bucket,
    Timeline,
    data_span,
    platform_name,
    read_cells,
    timeline,
)
from blockproof.pipeline.events import StoredEvent, StoredMethod, StoredSample
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
    outcome: str  # ours
    ooni_outcome: str  # what OONI's Explorer counts for the same measurement
    method: str
    rule_id: str
    explanation: str
    fingerprint: str | None
    sha256: str | None  # of the measurement's bytes as received; None if the source is gone
    signature: str  # valid | unsigned | invalid
    key_id: str | None
    receipt: dict[str, Any] | None = None  # the collector's receipt (inclusion proof)
    inclusion: str | None = None  # "valid" or its problems; None without a receipt
    checked: str = "at ingest"  # when hash, signature and proof were last checked


@dataclass(frozen=True, slots=True)
class Context:
    """What the numbers rest on: the background rate of blocked-looking measurements
    before the event (the rules' false-positive rate on these networks, as measured
    here), the rate during it, and how much of the event's hours had data at all."""

    before_measurements: int
    before_blocked: int
    during_measurements: int
    during_blocked: int
    event_hours: int
    event_hours_with_data: int
    networks_measured: int  # networks of the country with data for the platform, in the window
    networks_in_event: int

    def rate(self, blocked: int, total: int) -> str:
        return f"{blocked / total:.1%}" if total else "no data"


@dataclass(frozen=True, slots=True)
class ExplainedMethod:
    """A method of the event with what it means in plain words (``METHOD_TEXT``)."""

    count: int
    method: str
    share: float
    meaning: str

    @classmethod
    def of(cls, stored: StoredMethod) -> ExplainedMethod:
        meaning = METHOD_TEXT.get(stored.method, stored.method)
        return cls(count=stored.count, method=stored.method, share=stored.share, meaning=meaning)


@dataclass(slots=True)
class Evidence:
    event: StoredEvent  # as JSON: ``event.to_json()``
    platform_name: str
    summary: str
    timeline: list[Bucket]  # hourly, over the event and CONTEXT_HOURS around it
    samples: list[Sample]
    methods: list[ExplainedMethod] = field(default_factory=list)
    generated: str = ""
    context: Context | None = None
    compliance: Compliance | None = None  # only when asked for, from a date (``since``)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def find_event(store: Store, event_id: str) -> StoredEvent:
    """The event with this id (or the one id it is a unique prefix of)."""
    from blockproof.pipeline.events import read_events

    events = read_events(store)
    exact = [e for e in events if e.id == event_id]
    matches = exact or [e for e in events if e.id.startswith(event_id)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(e.id for e in events[:10]) or "none"
    if not matches:
        raise InputError(f"no event {event_id!r} in {store.root} (events: {known})")
    raise InputError(f"{event_id!r} matches {len(matches)} events; give more of the id")


def summary_sentence(event: StoredEvent, platform_name: str) -> str:
    """The one sentence a reader needs first."""
    networks = event.networks
    first = networks[0] if networks else None
    where = event.country
    if first is not None:
        others = len(networks) - 1
        name = f" ({first.name})" if first.name else ""
        where += f" on AS{first.asn}{name}" + (
            f" and {others} other network{'s' if others != 1 else ''}" if others else ""
        )
    start = _parse(event.start)
    earliest = _parse(event.start_earliest)
    since = (
        f"between {earliest:%Y-%m-%d %H:%M} and {start:%H:%M} UTC"
        if earliest.date() == start.date() and earliest != start
        else f"from {start:%Y-%m-%d %H:%M} UTC"
    )
    if event.end:
        until = f"until {_parse(event.end):%Y-%m-%d %H:%M} UTC"
        verb = "was"
    else:
        until = "and is still blocked at the end of the data"
        verb = "has been"
    if event.kind == "outage":
        what = f"The internet was cut off in {where}, {since} {until}"
    else:
        what = f"{platform_name} {verb} blocked in {where} {since} {until}"
    methods = event.methods
    how = ""
    if methods and event.kind != "outage":
        main = methods[0].method
        how = f", mostly by {METHOD_TEXT.get(main, main)}"
    counts = (
        f"{event.n_measurements:,} measurements from {event.n_probes:,} probes, "
        f"{event.n_blocked:,} of them showing the block"
        + (f" ({event.n_confirmed:,} confirmed by a known blockpage or DNS fingerprint)"
           if event.n_confirmed else "")
    )  # fmt: skip
    return f"{what}{how}. Evidence: {counts}; confidence: {event.confidence}."


def _timeline(store: Store, event: StoredEvent) -> Timeline | None:
    """Hourly buckets of the platform in the country, from ``CONTEXT_HOURS`` before the
    earliest start to as long after the latest end (or the last data)."""
    span = data_span(store, event.country, event.platform)
    if span is None:
        return None
    start = _parse(event.start_earliest) - timedelta(hours=CONTEXT_HOURS)
    end_text = event.end_latest or event.end
    end = (_parse(end_text) + timedelta(hours=CONTEXT_HOURS)) if end_text else span[1]
    end = min(end, start + timedelta(hours=MAX_TIMELINE_HOURS)) + timedelta(hours=1)
    return timeline(
        store,
        event.country,
        event.platform,
        since=start,
        until=end,
        granularity="hour",
        span=span,
    )


def _context(event: StoredEvent, tl: Timeline | None) -> Context | None:
    if tl is None:
        return None
    start = _parse(event.start)
    end = _parse(event.end) if event.end else tl.until
    before = [b for b in tl.buckets if b.start < _parse(event.start_earliest)]
    during = [b for b in tl.buckets if start <= b.start < end]
    return Context(
        before_measurements=sum(b.total for b in before),
        before_blocked=sum(b.blocked for b in before),
        during_measurements=sum(b.total for b in during),
        during_blocked=sum(b.blocked for b in during),
        event_hours=len(during),
        event_hours_with_data=sum(1 for b in during if b.total),
        networks_measured=len(tl.networks),
        networks_in_event=len(event.networks),
    )


def _day(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%d}"


def _samples(
    store: Store, event: StoredEvent, size: int, *, reverify: bool = False
) -> list[Sample]:
    """A sample of the event's blocked measurements: for each network and method, the
    clearest one (fingerprint-confirmed first, then the earliest), with its verdict, the
    SHA-256 of its bytes as received, its signature status and its collector receipt.
    ``analyze`` keeps them with the event; an older analysis, or a larger sample, is
    looked up in the tables. All were checked at ingest; with ``reverify`` (and for a
    store written before those checks were kept) they are checked again from the kept
    source files."""
    stored = event.samples
    if stored is None or (size > len(stored) and len(stored) >= SAMPLE_SIZE):
        found = _look_up_samples(store, event, size)
    else:
        found = [(row, None) for row in stored]  # a kept sample has no OONI outcome
        found = _prefer_checkable(store, event, found)
    return [_sample(store, row, ooni_outcome, reverify) for row, ooni_outcome in found[:size]]


def checkable(row: StoredSample) -> bool:
    """Its custody can be checked: signed by its probe, and in a collector's log."""
    return row.signature == "valid" and row.inclusion == "valid"


MAX_CHECKABLE = 1000  # network-and-method slots looked at for a checkable sample
_Found = tuple[StoredSample, str | None]  # a sample and what OONI counts for it


def _prefer_checkable(
    store: Store, event: StoredEvent, found: list[tuple[StoredSample, str | None]]
) -> list[tuple[StoredSample, str | None]]:
    """``found`` with each sample whose custody cannot be checked replaced by a checkable
    measurement of the same network and method, when the store has one (and it is
    confirmed, or the one it replaces is not)."""
    if not found or all(checkable(row) for row, _ in found):
        return found
    better = _checkable_slots(store, event)
    out = []
    for row, ooni_outcome in found:
        alt = better.get((row.probe_asn, row.method))
        if (
            alt is not None
            and not checkable(row)
            and (alt[0].outcome == "confirmed" or row.outcome != "confirmed")
        ):
            out.append(alt)
        else:
            out.append((row, ooni_outcome))
    return out


def _sample(store: Store, row: StoredSample, ooni_outcome: str | None, reverify: bool) -> Sample:
    digest, signature, receipt = row.raw_sha256, row.signature, row.receipt
    inclusion = row.inclusion
    checked = "at ingest"
    key_id: str | None
    if digest is None or signature is None or reverify:
        if row.source_sha256 is not None and row.source_line is not None:
            raw, digest, signature, key_id = kept_bytes(store, row.source_sha256, row.source_line)
        else:  # the measurement's row was not found: no kept bytes to read
            raw, digest, signature, key_id = None, None, "unknown", None
        if raw is not None and receipt is not None:
            inclusion = inclusion_status(raw, receipt.encode())
        checked = "now, from the kept bytes" if raw is not None else "not possible"
    else:
        key_id = row.probe_id if signature == "valid" else None
    return Sample(
        msm_id=row.msm_id,
        measurement_start_time=row.measurement_start_time,
        probe_asn=row.probe_asn,
        input=row.input,
        outcome=row.outcome,
        ooni_outcome=ooni_outcome or "",
        method=row.method,
        rule_id=row.rule_id,
        explanation=row.explanation or "",
        fingerprint=row.fingerprint,
        sha256=digest,
        signature=str(signature),
        key_id=key_id,
        receipt=receipt_summary(receipt),
        inclusion=inclusion,
        checked=checked,
    )


# (store, events.json's size and time, event id) -> the event's checkable measurements per
# network and method: looked up once per analysis, not at every view of the event's page
_CHECKABLE: dict[tuple[str, int, int, str], dict[tuple[int, str], _Found]] = {}
_CHECKABLE_MAX = 256


def _checkable_slots(store: Store, event: StoredEvent) -> dict[tuple[int, str], _Found]:
    try:
        stat = store.events_path.stat()
        key: tuple[str, int, int, str] | None = (
            str(store.root),
            stat.st_size,
            stat.st_mtime_ns,
            event.id,
        )
    except OSError:
        key = None
    if key is not None and key in _CHECKABLE:
        return _CHECKABLE[key]
    found = _look_up_samples(store, event, MAX_CHECKABLE, checkable_only=True)
    slots = {(row.probe_asn, row.method): (row, ooni_outcome) for row, ooni_outcome in found}
    if key is not None:
        if len(_CHECKABLE) >= _CHECKABLE_MAX:
            _CHECKABLE.clear()
        _CHECKABLE[key] = slots
    return slots


def _look_up_samples(
    store: Store, event: StoredEvent, size: int, *, checkable_only: bool = False
) -> list[tuple[StoredSample, str | None]]:
    """The sample, searched in the verdicts and measurements of the event's partitions:
    each measurement with what OONI's Explorer counts for it (``ooni_outcome``). Per
    network and method: confirmed first, then checkable (``checkable``), then the
    earliest; with ``checkable_only``, only checkable measurements."""
    import duckdb
    import pyarrow.parquet as pq

    asns = [n.asn for n in event.networks]
    start = _parse(event.start_earliest)
    end = _parse(event.end_latest) if event.end_latest else None
    window = {"cc": event.country, "first_day": _day(start), "last_day": _day(end)}
    verdict_files = store.files("verdicts", **window)
    measurement_files = store.files("measurements", **window)
    if not asns or not verdict_files or not measurement_files:
        return []
    platform_clause = "" if event.platform == "*" else "AND v.platform = $platform"
    kept = {f.name for f in pq.read_schema(measurement_files[-1])}
    digest_columns = (
        "m.raw_sha256, m.signature, m.probe_id"
        if {"raw_sha256", "signature"} <= kept
        else "NULL AS raw_sha256, NULL AS signature, NULL AS probe_id"
    ) + (
        ", m.receipt, m.inclusion"
        if {"receipt", "inclusion"} <= kept
        else ", NULL AS receipt, NULL AS inclusion"
    )
    if {"signature", "inclusion"} <= kept:
        # only the two small columns are read here; the chosen rows' details below
        custody = (
            f"SELECT msm_id, TRUE AS checkable FROM {parquet(measurement_files)} "
            "WHERE probe_cc = $cc AND signature = 'valid' AND inclusion = 'valid'"
        )
        join = f"{'' if checkable_only else 'LEFT '}JOIN ({custody}) k USING (msm_id)"
        checkable_first = "k.checkable IS NULL,"
    elif checkable_only:
        return []  # a store written before signatures were kept: nothing is checkable
    else:
        join, checkable_first = "", ""
    con = duckdb.connect()
    try:
        params: dict[str, Any] = {"cc": event.country, "asns": asns, "start": start,
                                  "size": size}  # fmt: skip
        if event.platform != "*":
            params["platform"] = event.platform
        end_clause = ""
        if end is not None:
            end_clause = "AND v.measurement_start_time < $end"
            params["end"] = end
        rows = con.execute(
            f"""
            WITH picked AS (
                SELECT v.msm_id, v.probe_asn, v.outcome, v.ooni_outcome, v.method, v.rule_id,
                       v.explanation, v.fingerprint,
                       row_number() OVER (
                           PARTITION BY v.probe_asn, v.method
                           ORDER BY v.outcome <> 'confirmed', {checkable_first}
                                    v.measurement_start_time, v.msm_id
                       ) AS rank
                FROM {parquet(verdict_files)} v {join}
                WHERE v.probe_cc = $cc AND v.probe_asn IN (SELECT unnest($asns))
                  AND v.measurement_start_time >= $start {end_clause} {platform_clause}
                  AND v.outcome IN ('anomaly', 'confirmed')
            ), chosen AS (
                SELECT * FROM picked WHERE rank = 1
                ORDER BY outcome <> 'confirmed', probe_asn, method LIMIT $size
            )
            SELECT c.msm_id,
                   strftime(m.measurement_start_time, '%Y-%m-%d %H:%M:%S')
                       AS measurement_start_time,
                   c.probe_asn, m.input, c.outcome, c.ooni_outcome, c.method, c.rule_id,
                   c.explanation,
                   c.fingerprint, m.source_sha256, m.source_line, {digest_columns}
            FROM chosen c JOIN {parquet(measurement_files)} m USING (msm_id)
            ORDER BY c.probe_asn, c.method
            """,
            params,
        )
        names = [d[0] for d in rows.description]
        found = [dict(zip(names, r, strict=True)) for r in rows.fetchall()]
    finally:
        con.close()
    where = f"the sample of event {event.id}"
    return [
        (
            StoredSample.from_json(
                {k: v for k, v in row.items() if k != "ooni_outcome"}, f"{where}, row {i}"
            ),
            row["ooni_outcome"],
        )
        for i, row in enumerate(found)
    ]


def receipt_summary(receipt: str | None) -> dict[str, Any] | None:
    """The facts of a receipt a reader checks: log, leaf, tree size and root."""
    if receipt is None:
        return None
    try:
        data = orjson.loads(receipt)
        head = data["tree_head"]
        return {
            "measurement_uid": data["measurement_uid"],
            "leaf_index": data["leaf_index"],
            "leaf_hash": data["leaf_hash"],
            "inclusion_proof": data["inclusion_proof"],
            "log_id": head["log_id"],
            "tree_size": head["tree_size"],
            "root_hash": head["root_hash"],
            "tree_head": head,
        }
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return {"unreadable": receipt[:200]}


def gather(
    store: Store,
    event_id: str,
    *,
    sample_size: int = SAMPLE_SIZE,
    reverify: bool = False,
    since: date | None = None,
) -> Evidence:
    """The evidence for one event (see the module docstring). ``reverify`` re-reads each
    sample's kept bytes to check its hash, signature and inclusion proof again (what a
    report does; the explorer's pages show the checks made at ingest). ``since`` adds
    the compliance view from that date on."""
    store.require()
    event = find_event(store, event_id)
    name = platform_name(event.platform)
    tl = _timeline(store, event)
    methods = [ExplainedMethod.of(m) for m in event.methods]
    return Evidence(
        event=event,
        platform_name=name,
        summary=summary_sentence(event, name),
        timeline=tl.buckets if tl else [],
        samples=_samples(store, event, sample_size, reverify=reverify),
        methods=methods,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        context=_context(event, tl),
        compliance=None if since is None else compliance_since(store, event, since),
    )


def compliance_since(store: Store, event: StoredEvent, since: date) -> Compliance:
    """Each network's hourly state (blocked, clear, no data) from ``since`` to the end of
    the data, for the event's platform in its country (``explorer.compliance``): the
    event's networks, then the country's other networks with data for the platform.
    Read from the hourly cells only."""
    from blockproof.pipeline.analyze import load_networks

    span = data_span(store, event.country, event.platform)
    lo = int(datetime(since.year, since.month, since.day, tzinfo=UTC).timestamp())
    if span is not None:
        lo = max(lo, int(span[0].timestamp()))
    columns = ["probe_asn", "hour", "blocked_probes", "clear_probes"]
    # summed per network and hour (over every platform, for an outage's "*")
    rows = read_cells(store, event.country, event.platform, lo, None, columns, HOUR)
    names = {asn: name for (cc, asn), name in load_networks(store).items() if cc == event.country}
    return compliance(
        zip(rows["probe_asn"], rows["hour"], rows["blocked_probes"], rows["clear_probes"],
            strict=True),
        since,
        data_span=span,
        event_networks=[(n.asn, n.name) for n in event.networks],
        names=names,
    )  # fmt: skip


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
        """In words, by the explorer's one judgement (``compliance.judge``: blocked when
        half or more of the judged probe-hours were)."""
        scored = self.blocked_probes + self.clear_probes
        state = judge(self.blocked_probes, self.clear_probes)
        if state == NO_DATA:
            return "no verdict (only failed measurements)"
        if state == BLOCKED:
            return f"blocked ({self.blocked_probes} of {scored} probe-hours)"
        if self.blocked_probes > 0:
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
