"""Throttling: is one name's traffic slowed down on purpose, or is the network slow?

Theory of operation (sans-IO: no sockets, no clock, no event loop)
------------------------------------------------------------------

A censor that throttles a platform (Russia and Twitter in 2021, Turkey after
unrest) rarely slows down an address: addresses are shared with the rest of a
CDN. It reads the name in the TLS ClientHello (SNI) and caps, or delays, the
server-to-client bytes of that flow only. The experiment therefore downloads
the same thing twice from the *same server address* along the *same path*,
one leg after the other so that they do not share bandwidth:

- the **innocuous** leg, with a name no censor cares about as SNI (the
  certificate then does not match: verification is off on that leg and the
  handshake says so), run first so that a censor which penalises an address
  after seeing the target's name cannot slow it down;
- the **target** leg, with the target's own name as SNI;
- optionally a **control** leg: the target's name from the control's vantage,
  outside the censorship, which tells a slow *server* from a slow *path*.

Each leg yields samples ``(t, cumulative bytes received)``: OONI's
``bytes_received_cumulative`` network events, taken at most every 250 ms, the
first one when the request is sent. ``throughput`` turns them into a
**steady-state rate**: samples in the first ``warmup`` seconds (TCP slow start,
a policer's initial burst allowance, the server's first-byte time) are left
out and the rate is the least-squares slope of bytes over time through the
remaining ones; when fewer than two samples remain (a fast leg that ended
within the warm-up) it is the mean rate from the first sample to the last,
which understates a fast leg, never a slow one. Rates are in kbit/s (1000
bit/s), as censors' caps are quoted.

``decide`` compares the legs. ``ratio`` is innocuous rate / target rate. The
first row of ``RULES`` whose condition holds gives the verdict and its
explanation:

================================  =============  ==========================================
row                               verdict        when
================================  =============  ==========================================
``throttling.target.failed``      inconclusive   the target leg failed (blocking, no rate)
``throttling.innocuous.failed``   inconclusive   the innocuous leg failed: nothing to compare
``throttling.different_answer``   inconclusive   the server answered the legs differently
``throttling.target.short``       inconclusive   target leg too short (bytes and time)
``throttling.innocuous.short``    inconclusive   innocuous leg too short
``throttling.nothing``            inconclusive   neither leg received anything: a stall
``throttling.server``             inconclusive   ratio >= 3, but the control is slow as well
``throttling.confirmed``          throttled      ratio >= 3, and the control is fast
``throttling.throttled``          throttled      ratio >= 3 (no control leg)
``throttling.ambiguous``          inconclusive   1.5 <= ratio < 3: more than noise, too little
``throttling.slow_network``       slow_network   comparable, both legs below 1000 kbit/s
``throttling.none``               not_throttled  comparable, and fast
================================  =============  ==========================================

A leg is long enough when it carried ``min_bytes`` or lasted ``min_seconds``.
So a generally slow network (every name capped alike) gives a ratio near 1:
``slow_network``, never ``throttled``; an unthrottled name on a fast network
``not_throttled``; noise of a few tens of percent stays below 1.5. The
thresholds are a ``Thresholds`` value, so that studies can re-judge recorded
samples with other ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "INCONCLUSIVE",
    "NOT_THROTTLED",
    "RULES",
    "RULES_BY_ID",
    "SLOW_NETWORK",
    "THROTTLED",
    "VERDICTS",
    "Decision",
    "DecisionRule",
    "Leg",
    "Sample",
    "Thresholds",
    "Throughput",
    "decide",
    "throughput",
]

THROTTLED = "throttled"
NOT_THROTTLED = "not_throttled"
SLOW_NETWORK = "slow_network"
INCONCLUSIVE = "inconclusive"
VERDICTS = (THROTTLED, NOT_THROTTLED, SLOW_NETWORK, INCONCLUSIVE)

# (seconds on the measurement's clock, bytes received so far on the connection)
Sample = tuple[float, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    throttle_ratio: float = 3.0  # innocuous/target at or above this: throttled
    comparable_ratio: float = 1.5  # below this: the legs are comparable
    slow_kbps: float = 1000.0  # comparable legs both below this: a slow network
    min_seconds: float = 1.0  # a leg is long enough if it lasted this long...
    min_bytes: int = 64 * 1024  # ...or carried this many bytes
    warmup: float = 0.5  # seconds of samples left out of the steady-state rate


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class Throughput:
    """A leg's rate. ``kbps`` is None when fewer than two samples span any time."""

    kbps: float | None
    bytes: int  # received from the first sample to the last
    seconds: float  # from the first sample to the last
    samples: int
    method: str  # "slope" (least squares after the warm-up), "mean" (first to last), "none"


def throughput(
    samples: Iterable[Sample], *, warmup: float = DEFAULT_THRESHOLDS.warmup
) -> Throughput:
    """The steady-state rate of a cumulative byte count (see the module docstring)."""
    points = sorted(samples)
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        total = points[-1][1] - points[0][1] if points else 0
        return Throughput(None, max(total, 0), 0.0, len(points), "none")
    t0, b0 = points[0]
    t_end, b_end = points[-1]
    total = max(b_end - b0, 0)
    seconds = t_end - t0
    steady = [p for p in points if p[0] - t0 >= warmup]
    if len(steady) >= 2 and steady[-1][0] > steady[0][0]:
        rate, method = _slope(steady), "slope"
    else:
        rate, method = total / seconds, "mean"
    return Throughput(round(max(rate, 0.0) * 8 / 1000, 3), total, round(seconds, 6), len(points),
                      method)  # fmt: skip


def _slope(points: list[Sample]) -> float:
    """Least-squares slope of bytes over time (bytes per second)."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_b = sum(b for _, b in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (b - mean_b) for t, b in points)
    return cov / var if var > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """One download as the decision sees it."""

    sni: str
    samples: tuple[Sample, ...] = ()
    failure: str | None = None  # OONI failure string of the first step that failed
    status: int | None = None  # the HTTP status of the (first) response


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the rules look at: the legs, their rates and the ratio."""

    target: Leg
    innocuous: Leg
    control: Leg | None
    t: Throughput
    i: Throughput
    c: Throughput | None
    th: Thresholds

    def long_enough(self, tp: Throughput) -> bool:
        return tp.kbps is not None and (
            tp.bytes >= self.th.min_bytes or tp.seconds >= self.th.min_seconds
        )

    @property
    def ratio(self) -> float:
        """innocuous / target; inf when nothing reached the target leg; 1 when both are 0."""
        t, i = self.t.kbps or 0.0, self.i.kbps or 0.0
        if t > 0:
            return i / t
        return math.inf if i > 0 else 1.0

    @property
    def control_usable(self) -> bool:
        return (
            self.control is not None
            and self.c is not None
            and self.control.failure is None
            and self.long_enough(self.c)
        )

    @property
    def control_ratio(self) -> float:
        """control / target (only meaningful when ``control_usable``)."""
        t, c = self.t.kbps or 0.0, (self.c.kbps if self.c else None) or 0.0
        if t > 0:
            return c / t
        return math.inf if c > 0 else 1.0

    def words(self) -> dict[str, str]:
        def kbps(tp: Throughput | None) -> str:
            return "?" if tp is None or tp.kbps is None else f"{tp.kbps:.0f}"

        ratio = self.ratio
        return {
            "target_sni": self.target.sni,
            "innocuous_sni": self.innocuous.sni,
            "target_failure": str(self.target.failure),
            "innocuous_failure": str(self.innocuous.failure),
            "target_status": str(self.target.status),
            "innocuous_status": str(self.innocuous.status),
            "target_kbps": kbps(self.t),
            "innocuous_kbps": kbps(self.i),
            "control_kbps": kbps(self.c),
            "target_bytes": str(self.t.bytes),
            "innocuous_bytes": str(self.i.bytes),
            "target_seconds": f"{self.t.seconds:.2f}",
            "innocuous_seconds": f"{self.i.seconds:.2f}",
            "ratio": "infinitely" if math.isinf(ratio) else f"{ratio:.1f} times",
            "min_bytes": str(self.th.min_bytes),
            "min_seconds": f"{self.th.min_seconds:g}",
            "throttle_ratio": f"{self.th.throttle_ratio:g}",
            "slow_kbps": f"{self.th.slow_kbps:g}",
        }


@dataclass(frozen=True, slots=True)
class DecisionRule:
    id: str
    verdict: str
    when: Callable[[_Facts], bool]
    explanation: str  # a str.format template over _Facts.words()


def _different_answer(f: _Facts) -> bool:
    return (
        f.target.status is not None
        and f.innocuous.status is not None
        and f.target.status != f.innocuous.status
    )


def _throttled(f: _Facts) -> bool:
    return f.ratio >= f.th.throttle_ratio


RULES: tuple[DecisionRule, ...] = (
    DecisionRule(
        "throttling.target.failed", INCONCLUSIVE, lambda f: f.target.failure is not None,
        "The download with SNI {target_sni} failed ({target_failure}): that is blocking or an "
        "outage (see web_connectivity), not a rate that could be measured.",
    ),
    DecisionRule(
        "throttling.innocuous.failed", INCONCLUSIVE, lambda f: f.innocuous.failure is not None,
        "The same download with the innocuous SNI {innocuous_sni} failed "
        "({innocuous_failure}), so there is no rate to compare {target_sni}'s with.",
    ),
    DecisionRule(
        "throttling.different_answer", INCONCLUSIVE, _different_answer,
        "The server answered {target_status} with SNI {target_sni} but {innocuous_status} with "
        "SNI {innocuous_sni}: the two downloads are not the same, their rates not comparable.",
    ),
    DecisionRule(
        "throttling.target.short", INCONCLUSIVE, lambda f: not f.long_enough(f.t),
        "The download with SNI {target_sni} was too short to measure a rate ({target_bytes} "
        "bytes in {target_seconds} s; at least {min_bytes} bytes or {min_seconds} s are needed).",
    ),
    DecisionRule(
        "throttling.innocuous.short", INCONCLUSIVE, lambda f: not f.long_enough(f.i),
        "The download with the innocuous SNI {innocuous_sni} was too short to measure a rate "
        "to compare {target_sni}'s with ({innocuous_bytes} bytes in {innocuous_seconds} s; at "
        "least {min_bytes} bytes or {min_seconds} s are needed).",
    ),
    DecisionRule(
        "throttling.nothing", INCONCLUSIVE, lambda f: not f.t.kbps and not f.i.kbps,
        "Neither download received anything after the request ({target_seconds} s with SNI "
        "{target_sni}, {innocuous_seconds} s with SNI {innocuous_sni}): the server or the "
        "path stalls, whatever the name; no rate to compare.",
    ),
    DecisionRule(
        "throttling.server", INCONCLUSIVE,
        lambda f: _throttled(f) and f.control_usable
        and f.control_ratio < f.th.throttle_ratio,
        "With SNI {target_sni} the download ran at {target_kbps} kbit/s, {ratio} slower than "
        "with SNI {innocuous_sni} ({innocuous_kbps} kbit/s), but the control got only "
        "{control_kbps} kbit/s for {target_sni} too: the server is slow for this name, "
        "not necessarily the network.",
    ),
    DecisionRule(
        "throttling.confirmed", THROTTLED, lambda f: _throttled(f) and f.control_usable,
        "With SNI {target_sni} the download ran at {target_kbps} kbit/s, {ratio} slower than "
        "the same download from the same address with SNI {innocuous_sni} ({innocuous_kbps} "
        "kbit/s), while the control got {control_kbps} kbit/s for {target_sni}: this network "
        "throttles {target_sni}.",
    ),
    DecisionRule(
        "throttling.throttled", THROTTLED, _throttled,
        "With SNI {target_sni} the download ran at {target_kbps} kbit/s, {ratio} slower than "
        "the same download from the same address with SNI {innocuous_sni} ({innocuous_kbps} "
        "kbit/s): this network throttles {target_sni}.",
    ),
    DecisionRule(
        "throttling.ambiguous", INCONCLUSIVE, lambda f: f.ratio >= f.th.comparable_ratio,
        "With SNI {target_sni} the download ran at {target_kbps} kbit/s, {ratio} slower than "
        "with SNI {innocuous_sni} ({innocuous_kbps} kbit/s): more than noise, less than the "
        "{throttle_ratio} times at which throttling is reported.",
    ),
    DecisionRule(
        "throttling.slow_network", SLOW_NETWORK,
        lambda f: max(f.t.kbps or 0.0, f.i.kbps or 0.0) < f.th.slow_kbps,
        "Both downloads were slow, {target_kbps} kbit/s with SNI {target_sni} and "
        "{innocuous_kbps} kbit/s with SNI {innocuous_sni}, and comparable: the network is "
        "generally slow (below {slow_kbps} kbit/s), which is not throttling of {target_sni}.",
    ),
    DecisionRule(
        "throttling.none", NOT_THROTTLED, lambda f: True,
        "With SNI {target_sni} the download ran at {target_kbps} kbit/s, comparable with "
        "{innocuous_kbps} kbit/s with SNI {innocuous_sni}: {target_sni} is not throttled.",
    ),
)  # fmt: skip
RULES_BY_ID = {rule.id: rule for rule in RULES}


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: str  # one of VERDICTS
    rule: str  # the id of the row of RULES that decided
    explanation: str
    target: Throughput
    innocuous: Throughput
    control: Throughput | None
    ratio: float | None  # innocuous / target, 2 decimals; None when no rate to divide by

    @property
    def target_kbps(self) -> float | None:
        return self.target.kbps

    @property
    def innocuous_kbps(self) -> float | None:
        return self.innocuous.kbps

    @property
    def control_kbps(self) -> float | None:
        return self.control.kbps if self.control is not None else None


def decide(
    target: Leg,
    innocuous: Leg,
    control: Leg | None = None,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Decision:
    """The verdict on two legs (and optionally the control's): first matching row of RULES."""
    facts = _Facts(
        target=target,
        innocuous=innocuous,
        control=control,
        t=throughput(target.samples, warmup=thresholds.warmup),
        i=throughput(innocuous.samples, warmup=thresholds.warmup),
        c=throughput(control.samples, warmup=thresholds.warmup) if control is not None else None,
        th=thresholds,
    )
    rule = next(r for r in RULES if r.when(facts))
    ratio: float | None = None
    if facts.t.kbps is not None and facts.i.kbps is not None and not math.isinf(facts.ratio):
        ratio = round(facts.ratio, 2)
    return Decision(
        verdict=rule.verdict,
        rule=rule.id,
        explanation=rule.explanation.format(**facts.words()),
        target=facts.t,
        innocuous=facts.i,
        control=facts.c,
        ratio=ratio,
    )
