"""A sparse, real-like series of one platform on one network, with known truth.

Modelled on a real case: twitter.com on one mobile network, 10 weeks of OONI Web
Connectivity runs at irregular hours, 2 to 20 a day, a new report id for each run (so
each run is its own probe, and one run is one probe-hour of its cell); a 6-day block in
which about 85% of the scored measurements were anomalies by a mix of methods (DNS
answers with another network's address, TCP timeouts, TCP refused, a few TLS resets);
stray anomalies 4-5 days before the onset, a week after the end and about a month
earlier; a few failures throughout (they abstain).

Seeded: the same seed gives the same series. Used by the detector's unit tests, the
end-to-end test on both engines, and the scorecard (tests/bench/scorecard.py).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

HOUR = 3600
DAY = 24 * HOUR
# Monday 5 January 2026, 00:00 UTC: the first day of the series
EPOCH = 1_767_571_200

# What a blocked measurement's verdict said (rule id, method), and how often: the real
# block's mix of DNS answers with another network's address, TCP timeouts, TCP refused
# and a few TLS resets.
BLOCK_RULES = (
    ("wc.dns.inconsistent", "dns", 0.40),
    ("wc.tcp.timeout", "tcp_ip", 0.30),
    ("wc.tcp.refused", "tcp_ip", 0.20),
    ("wc.tls.reset", "tls", 0.10),
)


@dataclass(frozen=True, slots=True)
class Measurement:
    t: int  # epoch seconds
    outcome: str  # ok | anomaly | failure
    method: str  # dns | tcp_ip | tls for the anomalies, none otherwise
    rule: str  # the verdict's rule id


@dataclass(slots=True)
class Series:
    measurements: list[Measurement]
    onset: int | None  # epoch seconds of the true onset (None: no block)
    end: int | None  # epoch seconds of the true end
    strays: list[int] = field(default_factory=list)  # times of stray anomalies

    @property
    def blocked_times(self) -> list[int]:
        return [m.t for m in self.measurements if m.outcome == "anomaly"]

    @property
    def last_blocked(self) -> int:
        """The last anomaly inside the block."""
        assert self.onset is not None
        assert self.end is not None
        return max(t for t in self.blocked_times if self.onset <= t < self.end)

    @property
    def first_blocked(self) -> int:
        assert self.onset is not None
        assert self.end is not None
        return min(t for t in self.blocked_times if self.onset <= t < self.end)


def _blocked(rng: random.Random, t: int) -> Measurement:
    u = rng.random()
    for rule, method, share in BLOCK_RULES:
        if u < share:
            return Measurement(t, "anomaly", method, rule)
        u -= share
    rule, method, _ = BLOCK_RULES[-1]
    return Measurement(t, "anomaly", method, rule)


def real_like(
    seed: int,
    *,
    block: bool = True,
    days: int = 70,
    onset_day: int = 45,
    block_days: float = 6.0,
    share: float = 0.85,
    per_day: tuple[int, int] = (2, 20),
    failure: float = 0.03,
) -> Series:
    """The series; with ``block=False`` the same shape with its stray anomalies only."""
    rng = random.Random(seed)
    onset = EPOCH + onset_day * DAY + rng.randrange(DAY)
    end = onset + int(block_days * DAY)
    out: list[Measurement] = []
    for day in range(days):
        # skewed towards the low end, as volunteers' runs are: 2 to 20, about 6.7 a day
        lo, hi = per_day
        for _ in range(lo + int((hi - lo + 1) * rng.random() ** 3)):
            t = EPOCH + day * DAY + rng.randrange(DAY)
            if rng.random() < failure:
                out.append(Measurement(t, "failure", "none", "wc.control.unavailable"))
            elif block and onset <= t < end and rng.random() < share:
                out.append(_blocked(rng, t))
            else:
                out.append(Measurement(t, "ok", "none", "wc.ok.https"))
    strays = [
        onset - 4 * DAY - rng.randrange(DAY),  # 4-5 days before the onset
        end + 7 * DAY + rng.randrange(-DAY // 2, DAY // 2),  # a week after the end
        onset - 30 * DAY + rng.randrange(-DAY, DAY),  # a month earlier
    ]
    out.extend(_blocked(rng, t) for t in strays)
    out.sort(key=lambda m: m.t)
    if not block:
        return Series(out, None, None, strays)
    return Series(out, onset, end, strays)


def hourly(measurements: list[Measurement]) -> tuple[list[int], list[int], list[int]]:
    """The detector's input: per hour with data, blocked and scored probes. Every run has
    its own report id, so every measurement is one probe of its hour; failures abstain."""
    blocked: Counter[int] = Counter()
    scored: Counter[int] = Counter()
    for m in measurements:
        if m.outcome == "failure":
            continue
        hour = m.t // HOUR
        scored[hour] += 1
        blocked[hour] += m.outcome == "anomaly"
    hours = sorted(scored)
    return hours, [blocked[h] for h in hours], [scored[h] for h in hours]
