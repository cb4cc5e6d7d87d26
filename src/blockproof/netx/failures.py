"""Map Python exceptions to OONI df-007 failure strings, in one table.

Every network shell catches exceptions in exactly one place and calls
``classify(exc)``. The mapping is data (``_ERRNO``, ``_GAI``, ``_SSL_VERIFY``,
``_SSL_REASON``) read top to bottom by ``classify``; tests/unit/test_failures.py
walks the same table. ``operation`` lets the caller say which step failed so that
an ambiguous error (e.g. a timeout) is named the way OONI names it.

Order of checks: our own ``NetworkFailure`` (already a string) -> timeouts ->
DNS (dnspython, getaddrinfo) -> TLS verification -> TLS protocol -> EOF ->
errno -> anything else as ``unknown_failure: <text>`` with IP addresses scrubbed.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
import sys

import dns.exception
import dns.resolver
import h11

from blockproof.model.failure import Failure, unknown_failure


class NetworkFailure(Exception):
    """Raised inside the shells to carry a failure string already decided."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


_ERRNO: dict[int, Failure] = {
    errno.ECONNREFUSED: Failure.CONNECTION_REFUSED,
    errno.ECONNRESET: Failure.CONNECTION_RESET,
    errno.ECONNABORTED: Failure.CONNECTION_ABORTED,
    errno.EHOSTUNREACH: Failure.HOST_UNREACHABLE,
    errno.ENETUNREACH: Failure.NETWORK_UNREACHABLE,
    errno.ENETDOWN: Failure.NETWORK_DOWN,
    errno.ETIMEDOUT: Failure.TIMED_OUT,
    errno.EPIPE: Failure.CONNECTION_RESET,
}

# getaddrinfo error codes (socket.gaierror.errno).
_GAI: dict[int, Failure] = {
    socket.EAI_NONAME: Failure.DNS_NXDOMAIN,
    socket.EAI_AGAIN: Failure.DNS_TEMPORARY,
    socket.EAI_FAIL: Failure.DNS_NON_RECOVERABLE,
}
if hasattr(socket, "EAI_NODATA"):
    _GAI[socket.EAI_NODATA] = Failure.DNS_NO_ANSWER
if hasattr(socket, "EAI_ADDRFAMILY"):
    _GAI[socket.EAI_ADDRFAMILY] = Failure.DNS_NO_ANSWER
# Android's bionic numbers EAI_NODATA 7 and returns it for any failure of its DNS proxy;
# OONI reports it as android_dns_cache_no_data (netxlite/getaddrinfo_linux.go). glibc's
# and musl's codes are negative, so elsewhere 7 only comes from the lab's emulation of
# Android ([probe] getaddrinfo = "android"); on BSDs and macOS 7 keeps its own meaning.
ANDROID_EAI_NODATA = 7
ANDROID_DNS_CACHE_NO_DATA = "android_dns_cache_no_data"
if sys.platform == "android" or ANDROID_EAI_NODATA not in _GAI:
    _GAI[ANDROID_EAI_NODATA] = ANDROID_DNS_CACHE_NO_DATA  # type: ignore[assignment]

# ssl.SSLCertVerificationError.verify_code (OpenSSL X509_V_ERR_*).
_SSL_VERIFY: dict[int, Failure] = {
    2: Failure.SSL_UNKNOWN_AUTHORITY,  # unable to get issuer certificate
    9: Failure.SSL_INVALID_CERTIFICATE,  # certificate is not yet valid
    10: Failure.SSL_INVALID_CERTIFICATE,  # certificate has expired
    18: Failure.SSL_UNKNOWN_AUTHORITY,  # self-signed certificate
    19: Failure.SSL_UNKNOWN_AUTHORITY,  # self-signed certificate in chain
    20: Failure.SSL_UNKNOWN_AUTHORITY,  # unable to get local issuer certificate
    21: Failure.SSL_UNKNOWN_AUTHORITY,  # unable to verify the first certificate
    62: Failure.SSL_INVALID_HOSTNAME,  # hostname mismatch
    64: Failure.SSL_INVALID_HOSTNAME,  # IP address mismatch
}

# Substrings of other ssl.SSLError texts (OpenSSL reason strings).
_SSL_REASON: tuple[tuple[str, Failure], ...] = (
    ("UNEXPECTED_EOF", Failure.EOF),
    ("EOF occurred in violation of protocol", Failure.EOF),
    ("WRONG_VERSION_NUMBER", Failure.SSL_FAILED_HANDSHAKE),
    ("TLSV1_ALERT", Failure.SSL_FAILED_HANDSHAKE),
    ("SSLV3_ALERT", Failure.SSL_FAILED_HANDSHAKE),
    ("RECORD_LAYER_FAILURE", Failure.SSL_FAILED_HANDSHAKE),
    ("PACKET_LENGTH_TOO_LONG", Failure.SSL_FAILED_HANDSHAKE),
    ("UNSUPPORTED_PROTOCOL", Failure.SSL_FAILED_HANDSHAKE),
    ("NO_PROTOCOLS_AVAILABLE", Failure.SSL_FAILED_HANDSHAKE),
    ("HANDSHAKE_FAILURE", Failure.SSL_FAILED_HANDSHAKE),
)

_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_IPV6 = re.compile(r"\[?\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\b\]?")


def scrub(text: str) -> str:
    """Remove IP addresses from free text (OONI scrubs unknown_failure strings)."""
    return _IPV6.sub("[scrubbed]", _IPV4.sub("[scrubbed]", text))


MAX_UNEXPECTED_TEXT = 80
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def unexpected_failure(exc: BaseException) -> str:
    """The failure string for a bug or an exception no shell expected.

    ``unknown_failure: <ExceptionType>: <short message>``: the type says where to look,
    the message is cut at 80 characters, printable ASCII only and scrubbed of IP
    addresses, so that a peer's bytes quoted in an exception never reach a measurement.
    A shell catches ``Exception`` last, after the failures it knows, so that one URL's
    bug becomes that step's failure and never ends a batch.
    """
    text = scrub(_UNPRINTABLE.sub("?", str(exc)))[:MAX_UNEXPECTED_TEXT].strip()
    name = type(exc).__name__
    return unknown_failure(f"{name}: {text}" if text else name)


def classify(exc: BaseException) -> str:
    """The df-007 failure string for ``exc``."""
    if isinstance(exc, NetworkFailure):
        return exc.failure
    if isinstance(
        exc, TimeoutError | asyncio.TimeoutError | socket.timeout | dns.exception.Timeout
    ):
        return Failure.GENERIC_TIMEOUT
    if isinstance(exc, asyncio.CancelledError):
        return Failure.INTERRUPTED
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return Failure.DNS_NXDOMAIN
    if isinstance(exc, dns.resolver.NoAnswer):
        return Failure.DNS_NO_ANSWER
    if isinstance(exc, socket.gaierror):
        return _GAI.get(exc.errno or 0, Failure.DNS_SERVER_MISBEHAVING)
    if isinstance(exc, dns.exception.FormError | dns.exception.SyntaxError):
        return Failure.DNS_SERVER_MISBEHAVING
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _SSL_VERIFY.get(exc.verify_code or 0, Failure.SSL_INVALID_CERTIFICATE)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | EOFError):
        return Failure.EOF
    if isinstance(exc, asyncio.IncompleteReadError):
        return Failure.EOF
    if isinstance(exc, ssl.SSLError):
        text = str(exc)
        for needle, failure in _SSL_REASON:
            if needle in text:
                return failure
        return Failure.SSL_FAILED_HANDSHAKE
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return Failure.CONNECTION_RESET
    if isinstance(exc, ConnectionRefusedError):
        return Failure.CONNECTION_REFUSED
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    if isinstance(exc, h11.RemoteProtocolError):
        return unknown_failure(scrub(f"http protocol error: {exc}"))
    text = str(exc) or type(exc).__name__
    return unknown_failure(scrub(text))
