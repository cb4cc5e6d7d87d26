"""The sans-IO Web Connectivity classifier on hand-built observations.

Each scenario is what a probe and the control saw for one URL, built the way
Web Connectivity 0.5 records it (tags ``classic``, ``depth=N``, ``fetch_body``;
one transaction id per endpoint shared by its TCP, TLS and HTTP records). The
expected OONI keys follow OONI's classic analysis; ``method``/``rule`` are our
verdict (docs/classifier.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from blockproof.core.webconnectivity import (
    OONI_ROWS,
    RULES,
    RULES_BY_ID,
    analyze,
    extract_title,
    url_hostname,
)
from blockproof.model.control import (
    IP_FLAG_RESOLVED_BY_PROBE,
    IP_FLAG_RESOLVED_BY_TH,
    IP_FLAG_VALID_FOR_DOMAIN,
    ControlDNS,
    ControlHTTPRequest,
    ControlIPInfo,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
)
from blockproof.model.observations import (
    DNSAnswer,
    DNSQuery,
    HTTPRequest,
    HTTPResponse,
    HTTPTransaction,
    TCPConnect,
    TLSHandshake,
    join_endpoint,
)
from blockproof.model.verdict import Method
from blockproof.model.web import WebObservations

DOCS = Path(__file__).resolve().parents[2] / "docs" / "classifier.md"

HOST = "www.example.com"
IP = "93.184.216.34"  # the site (AS15133)
IP2 = "93.184.216.35"  # the site, another address in the same network
CDN = "172.224.19.3"  # the site through a CDN the control does not see (AS36183)
FORGED = "83.224.65.41"  # a censor's server (AS30722)
BOGON = "10.10.34.35"
ASNS = {IP: 15133, IP2: 15133, CDN: 36183, FORGED: 30722, "17.248.248.100": 714}

SITE_BODY = (
    b"<html><head><title>Example Domain Homepage</title></head><body>"
    + b"This domain is for use in illustrative examples. " * 20
    + b"</body></html>"
)
SITE_HEADERS = (("Content-Type", "text/html"), ("X-Cache", "HIT"), ("Age", "10"))
BLOCKPAGE = b"<html><head><title>Access denied by order</title></head><body>Blocked</body></html>"

# --------------------------------------------------------------------------------------
# builders: what Web Connectivity 0.5 records


def tags(depth: int, *, fetch: bool | None = None, classic: bool = True) -> tuple[str, ...]:
    out = ["classic"] if classic else []
    out.append(f"depth={depth}")
    if fetch is not None:
        out.append(f"fetch_body={'true' if fetch else 'false'}")
    return tuple(out)


def gai(
    *addrs: str, failure: str | None = None, host: str = HOST, depth: int = 0, tx: int = 1
) -> DNSQuery:
    answers = tuple(
        DNSAnswer(answer_type="AAAA", ipv6=a) if ":" in a else DNSAnswer(answer_type="A", ipv4=a)
        for a in addrs
    )
    return DNSQuery(
        engine="getaddrinfo",
        resolver_address="",
        hostname=host,
        query_type="ANY",
        answers=answers,
        failure=failure,
        tags=tags(depth),
        transaction_id=tx,
    )


def tcp(
    ip: str, port: int, tx: int, failure: str | None = None, depth: int = 0, fetch: bool = True
) -> TCPConnect:
    return TCPConnect(
        ip=ip, port=port, failure=failure, tags=tags(depth, fetch=fetch), transaction_id=tx
    )


def tls(
    ip: str,
    tx: int,
    failure: str | None = None,
    *,
    port: int = 443,
    sni: str = HOST,
    depth: int = 0,
    fetch: bool = True,
) -> TLSHandshake:
    return TLSHandshake(
        address=join_endpoint(ip, port),
        server_name=sni,
        failure=failure,
        tags=tags(depth, fetch=fetch),
        transaction_id=tx,
    )


def http(
    url: str,
    ip: str,
    port: int,
    tx: int,
    *,
    code: int = 200,
    body: bytes = SITE_BODY,
    headers: tuple[tuple[str, str], ...] = SITE_HEADERS,
    failure: str | None = None,
    depth: int = 0,
) -> HTTPTransaction:
    response = None if failure else HTTPResponse(code=code, headers_list=headers, body=body)
    return HTTPTransaction(
        request=HTTPRequest(method="GET", url=url),
        response=response,
        failure=failure,
        address=join_endpoint(ip, port),
        tags=tags(depth, fetch=True),
        transaction_id=tx,
    )


SITE_PAGE = ControlHTTPRequest(
    body_length=len(SITE_BODY),
    title="Example Domain Homepage",
    headers=dict(SITE_HEADERS),
    status_code=200,
)


def ctl(
    addrs: tuple[str, ...] = (IP,),
    *,
    dns_failure: str | None = None,
    tcp: Mapping[str, str | None] | None = None,
    tls: Mapping[str, str | None] | None = None,
    page: ControlHTTPRequest = SITE_PAGE,
    ip_info: Mapping[str, int] | None = None,
) -> ControlResponse:
    """The control's answer; ``tcp``/``tls`` map ``ip:port`` to a failure (None = success)."""
    tcp = {f"{a}:443": None for a in addrs} if tcp is None else tcp
    tls = {f"{a}:443": None for a in addrs} if tls is None else tls
    info = {a: IP_FLAG_RESOLVED_BY_TH for a in addrs} if ip_info is None else ip_info
    return ControlResponse(
        tcp_connect={k: ControlTCPConnect(status=f is None, failure=f) for k, f in tcp.items()},
        tls_handshake={
            k: ControlTLSHandshake(server_name=HOST, status=f is None, failure=f)
            for k, f in tls.items()
        },
        http_request=page,
        dns=ControlDNS(failure=dns_failure, addrs=addrs),
        ip_info={ip: ControlIPInfo(asn=ASNS.get(ip, 0), flags=f) for ip, f in info.items()},
    )


def failed_page(failure: str) -> ControlHTTPRequest:
    return ControlHTTPRequest(failure=failure)


def web(
    url: str, *records: Any, control: ControlResponse | None = None, **kw: Any
) -> WebObservations:
    """Observations from records of any kind, each list kept in the given order."""
    return WebObservations(
        input=url,
        queries=tuple(r for r in records if isinstance(r, DNSQuery)),
        tcp_connect=tuple(r for r in records if isinstance(r, TCPConnect)),
        tls_handshakes=tuple(r for r in records if isinstance(r, TLSHandshake)),
        requests=tuple(r for r in records if isinstance(r, HTTPTransaction)),
        control=control,
        **kw,
    )


HTTPS = f"https://{HOST}/"
HTTP = f"http://{HOST}/"


def https_ok(ip: str = IP, tx: int = 2) -> tuple[Any, ...]:
    return (tcp(ip, 443, tx), tls(ip, tx), http(HTTPS, ip, 443, tx))


def http_fetch(
    ip: str = IP, *, tx: int = 2, tls_failure: str | None = None, **kw: Any
) -> tuple[Any, ...]:
    """A plain-HTTP fetch plus the TLS-based address validation Web Connectivity adds."""
    return (
        tcp(ip, 80, tx),
        http(HTTP, ip, 80, tx, **kw),
        tcp(ip, 443, tx + 10, fetch=False),
        tls(ip, tx + 10, tls_failure, fetch=False),
    )


HTTP_CONTROL = {f"{IP}:80": None, f"{IP}:443": None}

# --------------------------------------------------------------------------------------
# scenarios


@dataclass(frozen=True)
class Scenario:
    id: str
    obs: WebObservations
    expect: dict[str, Any]  # OONI test keys
    method: Method
    rule: str
    asns: Mapping[str, int] = field(default_factory=lambda: ASNS)
    explains: tuple[str, ...] = ()  # substrings of the explanation


OK = {"blocking": False, "accessible": True}

# fmt: off
SCENARIOS = [
    Scenario(
        "accessible-https",
        web(HTTPS, gai(IP), *https_ok(), control=ctl()),
        {**OK, "dns_consistency": "consistent", "x_blocking_flags": 32, "x_dns_flags": 0,
         "http_experiment_failure": None, "status_code_match": True, "body_length_match": True,
         "title_match": True, "headers_match": True, "body_proportion": 1.0},
        Method.NONE, "wc.ok.https", explains=(f"{IP}:443", "valid for www.example.com"),
    ),
    Scenario(
        "accessible-http",
        web(HTTP, gai(IP), *http_fetch(), control=ctl(tcp=HTTP_CONTROL)),
        {**OK, "dns_consistency": "consistent", "x_blocking_flags": 32, "x_null_null_flags": 0,
         "status_code_match": True, "title_match": True, "headers_match": True},
        Method.NONE, "wc.ok",
    ),
    Scenario(
        "dns-nxdomain",
        web(HTTPS, gai(failure="dns_nxdomain_error"), control=ctl()),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "dns_experiment_failure": "dns_nxdomain_error",
         "http_experiment_failure": "dns_nxdomain_error", "x_blocking_flags": 1, "x_dns_flags": 2},
        Method.DNS, "wc.dns.nxdomain", explains=("dns_nxdomain_error", f"{IP} (AS15133)"),
    ),
    Scenario(
        "dns-bogon",
        web(HTTPS, gai(BOGON), tcp(BOGON, 443, 2, "generic_timeout_error"), control=ctl()),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "dns_experiment_failure": None, "http_experiment_failure": "generic_timeout_error",
         "x_blocking_flags": 1, "x_dns_flags": 5},
        Method.DNS, "wc.dns.bogon", explains=(BOGON,),
    ),
    Scenario(
        "dns-forged-localhost",  # the probe never dials loopback: DNS is all there is
        web(HTTPS, gai("127.0.0.1"), control=ctl()),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "http_experiment_failure": None, "x_blocking_flags": 1, "x_dns_flags": 5},
        Method.DNS, "wc.dns.localhost", explains=("127.0.0.1",),
    ),
    Scenario(
        "dns-forged-to-censor-server",
        web(HTTPS, gai(FORGED), tcp(FORGED, 443, 2), tls(FORGED, 2, "ssl_invalid_hostname"),
            control=ctl(tcp={f"{IP}:443": None, f"{FORGED}:443": None},
                        tls={f"{IP}:443": None, f"{FORGED}:443": "ssl_invalid_hostname"})),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "http_experiment_failure": "ssl_invalid_hostname", "x_blocking_flags": 1,
         "x_dns_flags": 4, "x_null_null_flags": 4},
        Method.DNS, "wc.dns.inconsistent", explains=(f"{FORGED} (AS30722)",),
    ),
    Scenario(
        "dns-other-address-same-asn",  # another address of the same network: consistent
        web(HTTPS, gai(IP2), *https_ok(IP2), control=ctl()),
        {**OK, "dns_consistency": "consistent", "x_dns_flags": 0, "x_blocking_flags": 32},
        Method.NONE, "wc.ok.https",
    ),
    Scenario(
        "dns-other-address-unknown-asn",  # same data, no ASN known: OONI says inconsistent
        web(HTTPS, gai(IP2), *https_ok(IP2), control=ctl(ip_info={})),
        {**OK, "dns_consistency": "inconsistent", "x_dns_flags": 0, "x_blocking_flags": 32},
        Method.NONE, "wc.ok.https", asns={},
    ),
    Scenario(
        "cdn-guard-tls",  # a verified handshake for the host proves the CDN address
        web(HTTPS, gai(CDN), tcp(CDN, 443, 2), tls(CDN, 2),
            http(HTTPS, CDN, 443, 2, failure="generic_timeout_error"),
            control=ctl(("17.248.248.100",))),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "http_experiment_failure": "generic_timeout_error", "x_blocking_flags": 8,
         "x_dns_flags": 0},
        Method.HTTP, "wc.http.timeout", explains=("a CDN, not DNS tampering", "verified TLS"),
    ),
    Scenario(
        "cdn-guard-ip-info",  # the control's handshake to the probe's address succeeded
        web(HTTPS, gai(CDN), tcp(CDN, 443, 2, "generic_timeout_error"),
            control=ctl(("17.248.248.100",),
                        tcp={"17.248.248.100:443": None, f"{CDN}:443": None},
                        ip_info={"17.248.248.100": 10,
                                 CDN: IP_FLAG_RESOLVED_BY_PROBE | IP_FLAG_VALID_FOR_DOMAIN})),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "http_experiment_failure": "generic_timeout_error", "x_blocking_flags": 3,
         "x_dns_flags": 4},
        Method.TCP_IP, "wc.tcp.timeout", explains=("the control's TLS handshake",),
    ),
    Scenario(
        "cdn-mismatch-without-proof",  # the PK mask.icloud.com shape, but the control fetched
        web(HTTPS, gai(CDN), tcp(CDN, 443, 2), tls(CDN, 2, "eof_error"),
            control=ctl(("17.248.248.100",), tcp={f"{CDN}:443": None},
                        tls={f"{CDN}:443": None})),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "http_experiment_failure": "eof_error", "x_blocking_flags": 5, "x_dns_flags": 4},
        Method.DNS, "wc.dns.inconsistent",
    ),
    Scenario(
        "cdn-mismatch-site-down-everywhere",  # the PK mask.icloud.com measurement's shape
        web(HTTPS, gai(CDN), tcp(CDN, 443, 2), tls(CDN, 2, "eof_error"),
            control=ctl(("17.248.248.100",), tcp={f"{CDN}:443": None},
                        tls={f"{CDN}:443": "eof_error"}, page=failed_page("unknown_error"))),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "http_experiment_failure": "eof_error", "x_blocking_flags": 1, "x_dns_flags": 4,
         "x_null_null_flags": 4},
        Method.DOWN, "wc.down.tls", explains=("the mismatch does not explain the failure",),
    ),
    Scenario(
        "tcp-blackhole",
        web(HTTPS, gai(IP), tcp(IP, 443, 2, "generic_timeout_error"), control=ctl()),
        {"blocking": "tcp_ip", "accessible": False, "dns_consistency": "consistent",
         "http_experiment_failure": "generic_timeout_error", "x_blocking_flags": 2},
        Method.TCP_IP, "wc.tcp.timeout", explains=(f"{IP}:443",),
    ),
    Scenario(
        "tcp-refused",
        web(HTTPS, gai(IP), tcp(IP, 443, 2, "connection_refused"), control=ctl()),
        {"blocking": "tcp_ip", "accessible": False, "http_experiment_failure": "connection_refused",
         "x_blocking_flags": 2},
        Method.TCP_IP, "wc.tcp.refused",
    ),
    Scenario(
        "tcp-ipv6-unreachable-ignored",  # no IPv6 at the probe is not blocking
        web(HTTPS, gai(IP, "2001:db8::1"), tcp("2001:db8::1", 443, 3, "network_unreachable"),
            *https_ok(), control=ctl((IP, "2001:db8::1"))),
        {**OK, "x_blocking_flags": 32},
        Method.NONE, "wc.ok.https",
    ),
    Scenario(
        "tls-connection-reset",
        web(HTTPS, gai(IP), tcp(IP, 443, 2), tls(IP, 2, "connection_reset"), control=ctl()),
        {"blocking": "http-failure", "accessible": False, "dns_consistency": "consistent",
         "http_experiment_failure": "connection_reset", "x_blocking_flags": 4},
        Method.TLS, "wc.tls.reset", explains=("for www.example.com", "connection_reset"),
    ),
    Scenario(
        "tls-eof",
        web(HTTPS, gai(IP), tcp(IP, 443, 2), tls(IP, 2, "eof_error"), control=ctl()),
        {"blocking": "http-failure", "accessible": False, "http_experiment_failure": "eof_error",
         "x_blocking_flags": 4},
        Method.TLS, "wc.tls.eof",
    ),
    Scenario(
        "tls-mitm-unknown-authority",
        web(HTTPS, gai(IP), tcp(IP, 443, 2), tls(IP, 2, "ssl_unknown_authority"), control=ctl()),
        {"blocking": "http-failure", "accessible": False,
         "http_experiment_failure": "ssl_unknown_authority", "x_blocking_flags": 4},
        Method.TLS, "wc.tls.mitm", explains=("intercepted",),
    ),
    Scenario(
        "http-reset-plain-http",
        web(HTTP, gai(IP), tcp(IP, 80, 2), http(HTTP, IP, 80, 2, failure="connection_reset"),
            tcp(IP, 443, 12, fetch=False), tls(IP, 12, fetch=False),
            control=ctl(tcp=HTTP_CONTROL)),
        {"blocking": "http-failure", "accessible": False, "dns_consistency": "consistent",
         "http_experiment_failure": "connection_reset", "x_blocking_flags": 8},
        Method.HTTP, "wc.http.reset",
    ),
    Scenario(
        "http-diff-blockpage",
        web(HTTP, gai(IP), *http_fetch(body=BLOCKPAGE, headers=(("Content-Type", "text/html"),)),
            control=ctl(tcp=HTTP_CONTROL)),
        {"blocking": "http-diff", "accessible": False, "dns_consistency": "consistent",
         "x_blocking_flags": 16, "status_code_match": True, "body_length_match": False,
         "headers_match": False, "title_match": False, "http_experiment_failure": None},
        Method.HTTP_DIFF, "wc.http.diff", explains=("another title",),
    ),
    Scenario(
        "http-blockpage-with-forged-dns",  # OONI: any blocking string becomes "dns"
        web(HTTP, gai(FORGED), tcp(FORGED, 80, 2),
            http(HTTP, FORGED, 80, 2, body=BLOCKPAGE, headers=()),
            tcp(FORGED, 443, 12, fetch=False), tls(FORGED, 12, "ssl_invalid_hostname", fetch=False),
            control=ctl(tcp={f"{FORGED}:80": None})),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "x_blocking_flags": 17, "x_dns_flags": 4},
        Method.DNS, "wc.dns.inconsistent",
    ),
    Scenario(
        "http-same-page-small-diff",
        web(HTTP, gai(IP), *http_fetch(body=SITE_BODY[:-100] + b"</body></html>"),
            control=ctl(tcp=HTTP_CONTROL)),
        {**OK, "x_blocking_flags": 32, "body_length_match": True, "title_match": True},
        Method.NONE, "wc.ok",
    ),
    Scenario(
        "http-blockpage-sharing-only-transport-headers",  # OONI: no diff; we: a blockpage
        web(HTTP, gai(IP), *http_fetch(body=BLOCKPAGE, headers=(("Content-Length", "84"),)),
            control=ctl(tcp=HTTP_CONTROL, page=replace(
                SITE_PAGE, headers={"Content-Length": str(len(SITE_BODY))}))),
        {**OK, "x_blocking_flags": 32, "headers_match": True, "title_match": False,
         "body_length_match": False},
        Method.HTTP_DIFF, "wc.http.diff", explains=("content-length",),
    ),
    Scenario(
        "http-final-response-control-fetch-failed",  # OONI quirk: nothing to compare = diff
        web(HTTP, gai(IP), *http_fetch(),
            control=ctl(tcp=HTTP_CONTROL, page=failed_page("unknown_error"))),
        {"blocking": "http-diff", "accessible": False, "x_blocking_flags": 16,
         "status_code_match": None},
        Method.HTTP_DIFF, "wc.http.diff",
    ),
    Scenario(
        "site-down-tcp",
        web(HTTPS, gai(IP), tcp(IP, 443, 2, "connection_refused"),
            control=ctl(tcp={f"{IP}:443": "connection_refused_error"}, tls={},
                        page=failed_page("connection_refused_error"))),
        {"blocking": False, "accessible": False, "http_experiment_failure": "connection_refused",
         "x_blocking_flags": 0, "x_null_null_flags": 2},
        Method.DOWN, "wc.down.tcp",
    ),
    Scenario(
        "site-down-http",  # the server accepts connections but never answers
        web(HTTPS, gai(IP), tcp(IP, 443, 2), tls(IP, 2),
            http(HTTPS, IP, 443, 2, failure="generic_timeout_error"),
            control=ctl(page=failed_page("generic_timeout_error"))),
        {"blocking": False, "accessible": False, "x_blocking_flags": 0,
         "http_experiment_failure": "generic_timeout_error"},
        Method.DOWN, "wc.down.http",
    ),
    Scenario(
        "site-down-nxdomain",
        web(HTTPS, gai(failure="dns_nxdomain_error"),
            control=ctl((), dns_failure="dns_name_error", tcp={}, tls={},
                        page=failed_page("dns_lookup_error"))),
        {"blocking": False, "accessible": False, "dns_consistency": "consistent",
         "dns_experiment_failure": "dns_nxdomain_error", "x_null_null_flags": 1},
        Method.DOWN, "wc.down.dns", explains=("dns_name_error",),
    ),
    Scenario(
        "site-down-no-answer",  # dns_no_answer and no address at the control either
        web(HTTPS, gai(failure="dns_no_answer"),
            control=ctl((), tcp={}, tls={}, page=failed_page("dns_lookup_error"))),
        {"blocking": False, "accessible": False, "http_experiment_failure": None,
         "x_null_null_flags": 1},
        Method.DOWN, "wc.down.dns",
    ),
    Scenario(
        "site-localhost-everywhere",
        web(HTTPS, gai("127.0.0.1"), control=ctl(("127.0.0.1",), tcp={}, tls={})),
        {"blocking": False, "accessible": False, "dns_consistency": "consistent",
         "x_dns_flags": 1},
        Method.DOWN, "wc.down.localhost",
    ),
    Scenario(
        "expired-certificate-both",
        web(HTTPS, gai(IP), tcp(IP, 443, 2), tls(IP, 2, "ssl_invalid_certificate"),
            control=ctl(tls={f"{IP}:443": "ssl_invalid_certificate"},
                        page=failed_page("unknown_error"))),
        {"blocking": False, "accessible": False, "dns_consistency": "consistent",
         "http_experiment_failure": "ssl_invalid_certificate", "x_blocking_flags": 0,
         "x_null_null_flags": 4},
        Method.DOWN, "wc.down.tls",
    ),
    Scenario(
        "control-unreachable-http",
        web(HTTP, gai(IP), *http_fetch(), control_failure="generic_timeout_error"),
        {"blocking": None, "accessible": None, "dns_consistency": None, "x_blocking_flags": 0,
         "x_null_null_flags": 0, "http_experiment_failure": None},
        Method.UNDETERMINED, "wc.control.unavailable", explains=("generic_timeout_error",),
    ),
    Scenario(
        "control-unreachable-https",
        web(HTTPS, gai(IP), *https_ok(), control_failure="generic_timeout_error"),
        {**OK, "dns_consistency": None, "x_blocking_flags": 32, "x_null_null_flags": 8},
        Method.NONE, "wc.ok.https-no-control",
    ),
    Scenario(
        "control-unreachable-dns-failure",  # OONI quirk: false/true (row 5.1.1)
        web(HTTPS, gai(failure="dns_nxdomain_error"), control_failure="connection_reset"),
        {**OK, "http_experiment_failure": "dns_nxdomain_error",
         "dns_experiment_failure": "dns_nxdomain_error"},
        Method.UNDETERMINED, "wc.control.unavailable",
    ),
    Scenario(
        "redirect-then-tls-reset",
        web(HTTP, gai(IP), *http_fetch(code=301, body=b"", headers=(("Location", HTTPS),)),
            gai(IP, depth=1, tx=20), tcp(IP, 443, 21, depth=1),
            tls(IP, 21, "connection_reset", depth=1), control=ctl(tcp=HTTP_CONTROL)),
        {"blocking": "http-failure", "accessible": False, "dns_consistency": "consistent",
         "http_experiment_failure": "connection_reset", "x_blocking_flags": 4},
        Method.TLS, "wc.tls.reset", explains=("the control fetched the page",),
    ),
    Scenario(
        "redirect-then-dns-nxdomain-other-host",
        web(HTTP, gai(IP), *http_fetch(code=302, body=b"",
                                        headers=(("Location", "https://cdn.example.net/"),)),
            gai(failure="dns_nxdomain_error", host="cdn.example.net", depth=1, tx=20),
            control=ctl(tcp=HTTP_CONTROL)),
        {"blocking": "dns", "accessible": False, "dns_consistency": "consistent",
         "http_experiment_failure": "dns_nxdomain_error", "x_blocking_flags": 1},
        Method.DNS, "wc.dns.nxdomain", explains=("cdn.example.net", "the control fetched"),
    ),
    Scenario(
        "redirect-then-tcp-failure-control-failed-too",
        web(HTTP, gai(IP), *http_fetch(code=301, body=b"",
                                        headers=(("Location", "https://cdn.example.net/"),)),
            gai(IP2, host="cdn.example.net", depth=1, tx=20),
            tcp(IP2, 443, 21, "generic_timeout_error", depth=1),
            control=ctl(tcp=HTTP_CONTROL, page=failed_page("generic_timeout_error"))),
        {"blocking": "http-failure", "accessible": False, "x_blocking_flags": 0},
        Method.DOWN, "wc.down.redirect",
    ),
    Scenario(
        "ghost-dns",  # the control finds no such domain, the probe's resolver invents one
        web(HTTP, gai(FORGED), *http_fetch(FORGED, body=BLOCKPAGE, tls_failure="eof_error"),
            control=ctl((), dns_failure="dns_name_error", tcp={f"{FORGED}:80": None}, tls={},
                        page=failed_page("dns_lookup_error"))),
        {"blocking": "dns", "accessible": False, "dns_consistency": "inconsistent",
         "x_null_null_flags": 16},
        Method.DNS, "wc.dns.ghost", explains=("dns_name_error",),
    ),
    Scenario(
        "udp-resolver-forged-system-resolver-fine",  # only the classic view decides blocking
        web(HTTPS, gai(IP),
            replace(gai(FORGED, tx=3), engine="udp", resolver_address="8.8.8.8:53",
                    query_type="A", tags=("depth=0",)),
            *https_ok(), control=ctl()),
        {**OK, "dns_consistency": "consistent", "x_blocking_flags": 33, "x_dns_flags": 4},
        Method.NONE, "wc.ok.https",
    ),
    Scenario(
        "nothing-measured",
        web(HTTPS, control=ctl()),
        {"blocking": None, "accessible": None, "dns_consistency": None},
        Method.UNDETERMINED, "wc.undetermined",
    ),
]
# fmt: on


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    result = analyze(scenario.obs, asn_of=lambda ip: scenario.asns.get(ip, 0))
    got = {key: getattr(result, key) for key in scenario.expect}
    assert got == scenario.expect
    assert result.verdict is not None
    assert (result.verdict.method, result.verdict.rule_id) == (scenario.method, scenario.rule)
    for text in scenario.explains:
        assert text in result.verdict.explanation
    assert "{" not in result.verdict.explanation, "a template field was left unfilled"


# No control answered (control_failure set, no control response). OONI's classic walk then
# has no control data for any observation: blocking/accessible are null/null (rows 1.2,
# 2.1, 3.1.1, 4.1.1) unless a page came over HTTPS (row 1.1: false/true, x_blocking_flags
# 32 and x_null_null_flags 8), and, OONI's quirk, false/true for a failed lookup (5.1.1).
# The first two rows are OONI's QA cases controlFailureWithSuccessfulHTTP(S)Website, with
# every key OONI's QA compares (control_failure is the experiment's, not the classifier's).
_NO_CONTROL_KEYS = {
    "blocking": None, "accessible": None, "dns_consistency": None,
    "dns_experiment_failure": None, "http_experiment_failure": None, "x_blocking_flags": 0,
    "x_dns_flags": 0, "x_null_null_flags": 0, "body_proportion": 0.0,
    "body_length_match": None, "status_code_match": None, "headers_match": None,
    "title_match": None,
}  # fmt: skip
NO_CONTROL = [
    ("qa-controlFailureWithSuccessfulHTTPWebsite", web(HTTP, gai(IP), *http_fetch()), {}),
    ("qa-controlFailureWithSuccessfulHTTPSWebsite", web(HTTPS, gai(IP), *https_ok()),
     {"blocking": False, "accessible": True, "x_blocking_flags": 32, "x_null_null_flags": 8}),
    ("http-then-https-page", web(
        HTTP, gai(IP), *http_fetch(code=301, body=b"", headers=(("Location", HTTPS),)),
        gai(IP, depth=1, tx=20), tcp(IP, 443, 21, depth=1), tls(IP, 21, depth=1),
        http(HTTPS, IP, 443, 21, depth=1)),
     {"blocking": False, "accessible": True, "x_blocking_flags": 32, "x_null_null_flags": 8}),
    ("http-reset", web(HTTP, gai(IP), *http_fetch(failure="connection_reset")),
     {"http_experiment_failure": "connection_reset"}),
    ("tls-reset", web(HTTPS, gai(IP), tcp(IP, 443, 2), tls(IP, 2, "connection_reset")),
     {"http_experiment_failure": "connection_reset"}),
    ("tcp-timeout", web(HTTPS, gai(IP), tcp(IP, 443, 2, "generic_timeout_error")),
     {"http_experiment_failure": "generic_timeout_error"}),
    ("dns-nxdomain-ooni-row-5.1.1", web(HTTPS, gai(failure="dns_nxdomain_error")),
     {"blocking": False, "accessible": True, "dns_experiment_failure": "dns_nxdomain_error",
      "http_experiment_failure": "dns_nxdomain_error"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("obs", "keys"), [c[1:] for c in NO_CONTROL], ids=[c[0] for c in NO_CONTROL]
)
@pytest.mark.parametrize("control_failure", ["connection_reset", "generic_timeout_error"])
def test_no_control_keys(obs: WebObservations, keys: dict[str, Any], control_failure: str) -> None:
    result = analyze(
        replace(obs, control_failure=control_failure), asn_of=lambda ip: ASNS.get(ip, 0)
    )
    expect = {**_NO_CONTROL_KEYS, **keys}
    assert {key: getattr(result, key) for key in expect} == expect
    assert result.verdict is not None
    https_page = keys.get("accessible") is True and keys.get("x_null_null_flags") == 8
    assert result.verdict.method is (Method.NONE if https_page else Method.UNDETERMINED)


def test_scenarios_cover_every_rule_but_the_catch_alls() -> None:
    covered = {s.rule for s in SCENARIOS}
    rare = {  # same code path as a covered sibling, different failure string
        "wc.dns.no-answer", "wc.dns.timeout", "wc.dns.failure", "wc.tcp.failure",
        "wc.tls.timeout", "wc.tls.invalid-hostname", "wc.tls.invalid-certificate",
        "wc.tls.failure", "wc.http.eof", "wc.http.failure",
    }  # fmt: skip
    assert {r.id for r in RULES} - covered <= rare


@pytest.mark.parametrize(
    ("failure", "rule"),
    [
        ("dns_no_answer", "wc.dns.no-answer"),
        ("generic_timeout_error", "wc.dns.timeout"),
        ("dns_temporary_failure", "wc.dns.failure"),
        ("android_dns_cache_no_data", "wc.dns.failure"),
    ],
)
def test_dns_failure_rules(failure: str, rule: str) -> None:
    result = analyze(web(HTTPS, gai(failure=failure), control=ctl()))
    assert (result.blocking, result.dns_experiment_failure) == ("dns", failure)
    assert result.verdict is not None
    assert result.verdict.rule_id == rule


@pytest.mark.parametrize(
    ("failure", "rule"),
    [
        ("generic_timeout_error", "wc.tls.timeout"),
        ("ssl_invalid_hostname", "wc.tls.invalid-hostname"),
        ("ssl_invalid_certificate", "wc.tls.invalid-certificate"),
        ("ssl_failed_handshake", "wc.tls.failure"),
    ],
)
def test_tls_failure_rules(failure: str, rule: str) -> None:
    result = analyze(web(HTTPS, gai(IP), tcp(IP, 443, 2), tls(IP, 2, failure), control=ctl()))
    assert (result.blocking, result.http_experiment_failure) == ("http-failure", failure)
    assert result.verdict is not None
    assert (result.verdict.method, result.verdict.rule_id) == (Method.TLS, rule)


@pytest.mark.parametrize(
    ("layer", "failure", "rule"),
    [
        ("tcp", "host_unreachable", "wc.tcp.failure"),
        ("http", "eof_error", "wc.http.eof"),
        ("http", "generic_timeout_error", "wc.http.timeout"),
        ("http", "unknown_failure: weird", "wc.http.failure"),
    ],
)
def test_endpoint_failure_rules(layer: str, failure: str, rule: str) -> None:
    if layer == "tcp":
        records: tuple[Any, ...] = (tcp(IP, 443, 2, failure),)
    else:
        records = (tcp(IP, 443, 2), tls(IP, 2), http(HTTPS, IP, 443, 2, failure=failure))
    result = analyze(web(HTTPS, gai(IP), *records, control=ctl()))
    assert result.verdict is not None
    assert result.verdict.rule_id == rule


def test_older_probe_records_are_classic_depth_zero() -> None:
    """No tags, no transaction ids (Web Connectivity 0.4 and before): stand-alone requests."""
    query = replace(gai(IP), engine="system", tags=(), transaction_id=0)
    connect = TCPConnect(ip=IP, port=80)
    first = HTTPTransaction(
        request=HTTPRequest(method="GET", url=HTTP),
        response=HTTPResponse(code=301, headers_list=(("Location", HTTPS),)),
    )
    final = HTTPTransaction(
        request=HTTPRequest(method="GET", url=HTTPS),
        response=HTTPResponse(code=200, body=SITE_BODY, headers_list=SITE_HEADERS),
    )
    obs = WebObservations(
        input=HTTP,
        queries=(query,),
        tcp_connect=(connect,),
        requests=(first, final),
        control=ctl(tcp={f"{IP}:80": None}, tls={}),
    )
    result = analyze(obs)
    assert (result.blocking, result.accessible, result.dns_consistency) == (
        False,
        True,
        "consistent",
    )
    assert result.verdict is not None
    assert result.verdict.rule_id == "wc.ok.https"
    failed = replace(obs, requests=(replace(first, response=None, failure="connection_reset"),))
    result = analyze(failed)
    assert (result.blocking, result.http_experiment_failure) == ("http-failure", "connection_reset")


def test_missing_control_parts_read_as_go_zero_values() -> None:
    """A control without ``http_request``: OONI's Go struct reads it as a success, status 0."""
    control = replace(ctl(tcp=HTTP_CONTROL), http_request=None)
    result = analyze(web(HTTP, gai(IP), *http_fetch(), control=control))
    assert (result.blocking, result.status_code_match) == ("http-diff", None)


def test_asn_falls_back_to_recorded_asns() -> None:
    """Without ``asn_of``, the ASNs in DNS answers and in the control's ip_info count."""
    query = replace(gai(), answers=(DNSAnswer(answer_type="A", ipv4=IP2, asn=15133),))
    obs = web(HTTPS, query, *https_ok(IP2), control=ctl())
    assert analyze(obs).dns_consistency == "consistent"
    assert analyze(obs, asn_of=lambda ip: 0).dns_consistency == "consistent"
    assert analyze(obs, asn_of=lambda ip: {IP2: 1, IP: 2}[ip]).dns_consistency == "inconsistent"


def test_domain_comparison_ignores_case_and_idna() -> None:
    url = "http://Яндекс.рф/"
    query = replace(gai(IP), hostname="xn--d1acpjx3f.xn--p1ai")
    result = analyze(web(url, query, *http_fetch(), control=ctl(tcp=HTTP_CONTROL)))
    assert result.dns_consistency == "consistent"


@pytest.mark.parametrize(
    ("body", "title"),
    [
        (b"<html><title>Hello World</title></html>", "Hello World"),
        (b"<TITLE>Upper</TITLE>", "Upper"),
        (b"<title></title><title>second</title>", "second"),
        (b"<title>" + b"x" * 600 + b"</title>", ""),
        (b"<title>caf\xc3\xa9 \xff</title>", "café \ufffd"),
        (b"no title", ""),
    ],
)
def test_extract_title(body: bytes, title: str) -> None:
    assert extract_title(body) == title


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://WWW.Example.com:8443/x", "WWW.Example.com"),
        ("http://[2001:db8::1]:80/", "2001:db8::1"),
        ("http://user@host.example/", "host.example"),
        ("http://[::1/", "::1"),  # malformed, but never an exception
        ("not a url", ""),
    ],
)
def test_url_hostname_keeps_case(url: str, host: str) -> None:
    assert url_hostname(url) == host


def test_title_words_are_compared_by_utf8_length() -> None:
    """Words of 5+ bytes count: a 3-letter Cyrillic word (6 bytes) does, 'news' does not."""
    body = SITE_BODY.replace(b"Example Domain Homepage", "Пример news".encode())
    page = replace(SITE_PAGE, title="Другой news")
    obs = web(HTTP, gai(IP), *http_fetch(body=body), control=ctl(tcp=HTTP_CONTROL, page=page))
    assert analyze(obs).title_match is False


def test_rule_table_is_well_formed() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(RULES_BY_ID)
    assert all(re.fullmatch(r"wc(\.[a-z0-9-]+)+", i) for i in ids)
    assert len({row.id for row in OONI_ROWS}) == len(OONI_ROWS)


def test_docs_list_every_rule_and_row() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [r.id for r in RULES if f"`{r.id}`" not in text]
    assert missing == [], "rules missing from docs/classifier.md"
    rows = [row.id for row in OONI_ROWS if f"| {row.id} |" not in text]
    assert rows == [], "OONI rows missing from docs/classifier.md"


def test_analyze_is_deterministic_and_pure() -> None:
    obs = SCENARIOS[0].obs
    assert analyze(obs) == analyze(obs)
