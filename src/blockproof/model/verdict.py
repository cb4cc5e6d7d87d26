"""The outcome of Web Connectivity analysis: OONI's keys plus our explained verdict.

``WebConnectivityAnalysis`` carries exactly the keys OONI's Web Connectivity 0.5
writes into ``test_keys`` (``blocking``, ``accessible``, ``dns_consistency``,
flags...) plus ``verdict``, written as ``x_verdict``: the method, the id of
the rule that fired and a one-sentence explanation a reader can follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag, StrEnum

# What a verdict counts a measurement as. Ours: "down" is a site that failed for the
# control too (no evidence either way), "failure" a measurement that cannot tell.
OUTCOMES = ("ok", "anomaly", "confirmed", "down", "failure")
# What OONI's fastpath, Explorer and MAT count (a site down for everyone is "ok").
OONI_OUTCOMES = ("ok", "anomaly", "confirmed", "failure")
# Outcomes that say nothing about blocking: cells and the detector leave them out.
ABSTAINING = frozenset({"down", "failure"})


class Method(StrEnum):
    """How a site is blocked, in our vocabulary (finer than OONI's ``blocking``)."""

    NONE = "none"  # accessible
    DNS = "dns"
    TCP_IP = "tcp_ip"
    TLS = "tls"  # OONI folds this into "http-failure"
    HTTP = "http"  # HTTP round trip failed (reset on Host, timeout...)
    HTTP_DIFF = "http-diff"  # a different page (blockpage)
    THROTTLING = "throttling"  # loads, but slowed down by name (x_throttling)
    DOWN = "down"  # site down everywhere (control fails too): not censorship
    UNDETERMINED = "undetermined"


class BlockingFlags(IntFlag):
    """``x_blocking_flags`` (Web Connectivity LTE)."""

    DNS = 1
    TCP_IP = 2
    TLS = 4
    HTTP = 8
    HTTP_DIFF = 16
    SUCCESS = 32


class DNSFlags(IntFlag):
    """``x_dns_flags``."""

    BOGON = 1
    UNEXPECTED_FAILURE = 2
    UNEXPECTED_ADDRS = 4


class NullNullFlags(IntFlag):
    """``x_null_null_flags``."""

    EXPECTED_DNS_FAILURE = 1
    EXPECTED_TCP_FAILURE = 2
    EXPECTED_TLS_FAILURE = 4
    SUCCESSFUL_HTTPS = 8
    UNEXPECTED_DNS_SUCCESS = 16


# OONI's ``blocking`` values: False, None, or one of these strings.
BLOCKING_DNS = "dns"
BLOCKING_TCP_IP = "tcp_ip"
BLOCKING_HTTP_FAILURE = "http-failure"
BLOCKING_HTTP_DIFF = "http-diff"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    method: Method
    rule_id: str
    explanation: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConnectivityAnalysis:
    blocking: str | bool | None
    accessible: bool | None
    dns_experiment_failure: str | None = None
    dns_consistency: str | None = None
    http_experiment_failure: str | None = None
    body_proportion: float = 0.0
    body_length_match: bool | None = None
    headers_match: bool | None = None
    status_code_match: bool | None = None
    title_match: bool | None = None
    x_blocking_flags: int = 0
    x_dns_flags: int = 0
    x_null_null_flags: int = 0
    verdict: Verdict | None = None
