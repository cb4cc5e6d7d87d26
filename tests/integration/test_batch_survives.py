"""No exception from one URL ends a batch.

One batch of URLs, each on its own site of the lab's uncensored internet; an unexpected
exception (a bug, not a network failure) is injected into one step for one site: the
system resolver, the UDP resolver, the TCP connect, the TLS handshake, the HTTP
exchange, the control request, the classifier, a follow-up. Every URL of the batch still
gets a measurement; the URL hit records the failure in the step it hit, as
``unknown_failure: <Type>: <message>``; the others are measured as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import blockproof.control.client as control_client
import blockproof.experiments.web_connectivity as wc
import blockproof.netx.dns as netx_dns
from blockproof.core.http import HTTPExchange
from blockproof.experiments.web_connectivity import ProbeContext
from blockproof.lab import Lab, parse_scenario
from blockproof.lab.lab import LabNetwork
from blockproof.lab.run import CONTROL_BUDGET
from blockproof.model.measurement import Measurement
from blockproof.netx.endpoint import Timeouts
from blockproof.netx.stream import TLSStream
from blockproof.probe.runner import run_urls

pytestmark = [pytest.mark.lab]

FAILURE = "unknown_failure: RuntimeError: injected bug"
TIMEOUTS = Timeouts(dns=1.0, tcp=1.0, tls=1.0, http=2.0)


def _bug() -> RuntimeError:
    return RuntimeError("injected bug")


# step -> (URL hit, what to patch, where its failure shows in test_keys)
Patch = Callable[[pytest.MonkeyPatch, str], None]


def _dns_system(mp: pytest.MonkeyPatch, host: str) -> None:
    real = LabNetwork.getaddrinfo

    async def getaddrinfo(self: LabNetwork, name: str) -> list[str]:
        if name == host:
            raise _bug()
        return await real(self, name)

    mp.setattr(LabNetwork, "getaddrinfo", getaddrinfo)


def _dns_udp(mp: pytest.MonkeyPatch, host: str) -> None:
    real = netx_dns.build_query

    def build_query(name: str, qtype: str) -> Any:
        if name == host:
            raise _bug()
        return real(name, qtype)

    mp.setattr(netx_dns, "build_query", build_query)


def _tcp(mp: pytest.MonkeyPatch, ip: str) -> None:
    real = LabNetwork.open_stream

    async def open_stream(self: LabNetwork, address: str, port: int, *a: Any, **k: Any) -> Any:
        if address == ip and port == 80:
            raise _bug()
        return await real(self, address, port, *a, **k)

    mp.setattr(LabNetwork, "open_stream", open_stream)


def _tls(mp: pytest.MonkeyPatch, host: str) -> None:
    real = TLSStream.handshake

    async def handshake(self: TLSStream) -> None:
        if self.sslobj.server_hostname == host:
            raise _bug()
        await real(self)

    mp.setattr(TLSStream, "handshake", handshake)


def _http(mp: pytest.MonkeyPatch, host: str) -> None:
    real = HTTPExchange.receive_data

    def receive_data(self: HTTPExchange, data: bytes) -> None:
        if dict(self.request.headers_list).get("Host") == host:
            raise _bug()
        real(self, data)

    mp.setattr(HTTPExchange, "receive_data", receive_data)


def _control(mp: pytest.MonkeyPatch, url: str) -> None:
    real = control_client.control_request_to_json

    def control_request_to_json(request: Any) -> Any:
        if request.http_request == url:
            raise _bug()
        return real(request)

    mp.setattr(control_client, "control_request_to_json", control_request_to_json)


def _classifier(mp: pytest.MonkeyPatch, url: str) -> None:
    real = wc.analyze

    def analyze(observations: Any, **k: Any) -> Any:
        if observations.input == url:
            raise _bug()
        return real(observations, **k)

    mp.setattr(wc, "analyze", analyze)


def _query(keys: dict[str, Any], engine: str) -> dict[str, Any]:
    return next(q for q in keys["queries"] if q["engine"] == engine)


# (step, URL, patch target, check of the URL hit)
CASES: list[tuple[str, str, Callable[[pytest.MonkeyPatch], None], Callable[[dict], None]]] = [
    ("dns-system", "https://www.wikipedia.org/",
     lambda mp: _dns_system(mp, "www.wikipedia.org"),
     lambda k: _query(k, "getaddrinfo")["failure"] == FAILURE),
    ("dns-udp", "https://t.co/",
     lambda mp: _dns_udp(mp, "t.co"),
     lambda k: _query(k, "udp")["failure"] == FAILURE and k["accessible"] is True),
    ("tcp", "http://www.example.org/",
     lambda mp: _tcp(mp, "93.184.215.14"),
     lambda k: any(c["status"]["failure"] == FAILURE for c in k["tcp_connect"])),
    ("tls", "https://api.x.com/",
     lambda mp: _tls(mp, "api.x.com"),
     lambda k: k["tls_handshakes"][0]["failure"] == FAILURE),
    ("http", "https://pbs.twimg.com/",
     lambda mp: _http(mp, "pbs.twimg.com"),
     lambda k: k["requests"][0]["failure"] == FAILURE),
    ("control", "https://abs.twimg.com/",
     lambda mp: _control(mp, "https://abs.twimg.com/"),
     lambda k: k["control_failure"] == FAILURE and k["control"] is None),
    ("classifier", "https://video.twimg.com/",
     lambda mp: _classifier(mp, "https://video.twimg.com/"),
     lambda k: k["x_failure"] == FAILURE and k["blocking"] is None and k["queries"]),
]  # fmt: skip
CLEAN = ["https://x.com/", "https://twitter.com/"]


@pytest.fixture
def scenario() -> Any:
    return parse_scenario({}, source="batch", name="batch")


async def _batch(scenario: Any, urls: list[str], follow_up: Any = None) -> list[Measurement]:
    async with Lab(scenario) as lab:
        ctx = ProbeContext(
            network=lab.probe_network, control_url=lab.control_url,
            resolver=lab.resolver_address, ca_file=lab.ca_file, timeouts=TIMEOUTS,
            control_budget=CONTROL_BUDGET, asn_of=lab.asn_of,
        )  # fmt: skip
        return await run_urls(urls, ctx, concurrency=4, follow_up=follow_up)


@pytest.mark.asyncio
async def test_an_exception_in_any_step_ends_only_its_own_step(
    monkeypatch: pytest.MonkeyPatch, scenario: Any
) -> None:
    for _, _, patch, _ in CASES:
        patch(monkeypatch)
    urls = [url for _, url, _, _ in CASES] + CLEAN
    measurements = await _batch(scenario, urls)
    assert [m.input for m in measurements] == urls  # every URL, in order
    by_url = {m.input: m.test_keys for m in measurements}
    for step, url, _, check in CASES:
        assert check(by_url[url]), (step, by_url[url])
    for url in CLEAN:
        assert by_url[url]["accessible"] is True, url
        assert "x_failure" not in by_url[url]


@pytest.mark.asyncio
async def test_a_follow_up_bug_keeps_the_measurement(scenario: Any) -> None:
    async def follow_up(url: str, measurement: Measurement, ctx: ProbeContext) -> None:
        if url == CLEAN[0]:
            raise KeyError("x" * 500)  # a long message is cut

    measurements = await _batch(scenario, CLEAN, follow_up)
    assert len(measurements) == 2
    failure = measurements[0].test_keys["x_follow_up_failure"]
    assert failure.startswith("unknown_failure: KeyError: ")
    assert len(failure) < 120
    assert "x_follow_up_failure" not in measurements[1].test_keys
