"""OONI df-007 failure strings: the only vocabulary for "what went wrong on the network".

A failure is ``str | None`` on the wire: ``None`` means success. Every network
observation carries one. ``Failure`` lists the strings blockproof emits itself;
strings read from OONI data may be any other text (``unknown_failure: ...``
carries free text) and are kept as they are.

Which Python exception becomes which string is decided in one place,
``blockproof.netx.failures.classify``.
"""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    # generic
    GENERIC_TIMEOUT = "generic_timeout_error"
    EOF = "eof_error"
    INTERRUPTED = "interrupted"
    # connection (errno family)
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    CONNECTION_ABORTED = "connection_aborted"
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    NETWORK_DOWN = "network_down"
    TIMED_OUT = "timed_out"
    # DNS
    DNS_NXDOMAIN = "dns_nxdomain_error"
    DNS_NO_ANSWER = "dns_no_answer"
    DNS_REFUSED = "dns_refused_error"
    DNS_SERVFAIL = "dns_servfail_error"
    DNS_SERVER_MISBEHAVING = "dns_server_misbehaving"
    DNS_NON_RECOVERABLE = "dns_non_recoverable_failure"
    DNS_TEMPORARY = "dns_temporary_failure"
    DNS_BOGON = "dns_bogon_error"
    DNS_WRONG_QUERY_ID = "dns_reply_with_wrong_query_id"
    # TLS
    SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
    SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
    SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
    SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"
    # HTTP
    HTTP_INVALID_REDIRECT_LOCATION_HOST = "http_invalid_redirect_location_host"
    HTTP_TOO_MANY_REDIRECTS = "unknown_failure: stopped after too many redirects"


UNKNOWN_FAILURE_PREFIX = "unknown_failure: "


def unknown_failure(text: str) -> str:
    """The catch-all failure string, as OONI writes it."""
    return UNKNOWN_FAILURE_PREFIX + text


# The legacy (Twisted-era) names OONI's test helper uses in THResponse.
class ControlFailure(StrEnum):
    DNS_NAME_ERROR = "dns_name_error"
    DNS_SERVER_FAILURE = "dns_server_failure"
    DNS_LOOKUP_ERROR = "dns_lookup_error"
    # the URL's host resolved to a bogon (private, loopback, documentation range...),
    # which the control never dials (OONI's helper fails the same way, as unknown_error)
    DNS_BOGON = "dns_bogon_error"
    CONNECTION_REFUSED = "connection_refused_error"
    CONNECT_ERROR = "connect_error"
    GENERIC_TIMEOUT = "generic_timeout_error"
    UNKNOWN = "unknown_error"
