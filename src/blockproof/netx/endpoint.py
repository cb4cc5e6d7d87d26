"""One endpoint, step by step: TCP connect, TLS with SNI (https), HTTP GET.

Each step runs only if the previous one succeeded, under its own timeout, and
leaves its record in the Recorder's trace. Used by the probe (one call per
resolved address and redirect depth) and by the control server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from blockproof.model.observations import (
    HTTPRequest,
    HTTPTransaction,
    TCPConnect,
    TLSHandshake,
    join_endpoint,
)
from blockproof.netx.http import http_round_trip
from blockproof.netx.network import Network
from blockproof.netx.stream import ByteStream
from blockproof.netx.tcp import tcp_connect
from blockproof.netx.tls import tls_handshake
from blockproof.netx.trace import TX_CLEARTEXT, TX_TLS, Recorder


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    dns: float = 4.0
    tcp: float = 10.0
    tls: float = 10.0
    http: float = 10.0


@dataclass(frozen=True, slots=True)
class EndpointResult:
    tcp: TCPConnect
    tls: TLSHandshake | None
    http: HTTPTransaction | None


def url_port(url: str) -> int:
    parts = urlsplit(url)
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80


async def measure_endpoint(
    network: Network,
    recorder: Recorder,
    ip: str,
    port: int,
    *,
    server_name: str,
    use_tls: bool,
    request: HTTPRequest | None,
    timeouts: Timeouts,
    may_fetch: Callable[[], Awaitable[bool]] | None = None,
    ca_file: str | None = None,
    first_flight_splits: int = 1,
    tags: tuple[str, ...] = (),
    record: bool = True,
) -> EndpointResult:
    """Connect to ``ip:port``; TLS if ``use_tls``; GET ``request`` if given.

    ``may_fetch``, when given, is awaited once the connection is up: may this
    endpoint fetch? (The probe lets one connection per redirect depth fetch.)
    """
    tx = recorder.next_id(TX_TLS if use_tls else TX_CLEARTEXT)
    tcp, tcp_stream = await tcp_connect(
        network, recorder, ip, port, timeout=timeouts.tcp, tags=tags, transaction_id=tx,
        record=record,
    )  # fmt: skip
    if tcp_stream is None:
        return EndpointResult(tcp, None, None)
    stream: ByteStream = tcp_stream
    tls: TLSHandshake | None = None
    if use_tls:
        tls, tls_stream = await tls_handshake(
            recorder, tcp_stream, server_name, timeout=timeouts.tls, ca_file=ca_file,
            first_flight_splits=first_flight_splits, tags=tags, transaction_id=tx, record=record,
        )  # fmt: skip
        if tls_stream is None:
            return EndpointResult(tcp, tls, None)
        stream = tls_stream
    if request is None or (may_fetch is not None and not await may_fetch()):
        stream.close()
        return EndpointResult(tcp, tls, None)
    http = await http_round_trip(
        recorder, stream, request, timeout=timeouts.http, address=join_endpoint(ip, port),
        alpn=tls.negotiated_protocol if tls else "", tags=tags, transaction_id=tx, record=record,
    )  # fmt: skip
    return EndpointResult(tcp, tls, http)
