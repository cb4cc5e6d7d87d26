"""What changed in the events since they were last announced: the alerts (sans-IO).

Theory of operation. ``analyze`` rewrites the events at each run; an event keeps its id
while it is extended, gains networks or ends. What was last *announced* about each event
id is kept (``Announced``: its networks, the networks announced reachable again, the
dominant method, the confidence, whether its end was announced, and counters for the ids
of later alerts). ``compute`` compares each current event with that record, from the
event's content alone (no revision number is needed), and gives:

- **onset** (``{event}/onset``) for an event id never announced: the platform blocked in
  the country on its networks since its start, the dominant method and its share, the
  confidence. An outage (``platform == "*"``) is worded as an outage.
- **update** (``{event}/update/{n}``, n = 1, 2, ...) when an announced event gained a
  network, has a network blocked again after it was announced reachable, changed its
  dominant method or its confidence: one alert listing every change.
- **resolution**: ``{event}/resolution/AS{asn}`` when one network's span ended while the
  event goes on elsewhere, and ``{event}/resolution`` when the event ended (naming the
  networks not yet announced reachable). An event or network that is blocked again and
  ends again gets ``.../2``, ``.../3``.

An event that is merely extended (later end, more measurements, another restoration)
gives no alert. An event that disappears from the analysis gives none either: its record
stays, and if it comes back it is compared with that record. The same events and the
same record always give the same alerts with the same ids, so a run that is interrupted
before its record is saved computes exactly the same alerts again.

Each alert carries a title (one line), a plain-text body, the explorer's evidence page
(``{explorer_url}/events/{id}``) and the report command. Text that comes from the data
(network names above all: OONI's probes report them) is cleaned of control characters
and bounded before it goes into a title, a body or a header.

``compute`` takes ``now`` (the time the alerts are issued); with ``now=None`` (the
explorer's stateless feed) each alert is dated by the data instead: an onset by the
event's start, a resolution by its end.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from blockproof.pipeline.events import StoredEvent, StoredNetwork

__all__ = [
    "KINDS",
    "Alert",
    "AlertNetwork",
    "Announced",
    "Context",
    "compute",
    "dominant_method",
]

KINDS = ("onset", "update", "resolution")
TITLE_NETWORKS = 4  # networks named in a title; the rest are counted
NAME_LIMIT = 80  # characters kept of a name that comes from the data
TITLE_LIMIT = 300


def clean(text: str, limit: int = NAME_LIMIT) -> str:
    """``text`` on one line: control and format characters dropped, runs of white space
    made one space, at most ``limit`` characters (an ellipsis marks a cut)."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    one_line = re.sub(r" +", " ", kept).strip()
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def when(iso: str | None) -> str:
    """``2024-02-17T15:00:00Z`` as ``2024-02-17 15:00 UTC`` (anything else as given)."""
    if iso is None:
        return "an unknown time"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return clean(iso, 40)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _hour(iso: str) -> str:
    """The ``HH:MM`` of a time when it falls on the same day as another (intervals)."""
    return when(iso)[11:16]


def _percent(share: float) -> str:
    return f"{round(share * 100)}%"


@dataclass(frozen=True, slots=True)
class AlertNetwork:
    """A network an alert is about: its span as the analysis gives it."""

    asn: int
    name: str
    start: str
    end: str | None

    def label(self) -> str:
        return f"AS{self.asn} ({self.name})" if self.name else f"AS{self.asn}"

    def to_json(self) -> dict[str, Any]:
        return {"asn": self.asn, "name": self.name, "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> AlertNetwork:
        return cls(
            asn=int(value["asn"]),
            name=str(value["name"]),
            start=str(value["start"]),
            end=None if value["end"] is None else str(value["end"]),
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: what is said, about which event, and where the evidence is.

    ``networks`` are the networks the alert is about (an onset: all of the event's; an
    update: the networks that changed, or all when the method or confidence changed; a
    resolution: the networks reachable again). ``occurred`` is when it happened by the
    data, ``issued`` when the alert was computed (the same, in the stateless feed)."""

    id: str
    kind: str  # onset | update | resolution
    event_id: str
    event_kind: str  # platform_block | outage
    platform: str  # "*" for an outage
    platform_name: str
    country: str
    networks: tuple[AlertNetwork, ...]
    start: str
    end: str | None
    ongoing: bool
    method: str
    method_share: float
    confidence: str
    changes: tuple[str, ...]
    title: str
    text: str
    evidence_url: str
    report_command: str
    occurred: str
    issued: str

    @property
    def asns(self) -> frozenset[int]:
        return frozenset(n.asn for n in self.networks)

    def to_json(self) -> dict[str, Any]:
        """The alert as the webhook sends it and the ledger keeps it."""
        return {
            "alert_id": self.id,
            "kind": self.kind,
            "event_id": self.event_id,
            "event_kind": self.event_kind,
            "platform": self.platform,
            "platform_name": self.platform_name,
            "country": self.country,
            "networks": [n.to_json() for n in self.networks],
            "start": self.start,
            "end": self.end,
            "ongoing": self.ongoing,
            "method": self.method,
            "method_share": self.method_share,
            "confidence": self.confidence,
            "changes": list(self.changes),
            "title": self.title,
            "text": self.text,
            "links": {"evidence": self.evidence_url, "report_command": self.report_command},
            "occurred": self.occurred,
            "issued": self.issued,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Alert:
        links = value["links"]
        return cls(
            id=str(value["alert_id"]),
            kind=str(value["kind"]),
            event_id=str(value["event_id"]),
            event_kind=str(value["event_kind"]),
            platform=str(value["platform"]),
            platform_name=str(value["platform_name"]),
            country=str(value["country"]),
            networks=tuple(AlertNetwork.from_json(n) for n in value["networks"]),
            start=str(value["start"]),
            end=None if value["end"] is None else str(value["end"]),
            ongoing=bool(value["ongoing"]),
            method=str(value["method"]),
            method_share=float(value["method_share"]),
            confidence=str(value["confidence"]),
            changes=tuple(str(c) for c in value["changes"]),
            title=str(value["title"]),
            text=str(value["text"]),
            evidence_url=str(links["evidence"]),
            report_command=str(links["report_command"]),
            occurred=str(value["occurred"]),
            issued=str(value["issued"]),
        )


@dataclass(frozen=True, slots=True)
class Announced:
    """What was last announced about one event id."""

    networks: frozenset[int]  # every network announced blocked (onset, updates)
    resolved: frozenset[int]  # networks announced reachable again, and not blocked since
    method: str
    confidence: str
    ended: bool  # the event's resolution was announced (and it was not blocked since)
    updates: int = 0  # update alerts issued
    resolutions: int = 0  # event resolutions issued
    network_resolutions: Mapping[int, int] = field(default_factory=dict)  # per-network ones

    def to_json(self) -> dict[str, Any]:
        return {
            "networks": sorted(self.networks),
            "resolved": sorted(self.resolved),
            "method": self.method,
            "confidence": self.confidence,
            "ended": self.ended,
            "updates": self.updates,
            "resolutions": self.resolutions,
            "network_resolutions": {
                str(asn): n for asn, n in sorted(self.network_resolutions.items())
            },
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Announced:
        return cls(
            networks=frozenset(int(a) for a in value["networks"]),
            resolved=frozenset(int(a) for a in value["resolved"]),
            method=str(value["method"]),
            confidence=str(value["confidence"]),
            ended=bool(value["ended"]),
            updates=int(value["updates"]),
            resolutions=int(value["resolutions"]),
            network_resolutions={
                int(a): int(n) for a, n in dict(value["network_resolutions"]).items()
            },
        )


@dataclass(frozen=True, slots=True)
class Context:
    """What the wording needs besides the events: where the explorer is, how to name the
    store in the report command, and the platforms' names."""

    explorer_url: str  # without a trailing slash
    store_label: str  # the --store argument printed in the report command
    platform_names: Mapping[str, str]

    def evidence_url(self, event_id: str) -> str:
        return f"{self.explorer_url}/events/{quote(event_id, safe='')}"

    def report_command(self, event_id: str) -> str:
        return (
            f"blockproof report {shlex.quote(event_id)} --store "
            f"{shlex.quote(self.store_label)} --out report.html"
        )

    def platform_name(self, platform: str) -> str:
        if platform == "*":
            return "every platform"
        return clean(self.platform_names.get(platform, platform))


def dominant_method(event: StoredEvent) -> tuple[str, float]:
    """The event's dominant method and its share (``unknown`` when it has none)."""
    if not event.methods:
        return "unknown", 0.0
    first = event.methods[0]
    return clean(first.method, 40), float(first.share)


def _network(n: StoredNetwork) -> AlertNetwork:
    return AlertNetwork(asn=n.asn, name=clean(n.name), start=n.start, end=n.end)


def _asn_list(networks: Sequence[AlertNetwork]) -> str:
    shown = [f"AS{n.asn}" for n in networks[:TITLE_NETWORKS]]
    rest = len(networks) - len(shown)
    if not shown:
        return "no network"
    if rest > 0:
        return f"{', '.join(shown)} and {rest} more network{'s' if rest > 1 else ''}"
    return ", ".join(shown)


def _is_outage(event: StoredEvent) -> bool:
    return event.platform == "*" or event.kind == "outage"


class _Writer:
    """The wording of one event's alerts."""

    def __init__(self, event: StoredEvent, context: Context) -> None:
        self.event = event
        self.context = context
        self.outage = _is_outage(event)
        self.name = context.platform_name(event.platform)
        self.country = clean(event.country, 8)
        self.method, self.share = dominant_method(event)
        self.confidence = clean(event.confidence, 20)
        self.networks = tuple(_network(n) for n in sorted(event.networks, key=lambda n: n.asn))

    # -- titles ------------------------------------------------------------------------

    def onset_title(self) -> str:
        nets = _asn_list(self.networks)
        if self.outage:
            return f"Connectivity outage in {self.country} on {nets} since {when(self.event.start)}"
        return f"{self.name} blocked in {self.country} on {nets} since {when(self.event.start)}"

    def update_title(self, changes: Sequence[str]) -> str:
        head = (
            f"Connectivity outage in {self.country}"
            if self.outage
            else f"{self.name} block in {self.country}"
        )
        return clean(f"{head}: {'; '.join(changes)}", TITLE_LIMIT)

    def resolution_title(self, networks: Sequence[AlertNetwork], end: str | None) -> str:
        nets = _asn_list(networks)
        if self.outage:
            return f"Connectivity back in {self.country} on {nets} since {when(end)}"
        return f"{self.name} reachable again in {self.country} on {nets} since {when(end)}"

    # -- bodies ------------------------------------------------------------------------

    def method_line(self) -> str:
        return f"method {self.method} ({_percent(self.share)}), confidence {self.confidence}"

    def network_lines(self, networks: Sequence[AlertNetwork]) -> list[str]:
        verb = "down" if self.outage else "blocked"
        lines = []
        for n in networks:
            if n.end is None:
                lines.append(f"  {n.label()}: {verb} since {when(n.start)}")
            else:
                lines.append(f"  {n.label()}: {verb} from {when(n.start)} to {when(n.end)}")
        return lines

    def facts(self) -> list[str]:
        e = self.event
        lines = []
        if e.start_earliest != e.start_latest:
            lines.append(f"Start between {when(e.start_earliest)} and {when(e.start_latest)}.")
        if e.end is not None and e.end_earliest and e.end_latest and e.end_earliest != e.end_latest:
            lines.append(f"End between {when(e.end_earliest)} and {when(e.end_latest)}.")
        if e.methods:
            shares = ", ".join(f"{clean(m.method, 40)} {_percent(m.share)}" for m in e.methods)
            lines.append(f"Methods: {shares} of the blocked measurements.")
        lines.append(f"Confidence: {self.confidence}.")
        confirmed = f" ({e.n_confirmed} confirmed by a fingerprint)" if e.n_confirmed else ""
        lines.append(
            f"Measurements: {e.n_measurements} from {e.n_probes} probes, "
            f"{e.n_blocked} blocked{confirmed}."
        )
        if e.restorations:
            spans = ", ".join(f"{when(a)} to {when(b)}" for a, b in e.restorations[:5])
            more = f" and {len(e.restorations) - 5} more" if len(e.restorations) > 5 else ""
            lines.append(f"Brief restorations: {spans}{more}.")
        return lines

    def links(self) -> list[str]:
        return [
            f"Evidence: {self.context.evidence_url(self.event.id)}",
            f"Report:   {self.context.report_command(self.event.id)}",
        ]

    def body(self, first: str, networks: Sequence[AlertNetwork], extra: Sequence[str]) -> str:
        parts = [first, "", "Networks:", *self.network_lines(networks), "", *extra]
        parts += [*self.facts(), "", *self.links()]
        return "\n".join(parts) + "\n"

    # -- alerts ------------------------------------------------------------------------

    def alert(
        self,
        alert_id: str,
        kind: str,
        networks: Sequence[AlertNetwork],
        title: str,
        text: str,
        changes: Sequence[str],
        occurred: str,
        now: str | None,
    ) -> Alert:
        e = self.event
        return Alert(
            id=alert_id,
            kind=kind,
            event_id=e.id,
            event_kind="outage" if self.outage else e.kind,
            platform=e.platform,
            platform_name=self.name,
            country=self.country,
            networks=tuple(networks),
            start=e.start,
            end=e.end,
            ongoing=e.ongoing,
            method=self.method,
            method_share=self.share,
            confidence=self.confidence,
            changes=tuple(changes),
            title=clean(title, TITLE_LIMIT),
            text=text,
            evidence_url=self.context.evidence_url(e.id),
            report_command=self.context.report_command(e.id),
            occurred=occurred,
            issued=now or occurred,
        )

    def onset(self, now: str | None) -> Alert:
        title = self.onset_title()
        first = f"{title}, {self.method_line()}."
        if self.outage:
            first += " Most platforms measured on these networks failed at once."
        return self.alert(
            f"{self.event.id}/onset",
            "onset",
            self.networks,
            title,
            self.body(first, self.networks, []),
            [],
            self.event.start,
            now,
        )

    def update(self, number: int, changed: Sequence[AlertNetwork], changes: Sequence[str],
               whole: bool, occurred: str, now: str | None) -> Alert:  # fmt: skip
        title = self.update_title(changes)
        first = f"{title}. Now {self.method_line()}."
        about = self.networks if whole else tuple(changed)
        return self.alert(
            f"{self.event.id}/update/{number}",
            "update",
            about,
            title,
            self.body(first, self.networks, []),
            changes,
            occurred,
            now,
        )

    def resolution(
        self, alert_id: str, networks: Sequence[AlertNetwork], end: str | None, now: str | None
    ) -> Alert:
        title = self.resolution_title(networks, end)
        still = [n for n in self.networks if n.end is None and n not in networks]
        first = f"{title}."
        extra: list[str] = []
        if still:
            verb = "down" if self.outage else "blocked"
            extra.append(f"Still {verb} on {_asn_list(still)}.")
        occurred = end or self.event.end or self.event.start
        return self.alert(
            alert_id,
            "resolution",
            networks,
            title,
            self.body(first, networks, extra),
            [],
            occurred,
            now,
        )


def _relapse_time(network: StoredNetwork) -> str | None:
    """When a network announced reachable was blocked again: the end of its last brief
    restoration, when the analysis recorded one."""
    return network.restorations[-1][1] if network.restorations else None


def _numbered(base: str, n: int) -> str:
    """The n-th alert of a kind: ``base`` for the first, ``base/2`` for the second."""
    return base if n <= 1 else f"{base}/{n}"


def _event_alerts(
    event: StoredEvent, before: Announced | None, context: Context, now: str | None
) -> tuple[list[Alert], Announced]:
    w = _Writer(event, context)
    alerts: list[Alert] = []
    current = {n.asn: n for n in w.networks}
    stored = {n.asn: n for n in event.networks}
    ended_networks = {asn for asn, n in current.items() if n.end is not None}
    event_ended = not event.ongoing

    if before is None:
        alerts.append(w.onset(now))
        state = Announced(
            networks=frozenset(current),
            resolved=frozenset(),
            method=w.method,
            confidence=w.confidence,
            ended=False,
        )
    else:
        state = before
        changes: list[str] = []
        changed: list[AlertNetwork] = []
        whole = False
        times: list[str] = []
        verb = "down" if w.outage else "blocked"
        for asn in sorted(set(current) - before.networks):
            n = current[asn]
            changed.append(n)
            times.append(n.start)
            if n.end is None:
                changes.append(f"now also on AS{asn} since {when(n.start)}")
            else:
                changes.append(f"also on AS{asn} from {when(n.start)} to {when(n.end)}")
        relapsed = sorted((before.resolved & set(current)) - ended_networks)
        for asn in relapsed:
            changed.append(current[asn])
            again = _relapse_time(stored[asn])
            changes.append(f"{verb} again on AS{asn}" + (f" since {when(again)}" if again else ""))
            if again:
                times.append(again)
        if w.method != before.method:
            whole = True
            changes.append(f"method now {w.method} ({_percent(w.share)}), was {before.method}")
        if w.confidence != before.confidence:
            whole = True
            changes.append(f"confidence now {w.confidence}, was {before.confidence}")
        if changes:
            number = before.updates + 1
            occurred = max(times) if times else (now or event.start)
            alerts.append(w.update(number, changed, changes, whole, occurred, now))
            state = replace(
                state,
                networks=before.networks | set(current),
                resolved=before.resolved - set(relapsed),
                method=w.method,
                confidence=w.confidence,
                updates=number,
            )
            # a new network that had already ended is told with its end in the update
            state = replace(
                state,
                resolved=state.resolved
                | {n.asn for n in changed if n.end is not None and n.asn not in relapsed},
            )
        if before.ended and not event_ended:
            state = replace(state, ended=False)

    # resolutions: one per network whose span ended while the event goes on, then the
    # event's own when it ended, naming the networks not yet announced reachable
    counts = dict(state.network_resolutions)
    resolved = set(state.resolved)
    if not event_ended:
        for asn in sorted(ended_networks - resolved):
            n = current[asn]
            counts[asn] = counts.get(asn, 0) + 1
            alert_id = _numbered(f"{event.id}/resolution/AS{asn}", counts[asn])
            alerts.append(w.resolution(alert_id, [n], n.end, now))
            resolved.add(asn)
    elif not state.ended:
        left = [n for n in w.networks if n.asn not in resolved] or list(w.networks)
        number = state.resolutions + 1
        alerts.append(w.resolution(_numbered(f"{event.id}/resolution", number), left,
                                   event.end, now))  # fmt: skip
        resolved |= set(current)
        state = replace(state, ended=True, resolutions=number)
    state = replace(state, resolved=frozenset(resolved), network_resolutions=counts)
    return alerts, state


def compute(
    events: Sequence[StoredEvent],
    announced: Mapping[str, Announced],
    context: Context,
    now: str | None,
) -> tuple[list[Alert], dict[str, Announced]]:
    """The alerts for ``events`` given what was ``announced`` (event id -> record), and
    the record once they are announced (every event id, those not in ``events`` kept).

    Alerts come event by event (by start, then id), each event's in the order onset,
    update, per-network resolutions, resolution. ``now`` dates them (``None``: by the
    data)."""
    alerts: list[Alert] = []
    after = dict(announced)
    for event in sorted(events, key=lambda e: (e.start, e.id)):
        found, state = _event_alerts(event, announced.get(event.id), context, now)
        alerts.extend(found)
        after[event.id] = state
    return alerts, after
