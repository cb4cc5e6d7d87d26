"""Change points in hourly (blocked, clear) probe counts, and their evidence floor.

Theory of operation (sans-IO; the input is the ``cells`` of one series, i.e. one
(platform, country, ASN), the output its blocked segments):

* **Unit of evidence.** Per hour, ``k`` probes whose scored measurements of the
  platform were mostly blocked (anomaly or confirmed) and ``n - k`` mostly clear;
  failures abstain. Hours without data are simply absent: they add no evidence
  either way (a silent network never closes or opens a block).
* **Onset.** A Bernoulli log-likelihood-ratio CUSUM (Page 1954), per hour
  ``S <- max(0, S + k ln(p1/p0) + (n-k) ln((1-p1)/(1-p0)))``, where ``p0`` is the
  series' trailing 28-day blocked share outside blocks, Beta(1, 19)-smoothed and
  clamped to [0.01, 0.30], and ``p1 = max(0.8, min(0.95, p0 + 0.5))``. A block
  opens when ``S >= h`` (h = 9.2 = ln 10^4: about 5 consistent blocked probes).
* **Resolution.** Inside a block the same statistic runs the other way, from the
  block's own blocked share ``q`` (at least 0.6) back to ``p0``. A block closes
  when that statistic reaches ``h``; silence never closes it.
* **Boundaries.** The CUSUM says *that* the share changed; the time is refined by
  maximum likelihood: the single change point ``tau`` in the window between the
  previous decision and this one that maximises the two-segment Bernoulli
  likelihood (what PELT finds when a window holds one change), and the range of
  ``tau`` within 2 log-likelihood units of the best is reported as the interval
  (``earliest``, ``latest``). Hours without data inside that window widen the
  interval honestly.
* **Evidence floor.** A segment is *supported* when, in its first 24 hours,
  probes reported at least 3 blocked probe-hours and the exact one-sided
  binomial test of those counts against ``p0`` gives p < 0.001. Unsupported
  segments are returned too (``supported=False``) and are not published as events.

Times are integer hours since the epoch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    h: float = 9.2
    baseline_hours: int = 28 * 24
    prior_blocked: float = 1.0
    prior_clear: float = 19.0
    p0_min: float = 0.01
    p0_max: float = 0.30
    p1_min: float = 0.8
    p1_max: float = 0.95
    inside_min: float = 0.6
    floor_hours: int = 24
    floor_min_blocked: int = 3
    floor_alpha: float = 1e-3
    refine_window: int = 72  # hours searched before a decision for its change point
    interval_ll: float = 2.0


@dataclass(slots=True)
class Segment:
    """One blocked period of one series. ``end`` is None while the block lasts."""

    start: int
    start_earliest: int
    start_latest: int
    end: int | None = None
    end_earliest: int | None = None
    end_latest: int | None = None
    p0: float = 0.0
    blocked: int = 0  # blocked probe-hours inside
    scored: int = 0  # scored probe-hours inside
    floor_blocked: int = 0
    floor_scored: int = 0
    p_value: float = 1.0
    supported: bool = False
    restorations: list[tuple[int, int]] = field(default_factory=list)


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly (log space)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    terms = [
        base - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _ll(k: int, n: int, p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return k * math.log(p) + (n - k) * math.log1p(-p)


def refine(
    hours: Sequence[int],
    k: Sequence[int],
    n: Sequence[int],
    lo: int,
    hi: int,
    p_before: float,
    p_after: float,
    interval_ll: float,
) -> tuple[int, int, int]:
    """Best change hour in [lo, hi] (data hours only) and its likelihood interval.

    ``hours``/``k``/``n`` are the data hours (sorted). The change point ``tau`` is
    the first hour of the new regime; candidates are the data hours in the window
    plus ``hi``. Returns (tau, earliest, latest) where earliest/latest bound the
    set of tau within ``interval_ll`` of the best, widened to the hour after the
    previous data hour (a change may have happened anywhere in a gap).
    """
    idx = [i for i, h in enumerate(hours) if lo <= h <= hi]
    if not idx:
        return hi, hi, hi
    # log-likelihood if the change is just before data point j: points < j use p_before.
    before = [_ll(k[i], n[i], p_before) for i in idx]
    after = [_ll(k[i], n[i], p_after) for i in idx]
    total_after = sum(after)
    scores: list[float] = []
    acc_before = 0.0
    acc_after = total_after
    for j in range(len(idx) + 1):
        scores.append(acc_before + acc_after)
        if j < len(idx):
            acc_before += before[j]
            acc_after -= after[j]
    best = max(scores)
    good = [j for j, s in enumerate(scores) if s >= best - interval_ll]
    j_best = max(j for j, s in enumerate(scores) if s == best)

    def hour_of(j: int) -> int:
        return hours[idx[j]] if j < len(idx) else hi

    def earliest_of(j: int) -> int:
        # the change happened after the previous data hour (it may be in the gap)
        prev = hours[idx[j] - 1] + 1 if j < len(idx) and idx[j] > 0 else lo
        if j == len(idx):
            prev = hours[idx[-1]] + 1
        return max(lo, min(prev, hour_of(j)))

    return hour_of(j_best), earliest_of(min(good)), hour_of(max(good))


def detect(
    hours: Sequence[int], k: Sequence[int], n: Sequence[int], config: DetectorConfig | None = None
) -> list[Segment]:
    """Blocked segments of one series. ``hours`` sorted; ``k <= n`` probe counts per hour."""
    cfg = config or DetectorConfig()
    segments: list[Segment] = []
    base: deque[tuple[int, int, int]] = deque()  # (hour, k, n) of accepted clear hours
    base_k = base_n = 0
    pending: list[tuple[int, int, int]] = []  # hours since S was last 0
    s_up = 0.0
    last_zero = hours[0] if hours else 0
    blocked = False
    s_down = 0.0
    current: Segment | None = None
    inside_k = inside_n = 0
    p0 = p1 = 0.0
    last_zero_down = 0
    not_before = hours[0] if hours else 0  # a new onset cannot predate the last end

    def p0_now(t: int) -> float:
        nonlocal base_k, base_n
        while base and base[0][0] < t - cfg.baseline_hours:
            _, bk, bn = base.popleft()
            base_k -= bk
            base_n -= bn
        share = (base_k + cfg.prior_blocked) / (base_n + cfg.prior_blocked + cfg.prior_clear)
        return min(cfg.p0_max, max(cfg.p0_min, share))

    for i, t in enumerate(hours):
        kt, nt = int(k[i]), int(n[i])
        if nt <= 0:
            continue
        if not blocked:
            p0 = p0_now(t)
            p1 = min(cfg.p1_max, max(cfg.p1_min, p0 + 0.5))
            s_up = max(
                0.0, s_up + kt * math.log(p1 / p0) + (nt - kt) * math.log((1 - p1) / (1 - p0))
            )
            if s_up == 0.0:
                for entry in pending:
                    base.append(entry)
                    base_k += entry[1]
                    base_n += entry[2]
                pending.clear()
                base.append((t, kt, nt))
                base_k += kt
                base_n += nt
                last_zero = t
                continue
            pending.append((t, kt, nt))
            if s_up >= cfg.h:
                lo = max(last_zero - cfg.refine_window, not_before)
                tau, early, late = refine(hours, k, n, lo, t, p0, p1, cfg.interval_ll)
                current = Segment(start=tau, start_earliest=early, start_latest=late, p0=p0)
                segments.append(current)
                blocked = True
                s_down = 0.0
                last_zero_down = t
                # counts inside the block so far: data hours from tau to t
                inside_k = sum(int(k[j]) for j in range(len(hours)) if tau <= hours[j] <= t)
                inside_n = sum(int(n[j]) for j in range(len(hours)) if tau <= hours[j] <= t)
                pending.clear()
            continue
        assert current is not None
        q = max(cfg.inside_min, min(0.99, (inside_k + 1) / (inside_n + 2)))
        s_down = max(
            0.0,
            s_down
            + (nt - kt) * math.log((1 - current.p0) / (1 - q))
            + kt * math.log(current.p0 / q),
        )
        inside_k += kt
        inside_n += nt
        if s_down == 0.0:
            last_zero_down = t
            continue
        if s_down >= cfg.h:
            lo = max(last_zero_down - cfg.refine_window, current.start)
            tau, early, late = refine(hours, k, n, lo, t, q, current.p0, cfg.interval_ll)
            current.end, current.end_earliest, current.end_latest = tau, early, late
            not_before = tau
            blocked = False
            s_up = 0.0
            last_zero = t
            # hours after the end belong to the baseline again
            for j in range(len(hours)):
                if tau <= hours[j] <= t and n[j] > 0:
                    base.append((hours[j], int(k[j]), int(n[j])))
                    base_k += int(k[j])
                    base_n += int(n[j])
            current = None
    for seg in segments:
        _finish(seg, hours, k, n, cfg)
    return segments


def _finish(
    seg: Segment, hours: Sequence[int], k: Sequence[int], n: Sequence[int], cfg: DetectorConfig
) -> None:
    end = seg.end if seg.end is not None else (hours[-1] + 1 if hours else seg.start)
    floor_end = seg.start + cfg.floor_hours
    for j, t in enumerate(hours):
        if seg.start <= t < end:
            seg.blocked += int(k[j])
            seg.scored += int(n[j])
            if t < floor_end:
                seg.floor_blocked += int(k[j])
                seg.floor_scored += int(n[j])
    seg.p_value = binomial_sf(seg.floor_blocked, seg.floor_scored, seg.p0)
    seg.supported = seg.floor_blocked >= cfg.floor_min_blocked and seg.p_value < cfg.floor_alpha


def merge_gaps(segments: list[Segment], gap_hours: int) -> list[Segment]:
    """Join segments of one series separated by less than ``gap_hours``: a brief
    restoration becomes a ``restorations`` entry of one longer segment."""
    merged: list[Segment] = []
    for seg in sorted(segments, key=lambda s: s.start):
        last = merged[-1] if merged else None
        if last is not None and last.end is not None and seg.start - last.end < gap_hours:
            last.restorations.append((last.end, seg.start))
            last.restorations.extend(seg.restorations)
            last.end, last.end_earliest, last.end_latest = seg.end, seg.end_earliest, seg.end_latest
            last.blocked += seg.blocked
            last.scored += seg.scored
            if not last.supported and seg.supported:
                last.floor_blocked, last.floor_scored = seg.floor_blocked, seg.floor_scored
                last.p_value, last.supported = seg.p_value, True
            continue
        merged.append(seg)
    return merged
