"""The throttling experiment inside the lab: the real probe's legs through the censor's wire.

x-media-throttled caps X's media hosts at 150 kbit/s by SNI and resets its web front
ends; slow-link caps every flow at 150 kbit/s. The experiment must report the first as
throttling, with the measured rate within 20 % of the cap, and must not report the
second as throttling.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from blockproof.errors import InputError
from blockproof.experiments.throttling import ThrottlingResult, measure_throttling
from blockproof.experiments.web_connectivity import ProbeContext
from blockproof.lab import Lab, load_scenario
from blockproof.lab.check import resolve_scenario_path
from blockproof.lab.lab import LAB_TIMEOUTS

pytestmark = pytest.mark.lab

CAP_KBPS = 150.0
SECONDS = 2.0  # per leg: enough for a steady rate after the 0.5 s warm-up


@asynccontextmanager
async def lab_context(name: str) -> AsyncIterator[tuple[Lab, ProbeContext]]:
    async with Lab(load_scenario(resolve_scenario_path(name))) as lab:
        ctx = ProbeContext(
            network=lab.probe_network, control_url=lab.control_url,
            resolver=lab.resolver_address, ca_file=lab.ca_file, timeouts=LAB_TIMEOUTS,
            asn_of=lab.asn_of, probe_cc=lab.probe_cc, probe_asn=lab.probe_asn,
        )  # fmt: skip
        yield lab, ctx


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


def describe(result: ThrottlingResult) -> str:
    return json.dumps(result.test_keys()["x_throttling"], indent=1)[:3000]


def test_media_throttled_by_sni_web_reset_static_untouched() -> None:
    results: dict[str, ThrottlingResult] = {}
    elapsed: dict[str, float] = {}

    async def body() -> None:
        async with lab_context("x-media-throttled") as (lab, ctx):
            t = time.monotonic()
            results["pbs"] = await measure_throttling(
                ctx, "https://pbs.twimg.com/", seconds=SECONDS, control_network=lab.control_network
            )
            elapsed["pbs"] = time.monotonic() - t
            t = time.monotonic()
            results["abs"], results["x"] = await asyncio.gather(
                measure_throttling(ctx, "https://abs.twimg.com/", seconds=SECONDS),
                measure_throttling(ctx, "https://x.com/", seconds=SECONDS),
            )
            elapsed["abs+x"] = time.monotonic() - t

    run(body)

    pbs = results["pbs"]
    assert pbs.verdict == "throttled", describe(pbs)
    assert pbs.decision.rule == "throttling.confirmed"  # the control got it at full speed
    assert pbs.target_kbps is not None
    assert pbs.innocuous_kbps is not None
    assert pbs.target_kbps == pytest.approx(CAP_KBPS, rel=0.2), describe(pbs)
    assert pbs.innocuous_kbps > 10 * CAP_KBPS
    assert pbs.ratio is not None
    assert pbs.ratio >= 10
    assert pbs.address == "151.101.36.159"
    assert pbs.target.tls_verify
    assert not pbs.innocuous.tls_verify
    assert pbs.target.ended == "time"
    assert pbs.target.status == 200
    assert len(pbs.target.samples) >= 6

    not_throttled = results["abs"]
    assert not_throttled.verdict == "not_throttled", describe(not_throttled)
    assert not_throttled.ratio is not None
    assert 0.5 < not_throttled.ratio < 1.5

    # The web front end is reset on SNI: that is blocking (web_connectivity's business),
    # while the same address answers the innocuous SNI.
    web = results["x"]
    assert web.verdict == "inconclusive"
    assert web.decision.rule == "throttling.target.failed"
    assert web.target.failure == "connection_reset"
    assert web.innocuous.failure is None
    assert web.innocuous.status == 200

    assert elapsed["pbs"] < 3 * SECONDS + 3, elapsed
    assert elapsed["abs+x"] < 2 * SECONDS + 3, elapsed
    print(
        f"\nthrottled: target {pbs.target_kbps} kbit/s, innocuous {pbs.innocuous_kbps} kbit/s, "
        f"control {pbs.decision.control_kbps} kbit/s, ratio {pbs.ratio}; "
        f"not throttled: {not_throttled.target_kbps} / {not_throttled.innocuous_kbps} kbit/s; "
        f"times {elapsed}"
    )


def test_a_generally_slow_link_is_not_throttling() -> None:
    results: list[ThrottlingResult] = []

    async def body() -> None:
        async with lab_context("slow-link") as (_lab, ctx):
            results.append(await measure_throttling(ctx, "https://pbs.twimg.com/", seconds=SECONDS))

    run(body)
    result = results[0]
    assert result.verdict != "throttled", describe(result)
    assert result.verdict == "slow_network", describe(result)
    assert result.target_kbps == pytest.approx(CAP_KBPS, rel=0.2)
    assert result.innocuous_kbps == pytest.approx(CAP_KBPS, rel=0.2)
    assert result.ratio is not None
    assert 0.8 < result.ratio < 1.25
    print(
        f"\nslow link: target {result.target_kbps} kbit/s, innocuous {result.innocuous_kbps} "
        f"kbit/s, ratio {result.ratio}"
    )


def test_test_keys_are_ooni_observations_plus_x_throttling() -> None:
    results: list[ThrottlingResult] = []

    async def body() -> None:
        async with lab_context("x-media-throttled") as (_lab, ctx):
            results.append(await measure_throttling(ctx, "https://video.twimg.com/", seconds=1.5))

    run(body)
    keys: dict[str, Any] = json.loads(json.dumps(results[0].test_keys()))
    assert {"queries", "network_events", "tcp_connect", "tls_handshakes", "requests",
            "x_throttling"} <= set(keys)  # fmt: skip
    assert keys["queries"][0]["hostname"] == "video.twimg.com"
    assert [c["ip"] for c in keys["tcp_connect"]] == ["151.101.44.158"] * 2
    innocuous_hs, target_hs = keys["tls_handshakes"]
    assert (innocuous_hs["server_name"], innocuous_hs["no_tls_verify"]) == (
        "www.example.org", True)  # fmt: skip
    assert (target_hs["server_name"], target_hs["no_tls_verify"]) == ("video.twimg.com", False)
    assert innocuous_hs["failure"] is None
    assert innocuous_hs["peer_certificates"]
    assert {tuple(r["tags"]) for r in keys["requests"]} == {
        ("throttling_innocuous",), ("throttling_target",)}  # fmt: skip
    for request in keys["requests"]:
        assert request["request"]["headers"]["Host"] == "video.twimg.com"
        assert request["response"]["code"] == 200
    samples = [e for e in keys["network_events"] if e["operation"] == "bytes_received_cumulative"]
    assert {e["tags"][0] for e in samples} == {"throttling_innocuous", "throttling_target"}
    x = keys["x_throttling"]
    assert x["verdict"] == "throttled"
    assert set(x) >= {"verdict", "target_kbps", "innocuous_kbps", "ratio", "explanation",
                      "address", "innocuous_sni", "seconds"}  # fmt: skip
    assert (x["address"], x["innocuous_sni"], x["seconds"]) == (
        "151.101.44.158", "www.example.org", 1.5)  # fmt: skip
    target = x["legs"]["target"]
    assert target["samples"] == [
        [e["t0"], e["num_bytes"]] for e in samples if e["tags"] == ["throttling_target"]
    ]
    assert x["legs"]["control"] is None

    attached = json.loads(json.dumps(results[0].attachment()))
    assert list(attached) == ["x_throttling"]  # a web_connectivity's own keys stay its own
    assert attached["x_throttling"]["verdict"] == "throttled"
    assert set(attached["x_throttling"]["observations"]) == {
        "queries", "network_events", "tcp_connect", "tls_handshakes", "requests"}  # fmt: skip


def test_no_ipv4_address_is_inconclusive_without_dialing() -> None:
    async def body() -> ThrottlingResult:
        return await measure_throttling(ProbeContext(), "https://pbs.twimg.com/",
                                        addresses=["2001:db8::1", "127.0.0.1"])  # fmt: skip

    result = asyncio.run(body())
    assert result.verdict == "inconclusive"
    assert result.address is None
    assert result.target.failure == "no_ipv4_address"
    assert result.test_keys()["tcp_connect"] == []


def test_only_https_urls() -> None:
    with pytest.raises(InputError):
        asyncio.run(measure_throttling(ProbeContext(), "http://pbs.twimg.com/"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("scenario", "outcome", "method", "rule"),
    [
        ("x-media-throttled", "anomaly", "throttling", "x.throttling"),
        ("slow-link", "ok", "none", None),
    ],
)
def test_the_pipeline_judges_a_throttled_page_an_anomaly_by_throttling(
    tmp_path: Path, scenario: str, outcome: str, method: str, rule: str | None
) -> None:
    """run (with the throttling follow-up) -> ingest: the verdict's method is throttling
    where the experiment found it, and a slow network stays ok."""
    import json

    import pyarrow.parquet as pq

    from blockproof.codec.ooni import measurement_to_json
    from blockproof.lab.check import resolve_scenario_path
    from blockproof.lab.run import run_scenario
    from blockproof.pipeline.ingest import ingest
    from blockproof.pipeline.store import Store
    from blockproof.probe.followups import FollowUps

    url = "https://pbs.twimg.com/"
    follow = FollowUps(bypass=False, throttling_urls=frozenset({url}), throttling_seconds=2.0)
    [m] = asyncio.run(run_scenario(resolve_scenario_path(scenario), [url], follow_up=follow))
    source = tmp_path / "m.jsonl"
    source.write_text(json.dumps(measurement_to_json(m)) + "\n")
    store = Store(tmp_path / "store")
    ingest([source], store)
    [verdict] = pq.read_table([str(p) for p in store.files("verdicts")]).to_pylist()
    assert (verdict["outcome"], verdict["method"]) == (outcome, method), verdict
    if rule is not None:
        assert verdict["rule_id"] == rule
        assert "kbit/s" in verdict["explanation"]
