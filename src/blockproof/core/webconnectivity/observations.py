"""Observations: a measurement's records as OONI's "web observations", with the control's view.

1. Every DNS lookup becomes one observation per resolved address (or one per
   failed lookup); every TCP connect becomes an endpoint observation, which the
   TLS handshake and the HTTP round trip with the same ``transaction_id``
   extend. An observation's type is the last operation it reached
   (DNS < TCP < TLS < HTTP) and its failure is that operation's (``""`` is a
   success, ``None`` unknown).
2. Each observation is cross-referenced with the control's answer for the same
   domain (DNS), ``ip:port`` (TCP), ``ip:port`` + SNI (TLS), and with the
   control's fetch of the final page (HTTP, for every observation). Only depth 0
   (before any redirect) has per-operation control data.

``classic_subset`` keeps what Web Connectivity 0.4 measured (OONI's
ClassicFilter): system-resolver lookups, and endpoints that may fetch the page
and whose address did not come only from another resolver or from the control.

Older data (OONI probes before 0.5, with no tags and no transaction ids) is read
as classic, depth 0: its HTTP requests stand alone (not tied to a TCP connect),
redirect chains giving their depth; an https request that got a response implies
a successful TLS handshake.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from blockproof.core.bogons import is_bogon
from blockproof.core.http import extract_title
from blockproof.core.idn import IDNAError, host_to_ascii
from blockproof.model.control import ControlDNS, ControlHTTPRequest, ControlResponse
from blockproof.model.observations import DNSQuery, HTTPTransaction, join_endpoint
from blockproof.model.web import WebObservations

# System-resolver engines: OONI's (getaddrinfo, golang_net_resolver), plus what older
# probes wrote for the same resolver ("system", or no engine at all).
SYSTEM_RESOLVER_ENGINES = frozenset({"getaddrinfo", "golang_net_resolver", "system", ""})

DNS_NO_ANSWER = "dns_no_answer"


# An observation's type: the last operation it reached, in this order.
DNS, TCP, TLS, HTTP = 0, 1, 2, 3
TYPE_NAMES = {DNS: "DNS", TCP: "TCP", TLS: "TLS", HTTP: "HTTP"}


@dataclass(slots=True, kw_only=True)
class Observation:
    """One web observation: a lookup's address, or an endpoint as far as it got.

    ``type`` is the last operation reached (``DNS`` < ``TCP`` < ``TLS`` < ``HTTP``)
    and ``failure`` that operation's; the ``ctrl_*`` fields are the control's view
    of the same operations, filled by ``ingest`` when there is a control.
    """

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

    def copy_dns_from(self, other: Observation) -> None:
        self.dns_key = other.dns_key
        self.dns_domain = other.dns_domain
        self.dns_failure = other.dns_failure
        self.dns_addrs = other.dns_addrs
        self.dns_classic = other.dns_classic
        self.ip_origin = other.ip_origin


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the control found: the domain's addresses, and whether it fetched the page."""

    dns_addrs: frozenset[str]
    final_failure: str  # "" when the control fetched the page


@dataclass(slots=True)
class ObservationSet:
    """A measurement's observations: failed lookups, resolved addresses, endpoints."""

    dns_failures: list[Observation] = field(default_factory=list)
    dns_successes: list[Observation] = field(default_factory=list)
    endpoints: dict[Hashable, Observation] = field(default_factory=dict)
    known_ips: dict[str, Observation] = field(default_factory=dict)
    expectations: Expectations | None = None


def _tag_value(tags: Iterable[str], prefix: str) -> str | None:
    value = None
    for tag in tags:
        if tag.startswith(prefix):
            value = tag[len(prefix) :]
    return value


# Tags come from a handful of combinations: their readings are remembered.
@lru_cache(maxsize=1024)
def _depth(tags: tuple[str, ...]) -> int:
    """The ``depth=N`` tag; records without one (older probes) are depth 0."""
    value = _tag_value(tags, "depth=")
    if value is not None:
        try:
            return int(value)
        except ValueError:
            pass
    return 0


@lru_cache(maxsize=1024)
def _fetch_body(tags: tuple[str, ...]) -> bool:
    """The ``fetch_body=`` tag; records without one (older probes) may fetch."""
    value = _tag_value(tags, "fetch_body=")
    return True if value is None else value == "true"


def _f(failure: str | None) -> str:
    return failure or ""


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


@lru_cache(maxsize=1 << 14)  # names repeat across measurements
def _domain_key(name: str) -> str:
    """A domain name for comparison: lowercase, internationalized names in ASCII form."""
    try:
        return host_to_ascii(name)
    except IDNAError:
        return name.lower()


def _response_is_final(code: int) -> bool:
    return code // 100 in (2, 4, 5)


def _lookup_obs(
    q: DNSQuery,
    key: Hashable,
    failure: str,
    addrs: frozenset[str] | None = None,
    ip: str | None = None,
) -> Observation:
    """The observation of a failed lookup, or (``ip`` given) of one resolved address."""
    return Observation(
        type=DNS,
        failure=failure,
        txid=q.transaction_id,
        depth=_depth(q.tags),
        dns_key=key,
        dns_domain=q.hostname,
        dns_failure=failure,
        dns_query_type=q.query_type,
        dns_engine=q.engine,
        dns_addrs=addrs,
        dns_classic="classic" in q.tags or q.engine in SYSTEM_RESOLVER_ENGINES,
        ip_origin=None if ip is None else "dns",
        ip=ip,
        ip_bogon=None if ip is None else is_bogon(ip),
    )


def ingest(obs: WebObservations) -> ObservationSet:
    c = ObservationSet()
    # DNS lookups: one observation per failed lookup, one per resolved address
    for index, q in enumerate(obs.queries):
        key: Hashable = ("tx", q.transaction_id) if q.transaction_id else ("query", index)
        if q.failure is not None:
            c.dns_failures.append(_lookup_obs(q, key, q.failure))
            continue
        addrs = frozenset(
            [a.address for a in q.answers if a.answer_type in ("A", "AAAA") and a.address]
        )
        for ip in sorted(addrs):
            entry = _lookup_obs(q, key, "", addrs, ip)
            c.dns_successes.append(entry)
            c.known_ips.setdefault(ip, entry)
    # TCP connects: one endpoint each
    for index, t in enumerate(obs.tcp_connect):
        key = ("tx", t.transaction_id) if t.transaction_id else ("tcp", index)
        entry = Observation(
            type=TCP,
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
        target: Observation | None
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
        target.type = TLS
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
            target = Observation(
                type=HTTP,
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


def _extend_with_http(target: Observation, tx: HTTPTransaction) -> None:
    target.type = HTTP
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


def _ingest_control(c: ObservationSet, domain: str, control: ControlResponse) -> None:
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
    c.expectations = Expectations(dns_addrs=dns_addrs, final_failure=_f(http.failure))
    header_keys = frozenset(http.headers)
    for entry in (*c.dns_failures, *c.dns_successes, *c.endpoints.values()):
        entry.ctrl_http_failure = _f(http.failure)
        if http.failure is not None:
            continue
        entry.ctrl_http_status = http.status_code
        entry.ctrl_http_body_length = http.body_length
        entry.ctrl_http_header_keys = header_keys
        entry.ctrl_http_title = http.title


def classic_subset(c: ObservationSet) -> ObservationSet:
    """OONI's ClassicFilter: the system resolver's view, as Web Connectivity 0.4 measured."""
    out = ObservationSet(expectations=c.expectations)
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


def keeps_everything(subset: ObservationSet, c: ObservationSet) -> bool:
    """Whether ``subset``, a filter of ``c`` (``classic_subset``), kept every observation."""
    return (
        len(subset.dns_failures) == len(c.dns_failures)
        and len(subset.dns_successes) == len(c.dns_successes)
        and len(subset.endpoints) == len(c.endpoints)
        and subset.expectations is c.expectations
    )
