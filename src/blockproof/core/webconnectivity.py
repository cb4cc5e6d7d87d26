"""The Web Connectivity classifier: observations in, OONI's verdict plus our own out.

Theory of operation (sans-IO: no sockets, no clock, no event loop)
------------------------------------------------------------------

``analyze`` reproduces the analysis of OONI Web Connectivity 0.5 ("LTE", its
"classic" engine) on a ``WebObservations`` and adds an explained verdict.

1. *Observations.* Every DNS lookup becomes one observation per resolved
   address (or one per failed lookup); every TCP connect becomes an endpoint
   observation, which the TLS handshake and the HTTP round trip with the same
   ``transaction_id`` extend. An observation's type is the last operation it
   reached (DNS < TCP < TLS < HTTP) and its failure is that operation's.
2. *Control.* Each observation is cross-referenced with the control's answer
   for the same domain (DNS), ``ip:port`` (TCP), ``ip:port`` + SNI (TLS), and
   with the control's fetch of the final page (HTTP, for every observation).
   Only depth 0 (before any redirect) has per-operation control data; a
   failure later on is "unexplained" unless the control fetched the page.
3. *Metrics.* Lookups are valid when their addresses share an IP or an ASN
   with the control's; failures are expected (the control failed too),
   unexpected (only the probe failed) or unexplained (no control data). The
   final response (2xx/4xx/5xx) is compared with the control's page: body
   length proportion > 0.7, status code, uncommon header names, title words.
4. *OONI keys.* The extended flags (``x_blocking_flags``, ``x_dns_flags``,
   ``x_null_null_flags``) come from all observations; the v0.4-compatible keys
   come from the "classic" subset: system-resolver lookups, and endpoints
   that may fetch the page and whose address did not come only from another
   resolver or from the control. ``blocking``/``accessible`` come from a walk
   over the classic observations, latest redirect first, then HTTP > TLS >
   TCP > DNS, successes first: the first one matching a row of OONI's
   decision table (``OONI_ROWS``) decides; an inconsistent DNS turns any
   blocking string into ``"dns"``.
5. *Our verdict* (``x_verdict``). The same decisive observation, read with
   finer methods (TLS apart from HTTP, "down" when the control fails too),
   and three rules of our own that never change OONI's keys: the CDN guard (a
   resolved address is also valid when the probe completed a
   certificate-verified TLS handshake to it for the URL's host, or when the
   control's ``ip_info`` marks it valid for the domain); shared transport
   headers (``content-length``...) do not make two pages alike; and a mere
   address mismatch does not explain a failure the control shares. The rules
   are data (``RULES``); each yields a one-sentence explanation with the
   concrete failure and addresses.

Older data (OONI probes before 0.5, with no tags and no transaction ids) is
read as classic, depth 0: its HTTP requests stand alone (not tied to a TCP
connect), redirect chains giving their depth; an https request that got a
response implies a successful TLS handshake. docs/classifier.md lists the
rows, the rules and every known difference from OONI's recorded values.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from urllib.parse import urlsplit

from blockproof.core.bogons import is_bogon, is_loopback
from blockproof.core.http import extract_title
from blockproof.core.idn import IDNAError, host_to_ascii
from blockproof.model.control import (
    IP_FLAG_VALID_FOR_DOMAIN,
    ControlDNS,
    ControlHTTPRequest,
    ControlResponse,
)
from blockproof.model.observations import DNSQuery, HTTPTransaction, join_endpoint, split_endpoint
from blockproof.model.verdict import (
    BLOCKING_DNS,
    BLOCKING_HTTP_DIFF,
    BLOCKING_HTTP_FAILURE,
    BLOCKING_TCP_IP,
    BlockingFlags,
    DNSFlags,
    Method,
    NullNullFlags,
    Verdict,
    WebConnectivityAnalysis,
)
from blockproof.model.web import WebObservations

__all__ = [
    "BODY_PROPORTION_THRESHOLD",
    "COMMON_HEADERS",
    "OONI_ROWS",
    "RULES",
    "RULES_BY_ID",
    "TRANSPORT_HEADERS",
    "OoniRow",
    "Rule",
    "analyze",
    "extract_title",
]

# --------------------------------------------------------------------------------------
# constants (OONI minipipeline/httpdiff.go, measurexlite/web.go, utils.go)

BODY_PROPORTION_THRESHOLD = 0.7
MIN_TITLE_WORD_BYTES = 5

COMMON_HEADERS = frozenset(
    {
        "date",
        "content-type",
        "server",
        "cache-control",
        "vary",
        "set-cookie",
        "location",
        "expires",
        "x-powered-by",
        "content-encoding",
        "last-modified",
        "accept-ranges",
        "pragma",
        "x-frame-options",
        "etag",
        "x-content-type-options",
        "age",
        "via",
        "p3p",
        "x-xss-protection",
        "content-language",
        "cf-ray",
        "strict-transport-security",
        "link",
        "x-varnish",
    }
)

# Headers that any HTTP server sends: sharing them does not make two pages alike (our
# verdict only; OONI counts them, see docs/classifier.md).
TRANSPORT_HEADERS = frozenset(
    {"connection", "content-length", "keep-alive", "proxy-connection", "transfer-encoding"}
)

# System-resolver engines: OONI's (getaddrinfo, golang_net_resolver), plus what older
# probes wrote for the same resolver ("system", or no engine at all).
SYSTEM_RESOLVER_ENGINES = frozenset({"getaddrinfo", "golang_net_resolver", "system", ""})


_DNS_NO_ANSWER = "dns_no_answer"
_IPV6_MISCONFIGURED = frozenset({"network_unreachable", "host_unreachable"})
_UNKNOWN_FAILURE = "unknown_failure"  # sorts undefined failures last, as OONI does

# --------------------------------------------------------------------------------------
# the two tables: OONI's decision rows, and our rules


class _Set(Enum):
    """What a decision row does to ``blocking``/``accessible`` (OONI's setters)."""

    FALSE = "false/true"  # setBlockingFalse
    NIL = "null/null"  # setBlockingNil ("dns"/false if DNS inconsistent)
    STRING = "string/false"  # setBlockingString ("dns" if DNS inconsistent)
    DOWN = "false/false"  # setWebsiteDown ("dns"/false if DNS inconsistent)


@dataclass(frozen=True, slots=True)
class OoniRow:
    """One row of OONI's classic decision table (analysisclassic.go)."""

    id: str
    setter: _Set
    blocking: str | None  # the string for STRING rows
    sets_http_failure: bool  # copies the deciding failure into http_experiment_failure
    when: str


OONI_ROWS: tuple[OoniRow, ...] = (
    OoniRow("1.1", _Set.FALSE, None, False, "final response over TLS"),
    OoniRow("1.2", _Set.NIL, None, False, "final response, no control"),
    OoniRow("1.3", _Set.FALSE, None, False, "final cleartext response like the control's"),
    OoniRow("1.4", _Set.STRING, BLOCKING_HTTP_DIFF, False, "final cleartext response differs"),
    OoniRow("2.1", _Set.NIL, None, True, "HTTP failed, no control"),
    OoniRow("2.2", _Set.DOWN, None, True, "HTTP failed, control's fetch failed too"),
    OoniRow("2.3", _Set.STRING, BLOCKING_HTTP_FAILURE, True, "HTTP failed, control fetched"),
    OoniRow("3.1.1", _Set.NIL, None, True, "TLS failed, no control at all"),
    OoniRow("3.1.2", _Set.STRING, BLOCKING_HTTP_FAILURE, True, "TLS failed after a redirect"),
    OoniRow("3.2", _Set.DOWN, None, True, "TLS failed, control's handshake failed too"),
    OoniRow("3.3", _Set.STRING, BLOCKING_HTTP_FAILURE, True, "TLS failed, control's succeeded"),
    OoniRow("4.1.1", _Set.NIL, None, True, "TCP failed, no control at all"),
    OoniRow("4.1.2", _Set.STRING, BLOCKING_HTTP_FAILURE, True, "TCP failed after a redirect"),
    OoniRow("4.2", _Set.DOWN, None, True, "TCP failed, control's connect failed too"),
    OoniRow("4.3", _Set.STRING, BLOCKING_TCP_IP, True, "TCP failed, control connected"),
    OoniRow("5.1.1", _Set.FALSE, None, True, "DNS failed, no control at all"),
    OoniRow("5.1.2", _Set.STRING, BLOCKING_DNS, True, "DNS failed after a redirect"),
    OoniRow("5.2", _Set.DOWN, None, True, "DNS failed, control's lookup failed too"),
    OoniRow("5.3", _Set.DOWN, None, False, "dns_no_answer, control found no address"),
    OoniRow("5.4", _Set.STRING, BLOCKING_DNS, True, "DNS failed, control resolved"),
    OoniRow("6", _Set.STRING, BLOCKING_DNS, False, "only loopback addresses, control real ones"),
    OoniRow("7", _Set.DOWN, None, False, "only loopback addresses, control too"),
)
_ROWS = {row.id: row for row in OONI_ROWS}


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of our verdict: a stable id, a method, and a one-sentence template."""

    id: str
    method: Method
    template: str


RULES: tuple[Rule, ...] = (
    # accessible
    Rule(
        "wc.ok.https",
        Method.NONE,
        "{url} is accessible: the page was fetched over HTTPS from {address}, with a certificate"
        " valid for {server_name}.",
    ),
    Rule(
        "wc.ok.https-no-control",
        Method.NONE,
        "{url} is accessible: the control was unavailable ({control_failure}), but the page"
        " was fetched over HTTPS from {address} with a certificate valid for {server_name}.",
    ),
    Rule(
        "wc.ok",
        Method.NONE,
        "{url} is accessible: the page fetched over plain HTTP from {address} matches the"
        " control's ({comparison}).",
    ),
    # DNS
    Rule(
        "wc.dns.nxdomain",
        Method.DNS,
        "The system resolver said {host} does not exist ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.dns.no-answer",
        Method.DNS,
        "The system resolver returned no address for {host} ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.dns.timeout",
        Method.DNS,
        "Resolving {host} timed out ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.dns.failure",
        Method.DNS,
        "Resolving {host} failed ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.dns.localhost",
        Method.DNS,
        "The system resolver answered {host} with the loopback address {probe_addrs} while the"
        " control resolved it to {control_addrs}.",
    ),
    Rule(
        "wc.dns.bogon",
        Method.DNS,
        "The system resolver answered {host} with the non-public address {probe_addrs} while"
        " the control resolved it to {control_addrs}.",
    ),
    Rule(
        "wc.dns.inconsistent",
        Method.DNS,
        "The system resolver answered {host} with {probe_addrs}, which share no address and no"
        " network (ASN) with the control's {control_addrs} and were not proven valid by TLS.",
    ),
    Rule(
        "wc.dns.ghost",
        Method.DNS,
        "The system resolver answered {host} with {probe_addrs} although the control found no"
        " address for it ({control_failure}).",
    ),
    # TCP/IP
    Rule(
        "wc.tcp.timeout",
        Method.TCP_IP,
        "Connecting to {address} timed out ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.tcp.refused",
        Method.TCP_IP,
        "Connecting to {address} was refused ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.tcp.failure",
        Method.TCP_IP,
        "Connecting to {address} failed ({failure}) while {control_evidence}.",
    ),
    # TLS
    Rule(
        "wc.tls.reset",
        Method.TLS,
        "The TLS handshake with {address} for {server_name} was reset ({failure}) while"
        " {control_evidence}.",
    ),
    Rule(
        "wc.tls.eof",
        Method.TLS,
        "The TLS handshake with {address} for {server_name} was cut off by an unexpected close"
        " ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.tls.timeout",
        Method.TLS,
        "The TLS handshake with {address} for {server_name} timed out ({failure}) while"
        " {control_evidence}.",
    ),
    Rule(
        "wc.tls.mitm",
        Method.TLS,
        "The TLS handshake with {address} for {server_name} met a certificate from an unknown"
        " authority ({failure}) while {control_evidence}: the connection is intercepted.",
    ),
    Rule(
        "wc.tls.invalid-hostname",
        Method.TLS,
        "The TLS handshake with {address} for {server_name} met a certificate for another name"
        " ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.tls.invalid-certificate",
        Method.TLS,
        "The TLS handshake with {address} for {server_name} met an invalid certificate"
        " ({failure}) while {control_evidence}.",
    ),
    Rule(
        "wc.tls.failure",
        Method.TLS,
        "The TLS handshake with {address} for {server_name} failed ({failure}) while"
        " {control_evidence}.",
    ),
    # HTTP
    Rule(
        "wc.http.reset",
        Method.HTTP,
        "The HTTP request for {request_url} to {address} was reset ({failure}) after the"
        " connection was up, while {control_evidence}.",
    ),
    Rule(
        "wc.http.eof",
        Method.HTTP,
        "The HTTP request for {request_url} to {address} was cut off by an unexpected close"
        " ({failure}) after the connection was up, while {control_evidence}.",
    ),
    Rule(
        "wc.http.timeout",
        Method.HTTP,
        "The HTTP request for {request_url} to {address} timed out ({failure}) after the"
        " connection was up, while {control_evidence}.",
    ),
    Rule(
        "wc.http.failure",
        Method.HTTP,
        "The HTTP request for {request_url} to {address} failed ({failure}) while"
        " {control_evidence}.",
    ),
    Rule(
        "wc.http.diff",
        Method.HTTP_DIFF,
        "The page fetched over plain HTTP from {address} is not the control's ({comparison}):"
        " likely a blockpage.",
    ),
    # down: the control fails too
    Rule(
        "wc.down.dns",
        Method.DOWN,
        "Resolving {host} failed for the probe ({failure}) and for the control"
        " ({control_failure}): the site looks down, not censored.",
    ),
    Rule(
        "wc.down.localhost",
        Method.DOWN,
        "Both the probe and the control resolved {host} to loopback addresses only"
        " ({probe_addrs}): the site is misconfigured, not censored.",
    ),
    Rule(
        "wc.down.tcp",
        Method.DOWN,
        "Connecting to {address} failed for the probe ({failure}) and for the control"
        " ({control_failure}): the site looks down, not censored.",
    ),
    Rule(
        "wc.down.tls",
        Method.DOWN,
        "The TLS handshake with {address} for {server_name} failed for the probe ({failure})"
        " and for the control ({control_failure}): the site looks down, not censored.",
    ),
    Rule(
        "wc.down.http",
        Method.DOWN,
        "Fetching {request_url} failed for the probe ({failure}) and the control could not"
        " fetch the page either ({control_failure}): the site looks down, not censored.",
    ),
    Rule(
        "wc.down.redirect",
        Method.DOWN,
        "After a redirect, {operation} failed ({failure}) and the control could not fetch the"
        " page either ({control_failure}): the site looks down, not censored.",
    ),
    # undetermined
    Rule(
        "wc.control.unavailable",
        Method.UNDETERMINED,
        "The control was unavailable ({control_failure}) and {probe_summary}, so there is"
        " nothing to compare with.",
    ),
    Rule(
        "wc.undetermined",
        Method.UNDETERMINED,
        "No observation settles whether {url} is blocked: {probe_summary}.",
    ),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}

_DNS_RULE_BY_FAILURE = {
    "dns_nxdomain_error": "wc.dns.nxdomain",
    "dns_no_answer": "wc.dns.no-answer",
    "generic_timeout_error": "wc.dns.timeout",
}
_TCP_RULE_BY_FAILURE = {
    "generic_timeout_error": "wc.tcp.timeout",
    "connection_refused": "wc.tcp.refused",
}
_TLS_RULE_BY_FAILURE = {
    "connection_reset": "wc.tls.reset",
    "eof_error": "wc.tls.eof",
    "generic_timeout_error": "wc.tls.timeout",
    "ssl_unknown_authority": "wc.tls.mitm",
    "ssl_invalid_hostname": "wc.tls.invalid-hostname",
    "ssl_invalid_certificate": "wc.tls.invalid-certificate",
}
_HTTP_RULE_BY_FAILURE = {
    "connection_reset": "wc.http.reset",
    "eof_error": "wc.http.eof",
    "generic_timeout_error": "wc.http.timeout",
}

# --------------------------------------------------------------------------------------
# observations (OONI minipipeline "web observations"; "" = success, None = unknown)

_DNS, _TCP, _TLS, _HTTP = 0, 1, 2, 3
_TYPE_NAMES = {_DNS: "DNS", _TCP: "TCP", _TLS: "TLS", _HTTP: "HTTP"}


@dataclass(slots=True, kw_only=True)
class _Obs:
    type: int
    failure: str | None
    txid: int = 0
    depth: int = 0
    fetch_body: bool = True
    # DNS
    dns_key: Hashable | None = None
    dns_domain: str | None = None
    dns_failure: str | None = None
    dns_query_type: str | None = None
    dns_engine: str | None = None
    dns_addrs: frozenset[str] | None = None
    dns_classic: bool = False
    # address
    ip_origin: str | None = None  # "dns" or "th"
    ip: str | None = None
    ip_bogon: bool | None = None
    # endpoint
    endpoint_address: str | None = None
    tcp_failure: str | None = None
    tls_failure: str | None = None
    tls_server_name: str | None = None
    http_failure: str | None = None
    http_url: str | None = None
    http_status: int | None = None
    http_body_length: int | None = None
    http_truncated: bool | None = None
    http_header_keys: frozenset[str] | None = None
    http_title: str | None = None
    http_final: bool | None = None
    # control
    ctrl_dns_failure: str | None = None
    ctrl_dns_addrs: frozenset[str] | None = None
    ctrl_tcp_failure: str | None = None
    ctrl_tls_failure: str | None = None
    ctrl_http_failure: str | None = None
    ctrl_http_status: int | None = None
    ctrl_http_body_length: int | None = None
    ctrl_http_header_keys: frozenset[str] | None = None
    ctrl_http_title: str | None = None

    def copy_dns_from(self, other: _Obs) -> None:
        self.dns_key = other.dns_key
        self.dns_domain = other.dns_domain
        self.dns_failure = other.dns_failure
        self.dns_addrs = other.dns_addrs
        self.dns_classic = other.dns_classic
        self.ip_origin = other.ip_origin


@dataclass(frozen=True, slots=True)
class _Expectations:
    dns_addrs: frozenset[str]
    final_failure: str  # "" when the control fetched the page


@dataclass(slots=True)
class _Container:
    dns_failures: list[_Obs] = field(default_factory=list)
    dns_successes: list[_Obs] = field(default_factory=list)
    endpoints: dict[Hashable, _Obs] = field(default_factory=dict)
    known_ips: dict[str, _Obs] = field(default_factory=dict)
    expectations: _Expectations | None = None


def _tag_value(tags: Iterable[str], prefix: str) -> str | None:
    value = None
    for tag in tags:
        if tag.startswith(prefix):
            value = tag[len(prefix) :]
    return value


def _depth(tags: tuple[str, ...]) -> int:
    """The ``depth=N`` tag; records without one (older probes) are depth 0."""
    value = _tag_value(tags, "depth=")
    if value is not None:
        try:
            return int(value)
        except ValueError:
            pass
    return 0


def _fetch_body(tags: tuple[str, ...]) -> bool:
    """The ``fetch_body=`` tag; records without one (older probes) may fetch."""
    value = _tag_value(tags, "fetch_body=")
    return True if value is None else value == "true"


def _f(failure: str | None) -> str:
    return failure or ""


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def url_hostname(url: str) -> str:
    """The URL's host as written (case kept, no port, no brackets), like Go's Hostname()."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # e.g. an unclosed IPv6 bracket: take what follows the scheme
        netloc = url.partition("//")[2].partition("/")[0]
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.partition(":")[0]


def _domain_key(name: str) -> str:
    """A domain name for comparison: lowercase, internationalized names in ASCII form."""
    try:
        return host_to_ascii(name)
    except IDNAError:
        return name.lower()


def _response_is_final(code: int) -> bool:
    return code // 100 in (2, 4, 5)


def _lookup_obs(q: DNSQuery, key: Hashable, failure: str) -> _Obs:
    return _Obs(
        type=_DNS,
        failure=failure,
        txid=q.transaction_id,
        depth=_depth(q.tags),
        dns_key=key,
        dns_domain=q.hostname,
        dns_failure=failure,
        dns_query_type=q.query_type,
        dns_engine=q.engine,
        dns_classic="classic" in q.tags or q.engine in SYSTEM_RESOLVER_ENGINES,
    )


def _ingest(obs: WebObservations) -> _Container:
    c = _Container()
    # DNS lookups: one observation per failed lookup, one per resolved address
    for index, q in enumerate(obs.queries):
        key: Hashable = ("tx", q.transaction_id) if q.transaction_id else ("query", index)
        if q.failure is not None:
            c.dns_failures.append(_lookup_obs(q, key, q.failure))
            continue
        addrs = frozenset(
            a.address for a in q.answers if a.answer_type in ("A", "AAAA") and a.address
        )
        for ip in sorted(addrs):
            entry = _lookup_obs(q, key, "")
            entry.dns_addrs = addrs
            entry.ip_origin = "dns"
            entry.ip = ip
            entry.ip_bogon = is_bogon(ip)
            c.dns_successes.append(entry)
            c.known_ips.setdefault(ip, entry)
    # TCP connects: one endpoint each
    for index, t in enumerate(obs.tcp_connect):
        key = ("tx", t.transaction_id) if t.transaction_id else ("tcp", index)
        entry = _Obs(
            type=_TCP,
            failure=_f(t.failure),
            txid=t.transaction_id,
            depth=_depth(t.tags),
            fetch_body=_fetch_body(t.tags),
            ip=t.ip,
            ip_bogon=is_bogon(t.ip),
            endpoint_address=join_endpoint(t.ip, t.port),
            tcp_failure=_f(t.failure),
        )
        known = c.known_ips.get(t.ip)
        if known is not None:
            entry.copy_dns_from(known)
        c.endpoints[key] = entry
    # TLS handshakes extend their TCP endpoint (older data: the first one with that address)
    for h in obs.tls_handshakes:
        target: _Obs | None
        if h.transaction_id:
            target = c.endpoints.get(("tx", h.transaction_id))
        else:
            target = next(
                (
                    e
                    for e in c.endpoints.values()
                    if e.txid == 0 and e.endpoint_address == h.address and e.tls_failure is None
                ),
                None,
            )
        if target is None:
            continue
        target.type = _TLS
        target.failure = _f(h.failure)
        target.tls_failure = _f(h.failure)
        target.tls_server_name = h.server_name
    # HTTP round trips extend their endpoint; older data has stand-alone requests
    standalone_depth = 0
    for index, tx in enumerate(obs.requests):
        if tx.transaction_id:
            target = c.endpoints.get(("tx", tx.transaction_id))
            if target is None:
                continue
        else:
            depth = standalone_depth
            if _tag_value(tx.tags, "depth=") is not None:
                depth = _depth(tx.tags)
            standalone_depth += 1
            target = _Obs(
                type=_HTTP,
                failure=None,
                depth=depth,
                fetch_body=True,
                endpoint_address=tx.address,
            )
            if tx.request.url.lower().startswith("https://") and tx.failure is None:
                target.tls_failure = ""  # a response over https implies a good handshake
            c.endpoints[("request", index)] = target
        _extend_with_http(target, tx)
    if obs.control is not None:
        _ingest_control(c, _domain_key(url_hostname(obs.input)), obs.control)
    return c


def _extend_with_http(target: _Obs, tx: HTTPTransaction) -> None:
    target.type = _HTTP
    target.failure = _f(tx.failure)
    target.http_failure = _f(tx.failure)
    target.http_url = tx.request.url
    if tx.failure is None:
        response = tx.response
        code = response.code if response else 0
        body = response.body if response else b""
        target.http_status = code
        target.http_body_length = len(body)
        target.http_truncated = response.body_is_truncated if response else False
        headers = response.headers_list if response else ()
        target.http_header_keys = frozenset(k for k, _ in headers)
        target.http_title = extract_title(body)
        target.http_final = _response_is_final(code)


def _ingest_control(c: _Container, domain: str, control: ControlResponse) -> None:
    dns = control.dns if control.dns is not None else ControlDNS()
    # a missing http_request reads as Go's zero value: no failure, status 0
    http = control.http_request
    if http is None:
        http = ControlHTTPRequest(body_length=0, status_code=0)
    dns_failure = _f(dns.failure)
    dns_addrs = frozenset(dns.addrs)
    for entry in (*c.dns_failures, *c.dns_successes):
        if _domain_key(entry.dns_domain or "") != domain:
            continue
        entry.ctrl_dns_failure = dns_failure
        if dns.failure is None:
            entry.ctrl_dns_addrs = dns_addrs
    for entry in c.endpoints.values():
        endpoint_domain = _domain_key(entry.dns_domain or "")
        if endpoint_domain == "" and entry.ip is not None and entry.ip in dns_addrs:
            entry.ip_origin = "th"
            entry.ctrl_dns_failure = dns_failure
            entry.ctrl_dns_addrs = dns_addrs
            continue
        if endpoint_domain == "" or endpoint_domain != domain:
            continue
        entry.ctrl_dns_failure = dns_failure
        if dns.failure is None:
            entry.ctrl_dns_addrs = dns_addrs
    for entry in c.endpoints.values():
        address = entry.endpoint_address or ""
        tcp = control.tcp_connect.get(address)
        if tcp is not None:
            entry.ctrl_tcp_failure = _f(tcp.failure)
        if entry.tls_server_name is None:
            continue
        tls = control.tls_handshake.get(address)
        if tls is not None and tls.server_name == entry.tls_server_name:
            entry.ctrl_tls_failure = _f(tls.failure)
    c.expectations = _Expectations(dns_addrs=dns_addrs, final_failure=_f(http.failure))
    header_keys = frozenset(http.headers)
    for entry in (*c.dns_failures, *c.dns_successes, *c.endpoints.values()):
        entry.ctrl_http_failure = _f(http.failure)
        if http.failure is not None:
            continue
        entry.ctrl_http_status = http.status_code
        entry.ctrl_http_body_length = http.body_length
        entry.ctrl_http_header_keys = header_keys
        entry.ctrl_http_title = http.title


def _classic(c: _Container) -> _Container:
    """OONI's ClassicFilter: the system resolver's view, as Web Connectivity 0.4 measured."""
    out = _Container(expectations=c.expectations)
    out.dns_failures = [e for e in c.dns_failures if e.dns_classic]
    classic_ips: set[str] = set()
    for entry in c.dns_successes:
        if entry.dns_classic:
            out.dns_successes.append(entry)
            classic_ips.add(entry.ip or "")
    for key, entry in c.endpoints.items():
        if entry.ip_origin == "th":
            continue
        if entry.ip_origin == "dns" and entry.ip not in classic_ips:
            continue
        if not entry.fetch_body:
            continue
        out.endpoints[key] = entry
    return out


# --------------------------------------------------------------------------------------
# metrics (OONI minipipeline/analysis.go)


@dataclass(slots=True)
class _Metrics:
    expectations: _Expectations | None
    dns_success: dict[Hashable, _Obs] = field(default_factory=dict)
    dns_bogon: set[Hashable] = field(default_factory=set)
    dns_valid: set[Hashable] = field(default_factory=set)
    dns_invalid: set[Hashable] = field(default_factory=set)
    dns_valid_classic: set[Hashable] = field(default_factory=set)
    dns_invalid_classic: dict[Hashable, _Obs] = field(default_factory=dict)
    dns_unexpected_failure: dict[Hashable, _Obs] = field(default_factory=dict)
    dns_unexplained_failure: set[Hashable] = field(default_factory=set)
    dns_expected_failure: set[Hashable] = field(default_factory=set)
    dns_experiment_failure: str | None = None
    tcp_expected_failure: set[Hashable] = field(default_factory=set)
    tcp_unexpected_failure: set[Hashable] = field(default_factory=set)
    tcp_unexplained_failure: set[Hashable] = field(default_factory=set)
    tls_expected_failure: set[Hashable] = field(default_factory=set)
    tls_unexpected_failure: set[Hashable] = field(default_factory=set)
    tls_unexplained_failure: set[Hashable] = field(default_factory=set)
    http_unexpected_failure: set[Hashable] = field(default_factory=set)
    http_unexplained_failure: set[Hashable] = field(default_factory=set)
    final: _Obs | None = None
    final_with_control: bool = False
    final_over_tls: bool = False
    body_proportion: float | None = None
    status_code_match: bool | None = None
    title_different_words: frozenset[str] | None = None
    uncommon_headers: frozenset[str] | None = None


Asn = Callable[[str], int]


def _addresses_valid(measured: frozenset[str], control: frozenset[str], asn: Asn) -> bool:
    if any(ip and ip in control for ip in measured):
        return True
    probe_asns = {asn(ip) for ip in measured} - {0}
    return bool(probe_asns & ({asn(ip) for ip in control} - {0}))


def _first_per_lookup(entries: Iterable[_Obs]) -> Iterable[_Obs]:
    seen: set[Hashable] = set()
    for entry in entries:
        if entry.dns_key in seen:
            continue
        seen.add(entry.dns_key)
        yield entry


def _is_ipv6(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").version == 6
    except ValueError:
        return False


def _metrics(c: _Container, asn: Asn) -> _Metrics:
    m = _Metrics(expectations=c.expectations)
    # successful lookups (only the first observation of each lookup counts, as in OONI)
    for entry in _first_per_lookup(c.dns_successes):
        if entry.depth != 0:
            continue
        m.dns_success[entry.dns_key] = entry
        if entry.ip_bogon:
            m.dns_bogon.add(entry.dns_key)
        if entry.ctrl_dns_addrs is None or entry.dns_addrs is None:
            continue
        if _addresses_valid(entry.dns_addrs, entry.ctrl_dns_addrs, asn):
            m.dns_valid.add(entry.dns_key)
            m.dns_valid_classic.add(entry.dns_key)
        else:
            m.dns_invalid.add(entry.dns_key)
            m.dns_invalid_classic[entry.dns_key] = entry
    for entry in c.endpoints.values():  # a good TLS handshake validates the lookup
        if entry.tls_failure == "" and entry.dns_key is not None:
            m.dns_invalid.discard(entry.dns_key)
            m.dns_valid.add(entry.dns_key)
    # failed lookups
    for entry in _first_per_lookup(c.dns_failures):
        failure = entry.dns_failure or ""
        if entry.dns_engine == "doh":
            continue  # a DoH failure says the DoH service is blocked, not the site
        if entry.dns_query_type == "AAAA" and failure == _DNS_NO_ANSWER:
            continue
        if entry.depth != 0:
            if failure:
                m.dns_unexplained_failure.add(entry.dns_key)
            continue
        if failure and m.dns_experiment_failure is None:
            m.dns_experiment_failure = failure
        if entry.ctrl_dns_failure is None:
            continue
        if failure and entry.ctrl_dns_failure:
            m.dns_expected_failure.add(entry.dns_key)
            continue
        if entry.ctrl_dns_failure:
            continue
        if failure:
            if (
                failure == _DNS_NO_ANSWER
                and entry.ctrl_dns_addrs is not None
                and not entry.ctrl_dns_addrs
            ):
                m.dns_expected_failure.add(entry.dns_key)
                continue
            m.dns_unexpected_failure[entry.dns_key] = entry
    # endpoints
    for key, entry in c.endpoints.items():
        _endpoint_metrics(m, key, entry)
    # the final response (at most one in LTE data; the deepest otherwise)
    finals = [e for e in c.endpoints.values() if e.http_final]
    if finals:
        _final_response(m, max(finals, key=lambda e: e.depth))
    return m


def _endpoint_metrics(m: _Metrics, key: Hashable, e: _Obs) -> None:
    ipv6_misconfigured = e.tcp_failure in _IPV6_MISCONFIGURED and _is_ipv6(e.ip)
    if e.tcp_failure is not None:
        if e.depth != 0:
            if e.tcp_failure and not ipv6_misconfigured:
                m.tcp_unexplained_failure.add(key)
        elif e.ctrl_tcp_failure is None:
            pass
        elif e.tcp_failure and e.ctrl_tcp_failure:
            m.tcp_expected_failure.add(key)
        elif e.ctrl_tcp_failure:
            pass
        elif e.tcp_failure and not ipv6_misconfigured:
            m.tcp_unexpected_failure.add(key)
    if e.tls_failure is not None:
        if e.depth != 0:
            if e.tls_failure:
                m.tls_unexplained_failure.add(key)
        elif e.ctrl_tls_failure is None:
            pass
        elif e.tls_failure and e.ctrl_tls_failure:
            m.tls_expected_failure.add(key)
        elif e.ctrl_tls_failure:
            pass
        elif e.tls_failure:
            m.tls_unexpected_failure.add(key)
    if e.http_failure is not None:
        if e.ctrl_http_failure is None:
            if e.http_failure:
                m.http_unexplained_failure.add(key)
        elif e.http_failure and not e.ctrl_http_failure:
            m.http_unexpected_failure.add(key)


def _final_response(m: _Metrics, e: _Obs) -> None:
    m.final = e
    m.final_over_tls = e.tls_failure == ""
    if e.ctrl_http_failure is None:
        return
    m.final_with_control = True
    measured = e.http_body_length or 0
    control = e.ctrl_http_body_length or 0
    truncated = True if e.http_truncated is None else e.http_truncated
    if measured > 0 and not truncated and control > 0:
        m.body_proportion = min(measured, control) / max(measured, control)
    status, ctrl_status = e.http_status or 0, e.ctrl_http_status or 0
    if status > 0 and ctrl_status > 0:
        if status == ctrl_status:
            m.status_code_match = True
        elif ctrl_status // 100 == 2:
            m.status_code_match = False
    if ctrl_status > 0:
        probe_keys = {k.lower() for k in e.http_header_keys or ()} - COMMON_HEADERS
        th_keys = {k.lower() for k in e.ctrl_http_header_keys or ()} - COMMON_HEADERS
        m.uncommon_headers = frozenset(probe_keys & th_keys)
        m.title_different_words = _title_difference(e.http_title or "", e.ctrl_http_title or "")


def _long_words(title: str) -> set[str]:
    return {w.lower() for w in title.split(" ") if _utf8_len(w) >= MIN_TITLE_WORD_BYTES}


def _title_difference(measured: str, control: str) -> frozenset[str]:
    return frozenset(_long_words(measured) ^ _long_words(control))


@dataclass(frozen=True, slots=True)
class _HTTPDiff:
    body_proportion: float | None
    body_length_match: bool | None
    headers_match: bool | None
    status_code_match: bool | None
    title_match: bool | None
    shared_headers: frozenset[str] | None

    @staticmethod
    def of(m: _Metrics) -> _HTTPDiff:
        proportion = m.body_proportion
        return _HTTPDiff(
            shared_headers=m.uncommon_headers,
            body_proportion=proportion,
            body_length_match=None
            if proportion is None
            else proportion > BODY_PROPORTION_THRESHOLD,
            headers_match=None if m.uncommon_headers is None else bool(m.uncommon_headers),
            status_code_match=m.status_code_match,
            title_match=None if m.title_different_words is None else not m.title_different_words,
        )

    def differs(self) -> bool:
        """OONI's http-diff decision: same status and one other thing alike = no diff."""
        if self.status_code_match:
            return not (self.body_length_match or self.headers_match or self.title_match)
        return True

    def differs_for_us(self) -> bool:
        """Our reading: shared transport headers (``content-length``...) prove nothing."""
        site_headers = (self.shared_headers or frozenset()) - TRANSPORT_HEADERS
        if self.status_code_match:
            return not (self.body_length_match or site_headers or self.title_match)
        return True


# --------------------------------------------------------------------------------------
# OONI keys


def _ext_flags(m: _Metrics) -> tuple[int, int, int]:
    blocking, dns, null_null = BlockingFlags(0), DNSFlags(0), NullNullFlags(0)
    if m.dns_bogon:
        dns |= DNSFlags.BOGON  # not blocking per se: a site may be misconfigured
    if m.dns_unexpected_failure:
        blocking |= BlockingFlags.DNS
        dns |= DNSFlags.UNEXPECTED_FAILURE
    if m.dns_invalid:
        blocking |= BlockingFlags.DNS
        dns |= DNSFlags.UNEXPECTED_ADDRS
    if m.tcp_unexpected_failure:
        blocking |= BlockingFlags.TCP_IP
    if m.tls_unexpected_failure:
        blocking |= BlockingFlags.TLS
    if m.http_unexpected_failure:
        blocking |= BlockingFlags.HTTP
    if m.final is None:
        expect = m.expectations
        if expect is not None and expect.final_failure == "":
            if m.dns_unexplained_failure:
                blocking |= BlockingFlags.DNS
            if m.tcp_unexplained_failure:
                blocking |= BlockingFlags.TCP_IP
            if m.tls_unexplained_failure:
                blocking |= BlockingFlags.TLS
            if m.http_unexplained_failure:
                blocking |= BlockingFlags.HTTP
    elif not m.final_with_control:
        if m.final_over_tls:
            null_null |= NullNullFlags.SUCCESSFUL_HTTPS
            blocking |= BlockingFlags.SUCCESS
    elif m.final_over_tls:
        blocking |= BlockingFlags.SUCCESS
    elif _HTTPDiff.of(m).differs():
        blocking |= BlockingFlags.HTTP_DIFF
    else:
        blocking |= BlockingFlags.SUCCESS
    if m.dns_expected_failure:
        null_null |= NullNullFlags.EXPECTED_DNS_FAILURE
    if m.tcp_expected_failure:
        null_null |= NullNullFlags.EXPECTED_TCP_FAILURE
    if m.tls_expected_failure:
        null_null |= NullNullFlags.EXPECTED_TLS_FAILURE
    if m.expectations is not None and not m.expectations.dns_addrs and m.dns_success:
        null_null |= NullNullFlags.UNEXPECTED_DNS_SUCCESS
    return int(blocking), int(dns), int(null_null)


def _dns_consistency(m: _Metrics) -> str | None:
    control_resolved_nothing = m.expectations is not None and not m.expectations.dns_addrs
    if (
        not m.dns_unexpected_failure
        and not m.dns_invalid_classic
        and (m.dns_valid_classic or m.dns_expected_failure)
    ):
        return "consistent"
    if (
        m.dns_invalid_classic
        or m.dns_unexpected_failure
        or (m.dns_success and control_resolved_nothing)
    ):
        return "inconsistent"
    return None


def _linear(c: _Container) -> list[_Obs]:
    entries = [*c.dns_failures, *c.dns_successes, *c.endpoints.values()]

    def order(e: _Obs) -> tuple[int, int, str, int]:
        failure = _UNKNOWN_FAILURE if e.failure is None else e.failure
        return (-e.depth, -e.type, failure, -e.txid)

    return sorted(entries, key=order)


def _only_loopback(addrs: Iterable[str]) -> bool:
    count = 0
    for addr in addrs:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            continue
        if not is_loopback(addr):
            return False
        count += 1
    return count > 0


def _decide(linear: list[_Obs], diff: _HTTPDiff) -> tuple[OoniRow | None, _Obs | None]:
    """Walk the classic observations; the first one matching a row decides."""
    for e in linear:
        if e.http_final:
            if e.tls_failure == "":
                return _ROWS["1.1"], e
            if e.ctrl_http_failure is None:
                return _ROWS["1.2"], e
            return (_ROWS["1.4"] if diff.differs() else _ROWS["1.3"]), e
        if not e.failure:
            if (
                e.type == _DNS
                and e.ctrl_dns_failure == ""
                and e.dns_addrs is not None
                and e.ctrl_dns_addrs is not None
                and _only_loopback(e.dns_addrs)
            ):
                return (_ROWS["7"] if _only_loopback(e.ctrl_dns_addrs) else _ROWS["6"]), e
            continue
        if e.type == _HTTP:
            if e.ctrl_http_failure is None:
                return _ROWS["2.1"], e
            return (_ROWS["2.2"] if e.ctrl_http_failure else _ROWS["2.3"]), e
        if e.type in (_TLS, _TCP):
            control = e.ctrl_tls_failure if e.type == _TLS else e.ctrl_tcp_failure
            prefix = "3" if e.type == _TLS else "4"
            if control is None:
                suffix = ".1.1" if e.ctrl_http_failure is None else ".1.2"
                return _ROWS[prefix + suffix], e
            return _ROWS[prefix + (".2" if control else ".3")], e
        if e.type == _DNS:
            if e.ctrl_dns_failure is None:
                return (_ROWS["5.1.1"] if e.ctrl_http_failure is None else _ROWS["5.1.2"]), e
            if e.ctrl_dns_failure:
                return _ROWS["5.2"], e
            if (
                e.failure == _DNS_NO_ANSWER
                and e.ctrl_dns_addrs is not None
                and not e.ctrl_dns_addrs
            ):
                return _ROWS["5.3"], e
            return _ROWS["5.4"], e
    return None, None


def _apply_row(row: OoniRow | None, inconsistent: bool) -> tuple[str | bool | None, bool | None]:
    if row is None:
        return None, None
    if row.setter is _Set.FALSE:
        return False, True
    if row.setter is _Set.NIL:
        return ("dns", False) if inconsistent else (None, None)
    if row.setter is _Set.STRING:
        return ("dns" if inconsistent else row.blocking), False
    return ("dns" if inconsistent else False), False


# --------------------------------------------------------------------------------------
# our verdict


@dataclass(frozen=True, slots=True)
class _DNSView:
    """Our reading of the system resolver's answers, CDN guard included."""

    inconsistent: bool
    rule_id: str | None  # the DNS rule when inconsistent
    failed_lookup: _Obs | None  # the unexpected failure, if that is the reason
    probe_addrs: tuple[str, ...]
    guarded: dict[str, str]  # address -> why it is valid despite the mismatch


def _validated_addresses(obs: WebObservations, host: str) -> dict[str, str]:
    """Addresses proven to serve ``host``: our CDN guard."""
    proofs: dict[str, str] = {}
    for h in obs.tls_handshakes:
        if h.failure is not None or h.no_tls_verify or h.server_name.lower() != host.lower():
            continue
        try:
            ip, _ = split_endpoint(h.address)
        except ValueError:
            continue
        proofs.setdefault(ip, f"a verified TLS handshake for {host}")
    if obs.control is not None:
        for ip, info in obs.control.ip_info.items():
            if info.flags & IP_FLAG_VALID_FOR_DOMAIN:
                proofs.setdefault(ip, f"the control's TLS handshake for {host}")
    return proofs


def _dns_view(m: _Metrics, proofs: dict[str, str]) -> _DNSView:
    probe_addrs: list[str] = []
    for entry in m.dns_success.values():
        probe_addrs.extend(a for a in sorted(entry.dns_addrs or ()) if a not in probe_addrs)
    if m.dns_unexpected_failure:
        entry = next(iter(m.dns_unexpected_failure.values()))
        rule = _DNS_RULE_BY_FAILURE.get(entry.dns_failure or "", "wc.dns.failure")
        return _DNSView(True, rule, entry, tuple(probe_addrs), {})
    guarded: dict[str, str] = {}
    invalid: list[_Obs] = []
    for entry in m.dns_invalid_classic.values():
        proven = {a: proofs[a] for a in entry.dns_addrs or () if a in proofs}
        if proven:
            guarded.update(proven)
        else:
            invalid.append(entry)
    ghost = False
    if m.expectations is not None and not m.expectations.dns_addrs:
        for entry in m.dns_success.values():
            proven = {a: proofs[a] for a in entry.dns_addrs or () if a in proofs}
            guarded.update(proven)
            ghost = ghost or not proven
    if invalid:
        addrs = [a for e in invalid for a in sorted(e.dns_addrs or ())]
        if _only_loopback(addrs):
            rule = "wc.dns.localhost"
        elif any(is_bogon(a) for a in addrs):
            rule = "wc.dns.bogon"
        else:
            rule = "wc.dns.inconsistent"
        return _DNSView(True, rule, None, tuple(probe_addrs), guarded)
    if ghost:
        return _DNSView(True, "wc.dns.ghost", None, tuple(probe_addrs), guarded)
    return _DNSView(False, None, None, tuple(probe_addrs), guarded)


def _fmt_addrs(addrs: Iterable[str], asn: Asn, limit: int = 4) -> str:
    listed = list(addrs)
    parts = []
    for addr in listed[:limit]:
        number = asn(addr)
        parts.append(f"{addr} (AS{number})" if number else addr)
    if len(listed) > limit:
        parts.append(f"{len(listed) - limit} more")
    return ", ".join(parts) if parts else "no address"


def _tls_like(failure: str) -> bool:
    return failure.startswith("ssl_")


def _comparison(diff: _HTTPDiff) -> str:
    words = []
    if diff.status_code_match is not None:
        words.append("same status code" if diff.status_code_match else "another status code")
    if diff.title_match is not None:
        words.append("same title" if diff.title_match else "another title")
    if diff.shared_headers is not None:
        site = sorted(diff.shared_headers - TRANSPORT_HEADERS)
        if site:
            words.append("shared headers " + ", ".join(site[:3]))
        else:
            words.append("no shared site-specific header")
    if diff.body_proportion is not None:
        words.append(f"body length ratio {diff.body_proportion:.2f}")
    return ", ".join(words) if words else "no control page to compare with"


def _probe_summary(c: _Container) -> str:
    if c.endpoints:
        last = _linear(c)[0]
        name = _TYPE_NAMES[last.type]
        where = last.endpoint_address or last.http_url or ""
        if last.failure:
            return f"the last step, {name} to {where}, failed ({last.failure})"
        return f"the last step, {name} to {where}, succeeded"
    if c.dns_failures:
        return f"resolving failed ({c.dns_failures[0].failure})"
    if c.dns_successes:
        return "the host resolved but no connection was attempted"
    return "the probe recorded nothing"


def _control_failure_of(entry: _Obs) -> str:
    """The control's failure for the same operation as ``entry``."""
    failure = {
        _DNS: entry.ctrl_dns_failure,
        _TCP: entry.ctrl_tcp_failure,
        _TLS: entry.ctrl_tls_failure,
        _HTTP: entry.ctrl_http_failure,
    }[entry.type]
    return failure or ("no address" if entry.type == _DNS else "no answer")


def _entry_facts(entry: _Obs, host: str) -> dict[str, object]:
    request_host = url_hostname(entry.http_url) if entry.http_url else host
    if entry.type == _HTTP or entry.depth > 0:
        evidence = "the control fetched the page"
    elif entry.type == _TCP:
        evidence = "the control connected"
    else:
        evidence = "the control's handshake succeeded"
    facts: dict[str, object] = {
        "failure": entry.failure or "",
        "address": entry.endpoint_address or entry.ip or request_host,
        "server_name": entry.tls_server_name or request_host,
        "control_evidence": evidence,
        "operation": {
            _DNS: f"resolving {entry.dns_domain}",
            _TCP: f"connecting to {entry.endpoint_address}",
            _TLS: f"the TLS handshake with {entry.endpoint_address}",
            _HTTP: f"fetching {entry.http_url}",
        }[entry.type],
    }
    if entry.http_url:
        facts["request_url"] = entry.http_url
    return facts


def _rule_for(
    row: OoniRow | None, entry: _Obs | None, dns: _DNSView, page_differs: bool, control: bool
) -> str:
    """Our rule for OONI's deciding row (see docs/classifier.md, "Our verdict")."""
    row_id = row.id if row is not None else None
    failure = entry.failure or "" if entry is not None else ""
    control_fetch_failed = entry is not None and bool(entry.ctrl_http_failure)
    if row_id == "1.1":
        return "wc.ok.https" if control else "wc.ok.https-no-control"
    if row_id in ("1.2", "2.1", "3.1.1", "4.1.1", "5.1.1"):
        return "wc.control.unavailable"
    if row_id in ("5.4", "5.1.2"):
        if row_id == "5.1.2" and control_fetch_failed:
            return "wc.down.redirect"
        return _DNS_RULE_BY_FAILURE.get(failure, "wc.dns.failure")
    if row_id == "6":
        return "wc.dns.localhost"
    if row_id == "1.3" and not page_differs:
        return "wc.ok"  # the page is the control's, whatever DNS said
    if dns.inconsistent and dns.rule_id is not None:
        return dns.rule_id  # OONI's "dns" override, with our CDN guard
    if row_id in ("1.3", "1.4"):
        return "wc.http.diff"
    if row_id in ("3.1.2", "4.1.2") and control_fetch_failed:
        return "wc.down.redirect"
    if row_id == "2.3" and _tls_like(failure):
        return _TLS_RULE_BY_FAILURE.get(failure, "wc.tls.failure")  # older probes
    by_row = {
        "2.2": "wc.down.http",
        "2.3": _HTTP_RULE_BY_FAILURE.get(failure, "wc.http.failure"),
        "3.1.2": _TLS_RULE_BY_FAILURE.get(failure, "wc.tls.failure"),
        "3.2": "wc.down.tls",
        "3.3": _TLS_RULE_BY_FAILURE.get(failure, "wc.tls.failure"),
        "4.1.2": _TCP_RULE_BY_FAILURE.get(failure, "wc.tcp.failure"),
        "4.2": "wc.down.tcp",
        "4.3": _TCP_RULE_BY_FAILURE.get(failure, "wc.tcp.failure"),
        "5.2": "wc.down.dns",
        "5.3": "wc.down.dns",
        "7": "wc.down.localhost",
    }
    if row_id in by_row:
        return by_row[row_id]
    return "wc.undetermined" if control else "wc.control.unavailable"


def _verdict(
    obs: WebObservations,
    row: OoniRow | None,
    entry: _Obs | None,
    classic: _Container,
    m: _Metrics,
    diff: _HTTPDiff,
    ooni_consistency: str | None,
    asn: Asn,
) -> Verdict:
    host = url_hostname(obs.input)
    dns = _dns_view(m, _validated_addresses(obs, host))
    control = obs.control
    control_dns = control.dns if control is not None and control.dns is not None else None
    control_failure = obs.control_failure or "no answer"
    if control is None and obs.control_failure is None:
        control_failure = "no control was asked"
    facts: dict[str, object] = {
        "url": obs.input,
        "host": host,
        "probe_addrs": _fmt_addrs(dns.probe_addrs, asn),
        "control_addrs": _fmt_addrs(control_dns.addrs, asn) if control_dns else "no address",
        "control_failure": control_failure,
        "probe_summary": _probe_summary(classic),
        "failure": "",
        "address": host,
        "server_name": host,
        "request_url": obs.input,
        "comparison": _comparison(diff),
        "control_evidence": "the control reached the site",
        "operation": "a step",
    }
    if entry is not None:
        facts.update(_entry_facts(entry, host))
        if row is not None and (row.setter is _Set.DOWN or row.id.endswith(".1.2")):
            use_http = row.id.endswith(".1.2") or entry.type == _HTTP
            facts["control_failure"] = (
                entry.ctrl_http_failure or "no answer" if use_http else _control_failure_of(entry)
            )
    notes = []
    if (
        dns.rule_id == "wc.dns.inconsistent"
        and row is not None
        and row.setter is _Set.DOWN
        and entry is not None
        and entry.ctrl_http_failure
    ):
        # The control failed too, on its own addresses: a mere mismatch explains nothing.
        notes.append(
            f"the answers {facts['probe_addrs']} differ from the control's, but the control"
            " could not fetch the page either, so the mismatch does not explain the failure"
        )
        dns = replace(dns, inconsistent=False)
    rule = RULES_BY_ID[_rule_for(row, entry, dns, diff.differs_for_us(), control is not None)]
    lookup = entry if row is not None and row.id in ("5.4", "5.1.2") else dns.failed_lookup
    if rule.id in _DNS_FAILURE_RULES and lookup is not None:
        facts["failure"] = lookup.failure or ""
        facts["host"] = lookup.dns_domain or host
        facts["control_evidence"] = (
            "the control fetched the page"
            if lookup.ctrl_dns_addrs is None
            else f"the control resolved it to {facts['control_addrs']}"
        )
    if rule.id == "wc.dns.ghost" and control_dns is not None:
        facts["control_failure"] = control_dns.failure or "no address"
    explanation = rule.template.format(**facts)
    if row is not None and row.id == "1.3" and rule.id != "wc.ok":
        shared = ", ".join(sorted(diff.shared_headers or ()))
        notes.append(f"OONI's header check matched only on {shared}, which any server sends")
    if dns.guarded and not dns.inconsistent and ooni_consistency == "inconsistent":
        proven = "; ".join(f"{ip} by {why}" for ip, why in sorted(dns.guarded.items()))
        notes.append(
            f"DNS answers differ from the control's, but {proven} proved them valid:"
            " a CDN, not DNS tampering"
        )
    if notes:
        explanation = f"{explanation[:-1]} ({'; '.join(notes)})."
    return Verdict(method=rule.method, rule_id=rule.id, explanation=explanation)


_DNS_FAILURE_RULES = frozenset(
    {"wc.dns.nxdomain", "wc.dns.no-answer", "wc.dns.timeout", "wc.dns.failure"}
)


# --------------------------------------------------------------------------------------
# entry point


def _asn_lookup(obs: WebObservations, asn_of: Callable[[str], int] | None) -> Asn:
    """``asn_of`` when given (0 = unknown), else the ASNs recorded in the observations."""
    recorded: dict[str, int] = {}
    for q in obs.queries:
        for answer in q.answers:
            if answer.address and answer.asn > 0:
                recorded.setdefault(answer.address, answer.asn)
    if obs.control is not None:
        for ip, info in obs.control.ip_info.items():
            if info.asn > 0:
                recorded.setdefault(ip, info.asn)

    def lookup(ip: str) -> int:
        if asn_of is not None:
            number = asn_of(ip)
            if number > 0:
                return number
        return recorded.get(ip, 0)

    return lookup


def analyze(
    obs: WebObservations, *, asn_of: Callable[[str], int] | None = None
) -> WebConnectivityAnalysis:
    """Classify one Web Connectivity measurement: OONI's keys plus our explained verdict.

    ``asn_of`` maps an IP address to its AS number (0 when unknown); without it
    the ASNs recorded in the DNS answers and in the control's ``ip_info`` are used.
    """
    asn = _asn_lookup(obs, asn_of)
    full = _ingest(obs)
    blocking_flags, dns_flags, null_null_flags = _ext_flags(_metrics(full, asn))
    classic = _classic(full)
    m = _metrics(classic, asn)
    consistency = _dns_consistency(m)
    diff = _HTTPDiff.of(m)
    row, entry = _decide(_linear(classic), diff)
    blocking, accessible = _apply_row(row, consistency == "inconsistent")
    http_failure = entry.failure if row is not None and row.sets_http_failure and entry else None
    return WebConnectivityAnalysis(
        blocking=blocking,
        accessible=accessible,
        dns_experiment_failure=m.dns_experiment_failure,
        dns_consistency=consistency,
        http_experiment_failure=http_failure or None,
        body_proportion=diff.body_proportion or 0.0,
        body_length_match=diff.body_length_match,
        headers_match=diff.headers_match,
        status_code_match=diff.status_code_match,
        title_match=diff.title_match,
        x_blocking_flags=blocking_flags,
        x_dns_flags=dns_flags,
        x_null_null_flags=null_null_flags,
        verdict=_verdict(obs, row, entry, classic, m, diff, consistency, asn),
    )
