"""The campaign simulator: strict scenarios, deterministic output, a truth file, and
measurements whose classifier verdicts say exactly what the truth says."""

from __future__ import annotations

import json
import math
import random
import re
import time
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import blockproof.simulate.campaign as simulator
from blockproof.codec.jsonl import iter_json_objects
from blockproof.codec.ooni import (
    measurement_from_json,
    measurement_to_json,
    web_observations_from_test_keys,
)
from blockproof.core.webconnectivity import analyze
from blockproof.errors import ConfigError, InputError
from blockproof.lab.scenario import blockpage_body
from blockproof.simulate import (
    Campaign,
    SimScenarioError,
    load_sim_scenario,
    resolve_sim_scenario,
    shipped_sim_scenarios,
    simulate,
)
from blockproof.simulate.campaign import KNOWN_SITES, Interference, Template, truth_path
from blockproof.simulate.scenario import (
    FALSE_POSITIVE_KINDS,
    METHODS,
    density_profile,
    parse_sim_scenario,
)

BASE = """\
country = "PK"
start = 2024-02-01
days = 30
urls = ["https://x.com/", "https://www.wikipedia.org/"]

[[network]]
asn = "AS17557"
name = "PTCL"
share = 0.6

[[network]]
asn = 24499
name = "Telenor"
share = 0.4
mobile = true
"""

EPISODE = """
[[episode]]
platform = "x"
networks = "all"
start = 2024-02-10T00:00:00Z
end = 2024-02-12T00:00:00Z
method = "tls-reset"
"""


def _episode(**changes: str) -> str:
    """EPISODE with some lines replaced (key = TOML value) or added."""
    lines = EPISODE.strip().splitlines()
    for key, value in changes.items():
        lines = [line for line in lines if not line.startswith(f"{key} =")]
        if value:
            lines.append(f"{key} = {value}")
    return BASE + "\n" + "\n".join(lines) + "\n"


# (id, file content, key named in the error, words of the problem)
MALFORMED: list[tuple[str, str, str, str]] = [
    ("unknown top-level key", 'colour = "red"\n' + BASE, "colour", "unknown key"),
    ("unknown network key", BASE.replace("mobile = true", "mobile = true\nmcc = 410"),
     "network[1].mcc", "unknown key"),
    ("unknown episode key", _episode(sni='"x.com"'), "episode[0].sni", "unknown key"),
    ("unknown behaviour key", BASE + "[behaviour]\ninterval = 3\n", "behaviour.interval",
     "unknown key"),
    ("not TOML", BASE + "start = \n", "", "not valid TOML"),
    ("missing country", BASE.replace('country = "PK"\n', ""), "country", "is required"),
    ("lower-case country", BASE.replace('"PK"', '"pk"'), "country", "two-letter"),
    ("bad date string", BASE.replace("2024-02-01", '"2024-02-30"'), "start", "is not a date"),
    ("date-time without zone", _episode(start="2024-02-10T00:00:00"), "episode[0].start",
     "no time zone"),
    ("a time is not a date", BASE.replace("2024-02-01", "10:00:00"), "start",
     "got a time"),
    ("days out of range", BASE.replace("days = 30", "days = 0"), "days", "out of range"),
    ("wrong type", BASE.replace("days = 30", 'days = "30"'), "days", "expected an integer"),
    ("boolean for a number", BASE.replace("share = 0.6", "share = true"), "network[0].share",
     "got true/false"),
    ("bad AS number", BASE.replace('"AS17557"', '"ASX"'), "network[0].asn",
     "not an AS number"),
    ("duplicate network", BASE.replace("asn = 24499", "asn = 17557"), "network[1].asn",
     "listed twice"),
    ("no network", BASE.split("[[network]]")[0] + "network = []\n", "network",
     "at least one"),
    ("bad URL", BASE.replace('"https://x.com/"', '"ftp://x.com/"'), "urls[0]",
     "not an http:// or https:// URL"),
    ("duplicate URL", BASE.replace('"https://www.wikipedia.org/"', '"https://x.com/"'),
     "urls[1]", "listed twice"),
    ("unknown method", _episode(method='"tls-rst"'), "episode[0].method",
     "'tls-rst' is not one of dns-nxdomain"),
    ("unknown platform", _episode(platform='"myspace"'), "episode[0].platform",
     "'myspace' is not a platform"),
    ("platform not measured", _episode(platform='"youtube"'), "episode[0].platform",
     "no URL of the scenario belongs to 'youtube'"),
    ("episode after the window", _episode(start="2024-03-05T00:00:00Z", end=""),
     "episode[0].start", "outside the campaign window"),
    ("episode before the window", _episode(start="2024-01-01T00:00:00Z",
                                           end="2024-01-20T00:00:00Z"),
     "episode[0].end", "ends before the campaign window starts"),
    ("end before start", _episode(end="2024-02-09T00:00:00Z"), "episode[0].end",
     "is not after start"),
    ("unknown network in episode", _episode(networks='["AS9541"]'), "episode[0].networks[0]",
     "not one of the scenario's networks"),
    ("no such selector", _episode(networks='"wired"'), "episode[0].networks",
     "not all, mobile, fixed"),
    ("outage with a block method", _episode(platform='"all"'), "episode[0].method",
     "cannot make an outage"),
    ("block with an outage method", _episode(method='"blackout"'), "episode[0].method",
     "is an outage method"),
    ("plain-HTTP method without http URL", _episode(method='"http-blockpage"'),
     "episode[0].method", "only acts on plain-HTTP URLs"),
    ("answer for a method without one", _episode(answer='"10.0.0.1"'), "episode[0].answer",
     "forges no DNS answer"),
    ("public address as a bogon", _episode(method='"dns-bogon"', answer='"8.8.8.8"'),
     "episode[0].answer", "public address, not a bogon"),
    ("blockpage server needs an address", _episode(method='"dns-blockpage-ip"'),
     "episode[0].answer", "needs the address"),
    ("unknown blockpage", _episode(method='"dns-blockpage-ip"', answer='"203.82.48.83"',
                                   blockpage='"nope"'),
     "episode[0].blockpage", "unknown blockpage 'nope'"),
    ("restoration outside its episode",
     _episode(restorations="[{ start = 2024-02-11T00:00:00Z, end = 2024-02-13T00:00:00Z }]"),
     "episode[0].restorations[0].end", "inside its episode"),
    ("overlapping restorations",
     _episode(restorations="[{ start = 2024-02-10T06:00:00Z, end = 2024-02-10T09:00:00Z },"
                           " { start = 2024-02-10T08:00:00Z, end = 2024-02-10T10:00:00Z }]"),
     "episode[0].restorations[1].start", "must not overlap"),
    ("restoration without end",
     _episode(restorations="[{ start = 2024-02-10T06:00:00Z }]"),
     "episode[0].restorations[0].end", "is required"),
    ("overlapping episodes", _episode() + EPISODE.replace("2024-02-10T", "2024-02-11T"),
     "episode[1]", "overlaps episode[0]"),
    ("bad false-positive kind", BASE + '[baseline]\nfalse_positive_kinds = ["flaky"]\n',
     "baseline.false_positive_kinds[0]", "'flaky' is not one of"),
    ("probability out of range", BASE + "[behaviour]\nskip_probability = 1.5\n",
     "behaviour.skip_probability", "out of range"),
    # OONI-like campaigns: [density], runs per network, mixes and partial blocks
    ("runs_per_day without [density]", BASE.replace("share = 0.6", "share = 0.6\nruns_per_day = 3"),
     "network[0].runs_per_day", "needs a [density] table"),
    ("unknown density key", BASE + "[density]\nprobes_per_day = 3\n",
     "density.probes_per_day", "unknown key"),
    ("unknown density profile", BASE + '[density]\nprofile = "ooni-2019"\n',
     "density.profile", "is not a shipped profile"),
    ("secondary URL not measured", BASE + '[density]\nsecondary_urls = ["https://t.co/"]\n',
     "density.secondary_urls[0]", "is not one of the scenario's urls"),
    ("block share out of range", BASE + "[density]\nblock_share = [0.5, 1.2]\n",
     "density.block_share", "shares must satisfy"),
    ("density with session intervals", BASE + "[density]\n[behaviour]\nmean_interval_hours = 3\n",
     "behaviour.mean_interval_hours", "not used with [density]"),
    ("negative runs per day", BASE + "[density]\nruns_per_day = -1\n", "density.runs_per_day",
     "out of range"),
    ("mix naming the main method", _episode(mix="{ tls-reset = 0.1 }"),
     "episode[0].mix.tls-reset", "is the episode's main method"),
    ("mix of an unknown method", _episode(mix="{ tls-rst = 0.1 }"), "episode[0].mix.tls-rst",
     "'tls-rst' is not one of"),
    ("mix leaving nothing", _episode(mix="{ tcp-refused = 0.6, tls-eof = 0.4 }"),
     "episode[0].mix", "add up to 1 or more"),
    ("mix forging an answer", _episode(mix="{ dns-bogon = 0.1 }"), "episode[0].mix.dns-bogon",
     "only an episode's main method"),
    ("mix share above 1", _episode(mix="{ tcp-refused = 1.5 }"), "episode[0].mix.tcp-refused",
     "between 0 and 1"),
    ("mix with an outage method", _episode(mix="{ blackout = 0.1 }"),
     "episode[0].mix.blackout", "is an outage method"),
    ("mix acting on no URL", _episode(mix="{ http-reset = 0.1 }"),
     "episode[0].mix.http-reset", "acts on no URL"),
    ("share of zero", _episode(share="0"), "episode[0].share", "shares must satisfy"),
    ("share range backwards", _episode(share="[0.9, 0.6]"), "episode[0].share",
     "shares must satisfy"),
    ("share in words", _episode(share='"most"'), "episode[0].share",
     "expected a number or a list"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "key", "words"),
    [pytest.param(c, k, w, id=i) for i, c, k, w in MALFORMED],
)
def test_malformed_scenarios_are_refused_naming_file_key_and_problem(
    tmp_path: Path, content: str, key: str, words: str
) -> None:
    path = tmp_path / "my.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SimScenarioError) as info:
        load_sim_scenario(path)
    error = info.value
    assert isinstance(error, ConfigError)  # the CLI prints it and exits 2
    assert error.source == str(path)
    assert error.key == key
    assert words in error.problem
    assert str(error).startswith(f"{path}: {key + ': ' if key else ''}")


def test_valid_scenario_and_defaults(tmp_path: Path) -> None:
    text = _episode(
        networks='"mobile"',
        restorations="[{ start = 2024-02-11T01:00:00Z, end = 2024-02-11T03:00:00Z }]",
    )
    scenario = parse_sim_scenario(tomllib.loads(text), source="s.toml", name="s")
    assert scenario.name == "s"
    assert scenario.end == datetime(2024, 3, 2, tzinfo=UTC)
    (episode,) = scenario.episodes
    assert episode.networks == (24499,)
    assert episode.kind == "platform_block"
    assert episode.active(datetime(2024, 2, 10, 12, tzinfo=UTC))
    assert not episode.active(datetime(2024, 2, 11, 2, tzinfo=UTC))  # restored
    assert not episode.active(datetime(2024, 2, 12, tzinfo=UTC))  # end is exclusive
    missing = tmp_path / "nope.toml"
    with pytest.raises(SimScenarioError, match="no such file"):
        load_sim_scenario(missing)
    with pytest.raises(SimScenarioError, match="no shipped scenario of that name"):
        resolve_sim_scenario("no-such-scenario")


def test_density_scenario_defaults_come_from_the_profile() -> None:
    text = _episode(mix="{ tcp-refused = 0.1, tls-timeout = 0.05 }", share="[0.7, 0.8]")
    text = text.replace("share = 0.6", "share = 0.6\nruns_per_day = 12.5")
    text += (
        '[density]\nsecondary_urls = ["https://www.wikipedia.org/"]\n'
        "late_upload_probability = 0.1\n"
    )
    scenario = parse_sim_scenario(tomllib.loads(text), source="s.toml", name="s")
    assert scenario.density is not None
    profile = density_profile()["parameters"]
    params = scenario.density.parameters()
    assert params["late_upload_probability"] == 0.1  # given
    assert params["flaky_run_probability"] == profile["flaky_run_probability"]  # derived
    assert scenario.false_positive_rate == profile["stray_anomaly_rate"]
    assert scenario.density.probe_ids is False
    assert [n.runs_per_day for n in scenario.networks] == [12.5, None]
    (episode,) = scenario.episodes
    assert episode.methods == (("tls-reset", 0.85), ("tcp-refused", 0.1), ("tls-timeout", 0.05))
    assert episode.share == (0.7, 0.8)
    clean = parse_sim_scenario(tomllib.loads(BASE), source="b.toml", name="b")
    assert clean.density is None
    assert clean.false_positive_rate == 0.005


def test_shipped_scenarios_load_by_name_and_path() -> None:
    names = {p.stem for p in shipped_sim_scenarios()}
    assert {"pakistan-2024-x", "test-block", "test-outage"} <= names
    for path in shipped_sim_scenarios():
        assert resolve_sim_scenario(path.stem) == load_sim_scenario(path)
    pk = resolve_sim_scenario("pakistan-2024-x.toml")
    assert pk.country == "PK"
    assert {n.asn for n in pk.networks} == {17557, 59257, 24499, 45669, 9541, 23674, 136384}
    assert {n.asn for n in pk.networks if n.mobile} == {59257, 24499, 45669}
    methods = {e.method for e in pk.episodes}
    assert methods == {"blackout", "tls-reset", "dns-blockpage-ip"}
    block = [e for e in pk.episodes if e.start == datetime(2024, 2, 17, 17, tzinfo=UTC)]
    assert len(block) == 2
    assert all(e.end is None and e.restorations for e in block)
    assert sorted(a for e in block for a in e.networks) == sorted(n.asn for n in pk.networks)


# --------------------------------------------------------------------------------------
# every method produces the verdict it promises


METHOD_URLS = [
    (method, url)
    for method, info in sorted(METHODS.items())
    for url in ("https://x.com/", "http://x.com/", "https://www.youtube.com/",
                "https://news.example.net/")
    if (info.https if url.startswith("https:") else info.http)
]  # fmt: skip


@pytest.mark.parametrize(("method", "url"), METHOD_URLS)
def test_every_method_gives_its_verdict(method: str, url: str) -> None:
    info = METHODS[method]
    campaign = Campaign(resolve_sim_scenario("test-block"), probes=1, days=1)
    answer = info.answer or ("203.82.48.83" if info.answer == "" else "")
    interference = Interference(
        method=method, everything=info.outage and not info.block, answer=answer,
        answer_asn=23674 if answer and method != "dns-bogon" else 0,
        blockpage=info.blockpage or "",
    )  # fmt: skip
    template = campaign.template(url, interference)  # raises SimulationError on a mismatch
    assert template.rule_id in info.rule_ids
    assert template.method == info.verdict_method
    clear = campaign.template(url, None)
    assert clear.method == "none"
    for kind in FALSE_POSITIVE_KINDS:
        assert campaign.template(url, Interference(method=f"fp-{kind}")).method != "none"


@pytest.mark.parametrize("kind", sorted(simulator.FAILURE_KINDS))
@pytest.mark.parametrize("url", ["https://x.com/", "http://x.com/", "https://news.example.net/"])
def test_failures_are_failures_as_the_probe_writes_them(kind: str, url: str) -> None:
    """OONI-like failures: the probe's connectivity and its control request fail; the
    classifier cannot judge (outcome failure) and the probe claims nothing."""
    campaign = Campaign(resolve_sim_scenario("test-block"), probes=1, days=1)
    template = campaign.template(url, Interference(method=kind))
    assert template.rule_id == "wc.control.unavailable"
    tk = json.loads(_fill(template))["test_keys"]
    assert tk["control"] is None
    assert tk["control_failure"] == "generic_timeout_error"
    assert (tk["blocking"], tk["accessible"]) == (None, None)
    assert tk["x_control_request"]["http_request"] == url


def test_blockpages_are_served_and_never_pass_for_the_page() -> None:
    """A real (Nayatel) blockpage body, with a size far from every page's."""
    campaign = Campaign(resolve_sim_scenario("test-block"), probes=1, days=1)
    injected = Interference(method="http-blockpage", blockpage="isp_pk_nayatel_block_optin")
    for host in KNOWN_SITES:
        template = campaign.template(f"http://{host}/", injected)
        assert template.rule_id == "wc.http.diff"
    line = _fill(campaign.template("http://x.com/", injected))
    (request,) = json.loads(line)["test_keys"]["requests"]
    body = blockpage_body("isp_pk_nayatel_block_optin").decode()
    assert request["response"]["body"] == body
    assert "As per your subscription of Nayatel Safeweb service" in body


@pytest.mark.parametrize(
    ("url", "ports", "control_ports"),
    [
        ("https://x.com/", {443}, [443, 443]),
        ("http://x.com/", {80, 443}, [443, 80, 443, 80]),
        ("http://x.com:8080/", {8080}, [8080, 8080]),
        ("https://x.com:8443/", {8443}, [8443, 8443]),
    ],
)
def test_the_virtual_probe_dials_the_ports_the_probe_dials(
    url: str, ports: set[int], control_ports: list[int]
) -> None:
    """An explicit port is the only one dialed (no TLS validation on :443), as in the
    experiment: both follow core.wcplan."""
    campaign = Campaign(resolve_sim_scenario("test-block"), probes=1, days=1)
    tk = json.loads(_fill(campaign.template(url, None)))["test_keys"]
    assert {c["port"] for c in tk["tcp_connect"]} == ports
    sent = tk["x_control_request"]["tcp_connect"]
    assert [int(e.rsplit(":", 1)[1]) for e in sent] == control_ports
    assert set(tk["control"]["tcp_connect"]) == set(sent)


def test_fingerprint_matcher_confirms_the_nayatel_artefacts() -> None:
    """The DNS answer (203.82.48.83) and the blockpage body are known OONI fingerprints."""
    pytest.importorskip("blockproof.verdict.fingerprints")
    from blockproof.verdict.judge import judge_web

    campaign = Campaign(resolve_sim_scenario("pakistan-2024-x"), probes=1, days=1)
    dns = Interference(method="dns-blockpage-ip", answer="203.82.48.83", answer_asn=23674,
                       blockpage="dns_isp_pk_nayatel_safeweb")  # fmt: skip
    http = Interference(method="http-blockpage", blockpage="isp_pk_nayatel_block_optin")
    for url, interference, rule in (
        ("https://x.com/", dns, "fp.dns"),
        ("http://x.com/", http, "fp.http"),
    ):
        obj = json.loads(_fill(campaign.template(url, interference)))
        judgement = judge_web(web_observations_from_test_keys(url, obj["test_keys"]))
        assert (judgement.outcome, judgement.rule_id) == ("confirmed", rule)


def _fill(template: Template) -> str:
    return template.example_line()


# --------------------------------------------------------------------------------------
# campaigns: determinism, the truth file, the envelope


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    scenario = resolve_sim_scenario("test-block")
    runs = []
    for folder, seed in (("a", 7), ("b", 7), ("c", 8)):
        (tmp_path / folder).mkdir()
        out = tmp_path / folder / "campaign.jsonl.gz"
        result = simulate(scenario, out, probes=12, days=20, seed=seed)
        assert result.measurements > 0
        runs.append((out.read_bytes(), result.truth.read_text()))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]


def test_truth_file(tmp_path: Path) -> None:
    assert truth_path("x/out.jsonl.gz") == Path("x/out.truth.json")
    assert truth_path("out.jsonl") == Path("out.truth.json")
    out = tmp_path / "pk.jsonl.gz"
    result = simulate(resolve_sim_scenario("pakistan-2024-x"), out, probes=4, days=90, seed=1)
    assert result.truth == tmp_path / "pk.truth.json"
    truth = json.loads(result.truth.read_text())
    assert truth["scenario"] == "pakistan-2024-x"
    assert truth["country"] == "PK"
    assert truth["window"] == {"start": "2024-01-25T00:00:00Z", "end": "2024-04-24T00:00:00Z"}
    assert truth["measurements"] == result.measurements == sum(1 for _ in iter_json_objects(out))
    outage, blip, block, nayatel = truth["episodes"]
    assert outage == {
        "label": "Election day: mobile internet suspended nationwide",
        "platform": "all", "kind": "outage", "networks": ["AS59257", "AS24499", "AS45669"],
        "start": "2024-02-08T03:00:00Z", "end": "2024-02-08T19:00:00Z", "method": "blackout",
        "verdict_method": "dns", "rule_ids": ["wc.dns.timeout"], "restorations": [],
        "affected_urls": truth["urls"],
        "methods": [{"method": "blackout", "share": 1.0, "verdict_method": "dns",
                     "rule_ids": ["wc.dns.timeout"]}],
        "block_share": {"AS59257": 1.0, "AS24499": 1.0, "AS45669": 1.0},  # a blackout
    }  # fmt: skip
    assert blip["kind"] == "platform_block"
    assert blip["end"] == "2024-02-10T17:00:00Z"
    for episode in (block, nayatel):
        assert episode["platform"] == "x"
        assert episode["start"] == "2024-02-17T17:00:00Z"
        assert episode["end"] is None  # lasts beyond the window
        assert episode["restorations"] == [
            {"start": "2024-02-18T09:00:00Z", "end": "2024-02-18T13:00:00Z"}
        ]
        assert episode["affected_urls"] == [
            "https://x.com/", "https://twitter.com/", "https://t.co/", "https://pbs.twimg.com/"
        ]  # fmt: skip
    assert (block["method"], nayatel["method"], nayatel["networks"]) == (
        "tls-reset", "dns-blockpage-ip", ["AS23674"],
    )  # fmt: skip
    # Nayatel's mix: DNS answers with another network's address, TCP timeouts, TCP
    # refused, a few TLS resets; shares add up to 1
    assert [(m["method"], m["share"]) for m in nayatel["methods"]] == [
        ("dns-blockpage-ip", 0.7), ("tcp-blackhole", 0.15), ("tcp-refused", 0.1),
        ("tls-reset", 0.05),
    ]  # fmt: skip
    for episode in (blip, block, nayatel):  # partial blocks, drawn per network
        assert set(episode["block_share"]) == set(episode["networks"])
        assert all(0.6 <= s <= 0.95 for s in episode["block_share"].values())
    assert truth["density"]["profile"] == "ooni-fastpath-2024-01-01"
    assert {n["asn"]: n["runs_per_day"] for n in truth["networks"]}["AS17557"] == 124.35
    assert set(truth["noise"]) == {"leaked", "stray_anomalies", "failures", "late_uploads"}
    # a shorter window (--days) keeps only the episodes it can see
    short = Campaign(resolve_sim_scenario("pakistan-2024-x"), probes=3, days=15).truth()
    assert [e["label"] for e in short["episodes"]] == [outage["label"]]
    assert short["window"]["end"] == "2024-02-09T00:00:00Z"


def test_envelope_round_trips_and_identifies_probes() -> None:
    campaign = Campaign(resolve_sim_scenario("test-outage"), probes=10, days=10, seed=3)
    keys_by_network: dict[str, set[str]] = {}
    reports: Counter[str] = Counter()
    names = {n.asn_string: n.name for n in campaign.scenario.networks}
    for line in campaign.lines():
        obj = json.loads(line)
        measurement = measurement_from_json(obj)
        assert measurement_to_json(measurement) == obj
        assert measurement.test_name == "web_connectivity"
        assert measurement.test_version == "0.5.28"
        assert measurement.software_name == "blockproof"
        assert measurement.probe_ip == "127.0.0.1"
        assert measurement.probe_cc == "XA"
        assert measurement.probe_network_name == names[measurement.probe_asn]
        assert measurement.input in campaign.scenario.urls
        assert measurement.annotations["simulation"] == "test-outage"
        assert re.fullmatch(
            rf"\d{{8}}T\d{{6}}Z_webconnectivity_XA_{measurement.probe_asn[2:]}_n1_[A-Za-z0-9]{{16}}",
            measurement.report_id,
        )
        assert measurement.report_id[:16] == datetime.strptime(
            measurement.test_start_time, "%Y-%m-%d %H:%M:%S"
        ).strftime("%Y%m%dT%H%M%SZ")
        assert measurement.measurement_start_time >= measurement.test_start_time
        key = obj["x_probe_id"]
        assert re.fullmatch(r"[0-9a-f]{16}", key)
        keys_by_network.setdefault(measurement.probe_asn, set()).add(key)
        reports[measurement.report_id] += 1
        tk = measurement.test_keys
        assert {"control", "control_failure", "x_control_request", "x_verdict"} <= set(tk)
        assert tk["queries"][0]["tags"] == ["classic", "depth=0"]
        assert tk["queries"][0]["transaction_id"] == 10001
    all_keys = [k for keys in keys_by_network.values() for k in keys]
    assert len(all_keys) == len(set(all_keys)) <= 10  # a probe stays on its network
    assert set(reports.values()) == {len(campaign.scenario.urls)}  # one report per session


# --------------------------------------------------------------------------------------
# the verdicts inside the data are the truth


@dataclass(frozen=True)
class _TruthEpisode:
    raw: dict[str, Any]
    start: datetime
    end: datetime | None
    restorations: tuple[tuple[datetime, datetime], ...]

    def state(self, when: datetime) -> str | None:
        """ "active", "restored" or None (outside the episode)."""
        if when < self.start or (self.end is not None and when >= self.end):
            return None
        if any(a <= when < b for a, b in self.restorations):
            return "restored"
        return "active"


def _iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _episodes(truth: dict[str, Any]) -> list[_TruthEpisode]:
    out = []
    for raw in truth["episodes"]:
        restorations = tuple((_iso(r["start"]), _iso(r["end"])) for r in raw["restorations"])
        end = _iso(raw["end"]) if raw["end"] else None
        out.append(_TruthEpisode(raw, _iso(raw["start"]), end, restorations))
    out.sort(key=lambda e: e.raw["kind"] != "outage")  # an outage wins over a block
    return out


@dataclass
class _Tally:
    affected: Counter[str]  # measurements showing the episode's interference, by label
    restored: Counter[str]
    clear: int  # measurements no episode acts on
    clear_fp: int  # of those: stray anomalies
    clear_failed: int  # of those: failures ([density])
    fp_rules: Counter[str]
    outage_urls: set[str | None]
    caught: Counter[tuple[str, str]]  # (label, ASN): showing the interference
    leaked: Counter[tuple[str, str]]  # (label, ASN): got through (a partial block)
    methods: Counter[tuple[str, str]]  # (label, verdict method)
    failed: int  # every failure ([density]), inside episodes or not

    @property
    def clear_scored(self) -> int:
        return self.clear - self.clear_failed


FAILURE_RULES = {"wc.control.unavailable"}


def _check_against_truth(objects: Iterable[dict[str, Any]], truth: dict[str, Any]) -> _Tally:
    """Every measurement's verdict is one the truth allows, and what is written is what the
    classifier says of it. Inside an episode: one of its methods' rules, or (a partial
    block, ``block_share`` < 1) a clean measurement, or (``[density]``) a failure;
    outside: clean, a stray anomaly of the baseline's kinds, or a failure."""
    episodes = _episodes(truth)
    failures = FAILURE_RULES if "density" in truth else set()
    tally = _Tally(Counter(), Counter(), 0, 0, 0, Counter(), set(), Counter(), Counter(),
                   Counter(), 0)  # fmt: skip
    fp_rules = {"wc.tcp.timeout", "wc.tls.timeout", "wc.dns.timeout", "wc.dns.inconsistent"}
    rng = random.Random(0)
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        url, asn = obj["input"], obj["probe_asn"]
        tk = obj["test_keys"]
        verdict = tk["x_verdict"]
        rule = verdict["rule_id"]
        when = datetime.strptime(obj["measurement_start_time"], "%Y-%m-%d %H:%M:%S")
        when = when.replace(tzinfo=UTC)
        acting = None
        for episode in episodes:
            if asn in episode.raw["networks"] and url in episode.raw["affected_urls"]:
                state = episode.state(when)
                if state == "restored":
                    tally.restored[episode.raw["label"]] += 1
                if state == "active":
                    acting = episode
                    break
        if rule in failures:
            tally.failed += 1
            assert tk["control_failure"], (url, verdict)
            assert tk["accessible"] is None, (url, verdict)
        if acting is not None:
            label = acting.raw["label"]
            methods = acting.raw["methods"]
            allowed = {r for m in methods for r in m["rule_ids"]}
            if rule in allowed:
                tally.affected[label] += 1
                tally.caught[(label, asn)] += 1
                tally.methods[(label, verdict["method"])] += 1
                assert verdict["method"] in {m["verdict_method"] for m in methods}, verdict
                assert tk["accessible"] is not True
                if acting.raw["kind"] == "outage":
                    tally.outage_urls.add(url)
            elif rule not in failures:  # got through: the censor caught only a share
                assert acting.raw["block_share"][asn] < 1, (label, url, asn, when, verdict)
                assert verdict["method"] == "none", (label, url, verdict)
                assert tk["accessible"] is True
                tally.leaked[(label, asn)] += 1
        else:
            tally.clear += 1
            if rule in failures:
                tally.clear_failed += 1
            elif verdict["method"] != "none":
                tally.clear_fp += 1
                tally.fp_rules[rule] += 1
                assert rule in fp_rules, (url, asn, when, verdict)
            else:
                assert tk["accessible"] is True
                assert tk["blocking"] is False
        # what is written is what the classifier says of what is written
        key = (url, rule)
        if key not in seen or rng.random() < 0.01:
            seen.add(key)
            again = analyze(web_observations_from_test_keys(url, tk))
            assert again.verdict is not None
            assert again.verdict.rule_id == rule
            assert str(again.verdict.method) == verdict["method"]
            assert again.x_blocking_flags == tk["x_blocking_flags"]
            if rule in failures:  # no control: the probe claims nothing (null, null)
                assert (tk["blocking"], tk["accessible"]) == (None, None)
                continue
            assert again.blocking == tk["blocking"]
            assert again.accessible == tk["accessible"]
    return tally


def _assert_rate(observed: int, total: int, rate: float) -> None:
    """``observed`` out of ``total`` is within 4.5 standard deviations of ``rate``."""
    assert total > 0
    sigma = math.sqrt(rate * (1 - rate) / total)
    assert abs(observed / total - rate) <= 4.5 * sigma + 1e-9, (observed, total, rate)


def test_pakistan_verdicts_match_the_truth() -> None:
    campaign = Campaign(resolve_sim_scenario("pakistan-2024-x"), probes=50, days=26, seed=11)
    tally = _check_against_truth(map(json.loads, campaign.lines()), campaign.truth())
    truth = campaign.truth()
    labels = [e["label"] for e in truth["episodes"]]
    assert all(tally.affected[label] > 0 for label in labels), tally.affected
    assert tally.restored[labels[2]] > 0  # restored on 18 Feb: accessible again
    # the blackout fails every URL measured there; OONI-like runs measure the secondary
    # URLs (x.com, t.co, pbs.twimg.com, wikipedia) in about 1% of runs, so the 16 hours
    # on three networks see the front pages, not necessarily every URL
    front = set(truth["urls"]) - set(truth["density"]["secondary_urls"])
    assert front <= tally.outage_urls <= set(truth["urls"])
    # partial blocks: some measurements got through, on the networks where they can
    assert sum(tally.leaked.values()) > 0
    _assert_rate(tally.clear_fp, tally.clear_scored, campaign.scenario.false_positive_rate)


@pytest.mark.parametrize("name", ["test-block", "test-outage"])
def test_test_scenarios_verdicts_match_the_truth(tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.jsonl.gz"
    result = simulate(resolve_sim_scenario(name), out, probes=16, days=90, seed=5)
    truth = json.loads(result.truth.read_text())
    tally = _check_against_truth(iter_json_objects(out), truth)
    (episode,) = truth["episodes"]
    assert tally.affected[episode["label"]] >= 8
    if name == "test-block":
        assert tally.restored[episode["label"]] > 0
    else:
        assert tally.outage_urls == set(truth["urls"])
    _assert_rate(tally.clear_fp, tally.clear, truth["false_positive_rate"])


def test_false_positive_rate_is_the_configured_one(tmp_path: Path) -> None:
    text = BASE + (
        "[baseline]\nfalse_positive_rate = 0.08\n"
        'false_positive_kinds = ["tcp-timeout", "dns-inconsistent"]\n'
    )
    path = tmp_path / "flaky.toml"
    path.write_text(text, encoding="utf-8")
    campaign = Campaign(load_sim_scenario(path), probes=30, seed=2)
    tally = _check_against_truth(map(json.loads, campaign.lines()), campaign.truth())
    _assert_rate(tally.clear_fp, tally.clear, 0.08)
    assert set(tally.fp_rules) == {"wc.tcp.timeout", "wc.dns.inconsistent"}


def test_probe_behaviour_churn_skips_and_empty_hours(tmp_path: Path) -> None:
    text = BASE + (
        "[behaviour]\nmean_interval_hours = 2\nskip_probability = 0.5\nstable_fraction = 0\n"
        "mean_lifetime_days = 5\nempty_hour_probability = 0.05\n"
    )
    path = tmp_path / "churn.toml"
    path.write_text(text, encoding="utf-8")
    campaign = Campaign(load_sim_scenario(path), probes=40, seed=4)
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    session_hours: set[str] = set()
    for line in campaign.lines():
        obj = json.loads(line)
        key, when = obj["x_probe_id"], obj["test_start_time"]
        first.setdefault(key, when)
        last[key] = when
        session_hours.add(when[:13])
    spans = sorted(
        (datetime.fromisoformat(last[k]) - datetime.fromisoformat(first[k])).days for k in first
    )
    assert len(first) <= 40
    assert spans[len(spans) // 2] < 15  # probes come and go (mean lifetime 5 days)
    assert max(first.values()) > "2024-02-15"  # some join late
    assert min(last.values()) < "2024-02-15"  # some leave early
    empty = {
        datetime.fromtimestamp(campaign.window_start.timestamp() + h * 3600, UTC).strftime(
            "%Y-%m-%d %H"
        )
        for h in campaign.empty_hours
    }
    assert empty
    assert not empty & session_hours  # no session starts in an empty hour
    expected_sessions = 40 * 30 * 24 / 2 * 0.5  # upper bound: all probes, all the time
    assert campaign.sessions < expected_sessions


def test_bad_probe_count_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--probes 0"):
        Campaign(resolve_sim_scenario("test-block"), probes=0)


@pytest.mark.bench
def test_bench_200_probes_90_days(tmp_path: Path) -> None:
    """`pytest -m bench`: the pipeline tests' size, well under a minute, >= 5000/s."""
    started = time.perf_counter()
    result = simulate(resolve_sim_scenario("test-block"), tmp_path / "b.jsonl.gz", probes=200)
    elapsed = time.perf_counter() - started
    print(f"{result.measurements} measurements, {result.bytes_written} bytes, {elapsed:.1f} s")
    assert elapsed < 60
    assert result.per_second >= 5000
