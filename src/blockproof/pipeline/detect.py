"""Change points in hourly (blocked, clear) probe counts, and their evidence floor.

Theory of operation (sans-IO; the input is the ``cells`` of one series, i.e. one
(platform, country, ASN), the output its blocked segments; how well it works, next
to a per-day threshold, is measured in docs/detection.md):

* **Unit of evidence.** Per hour, ``k`` probes whose scored measurements of the
  platform were mostly blocked (anomaly or confirmed) and ``n - k`` mostly clear;
  measurements that abstain (failure, down) are not counted, and an hour whose
  probes all abstained is no data. The method plays no part: a block that moves
  from DNS to TCP to TLS is one run of blocked probes. Hours without data are
  simply absent: they add no evidence either way (a silent network never opens or
  closes a block, and silence never counts as clear).
* **Onset.** A Bernoulli log-likelihood-ratio CUSUM (Page 1954), per hour
  ``S <- max(0, S + k ln(p1/p0) + (n-k) ln((1-p1)/(1-p0)))``, where ``p0`` is the
  series' trailing 28-day blocked share outside blocks, Beta(1, 19)-smoothed and
  clamped to [0.01, 0.30], and ``p1 = max(0.8, min(0.95, p0 + 0.5))``. A block
  opens when ``S >= h`` (h = 9.2 = ln 10^4: about three blocked probes in a row,
  more with clear ones among them).
* **Resolution.** Inside a block the same statistic runs the other way, from the
  block's own blocked share ``q`` (at least 0.6) back to ``p0``. A block closes
  when that statistic reaches ``h``; silence never closes it.
* **Boundaries.** The CUSUM says *that* the share changed; the time is refined by
  maximum likelihood: the single change point ``tau`` in a search window before
  the decision that maximises the two-segment Bernoulli likelihood (what PELT
  finds when a window holds one change). The reported time is the middle of the
  hours where that likelihood is at its maximum (it is flat across a gap without
  data, so the middle of the gap before the first hour of the new regime has the
  smallest worst-case error). The interval (``earliest``, ``latest``) is the range
  of ``tau`` within 2 log-likelihood units of the best, widened across hours
  without data (a change may be anywhere in a gap) and by the hour before (a
  change inside an hour whose probes still leaned to the old regime). Two rules
  keep a lone anomaly from moving a boundary:

  - *bounded influence*: boundaries are refined against a baseline share of at
    least 5% (``refine_p0_min``), whatever ``p0`` is. Against 1%, one anomaly
    outweighs two clear probes after it (with q = 0.85: ln 85 against 2 x ln 6.6),
    and the old detector placed onsets on stray anomalies days early; against 5%
    it weighs about one and a half clear probes.
  - *runs*: a run of one regime is a stretch of consecutive data hours (the time
    between them does not matter) that each lean to that regime (under that 5%
    and ``q``) and hold together at least 2 probes of its kind and a
    log-likelihood ratio of at least ``run_ll`` = 4.6 (ln 100) for it: with
    q = 0.85, three clear probes in a row, or two blocked ones. A lone anomaly is
    never a run, however unlikely under ``p0``. Runs bound the search windows:

    - an onset is searched after the last end of a block of the series, at most
      ``refine_window`` (72) hours before the CUSUM last left zero, and after the
      latest run of clear probes before the decision. Its interval reaches back
      to where that run became a run: the last clear probes before the first
      blocked ones may already be inside the block (blocks let some through).
    - an end is searched after the block's latest run of blocked probes before
      the decision, and no later than where the first run of clear probes after
      that became a run: a stray anomaly after the block, with a run of clear
      probes between, cannot carry the end forward to it.

  Each boundary is refined when it is decided (an onset with ``p1``, an end with
  the closing ``q``), and once more at the end with the block's own share.
* **Evidence floor.** A segment is *supported* when, in its floor window, probes
  reported at least 3 blocked probe-hours and the exact one-sided binomial test
  of those counts against ``p0`` gives p < 0.001. The window starts at the
  reported start and spans 24 hours, extended through the CUSUM's decision and
  until it holds at least 6 scored probe-hours (a network measured twice a day
  needs more than a day to say anything), at most 7 days. It does not stop at the
  segment's end: a short segment the CUSUM cut around a cluster of stray anomalies
  must still stand out over a whole day. Since a start cannot be pulled back to a
  stray anomaly, the floor is counted over the block itself. Unsupported segments
  are returned too (``supported=False``) and are not published as events.

Nothing here is stateful: the same cells give the same segments, so late uploads
are taken into account by running it again over all the data.

Times are integer hours since the epoch.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
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
    floor_min_scored: int = 6  # the floor window grows past floor_hours to hold this many
    floor_max_hours: int = 7 * 24  # ... but no further than this
    floor_min_blocked: int = 3
    floor_alpha: float = 1e-3
    refine_window: int = 72  # hours searched before the CUSUM last left zero
    interval_ll: float = 2.0
    run_ll: float = 4.6  # a run of one regime: this log-likelihood ratio for it ...
    run_min: int = 2  # ... and at least this many probes of its kind
    refine_p0_min: float = 0.05  # boundaries are refined against a baseline of at least this


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
    opened: int = 0  # the hour of the CUSUM's decision to open it
    search_from: int = 0  # the onset's search window began here (before runs)
    closed: int | None = None  # the hour of the decision to close it
    end_search_from: int = 0  # the end's search window began here (before runs)


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


@dataclass(frozen=True, slots=True)
class _Change:
    tau: int  # the first data hour of the new regime (maximum likelihood)
    tau_from: int  # the first hour the best change may be (after the previous data hour)
    earliest: int
    latest: int

    @property
    def point(self) -> int:
        """The reported time: the middle of the hours where the likelihood is at its
        maximum (it is flat across a gap without data)."""
        return (self.tau_from + self.tau) // 2


def _change(
    hours: Sequence[int],
    k: Sequence[int],
    n: Sequence[int],
    i0: int,
    i1: int,
    lo: int,
    p_before: float,
    p_after: float,
    interval_ll: float,
    after: int | None = None,
) -> _Change:
    """The best change among data indices ``i0..i1`` (inclusive): candidate ``j`` puts
    the change just before data point ``i0 + j``; with ``after`` given, one more
    candidate puts it after ``i1``, at hour ``after``. No candidate is before ``lo``."""
    m = i1 - i0 + 1
    before = [_ll(k[i], n[i], p_before) for i in range(i0, i1 + 1)]
    acc_after = sum(_ll(k[i], n[i], p_after) for i in range(i0, i1 + 1))
    acc_before = 0.0
    scores: list[float] = []
    for j in range(m + 1):
        scores.append(acc_before + acc_after)
        if j < m:
            acc_before += before[j]
            acc_after -= _ll(k[i0 + j], n[i0 + j], p_after)
    if after is None:
        scores.pop()
    best = max(scores)
    good = [j for j, s in enumerate(scores) if s >= best - interval_ll]
    j_best = max(j for j, s in enumerate(scores) if s == best)

    def hour_of(j: int) -> int:
        if j < m:
            return int(hours[i0 + j])
        assert after is not None
        return after

    def from_of(j: int) -> int:
        # the change happened after the previous data hour (it may be in the gap)
        i = i0 + j
        prev = int(hours[i - 1]) + 1 if i > 0 else lo
        return max(lo, min(prev, hour_of(j)))

    return _Change(hour_of(j_best), from_of(j_best), from_of(min(good)), hour_of(max(good)))


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
    i0, i1 = bisect_left(hours, lo), bisect_right(hours, hi) - 1
    if i1 < i0:
        return hi, hi, hi
    c = _change(hours, k, n, i0, i1, lo, p_before, p_after, interval_ll, after=hi)
    return c.tau, c.earliest, c.latest


class _Runs:
    """Runs of one regime (see the module docstring) among the data hours, judged with
    a baseline share ``p0`` and a block share ``q``."""

    def __init__(
        self,
        k: Sequence[int],
        n: Sequence[int],
        p0: float,
        q: float,
        cfg: DetectorConfig,
    ) -> None:
        self.k, self.n, self.cfg = k, n, cfg
        self.lb = math.log(q / p0)  # a blocked probe, for the block
        self.lc = math.log((1 - p0) / (1 - q))  # a clear probe, against it

    def find(self, i_from: int, i_to: int, blocked: bool) -> int | None:
        """Scanning data indices from ``i_from`` to ``i_to`` (either way, inclusive), the
        first run of the regime met: the index at which it becomes a run (its evidence,
        counted from its first hour met, reaches ``run_ll`` with ``run_min`` probes);
        None if there is none."""
        step = 1 if i_to >= i_from else -1
        acc, count = 0.0, 0
        for i in range(i_from, i_to + step, step):
            kb, kc = self.k[i], self.n[i] - self.k[i]
            lean = kb * self.lb - kc * self.lc  # > 0: the hour leans blocked
            if not blocked:
                lean, kb = -lean, kc
            if lean <= 0:
                acc, count = 0.0, 0
                continue
            acc += lean
            count += kb
            if acc >= self.cfg.run_ll and count >= self.cfg.run_min:
                return i
        return None


def _onset(
    hours: Sequence[int],
    k: Sequence[int],
    n: Sequence[int],
    search_from: int,
    i_decision: int,
    p0: float,
    q: float,
    cfg: DetectorConfig,
) -> _Change:
    """The onset of a block decided at data index ``i_decision``, searched from
    ``search_from`` and after the latest run of clear probes. The interval reaches
    back to where that run became a run (the clear probes after that point may be
    inside the block already), and includes the hour before its earliest change: a
    change inside an hour whose probes still leaned to the old regime."""
    p0 = max(p0, cfg.refine_p0_min)
    i_lo = min(bisect_left(hours, search_from), i_decision)
    run = _Runs(k, n, p0, q, cfg).find(i_decision, i_lo, blocked=False)
    if run is None or run >= i_decision:
        c = _change(hours, k, n, i_lo, i_decision, search_from, p0, q, cfg.interval_ll)
        return _Change(c.tau, c.tau_from, c.earliest - 1, c.latest)
    c = _change(hours, k, n, run + 1, i_decision, int(hours[run]) + 1, p0, q, cfg.interval_ll)
    return _Change(c.tau, c.tau_from, int(hours[run]), c.latest)


def _end(
    hours: Sequence[int],
    k: Sequence[int],
    n: Sequence[int],
    search_from: int,
    i_decision: int,
    p0: float,
    q: float,
    cfg: DetectorConfig,
) -> _Change:
    """The end of a block whose resolution was decided at data index ``i_decision``:
    after the block's latest run of blocked probes, and no later than the point where
    the first run of clear probes after that became a run. The interval includes the
    hour before its earliest change, as for an onset."""
    p0 = max(p0, cfg.refine_p0_min)
    runs = _Runs(k, n, p0, q, cfg)
    i_lo = min(bisect_left(hours, search_from), i_decision)
    lo = search_from
    blocked_run = runs.find(i_decision, i_lo, blocked=True)
    if blocked_run is not None and blocked_run < i_decision:
        i_lo, lo = blocked_run + 1, int(hours[blocked_run]) + 1
    clear_run = runs.find(i_lo, i_decision, blocked=False)
    i_hi = clear_run if clear_run is not None else i_decision
    c = _change(hours, k, n, i_lo, i_hi, lo, q, p0, cfg.interval_ll)
    return _Change(c.tau, c.tau_from, c.earliest - 1, c.latest)


def detect(
    hours: Sequence[int], k: Sequence[int], n: Sequence[int], config: DetectorConfig | None = None
) -> list[Segment]:
    """Blocked segments of one series. ``hours`` sorted; ``k <= n`` probe counts per hour."""
    cfg = config or DetectorConfig()
    # hours whose probes all abstained are no data
    H: list[int] = []
    K: list[int] = []
    N: list[int] = []
    for t, kt, nt in zip(hours, k, n, strict=True):
        if int(nt) > 0:
            H.append(int(t))
            K.append(int(kt))
            N.append(int(nt))
    segments: list[Segment] = []
    base: deque[tuple[int, int, int]] = deque()  # (hour, k, n) of accepted clear hours
    base_k = base_n = 0
    pending: list[int] = []  # indices of the hours since S was last 0
    s_up = 0.0
    last_zero = H[0] if H else 0
    blocked = False
    s_down = 0.0
    current: Segment | None = None
    tau_data = 0  # the current block's first data hour
    inside_k = inside_n = 0
    p0 = p1 = 0.0
    last_zero_down = 0
    not_before = H[0] if H else 0  # a new onset cannot predate the last end

    def p0_now(t: int) -> float:
        nonlocal base_k, base_n
        while base and base[0][0] < t - cfg.baseline_hours:
            _, bk, bn = base.popleft()
            base_k -= bk
            base_n -= bn
        share = (base_k + cfg.prior_blocked) / (base_n + cfg.prior_blocked + cfg.prior_clear)
        return min(cfg.p0_max, max(cfg.p0_min, share))

    def to_base(i: int) -> None:
        nonlocal base_k, base_n
        base.append((H[i], K[i], N[i]))
        base_k += K[i]
        base_n += N[i]

    for i, t in enumerate(H):
        kt, nt = K[i], N[i]
        if not blocked:
            p0 = p0_now(t)
            p1 = min(cfg.p1_max, max(cfg.p1_min, p0 + 0.5))
            s_up = max(
                0.0, s_up + kt * math.log(p1 / p0) + (nt - kt) * math.log((1 - p1) / (1 - p0))
            )
            if s_up == 0.0:
                for j in pending:
                    to_base(j)
                pending.clear()
                to_base(i)
                last_zero = t
                continue
            pending.append(i)
            if s_up >= cfg.h:
                search_from = max(last_zero - cfg.refine_window, not_before)
                c = _onset(H, K, N, search_from, i, p0, p1, cfg)
                current = Segment(
                    start=c.point,
                    start_earliest=c.earliest,
                    start_latest=c.latest,
                    p0=p0,
                    opened=t,
                    search_from=search_from,
                )
                segments.append(current)
                blocked = True
                s_down = 0.0
                last_zero_down = t
                tau_data = c.tau
                # counts inside the block so far: data hours from its first to t
                j0 = bisect_left(H, tau_data)
                inside_k = sum(K[j0 : i + 1])
                inside_n = sum(N[j0 : i + 1])
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
            lo = max(last_zero_down - cfg.refine_window, tau_data + 1)
            c = _end(H, K, N, lo, i, current.p0, q, cfg)
            current.end, current.end_earliest, current.end_latest = c.point, c.earliest, c.latest
            current.closed, current.end_search_from = t, lo
            not_before = c.tau
            blocked = False
            s_up = 0.0
            last_zero = t
            # hours after the end belong to the baseline again
            for j in range(bisect_left(H, c.tau), i + 1):
                to_base(j)
            current = None
    for j, seg in enumerate(segments):
        after = segments[j + 1].start_earliest if j + 1 < len(segments) else None
        _finish(seg, H, K, N, cfg, after)
    return segments


def _finish(
    seg: Segment,
    hours: Sequence[int],
    k: Sequence[int],
    n: Sequence[int],
    cfg: DetectorConfig,
    before: int | None,
) -> None:
    """Both boundaries once more with the block's own share, then the counts and the
    evidence floor. ``before``: the next segment's earliest start, if any."""
    end = seg.end if seg.end is not None else (hours[-1] + 1 if hours else seg.start)
    j0, j1 = bisect_left(hours, seg.start), bisect_left(hours, end)
    q = max(cfg.inside_min, min(0.99, (sum(k[j0:j1]) + 1) / (sum(n[j0:j1]) + 2)))
    i_open = bisect_left(hours, seg.opened)
    if i_open < len(hours) and hours[i_open] == seg.opened:
        c = _onset(hours, k, n, seg.search_from, i_open, seg.p0, q, cfg)
        seg.start, seg.start_earliest, seg.start_latest = c.point, c.earliest, c.latest
    if seg.closed is not None:
        i_close = bisect_left(hours, seg.closed)
        c = _end(hours, k, n, seg.end_search_from, i_close, seg.p0, q, cfg)
        if before is None or c.tau <= before:
            seg.end, seg.end_earliest, seg.end_latest = c.point, c.earliest, c.latest
            end = seg.end
    j0, j1 = bisect_left(hours, seg.start), bisect_left(hours, end)
    seg.blocked, seg.scored = sum(k[j0:j1]), sum(n[j0:j1])
    # the floor: the first 24 hours, through the decision, grown to hold enough probes
    limit = max(seg.start + cfg.floor_max_hours, seg.opened + 1)
    floor_end = max(seg.start + cfg.floor_hours, seg.opened + 1)
    fb = fs = 0
    for j in range(j0, len(hours)):
        t = hours[j]
        if t >= limit or (t >= floor_end and fs >= cfg.floor_min_scored):
            break
        fb += k[j]
        fs += n[j]
    seg.floor_blocked, seg.floor_scored = fb, fs
    seg.p_value = binomial_sf(fb, fs, seg.p0)
    seg.supported = fb >= cfg.floor_min_blocked and seg.p_value < cfg.floor_alpha


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
