"""Sans-IO DNS: build a query, judge each reply that comes back.

A censor on the path answers before the real resolver does (GFW-style
injection), so the UDP shell collects every datagram arriving within a short
window after the first and hands each to ``analyze_reply``. The first reply
that matches the query is the lookup's result; the rest are recorded as
``x_dns_duplicate_responses`` (injection evidence).

``analyze_reply`` never raises: a datagram that does not parse, has the wrong
id or the wrong question is a reply with a failure string, like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from blockproof.model.failure import Failure
from blockproof.model.observations import DNSAnswer

_RCODE_FAILURE: dict[int, Failure] = {
    dns.rcode.NXDOMAIN: Failure.DNS_NXDOMAIN,
    dns.rcode.REFUSED: Failure.DNS_REFUSED,
    dns.rcode.SERVFAIL: Failure.DNS_SERVFAIL,
    dns.rcode.FORMERR: Failure.DNS_SERVER_MISBEHAVING,
    dns.rcode.NOTIMP: Failure.DNS_SERVER_MISBEHAVING,
}

# At most this many answers are kept from one reply (a hostile resolver may send thousands).
MAX_ANSWERS = 64

# dnspython picks the class that reads a record by (class, type) on first use and remembers
# its choice: a reply holding an A record of class ANY, parsed first, would make it read
# every later IN A record as opaque data. Choose the classes of what is read here up front.
for _rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME):
    dns.rdata.get_rdata_class(dns.rdataclass.IN, _rdtype)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class DNSReply:
    """One reply judged against its query."""

    failure: str | None
    rcode: int | None
    answers: tuple[DNSAnswer, ...]
    raw: bytes


def build_query(hostname: str, qtype: str) -> dns.message.QueryMessage:
    """A recursive query with EDNS0, a random id, as stub resolvers send."""
    query = dns.message.make_query(hostname, dns.rdatatype.from_text(qtype), use_edns=0)
    query.flags |= dns.flags.RD
    return query


def analyze_reply(query: dns.message.Message, wire: bytes) -> DNSReply:
    """Judge ``wire`` as a reply to ``query``."""
    try:
        reply = dns.message.from_wire(wire, ignore_trailing=True)
    except dns.message.TrailingJunk:
        return DNSReply(Failure.DNS_SERVER_MISBEHAVING, None, (), wire)
    except (dns.exception.DNSException, ValueError, IndexError):
        return DNSReply(Failure.DNS_SERVER_MISBEHAVING, None, (), wire)
    if reply.id != query.id:
        return DNSReply(Failure.DNS_WRONG_QUERY_ID, reply.rcode(), (), wire)
    if not query.is_response(reply):
        return DNSReply(Failure.DNS_SERVER_MISBEHAVING, reply.rcode(), (), wire)
    rcode = reply.rcode()
    if rcode in _RCODE_FAILURE:
        return DNSReply(_RCODE_FAILURE[rcode], rcode, (), wire)
    if rcode != dns.rcode.NOERROR:
        return DNSReply(Failure.DNS_SERVER_MISBEHAVING, rcode, (), wire)
    answers = extract_answers(reply, query.question[0].rdtype)
    if not any(a.answer_type != "CNAME" for a in answers):
        return DNSReply(Failure.DNS_NO_ANSWER, rcode, answers, wire)
    return DNSReply(None, rcode, answers, wire)


def extract_answers(reply: dns.message.Message, rdtype: int) -> tuple[DNSAnswer, ...]:
    """A, AAAA and CNAME records of the answer section, in order, at most MAX_ANSWERS."""
    out: list[DNSAnswer] = []
    for rrset in reply.answer:
        if rrset.rdclass != dns.rdataclass.IN:
            continue  # not an Internet address (and dnspython keeps other classes' A opaque)
        for rdata in rrset:
            if len(out) >= MAX_ANSWERS:
                return tuple(out)
            if rrset.rdtype == dns.rdatatype.A and rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                out.append(DNSAnswer(answer_type="A", ipv4=rdata.address, ttl=rrset.ttl))
            elif rrset.rdtype == dns.rdatatype.AAAA and rdtype in (
                dns.rdatatype.AAAA,
                dns.rdatatype.ANY,
            ):
                out.append(DNSAnswer(answer_type="AAAA", ipv6=rdata.address, ttl=rrset.ttl))
            elif rrset.rdtype == dns.rdatatype.CNAME:
                target = rdata.target.to_text(omit_final_dot=True)
                out.append(DNSAnswer(answer_type="CNAME", hostname=target, ttl=rrset.ttl))
    return tuple(out)


def gai_answers(addresses: list[str]) -> tuple[DNSAnswer, ...]:
    """Answers for a getaddrinfo result (OONI records no TTL for it)."""
    return tuple(
        DNSAnswer(answer_type="AAAA", ipv6=a) if ":" in a else DNSAnswer(answer_type="A", ipv4=a)
        for a in addresses[:MAX_ANSWERS]
    )
