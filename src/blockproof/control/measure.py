"""The control measurement: what a URL looks like from an uncensored vantage point.

Given a ``ControlRequest`` (OONI's THRequest) this does what OONI's test helper
does, with the probe's own primitives:

1. resolve the URL's host (skipped for an IP literal);
2. ``ip_info`` for the union of probe-sent and helper-resolved addresses;
3. for each address that is not a bogon: TCP connect on the URL's port (or 80
   and 443 for http, 443 for https), plus a TLS handshake with the URL's host
   as SNI on 443; marks the address "valid for domain" (flag 8) when it passes;
4. GET the URL with the probe's headers, following up to 10 redirects, never
   connecting to a bogon (a resolver that answers a bogon fails the fetch).

Which endpoints to dial, with TLS or not, and the ``ip_info`` flags come from the
plan (``core.wcplan``), the one the probe and the simulator follow too.

Failure strings are the helper's legacy names (``model.failure.ControlFailure``).
A bogon or loopback address sent by a client is never dialed: that would let
anyone use the control server to probe private networks (SSRF). ``may_dial`` is
the one gate: an address is dialed only if it is not a bogon, is globally
routable, and does not embed a non-dialable IPv4 address (IPv4-compatible,
IPv4-translated and NAT64 IPv6 forms). Hosts spelled as legacy IPv4 literals
(``2130706433``, ``0x7f.1``, ``0177.0.0.1``: what a system resolver would read as
127.0.0.1) are read as the address they spell, not handed to a resolver; every
resolved address, at every redirect, passes the same gate, and each is dialed
by address (no second lookup that DNS rebinding could change).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import unicodedata
from collections.abc import Callable
from urllib.parse import urlsplit

from blockproof.core.http import (
    MAX_REDIRECTS,
    InvalidRedirectLocation,
    extract_title,
    redirect_location,
)
from blockproof.core.idn import IDNAError, url_to_ascii
from blockproof.core.wcplan import (
    HelperEndpoint,
    helper_endpoints,
    helper_ports,
    ip_info,
    may_dial,
    probe_addresses,
)
from blockproof.model.control import (
    ControlDNS,
    ControlHTTPRequest,
    ControlRequest,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
)
from blockproof.model.failure import ControlFailure, Failure
from blockproof.model.observations import HTTPRequest
from blockproof.netx.dns import dns_getaddrinfo
from blockproof.netx.endpoint import Timeouts, measure_endpoint, url_port
from blockproof.netx.network import Network
from blockproof.netx.trace import Recorder

CONTROL_TIMEOUTS = Timeouts(dns=4.0, tcp=10.0, tls=10.0, http=15.0)
CONTROL_MAX_BODY = 1 << 20

AsnLookup = Callable[[str], int]

_DNS_LEGACY: dict[str, str] = {
    Failure.DNS_NXDOMAIN: ControlFailure.DNS_NAME_ERROR,
    Failure.DNS_NON_RECOVERABLE: ControlFailure.DNS_SERVER_FAILURE,
    Failure.DNS_REFUSED: ControlFailure.DNS_SERVER_FAILURE,
    Failure.DNS_SERVER_MISBEHAVING: ControlFailure.DNS_SERVER_FAILURE,
    Failure.DNS_TEMPORARY: ControlFailure.DNS_SERVER_FAILURE,
    Failure.DNS_SERVFAIL: ControlFailure.DNS_SERVER_FAILURE,
}


def legacy_dns_failure(failure: str | None) -> str | None:
    if failure is None or failure == Failure.DNS_NO_ANSWER:
        return None
    return _DNS_LEGACY.get(failure, ControlFailure.UNKNOWN)


def legacy_tcp_failure(failure: str | None) -> str | None:
    if failure is None:
        return None
    if failure == Failure.GENERIC_TIMEOUT:
        return ControlFailure.GENERIC_TIMEOUT
    if failure == Failure.CONNECTION_REFUSED:
        return ControlFailure.CONNECTION_REFUSED
    return ControlFailure.CONNECT_ERROR


def legacy_http_failure(failure: str | None) -> str | None:
    if failure is None:
        return None
    if failure.startswith("dns_"):
        return ControlFailure.DNS_LOOKUP_ERROR
    if failure == Failure.GENERIC_TIMEOUT:
        return ControlFailure.GENERIC_TIMEOUT
    if failure == Failure.CONNECTION_REFUSED:
        return ControlFailure.CONNECTION_REFUSED
    return ControlFailure.UNKNOWN


def ip_literal(host: str) -> str | None:
    """The address ``host`` spells, if it is an IP literal in any spelling, else None.

    Besides the canonical forms this reads what ``inet_aton`` (and so the system
    resolver) accepts: ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``, and
    full-width digits and dots once NFKC-normalized.
    """
    text = unicodedata.normalize("NFKC", host).replace("\u3002", ".").strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if text and all(ch in "0123456789abcdefxABCDEFX." for ch in text):
        try:
            return socket.inet_ntoa(socket.inet_aton(text.rstrip(".")))
        except OSError:
            return None
    return None


def _is_ip(host: str) -> bool:
    return ip_literal(host) is not None


async def _resolve(
    network: Network, recorder: Recorder, host: str, timeouts: Timeouts
) -> tuple[list[str], str | None]:
    literal = ip_literal(host)
    if literal is not None:
        return [literal], None
    query = await dns_getaddrinfo(network, recorder, host, timeout=timeouts.dns)
    return list(query.addresses), query.failure


async def _fetch(
    network: Network,
    recorder: Recorder,
    url: str,
    headers: dict[str, list[str]],
    *,
    ca_file: str | None,
    timeouts: Timeouts,
) -> ControlHTTPRequest:
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        host = parts.hostname or ""
        addresses, dns_failure = await _resolve(network, recorder, host, timeouts)
        if dns_failure is not None or not addresses:
            return ControlHTTPRequest(failure=ControlFailure.DNS_LOOKUP_ERROR)
        if not all(may_dial(a) for a in addresses):
            return ControlHTTPRequest(failure=ControlFailure.DNS_BOGON)
        header_list = [(k, v[0]) for k, v in headers.items() if v and k.lower() != "host"]
        request = HTTPRequest(
            method="GET",
            url=url,
            headers_list=(("Host", parts.netloc), *header_list),
        )
        result = None
        for ip in addresses[:4]:
            result = await measure_endpoint(
                network, recorder, ip, url_port(url), server_name=host,
                use_tls=parts.scheme == "https", request=request, timeouts=timeouts,
                ca_file=ca_file, record=False,
            )  # fmt: skip
            if result.http is not None and result.http.response is not None:
                break
        assert result is not None
        failure = result.tcp.failure or (result.tls.failure if result.tls else None)
        if failure is not None:
            return ControlHTTPRequest(failure=legacy_http_failure(failure))
        txn = result.http
        if txn is None or txn.response is None:
            return ControlHTTPRequest(
                failure=legacy_http_failure(txn.failure if txn else Failure.EOF)
            )
        try:
            next_url = redirect_location(url, txn.response)
        except InvalidRedirectLocation:
            return ControlHTTPRequest(failure=ControlFailure.UNKNOWN)
        if next_url is None:
            response = txn.response
            return ControlHTTPRequest(
                body_length=len(response.body),
                failure=legacy_http_failure(txn.failure),
                title=extract_title(response.body),
                headers={k: v for k, v in reversed(response.headers_list)},
                status_code=response.code,
            )
        url = next_url
    return ControlHTTPRequest(failure=ControlFailure.UNKNOWN)


async def measure_control(
    network: Network,
    request: ControlRequest,
    *,
    asn_of: AsnLookup,
    ca_file: str | None = None,
    timeouts: Timeouts = CONTROL_TIMEOUTS,
) -> ControlResponse:
    recorder = Recorder()
    url = request.http_request
    with contextlib.suppress(IDNAError, ValueError):  # a bad name fails its lookup below
        url = url_to_ascii(url)  # a probe may send an IDN host as written
    host = urlsplit(url).hostname or ""
    ports = helper_ports(url)

    fetch = asyncio.create_task(
        _fetch(
            network,
            recorder,
            url,
            request.http_request_headers,
            ca_file=ca_file,
            timeouts=timeouts,
        )
    )
    th_addrs, dns_failure = await _resolve(network, recorder, host, timeouts)
    dns = ControlDNS(
        failure=legacy_dns_failure(dns_failure),
        addrs=() if _is_ip(host) else tuple(th_addrs),
    )

    planned = helper_endpoints(
        request.tcp_connect, th_addrs, ports, host_is_name=bool(host) and not _is_ip(host)
    )

    async def one(
        endpoint: HelperEndpoint,
    ) -> tuple[ControlTCPConnect, ControlTLSHandshake | None]:
        result = await measure_endpoint(
            network, recorder, endpoint.ip, endpoint.port, server_name=host,
            use_tls=endpoint.tls, request=None, timeouts=timeouts, ca_file=ca_file,
            record=False,
        )  # fmt: skip
        tcp = ControlTCPConnect(
            status=result.tcp.failure is None, failure=legacy_tcp_failure(result.tcp.failure)
        )
        tls = None
        if result.tls is not None:
            tls = ControlTLSHandshake(
                server_name=host, status=result.tls.failure is None, failure=result.tls.failure
            )
        return tcp, tls

    results = await asyncio.gather(*(one(endpoint) for endpoint in planned))
    tcp_connect: dict[str, ControlTCPConnect] = {}
    tls_handshake: dict[str, ControlTLSHandshake] = {}
    valid_for_domain: set[str] = set()
    for endpoint, (tcp, tls) in zip(planned, results, strict=True):
        tcp_connect[endpoint.address] = tcp
        if tls is not None:
            tls_handshake[endpoint.address] = tls
            if tls.status:
                valid_for_domain.add(endpoint.ip)
    http = await fetch
    return ControlResponse(
        tcp_connect=tcp_connect,
        tls_handshake=tls_handshake,
        http_request=http,
        dns=dns,
        ip_info=ip_info(probe_addresses(request), th_addrs, valid_for_domain, asn_of),
    )
