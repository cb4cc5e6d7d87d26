"""The network seam: the only three things the probe asks of the operating system.

Every shell in ``blockproof.netx`` reaches the network through a ``Network``:

- ``open_stream(ip, port)``: a connected TCP stream to an IP address;
- ``udp_address(ip, port)``: where to really send a datagram meant for ``ip:port``;
- ``getaddrinfo(host)``: the system resolver.

``SystemNetwork`` is the real thing. The lab (``blockproof.lab``) supplies its
own implementation that keeps the realistic public addresses the probe sees and
records, while routing packets to loopback listeners through its censor. The
probe never imports the lab; the lab configures this seam.

Implementations raise the same exceptions the OS would (``ConnectionRefusedError``,
``socket.gaierror``, ...): mapping them to OONI failure strings is the shells' job
(``blockproof.netx.failures``), and timeouts are applied by the caller.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol

# Streams read at most this much per read() call.
READ_CHUNK = 65536


class Network(Protocol):
    async def open_stream(
        self, ip: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

    def udp_address(self, ip: str, port: int) -> tuple[str, int]: ...

    async def getaddrinfo(self, host: str) -> list[str]:
        """Addresses for ``host`` in resolver order, de-duplicated; raises socket.gaierror."""
        ...


class SystemNetwork:
    """The machine's own network stack."""

    async def open_stream(
        self, ip: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(ip, port, limit=READ_CHUNK)

    def udp_address(self, ip: str, port: int) -> tuple[str, int]:
        return ip, port

    async def getaddrinfo(self, host: str) -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        seen: dict[str, None] = {}
        for _family, _type, _proto, _canon, sockaddr in infos:
            seen.setdefault(str(sockaddr[0]), None)
        return list(seen)
