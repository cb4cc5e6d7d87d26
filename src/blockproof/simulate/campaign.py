"""The campaign simulator: OONI web_connectivity measurements from many probes, with known truth.

Theory of operation
-------------------

The pieces, each with its own theory of operation:

- ``world``: sites, their addresses, pages and certificates, DNS wire answers, and what
  an ``Interference`` does to one measurement on the probe's path and the control's;
- ``vprobe``: the virtual probe, ``experiments.web_connectivity`` replayed sans-IO over
  the same plan (``core.wcplan``), with times affine in the round-trip time;
- ``templates``: one classified JSON line per (url, interference), with slots, checked
  against the truth;
- this module: the campaign, its probes, sessions or runs, arrival order and truth.

1. **The campaign** (dense, clean). Probes are apportioned to networks by share; a
   fraction stays for the whole window, the others join at a random time and stay for an
   exponentially distributed lifetime (churn). Each probe runs a session every
   ``mean_interval_hours`` (times 0.5 to 1.5), skipped with ``skip_probability``;
   some hours carry no data at all (``empty_hour_probability``). A session measures
   every URL in a random order, one after the other; each measurement looks up the
   interference active at its own start second (outages before platform blocks;
   restorations remove it), draws its spurious failure (only when nothing else
   interferes) and its ``k``, and fills its template: a string format, no JSON
   encoding per measurement.
2. **OONI-like campaigns** (``[density]``, ``scenario.Density``; docs/simulator.md).
   Instead of regular sessions of every URL, each network has a mean number of runs a
   day (``runs_per_day``); each day's volume is that times a Gamma draw (mean 1), and
   the runs are a Poisson process within the day, each attributed to one of the
   network's probes active then. A run lasts a lognormal duration and measures each
   URL with probability min(1, share * duration / pace) (front pages at OONI's
   front-page share, ``secondary_urls`` at an average listed URL's), at random
   moments of the run; it is one report id. A share of runs is flaky: about half
   their measurements fail (the probe's connectivity and its control request time
   out, ``FAILURE_KINDS``). Episodes catch only a share of the measurements they act
   on (``Episode.share``, default 60-95%, drawn per network) with a mix of methods
   (``Episode.mix``). Each measurement gets an arrival time (seconds later; a few runs
   a day or more later; after the end of an outage for what a blacked-out network
   measured) written as OONI's ``measurement_uid``; lines come out in arrival order
   (a heap). Every default comes from ``densities.json``, derived from a real sample
   of OONI's fastpath table by ``scripts/derive_densities.py``.
3. **Truth.** ``Campaign.truth()`` lists the window and every episode that
   intersects it (kind, networks, start, end or null when it outlasts the window,
   method and mix, the verdict methods the classifier gives, the share caught per
   network, restorations, affected URLs); ``simulate`` adds the counts of what the
   data holds besides the truth (``noise``: measurements that got through a partial
   block, stray anomalies, failures, late uploads).

Everything is deterministic given the scenario, the probe count, the window and the
seed; gzip output is written with a zero timestamp so that files compare equal.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

from blockproof.codec.jsonl import dumps_line
from blockproof.errors import InputError
from blockproof.platforms import platform_of_url
from blockproof.simulate.scenario import (
    ALL_PLATFORMS,
    METHODS,
    Episode,
    SimNetwork,
    SimScenario,
    format_time,
)
from blockproof.simulate.templates import TIME_FORMAT, Template, build_template
from blockproof.simulate.world import (
    FAILURE_KINDS,
    KNOWN_SITES,
    Interference,
    SimulationError,
    Site,
)

__all__ = [
    "FAILURE_KINDS",
    "KNOWN_SITES",
    "LATE_S",
    "Campaign",
    "Interference",
    "SimulationError",
    "SimulationResult",
    "Site",
    "Template",
    "simulate",
    "truth_path",
]

MEDIAN_RTT_FIXED, MEDIAN_RTT_MOBILE = 0.045, 0.085  # seconds; per measurement, lognormal
RTT_SIGMA = 0.35

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class _SimProbe:
    index: int
    network: SimNetwork
    key_id: str
    active_start: float
    active_end: float


@dataclass(frozen=True, slots=True)
class _Acting:
    """An episode acting on one (network, URL): what it does to one measurement."""

    episode: int  # index into Campaign.episodes
    outage: bool
    interferences: tuple[Interference, ...]  # the main method's first
    cumulative: tuple[float, ...]  # cumulative shares of the methods (the last is 1)
    share: float  # share of the measurements the censor catches on this network
    end: float  # when this stretch of it ends (epoch seconds): uploads resume after an outage

    def draw(self, rng: random.Random) -> Interference | None:
        """The interference one measurement meets (None: this one got through).

        Draws nothing when every measurement is caught by the one method, so that a
        clean scenario's output does not depend on this."""
        if self.share < 1.0 and rng.random() >= self.share:
            return None
        if len(self.interferences) == 1:
            return self.interferences[0]
        x = rng.random()
        for interference, bound in zip(self.interferences, self.cumulative, strict=True):
            if x < bound:
                return interference
        return self.interferences[-1]


@dataclass(frozen=True, slots=True)
class _Segment:
    start: float
    end: float
    acting: _Acting

    @property
    def interference(self) -> Interference:
        return self.acting.interferences[0]


def _apportion(total: int, networks: Sequence[SimNetwork]) -> list[int]:
    """Largest remainder: ``total`` probes shared by the networks' shares."""
    weight = sum(n.share for n in networks)
    exact = [total * n.share / weight for n in networks]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(networks)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _epoch(when: datetime) -> float:
    return when.timestamp()


def _minus(
    start: float, end: float, holes: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``[start, end)`` without the ``holes`` (sorted, disjoint)."""
    out: list[tuple[float, float]] = []
    cursor = start
    for hole_start, hole_end in holes:
        if hole_end <= cursor or hole_start >= end:
            continue
        if hole_start > cursor:
            out.append((cursor, hole_start))
        cursor = max(cursor, hole_end)
    if cursor < end:
        out.append((cursor, end))
    return out


def _uid_stamp(when: float) -> str:
    """OONI's measurement_uid time: ``20240217170512.123456``."""
    g = time.gmtime(int(when))
    micro = int((when - int(when)) * 1e6)
    return (
        f"{g.tm_year:04d}{g.tm_mon:02d}{g.tm_mday:02d}{g.tm_hour:02d}{g.tm_min:02d}"
        f"{g.tm_sec:02d}.{micro:06d}"
    )


LATE_S = 3600.0  # an upload later than this after the measurement is "late"


class Campaign:
    """One simulated campaign: its probes, sessions, measurements (as JSON lines) and truth.

    With ``[density]`` (``scenario.density``) the campaign is OONI-like: runs per network
    and day from the networks' ``runs_per_day``, one report id per run, each URL measured
    in a share of the runs, failures, stray anomalies, partial blocks and late uploads,
    written in the order they arrive (see the module docstring and docs/simulator.md)."""

    def __init__(
        self,
        scenario: SimScenario,
        *,
        probes: int | None = None,
        days: int | None = None,
        seed: int = 0,
    ) -> None:
        self.scenario = scenario
        self.probe_count = scenario.probes if probes is None else probes
        self.days = scenario.days if days is None else days
        if not 1 <= self.probe_count <= 1_000_000:
            raise InputError(f"--probes {self.probe_count}: must be between 1 and 1000000")
        if not 1 <= self.days <= 3660:
            raise InputError(f"--days {self.days}: must be between 1 and 3660")
        self.seed = seed
        self.window_start = scenario.start
        self.window_end = scenario.start + timedelta(days=self.days)
        self.episodes = tuple(
            e
            for e in scenario.episodes
            if e.start < self.window_end and (e.end is None or e.end > self.window_start)
        )
        self.validity = (
            self.window_start - timedelta(days=60),
            self.window_end + timedelta(days=90),
        )
        self.density = scenario.density
        self.params: dict[str, Any] = self.density.parameters() if self.density else {}
        self.templates: dict[tuple[str, Interference | None], Template] = {}
        self.platforms = {url: platform_of_url(url) for url in scenario.urls}
        self.measurements = 0
        self.sessions = 0
        self.noise: Counter[str] = Counter()  # what the data holds besides the truth
        self.shares = self._draw_shares()
        self._segments = self._build_segments()
        self._fp = [Interference(method=f"fp-{k}") for k in scenario.false_positive_kinds]
        self._fail = [Interference(method=k) for k in FAILURE_KINDS]
        self.empty_hours: list[int] = []

    # -- interference over time

    def _interference_of(self, episode: Episode, method: str) -> Interference:
        org = ""
        for network in self.scenario.networks:
            if network.asn == episode.answer_asn:
                org = network.name
        info = METHODS[method]
        takes = method == episode.method  # only the main method forges answers, pages
        return Interference(
            method=method,
            everything=episode.platform == ALL_PLATFORMS,
            answer=episode.answer if takes and info.answer is not None else "",
            answer_asn=episode.answer_asn if takes and info.answer is not None else 0,
            answer_org=org if takes and info.answer is not None else "",
            blockpage=episode.blockpage if takes else "",
        )

    def _draw_shares(self) -> dict[tuple[int, int], float]:
        """Per (episode, ASN): the share of measurements the censor catches there."""
        out: dict[tuple[int, int], float] = {}
        for i, episode in enumerate(self.episodes):
            low, high = 1.0, 1.0
            if episode.share is not None:
                low, high = episode.share
            elif self.density is not None and episode.platform != ALL_PLATFORMS:
                low, high = self.params["block_share"]
            for asn in episode.networks:
                rng = random.Random(
                    f"blockproof-simulate/{self.scenario.name}/{self.seed}/share/{i}/{asn}"
                )
                out[(i, asn)] = round(low + (high - low) * rng.random(), 4)
        return out

    def acts_on(self, episode: Episode, url: str) -> bool:
        """Does ``episode`` change the measurements of ``url`` (on its networks)?"""
        if episode.platform == ALL_PLATFORMS:
            return True
        if self.platforms.get(url, platform_of_url(url)) != episode.platform:
            return False
        info = METHODS[episode.method]
        return info.https if url.startswith("https:") else info.http

    def _build_segments(self) -> dict[tuple[int, str], tuple[_Segment, ...]]:
        """Per (ASN, URL): when an interference acts, outages first."""
        out: dict[tuple[int, str], tuple[_Segment, ...]] = {}
        far = _epoch(self.window_end) + 86400.0
        for network in self.scenario.networks:
            for url in self.scenario.urls:
                outages: list[_Segment] = []
                blocks: list[_Segment] = []
                for index, episode in enumerate(self.episodes):
                    if network.asn not in episode.networks or not self.acts_on(episode, url):
                        continue
                    start = _epoch(episode.start)
                    end = _epoch(episode.end) if episode.end else far
                    holes = [
                        (_epoch(r.start), _epoch(r.end) if r.end else far)
                        for r in episode.restorations
                    ]
                    methods = [
                        (m, w)
                        for m, w in episode.methods
                        if (METHODS[m].https if url.startswith("https:") else METHODS[m].http)
                    ]
                    total = sum(w for _, w in methods)
                    cumulative, running = [], 0.0
                    for _, w in methods:
                        running += w / total
                        cumulative.append(running)
                    cumulative[-1] = 1.0
                    outage = episode.platform == ALL_PLATFORMS
                    target = outages if outage else blocks
                    for a, b in _minus(start, end, holes):
                        acting = _Acting(
                            episode=index,
                            outage=outage,
                            interferences=tuple(
                                self._interference_of(episode, m) for m, _ in methods
                            ),
                            cumulative=tuple(cumulative),
                            share=self.shares[(index, network.asn)],
                            end=b,
                        )
                        target.append(_Segment(a, b, acting))
                out[(network.asn, url)] = tuple(outages + blocks)
        return out

    def acting_at(self, asn: int, url: str, when: float) -> _Acting | None:
        for segment in self._segments.get((asn, url), ()):
            if segment.start <= when < segment.end:
                return segment.acting
        return None

    def interference_at(self, asn: int, url: str, when: float) -> Interference | None:
        """The main interference acting at ``when`` (None: none)."""
        acting = self.acting_at(asn, url, when)
        return acting.interferences[0] if acting is not None else None

    def template(self, url: str, interference: Interference | None) -> Template:
        key = (url, interference)
        found = self.templates.get(key)
        if found is None:
            found = build_template(
                url,
                interference,
                self.scenario.country,
                self.scenario.name,
                self.validity,
                uid=self.density is not None,
                probe_id=self.density is None or self.density.probe_ids,
            )
            self.templates[key] = found
        return found

    # -- probes and sessions

    def _probes(self, rng: random.Random) -> list[_SimProbe]:
        scenario = self.scenario
        behaviour = scenario.behaviour
        counts = _apportion(self.probe_count, scenario.networks)
        assignment = [n for n, c in zip(scenario.networks, counts, strict=True) for _ in range(c)]
        rng.shuffle(assignment)
        ws, we = _epoch(self.window_start), _epoch(self.window_end)
        out: list[_SimProbe] = []
        for index, network in enumerate(assignment):
            key = hashlib.blake2b(
                f"{scenario.name}/{self.seed}/{index}".encode(), digest_size=8
            ).hexdigest()
            if rng.random() < behaviour.stable_fraction:
                start, end = ws, we
            else:
                lifetime = rng.expovariate(1.0 / (behaviour.mean_lifetime_days * 86400.0))
                join = rng.uniform(ws - lifetime, we)
                start, end = max(join, ws), min(join + lifetime, we)
            out.append(_SimProbe(index, network, key, start, end))
        return out

    def _empty_hours(self, rng: random.Random) -> set[int]:
        p = self.scenario.behaviour.empty_hour_probability
        empty = {h for h in range(self.days * 24) if rng.random() < p}
        self.empty_hours = sorted(empty)
        return empty

    def _sessions(self, rng: random.Random, probes: list[_SimProbe]) -> list[tuple[float, int]]:
        behaviour = self.scenario.behaviour
        interval = behaviour.mean_interval_hours * 3600.0
        ws = _epoch(self.window_start)
        empty = self._empty_hours(rng)
        sessions: list[tuple[float, int]] = []
        for probe in probes:
            t = probe.active_start + rng.uniform(0.0, interval)
            while t < probe.active_end:
                if (
                    rng.random() >= behaviour.skip_probability
                    and int((t - ws) // 3600) not in empty
                ):
                    sessions.append((t, probe.index))
                t += interval * rng.uniform(0.5, 1.5)
        sessions.sort()
        return sessions

    def runs_per_day(self, network: SimNetwork) -> float:
        """[density]: the network's mean web_connectivity runs a day."""
        if network.runs_per_day is not None:
            return network.runs_per_day
        return float(self.params["runs_per_network_day_median"])

    def _runs(self, rng: random.Random, probes: list[_SimProbe]) -> list[tuple[float, int]]:
        """[density]: every run, (start, probe index), in time order. A network's runs on
        one day are a Poisson process whose rate is its ``runs_per_day`` times that day's
        Gamma-distributed volume (mean 1); a run belongs to one of the network's probes
        active then (none active: no run), and never starts in an empty hour."""
        ws = _epoch(self.window_start)
        empty = self._empty_hours(rng)
        shape = float(self.params["day_shape"])
        by_network: dict[int, list[_SimProbe]] = {}
        for probe in probes:
            by_network.setdefault(probe.network.asn, []).append(probe)
        runs: list[tuple[float, int]] = []
        for network in self.scenario.networks:
            level = self.runs_per_day(network) / 86400.0
            mine = by_network.get(network.asn, [])
            for day in range(self.days):
                day_start = ws + day * 86400.0
                rate = level * rng.gammavariate(shape, 1.0 / shape) if level > 0 else 0.0
                if rate <= 0:
                    continue
                t = day_start + rng.expovariate(rate)
                while t < day_start + 86400.0:
                    active = [p for p in mine if p.active_start <= t < p.active_end]
                    if active and int((t - ws) // 3600) not in empty:
                        runs.append((t, active[int(rng.random() * len(active))].index))
                    t += rng.expovariate(rate)
        runs.sort()
        return runs

    # -- measurements

    def lines(self) -> Iterator[str]:
        """Every measurement as one JSON line (no newline): in time order of sessions, or,
        OONI-like ([density]), in the order they arrive."""
        if self.density is not None:
            yield from self._ooni_lines()
            return
        scenario = self.scenario
        rng = random.Random(f"blockproof-simulate/{scenario.name}/{self.seed}")
        probes = self._probes(rng)
        sessions = self._sessions(rng, probes)
        cc = scenario.country
        fp_rate = scenario.false_positive_rate
        fps = self._fp
        urls = list(scenario.urls)
        net_values = self._net_values()
        key_values = [dumps_line(p.key_id) for p in probes]
        self.measurements = 0
        self.sessions = len(sessions)
        self.noise.clear()
        for start, index in sessions:
            probe = probes[index]
            network = probe.network
            rtt = MEDIAN_RTT_MOBILE if network.mobile else MEDIAN_RTT_FIXED
            session_values = _run_header(rng, start, cc, network.asn, net_values, key_values[index])
            rng.shuffle(urls)
            clock = start
            for url in urls:
                second = int(clock)
                acting = self.acting_at(network.asn, url, second)
                interference = acting.draw(rng) if acting is not None else None
                if acting is not None and interference is None:
                    self.noise["leaked"] += 1
                if acting is None and fp_rate and rng.random() < fp_rate:
                    interference = fps[int(rng.random() * len(fps))]
                    self.noise["stray_anomalies"] += 1
                tmpl = self.template(url, interference)
                k = rtt * rng.lognormvariate(0.0, RTT_SIGMA)
                values = [*_time_values(second, session_values), '""']
                values.extend([TIME_FORMAT % (a + b * k) for a, b in tmpl.times])
                yield tmpl.fmt % tuple([values[i] for i in tmpl.order])
                self.measurements += 1
                runtime = tmpl.runtime[0] + tmpl.runtime[1] * k
                clock += runtime + rng.uniform(0.5, 2.0)

    def _net_values(self) -> dict[int, tuple[str, str, str]]:
        return {
            n.asn: (
                dumps_line(n.asn_string),
                dumps_line(n.name),
                dumps_line("mobile" if n.mobile else "wifi"),
            )
            for n in self.scenario.networks
        }

    def _ooni_lines(self) -> Iterator[str]:
        """[density]: runs, each measuring some URLs; noise; arrival order (a heap)."""
        scenario, p = self.scenario, self.params
        assert self.density is not None
        rng = random.Random(f"blockproof-simulate/{scenario.name}/{self.seed}/ooni")
        probes = self._probes(rng)
        runs = self._runs(rng, probes)
        cc = scenario.country
        fp_rate = scenario.false_positive_rate
        fps, fails = self._fp, self._fail
        secondary = set(self.density.secondary_urls)
        shares = [
            (url, p["secondary_share"] if url in secondary else p["front_page_share"])
            for url in scenario.urls
        ]
        pace = float(p["pace_s"])
        mu_d, sigma_d = math.log(p["run_duration_median_s"]), float(p["run_duration_sigma"])
        max_d = float(p["run_duration_max_s"])
        p_flaky, p_fail = float(p["flaky_run_probability"]), float(p["flaky_failure_share"])
        p_late = float(p["late_upload_probability"])
        mu_late = math.log(float(p["late_delay_median_h"]) * 3600.0)
        sigma_late = float(p["late_delay_sigma"])
        mu_up, sigma_up = math.log(p["upload_delay_median_s"]), float(p["upload_delay_sigma"])
        net_values = self._net_values()
        key_values = [dumps_line(pr.key_id) for pr in probes]
        self.measurements = 0
        self.sessions = 0
        self.noise.clear()
        pending: list[tuple[float, int, str]] = []  # (arrival, sequence, line)
        sequence = 0
        for start, index in runs:
            while pending and pending[0][0] <= start:
                yield heapq.heappop(pending)[2]
            duration = min(max_d, max(1.0, rng.lognormvariate(mu_d, sigma_d)))
            chosen = [url for url, s in shares if rng.random() < min(1.0, s * duration / pace)]
            if not chosen:
                continue  # a run of other URLs: nothing of ours
            rng.shuffle(chosen)
            offsets = sorted(rng.uniform(0.0, duration) for _ in chosen)
            flaky = rng.random() < p_flaky
            late = rng.random() < p_late
            late_delay = max(LATE_S, rng.lognormvariate(mu_late, sigma_late)) if late else 0.0
            probe = probes[index]
            network = probe.network
            rtt = MEDIAN_RTT_MOBILE if network.mobile else MEDIAN_RTT_FIXED
            session_values = _run_header(rng, start, cc, network.asn, net_values, key_values[index])
            self.sessions += 1
            clock = float(int(start))
            for url, offset in zip(chosen, offsets, strict=True):
                begin = max(start + offset, clock)
                second = int(begin)
                acting = self.acting_at(network.asn, url, second)
                outage_end: float | None = None
                interference: Interference | None = None
                if acting is not None:
                    interference = acting.draw(rng)
                    if acting.outage:
                        outage_end = acting.end
                    if interference is None:
                        self.noise["leaked"] += 1
                elif fp_rate and rng.random() < fp_rate:
                    interference = fps[int(rng.random() * len(fps))]
                    self.noise["stray_anomalies"] += 1
                if flaky and outage_end is None and rng.random() < p_fail:
                    interference = fails[int(rng.random() * len(fails))]
                    self.noise["failures"] += 1
                tmpl = self.template(url, interference)
                k = rtt * rng.lognormvariate(0.0, RTT_SIGMA)
                runtime = tmpl.runtime[0] + tmpl.runtime[1] * k
                done = second + runtime
                upload = late_delay if late else rng.lognormvariate(mu_up, sigma_up)
                arrival = done + upload
                if outage_end is not None:  # nothing leaves the network until it is back
                    back = outage_end + rng.uniform(0.0, 3600.0)
                    arrival = max(arrival, back + rng.lognormvariate(mu_up, sigma_up))
                if arrival - done > LATE_S:
                    self.noise["late_uploads"] += 1
                uid = dumps_line(
                    f"{_uid_stamp(arrival)}_{cc}_webconnectivity_{rng.getrandbits(64):016x}"
                )
                values = [*_time_values(second, session_values), uid]
                values.extend([TIME_FORMAT % (a + b * k) for a, b in tmpl.times])
                line = tmpl.fmt % tuple([values[i] for i in tmpl.order])
                heapq.heappush(pending, (arrival, sequence, line))
                sequence += 1
                self.measurements += 1
                clock = done + rng.uniform(0.5, 2.0)
        while pending:
            yield heapq.heappop(pending)[2]

    # -- truth

    def truth(self) -> dict[str, Any]:
        scenario = self.scenario
        window_end = self.window_end
        episodes = []
        for index, episode in enumerate(self.episodes):
            end = episode.end if episode.end is not None and episode.end <= window_end else None
            restorations = [
                {"start": format_time(r.start), "end": format_time(r.end)}
                for r in episode.restorations
                if r.start < window_end
            ]
            info = METHODS[episode.method]
            episodes.append(
                {
                    "label": episode.label,
                    "platform": episode.platform,
                    "kind": episode.kind,
                    "networks": [f"AS{asn}" for asn in episode.networks],
                    "start": format_time(episode.start),
                    "end": format_time(end),
                    "method": episode.method,
                    "verdict_method": info.verdict_method,
                    "rule_ids": sorted(info.rule_ids),
                    "restorations": restorations,
                    "affected_urls": [u for u in scenario.urls if self.acts_on(episode, u)],
                    "methods": [
                        {
                            "method": m,
                            "share": w,
                            "verdict_method": METHODS[m].verdict_method,
                            "rule_ids": sorted(METHODS[m].rule_ids),
                        }
                        for m, w in episode.methods
                    ],
                    "block_share": {
                        f"AS{asn}": self.shares[(index, asn)] for asn in episode.networks
                    },
                }
            )
        counts = _apportion(self.probe_count, scenario.networks)
        truth: dict[str, Any] = {
            "scenario": scenario.name,
            "description": scenario.description,
            "country": scenario.country,
            "window": {"start": format_time(self.window_start), "end": format_time(window_end)},
            "seed": self.seed,
            "probes": self.probe_count,
            "networks": [
                {"asn": n.asn_string, "name": n.name, "mobile": n.mobile, "probes": c}
                for n, c in zip(scenario.networks, counts, strict=True)
            ],
            "urls": list(scenario.urls),
            "false_positive_rate": scenario.false_positive_rate,
            "false_positive_kinds": list(scenario.false_positive_kinds),
            "episodes": episodes,
        }
        if self.density is not None:
            for row, network in zip(truth["networks"], scenario.networks, strict=True):
                row["runs_per_day"] = self.runs_per_day(network)
            truth["density"] = {
                "profile": self.density.profile,
                "probe_ids": self.density.probe_ids,
                "secondary_urls": list(self.density.secondary_urls),
                "parameters": self.params,
                "failure_kinds": list(FAILURE_KINDS),
            }
        return truth


def _time_values(second: int, session_values: list[str]) -> list[str]:
    """The string slots of one measurement: start time, the session's, the HTTP Date."""
    g = time.gmtime(second)
    mst = (
        f'"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}'
        f' {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}"'
    )
    date = (
        f'"{_DAYS[g.tm_wday]}, {g.tm_mday:02d} {_MONTHS[g.tm_mon - 1]} {g.tm_year:04d}'
        f' {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} GMT"'
    )
    return [mst, *session_values, date]


# --------------------------------------------------------------------------------------
# files


def _batches(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def truth_path(out: str | os.PathLike[str]) -> Path:
    """``out.jsonl.gz`` -> ``out.truth.json`` (next to it)."""
    path = Path(out)
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return path.with_name(f"{name}.truth.json")


@dataclass(frozen=True, slots=True)
class SimulationResult:
    out: Path
    truth: Path
    measurements: int
    sessions: int
    probes: int
    templates: int
    bytes_written: int  # on disk (compressed when gzipped)
    bytes_json: int  # the JSON lines before compression
    seconds: float

    @property
    def per_second(self) -> float:
        return self.measurements / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.measurements} measurements ({self.sessions} sessions, {self.probes} probes)"
            f" -> {self.out} ({self.bytes_written / 1e6:.1f} MB), truth -> {self.truth};"
            f" {self.seconds:.1f} s, {self.per_second:.0f} measurements/s"
        )


def simulate(
    scenario: SimScenario,
    out: str | os.PathLike[str],
    *,
    probes: int | None = None,
    days: int | None = None,
    seed: int = 0,
    compresslevel: int = 3,
) -> SimulationResult:
    """Write the campaign's measurements to ``out`` (gzipped if it ends in ``.gz``) and its
    truth next to it (``truth_path``). Deterministic given the arguments."""
    started = time.perf_counter()
    campaign = Campaign(scenario, probes=probes, days=days, seed=seed)
    path = Path(out)
    json_bytes = 0
    # Compression runs in a second thread (zlib releases the GIL), one batch behind the
    # generator: with one core it costs what it costs, with two it overlaps.
    with open(path, "wb") as raw, ThreadPoolExecutor(max_workers=1) as writer:
        stream: IO[bytes] = raw
        if path.name.endswith(".gz"):
            stream = cast(
                IO[bytes],
                gzip.GzipFile(
                    filename=path.name.removesuffix(".gz"),
                    mode="wb",
                    fileobj=raw,
                    compresslevel=compresslevel,
                    mtime=0,
                ),
            )
        pending: Future[int] | None = None
        try:
            for batch in _batches(campaign.lines(), 256):
                data = ("\n".join(batch) + "\n").encode("utf-8")
                json_bytes += len(data)
                if pending is not None:
                    pending.result()
                pending = writer.submit(stream.write, data)
            if pending is not None:
                pending.result()
        finally:
            if stream is not raw:
                stream.close()
    truth = campaign.truth()
    truth["measurements"] = campaign.measurements
    truth["sessions"] = campaign.sessions
    truth["empty_hours"] = [
        format_time(campaign.window_start + timedelta(hours=h)) for h in campaign.empty_hours
    ]
    truth["noise"] = {
        key: campaign.noise[key]
        for key in ("leaked", "stray_anomalies", "failures", "late_uploads")
    }
    target = truth_path(path)
    target.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return SimulationResult(
        out=path,
        truth=target,
        measurements=campaign.measurements,
        sessions=campaign.sessions,
        probes=campaign.probe_count,
        templates=len(campaign.templates),
        bytes_written=path.stat().st_size,
        bytes_json=json_bytes,
        seconds=time.perf_counter() - started,
    )


def _run_header(
    rng: random.Random,
    start: float,
    cc: str,
    asn: int,
    net_values: dict[int, tuple[str, str, str]],
    key_value: str,
) -> list[str]:
    """The JSON values one run's measurements share: test start time, the run's report
    id (a new one per run, as OONI Probe makes), network, probe key."""
    g = time.gmtime(int(start))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", g)
    rid = "".join(rng.choices(_ID_ALPHABET, k=16))
    report_id = f"{stamp}_webconnectivity_{cc}_{asn}_n1_{rid}"
    tst = dumps_line(time.strftime("%Y-%m-%d %H:%M:%S", g))
    asn_v, net_v, ntype_v = net_values[asn]
    return [tst, dumps_line(report_id), asn_v, net_v, ntype_v, key_value]
