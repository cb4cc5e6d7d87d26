"""The lab's proxy outside the censor: a SOCKS5 server and an HTTP CONNECT proxy.

A VPN or Tor client exposes itself to applications as a local proxy; what the
censor sees is the connection to the proxy's server abroad. The lab models that
server: the probe reaches it through the censored wire (a connection to the
proxy's public address, whose opening is a SOCKS5 greeting or a CONNECT request),
and the proxy dials the destination through the lab's uncensored network, the
one the control server uses. A scenario can still block the proxy itself (a
``tcp`` rule on its address), as censors block known VPN servers.

Bounded: the handshake must arrive within ``HANDSHAKE_TIMEOUT``; only CONNECT,
to IPv4/IPv6 addresses or names, is supported; anything else is answered with the
protocol's error and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
from collections.abc import Awaitable, Callable

from blockproof.netx.network import READ_CHUNK

HANDSHAKE_TIMEOUT = 10.0
Dial = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
Resolve = Callable[[str], Awaitable[list[str]]]


async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(READ_CHUNK):
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(OSError):
            if dst.can_write_eof():
                dst.write_eof()

    try:
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
    finally:
        up_writer.close()
        writer.close()


async def _dial(
    dial: Dial, resolve: Resolve, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        try:
            ip = str(ipaddress.ip_address(host))
        except ValueError:
            ip = (await resolve(host))[0]
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            return await dial(ip, port)
    except (OSError, TimeoutError, IndexError):
        return None


async def serve_socks5(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dial: Dial, resolve: Resolve
) -> None:
    """One SOCKS5 client (RFC 1928, no authentication, CONNECT only)."""
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            version, count = await reader.readexactly(2)
            methods = await reader.readexactly(count)
            if version != 5 or 0 not in methods:
                writer.write(b"\x05\xff")
                writer.close()
                return
            writer.write(b"\x05\x00")
            version, command, _reserved, atyp = await reader.readexactly(4)
            if atyp == 1:
                host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
            elif atyp == 4:
                host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
            elif atyp == 3:
                (size,) = await reader.readexactly(1)
                host = (await reader.readexactly(size)).decode("idna")
            else:
                writer.write(b"\x05\x08\x00\x01" + bytes(6))
                writer.close()
                return
            (port,) = struct.unpack("!H", await reader.readexactly(2))
            if version != 5 or command != 1:
                writer.write(b"\x05\x07\x00\x01" + bytes(6))
                writer.close()
                return
    except (asyncio.IncompleteReadError, TimeoutError, UnicodeError, OSError):
        writer.close()
        return
    upstream = await _dial(dial, resolve, host, port)
    if upstream is None:
        writer.write(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
        writer.close()
        return
    writer.write(b"\x05\x00\x00\x01" + bytes(6))
    await _relay(reader, writer, *upstream)


async def serve_connect(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dial: Dial, resolve: Resolve
) -> None:
    """One HTTP CONNECT client (anything but CONNECT is answered 405)."""
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
        writer.close()
        return
    request = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(request) != 3 or request[0] != "CONNECT":
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    host, _, port_text = request[1].rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    upstream = await _dial(dial, resolve, host, int(port_text))
    if upstream is None:
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    await _relay(reader, writer, *upstream)
