"""The throttling experiment: the same download with the target's SNI and an innocuous one.

Theory of operation (the decision itself is sans-IO: ``blockproof.core.throttling``)
-------------------------------------------------------------------------------------

1. Resolve the URL's host with the context's network (``getaddrinfo``, recorded
   as a ``queries`` entry), unless ``addresses`` are given, and pick the first
   IPv4 address: every leg dials that one address, so the path is the same.
2. **Innocuous leg** first: TCP connect, TLS with SNI ``innocuous_sni`` and
   certificate verification off (the server's certificate is for the target;
   the handshake record says ``no_tls_verify``), then GET the URL's path with
   ``Host:`` the target host. Run first so that a censor which punishes an
   address after seeing the target's name cannot slow it down.
3. **Target leg**: the same with SNI = the target host, verified as usual.
4. Optionally a **control leg**: the target leg over ``control_network``, a
   network outside the censorship (the lab's clean path; in the field, a
   vantage point that can run it). Recorded apart: it is not the probe's.

Each leg downloads for at most ``seconds`` from the first request, or until
``max_bytes`` of body: the same GET is repeated on the kept-alive connection
whenever a response ends early, so that a small object still fills the
window (at most ``MAX_REQUESTS`` times). The stream layer records OONI's
``bytes_received_cumulative`` network events (at most every 250 ms, one when
the request is sent, one at close): those are the leg's samples. The legs run
one after the other, never together, so they do not share bandwidth.
Connect and handshake use ``ctx.timeouts``; the first response must start
within ``max(seconds, ctx.timeouts.http)``; nothing waits longer.

``ThrottlingResult.test_keys()`` has the OONI observation keys (``queries``,
``network_events``, ``tcp_connect``, ``tls_handshakes``, ``requests``; one
request per leg, its body cut to ``BODY_SNAPSHOT`` bytes) and ``x_throttling``:
verdict, rates, ratio, explanation, the legs and their samples: the test keys of
a measurement of its own. ``attachment()`` is the same with the observations
inside ``x_throttling``, for adding to another measurement's test keys.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from blockproof.codec.ooni import trace_to_test_keys
from blockproof.core.http import HTTPExchange, HTTPProtocolError, browser_request
from blockproof.core.throttling import Decision, Leg, Sample, Thresholds, Throughput, decide
from blockproof.errors import InputError
from blockproof.experiments.web_connectivity import ProbeContext, validate_url
from blockproof.model.failure import Failure
from blockproof.model.observations import HTTPRequest, HTTPTransaction, Trace, join_endpoint
from blockproof.netx.dns import dns_getaddrinfo
from blockproof.netx.endpoint import Timeouts, url_port
from blockproof.netx.failures import classify
from blockproof.netx.network import Network
from blockproof.netx.stream import TLSStream
from blockproof.netx.tcp import tcp_connect
from blockproof.netx.tls import tls_handshake
from blockproof.netx.trace import TX_TLS, Recorder

__all__ = [
    "DEFAULT_INNOCUOUS_SNI",
    "LegResult",
    "ThrottlingResult",
    "measure_throttling",
]

DEFAULT_INNOCUOUS_SNI = "www.example.org"
DEFAULT_SECONDS = 3.0
DEFAULT_MAX_BYTES = 8 << 20  # 8 MiB: 3 s at ~22 Mbit/s; a faster leg ends early, still fast
MAX_REQUESTS = 100  # GETs per leg when the object is smaller than the window
BODY_SNAPSHOT = 4096  # bytes of the first response body kept in ``requests``
SAMPLE_OPERATION = "bytes_received_cumulative"
TARGET, INNOCUOUS, CONTROL = "target", "innocuous", "control"


@dataclass(frozen=True, slots=True, kw_only=True)
class LegResult:
    """One download: where, with which SNI, what it got, and its samples."""

    role: str  # target | innocuous | control
    sni: str
    address: str  # ip:port, "" when nothing was dialed
    tls_verify: bool
    failure: str | None  # OONI failure string of the step that failed (None: the leg ran)
    samples: tuple[Sample, ...]  # (t, cumulative bytes) on the leg's recorder's clock
    status: int | None  # HTTP status of the first response
    requests: int  # complete responses received
    body_bytes: int  # body bytes received in all responses
    ended: str  # time | bytes | requests | closed | failure
    transaction_id: int
    throughput: Throughput  # as the decision computed it

    def leg(self) -> Leg:
        return Leg(sni=self.sni, samples=self.samples, failure=self.failure, status=self.status)

    def to_json(self) -> dict[str, Any]:
        return {
            "sni": self.sni,
            "address": self.address,
            "tls_verify": self.tls_verify,
            "failure": self.failure,
            "status": self.status,
            "requests": self.requests,
            "body_bytes": self.body_bytes,
            "ended": self.ended,
            "transaction_id": self.transaction_id,
            "kbps": self.throughput.kbps,
            "bytes": self.throughput.bytes,
            "duration": self.throughput.seconds,
            "rate_method": self.throughput.method,
            "samples": [[t, b] for t, b in self.samples],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlingResult:
    url: str
    host: str
    address: str | None  # the IPv4 address every leg dialed
    innocuous_sni: str
    seconds: float
    max_bytes: int
    target: LegResult
    innocuous: LegResult
    control: LegResult | None
    decision: Decision
    trace: Trace  # the probe's own records (not the control leg's)
    runtime: float

    @property
    def verdict(self) -> str:
        return self.decision.verdict

    @property
    def target_kbps(self) -> float | None:
        return self.decision.target_kbps

    @property
    def innocuous_kbps(self) -> float | None:
        return self.decision.innocuous_kbps

    @property
    def ratio(self) -> float | None:
        return self.decision.ratio

    def test_keys(self) -> dict[str, Any]:
        observed = trace_to_test_keys(self.trace)
        keys = ("queries", "network_events", "tcp_connect", "tls_handshakes", "requests")
        return {
            **{k: observed[k] for k in keys},
            "x_throttling": {
                "verdict": self.decision.verdict,
                "rule": self.decision.rule,
                "target_kbps": self.decision.target_kbps,
                "innocuous_kbps": self.decision.innocuous_kbps,
                "control_kbps": self.decision.control_kbps,
                "ratio": self.decision.ratio,
                "explanation": self.decision.explanation,
                "address": self.address,
                "target_sni": self.host,
                "innocuous_sni": self.innocuous_sni,
                "seconds": self.seconds,
                "max_bytes": self.max_bytes,
                "legs": {
                    TARGET: self.target.to_json(),
                    INNOCUOUS: self.innocuous.to_json(),
                    CONTROL: self.control.to_json() if self.control is not None else None,
                },
            },
        }

    def attachment(self) -> dict[str, Any]:
        """Only ``x_throttling``, with the legs' observations inside it (``observations``).

        For attaching to another measurement (the URL's web_connectivity): its own
        ``network_events``, ``requests``... must stay its own, or re-judging it would
        read the throttling legs as its fetch.
        """
        keys = self.test_keys()
        extra: dict[str, Any] = keys.pop("x_throttling")
        extra["observations"] = keys
        return {"x_throttling": extra}


def _first_ipv4(addresses: list[str]) -> str | None:
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.version == 4 and not ip.is_loopback and not ip.is_unspecified:
            return str(ip)
    return None


def _not_run(role: str, sni: str, verify: bool, failure: str) -> LegResult:
    return LegResult(
        role=role, sni=sni, address="", tls_verify=verify, failure=failure, samples=(),
        status=None, requests=0, body_bytes=0, ended="failure", transaction_id=0,
        throughput=Throughput(None, 0, 0.0, 0, "none"),
    )  # fmt: skip


class _Download:
    """Repeated GETs of one request over one TLS stream, within a time window."""

    def __init__(
        self, rec: Recorder, stream: TLSStream, request: HTTPRequest, *, seconds: float,
        max_bytes: int, header_wait: float,
    ) -> None:  # fmt: skip
        self.rec = rec
        self.stream = stream
        self.request = request
        self.start = rec.now()
        self.window_end = self.start + seconds
        self.header_deadline = self.start + max(seconds, header_wait)
        self.max_bytes = max_bytes
        self.first: HTTPTransaction | None = None
        self.requests = 0
        self.body_bytes = 0
        self.failure: str | None = None
        self.ended = "time"

    def _remaining(self, started: bool) -> float:
        deadline = self.window_end if started else self.header_deadline
        return deadline - self.rec.now()

    async def run(self) -> None:
        try:
            while True:
                if self.requests >= MAX_REQUESTS:
                    self.ended = "requests"
                    return
                if not await self._one():
                    return
        except TimeoutError:
            if self.requests == 0 and self.first is None:
                self.failure, self.ended = Failure.GENERIC_TIMEOUT, "failure"
            else:
                self.ended = "time"
        except (OSError, ssl.SSLError, EOFError, HTTPProtocolError) as exc:
            self.failure, self.ended = classify(exc), "failure"

    async def _one(self) -> bool:
        """One GET; False when the leg is over (window, bytes, or the server closed)."""
        exchange = HTTPExchange(self.request, max_body=self.max_bytes - self.body_bytes,
                                close=False)  # fmt: skip
        t0 = self.rec.now()
        started = self.requests > 0
        async with asyncio.timeout(max(self._remaining(started), 0.0)):
            await self.stream.write(exchange.bytes_to_send())
        got = 0
        while not exchange.done:
            remaining = self._remaining(started or got > 0)
            if remaining <= 0:
                if self.requests == 0 and got:
                    self._keep_first(exchange, t0)
                raise TimeoutError
            try:
                async with asyncio.timeout(remaining):
                    data = await self.stream.read()
            except TimeoutError:
                if self.requests == 0 and got:
                    self._keep_first(exchange, t0)
                raise
            if not data and got == 0 and self.requests > 0:
                self.ended = "closed"  # the server ended the kept-alive connection
                return False
            got += len(data)
            exchange.receive_data(data)
        response = exchange.response()
        assert response is not None  # done implies a response
        self.requests += 1
        self.body_bytes += len(response.body)
        if self.first is None:
            self._keep_first(exchange, t0)
        if response.body_is_truncated:
            self.ended = "bytes"
            return False
        if (response.header("Connection") or "").strip().lower() == "close":
            self.ended = "closed"
            return False
        return self.rec.now() < self.window_end

    def _keep_first(self, exchange: HTTPExchange, t0: float) -> None:
        response = exchange.response()
        if response is not None and (len(response.body) > BODY_SNAPSHOT or not exchange.done):
            # a snapshot of the body, or what arrived of it before the window closed
            response = replace(response, body=response.body[:BODY_SNAPSHOT], body_is_truncated=True)
        self.first = HTTPTransaction(
            request=self.request, response=response, failure=None, address="", t0=t0,
            t=self.rec.now(),
        )  # fmt: skip


async def _leg(
    network: Network, rec: Recorder, role: str, url: str, ip: str, port: int, *, sni: str,
    verify: bool, ca_file: str | None, timeouts: Timeouts, seconds: float, max_bytes: int,
) -> LegResult:  # fmt: skip
    tags = (f"throttling_{role}",)
    tx = rec.next_id(TX_TLS)
    address = join_endpoint(ip, port)

    def result(failure: str | None, samples: tuple[Sample, ...] = (), **kw: Any) -> LegResult:
        fields: dict[str, Any] = {"status": None, "requests": 0, "body_bytes": 0,
                                  "ended": "failure"} | kw  # fmt: skip
        return LegResult(
            role=role, sni=sni, address=address, tls_verify=verify,
            failure=str(failure) if failure is not None else None,
            samples=samples, transaction_id=tx, throughput=Throughput(None, 0, 0.0, 0, "none"),
            **fields,
        )  # fmt: skip

    tcp, tcp_stream = await tcp_connect(
        network, rec, ip, port, timeout=timeouts.tcp, tags=tags, transaction_id=tx
    )
    if tcp_stream is None:
        return result(tcp.failure)
    tls, stream = await tls_handshake(
        rec, tcp_stream, sni, timeout=timeouts.tls, ca_file=ca_file, verify=verify, tags=tags,
        transaction_id=tx,
    )  # fmt: skip
    if stream is None:
        return result(tls.failure)
    request = browser_request(url)
    start = rec.now()
    tcp_stream.sample()  # the baseline: bytes so far (the handshake's) when the request leaves
    download = _Download(rec, stream, request, seconds=seconds, max_bytes=max_bytes,
                         header_wait=timeouts.http)  # fmt: skip
    try:
        await download.run()
    finally:
        stream.close()  # records the last sample
    first = download.first
    rec.trace.requests.append(
        HTTPTransaction(
            request=request,
            response=first.response if first is not None else None,
            failure=download.failure,
            address=address,
            alpn=tls.negotiated_protocol,
            t0=start,
            t=rec.now(),
            tags=tags,
            transaction_id=tx,
        )
    )
    samples = tuple(
        (e.t0, e.num_bytes)
        for e in rec.trace.network_events
        if e.operation == SAMPLE_OPERATION and e.transaction_id == tx and e.t0 >= start
    )
    status = first.response.code if first is not None and first.response is not None else None
    return result(download.failure, samples, status=status, requests=download.requests,
                  body_bytes=download.body_bytes, ended=download.ended)  # fmt: skip


async def measure_throttling(
    ctx: ProbeContext,
    url: str,
    *,
    addresses: list[str] | None = None,
    seconds: float = DEFAULT_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    innocuous_sni: str = DEFAULT_INNOCUOUS_SNI,
    control_network: Network | None = None,
    thresholds: Thresholds | None = None,
) -> ThrottlingResult:
    """Measure whether ``url``'s host is throttled by name on this network.

    ``url`` must be https (the name travels in the SNI). ``control_network``,
    when given, adds the control leg (the target's SNI from outside the
    censorship). Network failures are data; only a bad URL raises (InputError).
    """
    validate_url(url)
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise InputError(f"{url!r}: throttling is measured on https:// URLs (the SNI)")
    if seconds <= 0 or max_bytes <= 0:
        raise InputError("seconds and max_bytes must be positive")
    host = parts.hostname or ""
    port = url_port(url)
    rec = Recorder()
    if addresses is None:
        query = await dns_getaddrinfo(ctx.network, rec, host, timeout=ctx.timeouts.dns,
                                      tags=("throttling",))  # fmt: skip
        addresses = list(query.addresses)
        failure = query.failure
    else:
        failure = None
    ip = _first_ipv4(addresses)
    kwargs: dict[str, Any] = {"ca_file": ctx.ca_file, "timeouts": ctx.timeouts,
                              "seconds": seconds, "max_bytes": max_bytes}  # fmt: skip
    control: LegResult | None = None
    if ip is None:
        why = str(failure) if failure else "no_ipv4_address"
        innocuous = _not_run(INNOCUOUS, innocuous_sni, False, why)
        target = _not_run(TARGET, host, True, why)
    else:
        innocuous = await _leg(ctx.network, rec, INNOCUOUS, url, ip, port, sni=innocuous_sni,
                               verify=False, **kwargs)  # fmt: skip
        target = await _leg(ctx.network, rec, TARGET, url, ip, port, sni=host, verify=True,
                            **kwargs)  # fmt: skip
        if control_network is not None:
            control = await _leg(control_network, Recorder(), CONTROL, url, ip, port, sni=host,
                                 verify=True, **kwargs)  # fmt: skip
    decision = decide(
        target.leg(),
        innocuous.leg(),
        control.leg() if control is not None else None,
        thresholds=thresholds or Thresholds(),
    )
    target = replace(target, throughput=decision.target)
    innocuous = replace(innocuous, throughput=decision.innocuous)
    if control is not None and decision.control is not None:
        control = replace(control, throughput=decision.control)
    return ThrottlingResult(
        url=url, host=host, address=ip, innocuous_sni=innocuous_sni, seconds=seconds,
        max_bytes=max_bytes, target=target, innocuous=innocuous, control=control,
        decision=decision, trace=rec.trace, runtime=round(rec.now(), 6),
    )  # fmt: skip
