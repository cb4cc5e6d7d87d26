"""The lab at run time: listeners on loopback, the censor's wire, and two networks.

Theory of operation
-------------------
Everything lives on 127.0.0.1 in the current event loop:

* one **origin** listener per site and scheme (HTTP on one port, HTTPS with the
  site's certificate on another), a **MITM** listener per interception rule,
  blockproof's **control server** (uvicorn serving ``control.server.create_app``),
  two **DNS** servers over UDP (the censored path the probe uses, a clean one);
* one **wire** listener through which every TCP connection flows.

``LabNetwork`` implements the probe's network seam. ``open_stream(ip, port)``
looks up which host owns the public address ``ip``; an unknown address or a
``blackhole`` rule never answers (the caller's timeout fires), ``refuse`` and
closed ports connect to a port nobody listens on (a real ECONNREFUSED). Otherwise
it waits one round trip (the TCP handshake), binds a client socket, registers
``local port -> Flow(destination, censored?)`` and connects to the wire.

The wire accepts, finds the flow by the peer's port, and on censored flows reads
the client's opening (``censor.read_opening``): a TLS ClientHello's SNI or an
HTTP request's Host. A matching rule acts on the real socket: ``reset`` is a
true RST (SO_LINGER 0), ``fin`` an orderly close, ``drop`` silence, ``mitm`` a
detour to the interception listener, ``blockpage``/``redirect`` an injected
response. Otherwise the wire connects to the destination's listener and pumps
bytes both ways through a delay line (half a round trip each way) and, if a
throttle rule matches, a rate cap. The control server's network is the same
wire without the censor.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import functools
import http
import ipaddress
import random
import socket
import ssl
import struct
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from blockproof.lab import hostile, ispproxy, origin, proxy
from blockproof.lab.censor import Censor, DNSOutcome, Opening
from blockproof.lab.internet import (
    CONNECT_PORT,
    CONTROL_HOST,
    RESOLVER_HOST,
    ROLE_ISP_PROXY,
    ROLE_PROXY,
    ROLE_SITE,
    SOCKS_PORT,
    Host,
)
from blockproof.lab.pki import LabPKI
from blockproof.lab.scenario import Rule, Scenario, blockpage_body
from blockproof.netx.endpoint import Timeouts
from blockproof.netx.failures import ANDROID_EAI_NODATA
from blockproof.netx.network import READ_CHUNK

LOOPBACK = "127.0.0.1"
OPENING_TIMEOUT = 10.0  # how long the censor waits for a client's first bytes
PACE_CHUNK = 1460  # a throttled flow is paced one segment at a time
WINDOW_CHUNKS = 16  # a delayed flow holds at most 16 reads of 64 KiB in flight
MIN_RTO = 0.2  # a lost segment waits at least this long for its retransmission (Linux)
DNS_TTL = 300
# Budgets in the lab are short: nothing real is far away, and a blackhole should not
# make a test wait 10 s. The lab's control server measures with these too.
LAB_TIMEOUTS = Timeouts(dns=1.5, tcp=2.0, tls=2.0, http=3.0)

AppFactory = Callable[["LabNetwork", str], Any]


@dataclass(frozen=True, slots=True)
class Flow:
    ip: str
    port: int
    host: Host | None
    target: tuple[str, int]
    censored: bool


@dataclass(frozen=True, slots=True)
class Ports:
    """Where a running lab listens: all the probe's side needs to reach it, even from
    another process (``blockproof.lab.process``)."""

    wire: int
    closed: int  # bound, never listening: connecting there is refused
    dns_censored: int
    dns_clean: int
    served: frozenset[tuple[str, int]]  # (host name, port) pairs with a listener
    ca_file: str


class LabNetwork:
    """The ``Network`` seam inside the lab: public addresses, loopback sockets.

    Routing decisions (no route, refused, blackholed, the system resolver's answer)
    are pure functions of the scenario, taken here; bytes go to the lab's wire,
    preceded by one preamble line naming the flow's public destination.
    """

    def __init__(self, censor: Censor, ports: Ports, *, rtt: float, censored: bool) -> None:
        self.censor = censor
        self.ports = ports
        self.rtt = rtt
        self.censored = censored

    async def _round_trip(self) -> None:
        if self.rtt > 0:
            await asyncio.sleep(self.rtt)

    async def open_stream(
        self, ip: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host = self.censor.host_by_ip(ip)
        rule = self.censor.tcp(ip, port) if self.censored else None
        if rule is not None and rule.action == "blackhole":
            await _forever()
        if host is None or host.down == "timeout":
            await _forever()  # no route: SYNs go nowhere
        assert host is not None
        served = (host.name, port) in self.ports.served
        await self._round_trip()  # the SYN and its answer
        if rule is not None or host.down == "refuse" or not served:
            return await asyncio.open_connection(LOOPBACK, self.ports.closed)  # ECONNREFUSED
        reader, writer = await asyncio.open_connection(LOOPBACK, self.ports.wire, limit=READ_CHUNK)
        writer.write(preamble(ip, port, censored=self.censored))
        return reader, writer

    def udp_address(self, ip: str, port: int) -> tuple[str, int]:
        host = self.censor.host_by_ip(ip)
        if port == 53 and host is not None and host.name == RESOLVER_HOST:
            return LOOPBACK, self.ports.dns_censored if self.censored else self.ports.dns_clean
        return LOOPBACK, self.ports.closed

    async def getaddrinfo(self, host: str) -> list[str]:
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(host))]
        await self._round_trip()
        outcome = self.censor.dns(host, "system", censored=self.censored)
        if outcome.drop:
            await _forever()
        if outcome.injected is not None:
            return list(outcome.injected)  # the injector's reply arrives first
        if (
            self.censored
            and self.censor.scenario.probe.getaddrinfo == "android"
            and (outcome.rcode != "NOERROR" or not outcome.addresses)
        ):
            # bionic: any failure of the DNS proxy (netd) is EAI_NODATA
            raise socket.gaierror(ANDROID_EAI_NODATA, "No address associated with hostname")
        if outcome.rcode == "NXDOMAIN":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if outcome.rcode in ("REFUSED", "SERVFAIL"):
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if not outcome.addresses:
            raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
        return list(dict.fromkeys(outcome.addresses))


PREAMBLE_MAX = 128


def preamble(ip: str, port: int, *, censored: bool) -> bytes:
    return f"FLOW {ip} {port} {'censored' if censored else 'clean'}\n".encode()


def parse_preamble(line: bytes) -> tuple[str, int, bool] | None:
    parts = line.decode("ascii", "replace").split()
    if len(parts) != 4 or parts[0] != "FLOW" or parts[3] not in ("censored", "clean"):
        return None
    try:
        return str(ipaddress.ip_address(parts[1])), int(parts[2]), parts[3] == "censored"
    except ValueError:
        return None


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


class _DNSServer(asyncio.DatagramProtocol):
    """An authoritative-and-recursive resolver for the lab's names, over UDP."""

    def __init__(self, lab: Lab, *, censored: bool) -> None:
        self.lab = lab
        self.censored = censored
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        loop = asyncio.get_running_loop()
        for delay, wire in answer_dns(
            self.lab, data, "udp", censored=self.censored, transport="udp"
        ):
            loop.call_later(delay, self._send, wire, addr)

    def _send(self, wire: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


class DNSWorld(Protocol):
    """What answering DNS needs of a lab: its scenario, its censor, its round trip."""

    scenario: Scenario
    censor: Censor
    rtt: float


def answer_dns(
    lab: DNSWorld,
    data: bytes,
    path: str,
    *,
    censored: bool,
    transport: str = "udp",
    hostile_too: bool | None = None,
) -> list[tuple[float, bytes]]:
    """The replies (delay in seconds, wire) the lab sends to one DNS query.

    ``path`` is the censor's name for the resolution path, ``transport`` how the query
    reached the public resolver ("udp", "tcp" or "doh"). A hostile resolver
    (``[[resolver]]``) answers the probe's queries (UDP and TCP on the censored path,
    and DoH) in its own way, before any censor rule; ``hostile_too`` overrides which
    queries are the probe's (the kernel lab tells them by their source address).
    """
    try:
        query = dns.message.from_wire(data)
    except Exception:
        return []
    if not query.question or query.flags & dns.flags.QR:
        return []
    name = query.question[0].name.to_text(omit_final_dot=True)
    if hostile_too is None:
        hostile_too = censored or transport == "doh"
    behaviour = lab.scenario.hostile_dns(name) if hostile_too else None
    if behaviour is not None:
        truth = lab.censor.resolve(name) or ()
        return [(lab.rtt, wire) for wire in hostile.dns_replies(behaviour, data, truth, transport)]
    outcome = lab.censor.dns(name, path, censored=censored)
    if outcome.drop:
        return []
    replies = [(lab.rtt, dns_reply(query, outcome))]
    if outcome.injected is not None:
        replies.insert(0, (lab.rtt / 2, dns_reply(query, DNSOutcome(addresses=outcome.injected))))
    return replies


def dns_reply(query: dns.message.Message, outcome: DNSOutcome) -> bytes:
    """The resolver's reply to ``query`` carrying ``outcome`` (A records only)."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.set_rcode(dns.rcode.from_text(outcome.rcode))
    question = query.question[0]
    if question.rdtype == dns.rdatatype.A and outcome.rcode == "NOERROR" and outcome.addresses:
        response.answer.append(
            dns.rrset.from_text_list(
                question.name, DNS_TTL, dns.rdataclass.IN, dns.rdatatype.A, list(outcome.addresses)
            )
        )
    return response.to_wire()


class LabView:
    """What a probe is given by a running lab, in this process or another one."""

    scenario: Scenario
    censor: Censor
    rtt: float

    @property
    def ports(self) -> Ports:
        raise NotImplementedError

    @property
    def probe_network(self) -> LabNetwork:
        return LabNetwork(self.censor, self.ports, rtt=self.rtt, censored=True)

    @property
    def control_network(self) -> LabNetwork:
        return LabNetwork(self.censor, self.ports, rtt=self.rtt, censored=False)

    @property
    def ca_file(self) -> str:
        return self.ports.ca_file

    @property
    def resolver_address(self) -> str:
        return f"{self._host(RESOLVER_HOST).addresses[0]}:53"

    @property
    def control_url(self) -> str:
        return f"http://{self._host(CONTROL_HOST).addresses[0]}/"

    @property
    def probe_cc(self) -> str:
        return self.scenario.probe.cc

    @property
    def probe_asn(self) -> str:
        return self.scenario.probe.asn_string

    @property
    def probe_network_name(self) -> str:
        return self.scenario.probe.network

    def asn_of(self, ip: str) -> tuple[int, str]:
        host = self.censor.host_by_ip(ip)
        return (host.asn, host.org) if host is not None else (0, "")

    def _host(self, name: str) -> Host:
        host = self.scenario.host(name)
        if host is None:
            raise LookupError(f"the lab has no host {name!r}")
        return host


class Lab(LabView):
    """A running scenario: ``async with Lab(scenario) as lab:`` then use its networks."""

    def __init__(
        self, scenario: Scenario, *, control_app_factory: AppFactory | None = None
    ) -> None:
        self.scenario = scenario
        self.censor = Censor(scenario)
        self.rtt = scenario.rtt_ms / 1000.0
        self._app_factory = control_app_factory
        self._pki: LabPKI | None = None
        self._servers: list[asyncio.Server] = []
        self._listeners: dict[tuple[str, int], tuple[str, int]] = {}  # (host, port) -> loopback
        # (host, port) -> the listener answering the probe's requests ([host.probe])
        self._probe_listeners: dict[tuple[str, int], tuple[str, int]] = {}
        self._flow_counts: dict[tuple[str, int], int] = {}  # seeds the loss of each flow
        self._mitm: dict[int, tuple[str, int]] = {}  # id(rule) -> loopback
        self._ports: Ports | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dns: dict[bool, tuple[asyncio.DatagramTransport, int]] = {}
        self._closed_sock: socket.socket | None = None
        self._wire_port = 0
        self._uvicorn: Any = None
        self._blockpages: dict[str, bytes] = {}
        self.flows_started = 0

    # --- life cycle ----------------------------------------------------------------

    async def __aenter__(self) -> Lab:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._pki = LabPKI()
        closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        closed.bind((LOOPBACK, 0))  # bound, never listening: connections are refused
        self._closed_sock = closed
        self._wire_port = await self._listen(self._on_wire)
        for censored in (True, False):
            transport, _ = await loop.create_datagram_endpoint(
                _dns_factory(self, censored), local_addr=(LOOPBACK, 0)
            )
            self._dns[censored] = (transport, transport.get_extra_info("sockname")[1])
        for host in self.scenario.hosts:
            if host.role == ROLE_SITE and host.down == "no":
                if host.http:
                    self._listeners[(host.name, 80)] = await self._site(host, "http")
                if host.https:
                    self._listeners[(host.name, 443)] = await self._site(host, "https")
                if host.probe is not None:
                    for port, scheme, on in ((80, "http", host.http), (443, "https", host.https)):
                        if on:
                            self._probe_listeners[(host.name, port)] = await self._site(
                                host, scheme, probe=True
                            )
            if host.role == ROLE_ISP_PROXY and host.down == "no":
                for port, on in ((80, host.http), (443, host.https)):
                    if on:
                        handler = self._isp_proxy_handler(port)
                        self._listeners[(host.name, port)] = (LOOPBACK, await self._listen(handler))
        resolver = self.scenario.host(RESOLVER_HOST)
        if resolver is not None:
            self._listeners[(resolver.name, 53)] = (LOOPBACK, await self._listen(self._dns_tcp))
            self._listeners[(resolver.name, 443)] = (
                LOOPBACK,
                await self._listen(self._doh, ssl_context=self._pki.server_context(resolver)),
            )
        for host in self.scenario.hosts:
            if host.role == ROLE_PROXY and host.down == "no":
                # the proxy dials through the uncensored network (ready once the lab runs)
                async def dial(ip: str, port: int) -> tuple[Any, Any]:
                    return await self.control_network.open_stream(ip, port)

                async def resolve(name: str) -> list[str]:
                    return await self.control_network.getaddrinfo(name)

                for port, serve in ((SOCKS_PORT, proxy.serve_socks5),
                                    (CONNECT_PORT, proxy.serve_connect)):  # fmt: skip
                    handler = _proxy_handler(serve, dial, resolve)
                    self._listeners[(host.name, port)] = (LOOPBACK, await self._listen(handler))
        for rule in self.scenario.rules_for("tls"):
            if rule.action == "mitm":
                mitm_host = mitm_site(rule)
                port = await self._listen(
                    site_handler(mitm_host, "https", self._blockpages),
                    ssl_context=self._pki.mitm_context(mitm_host.names),
                )
                self._mitm[id(rule)] = (LOOPBACK, port)
        served = frozenset(self._listeners) | (
            {(CONTROL_HOST, 80)} if self.scenario.host(CONTROL_HOST) else set()
        )
        self._ports = Ports(
            wire=self._wire_port,
            closed=int(closed.getsockname()[1]),
            dns_censored=self._dns[True][1],
            dns_clean=self._dns[False][1],
            served=served,
            ca_file=self._pki.ca_file,
        )
        if self.scenario.host(CONTROL_HOST) is not None:
            self._listeners[(CONTROL_HOST, 80)] = (LOOPBACK, await self._start_control())

    @property
    def ports(self) -> Ports:
        assert self._ports is not None, "the lab is not running"
        return self._ports

    async def _stop(self) -> None:
        if self._uvicorn is not None:
            server, task = self._uvicorn
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        for transport, _ in self._dns.values():
            transport.close()
        if self._closed_sock is not None:
            self._closed_sock.close()
        if self._pki is not None:
            self._pki.close()

    async def _listen(
        self,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> int:
        server = await asyncio.start_server(
            self._tracked(handler), LOOPBACK, 0, ssl=ssl_context, limit=READ_CHUNK, backlog=1024
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def _tracked(
        self,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await handler(reader, writer)
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
                writer.close()
            except asyncio.CancelledError:
                writer.close()  # the lab is stopping: end quietly
            finally:
                self._tasks.discard(task)

        return run

    def _isp_proxy_handler(
        self, port: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
        async def dial(ip: str, port: int) -> tuple[Any, Any]:
            return await self.control_network.open_stream(ip, port)

        async def resolve(name: str) -> list[str]:
            return await self.control_network.getaddrinfo(name)

        is_proxy = functools.partial(ispproxy.is_isp_proxy, self.censor)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await ispproxy.serve_transparent(reader, writer, port, dial, resolve, is_proxy)

        return handle

    async def _site(self, host: Host, scheme: str, *, probe: bool = False) -> tuple[str, int]:
        assert self._pki is not None
        ctx = self._pki.server_context(host) if scheme == "https" else None
        handler = site_handler(host, scheme, self._blockpages, probe=probe)
        misbehaving = hostile.site_listener(host.hostile, scheme) if host.hostile else None
        if misbehaving is not None:
            handler, speaks_tls = misbehaving
            ctx = ctx if speaks_tls else None
        port = await self._listen(handler, ssl_context=ctx)
        return LOOPBACK, port

    async def _start_control(self) -> int:
        import uvicorn

        _EmbeddedServer = _embedded_server_class()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        sock.listen(1024)
        assert self._pki is not None
        if self._app_factory is not None:
            app = self._app_factory(self.control_network, self._pki.ca_file)
        else:
            from blockproof.control.server import create_app

            app = create_app(
                self.control_network, self._pki.ca_file, asn_of=lambda ip: self.asn_of(ip)[0],
                timeouts=LAB_TIMEOUTS, max_concurrent=1024,
            )  # fmt: skip
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="off",
            timeout_keep_alive=30,
        )  # fmt: skip
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        self._uvicorn = (server, task)
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        return int(sock.getsockname()[1])

    async def _dns_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """DNS over TCP on the resolver's :53: as visible to the censor as UDP is."""
        await serve_dns_tcp(reader, writer, lambda data: answer_dns(
            self, data, "udp", censored=True, transport="tcp"))  # fmt: skip

    async def _doh(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """DNS over HTTPS (RFC 8484 GET) on the resolver's :443: encrypted, so uncensored."""
        await serve_doh(reader, writer, lambda data: answer_dns(
            self, data, "doh", censored=False, transport="doh"))  # fmt: skip

    # --- routing ---------------------------------------------------------------------

    def listener_for(
        self, host: Host, port: int, *, censored: bool = False
    ) -> tuple[str, int] | None:
        """Where a flow to ``host``:``port`` goes; the probe's flows (``censored``) reach
        the host's probe view when it has one."""
        if censored and (host.name, port) in self._probe_listeners:
            return self._probe_listeners[(host.name, port)]
        return self._listeners.get((host.name, port))

    async def sleep_rtt(self, fraction: float) -> None:
        if self.rtt > 0:
            await asyncio.sleep(self.rtt * fraction)

    # --- the wire --------------------------------------------------------------------

    async def _on_wire(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flow = await self._read_flow(reader)
        if flow is None:
            writer.close()
            return
        self.flows_started += 1
        try:
            await self._carry(flow, reader, writer)
        finally:
            if not writer.is_closing():
                writer.close()

    async def _read_flow(self, reader: asyncio.StreamReader) -> Flow | None:
        try:
            async with asyncio.timeout(OPENING_TIMEOUT):
                line = await reader.readuntil(b"\n")
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return None
        parsed = parse_preamble(line[:PREAMBLE_MAX])
        if parsed is None:
            return None
        ip, port, censored = parsed
        host = self.censor.host_by_ip(ip)
        target = self.listener_for(host, port, censored=censored) if host is not None else None
        if target is None:
            return None
        return Flow(ip, port, host, target, censored)

    async def _carry(
        self, flow: Flow, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        opening = b""
        target = flow.target
        throttle: Rule | None = None
        if flow.censored:
            seen = await self._read_opening(reader)
            if seen is None:
                return
            opening, what = seen
            rule = self.censor.tls(what, flow.ip, flow.port) if what.protocol == "tls" else None
            if what.protocol == "http":
                rule = self.censor.http(what, flow.ip, flow.port)
            if rule is not None:
                detour = await self._act(rule, reader, writer)
                if detour is None:
                    return
                target = detour
            throttle = self.censor.throttle(what.sni or what.host, flow.ip, flow.port)
        try:
            up_reader, up_writer = await asyncio.open_connection(*target, limit=READ_CHUNK)
        except OSError:
            reset(writer)
            return
        delay = self.rtt / 2
        extra = (throttle.delay_ms / 1000.0) if throttle else 0.0
        rate = (throttle.rate_kbps * 1000.0) if throttle else 0.0
        loss = self._loss(flow, throttle, self.rtt + extra) if throttle else None
        try:
            await asyncio.gather(
                pipe(reader, up_writer, delay, 0.0, opening),
                pipe(up_reader, writer, delay + extra, rate, b"", loss),
            )
        finally:
            up_writer.close()

    def _loss(self, flow: Flow, rule: Rule, rtt: float) -> SegmentLoss | None:
        """The loss process of one throttled flow, seeded by the scenario, the destination
        and how many flows went there before: the same run loses the same segments."""
        if rule.loss <= 0:
            return None
        key = (flow.ip, flow.port)
        count = self._flow_counts.get(key, 0)
        self._flow_counts[key] = count + 1
        seed = f"{self.scenario.name}/{flow.ip}:{flow.port}/{count}"
        return SegmentLoss(rule.loss, max(MIN_RTO, 2 * rtt), random.Random(seed))

    async def _read_opening(self, reader: asyncio.StreamReader) -> tuple[bytes, Opening] | None:
        return await ispproxy.receive_opening(reader, OPENING_TIMEOUT)

    async def _act(
        self, rule: Rule, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        """Carry out a censoring rule; a detour address means "carry on to there"."""
        await self.sleep_rtt(0.5)
        return await carry_out(rule, reader, writer, self._blockpages, self._mitm.get(id(rule)))


async def carry_out(
    rule: Rule,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    blockpages: dict[str, bytes],
    mitm: tuple[str, int] | None = None,
) -> tuple[str, int] | None:
    """What a DPI box does to a flow a ``tls`` or ``http`` rule matched, on the real
    socket; a detour address (``mitm``, the interception server) means "carry on to
    there". Shared by the in-process wire and the kernel lab's DPI box."""
    match rule.action:
        case "reset":
            reset(writer)
        case "fin":
            with contextlib.suppress(OSError):
                writer.write_eof()
                async with asyncio.timeout(30):
                    while await reader.read(READ_CHUNK):
                        pass
            writer.close()
        case "drop":
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(120):
                    while await reader.read(READ_CHUNK):
                        pass
        case "mitm":
            return mitm
        case "blockpage":
            if rule.body:
                body = rule.body.encode()
            else:
                body = blockpages.setdefault(rule.blockpage, blockpage_body(rule.blockpage))
            await _send_blockpage(writer, body, rule.status)
        case "redirect":
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n" % rule.location.encode()
            )
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
    return None


Answer = Callable[[bytes], list[tuple[float, bytes]]]  # a DNS query's (delay, reply) list


async def serve_dns_tcp(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: Answer
) -> None:
    """DNS over TCP (length-prefixed messages): one reply per query, the last ``answer``
    gives (an injector's earlier forgery does not take a stream's place)."""
    try:
        for _ in range(100):
            async with asyncio.timeout(30):
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(length)
            replies = answer(data)
            if not replies:
                continue
            _delay, wire = replies[-1]
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError):
        pass
    finally:
        writer.close()


async def serve_doh(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: Answer
) -> None:
    """DNS over HTTPS, RFC 8484 GET on /dns-query (the TLS session is the listener's)."""

    def respond(target: str) -> origin.Response:
        path, _, query = target.partition("?")
        params = urllib.parse.parse_qs(query)
        headers = [(b"content-type", b"application/dns-message"), (b"server", b"lab-doh")]
        if path != "/dns-query" or "dns" not in params:
            return 404, [(b"content-type", b"text/plain")], b"use /dns-query?dns=\n"
        encoded = params["dns"][0]
        try:
            data = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            return 400, [(b"content-type", b"text/plain")], b"bad dns parameter\n"
        replies = answer(data)
        if not replies:
            return 400, [(b"content-type", b"text/plain")], b"not a DNS query\n"
        return 200, headers, replies[-1][1]

    await origin.serve_http(reader, writer, respond)


def mitm_site(rule: Rule) -> Host:
    """The interception server a ``tls`` ``mitm`` rule leads to: a host named after the
    rule's patterns that serves the rule's blockpage (with the censor CA's certificate)."""
    names = tuple(p for p in rule.match if p != "*") or ("mitm.example",)
    return Host(name=names[0], aliases=names[1:], addresses=(), blockpage=rule.blockpage)


def _proxy_handler(
    serve: Callable[
        [asyncio.StreamReader, asyncio.StreamWriter, proxy.Dial, proxy.Resolve],
        Coroutine[Any, Any, None],
    ],
    dial: proxy.Dial,
    resolve: proxy.Resolve,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve(reader, writer, dial, resolve)

    return handle


def _dns_factory(lab: Lab, censored: bool) -> Callable[[], _DNSServer]:
    return lambda: _DNSServer(lab, censored=censored)


def _embedded_server_class() -> type[Any]:
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        """uvicorn inside someone else's event loop: leave the signals to the host program."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return EmbeddedServer


def site_handler(
    host: Host, scheme: str, blockpages: dict[str, bytes], *, probe: bool = False
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
    if host.blockpage:
        body = blockpages.setdefault(host.blockpage, blockpage_body(host.blockpage))

        async def blockpage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                async with asyncio.timeout(origin.IDLE_TIMEOUT):
                    await reader.readuntil(b"\r\n\r\n")
                await _send_blockpage(writer, body)
            writer.close()

        return blockpage
    responder = origin.site_responder(host, scheme, blockpages, probe=probe)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await origin.serve_http(reader, writer, responder)

    return handle


async def _send_blockpage(writer: asyncio.StreamWriter, body: bytes, status: int = 200) -> None:
    """A blockpage as filtering boxes send it: bare headers, the body, then close.

    Only headers from OONI's "common" list: a blockpage shares no unusual header
    with the real site, so the HTTP comparison can tell them apart.
    """
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\n\r\n"
    writer.write(head.encode() + body)
    with contextlib.suppress(OSError):
        await writer.drain()
    writer.close()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a censor's injected reset looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class SegmentLoss:
    """Packet loss as a TCP sender pays for it, on a loopback socket that cannot lose any.

    Each segment is lost with probability ``rate`` (a seeded RNG: runs are
    reproducible). A lost segment is delivered only after a retransmission timeout,
    ``rto``; if the retransmission is lost too, the timeout doubles (RFC 6298's
    backoff), and a segment that gets through resets it. Segments behind a lost one
    wait for it, as a receiver delivers bytes in order. Not modelled: congestion
    control's smaller window after a loss.
    """

    def __init__(self, rate: float, rto: float, rng: random.Random) -> None:
        self.rate = rate
        self.rto = rto
        self.rng = rng

    def penalty(self) -> float:
        """Seconds the next segment is late: 0, or the sum of its retransmission timeouts."""
        wait, timeout = 0.0, self.rto
        while self.rng.random() < self.rate:
            wait += timeout
            timeout *= 2
        return wait


async def pipe(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    delay: float,
    rate_bps: float,
    first: bytes,
    loss: SegmentLoss | None = None,
) -> None:
    """Copy src to dst; chunks arrive ``delay`` s after it was read, paced to ``rate_bps``,
    segments late by their retransmissions when ``loss`` is given."""
    if delay <= 0 and rate_bps <= 0 and loss is None:
        await _pipe_direct(src, dst, first)
        return
    # Bounded, as a TCP receive window is: a large body is not read ahead into memory.
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=WINDOW_CHUNKS)

    async def feed() -> None:
        if first:
            await queue.put((time.monotonic() + delay, first))
        try:
            while data := await src.read(READ_CHUNK):
                await queue.put((time.monotonic() + delay, data))
        except OSError:
            pass
        await queue.put((time.monotonic() + delay, b""))

    feeder = asyncio.create_task(feed())
    next_free = 0.0
    try:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                _half_close(dst)
                return
            if rate_bps <= 0 and loss is None:
                dst.write(data)
                await dst.drain()
                continue
            for i in range(0, len(data), PACE_CHUNK):
                piece = data[i : i + PACE_CHUNK]
                late = loss.penalty() if loss is not None else 0.0
                if late > 0:
                    await asyncio.sleep(late)
                if rate_bps <= 0:
                    dst.write(piece)
                    await dst.drain()
                    continue
                now = time.monotonic()
                next_free = max(next_free, now)
                if next_free > now:
                    await asyncio.sleep(next_free - now)
                dst.write(piece)
                await dst.drain()
                next_free += len(piece) * 8 / rate_bps
    except OSError:
        dst.close()
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder


async def _pipe_direct(src: asyncio.StreamReader, dst: asyncio.StreamWriter, first: bytes) -> None:
    try:
        if first:
            dst.write(first)
        while data := await src.read(READ_CHUNK):
            dst.write(data)
            await dst.drain()
        _half_close(dst)
    except OSError as exc:
        if exc.errno in (errno.ECONNRESET, errno.EPIPE) or isinstance(exc, ConnectionError):
            reset(dst)
        else:
            dst.close()


def _half_close(dst: asyncio.StreamWriter) -> None:
    if dst.can_write_eof() and not dst.is_closing():
        with contextlib.suppress(OSError):
            dst.write_eof()
