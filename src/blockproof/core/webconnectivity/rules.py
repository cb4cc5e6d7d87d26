"""The classifier's two tables: OONI's decision rows, and the rules of our verdict.

``OONI_ROWS`` is OONI's classic decision table (analysisclassic.go): each row
says what it does to ``blocking``/``accessible`` (its ``Setter``) and whether it
copies the deciding failure into ``http_experiment_failure``. ``RULES`` are our
verdict's rules, as data: a stable id, a method, and a one-sentence template
filled with the concrete failure and addresses. docs/classifier.md lists both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from blockproof.model.verdict import (
    BLOCKING_DNS,
    BLOCKING_HTTP_DIFF,
    BLOCKING_HTTP_FAILURE,
    BLOCKING_TCP_IP,
    Method,
)


class Setter(Enum):
    """What a decision row does to ``blocking``/``accessible`` (OONI's setters)."""

    FALSE = "false/true"  # setBlockingFalse
    NIL = "null/null"  # setBlockingNil ("dns"/false if DNS inconsistent)
    STRING = "string/false"  # setBlockingString ("dns" if DNS inconsistent)
    DOWN = "false/false"  # setWebsiteDown ("dns"/false if DNS inconsistent)


@dataclass(frozen=True, slots=True)
class OoniRow:
    """One row of OONI's classic decision table (analysisclassic.go)."""

    id: str
    setter: Setter
    blocking: str | None  # the string for STRING rows
    sets_http_failure: bool  # copies the deciding failure into http_experiment_failure
    when: str


OONI_ROWS: tuple[OoniRow, ...] = (
    OoniRow("1.1", Setter.FALSE, None, False, "final response over TLS"),
    OoniRow("1.2", Setter.NIL, None, False, "final response, no control"),
    OoniRow("1.3", Setter.FALSE, None, False, "final cleartext response like the control's"),
    OoniRow("1.4", Setter.STRING, BLOCKING_HTTP_DIFF, False, "final cleartext response differs"),
    OoniRow("2.1", Setter.NIL, None, True, "HTTP failed, no control"),
    OoniRow("2.2", Setter.DOWN, None, True, "HTTP failed, control's fetch failed too"),
    OoniRow("2.3", Setter.STRING, BLOCKING_HTTP_FAILURE, True, "HTTP failed, control fetched"),
    OoniRow("3.1.1", Setter.NIL, None, True, "TLS failed, no control at all"),
    OoniRow("3.1.2", Setter.STRING, BLOCKING_HTTP_FAILURE, True, "TLS failed after a redirect"),
    OoniRow("3.2", Setter.DOWN, None, True, "TLS failed, control's handshake failed too"),
    OoniRow("3.3", Setter.STRING, BLOCKING_HTTP_FAILURE, True, "TLS failed, control's succeeded"),
    OoniRow("4.1.1", Setter.NIL, None, True, "TCP failed, no control at all"),
    OoniRow("4.1.2", Setter.STRING, BLOCKING_HTTP_FAILURE, True, "TCP failed after a redirect"),
    OoniRow("4.2", Setter.DOWN, None, True, "TCP failed, control's connect failed too"),
    OoniRow("4.3", Setter.STRING, BLOCKING_TCP_IP, True, "TCP failed, control connected"),
    OoniRow("5.1.1", Setter.FALSE, None, True, "DNS failed, no control at all"),
    OoniRow("5.1.2", Setter.STRING, BLOCKING_DNS, True, "DNS failed after a redirect"),
    OoniRow("5.2", Setter.DOWN, None, True, "DNS failed, control's lookup failed too"),
    OoniRow("5.3", Setter.DOWN, None, False, "dns_no_answer, control found no address"),
    OoniRow("5.4", Setter.STRING, BLOCKING_DNS, True, "DNS failed, control resolved"),
    OoniRow("6", Setter.STRING, BLOCKING_DNS, False, "only loopback addresses, control real ones"),
    OoniRow("7", Setter.DOWN, None, False, "only loopback addresses, control too"),
)
ROWS_BY_ID = {row.id: row for row in OONI_ROWS}


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

# Our rule for a failure of each operation (the generic ``wc.<op>.failure`` otherwise).
DNS_RULE_BY_FAILURE = {
    "dns_nxdomain_error": "wc.dns.nxdomain",
    "dns_no_answer": "wc.dns.no-answer",
    "generic_timeout_error": "wc.dns.timeout",
}
TCP_RULE_BY_FAILURE = {
    "generic_timeout_error": "wc.tcp.timeout",
    "connection_refused": "wc.tcp.refused",
}
TLS_RULE_BY_FAILURE = {
    "connection_reset": "wc.tls.reset",
    "eof_error": "wc.tls.eof",
    "generic_timeout_error": "wc.tls.timeout",
    "ssl_unknown_authority": "wc.tls.mitm",
    "ssl_invalid_hostname": "wc.tls.invalid-hostname",
    "ssl_invalid_certificate": "wc.tls.invalid-certificate",
}
HTTP_RULE_BY_FAILURE = {
    "connection_reset": "wc.http.reset",
    "eof_error": "wc.http.eof",
    "generic_timeout_error": "wc.http.timeout",
}

# The DNS rules whose explanation names the failed lookup.
DNS_FAILURE_RULES = frozenset(
    {"wc.dns.nxdomain", "wc.dns.no-answer", "wc.dns.timeout", "wc.dns.failure"}
)
