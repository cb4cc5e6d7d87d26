"""What the probe saw, one record per network operation (OONI df-001/002/005/006/008).

Pure data: frozen dataclasses whose field names are OONI's key names, so that
``blockproof.codec.ooni`` maps them to and from JSON with no renaming.
Times ``t0``/``t`` are seconds since the measurement started. ``failure`` is a
df-007 string (see ``blockproof.model.failure``) or ``None`` for success.

Tags follow OONI Web Connectivity LTE: ``classic`` (address came from the system
resolver), ``depth=N`` (redirect depth), ``fetch_body=true|false``,
``tcptls_experiment``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DNSAnswer:
    answer_type: str  # "A", "AAAA", "CNAME"
    ipv4: str | None = None
    ipv6: str | None = None
    hostname: str | None = None
    ttl: int | None = None
    asn: int = 0
    as_org_name: str = ""

    @property
    def address(self) -> str | None:
        return self.ipv4 or self.ipv6


@dataclass(frozen=True, slots=True, kw_only=True)
class DNSQuery:
    """One lookup (df-002). ``engine`` is getaddrinfo, udp, tcp or doh."""

    engine: str
    resolver_address: str
    hostname: str
    query_type: str
    answers: tuple[DNSAnswer, ...] = ()
    failure: str | None = None
    rcode: int | None = None
    raw_response: bytes | None = None
    t0: float = 0.0
    t: float = 0.0
    tags: tuple[str, ...] = ()
    transaction_id: int = 0

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(a.address for a in self.answers if a.address)


@dataclass(frozen=True, slots=True, kw_only=True)
class TCPConnect:
    """One TCP connect (df-005)."""

    ip: str
    port: int
    failure: str | None = None
    t0: float = 0.0
    t: float = 0.0
    tags: tuple[str, ...] = ()
    transaction_id: int = 0

    @property
    def success(self) -> bool:
        return self.failure is None

    @property
    def address(self) -> str:
        return join_endpoint(self.ip, self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSHandshake:
    """One TLS handshake (df-006). ``peer_certificates`` is the chain as DER, leaf first."""

    address: str
    server_name: str
    failure: str | None = None
    network: str = "tcp"
    tls_version: str = ""
    cipher_suite: str = ""
    negotiated_protocol: str = ""
    no_tls_verify: bool = False
    peer_certificates: tuple[bytes, ...] = ()
    t0: float = 0.0
    t: float = 0.0
    tags: tuple[str, ...] = ()
    transaction_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRequest:
    method: str
    url: str
    headers_list: tuple[tuple[str, str], ...] = ()
    body: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPResponse:
    code: int
    headers_list: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    body_is_truncated: bool = False

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitive."""
        lname = name.lower()
        for key, value in self.headers_list:
            if key.lower() == lname:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPTransaction:
    """One HTTP round trip (df-001). ``response`` is None when no response arrived."""

    request: HTTPRequest
    response: HTTPResponse | None = None
    failure: str | None = None
    network: str = "tcp"
    address: str = ""
    alpn: str = ""
    t0: float = 0.0
    t: float = 0.0
    tags: tuple[str, ...] = ()
    transaction_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkEvent:
    """One I/O event (df-008): connect, read, write, tls_handshake_start/done,
    bytes_received_cumulative."""

    operation: str
    address: str = ""
    failure: str | None = None
    num_bytes: int = 0
    proto: str = "tcp"
    t0: float = 0.0
    t: float = 0.0
    tags: tuple[str, ...] = ()
    transaction_id: int = 0


@dataclass(slots=True, kw_only=True)
class Trace:
    """Everything one measurement recorded, in the order it happened."""

    queries: list[DNSQuery] = field(default_factory=list)
    dns_duplicate_responses: list[DNSQuery] = field(default_factory=list)
    tcp_connect: list[TCPConnect] = field(default_factory=list)
    tls_handshakes: list[TLSHandshake] = field(default_factory=list)
    requests: list[HTTPTransaction] = field(default_factory=list)
    network_events: list[NetworkEvent] = field(default_factory=list)


def join_endpoint(ip: str, port: int) -> str:
    """``1.2.3.4:443`` or ``[2001:db8::1]:443``, as OONI writes endpoints."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """Inverse of ``join_endpoint``; raises ValueError on a malformed endpoint."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"not an ip:port endpoint: {endpoint!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port out of range in {endpoint!r}")
    return host, number
