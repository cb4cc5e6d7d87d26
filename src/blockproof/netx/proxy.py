"""Reaching the network through a proxy: how VPN and Tor clients are exposed locally.

``ProxyNetwork(base, "socks5://HOST:PORT")`` (or ``http://HOST:PORT``, a CONNECT
proxy) is a ``Network``: every stream the probe opens goes to the proxy through
``base``, then asks the proxy for the real destination (SOCKS5 CONNECT, RFC 1928,
no authentication; or HTTP ``CONNECT ip:port``). What a censor on the path sees is
a connection to the proxy, not the ClientHello or the Host inside. Names are
resolved through the tunnel too, with DNS over HTTPS to ``doh_url`` at
``doh_ip`` (so a poisoned local resolver does not decide where the tunnel goes);
UDP is not carried (a UDP resolver query through the proxy fails, and is recorded
so).

The handshakes are small sans-IO functions (``socks5_request``, ``socks5_reply``,
``connect_request``, ``connect_reply``) wrapped by ``ProxyNetwork``'s I/O.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

from blockproof.errors import InputError
from blockproof.netx.network import Network

SCHEMES = ("socks5", "socks5h", "http")
DEFAULT_DOH = ("https://dns.google/dns-query", "8.8.8.8")
HANDSHAKE_TIMEOUT = 10.0

_SOCKS_ERRORS = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


@dataclass(frozen=True, slots=True)
class Proxy:
    scheme: str  # socks5 | http
    host: str
    port: int

    @property
    def label(self) -> str:
        return f"{'socks5' if self.scheme.startswith('socks') else 'http'} proxy"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_proxy(url: str) -> Proxy:
    """``socks5://HOST:PORT`` or ``http://HOST:PORT``; anything else is an InputError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InputError(f"--via must be socks5://HOST:PORT or http://HOST:PORT, not {url!r}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise InputError(f"--via needs a host and a port, as in socks5://127.0.0.1:1080: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise InputError(f"--via takes no path, query or credentials: {url!r}")
    return Proxy("socks5" if scheme == "socks5h" else scheme, parts.hostname, port)


# -- SOCKS5 (RFC 1928), client side, sans-IO -------------------------------------------


def socks5_request(ip: str, port: int) -> bytes:
    """The greeting (no authentication) and the CONNECT request, sent together."""
    address = ipaddress.ip_address(ip)
    atyp = b"\x01" if address.version == 4 else b"\x04"
    return b"\x05\x01\x00" + b"\x05\x01\x00" + atyp + address.packed + struct.pack("!H", port)


def socks5_reply(data: bytes) -> int | None:
    """How many bytes of ``data`` the method selection and the CONNECT reply take (None:
    incomplete); raises ConnectionError with the proxy's reason on a refusal."""
    if len(data) < 2:
        return None
    if data[0] != 5 or data[1] != 0:
        raise ConnectionRefusedError("the SOCKS5 proxy refused the method (no authentication)")
    reply = data[2:]
    if len(reply) < 5:
        return None
    if reply[0] != 5:
        raise ConnectionError("not a SOCKS5 reply")
    if reply[1] != 0:
        reason = _SOCKS_ERRORS.get(reply[1], f"error {reply[1]}")
        error = ConnectionRefusedError if reply[1] == 5 else ConnectionError
        raise error(f"the SOCKS5 proxy could not connect: {reason}")
    atyp = reply[3]
    size = {1: 4, 4: 16}.get(atyp)
    if size is None and atyp == 3:
        size = 1 + reply[4]
    if size is None:
        raise ConnectionError(f"SOCKS5 reply with an unknown address type {atyp}")
    need = 2 + 4 + size + 2
    return need if len(data) >= need else None


# -- HTTP CONNECT, client side, sans-IO --------------------------------------------------


def connect_request(ip: str, port: int) -> bytes:
    host = f"[{ip}]" if ":" in ip else ip
    return f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


def connect_reply(data: bytes) -> int | None:
    """The length of the proxy's answer head (None: incomplete); a non-2xx answer raises."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > 16_384:
            raise ConnectionError("the HTTP proxy's answer has no end of headers")
        return None
    status_line = data[: data.find(b"\r\n")].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP proxy answer: {status_line[:80]!r}")
    if not 200 <= int(parts[1]) < 300:
        raise ConnectionRefusedError(f"the HTTP proxy refused the tunnel: {status_line[:80]}")
    return end + 4


class ProxyNetwork:
    """A ``Network`` whose streams go through a proxy (see the module docstring)."""

    def __init__(
        self,
        base: Network,
        proxy: Proxy,
        *,
        proxy_ip: str,
        doh: tuple[str, str] = DEFAULT_DOH,
        ca_file: str | None = None,
    ) -> None:
        self.base = base
        self.proxy = proxy
        self.proxy_ip = proxy_ip
        self.doh_url, self.doh_ip = doh
        self.ca_file = ca_file

    async def open_stream(
        self, ip: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await self.base.open_stream(self.proxy_ip, self.proxy.port)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                if self.proxy.scheme == "http":
                    writer.write(connect_request(ip, port))
                    await writer.drain()
                    connect_reply(await reader.readuntil(b"\r\n\r\n"))
                else:
                    writer.write(socks5_request(ip, port))
                    await writer.drain()
                    # read exactly the answer, never a byte of the tunnel behind it
                    data = await reader.readexactly(7)
                    while (need := socks5_reply(data)) is None or need > len(data):
                        data += await reader.readexactly((need or len(data) + 1) - len(data))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise ConnectionResetError("the proxy closed the connection") from exc
        except BaseException:
            writer.close()
            raise
        return reader, writer

    def udp_address(self, ip: str, port: int) -> tuple[str, int]:
        # UDP is not carried through the tunnel: a datagram to a closed loopback port
        return self.base.udp_address("0.0.0.0", 9)

    async def getaddrinfo(self, host: str) -> list[str]:
        from blockproof.netx.dns import doh_addresses

        return await doh_addresses(
            self, host, self.doh_url, self.doh_ip, timeout=HANDSHAKE_TIMEOUT, ca_file=self.ca_file
        )
