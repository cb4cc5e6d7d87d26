"""The change-point detector on synthetic hourly probe counts with known truth."""

from __future__ import annotations

import random

import pytest

from blockproof.pipeline.detect import binomial_sf, detect, merge_gaps, refine

DAY = 24


def simulate(
    seed: int,
    days: int,
    blocks: list[tuple[int, int]],
    restorations: list[tuple[int, int]] = (),  # type: ignore[assignment]
    *,
    p_blocked: float = 0.95,
    p_noise: float = 0.03,
    empty: float = 0.2,
    probes: tuple[int, int] = (1, 6),
    silent: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> tuple[list[int], list[int], list[int]]:
    rng = random.Random(seed)
    hours: list[int] = []
    k: list[int] = []
    n: list[int] = []
    for t in range(days * DAY):
        if rng.random() < empty or any(a <= t < b for a, b in silent):
            continue
        nn = rng.randint(*probes)
        blocked = any(a <= t < b for a, b in blocks) and not any(
            a <= t < b for a, b in restorations
        )
        p = p_blocked if blocked else p_noise
        hours.append(t)
        k.append(sum(rng.random() < p for _ in range(nn)))
        n.append(nn)
    return hours, k, n


@pytest.mark.parametrize("seed", range(8))
def test_block_found_with_start_and_end_within_two_hours(seed: int) -> None:
    start, end = 20 * DAY + 5, 40 * DAY + 7
    segs = merge_gaps(detect(*simulate(seed, 60, [(start, end)])), 24)
    assert len(segs) == 1
    seg = segs[0]
    assert seg.supported
    assert abs(seg.start - start) <= 2
    assert seg.end is not None
    assert abs(seg.end - end) <= 2
    assert seg.start_earliest <= seg.start <= seg.start_latest


@pytest.mark.parametrize("seed", range(8))
def test_brief_restoration_does_not_split_the_block(seed: int) -> None:
    start, end, r0, r1 = 20 * DAY, 40 * DAY, 25 * DAY + 4, 25 * DAY + 8
    # sparse data (1-6 probes an hour): one segment, whether or not the restoration shows
    segs = merge_gaps(detect(*simulate(seed, 60, [(start, end)], [(r0, r1)])), 24)
    assert len(segs) == 1
    # denser data: the restoration is seen, and recorded inside the one segment
    dense = simulate(seed, 60, [(start, end)], [(r0, r1)], probes=(3, 8), empty=0.05)
    segs = merge_gaps(detect(*dense), 24)
    assert len(segs) == 1
    assert any(abs(a - r0) <= 2 and abs(b - r1) <= 2 for a, b in segs[0].restorations)


@pytest.mark.parametrize("seed", range(8))
def test_quiet_series_gives_no_supported_segment(seed: int) -> None:
    segs = detect(*simulate(seed, 90, []))
    assert [s for s in segs if s.supported] == []


def test_block_lasting_past_the_data_is_open() -> None:
    segs = detect(*simulate(1, 30, [(20 * DAY, 40 * DAY)]))
    assert len(segs) == 1
    assert segs[0].end is None
    assert segs[0].supported


def test_silence_does_not_close_a_block() -> None:
    # no data at all for four days inside the block (a shutdown, late uploads)
    hours, k, n = simulate(2, 60, [(20 * DAY, 40 * DAY)], silent=[(25 * DAY, 29 * DAY)])
    segs = merge_gaps(detect(hours, k, n), 24)
    assert len(segs) == 1
    assert segs[0].restorations == []


def test_a_thin_series_is_below_the_evidence_floor() -> None:
    # one blocked probe every few hours never meets the floor of 3 probe-hours + p < 0.001
    hours = [100, 110, 150]
    segs = detect(hours, [1, 1, 1], [1, 1, 1])
    assert all(not s.supported for s in segs)


def test_partial_block_of_half_the_probes_is_still_found() -> None:
    segs = detect(*simulate(3, 60, [(20 * DAY, 40 * DAY)], p_blocked=0.6, probes=(3, 8)))
    assert any(s.supported and abs(s.start - 20 * DAY) <= 6 for s in segs)


@pytest.mark.parametrize(
    ("k", "n", "p", "expected"),
    [
        (0, 10, 0.1, 1.0),
        (11, 10, 0.1, 0.0),
        (10, 10, 0.5, 0.5**10),
        (1, 1, 0.3, 0.3),
        (3, 4, 0.05, 4 * 0.05**3 * 0.95 + 0.05**4),
    ],
)
def test_binomial_tail(k: int, n: int, p: float, expected: float) -> None:
    assert binomial_sf(k, n, p) == pytest.approx(expected, rel=1e-9)


def test_refine_interval_spans_a_gap_without_data() -> None:
    # clear at hours 0..9, no data 10..19, blocked from 20: the change is somewhere in 10..20
    hours = list(range(10)) + list(range(20, 30))
    k = [0] * 10 + [5] * 10
    n = [5] * 20
    tau, early, late = refine(hours, k, n, 0, 29, 0.05, 0.9, 2.0)
    assert tau == 20
    assert early == 10
    assert late == 20
