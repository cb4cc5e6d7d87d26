"""OONI-like campaigns (``[density]``) look like OONI's real data.

The densities come from a real sample of OONI's fastpath table
(``src/blockproof/simulate/densities.json``, made by ``scripts/derive_densities.py``;
docs/simulator.md, "OONI-like campaigns"). These tests check that the simulator
follows them: measurements per network and day (heavy-tailed quantiles), one report id
per run, partial blocks (60-95% of measurements), method mixes, stray anomalies outside
blocks (1-2%), failures (2-5%) and late uploads, in valid OONI-format measurements.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from blockproof.codec.ooni import measurement_from_json, measurement_to_json
from blockproof.simulate import Campaign, resolve_sim_scenario, simulate
from blockproof.simulate.campaign import LATE_S
from blockproof.simulate.scenario import SimScenario, density_profile, parse_sim_scenario

PROFILE = density_profile()
PARAMS = PROFILE["parameters"]
# X as the scenarios measure it: one front page (twitter.com) and three secondary URLs
TARGET = PROFILE["sample"]["per_network_day"]["x_as_simulated"]
FAILURE_RULES = {"wc.control.unavailable"}
TIME = "%Y-%m-%d %H:%M:%S"


def _when(text: str) -> float:
    return datetime.strptime(text, TIME).replace(tzinfo=UTC).timestamp()


def _uid_time(uid: str) -> float:
    return (
        datetime.strptime(uid.split("_", 1)[0], "%Y%m%d%H%M%S.%f").replace(tzinfo=UTC).timestamp()
    )


# --------------------------------------------------------------------------------------
# measurements per network and day: the derived distribution


def _many_networks(networks: int = 60, days: int = 30) -> SimScenario:
    """Networks whose mean runs a day are the rank quantiles of the derived lognormal,
    each with enough probes that runs are never dropped, and no empty hour: their
    network-days should follow the profile's distribution."""
    median = PARAMS["runs_per_network_day_median"]
    sigma = PARAMS["runs_per_network_day_sigma"]
    tables = []
    for i in range(networks):
        z = NormalDist().inv_cdf((i + 0.5) / networks)
        tables.append(
            f'[[network]]\nasn = {64512 + i}\nname = "Net {i}"\n'
            f"runs_per_day = {median * math.exp(sigma * z):.5f}\n"
        )
    text = (
        f'country = "XA"\nstart = 2024-03-01\ndays = {days}\nprobes = {networks * 5}\n'
        'urls = ["https://twitter.com/", "https://x.com/", "https://t.co/",'
        ' "https://pbs.twimg.com/"]\n'
        '[density]\nsecondary_urls = ["https://x.com/", "https://t.co/", "https://pbs.twimg.com/"]\n'
        "[behaviour]\nstable_fraction = 1.0\nempty_hour_probability = 0.0\n" + "\n".join(tables)
    )
    return parse_sim_scenario(tomllib.loads(text), source="many.toml", name="many")


@pytest.fixture(scope="module")
def network_days() -> list[int]:
    """X's measurements on every (network, day), zeros included, sorted."""
    scenario = _many_networks()
    campaign = Campaign(scenario, seed=2)
    counts: Counter[tuple[str, str]] = Counter()
    for line in campaign.lines():
        obj = json.loads(line)
        counts[(obj["probe_asn"], obj["measurement_start_time"][:10])] += 1
    days = [f"2024-03-{d:02d}" for d in range(1, 31)]
    return sorted(counts.get((n.asn_string, d), 0) for n in scenario.networks for d in days)


def _quantile(values: list[int], q: float) -> float:
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


# (quantile, absolute tolerance, relative tolerance): the upper quantiles of 1,800
# network-days of a heavy tail move by a few measurements from seed to seed
QUANTILES = [
    ("p50", 0.0, 0.0),
    ("p75", 1.0, 0.0),
    ("p90", 1.0, 0.4),
    ("p95", 2.0, 0.4),
    ("p99", 5.0, 0.5),
]


@pytest.mark.parametrize(("key", "absolute", "relative"), QUANTILES, ids=[q[0] for q in QUANTILES])
def test_measurements_per_network_and_day_follow_the_derived_quantiles(
    network_days: list[int], key: str, absolute: float, relative: float
) -> None:
    observed = _quantile(network_days, int(key[1:]) / 100)
    expected = TARGET[key]
    assert abs(observed - expected) <= max(absolute, relative * expected), (key, observed, expected)


def test_many_networks_see_a_platform_rarely_and_a_few_see_it_often(
    network_days: list[int],
) -> None:
    n = len(network_days)
    zero = sum(v == 0 for v in network_days) / n
    few = sum(v <= 3 for v in network_days) / n
    assert abs(zero - TARGET["zero_share"]) <= 0.05
    assert abs(few - TARGET["at_most_3_share"]) <= 0.05
    assert network_days[-1] >= 50  # a few network-days see it tens to hundreds of times
    mean = statistics.fmean(network_days)
    assert 0.7 * TARGET["mean"] <= mean <= 1.3 * TARGET["mean"]


# --------------------------------------------------------------------------------------
# Pakistan 2024, OONI-like: noise, partial blocks, mixes, runs, late uploads


@dataclass(frozen=True, slots=True)
class Row:
    uid: str
    report_id: str
    test_start_time: str
    measurement_start_time: str
    asn: str
    url: str
    rule: str
    method: str
    accessible: bool | None


@dataclass
class Pakistan:
    rows: list[Row]
    truth: dict[str, Any]
    path: Path
    first_lines: list[str]
    by_rule: dict[str, str]  # one line per verdict rule id: every kind of measurement

    def acting(self, row: Row) -> dict[str, Any] | None:
        """The episode acting on this measurement, outages first (None: none)."""
        when = _when(row.measurement_start_time)
        episodes = sorted(self.truth["episodes"], key=lambda e: e["kind"] != "outage")
        for e in episodes:
            if row.asn not in e["networks"] or row.url not in e["affected_urls"]:
                continue
            start = _iso(e["start"])
            end = _iso(e["end"]) if e["end"] else math.inf
            restored = any(_iso(r["start"]) <= when < _iso(r["end"]) for r in e["restorations"])
            if start <= when < end and not restored:
                return e
        return None


def _iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def pakistan(tmp_path_factory: pytest.TempPathFactory) -> Pakistan:
    out = tmp_path_factory.mktemp("pk") / "pk.jsonl"
    result = simulate(resolve_sim_scenario("pakistan-2024-x"), out, seed=1)
    rows, first, by_rule = [], [], {}
    with out.open(encoding="utf-8") as handle:
        for line in handle:
            if len(first) < 50:
                first.append(line.rstrip("\n"))
            obj = json.loads(line)
            verdict = obj["test_keys"]["x_verdict"]
            by_rule.setdefault(verdict["rule_id"], line.rstrip("\n"))
            rows.append(
                Row(
                    obj["measurement_uid"], obj["report_id"], obj["test_start_time"],
                    obj["measurement_start_time"], obj["probe_asn"], obj["input"],
                    verdict["rule_id"], verdict["method"], obj["test_keys"]["accessible"],
                )
            )  # fmt: skip
    return Pakistan(rows, json.loads(result.truth.read_text()), out, first, by_rule)


def _failure_share(pk: Pakistan) -> float:
    return sum(r.rule in FAILURE_RULES for r in pk.rows) / len(pk.rows)


def _stray_share(pk: Pakistan) -> float:
    """Anomalies among the scored measurements no episode acts on."""
    clear = [r for r in pk.rows if r.rule not in FAILURE_RULES and pk.acting(r) is None]
    return sum(r.method != "none" for r in clear) / len(clear)


def _late_share(pk: Pakistan) -> float:
    late = [r for r in pk.rows if _uid_time(r.uid) - _when(r.measurement_start_time) > LATE_S]
    return len(late) / len(pk.rows)


def _single_url_runs(pk: Pakistan) -> float:
    """Runs (report ids) with one measurement of the scenario's URLs."""
    per_run = Counter(r.report_id for r in pk.rows)
    return sum(n == 1 for n in per_run.values()) / len(per_run)


def _busiest_network_x_per_day(pk: Pakistan) -> float:
    """X's measurements a day on PTCL, the busiest network: tens, not thousands."""
    x = {"https://x.com/", "https://twitter.com/", "https://t.co/", "https://pbs.twimg.com/"}
    days = Counter(
        r.measurement_start_time[:10] for r in pk.rows if r.asn == "AS17557" and r.url in x
    )
    return statistics.median(days.values())


# (what, measure, low, high): what OONI's data shows (docs/simulator.md)
REALISM: list[tuple[str, Callable[[Pakistan], float], float, float]] = [
    ("failures, share of every measurement (2-5%)", _failure_share, 0.02, 0.05),
    ("stray anomalies outside episodes (1-2%)", _stray_share, 0.01, 0.02),
    ("late uploads, share of measurements", _late_share, 0.0005, 0.02),
    ("runs with a single measurement of ours", _single_url_runs, 0.3, 0.8),
    ("X a day on the busiest network", _busiest_network_x_per_day, 10, 80),
]


@pytest.mark.parametrize(("measure", "low", "high"), [r[1:] for r in REALISM],
                         ids=[r[0] for r in REALISM])  # fmt: skip
def test_pakistan_looks_like_ooni_data(
    pakistan: Pakistan, measure: Callable[[Pakistan], float], low: float, high: float
) -> None:
    value = measure(pakistan)
    assert low <= value <= high, value


def test_blocks_are_partial_and_their_shares_are_the_truths(pakistan: Pakistan) -> None:
    """Per (episode, network): the share of measurements that show the block is the
    truth's (within 4.5 standard deviations), and the truth's lies in [0.6, 0.95]."""
    caught: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    for row in pakistan.rows:
        episode = pakistan.acting(row)
        if episode is None or episode["kind"] == "outage" or row.rule in FAILURE_RULES:
            continue
        key = (episode["label"], row.asn)
        total[key] += 1
        caught[key] += row.method != "none"
    checked = 0
    for episode in pakistan.truth["episodes"]:
        if episode["kind"] == "outage":
            assert set(episode["block_share"].values()) == {1.0}  # a blackout is total
            continue
        for asn, share in episode["block_share"].items():
            assert 0.6 <= share <= 0.95, (episode["label"], asn, share)
            n = total[(episode["label"], asn)]
            if n < 30:
                continue
            observed = caught[(episode["label"], asn)] / n
            sigma = math.sqrt(share * (1 - share) / n)
            assert abs(observed - share) <= 4.5 * sigma, (episode["label"], asn, observed, share)
            assert observed < 1.0  # some got through
            checked += 1
    assert checked >= 3


def test_blocks_mix_methods(pakistan: Pakistan) -> None:
    """Nayatel: DNS answers with another network's address, TCP timeouts and refusals, a
    few TLS resets; elsewhere mostly TLS resets, some TLS and TCP timeouts."""
    methods: dict[str, Counter[str]] = {}
    for row in pakistan.rows:
        episode = pakistan.acting(row)
        if episode is None or row.method in ("none", "undetermined"):
            continue
        methods.setdefault(episode["label"], Counter())[row.method] += 1
    block, nayatel = (e["label"] for e in pakistan.truth["episodes"][2:])
    assert methods[nayatel]["dns"] > max(methods[nayatel]["tcp_ip"], methods[nayatel]["tls"])
    assert methods[nayatel]["tcp_ip"] > 0
    assert methods[block]["tls"] > 0.8 * sum(methods[block].values())
    assert methods[block]["tcp_ip"] > 0


def test_one_report_id_per_run(pakistan: Pakistan) -> None:
    """A run is one report id: one network, one start, its measurements after it, each URL
    at most once; OONI's report id format; as many report ids as runs in the truth."""
    runs: dict[str, list[Row]] = {}
    for row in pakistan.rows:
        runs.setdefault(row.report_id, []).append(row)
    assert len(runs) == pakistan.truth["sessions"]
    urls = set(pakistan.truth["urls"])
    for report_id, rows in runs.items():
        assert len({(r.asn, r.test_start_time) for r in rows}) == 1
        assert len({r.url for r in rows}) == len(rows) <= len(urls)
        start = rows[0].test_start_time
        assert all(r.measurement_start_time >= start for r in rows)
        stamp = datetime.strptime(start, TIME).strftime("%Y%m%dT%H%M%SZ")
        assert re.fullmatch(
            rf"{stamp}_webconnectivity_PK_{rows[0].asn[2:]}_n1_[A-Za-z0-9]{{16}}", report_id
        )


def test_late_uploads_arrive_late_and_the_file_is_in_arrival_order(pakistan: Pakistan) -> None:
    """``measurement_uid`` carries the arrival (OONI's collector assigns it on arrival);
    ``measurement_start_time`` stays when the measurement was made. Some arrive days
    late; what a blacked-out network measured arrives after it is back."""
    arrivals = [_uid_time(r.uid) for r in pakistan.rows]
    assert arrivals == sorted(arrivals)
    delays = [
        a - _when(r.measurement_start_time) for a, r in zip(arrivals, pakistan.rows, strict=True)
    ]
    assert min(delays) > 0
    assert statistics.median(delays) < 60  # most arrive within seconds
    late = sum(d > LATE_S for d in delays)
    assert late == pakistan.truth["noise"]["late_uploads"] > 0
    assert max(delays) > 86400  # some more than a day late
    outage = pakistan.truth["episodes"][0]
    end = _iso(outage["end"])
    during = [
        (r, a)
        for r, a in zip(pakistan.rows, arrivals, strict=True)
        if r.asn in outage["networks"]
        and _iso(outage["start"]) <= _when(r.measurement_start_time) < end
    ]
    assert during
    assert all(a >= end for _, a in during)


def test_ooni_like_measurements_are_valid_ooni_format(pakistan: Pakistan) -> None:
    for line in pakistan.first_lines:
        obj = json.loads(line)
        assert measurement_to_json(measurement_from_json(obj)) == obj
        keys = list(obj)
        assert keys[keys.index("report_id") + 1] == "measurement_uid"  # where OONI has it
        assert "x_probe_id" not in obj  # OONI's data carries no probe identity
        assert re.fullmatch(
            r"\d{14}\.\d{6}_PK_webconnectivity_[0-9a-f]{16}", obj["measurement_uid"]
        )
        assert obj["annotations"]["simulation"] == "pakistan-2024-x"


def test_oonis_own_loader_reads_every_kind_of_measurement(pakistan: Pakistan) -> None:
    """OONI's ``oonidata`` loads one measurement of every verdict (blocked by each method,
    failed, stray, clean) as Web Connectivity, with its uid, report id and keys."""
    dataclient = pytest.importorskip("oonidata.dataclient")
    assert {"wc.ok.https", "wc.tls.reset", "wc.control.unavailable"} <= set(pakistan.by_rule)
    for rule, line in sorted(pakistan.by_rule.items()):
        obj = json.loads(line)
        loaded = dataclient.load_measurement(msmt=obj)
        assert type(loaded).__name__ == "WebConnectivity", rule
        assert loaded.measurement_uid == obj["measurement_uid"]
        assert loaded.report_id == obj["report_id"]
        for key in ("blocking", "accessible", "dns_consistency", "control_failure"):
            assert getattr(loaded.test_keys, key) == obj["test_keys"].get(key), (rule, key)


def test_ooni_like_campaigns_are_deterministic(tmp_path: Path) -> None:
    scenario = resolve_sim_scenario("pakistan-2024-x")
    runs = []
    for folder, seed in (("a", 4), ("b", 4), ("c", 5)):
        (tmp_path / folder).mkdir()
        out = tmp_path / folder / "pk.jsonl.gz"
        result = simulate(scenario, out, days=20, seed=seed)
        runs.append((out.read_bytes(), result.truth.read_text()))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]
