"""Hostile servers: sites and a resolver that misbehave on purpose.

Theory of operation
-------------------
On a network the adversary controls, the far end of a connection need not be an
honest server: a middlebox can answer in its place, and a site can be hostile
itself. The probe must then still finish every step within its budget, record the
failure OONI would record, and keep its memory bounded. This module is the
misbehaviour; ``tests/integration/test_hostile_lab.py`` is the proof.

* **Sites.** ``[[host]] hostile = "<behaviour>"`` replaces the host's listeners.
  HTTP behaviours (``HTTP_BEHAVIOURS``) answer on :80 and, inside a TLS session with
  the host's valid certificate, on :443; they read the request first, as a real
  server would, then misbehave. TLS behaviours (``TLS_BEHAVIOURS``) own :443 as
  raw TCP: they read the ClientHello and answer with bytes that are no ServerHello
  (:80 keeps serving the ordinary site). TCP behaviours (``TCP_BEHAVIOURS``) reset
  connections on both ports.
* **Resolver.** ``[[resolver]] hostile = "<behaviour>"`` makes the public resolver
  (``dns.google``, 8.8.8.8) misbehave for the names in its ``match``, on UDP :53,
  TCP :53 and DNS over HTTPS alike (``dns_replies``: pure, query wire in, reply
  wires out). The system resolver (``getaddrinfo``) and the control's resolver
  are not affected.

Every server sends precomputed bytes or small chunks and waits for its socket to
drain, so its own memory stays flat whatever the probe does. Nothing here sleeps
longer than ``DRIP_INTERVAL`` at a time nor serves one connection longer than
``MAX_SERVE_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import dns.exception
import dns.message
import dns.name

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]

# name -> what the server does (the table of docs/lab.md, and the scenario checker's list)
HTTP_BEHAVIOURS: dict[str, str] = {
    "endless_body": "200 without Content-Length, then a body that never ends",
    "endless_chunked": "200 with chunked encoding, then 16 KiB chunks forever",
    "slow_response": "a valid response, one byte per second",
    "huge_header": "a status line, then one header line of 1 MiB",
    "endless_headers": "a status line, then header lines forever",
    "bad_chunked": "chunked encoding with an invalid chunk-size line",
    "endless_1xx": "'100 Continue' responses forever, never the final one",
    "short_body": "Content-Length: 1000000, 1000 bytes, then FIN",
    "not_http": "4 KiB of binary garbage instead of a status line",
}
TLS_BEHAVIOURS: dict[str, str] = {
    "tls_garbage": "4 KiB of garbage instead of a ServerHello, then silence",
    "tls_huge_record": "a TLS record header announcing 65,535 bytes (over the 16 KiB limit)",
    "tls_slow": "a ServerHello's first bytes, one byte per second",
}
TCP_BEHAVIOURS: dict[str, str] = {
    "reset": "TCP RST on every connection, as soon as it is accepted",
    "reset_mid_body": "headers and 20 KB of a 100 KB body, then TCP RST",
}
HOST_BEHAVIOURS: dict[str, str] = {**HTTP_BEHAVIOURS, **TLS_BEHAVIOURS, **TCP_BEHAVIOURS}
DNS_BEHAVIOURS: dict[str, str] = {
    "compression_loop": "the answer's owner name is a compression pointer to itself",
    "truncated": "TC set and the reply cut in the middle of its last record",
    "wrong_id": "a correct answer under another query id",
    "wrong_question": "a correct-looking answer to another question",
    "many_records": "ANCOUNT 10,000: as many A records as fit in 65,507 bytes (UDP) or "
    "65,535 bytes (TCP); all 10,000 (160 KB) over DoH",
    "max_records": "a valid reply as large as UDP allows: about 4,090 A records",
    "reply_flood": "1,000 replies with wrong ids to every query (UDP); one over TCP and DoH",
}

DRIP_INTERVAL = 1.0  # seconds between two bytes of a slow server
MAX_SERVE_S = 300.0  # a hostile connection is dropped after this long, whatever happens
REQUEST_TIMEOUT = 30.0  # how long a hostile site waits for the request
CHUNK = 16384
HUGE_HEADER_BYTES = 1 << 20
MANY_RECORDS = 10_000
UDP_MAX_PAYLOAD = 65_507  # 65,535 - 20 (IPv4 header) - 8 (UDP header)
TCP_MAX_MESSAGE = 65_535  # the two-byte length prefix
FLOOD_REPLIES = 1000
DNS_TTL = 300

_FILLER = (b"<p>hostile lab filler: the body never ends</p>\n" * (CHUNK // 48 + 1))[:CHUNK]
_GARBAGE = b"\xde\xad" + hashlib.shake_256(b"blockproof hostile garbage").digest(4094)


def site_listener(behaviour: str, scheme: str) -> tuple[Handler, bool] | None:
    """The handler for a hostile site's ``scheme`` listener and whether a TLS session
    (with the site's certificate) comes first; None: the ordinary site serves."""
    if behaviour in HTTP_BEHAVIOURS:
        return _guarded(_HTTP[behaviour]), scheme == "https"
    if behaviour in TLS_BEHAVIOURS:
        return (_guarded(_TLS[behaviour]), False) if scheme == "https" else None
    if behaviour in TCP_BEHAVIOURS:
        return _guarded(_TCP[behaviour]), scheme == "https" and behaviour != "reset"
    raise ValueError(f"unknown hostile behaviour {behaviour!r}")


def _guarded(handler: Handler) -> Handler:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(MAX_SERVE_S):
                await handler(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return run


# --- HTTP ------------------------------------------------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> None:
    async with asyncio.timeout(REQUEST_TIMEOUT):
        await reader.readuntil(b"\r\n\r\n")


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    for i in range(0, len(data), CHUNK):
        writer.write(data[i : i + CHUNK])
        await writer.drain()


async def _forever(writer: asyncio.StreamWriter, head: bytes, piece: bytes) -> None:
    """``head``, then ``piece`` again and again until the peer goes away."""
    await _send(writer, head)
    while True:
        writer.write(piece)
        await writer.drain()


async def _drip(writer: asyncio.StreamWriter, data: bytes) -> None:
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        await writer.drain()
        await asyncio.sleep(DRIP_INTERVAL)


async def _linger(reader: asyncio.StreamReader) -> None:
    """Say nothing more; return when the peer closes."""
    while await reader.read(CHUNK):
        pass


_OK = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
_PAGE = b"<!doctype html><title>hostile</title><p>hello</p>\n"


async def _endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await _forever(writer, _OK + b"Connection: close\r\n\r\n", _FILLER)


async def _endless_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    chunk = b"%x\r\n%s\r\n" % (len(_FILLER), _FILLER)
    await _forever(writer, _OK + b"Transfer-Encoding: chunked\r\n\r\n", chunk)


async def _slow_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await _drip(writer, _OK + b"Content-Length: %d\r\n\r\n%s" % (len(_PAGE), _PAGE))
    await _linger(reader)


async def _huge_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    line = b"X-Padding: " + b"a" * (HUGE_HEADER_BYTES - 13) + b"\r\n"
    await _send(writer, _OK + line + b"Content-Length: %d\r\n\r\n%s" % (len(_PAGE), _PAGE))
    await _linger(reader)


async def _endless_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    lines = b"".join(b"X-Hostile-%05d: never ending\r\n" % i for i in range(512))
    await _forever(writer, _OK, lines)


async def _bad_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    body = b"5\r\nhello\r\nzz-not-hex\r\nworld\r\n0\r\n\r\n"
    await _send(writer, _OK + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    await _linger(reader)


async def _endless_1xx(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await _forever(writer, b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 256)


async def _short_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await _send(writer, _OK + b"Content-Length: 1000000\r\n\r\n" + _FILLER[:1000])
    writer.close()  # FIN (after close_notify, in TLS) long before the body is complete


async def _not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await _send(writer, _GARBAGE + b"\r\n\r\n")
    await _linger(reader)


_HTTP: dict[str, Handler] = {
    "endless_body": _endless_body,
    "endless_chunked": _endless_chunked,
    "slow_response": _slow_response,
    "huge_header": _huge_header,
    "endless_headers": _endless_headers,
    "bad_chunked": _bad_chunked,
    "endless_1xx": _endless_1xx,
    "short_body": _short_body,
    "not_http": _not_http,
}


# --- TLS -------------------------------------------------------------------------------


async def _read_client_hello(reader: asyncio.StreamReader) -> None:
    async with asyncio.timeout(REQUEST_TIMEOUT):
        header = await reader.readexactly(5)
        (length,) = struct.unpack("!H", header[3:5])
        await reader.readexactly(length)


async def _tls_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_client_hello(reader)
    await _send(writer, _GARBAGE)
    await _linger(reader)


async def _tls_huge_record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_client_hello(reader)
    await _send(writer, b"\x16\x03\x03\xff\xff" + _GARBAGE)
    await _linger(reader)


async def _tls_slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_client_hello(reader)
    # a handshake record holding a ServerHello of 118 bytes, as servers start theirs
    await _drip(writer, b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03" + _GARBAGE[:111])
    await _linger(reader)


_TLS: dict[str, Handler] = {
    "tls_garbage": _tls_garbage,
    "tls_huge_record": _tls_huge_record,
    "tls_slow": _tls_slow,
}


# --- TCP -------------------------------------------------------------------------------


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    _rst(writer)


async def _reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await _send(writer, _OK + b"Content-Length: 100000\r\n\r\n" + (_FILLER * 2)[:20000])
    await asyncio.sleep(0.05)  # let the bytes leave before the RST
    _rst(writer)


_TCP: dict[str, Handler] = {"reset": _reset, "reset_mid_body": _reset_mid_body}


# --- DNS -------------------------------------------------------------------------------

_QR_RD_RA = 0x8180
_TC = 0x0200
_A, _IN = 1, 1


def dns_replies(
    behaviour: str, query_wire: bytes, addresses: tuple[str, ...], transport: str
) -> list[bytes]:
    """What a hostile resolver sends back to ``query_wire`` over ``transport`` ("udp",
    "tcp" or "doh"): DNS messages without the TCP length prefix, in order."""
    if behaviour not in DNS_BEHAVIOURS:
        raise ValueError(f"unknown hostile DNS behaviour {behaviour!r}")
    try:
        query = dns.message.from_wire(query_wire)
    except dns.exception.DNSException:
        return []
    if not query.question:
        return []
    qid = query.id
    question = _question(query.question[0].name, query.question[0].rdtype)
    ips = [a for a in addresses if ":" not in a] or ["192.0.2.1"]
    records = [_a_record(ip) for ip in ips]
    match behaviour:
        case "compression_loop":
            # the question starts at offset 12; the answer right after it: point at itself
            loop = struct.pack("!H", 0xC000 | (12 + len(question)))
            answer = loop + struct.pack("!HHIH", _A, _IN, DNS_TTL, 4) + _ip(ips[0])
            return [_header(qid, _QR_RD_RA, 1, 1) + question + answer]
        case "truncated":
            many = [_a_record(f"198.18.0.{i}") for i in range(1, 21)]
            wire = _header(qid, _QR_RD_RA | _TC, 1, len(many)) + question + b"".join(many)
            return [wire[:-7]]
        case "wrong_id":
            return [
                _header(qid ^ 0x5A5A, _QR_RD_RA, 1, len(records)) + question + b"".join(records)
            ]
        case "wrong_question":
            other = _question(dns.name.from_text("hostile.invalid"), _A)
            return [_header(qid, _QR_RD_RA, 1, len(records)) + other + b"".join(records)]
        case "many_records":
            head = _header(qid, _QR_RD_RA, 1, MANY_RECORDS) + question
            room = {"udp": UDP_MAX_PAYLOAD, "tcp": TCP_MAX_MESSAGE}.get(transport)
            count = MANY_RECORDS if room is None else (room - len(head)) // 16
            return [head + b"".join(_a_record(_flood_ip(i)) for i in range(count))]
        case "max_records":
            count = (UDP_MAX_PAYLOAD - 12 - len(question)) // 16
            head = _header(qid, _QR_RD_RA, 1, count) + question
            return [head + b"".join(_a_record(_flood_ip(i)) for i in range(count))]
        case _:  # reply_flood
            wires = [
                _header((qid + 1 + i) % 65536, _QR_RD_RA, 1, len(records))
                + question
                + b"".join(records)
                for i in range(FLOOD_REPLIES if transport == "udp" else 1)
            ]
            return wires


def _header(qid: int, flags: int, qdcount: int, ancount: int) -> bytes:
    return struct.pack("!6H", qid, flags, qdcount, ancount, 0, 0)


def _question(name: dns.name.Name, rdtype: int) -> bytes:
    wire = name.to_wire()
    assert wire is not None  # no compression table given: always the bytes
    return wire + struct.pack("!HH", rdtype, _IN)


def _a_record(ip: str) -> bytes:
    """An A record whose owner is the question's name (a pointer to offset 12): 16 bytes."""
    return b"\xc0\x0c" + struct.pack("!HHIH", _A, _IN, DNS_TTL, 4) + _ip(ip)


def _ip(ip: str) -> bytes:
    return ipaddress.IPv4Address(ip).packed


def _flood_ip(i: int) -> str:
    """Distinct addresses in 198.18.0.0/15 (benchmarking space: the lab routes none)."""
    return str(ipaddress.IPv4Address(0xC6120000 + 1 + i))
