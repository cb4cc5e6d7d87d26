"""Fuzz the DNS reply analysis (core/dns.py): any datagram gives a documented outcome.

Input: a flag byte, then the datagram. When the flag's low bit is set the query takes
the datagram's id, so that the analysis goes past the id check. Seeds: replies to the
query (A and AAAA records, CNAME chains, each rcode, compression pointers).
See fuzzkit.py for how to run it.
"""

from __future__ import annotations

import sys

import atheris
from fuzzkit import main

with atheris.instrument_imports(include=["blockproof.core.dns", "dns"]):
    import dns.message
    import dns.rcode
    import dns.rrset

    from blockproof.core.dns import MAX_ANSWERS, analyze_reply, build_query

OUTCOMES = {
    None,
    "dns_server_misbehaving",
    "dns_reply_with_wrong_query_id",
    "dns_nxdomain_error",
    "dns_refused_error",
    "dns_servfail_error",
    "dns_no_answer",
}
QUERIES = {qtype: build_query("x.com", qtype) for qtype in ("A", "AAAA")}


def test_one_input(data: bytes) -> None:
    if not data:
        return
    query = QUERIES["AAAA" if data[0] & 2 else "A"]
    wire = data[1:]
    if data[0] & 1 and len(wire) >= 2:
        query.id = int.from_bytes(wire[:2], "big")
    result = analyze_reply(query, wire)
    assert result.failure in OUTCOMES, result.failure
    assert result.raw == wire
    assert len(result.answers) <= MAX_ANSWERS
    if result.failure is None:
        assert any(a.answer_type in ("A", "AAAA") for a in result.answers)


def seeds() -> list[bytes]:
    found = []
    for flag, qtype in ((1, "A"), (3, "AAAA")):
        query = build_query("x.com", qtype)
        for rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL, 9):
            for records in (
                [],
                ["x.com. 300 IN A 104.244.42.1", "x.com. 300 IN A 10.10.34.35"],
                ["x.com. 60 IN CNAME edge.x.com.", "edge.x.com. 60 IN A 104.244.42.65"],
                ["x.com. 60 IN AAAA 2606:4700::1111", 'x.com. 60 IN TXT "v=spf1"'],
            ):
                reply = dns.message.make_response(query)
                reply.set_rcode(rcode)
                for text in records:
                    reply.answer.append(dns.rrset.from_text(*text.split(" ", 4)))
                found.append(bytes([flag]) + reply.to_wire())
    return found


if __name__ == "__main__":
    main(test_one_input, seeds)
    sys.exit(0)
