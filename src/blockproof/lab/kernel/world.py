"""The kernel lab's internet: every host's servers at its public addresses, for real.

Theory of operation
-------------------
This process runs inside the internet namespace, where ``plan.link_commands`` put
every lab host's addresses on the loopback interface. It binds the same servers
the in-process lab uses (``lab.origin`` pages, ``lab.hostile`` misbehaviour,
``lab.proxy`` and ``lab.ispproxy`` relays, the resolver's UDP, TCP and DoH
answers) to those addresses and the host's real ports, and starts blockproof's own
control server (``blockproof serve control``) on the control host's address.

There is no wire and no censor here: the censor is a router namespace away. What
the in-process lab learns from its wire (is this flow the probe's?) this process
learns from the peer's address: the probe's requests come from
``plan.PROBE_SIDE`` (directly, or from the DPI proxy), so they get a host's
``[host.probe]`` view and the hostile resolver's answers; everyone else (the control
server, the proxies abroad, the ISP's transparent proxy) sees the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from blockproof.lab import hostile, ispproxy, proxy
from blockproof.lab.censor import Censor
from blockproof.lab.internet import (
    CONNECT_PORT,
    ROLE_CONTROL,
    ROLE_ISP_PROXY,
    ROLE_PROXY,
    ROLE_RESOLVER,
    ROLE_SITE,
    SOCKS_PORT,
    Host,
)
from blockproof.lab.kernel.daemon import Handler, UDPServer, guarded
from blockproof.lab.kernel.plan import from_probe_side, ipv4
from blockproof.lab.lab import answer_dns, serve_dns_tcp, serve_doh, site_handler
from blockproof.lab.pki import LabPKI
from blockproof.lab.scenario import Scenario
from blockproof.netx.network import READ_CHUNK

CONTROL_START_TIMEOUT = 30.0


class World:
    """The internet namespace's servers for one scenario."""

    def __init__(self, scenario: Scenario, pki: LabPKI, run_dir: Path) -> None:
        self.scenario = scenario
        self.censor = Censor(scenario)
        self.rtt = 0.0  # delays are the kernel's (netem), not ours
        self.pki = pki
        self.run_dir = run_dir
        self._servers: list[asyncio.Server] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._blockpages: dict[str, bytes] = {}
        self._control: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        for host in self.scenario.hosts:
            if host.down != "no":
                continue  # refuse: nothing listens; timeout: nftables drops
            match host.role:
                case r if r == ROLE_SITE:
                    await self._site(host)
                case r if r == ROLE_ISP_PROXY:
                    for port, on in ((80, host.http), (443, host.https)):
                        if on:
                            await self._listen(host, port, self._isp_proxy(port))
                case r if r == ROLE_RESOLVER:
                    await self._resolver(host)
                case r if r == ROLE_PROXY:
                    await self._listen(host, SOCKS_PORT, self._relay(proxy.serve_socks5))
                    await self._listen(host, CONNECT_PORT, self._relay(proxy.serve_connect))
                case r if r == ROLE_CONTROL:
                    await self._start_control(host)

    async def stop(self) -> None:
        if self._control is not None and self._control.returncode is None:
            self._control.terminate()
            try:
                await asyncio.wait_for(self._control.wait(), 5)
            except TimeoutError:
                self._control.kill()
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()

    # --- servers ---------------------------------------------------------------------

    async def _listen(
        self, host: Host, port: int, handler: Handler, ctx: ssl.SSLContext | None = None
    ) -> None:
        for ip in ipv4(host.addresses):
            server = await asyncio.start_server(
                guarded(handler), ip, port, ssl=ctx, limit=READ_CHUNK, backlog=1024,
                reuse_address=True,
            )  # fmt: skip
            self._servers.append(server)

    async def _site(self, host: Host) -> None:
        for port, scheme, on in ((80, "http", host.http), (443, "https", host.https)):
            if not on:
                continue
            ctx = self.pki.server_context(host) if scheme == "https" else None
            plain = site_handler(host, scheme, self._blockpages)
            probe = site_handler(host, scheme, self._blockpages, probe=True) if host.probe else None
            handler = _by_peer(plain, probe)
            if host.hostile:
                misbehaving = hostile.site_listener(host.hostile, scheme)
                if misbehaving is not None:
                    handler, speaks_tls = misbehaving
                    ctx = ctx if speaks_tls else None
            await self._listen(host, port, handler, ctx)

    async def _resolver(self, host: Host) -> None:
        """UDP and TCP :53 and DNS over HTTPS on :443: the truth, except that the probe's
        queries meet the scenario's hostile ``[[resolver]]``."""
        loop = asyncio.get_running_loop()

        def answer(data: bytes, peer: str | None, transport: str) -> list[tuple[float, bytes]]:
            return answer_dns(
                self, data, "udp", censored=False, transport=transport,
                hostile_too=from_probe_side(peer),
            )  # fmt: skip

        for ip in ipv4(host.addresses):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UDPServer(lambda data, peer: [w for _d, w in answer(data, peer, "udp")]),
                local_addr=(ip, 53),
            )
            self._udp.append(transport)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = _peer(writer)
            await serve_dns_tcp(reader, writer, lambda data: answer(data, peer, "tcp"))

        async def doh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = _peer(writer)
            await serve_doh(reader, writer, lambda data: answer(data, peer, "doh"))

        await self._listen(host, 53, tcp)
        await self._listen(host, 443, doh, self.pki.server_context(host))

    def _relay(
        self,
        serve: Callable[
            [asyncio.StreamReader, asyncio.StreamWriter, proxy.Dial, proxy.Resolve],
            Coroutine[Any, Any, None],
        ],
    ) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await serve(reader, writer, _dial, _resolve)

        return handle

    def _isp_proxy(self, port: int) -> Handler:
        is_proxy = functools.partial(ispproxy.is_isp_proxy, self.censor)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await ispproxy.serve_transparent(reader, writer, port, _dial, _resolve, is_proxy)

        return handle

    async def _start_control(self, host: Host) -> None:
        """blockproof's own control server, unmodified, as ``blockproof serve control``."""
        ip = ipv4(host.addresses)[0]
        log = (self.run_dir / "control.log").open("ab")
        self._control = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "blockproof", "serve", "control", "--host", ip, "--port", "80",
            "--ca-file", self.pki.ca_file,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env={**os.environ, "BLOCKPROOF_HOME": str(self.run_dir / "control-home")},
        )  # fmt: skip
        log.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONTROL_START_TIMEOUT
        while loop.time() < deadline:
            if self._control.returncode is not None:
                raise RuntimeError(
                    f"the control server exited ({self._control.returncode}); "
                    f"see {self.run_dir / 'control.log'}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(ip, 80)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the control server did not start in {CONTROL_START_TIMEOUT:g} s")


async def _dial(ip: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(ip, port, limit=READ_CHUNK)


async def _resolve(name: str) -> list[str]:
    """The clean network's resolution: this namespace's resolv.conf names 8.8.8.8, which
    answers the truth to anyone but the probe."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        name, None, family=socket.AF_INET, type=socket.SOCK_STREAM
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _peer(writer: asyncio.StreamWriter) -> str | None:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if peer else None


def _by_peer(plain: Handler, probe: Handler | None) -> Handler:
    """Serve the probe's requests (``plan.PROBE_SIDE``) with ``probe``, others with ``plain``."""
    if probe is None:
        return plain

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await (probe if from_probe_side(_peer(writer)) else plain)(reader, writer)

    return handle
