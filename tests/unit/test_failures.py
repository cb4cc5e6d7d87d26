"""The exception -> OONI failure-string table (no sockets)."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import dns.exception
import dns.resolver
import h11
import pytest

from blockproof.netx.failures import NetworkFailure, classify, scrub


def _verify_error(code: int) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    return exc


CASES: list[tuple[str, BaseException, str]] = [
    ("already decided", NetworkFailure("dns_bogon_error"), "dns_bogon_error"),
    ("builtin timeout", TimeoutError(), "generic_timeout_error"),
    ("socket timeout", TimeoutError("timed out"), "generic_timeout_error"),
    ("dnspython timeout", dns.exception.Timeout(), "generic_timeout_error"),
    ("cancelled", asyncio.CancelledError(), "interrupted"),
    ("dnspython nxdomain", dns.resolver.NXDOMAIN(), "dns_nxdomain_error"),
    ("dnspython no answer", dns.resolver.NoAnswer(), "dns_no_answer"),
    (
        "gai noname",
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        "dns_nxdomain_error",
    ),
    ("gai again", socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), "dns_temporary_failure"),
    (
        "gai fail",
        socket.gaierror(socket.EAI_FAIL, "Non-recoverable"),
        "dns_non_recoverable_failure",
    ),
    (
        "gai nodata",
        socket.gaierror(getattr(socket, "EAI_NODATA", -5), "No address"),
        "dns_no_answer",
    ),
    ("gai other", socket.gaierror(socket.EAI_SERVICE, "servname"), "dns_server_misbehaving"),
    ("cert hostname", _verify_error(62), "ssl_invalid_hostname"),
    ("cert ip mismatch", _verify_error(64), "ssl_invalid_hostname"),
    ("cert unknown ca", _verify_error(20), "ssl_unknown_authority"),
    ("cert self signed", _verify_error(18), "ssl_unknown_authority"),
    ("cert expired", _verify_error(10), "ssl_invalid_certificate"),
    ("cert other", _verify_error(999), "ssl_invalid_certificate"),
    ("ssl eof", ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "eof_error"),
    (
        "ssl zero return",
        ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"),
        "eof_error",
    ),
    ("plain eof", EOFError(), "eof_error"),
    ("incomplete read", asyncio.IncompleteReadError(b"", 2), "eof_error"),
    (
        "ssl alert",
        ssl.SSLError(1, "[SSL: TLSV1_ALERT_INTERNAL_ERROR] alert"),
        "ssl_failed_handshake",
    ),
    (
        "ssl wrong version",
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong"),
        "ssl_failed_handshake",
    ),
    ("ssl unexpected eof", ssl.SSLError(1, "[SSL: UNEXPECTED_EOF_WHILE_READING]"), "eof_error"),
    ("ssl other", ssl.SSLError(1, "something"), "ssl_failed_handshake"),
    ("reset", ConnectionResetError(errno.ECONNRESET, "reset"), "connection_reset"),
    ("broken pipe", BrokenPipeError(errno.EPIPE, "pipe"), "connection_reset"),
    ("refused", ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection_refused"),
    ("aborted", OSError(errno.ECONNABORTED, "aborted"), "connection_aborted"),
    ("host unreachable", OSError(errno.EHOSTUNREACH, "no route"), "host_unreachable"),
    ("net unreachable", OSError(errno.ENETUNREACH, "unreachable"), "network_unreachable"),
    ("net down", OSError(errno.ENETDOWN, "down"), "network_down"),
    ("errno timeout", OSError(errno.ETIMEDOUT, "timed out"), "generic_timeout_error"),
    (
        "h11",
        h11.RemoteProtocolError("illegal status line"),
        "unknown_failure: http protocol error: illegal status line",
    ),
    (
        "other, scrubbed",
        ValueError("cannot reach 10.1.2.3 now"),
        "unknown_failure: cannot reach [scrubbed] now",
    ),
    ("other, no text", KeyError(), "unknown_failure: KeyError"),
]


@pytest.mark.parametrize(("exc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dial tcp 104.244.42.1:443: refused", "dial tcp [scrubbed]:443: refused"),
        ("no address here", "no address here"),
        ("v6 [2001:db8::1]:443 failed", "v6 [scrubbed]:443 failed"),
    ],
)
def test_scrub_removes_addresses(text: str, expected: str) -> None:
    assert scrub(text) == expected
