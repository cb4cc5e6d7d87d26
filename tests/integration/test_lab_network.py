"""The lab's network, probed with blockproof's own primitives: every censor action has the
effect on the wire that a real censor's has (real RST, real FIN, real refusal, silence)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from blockproof.core.http import browser_request
from blockproof.lab import Lab, parse_scenario
from blockproof.lab.process import LabProcess
from blockproof.netx.dns import dns_getaddrinfo, dns_https, dns_tcp, dns_udp
from blockproof.netx.endpoint import Timeouts, measure_endpoint
from blockproof.netx.trace import Recorder

pytestmark = pytest.mark.lab

FAST = Timeouts(dns=0.5, tcp=0.5, tls=0.5, http=1.0)

RULES: list[dict[str, Any]] = [
    {"layer": "tls", "match": ["x.com"], "action": "reset"},
    {"layer": "tls", "match": ["twitter.com"], "action": "fin"},
    {"layer": "tls", "match": ["api.x.com"], "action": "drop"},
    {"layer": "tls", "match": ["t.co"], "action": "mitm"},
    {"layer": "tcp", "match": ["pbs.twimg.com"], "action": "blackhole"},
    {"layer": "tcp", "match": ["abs.twimg.com"], "action": "refuse"},
    {"layer": "http", "match": ["www.wikipedia.org"], "action": "reset"},
    {"layer": "http", "match": ["wikipedia.org"], "action": "blockpage"},
    {"layer": "http", "match": ["example.org"], "action": "redirect",
     "location": "http://blockpage.isp.example/"},
    {"layer": "dns", "match": ["video.twimg.com"], "action": "inject", "answer": "10.10.34.35"},
    # scoped to one address and port of twitter.com, whatever the Host
    {"layer": "http", "ips": ["104.244.42.6"], "ports": [80], "action": "fin"},
    {"layer": "http", "match": ["t.co"], "action": "blockpage", "status": 451,
     "body": "<html><title>451</title>Unavailable For Legal Reasons</html>"},
]  # fmt: skip
HOSTS = [
    {"name": "expired.example", "addresses": ["192.0.2.10"], "cert": "expired"},
    {"name": "wrong.example", "addresses": ["192.0.2.11"], "cert": "wrong_host"},
    {"name": "self.example", "addresses": ["192.0.2.12"], "cert": "self_signed"},
    {"name": "down.example", "addresses": ["192.0.2.13"], "down": "refuse"},
]
SCENARIO = parse_scenario({"rule": RULES, "host": HOSTS}, source="network-test", name="net")

# (ip, port, sni, use_tls, url, expected tcp failure, tls failure, http failure, status)
ENDPOINTS = [
    ("reset on SNI", "104.244.42.1", 443, "x.com", None, "connection_reset", None, None),
    ("fin on SNI", "104.244.42.193", 443, "twitter.com", None, "eof_error", None, None),
    ("drop on SNI", "104.244.42.66", 443, "api.x.com", None, "generic_timeout_error", None, None),
    ("mitm", "104.244.42.69", 443, "t.co", None, "ssl_unknown_authority", None, None),
    ("blackhole", "151.101.36.159", 443, "pbs.twimg.com", "generic_timeout_error", None, None,
     None),
    ("refuse", "151.101.40.158", 443, "abs.twimg.com", "connection_refused", None, None, None),
    ("http reset on Host", "185.15.59.224", 80, "www.wikipedia.org", None, None,
     "connection_reset", None),
    ("blockpage on Host", "185.15.59.224", 80, "wikipedia.org", None, None, None, 200),
    ("redirect on Host", "93.184.215.14", 80, "example.org", None, None, None, 302),
    ("clean https", "93.184.215.14", 443, "www.example.org", None, None, None, 200),
    ("http fin on one address", "104.244.42.6", 80, "twitter.com", None, None, "eof_error",
     None),
    ("the other address untouched", "104.244.42.193", 80, "twitter.com", None, None, None, 301),
    ("blockpage with its status", "104.244.42.69", 80, "t.co", None, None, None, 451),
    ("expired", "192.0.2.10", 443, "expired.example", None, "ssl_invalid_certificate", None,
     None),
    ("wrong host", "192.0.2.11", 443, "wrong.example", None, "ssl_invalid_hostname", None, None),
    ("self-signed", "192.0.2.12", 443, "self.example", None, "ssl_unknown_authority", None, None),
    ("site down", "192.0.2.13", 443, "down.example", "connection_refused", None, None, None),
    ("no route", "203.0.113.99", 443, "x.com", "generic_timeout_error", None, None, None),
    ("closed port", "93.184.215.14", 8443, "www.example.org", "connection_refused", None, None,
     None),
]  # fmt: skip


async def _endpoint(
    lab: Any, ip: str, port: int, sni: str, timeouts: Timeouts = FAST
) -> tuple[Any, ...]:
    use_tls = port != 80
    url = f"{'https' if use_tls else 'http'}://{sni}{'' if port in (80, 443) else f':{port}'}/"
    result = await measure_endpoint(
        lab.probe_network, Recorder(), ip, port, server_name=sni, use_tls=use_tls,
        request=browser_request(url), timeouts=timeouts, ca_file=lab.ca_file,
    )  # fmt: skip
    http = result.http
    if http is not None and http.response is not None:
        assert not http.response.body_is_truncated
    return (
        result.tcp.failure,
        result.tls.failure if result.tls else None,
        http.failure if http else None,
        http.response.code if http and http.response else None,
    )


@pytest.mark.parametrize(
    ("ip", "port", "sni", "tcp", "tls", "http", "status"),
    [e[1:] for e in ENDPOINTS],
    ids=[e[0] for e in ENDPOINTS],
)
def test_endpoint_behaviour(
    ip: str, port: int, sni: str, tcp: str | None, tls: str | None, http: str | None,
    status: int | None,
) -> None:  # fmt: skip
    async def run() -> tuple[Any, ...]:
        async with Lab(SCENARIO) as lab:
            return await _endpoint(lab, ip, port, sni)

    assert asyncio.run(run()) == (tcp, tls, http, status)


def test_dns_paths_and_injection() -> None:
    async def run() -> None:
        async with Lab(SCENARIO) as lab:
            rec = Recorder()
            gai = await dns_getaddrinfo(lab.probe_network, rec, "video.twimg.com", timeout=1)
            assert gai.addresses == ("10.10.34.35",)
            query, lookup = await dns_udp(
                lab.probe_network, rec, "video.twimg.com", "A", lab.resolver_address,
                timeout=1, duplicate_window=0.2,
            )  # fmt: skip
            await lookup.finish()
            assert query.addresses == ("10.10.34.35",)
            assert [d.addresses for d in rec.trace.dns_duplicate_responses] == [("151.101.44.158",)]
            clean = await dns_getaddrinfo(lab.control_network, rec, "video.twimg.com", timeout=1)
            assert clean.addresses == ("151.101.44.158",)
            missing = await dns_getaddrinfo(lab.probe_network, rec, "nowhere.example", timeout=1)
            assert missing.failure == "dns_nxdomain_error"

    asyncio.run(run())


def test_round_trip_time_is_added() -> None:
    slow = parse_scenario({"rtt_ms": 50}, source="rtt", name="rtt")

    async def run() -> float:
        async with Lab(slow) as lab:
            t0 = time.monotonic()
            # TCP (1 RTT) + TLS 1.3 (1 RTT) + GET (1 RTT)
            assert await _endpoint(lab, "93.184.215.14", 443, "www.example.org") == (
                None, None, None, 200,
            )  # fmt: skip
            return time.monotonic() - t0

    elapsed = asyncio.run(run())
    assert 0.15 <= elapsed < 0.5


def test_throttle_caps_the_rate() -> None:
    throttled = parse_scenario(
        {
            "rule": [{"layer": "throttle", "match": ["video.twimg.com"], "rate_kbps": 800}],
            "host": [{"name": "video.twimg.com", "addresses": ["151.101.44.158"],
                      "body_bytes": 200_000}],
        },
        source="throttle", name="throttle",
    )  # fmt: skip

    async def run() -> float:
        async with Lab(throttled) as lab:
            t0 = time.monotonic()
            slow = Timeouts(dns=1, tcp=1, tls=1, http=10)
            result = await _endpoint(lab, "151.101.44.158", 443, "video.twimg.com", slow)
            assert result == (None, None, None, 200)
            return time.monotonic() - t0

    elapsed = asyncio.run(run())
    expected = 200_000 * 8 / 800_000  # 2 s at the cap
    assert expected * 0.8 <= elapsed <= expected * 1.3


def test_lab_in_a_child_process() -> None:
    async def run() -> tuple[Any, ...]:
        async with LabProcess(SCENARIO) as lab:
            return (
                await _endpoint(lab, "104.244.42.1", 443, "x.com"),
                await _endpoint(lab, "93.184.215.14", 443, "www.example.org"),
            )

    assert asyncio.run(run()) == (
        (None, "connection_reset", None, None),
        (None, None, None, 200),
    )


def test_dns_over_tcp_is_censored_and_doh_is_not() -> None:
    blocked = parse_scenario(
        {"rule": [{"layer": "dns", "match": ["x.com"], "action": "nxdomain"}]},
        source="doh", name="doh",
    )  # fmt: skip

    async def run() -> tuple[Any, ...]:
        async with Lab(blocked) as lab:
            rec = Recorder()
            tcp = await dns_tcp(lab.probe_network, rec, "x.com", "A", "8.8.8.8:53", timeout=1)
            doh = await dns_https(
                lab.probe_network, rec, "x.com", "A", "https://dns.google/dns-query",
                server_ip="8.8.8.8", timeout=1, ca_file=lab.ca_file,
            )  # fmt: skip
            return tcp.failure, doh.failure, sorted(doh.addresses)

    assert asyncio.run(run()) == ("dns_nxdomain_error", None, ["104.244.42.1", "104.244.42.129"])
