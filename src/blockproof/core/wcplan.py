"""The Web Connectivity plan: what to dial for a URL, what to ask the control, who fetches.

Theory of operation
-------------------

This module decides; it never does. The experiment (``experiments.web_connectivity``)
runs the plan over real sockets, the control server (``control.measure``) runs its half
from an uncensored vantage point, and the simulator's virtual probe (``simulate``)
replays both without any network. Keeping the decisions here, pure and sans-IO, is what
makes the three agree (OONI Web Connectivity 0.5, "LTE").

The probe's side, per redirect depth:

- *Lookups.* The system resolver (``getaddrinfo``, tags ``classic``, ``depth=N``) at
  every depth; DNS over UDP (tag ``depth=N``) only at depth 0, as injection evidence.
- *Dialable addresses.* Loopback is never dialed (a bogon is: it may serve a
  blockpage); at most ``MAX_ADDRESSES`` per lookup. The UDP resolver's addresses are
  dialed only when the system resolver did not return them; the control's addresses
  (OONI's extension E005) only when no resolver of the probe returned them.
- *Endpoints.* For every address: the URL's port, with TLS (SNI: the URL's host) for
  https, and allowed to fetch; for an http URL without an explicit port, also :443 with
  TLS and never fetching (TLS-based validation of the address). Tags: ``classic`` for
  the system resolver's addresses, ``tcptls_experiment`` for TLS at depth 0, then
  ``depth=N`` and ``fetch_body=true|false``.
- *Fetch priority* (OONI's ``priority.go``). Exactly one connection per depth fetches
  the page. The system resolver's addresses come first, then the UDP resolver's, then
  the control's (``Source``): a connection that is up asks ``FetchPriority.may_fetch``,
  which grants (the first to ask once every connection of a higher-priority source has
  finished), refuses (someone else fetched), or says wait (``None``). The experiment
  wraps it in an ``asyncio.Condition``; the simulator replays it in time order.
- *Control request* (THRequest). The URL in IDNA form, the browser's headers minus
  ``Host``, and ``tcp_connect``: every system-resolver address times the control ports
  (an explicit port: that port; https: 443; http: 443 and 80).

The control's side:

- *Endpoints.* The probe's ``tcp_connect`` first, then every address the control
  resolved times the helper ports (an explicit port: that port; https: 443; http: 80
  and 443), without duplicates; only addresses that pass ``may_dial`` (no bogon,
  loopback, private or non-global address, nor one that embeds a non-dialable IPv4
  address), at most ``MAX_ENDPOINTS``; TLS on :443 when the host is a name.
- *ip_info.* For every address the probe sent or the control resolved: resolved by
  the probe (1), by the control (2), bogon (4), valid for the domain (8: a TLS
  handshake to it with the host as SNI succeeded).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from urllib.parse import SplitResult, urlsplit

from blockproof.core.bogons import is_bogon, is_loopback
from blockproof.core.http import browser_request
from blockproof.core.idn import host_to_ascii, url_to_ascii
from blockproof.model.control import (
    IP_FLAG_BOGON,
    IP_FLAG_RESOLVED_BY_PROBE,
    IP_FLAG_RESOLVED_BY_TH,
    IP_FLAG_VALID_FOR_DOMAIN,
    ControlIPInfo,
    ControlRequest,
    ControlResponse,
)
from blockproof.model.observations import join_endpoint, split_endpoint

__all__ = [
    "MAX_ADDRESSES",
    "MAX_ENDPOINTS",
    "DepthPlan",
    "Endpoint",
    "FetchPriority",
    "HelperEndpoint",
    "Source",
    "control_only",
    "control_ports",
    "control_request",
    "dialable",
    "endpoint_tags",
    "endpoints",
    "helper_endpoints",
    "helper_ports",
    "ip_info",
    "looks_up_over_udp",
    "lookup_tags",
    "may_dial",
    "probe_addresses",
    "udp_only",
]

MAX_ADDRESSES = 8  # the probe dials at most this many addresses of one lookup
MAX_ENDPOINTS = 32  # the control dials at most this many endpoints for one request

HTTPS_PORT = 443
HTTP_PORT = 80


class Source(IntEnum):
    """Where an address came from, in the order OONI's ``priority.go`` lets them fetch."""

    SYSTEM = 0  # the system resolver (OONI's "classic")
    UDP = 1  # only the DNS-over-UDP resolver returned it
    CONTROL = 2  # only the control resolved it (extension E005)


def _url_port(parts: SplitResult) -> int:
    """The port a URL's connection goes to (ValueError for a malformed port)."""
    if parts.port is not None:
        return parts.port
    return HTTPS_PORT if parts.scheme == "https" else HTTP_PORT


# --------------------------------------------------------------------------------------
# the probe's side


def looks_up_over_udp(depth: int) -> bool:
    """DNS over UDP only at depth 0: the injection evidence is gathered once."""
    return depth == 0


def lookup_tags(depth: int, source: Source) -> tuple[str, ...]:
    """The tags of a lookup: the system resolver's is OONI's ``classic`` one."""
    if source is Source.SYSTEM:
        return ("classic", f"depth={depth}")
    return (f"depth={depth}",)


def dialable(addresses: Iterable[str]) -> list[str]:
    """Loopback is never dialed (bogons are: they may serve a blockpage); at most
    ``MAX_ADDRESSES``."""
    return [a for a in addresses if not is_loopback(a)][:MAX_ADDRESSES]


def udp_only(udp_addresses: Iterable[str], system_addresses: Collection[str]) -> list[str]:
    """The UDP resolver's dialable addresses the system resolver did not return."""
    known = set(system_addresses)
    return [a for a in dialable(udp_addresses) if a not in known]


def control_only(response: ControlResponse | None, dialed: Collection[str]) -> list[str]:
    """Addresses only the control resolved (OONI's extension E005), to be dialed too."""
    if response is None or response.dns is None:
        return []
    return [a for a in dialable(response.dns.addrs) if a not in dialed]


def endpoint_tags(depth: int, source: Source, *, tls: bool, fetch: bool) -> tuple[str, ...]:
    """OONI's tags of one connection, in OONI's order."""
    tags: list[str] = []
    if source is Source.SYSTEM:
        tags.append("classic")
    if tls and depth == 0:
        tags.append("tcptls_experiment")
    tags.append(f"depth={depth}")
    tags.append(f"fetch_body={'true' if fetch else 'false'}")
    return tuple(tags)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One connection the probe makes: TCP to ``ip:port``, then TLS if ``tls``; it may
    fetch the page if ``fetch`` (and the fetch priority grants it)."""

    ip: str
    port: int
    tls: bool
    fetch: bool
    source: Source
    tags: tuple[str, ...]

    @property
    def address(self) -> str:
        return join_endpoint(self.ip, self.port)


def endpoints(url: str, addresses: Iterable[str], depth: int, source: Source) -> list[Endpoint]:
    """Every connection to ``addresses`` for ``url``, address by address."""
    parts = urlsplit(url)
    port = _url_port(parts)
    https = parts.scheme == "https"
    plan: list[tuple[int, bool, bool]] = [(port, https, True)]
    if not https and parts.port is None:  # TLS-based validation of the address
        plan.append((HTTPS_PORT, True, False))
    return [
        Endpoint(ip, port, tls, fetch, source, endpoint_tags(depth, source, tls=tls, fetch=fetch))
        for ip in addresses
        for port, tls, fetch in plan
    ]


class FetchPriority:
    """Exactly one connection per redirect depth fetches the page (OONI's ``priority.go``).

    Plain state, no waiting: every connection allowed to fetch is ``expect``-ed when it
    is planned and ``finished`` once it is done (failed, refused or fetched). A connection
    that is up asks ``may_fetch``: ``True`` (granted: it fetches, and every later asker
    is refused), ``False`` (refused: someone fetched already) or ``None`` (wait: a
    connection of a higher-priority source may still fetch; ask again after the next
    ``finished``).
    """

    def __init__(self) -> None:
        self._pending = [0] * len(Source)
        self._claimed = False

    @property
    def claimed(self) -> bool:
        return self._claimed

    def expect(self, source: Source) -> None:
        self._pending[source] += 1

    def finished(self, source: Source) -> None:
        self._pending[source] -= 1

    def may_fetch(self, source: Source) -> bool | None:
        if self._claimed:
            return False
        if any(self._pending[:source]):
            return None
        self._claimed = True
        return True


@dataclass(slots=True)
class DepthPlan:
    """One redirect depth: the addresses dialed so far and who may fetch."""

    url: str
    depth: int
    dialed: set[str] = field(default_factory=set)
    priority: FetchPriority = field(default_factory=FetchPriority)

    @property
    def host(self) -> str:
        """What goes on the wire (DNS, SNI): the IDNA form of an internationalized name."""
        return host_to_ascii(urlsplit(self.url).hostname or "")

    def admit(self, addresses: Iterable[str], source: Source) -> list[Endpoint]:
        """The connections to the addresses not dialed yet at this depth; they count as
        dialed from now on, and each one allowed to fetch is expected by the priority."""
        fresh: list[str] = []
        for ip in addresses:
            if ip not in self.dialed:
                self.dialed.add(ip)
                fresh.append(ip)
        planned = endpoints(self.url, fresh, self.depth, source)
        for endpoint in planned:
            if endpoint.fetch:
                self.priority.expect(source)
        return planned


def control_ports(url: str) -> tuple[int, ...]:
    """The ports of the control request's ``tcp_connect``: an explicit port; https: 443;
    http: 443 and 80."""
    parts = urlsplit(url)
    if parts.port is not None:
        return (parts.port,)
    if parts.scheme == "https":
        return (HTTPS_PORT,)
    return (HTTPS_PORT, HTTP_PORT)


def control_request(url: str, addresses: Iterable[str]) -> ControlRequest:
    """The THRequest for ``url``: every ``ip:port`` the probe is about to dial."""
    ports = control_ports(url)
    return ControlRequest(
        http_request=url_to_ascii(url),
        http_request_headers={k: [v] for k, v in browser_request(url).headers_list if k != "Host"},
        tcp_connect=tuple(join_endpoint(ip, port) for ip in addresses for port in ports),
    )


# --------------------------------------------------------------------------------------
# the control's side

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_V4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")


def may_dial(address: str) -> bool:
    """May the control server connect to ``address``? (No bogons, loopback, private...)"""
    if is_bogon(address):
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None or ip.ipv4_mapped is not None:
            return False
        low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        embeds = ip in _V4_COMPATIBLE or ip in _V4_TRANSLATED or any(ip in n for n in _NAT64)
        if embeds and not may_dial(str(low)):
            return False
    return ip.is_global


def helper_ports(url: str) -> tuple[int, ...]:
    """The ports the control dials on the addresses it resolved: an explicit port; http:
    80 and 443; otherwise 443."""
    parts = urlsplit(url)
    if parts.port is not None:
        return (parts.port,)
    if parts.scheme == "http":
        return (HTTP_PORT, HTTPS_PORT)
    return (HTTPS_PORT,)


@dataclass(frozen=True, slots=True)
class HelperEndpoint:
    """One connection the control makes: TCP to ``ip:port``, then TLS if ``tls``."""

    address: str  # ``ip:port``, the key of the control's answer
    ip: str
    port: int
    tls: bool


def helper_endpoints(
    probe_endpoints: Iterable[str],
    th_addresses: Iterable[str],
    ports: Iterable[int],
    *,
    host_is_name: bool,
) -> list[HelperEndpoint]:
    """What the control dials: the probe's ``tcp_connect`` (ValueError for a malformed
    one), then its own addresses on ``ports`` (``helper_ports``), without duplicates,
    only where ``may_dial``, at most ``MAX_ENDPOINTS``; TLS on :443 when the host is a
    name."""
    planned: dict[str, tuple[str, int]] = {}
    for endpoint in probe_endpoints:
        ip, port = split_endpoint(endpoint)
        planned.setdefault(join_endpoint(ip, port), (ip, port))
    ports = tuple(ports)
    for ip in th_addresses:
        for port in ports:
            planned.setdefault(join_endpoint(ip, port), (ip, port))
    chosen = [(address, ip, port) for address, (ip, port) in planned.items() if may_dial(ip)]
    return [
        HelperEndpoint(address, ip, port, tls=port == HTTPS_PORT and host_is_name)
        for address, ip, port in chosen[:MAX_ENDPOINTS]
    ]


def ip_info(
    probe_addresses: Iterable[str],
    th_addresses: Iterable[str],
    valid_for_domain: Collection[str],
    asn_of: Callable[[str], int],
) -> dict[str, ControlIPInfo]:
    """The control's ``ip_info``: every address the probe sent, then every one the control
    resolved, with its flags and AS number."""
    flags: dict[str, int] = {}
    for ip in probe_addresses:
        flags[ip] = flags.get(ip, 0) | IP_FLAG_RESOLVED_BY_PROBE
    for ip in th_addresses:
        flags[ip] = flags.get(ip, 0) | IP_FLAG_RESOLVED_BY_TH
    for ip in flags:
        if is_bogon(ip):
            flags[ip] |= IP_FLAG_BOGON
        if ip in valid_for_domain:
            flags[ip] |= IP_FLAG_VALID_FOR_DOMAIN
    return {ip: ControlIPInfo(asn=asn_of(ip), flags=f) for ip, f in flags.items()}


def probe_addresses(request: ControlRequest) -> list[str]:
    """The addresses of a control request's ``tcp_connect`` (ValueError for a malformed
    endpoint), in order, repeated as often as they appear."""
    return [split_endpoint(endpoint)[0] for endpoint in request.tcp_connect]
