"""The detector on sparse, mixed-method, noisy series like the real one that it missed.

The case: twitter.com on one mobile network, 10 weeks, a new report id for every run,
2 to 20 measurements a day at irregular hours, a 6-day block in which about 85% of the
measurements were anomalies by a mix of methods, stray anomalies 4-5 days before the
onset, a week after the end and a month earlier. Before the fix the maximum-likelihood
boundary pulled the start back to the stray anomaly days before the onset, and the
evidence floor, counted in the 24 hours after that start, rejected the block: no event.

What is pinned down here:

* generated real-like series (``tests/sparse_series.py``, seeded): exactly one supported
  segment, its start interval holding the true onset day and not reaching back to the
  stray anomaly before it, its end interval within a day of the last blocked
  measurement; the same series with its stray anomalies only: nothing;
* the issue's mechanism, built by hand: a stray anomaly days before the onset with two
  clear measurements between, and its mirror after the end;
* hours and days without data, and hours whose probes all abstained, open and close
  nothing; the evidence floor of a thin network waits for enough probes, and a
  cluster of strays must stand out over a whole day.
"""

from __future__ import annotations

import random
from bisect import bisect_right

import pytest

from blockproof.pipeline.detect import Segment, detect, merge_gaps
from sparse_series import DAY, HOUR, Series, hourly, real_like

SEEDS = range(12)  # the first twelve, not a selection


def supported(hours: list[int], k: list[int], n: list[int]) -> list[Segment]:
    """What `analyze` keeps of one series: segments joined across gaps under a day,
    above the evidence floor."""
    return [s for s in merge_gaps(detect(hours, k, n), 24) if s.supported]


def end_bounds(series: Series, hours: list[int], k: list[int], n: list[int]) -> tuple[int, int]:
    """How far an end interval may reach: a day either side of the last blocked
    measurement or, where the data leave the likelihood no choice, back to the block's
    last run of blocked probes (two hours in a row all blocked; lone blocked probes may
    be strays after the end) and forward to the second scored measurement after it
    (one clear probe after a block that let 15% through does not show it was over)."""
    last = series.last_blocked // HOUR
    i = bisect_right(hours, last)
    second = hours[i + 1] if i + 1 < len(hours) else hours[-1]
    runs = [hours[j] for j in range(1, i) if k[j] == n[j] and k[j - 1] == n[j - 1] > 0]
    return min(last - 24, runs[-1] if runs else last), max(last + 24, second)


def within_a_day(seg: Segment, series: Series) -> bool:
    """The end interval within a day of the last blocked measurement, literally."""
    last = series.last_blocked // HOUR
    assert seg.end_earliest is not None
    assert seg.end_latest is not None
    return last - 24 <= seg.end_earliest and seg.end_latest <= last + 24


def check_one_block(series: Series) -> Segment:
    hours, k, n = hourly(series.measurements)
    segments = supported(hours, k, n)
    assert len(segments) == 1, [(s.start, s.end) for s in segments]
    [seg] = segments
    assert series.onset is not None
    onset = series.onset // HOUR
    # the start interval holds the true onset, to the day, and the reported start
    assert seg.start_earliest // 24 <= onset // 24 <= seg.start_latest // 24
    assert seg.start_earliest <= seg.start <= seg.start_latest
    # ... and does not reach back over the clear measurements to the stray anomaly
    assert seg.start_earliest > series.strays[0] // HOUR
    # the end interval holds the hour after the last blocked measurement, within a
    # day of it as far as the data can tell
    last = series.last_blocked // HOUR
    assert seg.end is not None
    assert seg.end_earliest is not None
    assert seg.end_latest is not None
    low, high = end_bounds(series, hours, k, n)
    assert low <= seg.end_earliest <= last + 1 <= seg.end_latest <= high
    assert seg.end_earliest <= seg.end <= seg.end_latest
    # the floor was counted over the block itself, not from a stray anomaly
    assert seg.floor_blocked >= 3
    return seg


@pytest.mark.parametrize("seed", SEEDS)
def test_real_like_series_gives_one_event_at_the_right_times(seed: int) -> None:
    series = real_like(seed)
    assert 350 <= len(series.measurements) <= 650  # about 470 in 10 weeks
    seg = check_one_block(series)
    assert within_a_day(seg, series)
    # the reported start is within a day of the onset, the end of the last blocked one
    assert series.onset is not None
    assert abs(seg.start - series.onset / HOUR) <= 24
    assert seg.end is not None
    assert abs(seg.end - series.last_blocked / HOUR) <= 24


@pytest.mark.parametrize("seed", SEEDS)
def test_stray_anomalies_alone_give_no_event(seed: int) -> None:
    series = real_like(seed, block=False)
    assert len(series.strays) == 3
    assert supported(*hourly(series.measurements)) == []


def test_the_same_over_two_hundred_series() -> None:
    # The table above is twelve series. Over two hundred more, every one gives exactly
    # one event whose intervals hold the truth as far as the data can tell (but for
    # the rare series whose first blocked measurements were let through and look like
    # the clear ones before: the onset's day is then outside the interval), and no
    # event with the stray anomalies alone. The end interval is within a day of the
    # last blocked measurement, literally, in about five series out of six: in the
    # others the network sent fewer than two measurements in the day after it.
    day_held = literal = 0
    for seed in range(1000, 1200):
        series = real_like(seed)
        hours, k, n = hourly(series.measurements)
        segments = supported(hours, k, n)
        assert len(segments) == 1, seed
        [seg] = segments
        assert series.onset is not None
        day = series.onset // HOUR // 24
        day_held += seg.start_earliest // 24 <= day <= seg.start_latest // 24
        assert seg.start_earliest > series.strays[0] // HOUR, seed
        last = series.last_blocked // HOUR
        assert seg.end_earliest is not None
        assert seg.end_latest is not None
        low, high = end_bounds(series, hours, k, n)
        assert low <= seg.end_earliest <= last + 1 <= seg.end_latest <= high, seed
        literal += within_a_day(seg, series)
        quiet = real_like(seed, block=False)
        assert supported(*hourly(quiet.measurements)) == [], seed
    assert day_held >= 196
    assert literal >= 150


# -- the mechanism, by hand ------------------------------------------------------


def sparse(days: range, per_day: tuple[int, ...] = (2, 9, 17)) -> list[int]:
    return [d * 24 + h for d in days for h in per_day]


def blocked_run(start: int, end: int, seed: int, share: float = 0.85) -> tuple[list[int], ...]:
    rng = random.Random(seed)
    hours, k = [], []
    t = start
    while t < end:
        hours.append(t)
        k.append(int(rng.random() < share))
        t += rng.choice((3, 5, 8, 11))
    return hours, k


def build(parts: list[tuple[list[int], list[int]]]) -> tuple[list[int], list[int], list[int]]:
    rows = sorted((h, kk) for hours, k in parts for h, kk in zip(hours, k, strict=True))
    return [h for h, _ in rows], [kk for _, kk in rows], [1] * len(rows)


@pytest.mark.parametrize("between", [2, 3])
def test_a_stray_anomaly_days_before_the_onset_is_not_the_start(between: int) -> None:
    # a month of three clear measurements a day; a stray anomaly; two (three) clear
    # measurements over the next three days; a 6-day block; then clear again. The old
    # detector put the start at the stray anomaly, counted one blocked probe-hour in
    # the 24 hours after it and published nothing.
    stray = 30 * 24 + 10
    onset = 33 * 24 + 15
    block_h, block_k = blocked_run(onset, onset + 6 * 24, seed=4)
    clear = sparse(range(30)) + [31 * 24 + 12, 32 * 24 + 20, 33 * 24 + 2][:between]
    clear += sparse(range(40, 50))
    hours, k, n = build([(clear, [0] * len(clear)), ([stray], [1]), (block_h, block_k)])
    [seg] = supported(hours, k, n)
    assert seg.start_earliest <= onset <= seg.start_latest
    assert abs(seg.start - onset) <= 12
    assert seg.floor_blocked >= 3
    if between == 3:  # three clear probes are a run: the interval stops there
        assert seg.start_earliest > stray
    assert seg.end is not None
    last = max(h for h, kk in zip(block_h, block_k, strict=True) if kk)
    assert abs(seg.end - last) <= 24


@pytest.mark.parametrize("between", [2, 3])
def test_a_stray_anomaly_after_the_end_does_not_carry_the_end_forward(between: int) -> None:
    onset, end = 30 * 24 + 5, 36 * 24 + 5
    block_h, block_k = blocked_run(onset, end, seed=7)
    last = max(h for h, kk in zip(block_h, block_k, strict=True) if kk)
    # two (three) clear measurements, a stray anomaly two days after the end, clear
    stray = end + 48
    clear = [*sparse(range(30)), *[end + 6, end + 30, end + 40][:between]]
    clear += sparse(range(39, 50))
    hours, k, n = build([(clear, [0] * len(clear)), ([stray], [1]), (block_h, block_k)])
    [seg] = supported(hours, k, n)
    assert seg.end is not None
    assert seg.end_latest is not None
    assert seg.end < stray
    assert abs(seg.end - last) <= 24
    if between == 3:  # three clear probes are a run: the interval stops there
        assert seg.end_latest < stray


def test_a_block_that_changes_method_is_one_block() -> None:
    # the detector sees blocked and clear probes, whatever the method: DNS for three
    # days, then TCP timeouts and TLS resets, is one run of blocked probe-hours
    onset = 30 * 24
    dns_h, dns_k = blocked_run(onset, onset + 72, seed=1)
    tls_h, tls_k = blocked_run(onset + 72, onset + 144, seed=2)
    clear = sparse(range(30)) + sparse(range(37, 45))
    hours, k, n = build([(clear, [0] * len(clear)), (dns_h, dns_k), (tls_h, tls_k)])
    assert len(supported(hours, k, n)) == 1


# -- no data, abstentions, the floor --------------------------------------------------------


def test_days_without_data_neither_open_nor_close() -> None:
    # five silent days right before the onset: the block is found, its interval spans
    # the silence (the onset may be anywhere in it), and no silence opens anything
    onset = 35 * 24 + 8
    block_h, block_k = blocked_run(onset, onset + 6 * 24, seed=3)
    clear = sparse(range(30)) + sparse(range(43, 60))
    hours, k, n = build([(clear, [0] * len(clear)), (block_h, block_k)])
    [seg] = supported(hours, k, n)
    assert seg.start_earliest <= 30 * 24  # back to the last clear measurement
    assert seg.start_latest >= onset
    assert seg.end is not None
    # the same series with a silent week in the middle of the block: still one block
    gap = [h for h in hours if not onset + 48 <= h < onset + 48 + 168]
    keep = [i for i, h in enumerate(hours) if h in set(gap)]
    segs = supported(gap, [k[i] for i in keep], [n[i] for i in keep])
    assert len(segs) == 1
    assert segs[0].restorations == []


def test_hours_whose_probes_all_abstained_are_no_data() -> None:
    series = real_like(5)
    hours, k, n = hourly(series.measurements)
    reference = [(s.start, s.start_earliest, s.end, s.end_latest) for s in supported(hours, k, n)]
    # add an hour whose probes all failed (no blocked, no clear) every 7 hours
    extra = [h for h in range(hours[0], hours[-1], 7) if h not in set(hours)]
    rows = sorted([*zip(hours, k, n, strict=True), *((h, 0, 0) for h in extra)])
    again = supported([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    assert [(s.start, s.start_earliest, s.end, s.end_latest) for s in again] == reference


def test_a_thin_network_reaches_the_floor_with_the_next_days_probes() -> None:
    # two measurements a day: the first 24 hours of a block hold two blocked probes, not
    # the three the floor needs; the floor window grows until it holds six
    clear = sparse(range(30), per_day=(6, 18)) + sparse(range(40, 50), per_day=(6, 18))
    block = sparse(range(30, 36), per_day=(6, 18))
    hours, k, n = build([(clear, [0] * len(clear)), (block, [1] * len(block))])
    [seg] = supported(hours, k, n)
    assert seg.floor_scored >= 6
    assert seg.start_earliest <= 30 * 24 + 6 <= seg.start_latest


def test_a_cluster_of_strays_must_stand_out_over_a_whole_day() -> None:
    # 30 measurements a day, three of them anomalies within three hours: the CUSUM
    # opens and closes a short segment, but over its first day 3 of ~30 blocked
    # probes at a 2% baseline is not evidence (p ~ 0.02)
    rng = random.Random(11)
    cluster = (40 * 24 + 3, 40 * 24 + 4, 40 * 24 + 5)
    hours, k, n = [], [], []
    for t in range(60 * 24):
        count = 1 if t in cluster else sum(rng.random() < 30 / 24 / 3 for _ in range(3))
        if not count:
            continue
        hours.append(t)
        k.append(int(t in cluster or t % 53 == 0))  # and a stray every couple of days
        n.append(count)
    segs = detect(hours, k, n)
    assert any(s.start_earliest <= 40 * 24 + 5 and (s.end or 0) >= 40 * 24 + 3 for s in segs)
    assert [s for s in segs if s.supported] == []


def test_the_generator_matches_the_case() -> None:
    series = real_like(0)
    assert series.onset is not None
    assert series.end is not None
    inside = [m for m in series.measurements if series.onset <= m.t < series.end]
    scored = [m for m in inside if m.outcome != "failure"]
    share = sum(m.outcome == "anomaly" for m in scored) / len(scored)
    assert 0.7 <= share <= 0.95
    assert {m.method for m in inside if m.outcome == "anomaly"} >= {"dns", "tcp_ip"}
    per_day: dict[int, int] = {}
    for m in series.measurements:
        per_day[m.t // DAY] = per_day.get(m.t // DAY, 0) + 1
    assert min(per_day.values()) >= 2
    assert max(per_day.values()) <= 22  # 20, plus a stray anomaly on its day
    before, after, month = series.strays
    assert 4 * DAY <= series.onset - before <= 5 * DAY
    assert 6 * DAY <= after - series.end <= 8 * DAY
    assert 28 * DAY <= series.onset - month <= 32 * DAY


# (id, [(start, start_earliest, start_latest)], the event's start)
LEADING = [
    ("one network", [(100, 98, 101)], 100),
    ("the earliest precise network", [(100, 98, 101), (90, 85, 95)], 90),
    ("a vague early network does not set the start", [(40, 0, 120), (100, 98, 101)], 100),
    ("none precise: the earliest", [(40, 0, 120), (60, 10, 130)], 40),
    ("24 hours wide is precise", [(50, 40, 64), (100, 98, 101)], 50),
]  # fmt: skip


@pytest.mark.parametrize(
    ("starts", "expected"), [c[1:] for c in LEADING], ids=[c[0] for c in LEADING]
)
def test_the_event_start_comes_from_a_network_that_dates_it(
    starts: list[tuple[int, int, int]], expected: int
) -> None:
    from blockproof.pipeline.analyze import leading_segment
    from blockproof.pipeline.detect import Segment

    segments = [Segment(start=s, start_earliest=e, start_latest=la) for s, e, la in starts]
    assert leading_segment(segments).start == expected
