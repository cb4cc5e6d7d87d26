"""A transparent ISP proxy: what a hijacked name leads to on many national networks.

Some ISPs answer DNS queries for chosen names with the address of their own proxy
(OONI's ``dnsHijackingToProxyWithHTTP(S)URL`` cases). The proxy accepts connections on
:80 and :443, learns where the client wanted to go from the HTTP ``Host`` header or
the TLS ClientHello's SNI (it never terminates TLS), resolves that name on the
clean network and relays the bytes, unchanged, to the real origin. So the probe
sees unexpected addresses in DNS, but the origin's real page and certificate.

A scenario declares one with ``role = "isp_proxy"`` on a ``[[host]]`` and sends
names to it with a ``dns`` ``forge`` rule. The proxy dials through the lab's
uncensored network (the origin sees the proxy, not the probe: its ``[host.probe]``
view does not apply). A name that cannot be read, resolved or reached, or that
leads back to a proxy, gets the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from blockproof.lab.censor import Censor, Opening, read_opening
from blockproof.lab.internet import ROLE_ISP_PROXY
from blockproof.lab.proxy import HANDSHAKE_TIMEOUT, Dial, Resolve, _dial, _relay
from blockproof.netx.network import READ_CHUNK

__all__ = ["is_isp_proxy", "receive_opening", "serve_transparent"]


def is_isp_proxy(censor: Censor, ip: str) -> bool:
    """Whether ``ip`` is an ISP proxy's address (a proxy never relays to another: loops)."""
    host = censor.host_by_ip(ip)
    return host is not None and host.role == ROLE_ISP_PROXY


async def receive_opening(
    reader: asyncio.StreamReader, timeout: float
) -> tuple[bytes, Opening] | None:
    """A client's first bytes, read until they show a whole ClientHello or request head
    (or the client stops sending): the bytes and what they say. None if nothing came
    within ``timeout``. Shared by this proxy and the censor's DPI box (``lab.py``)."""
    try:
        async with asyncio.timeout(timeout):
            first = await reader.read(READ_CHUNK)
            buffered = first
            while True:
                what = read_opening(first, buffered)
                if what.protocol != "incomplete":
                    return buffered, what
                more = await reader.read(READ_CHUNK)
                if not more:
                    return (buffered, what) if buffered else None
                buffered += more
    except (TimeoutError, OSError):
        return None


async def serve_transparent(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    port: int,
    dial: Dial,
    resolve: Resolve,
    is_proxy: Callable[[str], bool],
) -> None:
    """One client of the proxy's ``port`` (80 or 443); ``is_proxy(ip)`` breaks loops."""
    seen = await receive_opening(reader, HANDSHAKE_TIMEOUT)
    if seen is None:
        writer.close()
        return
    buffered, what = seen
    name = what.sni if port == 443 else what.host
    if what.protocol not in ("tls", "http") or not name:
        writer.close()
        return
    addresses: list[str] = []
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            addresses = await resolve(name)
    if not addresses or is_proxy(addresses[0]):
        writer.close()
        return
    upstream = await _dial(dial, resolve, addresses[0], port)
    if upstream is None:
        writer.close()
        return
    up_reader, up_writer = upstream
    up_writer.write(buffered)
    await _relay(reader, writer, up_reader, up_writer)
