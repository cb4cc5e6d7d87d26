"""Metrics: OONI's analysis of the observations, and the flags it derives from them.

Lookups are valid when their addresses share an IP or an ASN with the control's
(a completed TLS handshake validates its lookup too); failures are expected (the
control failed too), unexpected (only the probe failed) or unexplained (no
control data: after a redirect, a failure is "unexplained" unless the control
fetched the page). The final response (2xx/4xx/5xx) is compared with the
control's page: body length proportion > 0.7, status code, uncommon header
names, title words (``HTTPDiff``).

From the metrics of all observations come OONI's extended flags
(``x_blocking_flags``, ``x_dns_flags``, ``x_null_null_flags``); from those of the
classic subset, ``dns_consistency`` and the v0.4 comparison keys. The constants
follow OONI's minipipeline/httpdiff.go, measurexlite/web.go and utils.go.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from blockproof.core.webconnectivity.observations import (
    DNS_NO_ANSWER,
    Expectations,
    Observation,
    ObservationSet,
)
from blockproof.model.verdict import BlockingFlags, DNSFlags, NullNullFlags
from blockproof.model.web import WebObservations

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


_IPV6_MISCONFIGURED = frozenset({"network_unreachable", "host_unreachable"})


@dataclass(slots=True)
class Metrics:
    """OONI's per-measurement analysis: which lookups and operations failed how, and
    how the final response compares with the control's page (keys: ``dns_key`` for
    lookups, the endpoint key for endpoints)."""

    expectations: Expectations | None
    dns_success: dict[Hashable, Observation] = field(default_factory=dict)
    dns_bogon: set[Hashable] = field(default_factory=set)
    dns_valid: set[Hashable] = field(default_factory=set)
    dns_invalid: set[Hashable] = field(default_factory=set)
    dns_valid_classic: set[Hashable] = field(default_factory=set)
    dns_invalid_classic: dict[Hashable, Observation] = field(default_factory=dict)
    dns_unexpected_failure: dict[Hashable, Observation] = field(default_factory=dict)
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
    final: Observation | None = None
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


def _first_per_lookup(entries: Iterable[Observation]) -> Iterable[Observation]:
    seen: set[Hashable] = set()
    for entry in entries:
        if entry.dns_key in seen:
            continue
        seen.add(entry.dns_key)
        yield entry


def _is_ipv6(address: str | None) -> bool:
    # only an IPv6 address has a colon: the others need no parsing
    return address is not None and ":" in address and _parses_as_ipv6(address)


@lru_cache(maxsize=1 << 14)  # addresses repeat across measurements
def _parses_as_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def compute_metrics(c: ObservationSet, asn: Asn) -> Metrics:
    """OONI's analysis of ``c`` (all observations, or the classic subset)."""
    m = Metrics(expectations=c.expectations)
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
        if entry.dns_query_type == "AAAA" and failure == DNS_NO_ANSWER:
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
                failure == DNS_NO_ANSWER
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


def _endpoint_metrics(m: Metrics, key: Hashable, e: Observation) -> None:
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


def _final_response(m: Metrics, e: Observation) -> None:
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


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _long_words(title: str) -> set[str]:
    return {w.lower() for w in title.split(" ") if _utf8_len(w) >= MIN_TITLE_WORD_BYTES}


def _title_difference(measured: str, control: str) -> frozenset[str]:
    return frozenset(_long_words(measured) ^ _long_words(control))


@dataclass(frozen=True, slots=True)
class HTTPDiff:
    """The final response against the control's page, as OONI's v0.4 keys state it."""

    body_proportion: float | None
    body_length_match: bool | None
    headers_match: bool | None
    status_code_match: bool | None
    title_match: bool | None
    shared_headers: frozenset[str] | None

    @staticmethod
    def of(m: Metrics) -> HTTPDiff:
        proportion = m.body_proportion
        return HTTPDiff(
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


def extended_flags(m: Metrics) -> tuple[int, int, int]:
    """``x_blocking_flags``, ``x_dns_flags`` and ``x_null_null_flags``, as ints."""
    # plain ints: ``|`` on IntFlag members would make a new member every time
    blocking = dns = null_null = 0
    if m.dns_bogon:
        dns |= DNSFlags.BOGON.value  # not blocking per se: a site may be misconfigured
    if m.dns_unexpected_failure:
        blocking |= BlockingFlags.DNS.value
        dns |= DNSFlags.UNEXPECTED_FAILURE.value
    if m.dns_invalid:
        blocking |= BlockingFlags.DNS.value
        dns |= DNSFlags.UNEXPECTED_ADDRS.value
    if m.tcp_unexpected_failure:
        blocking |= BlockingFlags.TCP_IP.value
    if m.tls_unexpected_failure:
        blocking |= BlockingFlags.TLS.value
    if m.http_unexpected_failure:
        blocking |= BlockingFlags.HTTP.value
    if m.final is None:
        expect = m.expectations
        if expect is not None and expect.final_failure == "":
            if m.dns_unexplained_failure:
                blocking |= BlockingFlags.DNS.value
            if m.tcp_unexplained_failure:
                blocking |= BlockingFlags.TCP_IP.value
            if m.tls_unexplained_failure:
                blocking |= BlockingFlags.TLS.value
            if m.http_unexplained_failure:
                blocking |= BlockingFlags.HTTP.value
    elif not m.final_with_control:
        if m.final_over_tls:
            null_null |= NullNullFlags.SUCCESSFUL_HTTPS.value
            blocking |= BlockingFlags.SUCCESS.value
    elif m.final_over_tls:
        blocking |= BlockingFlags.SUCCESS.value
    elif HTTPDiff.of(m).differs():
        blocking |= BlockingFlags.HTTP_DIFF.value
    else:
        blocking |= BlockingFlags.SUCCESS.value
    if m.dns_expected_failure:
        null_null |= NullNullFlags.EXPECTED_DNS_FAILURE.value
    if m.tcp_expected_failure:
        null_null |= NullNullFlags.EXPECTED_TCP_FAILURE.value
    if m.tls_expected_failure:
        null_null |= NullNullFlags.EXPECTED_TLS_FAILURE.value
    if m.expectations is not None and not m.expectations.dns_addrs and m.dns_success:
        null_null |= NullNullFlags.UNEXPECTED_DNS_SUCCESS.value
    return blocking, dns, null_null


def dns_consistency(m: Metrics) -> str | None:
    """OONI's ``dns_consistency``: ``"consistent"``, ``"inconsistent"`` or None."""
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


def asn_lookup(obs: WebObservations, asn_of: Callable[[str], int] | None) -> Asn:
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
