"""The kernel lab's censor: the ISP's resolver, a DNS interceptor and a transparent DPI box.

Theory of operation
-------------------
This process runs inside the censor's router namespace. The kernel forwards the
probe's packets to the internet namespace; the scenario's nftables table
(``plan.censor_ruleset``) drops or resets the ``tcp`` rules' flows, and redirects

* the probe's DNS to the public resolver (UDP and TCP :53) to the **interceptor**
  here (``plan.DNS_PORT``): a query a ``dns`` rule matches is answered by the censor
  (NXDOMAIN, a forgery, silence...); an ``inject`` rule sends its forgery at once,
  as a real UDP packet that races the real reply, and forwards the query; the rest
  is forwarded to the real resolver and its replies relayed. Replies leave from the
  redirected socket, so conntrack gives them the resolver's address, as on-path
  injectors do;
* the probe's TCP flows to served endpoints, when the scenario has ``tls``, ``http`` or
  ``throttle`` rules, to the **DPI proxy** here (``plan.DPI_PORT``). It learns the
  flow's real destination (``SO_ORIGINAL_DST``), reads the client's opening (the first
  read is the first segment: ``inspect = "first_segment"`` sees only it), applies the
  first matching rule with the in-process lab's own actions (``lab.carry_out``: a
  real RST, FIN, silence, a blockpage, a redirect, or the MITM server), and otherwise
  connects to the destination and relays. A throttled flow's socket gets its rule's
  htb class as ``SO_PRIORITY``, so the kernel's tbf caps its bytes to the probe and
  nftables drops its share of packets (``loss``); ``delay_ms`` delays the relay.

The **ISP resolver** (the probe's ``/etc/resolv.conf``) answers on the gateway's
address from the lab's zone with the ``dns`` rules of the ``system`` path: glibc's
real ``getaddrinfo`` in the probe's namespace reads its replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any, cast

import dns.message

from blockproof.lab.censor import Censor, DNSOutcome
from blockproof.lab.internet import ROLE_RESOLVER
from blockproof.lab.ispproxy import receive_opening
from blockproof.lab.kernel.daemon import Handler, UDPServer, guarded
from blockproof.lab.kernel.plan import DNS_PORT, DPI_PORT, GATEWAY, role_address, throttle_classid
from blockproof.lab.lab import (
    OPENING_TIMEOUT,
    answer_dns,
    carry_out,
    dns_reply,
    mitm_site,
    pipe,
    reset,
    serve_dns_tcp,
    site_handler,
)
from blockproof.lab.pki import LabPKI
from blockproof.lab.scenario import Rule, Scenario
from blockproof.netx.network import READ_CHUNK

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
UPSTREAM_TIMEOUT = 3.0  # how long the interceptor waits for the real resolver
MAX_RELAYED = 2000  # replies relayed per forwarded UDP query (a reply flood is bounded)
CONNECT_TIMEOUT = 10.0


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """Where a redirected connection was going (``SO_ORIGINAL_DST``)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    (port,) = struct.unpack_from("!H", raw, 2)
    return socket.inet_ntoa(raw[4:8]), port


class CensorBox:
    """The censor namespace's processes for one scenario."""

    def __init__(self, scenario: Scenario, pki: LabPKI) -> None:
        self.scenario = scenario
        self.censor = Censor(scenario)
        self.rtt = 0.0
        self.pki = pki
        self._servers: list[asyncio.Server] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._blockpages: dict[str, bytes] = {}
        self._mitm: dict[int, tuple[str, int]] = {}
        self._throttle_index = {id(r): i for i, r in enumerate(scenario.rules_for("throttle"))}
        resolver = role_address(scenario, ROLE_RESOLVER)
        self.upstream = (resolver, 53) if resolver else None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # the ISP's resolver: the system path
        transport, _ = await loop.create_datagram_endpoint(
            lambda: UDPServer(lambda data, _peer: [w for _d, w in self._isp_answer(data)]),
            local_addr=(GATEWAY, 53),
        )
        self._udp.append(transport)
        await self._listen(GATEWAY, 53, self._isp_tcp)
        # the interceptor: the probe's queries to the public resolver
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Interceptor(self), local_addr=("0.0.0.0", DNS_PORT)
        )
        self._udp.append(transport)
        await self._listen("0.0.0.0", DNS_PORT, self._intercept_tcp)
        # the DPI box and its interception servers
        for rule in self.scenario.rules_for("tls"):
            if rule.action == "mitm":
                host = mitm_site(rule)
                server = await asyncio.start_server(
                    guarded(site_handler(host, "https", self._blockpages)), "127.0.0.1", 0,
                    ssl=self.pki.mitm_context(host.names),
                )  # fmt: skip
                self._servers.append(server)
                self._mitm[id(rule)] = ("127.0.0.1", int(server.sockets[0].getsockname()[1]))
        await self._listen("0.0.0.0", DPI_PORT, self._dpi)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()

    async def _listen(self, ip: str, port: int, handler: Handler) -> None:
        server = await asyncio.start_server(
            guarded(handler), ip, port, limit=READ_CHUNK, backlog=1024, reuse_address=True
        )
        self._servers.append(server)

    # --- DNS -------------------------------------------------------------------------

    def _isp_answer(self, data: bytes) -> list[tuple[float, bytes]]:
        return answer_dns(self, data, "system", censored=True, hostile_too=False)

    async def _isp_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_dns_tcp(reader, writer, self._isp_answer)

    def decide(self, data: bytes) -> tuple[Rule | None, dns.message.Message | None]:
        """The ``dns`` rule (udp path) for a query to the public resolver, and the query;
        a name the hostile resolver owns is left to it, as in the in-process lab."""
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None, None
        if not query.question:
            return None, None
        name = query.question[0].name.to_text(omit_final_dot=True)
        if self.scenario.hostile_dns(name) is not None:
            return None, query
        return self.censor.dns_rule(name, "udp"), query

    def censored_replies(self, rule: Rule, query: dns.message.Message, data: bytes) -> list[bytes]:
        """The censor's own replies to a query ``rule`` matched (an injector's forgery only;
        the real reply is forwarded)."""
        if rule.action == "inject":
            return [dns_reply(query, DNSOutcome(addresses=(rule.answer,)))]
        return [wire for _d, wire in answer_dns(self, data, "udp", censored=True,
                                               hostile_too=False)]  # fmt: skip

    async def _intercept_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async def answer(data: bytes) -> list[tuple[float, bytes]]:
            rule, query = self.decide(data)
            if rule is not None and query is not None and rule.action != "inject":
                return [(0.0, w) for w in self.censored_replies(rule, query, data)]
            reply = await self._forward_tcp(data)
            return [(0.0, reply)] if reply else []

        try:
            for _ in range(100):
                async with asyncio.timeout(30):
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(length)
                replies = await answer(data)
                if replies:
                    wire = replies[-1][1]
                    writer.write(struct.pack("!H", len(wire)) + wire)
                    await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            writer.close()

    async def _forward_tcp(self, data: bytes) -> bytes:
        if self.upstream is None:
            return b""
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            async with asyncio.timeout(UPSTREAM_TIMEOUT):
                reader, writer = await asyncio.open_connection(*self.upstream)
                try:
                    writer.write(struct.pack("!H", len(data)) + data)
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    return await reader.readexactly(length)
                finally:
                    writer.close()
        return b""

    # --- the DPI box -----------------------------------------------------------------

    async def _dpi(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock: socket.socket = writer.get_extra_info("socket")
        ip, port = original_destination(sock)
        seen = await receive_opening(reader, OPENING_TIMEOUT)
        if seen is None:
            writer.close()
            return
        opening, what = seen
        target = (ip, port)
        rule = None
        if what.protocol == "tls":
            rule = self.censor.tls(what, ip, port)
        elif what.protocol == "http":
            rule = self.censor.http(what, ip, port)
        if rule is not None:
            detour = await carry_out(
                rule, reader, writer, self._blockpages, self._mitm.get(id(rule))
            )
            if detour is None:
                return
            target = detour
        throttle = self.censor.throttle(what.sni or what.host, ip, port)
        if throttle is not None:
            classid = throttle_classid(self._throttle_index[id(throttle)])
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, classid)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                up_reader, up_writer = await asyncio.open_connection(*target, limit=READ_CHUNK)
        except (OSError, TimeoutError):
            reset(writer)
            return
        delay = throttle.delay_ms / 1000.0 if throttle is not None else 0.0
        try:
            await asyncio.gather(
                pipe(reader, up_writer, 0.0, 0.0, opening),
                pipe(up_reader, writer, delay, 0.0, b""),
            )
        finally:
            up_writer.close()
            writer.close()


class _Interceptor(asyncio.DatagramProtocol):
    """The probe's UDP queries to the public resolver, redirected here by nftables."""

    def __init__(self, box: CensorBox) -> None:
        self.box = box
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self.transport is not None
        rule, query = self.box.decide(data)
        if rule is not None and query is not None:
            for wire in self.box.censored_replies(rule, query, data):
                self.transport.sendto(wire, addr)  # the forgery races the real reply
            if rule.action != "inject":
                return
        task = asyncio.create_task(self._forward(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Send the query on to the real resolver; relay what it answers."""
        if self.box.upstream is None:
            return
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        class Upstream(asyncio.DatagramProtocol):
            def datagram_received(self, reply: bytes, _addr: tuple[str | Any, int]) -> None:
                replies.put_nowait(reply)

        transport, _ = await loop.create_datagram_endpoint(Upstream, remote_addr=self.box.upstream)
        try:
            transport.sendto(data)
            async with asyncio.timeout(UPSTREAM_TIMEOUT):
                for _ in range(MAX_RELAYED):
                    reply = await replies.get()
                    if self.transport is not None and not self.transport.is_closing():
                        self.transport.sendto(reply, addr)
        except TimeoutError:
            pass
        finally:
            transport.close()
