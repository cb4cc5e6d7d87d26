"""OONI's test-helper protocol (THRequest in, THResponse out), as pure data.

The control server answers a ``ControlRequest`` with a ``ControlResponse``
measured from its own (uncensored) vantage point. Field names are OONI's.
Failure strings here use the helper's legacy names (``ControlFailure``):
``dns_name_error``, ``connection_refused_error``, ``connect_error``...
``http_request.body_length`` and ``status_code`` are -1 on failure.

``ip_info`` flags: 1 resolved by the probe, 2 resolved by the helper,
4 bogon, 8 valid for the domain (a TLS handshake with its SNI succeeded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

IP_FLAG_RESOLVED_BY_PROBE = 1
IP_FLAG_RESOLVED_BY_TH = 2
IP_FLAG_BOGON = 4
IP_FLAG_VALID_FOR_DOMAIN = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlRequest:
    http_request: str
    http_request_headers: dict[str, list[str]] = field(default_factory=dict)
    tcp_connect: tuple[str, ...] = ()
    x_quic_enabled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlTCPConnect:
    status: bool
    failure: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlTLSHandshake:
    server_name: str
    status: bool
    failure: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlHTTPRequest:
    body_length: int = -1
    failure: str | None = None
    title: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    status_code: int = -1
    discovered_h3_endpoint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlDNS:
    failure: str | None = None
    addrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlIPInfo:
    asn: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlResponse:
    tcp_connect: dict[str, ControlTCPConnect] = field(default_factory=dict)
    tls_handshake: dict[str, ControlTLSHandshake] = field(default_factory=dict)
    http_request: ControlHTTPRequest | None = None
    dns: ControlDNS | None = None
    ip_info: dict[str, ControlIPInfo] = field(default_factory=dict)
