"""DNS shells: getaddrinfo, DNS over UDP (with injection evidence), TCP and HTTPS.

All build their query with ``core.dns.build_query`` and judge replies with
``core.dns.analyze_reply`` (through ``judge_reply``, which bounds its work); they
only move bytes and keep time.

UDP: the first reply that matches the query is the result. The socket stays
open for ``duplicate_window`` seconds after that; every other datagram that
arrives (before or after) is recorded in ``x_dns_duplicate_responses``. An
on-path censor that injects a forged answer is caught this way: its reply and
the real one both arrive. ``dns_udp`` returns as soon as it has its result;
the collection goes on in the background until ``UDPLookup.finish()``. When
only replies that match nothing came (wrong id, malformed, wrong question) by
the end of the budget, the first of them is the result, with its failure
(``dns_reply_with_wrong_query_id``, ``dns_server_misbehaving``), as OONI's
transport, which returns the first reply's error, records it.

A hostile resolver may send a 64 KB reply with thousands of records: every
reply goes through ``judge_reply``, which walks the message's structure without
parsing it (a lie in a count or a length is ``dns_server_misbehaving``) and hands
the full parser at most the first ``MAX_ANSWERS`` answers, so that judging one
reply costs milliseconds, not the event loop's time for everyone. A DoH reply
longer than a DNS message can be (65,535 bytes) is ``dns_server_misbehaving``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import struct
from urllib.parse import urlsplit

import dns.message

from blockproof.core.dns import MAX_ANSWERS, DNSReply, analyze_reply, build_query, gai_answers
from blockproof.core.http import browser_request
from blockproof.model.failure import Failure
from blockproof.model.observations import DNSQuery, HTTPRequest, join_endpoint, split_endpoint
from blockproof.netx.failures import NetworkFailure, classify, unexpected_failure
from blockproof.netx.http import http_round_trip
from blockproof.netx.network import Network
from blockproof.netx.tcp import tcp_connect
from blockproof.netx.tls import tls_handshake
from blockproof.netx.trace import TX_DOH, TX_GETADDRINFO, TX_UDP, Recorder

MAX_DATAGRAMS = 32  # a flood of replies is cut here
MAX_MESSAGE = 65_535  # a DNS message's largest size (RFC 1035 4.2.2; RFC 8484 6)
# Replies with more records than this (questions included) are trimmed before parsing.
MAX_PARSED_RECORDS = 2 * MAX_ANSWERS


def judge_reply(query: dns.message.Message, wire: bytes) -> DNSReply:
    """``analyze_reply`` with bounded work, whatever the reply holds.

    Small replies (at most MAX_PARSED_RECORDS records) go to ``analyze_reply`` as they
    are. A larger one is first walked record by record (names skipped, lengths
    checked: no parsing); if its structure holds, only its header, question and
    first MAX_ANSWERS answers are parsed (``analyze_reply`` keeps no more anyway);
    if not, it is ``dns_server_misbehaving``, as the full parser would say.
    ``raw`` is always the reply as received.
    """
    trimmed = _trimmed(wire)
    if trimmed is None:
        return DNSReply(Failure.DNS_SERVER_MISBEHAVING, None, (), wire)
    reply = analyze_reply(query, trimmed)
    return reply if trimmed is wire else dataclasses.replace(reply, raw=wire)


def _trimmed(wire: bytes) -> bytes | None:
    """``wire`` itself, a shorter equivalent for judging it, or None if malformed."""
    if len(wire) < 12:
        return wire  # the parser says what is wrong with it
    qdcount, ancount, nscount, arcount = struct.unpack_from("!4H", wire, 4)
    if qdcount + ancount + nscount + arcount <= MAX_PARSED_RECORDS:
        return wire
    if qdcount > MAX_PARSED_RECORDS:
        return None  # no resolver asks back thousands of questions
    offset: int | None = 12
    for _ in range(qdcount):
        offset = _skip_name(wire, offset)
        if offset is None or offset + 4 > len(wire):
            return None
        offset += 4
    keep = min(ancount, MAX_ANSWERS)
    answers_end = offset
    for i in range(ancount + nscount + arcount):
        offset = _skip_name(wire, offset)
        if offset is None or offset + 10 > len(wire):
            return None
        (rdlength,) = struct.unpack_from("!H", wire, offset + 8)
        offset += 10 + rdlength
        if offset > len(wire):
            return None
        if i + 1 == keep:
            answers_end = offset
    return wire[:6] + struct.pack("!3H", keep, 0, 0) + wire[12:answers_end]


def _skip_name(wire: bytes, offset: int | None) -> int | None:
    """The offset after the (possibly compressed) name at ``offset``; None if malformed."""
    if offset is None:
        return None
    while offset < len(wire):
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2 if offset + 2 <= len(wire) else None
        if length & 0xC0:
            return None  # 0x40 and 0x80 label types are obsolete or unknown
        offset += 1 + length
    return None


async def dns_getaddrinfo(
    network: Network,
    recorder: Recorder,
    hostname: str,
    *,
    timeout: float,
    tags: tuple[str, ...] = (),
) -> DNSQuery:
    """The system resolver, as OONI's ``getaddrinfo`` engine (query_type ANY)."""
    tx = recorder.next_id(TX_GETADDRINFO)
    t0 = recorder.now()
    failure: str | None = None
    addresses: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            addresses = await network.getaddrinfo(hostname)
        if not addresses:
            failure = Failure.DNS_NO_ANSWER
    except (OSError, TimeoutError, UnicodeError) as exc:
        failure = classify(exc)
    except Exception as exc:  # a bug or an error nobody expected: this step's failure
        failure = unexpected_failure(exc)
    query = DNSQuery(
        engine="getaddrinfo",
        resolver_address="",
        hostname=hostname,
        query_type="ANY",
        answers=gai_answers(addresses),
        failure=failure,
        t0=t0,
        t=recorder.now(),
        tags=tags,
        transaction_id=tx,
    )
    recorder.trace.queries.append(query)
    return query


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.count = 0
        self.error: Exception | None = None
        self._loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.count < MAX_DATAGRAMS:
            self.count += 1
            self.datagrams.put_nowait((self._loop.time(), data))

    def error_received(self, exc: Exception) -> None:
        self.error = exc
        self.datagrams.put_nowait((self._loop.time(), b""))


class UDPLookup:
    """A DNS-over-UDP lookup whose duplicate collection may outlive its result."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    async def finish(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def dns_udp(
    network: Network,
    recorder: Recorder,
    hostname: str,
    qtype: str,
    resolver: str,
    *,
    timeout: float,
    duplicate_window: float = 0.3,
    tags: tuple[str, ...] = (),
) -> tuple[DNSQuery, UDPLookup]:
    """One lookup over UDP; the reply that answers it, and the late ones collected after."""
    t0 = recorder.now()
    try:
        return await _dns_udp(
            network, recorder, hostname, qtype, resolver, timeout=timeout,
            duplicate_window=duplicate_window, tags=tags,
        )  # fmt: skip
    except Exception as exc:  # a bug or an error nobody expected: this lookup's failure
        failed = DNSQuery(
            engine="udp", resolver_address=resolver, hostname=hostname, query_type=qtype,
            failure=unexpected_failure(exc), t0=t0, t=recorder.now(), tags=tags,
        )  # fmt: skip
        recorder.trace.queries.append(failed)
        return failed, UDPLookup(asyncio.create_task(asyncio.sleep(0)))


async def _dns_udp(
    network: Network,
    recorder: Recorder,
    hostname: str,
    qtype: str,
    resolver: str,
    *,
    timeout: float,
    duplicate_window: float,
    tags: tuple[str, ...],
) -> tuple[DNSQuery, UDPLookup]:
    ip, port = split_endpoint(resolver)
    tx = recorder.next_id(TX_UDP)
    query = build_query(hostname, qtype)
    loop = asyncio.get_running_loop()
    t0 = recorder.now()
    collector = _Collector()

    def record(failure: str | None, reply: DNSReply | None, when: float) -> DNSQuery:
        return DNSQuery(
            engine="udp",
            resolver_address=resolver,
            hostname=hostname,
            query_type=qtype,
            answers=reply.answers if reply else (),
            failure=failure if reply is None else reply.failure,
            rcode=reply.rcode if reply else None,
            raw_response=reply.raw if reply else None,
            t0=t0,
            t=when,
            tags=tags,
            transaction_id=tx,
        )

    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: collector, remote_addr=network.udp_address(ip, port)
        )
    except OSError as exc:
        failed = record(classify(exc), None, recorder.now())
        recorder.trace.queries.append(failed)
        return failed, UDPLookup(asyncio.create_task(asyncio.sleep(0)))
    transport.sendto(query.to_wire())
    seen: list[tuple[float, DNSReply]] = []  # replies that answer nothing, or late ones
    result: DNSQuery | None = None
    try:
        async with asyncio.timeout(timeout):
            while result is None:
                _, data = await collector.datagrams.get()
                if collector.error is not None:
                    raise collector.error
                reply = judge_reply(query, data)
                if reply.failure in (Failure.DNS_WRONG_QUERY_ID, Failure.DNS_SERVER_MISBEHAVING):
                    seen.append((recorder.now(), reply))
                    continue
                result = record(None, reply, recorder.now())
    except (TimeoutError, OSError) as exc:
        if seen and isinstance(exc, TimeoutError):
            # nothing but replies that answer nothing: the first one is the result
            result = record(None, seen.pop(0)[1], recorder.now())
        else:
            result = record(classify(exc), None, recorder.now())
        transport.close()
        recorder.trace.queries.append(result)
        for when, reply in seen:
            recorder.trace.dns_duplicate_responses.append(record(None, reply, when))
        return result, UDPLookup(asyncio.create_task(asyncio.sleep(0)))
    recorder.trace.queries.append(result)

    async def collect_late() -> None:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duplicate_window):
                    while True:
                        _, data = await collector.datagrams.get()
                        if data:
                            seen.append((recorder.now(), judge_reply(query, data)))
        finally:
            transport.close()
            for when, reply in seen:
                recorder.trace.dns_duplicate_responses.append(record(None, reply, when))

    return result, UDPLookup(asyncio.create_task(collect_late()))


async def dns_tcp(
    network: Network,
    recorder: Recorder,
    hostname: str,
    qtype: str,
    resolver: str,
    *,
    timeout: float,
    tags: tuple[str, ...] = (),
) -> DNSQuery:
    """DNS over TCP (RFC 1035 4.2.2: two-byte length prefix)."""
    ip, port = split_endpoint(resolver)
    tx = recorder.next_id(TX_UDP)
    query = build_query(hostname, qtype)
    t0 = recorder.now()
    wire: bytes | None = None
    failure: str | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await network.open_stream(ip, port)
            try:
                payload = query.to_wire()
                writer.write(struct.pack("!H", len(payload)) + payload)
                await writer.drain()
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                wire = await reader.readexactly(length)
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        failure = classify(exc)
    except Exception as exc:  # a bug or an error nobody expected: this step's failure
        failure = unexpected_failure(exc)
    reply = judge_reply(query, wire) if wire is not None else None
    result = DNSQuery(
        engine="tcp",
        resolver_address=resolver,
        hostname=hostname,
        query_type=qtype,
        answers=reply.answers if reply else (),
        failure=reply.failure if reply else failure,
        rcode=reply.rcode if reply else None,
        raw_response=wire,
        t0=t0,
        t=recorder.now(),
        tags=tags,
        transaction_id=tx,
    )
    recorder.trace.queries.append(result)
    return result


async def dns_https(
    network: Network,
    recorder: Recorder,
    hostname: str,
    qtype: str,
    url: str,
    *,
    server_ip: str,
    timeout: float,
    ca_file: str | None = None,
    tags: tuple[str, ...] = (),
) -> DNSQuery:
    """DNS over HTTPS (RFC 8484, GET with ``?dns=``), to ``server_ip`` with the URL's SNI."""
    tx = recorder.next_id(TX_DOH)
    query = build_query(hostname, qtype)
    query.id = 0  # RFC 8484 4.1: cache friendly
    parts = urlsplit(url)
    sni = parts.hostname or ""
    encoded = base64.urlsafe_b64encode(query.to_wire()).rstrip(b"=").decode()
    sep = "&" if parts.query else "?"
    base = browser_request(url + sep + "dns=" + encoded)
    request = HTTPRequest(
        method="GET",
        url=base.url,
        headers_list=(("Host", parts.netloc), ("Accept", "application/dns-message")),
    )
    t0 = recorder.now()
    failure: str | None = None
    wire: bytes | None = None
    sub = (*tags, "doh")
    try:
        async with asyncio.timeout(timeout):
            _, tcp = await tcp_connect(
                network, recorder, server_ip, parts.port or 443, timeout=timeout, tags=sub,
                transaction_id=tx, record=False,
            )  # fmt: skip
            if tcp is None:
                raise NetworkFailure(Failure.CONNECTION_REFUSED)
            hs, tls = await tls_handshake(
                recorder, tcp, sni, timeout=timeout, ca_file=ca_file, tags=sub,
                transaction_id=tx, record=False,
            )  # fmt: skip
            if tls is None:
                raise NetworkFailure(hs.failure or Failure.SSL_FAILED_HANDSHAKE)
            txn = await http_round_trip(
                recorder, tls, request, timeout=timeout, address=join_endpoint(server_ip, 443),
                tags=sub, transaction_id=tx, record=False, max_body=MAX_MESSAGE,
            )  # fmt: skip
            if txn.failure is not None:
                raise NetworkFailure(txn.failure)
            if txn.response is None or txn.response.code != 200:
                code = txn.response.code if txn.response else 0
                raise NetworkFailure(f"unknown_failure: doh server returned status {code}")
            wire = txn.response.body
            if txn.response.body_is_truncated:
                # longer than any DNS message: what it holds is not a DNS reply
                failure, wire = Failure.DNS_SERVER_MISBEHAVING, None
    except (NetworkFailure, OSError, TimeoutError) as exc:
        failure = classify(exc)
    except Exception as exc:  # a bug or an error nobody expected: this step's failure
        failure = unexpected_failure(exc)
    reply = judge_reply(query, wire) if wire is not None else None
    result = DNSQuery(
        engine="doh",
        resolver_address=url,
        hostname=hostname,
        query_type=qtype,
        answers=reply.answers if reply else (),
        failure=reply.failure if reply else failure,
        rcode=reply.rcode if reply else None,
        raw_response=wire,
        t0=t0,
        t=recorder.now(),
        tags=tags,
        transaction_id=tx,
    )
    recorder.trace.queries.append(result)
    return result


async def doh_addresses(
    network: Network, host: str, url: str, server_ip: str, *, timeout: float, ca_file: str | None
) -> list[str]:
    """``host``'s IPv4 addresses by DNS over HTTPS (for a network's ``getaddrinfo``);
    raises socket.gaierror like the system resolver would."""
    import ipaddress
    import socket

    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    query = await dns_https(
        network, Recorder(), host, "A", url, server_ip=server_ip, timeout=timeout, ca_file=ca_file
    )
    if query.failure is not None or not query.addresses:
        raise socket.gaierror(socket.EAI_NONAME, query.failure or "no address")
    return list(dict.fromkeys(query.addresses))


class DoHNetwork:
    """A ``Network`` whose name lookups go to a DNS-over-HTTPS resolver (``url`` at
    ``server_ip``) instead of the system's: the bypass for DNS-based blocking. Streams
    and datagrams go through ``base`` unchanged."""

    def __init__(
        self, base: Network, url: str, server_ip: str, *, ca_file: str | None = None
    ) -> None:
        self.base, self.url, self.server_ip, self.ca_file = base, url, server_ip, ca_file

    async def open_stream(
        self, ip: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await self.base.open_stream(ip, port)

    def udp_address(self, ip: str, port: int) -> tuple[str, int]:
        return self.base.udp_address(ip, port)

    async def getaddrinfo(self, host: str) -> list[str]:
        return await doh_addresses(
            self.base, host, self.url, self.server_ip, timeout=10.0, ca_file=self.ca_file
        )
