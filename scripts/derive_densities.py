#!/usr/bin/env python3
"""Derive the simulator's OONI-like densities from a real sample of OONI's fastpath table.

Run by hand, never by the tests or at run time, with blockproof installed
(``. .venv/bin/activate``)::

    python scripts/derive_densities.py PATH/TO/fastpath_sample_2024-01-01.csv \\
        --out src/blockproof/simulate/densities.json

The input is the CSV form of the 1,080 rows of OONI's ``fastpath`` table that
ooni/backend ships as a test fixture
(``ooniapi/services/oonimeasurements/tests/migrations/2_clickhouse_populate_fastpath.sql``,
OONI data, CC BY-NC-SA 4.0): 999 of them are measurements that started in the first
62 seconds of 1 January 2024 (UTC), sorted by start time, apparently all OONI had for
that minute (the fixture does not say how it was selected), 713 of them Web
Connectivity. The script writes ``densities.json``: what the sample shows (figures,
each with the rows it comes from), and the parameters the simulator uses, each
with the reason it was chosen where the sample cannot pin it down. The output is
deterministic (no randomness beyond a fixed seed; stdlib only). docs/simulator.md,
"OONI-like campaigns", explains every figure.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import random
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from blockproof.platforms import platform_of_url

PROFILE = "ooni-fastpath-2024-01-01"
DAY = "2024-01-01"
# The platforms' front pages that OONI's check-in puts in nearly every list.
FRONT_PAGES = (
    "https://twitter.com/",
    "https://www.facebook.com/",
    "https://www.instagram.com/",
    "https://www.youtube.com/",
)
# Countries whose measurements of the big platforms are blocks, not strays: the sample
# itself confirms blocks in IR and TR; RU and CN block several of these platforms.
BLOCKING_COUNTRIES = frozenset({"IR", "TR", "RU", "CN"})
# A run is "flaky" (the probe's side failed, whatever the URL) when at least this share
# of its measurements failed.
FLAKY_RUN_SHARE = 1 / 3
# The spread of networks' volumes: not pinned by one minute of data (see _volume);
# chosen inside the 95% profile-likelihood interval.
VOLUME_SIGMA = 2.0
DAY_SHAPE = 2.0  # Gamma shape of a network's day-to-day volume (assumption)
LATE_MEDIAN_HOURS = 24.0  # a late run's upload delay (assumption): lognormal
LATE_SIGMA = 1.0
SEED = 20240101


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _uid_time(uid: str) -> datetime:
    return datetime.strptime(uid.split("_", 1)[0], "%Y%m%d%H%M%S.%f")


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split(":", 1)[0].lower()


def _popular(url: str) -> bool:
    """A URL of one of the platforms blockproof profiles (data/platforms.toml)."""
    return platform_of_url(url) is not None


def _quantiles(values: list[float], qs: tuple[float, ...]) -> dict[str, float]:
    ordered = sorted(values)
    out = {}
    for q in qs:
        position = q * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
        out[f"p{round(q * 100):02d}"] = round(value, 4)
    return out


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _normal_grid(step: float = 0.02, span: float = 8.0) -> list[tuple[float, float]]:
    """(z, weight) pairs integrating a standard normal density."""
    points = []
    z = -span
    while z <= span:
        points.append((z, math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * step))
        z += step
    return points


GRID = _normal_grid()


# --------------------------------------------------------------------------------------
# the figures


def _runs(wc: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    runs: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in wc:
        runs[row["report_id"]].append(row)
    return runs


def _pace(runs: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """Seconds between consecutive measurements of one run."""
    gaps: list[float] = []
    for rows in runs.values():
        times = sorted(_time(r["measurement_start_time"]) for r in rows)
        gaps += [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return {
        "what": "seconds between consecutive measurements of one run (report id)",
        "n": len(gaps),
        "mean": round(statistics.fmean(gaps), 3),
        **_quantiles(gaps, (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)),
    }


def _duration(runs: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """Run durations: lognormal, by maximum likelihood from the ages of runs in progress.

    A run seen at a random instant has an age A (``measurement_start_time`` of its
    first measurement in the window minus its ``test_start_time``) whose density
    is S_D(a) / E[D] (length-biased sampling)."""
    ages = []
    for rows in runs.values():
        first = min(_time(r["measurement_start_time"]) for r in rows)
        ages.append(max(1.0, (first - _time(rows[0]["test_start_time"])).total_seconds()))

    def nll(mu: float, sigma: float) -> float:
        mean = math.exp(mu + sigma * sigma / 2)
        total = -len(ages) * math.log(mean)
        for a in ages:
            total += math.log(max(1.0 - _phi((math.log(a) - mu) / sigma), 1e-300))
        return -total

    best = min(
        (nll(mu / 50, s / 50), mu / 50, s / 50)
        for mu in range(0, 500, 2)
        for s in range(10, 200, 2)
    )
    _, mu, sigma = best
    best = min(
        (nll(mu + dm / 500, sigma + ds / 500), mu + dm / 500, sigma + ds / 500)
        for dm in range(-20, 21)
        for ds in range(-20, 21)
    )
    _, mu, sigma = best
    return {
        "what": "run duration in seconds, lognormal fitted (maximum likelihood) to the ages"
        " of the runs in progress in the window (length-biased)",
        "n_runs": len(ages),
        "ages": _quantiles(ages, (0.1, 0.25, 0.5, 0.75, 0.9)),
        "median_s": round(math.exp(mu), 2),
        "sigma": round(sigma, 3),
        "mean_s": round(math.exp(mu + sigma * sigma / 2), 2),
    }


def _list_size(wc: list[dict[str, str]]) -> dict[str, Any]:
    """How many URLs the probes' lists hold: from how often the other URLs repeat.

    Draws uniformly from L URLs give L * (1 - exp(-n / L)) distinct ones."""
    others = [r["input"] for r in wc if r["input"] not in FRONT_PAGES]
    n, distinct = len(others), len(set(others))
    low, high = float(distinct), 1e6
    for _ in range(200):
        mid = (low + high) / 2
        if mid * (1 - math.exp(-n / mid)) < distinct:
            low = mid
        else:
            high = mid
    return {
        "what": "URLs in the lists the probes measured, from the repeats among the"
        " measurements of URLs other than the front pages (draws from L URLs give"
        " L(1 - exp(-n/L)) distinct ones)",
        "measurements": n,
        "distinct": distinct,
        "urls": round(low),
    }


def _shares(wc: list[dict[str, str]], list_urls: int) -> dict[str, Any]:
    counts = Counter(r["input"] for r in wc)
    front = sum(counts[u] for u in FRONT_PAGES)
    front_share = front / len(FRONT_PAGES) / len(wc)
    secondary_share = (len(wc) - front) / len(wc) / (list_urls - len(FRONT_PAGES))
    x_urls = {
        u: counts.get(u, 0)
        for u in (
            "https://twitter.com/",
            "https://x.com/",
            "https://t.co/",
            "https://pbs.twimg.com/",
        )
    }
    return {
        "what": "share of a run's measurements that are one given URL",
        "front_pages": {u: counts[u] for u in FRONT_PAGES},
        "front_page_share": round(front_share, 5),
        "secondary_share": round(secondary_share, 6),
        "x_urls_in_sample": x_urls,
        "x_any_url": sum(1 for r in wc if platform_of_url(r["input"]) == "x"),
    }


def _inclusion(share: float, pace_mean: float, duration: dict[str, Any]) -> float:
    """Mean probability that a run measures a URL of that share: E[min(1, share * D / pace)]."""
    mu, sigma = math.log(duration["median_s"]), duration["sigma"]
    return sum(w * min(1.0, share * math.exp(mu + sigma * z) / pace_mean) for z, w in GRID)


def _volume(wc: list[dict[str, str]], window_s: float, duration: dict[str, Any]) -> dict[str, Any]:
    """Runs per network per day: lognormal across networks, fitted to how many runs each
    network had in progress in the window (zero-truncated Poisson-lognormal).

    The window shows only networks that were measuring: the spread is not pinned
    down (the profile likelihood is nearly flat in sigma), so sigma is chosen inside
    its 95% interval and the median fitted at that sigma."""
    per_network: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in wc:
        per_network[(r["probe_cc"], r["probe_asn"])].add(r["report_id"])
    active = Counter(len(v) for v in per_network.values())

    def p_k(k: int, mu: float, sigma: float) -> float:
        return sum(
            w * math.exp(-lam) * lam**k / math.factorial(k)
            for z, w in GRID
            for lam in (math.exp(mu + sigma * z),)
        )

    def nll(mu: float, sigma: float) -> float:
        p0 = p_k(0, mu, sigma)
        return -sum(c * math.log(p_k(k, mu, sigma) / (1 - p0)) for k, c in active.items())

    def best_mu(sigma: float) -> tuple[float, float]:
        return min((nll(m / 20, sigma), m / 20) for m in range(-300, 60))

    profile = {f"{s:.1f}": round(best_mu(s)[0], 3) for s in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)}
    low = min(profile.values())
    mu = best_mu(VOLUME_SIGMA)[1]
    seen_for = duration["mean_s"] + window_s  # a run is seen when it overlaps the window
    median_runs = math.exp(mu) * 86400 / seen_for
    world_runs = len({r["report_id"] for r in wc}) * 86400 / seen_for
    mean_per_network = median_runs * math.exp(VOLUME_SIGMA**2 / 2)
    return {
        "what": "web_connectivity runs per network per day: lognormal across networks",
        "networks_in_window": len(per_network),
        "runs_in_progress_per_network": {str(k): active[k] for k in sorted(active)},
        "profile_nll_by_sigma": profile,
        "sigma_in_95_interval": [s for s, v in profile.items() if v - low <= 1.92],
        "sigma": VOLUME_SIGMA,
        "median_runs_per_day": round(median_runs, 3),
        "quantiles_runs_per_day": {
            f"p{q}": round(median_runs * math.exp(VOLUME_SIGMA * z), 2)
            for q, z in ((10, -1.2816), (50, 0.0), (90, 1.2816), (99, 2.3263))
        },
        "world_runs_per_day": round(world_runs),
        "implied_networks_per_day": round(world_runs / mean_per_network),
    }


def _failures(runs: dict[str, list[dict[str, str]]], wc: list[dict[str, str]]) -> dict[str, Any]:
    flaky = {
        k: rows
        for k, rows in runs.items()
        if sum(r["msm_failure"] == "t" for r in rows) >= max(2, FLAKY_RUN_SHARE * len(rows))
    }
    in_flaky = sum(len(rows) for rows in flaky.values())
    failed_in_flaky = sum(r["msm_failure"] == "t" for rows in flaky.values() for r in rows)
    failed = sum(r["msm_failure"] == "t" for r in wc)
    popular = [r for r in wc if _popular(r["input"])]
    return {
        "what": "msm_failure of web_connectivity measurements",
        "measurements": len(wc),
        "failed": failed,
        "share": round(failed / len(wc), 4),
        "runs_with_a_failure": sum(any(r["msm_failure"] == "t" for r in rows)
                                   for rows in runs.values()),
        "runs": len(runs),
        "flaky_runs": len(flaky),
        "measurements_in_flaky_runs": in_flaky,
        "failed_in_flaky_runs": failed_in_flaky,
        "flaky_measurement_share": round(in_flaky / len(wc), 4),
        "failure_share_in_flaky_runs": round(failed_in_flaky / in_flaky, 4),
        "probe_side_share": round(failed_in_flaky / len(wc), 4),
        "scattered_share": round((failed - failed_in_flaky) / (len(wc) - in_flaky), 4),
        "popular_platforms": {"measurements": len(popular),
                              "failed": sum(r["msm_failure"] == "t" for r in popular)},
    }  # fmt: skip


def _anomalies(wc: list[dict[str, str]]) -> dict[str, Any]:
    outside = [r for r in wc if r["probe_cc"] not in BLOCKING_COUNTRIES]
    popular = [r for r in outside if _popular(r["input"])]
    anomalous = sum(r["anomaly"] == "t" for r in outside)
    popular_anomalous = sum(r["anomaly"] == "t" for r in popular)
    return {
        "what": "anomaly of web_connectivity measurements outside IR, TR, RU and CN",
        "measurements": len(outside),
        "anomalies": anomalous,
        "share_any_site": round(anomalous / len(outside), 4),
        "popular_platforms": len(popular),
        "popular_anomalies": popular_anomalous,
        "popular_jeffreys_mean": round((popular_anomalous + 0.5) / (len(popular) + 1), 4),
        "popular_upper_95": round(1 - 0.05 ** (1 / len(popular)), 4),
    }


def _uploads(rows: list[dict[str, str]]) -> dict[str, Any]:
    delays = [
        (_uid_time(r["measurement_uid"]) - _time(r["measurement_start_time"])).total_seconds()
        for r in rows
    ]
    positive = [d for d in delays if d > 0]
    logs = [math.log(d) for d in positive]
    return {
        "what": "seconds from measurement_start_time to arrival (the time in measurement_uid)",
        "n": len(delays),
        **_quantiles(delays, (0.01, 0.25, 0.5, 0.75, 0.9, 0.99)),
        "max": round(max(delays), 3),
        "negative": sum(d < 0 for d in delays),
        "over_one_hour": sum(d > 3600 for d in delays),
        "late_share_upper_95": round(3 / len(delays), 4),  # rule of three: none seen in n
        "lognormal_median_s": round(math.exp(statistics.fmean(logs)), 3),
        "lognormal_sigma": round(statistics.pstdev(logs), 3),
    }


def _hours(rows: list[dict[str, str]]) -> dict[str, Any]:
    """The one full day in the file: twitter.com measured in Italy on 9 July 2021."""
    day = [
        r
        for r in rows
        if r["measurement_start_time"].startswith("2021-07-09")
        and r["probe_cc"] == "IT"
        and r["test_name"] == "web_connectivity"
    ]
    starts = sorted({r["report_id"]: r["test_start_time"] for r in day}.values())
    local = [(_time(s).hour + 2) % 24 for s in starts]  # CEST
    per_network = Counter(f"AS{r['probe_asn']}" for r in day)
    return {
        "what": "runs measuring twitter.com in Italy on 2021-07-09 (the file's one full day of"
        " one platform in one country), start hour in local time (UTC+2)",
        "runs": len(starts),
        "local_start_hours": local,
        "measurements_per_network": dict(sorted(per_network.items())),
    }


def _inverse_phi(p: float) -> float:
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if _phi(mid) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _country(
    day: list[dict[str, str]], cc: str, world_runs: float, networks: int
) -> dict[str, Any]:
    """A country's web_connectivity runs a day, from its share of the measurements (every
    test) in the window, split over its networks by the rank quantiles of the lognormal
    of runs per network."""
    mine = [r for r in day if r["probe_cc"] == cc]
    share = len(mine) / len(day)
    # one probe's session (its tests, one report each) is one event: exact Poisson 95%
    # interval for one event, 0.0253 to 5.5716, over the mean session's measurements
    sessions = len({(r["probe_asn"], r["software_name"], r["platform"]) for r in mine})
    per_session = len(mine) / max(sessions, 1)
    low, high = (0.0253 * per_session, 5.5716 * per_session) if sessions == 1 else (0.0, 0.0)
    z = [_inverse_phi(1 - (i + 0.5) / networks) for i in range(networks)]
    weights = [math.exp(VOLUME_SIGMA * v) for v in z]
    total = sum(weights)
    runs = share * world_runs
    return {
        "what": f"{cc}: its share of the measurements (every test) in the window, times the"
        " world's web_connectivity runs a day; split over its networks, largest first, by"
        f" the rank quantiles of the lognormal (sigma {VOLUME_SIGMA})",
        "measurements_in_window": len(mine),
        "probe_sessions_in_window": sessions,
        "runs_per_day": round(runs, 1),
        "runs_per_day_95": [round(low / len(day) * world_runs, 1),
                            round(high / len(day) * world_runs, 1)],
        "networks": networks,
        "runs_per_day_by_rank": [round(runs * w / total, 2) for w in weights],
    }  # fmt: skip


# --------------------------------------------------------------------------------------
# the distribution a platform's measurements follow per network and day


def _per_network_day(
    runs_median: float,
    duration: dict[str, Any],
    pace_mean: float,
    front: float,
    secondary: float,
    n_front: int,
    n_secondary: int,
) -> dict[str, Any]:
    """Monte Carlo of the simulator's model: a network's mean runs a day (lognormal),
    that day's volume (Gamma, mean 1), runs (Poisson), each run measuring each URL
    with probability min(1, share * duration / pace)."""
    rng = random.Random(SEED)
    mu_d, sigma_d = math.log(duration["median_s"]), duration["sigma"]
    counts = []
    for _ in range(40_000):
        mean = runs_median * math.exp(VOLUME_SIGMA * rng.gauss(0.0, 1.0))
        level = mean * rng.gammavariate(DAY_SHAPE, 1.0 / DAY_SHAPE)
        n = 0
        t = rng.expovariate(level) if level > 0 else 2.0
        while t < 1.0:
            d = math.exp(mu_d + sigma_d * rng.gauss(0.0, 1.0))
            p_front = min(1.0, front * d / pace_mean)
            p_secondary = min(1.0, secondary * d / pace_mean)
            n += sum(rng.random() < p_front for _ in range(n_front))
            n += sum(rng.random() < p_secondary for _ in range(n_secondary))
            t += rng.expovariate(level)
        counts.append(float(n))
    qs = _quantiles(counts, (0.25, 0.5, 0.75, 0.9, 0.95, 0.99))
    return {
        "urls": {"front_pages": n_front, "secondary": n_secondary},
        "zero_share": round(sum(c == 0 for c in counts) / len(counts), 4),
        "at_most_3_share": round(sum(c <= 3 for c in counts) / len(counts), 4),
        "at_least_100_share": round(sum(c >= 100 for c in counts) / len(counts), 4),
        "mean": round(statistics.fmean(counts), 3),
        **qs,
    }


def derive(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    day = [r for r in rows if r["measurement_start_time"].startswith(DAY)]
    wc = [r for r in day if r["test_name"] == "web_connectivity"]
    starts = [_time(r["measurement_start_time"]) for r in day]
    window_s = (max(starts) - min(starts)).total_seconds() + 1
    runs = _runs(wc)
    pace = _pace(runs)
    duration = _duration(runs)
    list_size = _list_size(wc)
    shares = _shares(wc, list_size["urls"])
    front, secondary = shares["front_page_share"], shares["secondary_share"]
    inclusion = {
        "what": "mean probability that a run measures a given URL, E[min(1, share * D / pace)]",
        "front_page": round(_inclusion(front, pace["mean"], duration), 4),
        "secondary": round(_inclusion(secondary, pace["mean"], duration), 5),
    }
    volume = _volume(wc, window_s, duration)
    failures = _failures(runs, wc)
    anomalies = _anomalies(wc)
    uploads = _uploads(day)
    pakistan = _country(day, "PK", volume["world_runs_per_day"], 7)
    per_day = {
        "what": "measurements of one platform per network per day, from the model above"
        " (Monte Carlo, 40,000 network-days, seed 20240101)",
        "one_front_page": _per_network_day(
            volume["median_runs_per_day"], duration, pace["mean"], front, secondary, 1, 0
        ),
        "x_as_simulated": _per_network_day(
            volume["median_runs_per_day"], duration, pace["mean"], front, secondary, 1, 3
        ),
    }
    return {
        "profile": PROFILE,
        "attribution": (
            "Derived from real OONI measurement metadata: 1,080 rows of OONI's fastpath table"
            " (OONI, Open Observatory of Network Interference; OONI data licence CC BY-NC-SA"
            " 4.0, https://ooni.org/) as shipped by ooni/backend (BSD-3-Clause) in"
            " ooniapi/services/oonimeasurements/tests/migrations/2_clickhouse_populate_fastpath.sql"
            " at commit 32d8349dc5440e75264c84c0ffe97495c7488e84, converted to CSV with no value"
            " changed. Only aggregate figures are kept here."
        ),
        "derived_by": "scripts/derive_densities.py (run by hand; see docs/simulator.md)",
        "input": {
            "file": path.name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "rows": len(rows),
            "rows_of_the_day": len(day),
            "web_connectivity": len(wc),
            "window_seconds": window_s,
            "countries": len({r["probe_cc"] for r in wc}),
        },
        "sample": {
            "pace": pace,
            "run_duration": duration,
            "list_size": list_size,
            "url_shares": shares,
            "url_inclusion": inclusion,
            "runs_per_network_day": volume,
            "failures": failures,
            "anomalies": anomalies,
            "upload_delay": uploads,
            "hours": _hours(rows),
            "per_network_day": per_day,
            "pakistan": pakistan,
        },
        # what the simulator reads (blockproof.simulate.scenario.Density)
        "parameters": {
            "pace_s": pace["mean"],
            "run_duration_median_s": duration["median_s"],
            "run_duration_sigma": duration["sigma"],
            "run_duration_max_s": 4 * 3600,
            "front_page_share": front,
            "secondary_share": secondary,
            "runs_per_network_day_median": volume["median_runs_per_day"],
            "runs_per_network_day_sigma": VOLUME_SIGMA,
            "day_shape": DAY_SHAPE,
            "flaky_run_probability": failures["flaky_measurement_share"],
            "flaky_failure_share": failures["failure_share_in_flaky_runs"],
            "stray_anomaly_rate": 0.015,
            "upload_delay_median_s": uploads["lognormal_median_s"],
            "upload_delay_sigma": uploads["lognormal_sigma"],
            "late_upload_probability": uploads["late_share_upper_95"],
            "late_delay_median_h": LATE_MEDIAN_HOURS,
            "late_delay_sigma": LATE_SIGMA,
            "block_share": [0.6, 0.95],
        },
        "choices": {
            "runs_per_network_day_sigma": "not pinned by one minute of data (the profile"
            " likelihood is nearly flat); 2.0 lies inside its 95% interval",
            "day_shape": "assumption: a network's volume varies from day to day as probes"
            " come and go (Gamma, shape 2: coefficient of variation 0.71)",
            "hours": "the sample cannot show a daily cycle (62 seconds); the one"
            " full day in the file (13 runs) spreads over the whole day: flat",
            "flaky_run_probability": "share of measurements in runs where at least a third"
            " failed (the probe's side failed, whatever the URL); the scattered failures of"
            " single sites that were down are left out: the simulated platforms are not down",
            "stray_anomaly_rate": "the platforms' measurements outside IR, TR, RU and CN show"
            f" {anomalies['popular_anomalies']} anomaly in {anomalies['popular_platforms']}"
            f" (Jeffreys estimate {anomalies['popular_jeffreys_mean']:.1%}); every site there"
            f" {anomalies['share_any_site']:.1%}, real blocks and sites that were down"
            " included: 1.5% lies between",
            "late_upload_probability": "no measurement of the sample arrived more than 96 s"
            " after it started: 3/999 is the 95% upper bound (rule of three), used as the"
            " share of runs uploaded late",
            "late_delay": "assumption: a late run arrives after a lognormal delay, median 24 h,"
            " sigma 1 (5% to 95%: 4.6 h to 5.2 days)",
            "block_share": "not in the sample (no block of the simulated platforms in it):"
            " partial blocks catch 60% to 95% of measurements, drawn per network",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="fastpath_sample_2024-01-01.csv")
    parser.add_argument("--out", type=Path, help="write the JSON here (default: stdout)")
    args = parser.parse_args(argv)
    text = json.dumps(derive(args.csv), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
