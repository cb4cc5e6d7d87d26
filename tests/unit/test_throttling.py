"""The sans-IO throttling decision on hand-built samples: rates, warm-up, and the rule table.

Samples are built as the stream layer records them: a baseline when the request
leaves (the handshake's bytes already counted), then one sample at most every
250 ms, then one at close.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from blockproof.core.throttling import (
    INCONCLUSIVE,
    NOT_THROTTLED,
    RULES,
    RULES_BY_ID,
    SLOW_NETWORK,
    THROTTLED,
    VERDICTS,
    Leg,
    Sample,
    Thresholds,
    decide,
    throughput,
)

HANDSHAKE = 4200  # bytes already received when the request leaves


def ramp(
    kbps: float,
    seconds: float = 3.0,
    *,
    start: float = 1.0,
    every: float = 0.25,
    burst: int = 0,
    jitter: float = 0.0,
    seed: int = 1,
) -> tuple[Sample, ...]:
    """Samples of a download at ``kbps``, after an optional initial ``burst`` of bytes."""
    rng = random.Random(seed)
    out: list[Sample] = [(start, HANDSHAKE)]
    total = float(HANDSHAKE)
    t = start
    while t + every <= start + seconds + 1e-9:
        t += every
        rate = kbps * 1000 / 8 * (1 + rng.uniform(-jitter, jitter))
        total += rate * every
        if burst and len(out) == 1:
            total += burst  # a policer's burst allowance, in the first tick
        out.append((round(t, 6), int(total)))
    return tuple(out)


def fast(total: int, seconds: float, *, start: float = 5.0) -> tuple[Sample, ...]:
    """A download over before the first 250 ms tick: only the baseline and the close."""
    return ((start, HANDSHAKE), (start + seconds, HANDSHAKE + total))


T, EX = "pbs.twimg.com", "www.example.org"


@dataclass(frozen=True)
class Case:
    name: str
    target: Leg
    innocuous: Leg
    verdict: str
    rule: str
    control: Leg | None = None
    target_kbps: float | None = None  # expected within 10 %


CASES = [
    Case("clear throttling at 150 kbit/s",
         Leg(sni=T, samples=ramp(150), status=200), Leg(sni=EX, samples=ramp(20000), status=200),
         THROTTLED, "throttling.throttled", target_kbps=150),
    Case("throttling after a policer's initial burst",
         Leg(sni=T, samples=ramp(128, burst=120_000)), Leg(sni=EX, samples=ramp(8000)),
         THROTTLED, "throttling.throttled", target_kbps=128),
    Case("throttled, the innocuous leg over in 80 ms (mean rate)",
         Leg(sni=T, samples=ramp(150)), Leg(sni=EX, samples=fast(2_400_000, 0.08)),
         THROTTLED, "throttling.throttled", target_kbps=150),
    Case("throttled to a stall: nothing after the headers",
         Leg(sni=T, samples=ramp(0)), Leg(sni=EX, samples=ramp(5000)),
         THROTTLED, "throttling.throttled", target_kbps=0),
    Case("throttled, confirmed by a fast control",
         Leg(sni=T, samples=ramp(150)), Leg(sni=EX, samples=ramp(20000)),
         THROTTLED, "throttling.confirmed", control=Leg(sni=T, samples=ramp(30000))),
    Case("slow for the control too: the server, not the network",
         Leg(sni=T, samples=ramp(150)), Leg(sni=EX, samples=ramp(20000)),
         INCONCLUSIVE, "throttling.server", control=Leg(sni=T, samples=ramp(200))),
    Case("a failed control leg is ignored",
         Leg(sni=T, samples=ramp(150)), Leg(sni=EX, samples=ramp(20000)),
         THROTTLED, "throttling.throttled", control=Leg(sni=T, failure="generic_timeout_error")),
    Case("generally slow link: every SNI capped alike",
         Leg(sni=T, samples=ramp(150)), Leg(sni=EX, samples=ramp(150, seed=2)),
         SLOW_NETWORK, "throttling.slow_network", target_kbps=150),
    Case("slow link with noise, the target a little faster",
         Leg(sni=T, samples=ramp(190, jitter=0.3)), Leg(sni=EX, samples=ramp(140, jitter=0.3)),
         SLOW_NETWORK, "throttling.slow_network"),
    Case("slow link, the control fast (the path is slow, not the name)",
         Leg(sni=T, samples=ramp(300)), Leg(sni=EX, samples=ramp(320)),
         SLOW_NETWORK, "throttling.slow_network", control=Leg(sni=T, samples=ramp(50000))),
    Case("fast and comparable",
         Leg(sni=T, samples=ramp(18000)), Leg(sni=EX, samples=ramp(20000)),
         NOT_THROTTLED, "throttling.none", target_kbps=18000),
    Case("fast with 30 % noise on both legs",
         Leg(sni=T, samples=ramp(10000, jitter=0.3, seed=3)),
         Leg(sni=EX, samples=ramp(12000, jitter=0.3, seed=4)),
         NOT_THROTTLED, "throttling.none"),
    Case("the target faster than the innocuous name",
         Leg(sni=T, samples=ramp(50000)), Leg(sni=EX, samples=ramp(9000)),
         NOT_THROTTLED, "throttling.none"),
    Case("two times slower: more than noise, less than throttling",
         Leg(sni=T, samples=ramp(5000)), Leg(sni=EX, samples=ramp(10000)),
         INCONCLUSIVE, "throttling.ambiguous"),
    Case("a short target download (a small page in 50 ms)",
         Leg(sni=T, samples=fast(6000, 0.05)), Leg(sni=EX, samples=ramp(20000)),
         INCONCLUSIVE, "throttling.target.short"),
    Case("a short innocuous download",
         Leg(sni=T, samples=ramp(150)), Leg(sni=EX, samples=fast(9000, 0.3)),
         INCONCLUSIVE, "throttling.innocuous.short"),
    Case("a single sample is no rate",
         Leg(sni=T, samples=((1.0, HANDSHAKE),)), Leg(sni=EX, samples=ramp(20000)),
         INCONCLUSIVE, "throttling.target.short"),
    Case("the target leg reset on SNI: blocking, not throttling",
         Leg(sni=T, failure="connection_reset"), Leg(sni=EX, samples=ramp(20000)),
         INCONCLUSIVE, "throttling.target.failed"),
    Case("the innocuous leg failed",
         Leg(sni=T, samples=ramp(150)), Leg(sni=EX, failure="ssl_failed_handshake"),
         INCONCLUSIVE, "throttling.innocuous.failed"),
    Case("both legs failed: the target's failure is reported",
         Leg(sni=T, failure="generic_timeout_error"), Leg(sni=EX, failure="generic_timeout_error"),
         INCONCLUSIVE, "throttling.target.failed"),
    Case("the server answers the innocuous SNI differently",
         Leg(sni=T, samples=ramp(150), status=200), Leg(sni=EX, samples=ramp(20000), status=421),
         INCONCLUSIVE, "throttling.different_answer"),
    Case("both legs stall: nothing to compare",
         Leg(sni=T, samples=ramp(0)), Leg(sni=EX, samples=ramp(0)),
         INCONCLUSIVE, "throttling.nothing"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision_table(case: Case) -> None:
    decision = decide(case.target, case.innocuous, case.control)
    assert (decision.verdict, decision.rule) == (case.verdict, case.rule), decision.explanation
    assert decision.verdict in VERDICTS
    assert case.target.sni in decision.explanation
    assert "{" not in decision.explanation
    assert decision.explanation.endswith(".")
    if case.target_kbps is not None:
        assert decision.target_kbps is not None
        assert decision.target_kbps == pytest.approx(case.target_kbps, rel=0.1, abs=1)


def test_every_rule_is_exercised_and_ids_are_unique() -> None:
    assert len(RULES_BY_ID) == len(RULES)
    assert {c.rule for c in CASES} == set(RULES_BY_ID)
    assert RULES[-1].when.__name__ == "<lambda>"
    assert RULES[-1].verdict == NOT_THROTTLED


def test_throttled_reports_rates_and_ratio() -> None:
    d = decide(Leg(sni=T, samples=ramp(150)), Leg(sni=EX, samples=ramp(15000)))
    assert d.target_kbps == pytest.approx(150, rel=0.02)
    assert d.innocuous_kbps == pytest.approx(15000, rel=0.02)
    assert d.ratio == pytest.approx(100, rel=0.05)
    assert "150 kbit/s" in d.explanation
    assert "15000 kbit/s" in d.explanation
    assert d.control is None
    assert d.control_kbps is None


def test_stalled_target_has_no_finite_ratio() -> None:
    d = decide(Leg(sni=T, samples=ramp(0)), Leg(sni=EX, samples=ramp(5000)))
    assert d.ratio is None
    assert d.target_kbps == 0
    assert "infinitely" in d.explanation


def test_thresholds_are_parameters() -> None:
    target, innocuous = Leg(sni=T, samples=ramp(5000)), Leg(sni=EX, samples=ramp(10000))
    assert decide(target, innocuous).verdict == INCONCLUSIVE
    loose = Thresholds(throttle_ratio=1.8)
    assert decide(target, innocuous, thresholds=loose).verdict == THROTTLED
    slow = Thresholds(slow_kbps=50000)
    assert decide(Leg(sni=T, samples=ramp(9000)), Leg(sni=EX, samples=ramp(10000)),
                  thresholds=slow).verdict == SLOW_NETWORK  # fmt: skip


# --- throughput ---------------------------------------------------------------------------


def test_throughput_is_the_slope_after_the_warm_up() -> None:
    tp = throughput(ramp(150, burst=200_000))
    assert tp.method == "slope"
    assert tp.kbps == pytest.approx(150, rel=0.02)
    whole = (tp.bytes * 8 / 1000) / tp.seconds
    assert whole > 600  # the burst would have quadrupled a first-to-last mean


def test_throughput_falls_back_to_the_mean_within_the_warm_up() -> None:
    tp = throughput(fast(1_000_000, 0.1))
    assert tp.method == "mean"
    assert tp.kbps == pytest.approx(80_000)
    assert (tp.bytes, tp.samples) == (1_000_000, 2)


def test_throughput_sorts_its_samples_and_needs_two() -> None:
    samples = ramp(1000)
    assert throughput(reversed(samples)) == throughput(samples)
    assert throughput([]).kbps is None
    assert throughput([(1.0, 10)]).kbps is None
    assert throughput([(1.0, 10), (1.0, 20)]).kbps is None


def test_throughput_never_negative() -> None:
    tp = throughput([(0.0, 0), (1.0, 5000), (2.0, 4000), (3.0, 3000)])
    assert tp.kbps == 0
    assert not math.isnan(tp.kbps)
