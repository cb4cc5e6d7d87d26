"""DNS reply analysis (sans-IO): what each kind of reply a censor can send becomes."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rrset
import pytest

from blockproof.core.bogons import is_bogon
from blockproof.core.dns import MAX_ANSWERS, analyze_reply, build_query


def _reply(query: dns.message.Message, *records: str, rcode: int = dns.rcode.NOERROR) -> bytes:
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    for text in records:
        name, rtype, value = text.split()
        reply.answer.append(dns.rrset.from_text(name, 300, "IN", rtype, value))
    return reply.to_wire()


def test_answers_in_order_with_cname() -> None:
    q = build_query("x.com", "A")
    wire = _reply(
        q, "x.com. CNAME edge.x.com.", "edge.x.com. A 104.244.42.1", "edge.x.com. A 104.244.42.65"
    )
    r = analyze_reply(q, wire)
    assert r.failure is None
    assert [(a.answer_type, a.ipv4 or a.hostname) for a in r.answers] == [
        ("CNAME", "edge.x.com"),
        ("A", "104.244.42.1"),
        ("A", "104.244.42.65"),
    ]
    assert r.answers[1].ttl == 300


@pytest.mark.parametrize(
    ("rcode", "failure"),
    [
        (dns.rcode.NXDOMAIN, "dns_nxdomain_error"),
        (dns.rcode.REFUSED, "dns_refused_error"),
        (dns.rcode.SERVFAIL, "dns_servfail_error"),
        (dns.rcode.FORMERR, "dns_server_misbehaving"),
        (dns.rcode.NOTIMP, "dns_server_misbehaving"),
        (dns.rcode.YXDOMAIN, "dns_server_misbehaving"),
    ],
)
def test_rcodes(rcode: int, failure: str) -> None:
    q = build_query("x.com", "A")
    r = analyze_reply(q, _reply(q, rcode=rcode))
    assert (r.failure, r.rcode) == (failure, rcode)


def test_noerror_without_address_is_no_answer() -> None:
    q = build_query("x.com", "A")
    assert analyze_reply(q, _reply(q)).failure == "dns_no_answer"
    only_cname = _reply(q, "x.com. CNAME elsewhere.example.")
    assert analyze_reply(q, only_cname).failure == "dns_no_answer"


def test_wrong_id_and_wrong_question() -> None:
    q = build_query("x.com", "A")
    other = build_query("x.com", "A")
    other.id = (q.id + 1) % 65536
    assert (
        analyze_reply(q, _reply(other, "x.com. A 1.2.3.4")).failure
        == "dns_reply_with_wrong_query_id"
    )
    wrong_q = build_query("evil.example", "A")
    wrong_q.id = q.id
    assert (
        analyze_reply(q, _reply(wrong_q, "evil.example. A 1.2.3.4")).failure
        == "dns_server_misbehaving"
    )


@pytest.mark.parametrize(
    "garbage", [b"", b"\x00", b"\xff" * 11, b"\x12\x34" + b"\x81\x80" + b"\x00\x01" * 4]
)
def test_garbage_never_raises(garbage: bytes) -> None:
    q = build_query("x.com", "A")
    r = analyze_reply(q, garbage)
    assert r.failure is not None
    assert r.raw == garbage


def test_compression_loop_is_misbehaving() -> None:
    q = build_query("x.com", "A")
    header = q.id.to_bytes(2, "big") + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    question = b"\x01x\x03com\x00\x00\x01\x00\x01"
    answer = b"\xc0\x1d" + b"\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\x01\x02\x03\x04"
    looped = header + question + answer  # pointer at offset 29 points to itself
    assert analyze_reply(q, looped).failure == "dns_server_misbehaving"


def test_answers_are_bounded() -> None:
    q = build_query("x.com", "A")
    reply = dns.message.make_response(q)
    rrset = dns.rrset.from_text_list(
        "x.com.", 60, "IN", "A", [f"104.244.{i // 250}.{i % 250}" for i in range(1000)]
    )
    reply.answer.append(rrset)
    r = analyze_reply(q, reply.to_wire(max_size=65535))
    assert r.failure is None
    assert len(r.answers) == MAX_ANSWERS


def test_forged_bogon_answer_is_flagged_as_bogon() -> None:
    q = build_query("x.com", "A")
    r = analyze_reply(q, _reply(q, "x.com. A 10.10.34.35"))
    assert r.failure is None
    assert is_bogon(r.answers[0].ipv4 or "")


@pytest.mark.parametrize(
    ("address", "bogon"),
    [
        ("10.10.34.35", True),
        ("127.0.0.1", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("203.0.113.5", True),
        ("104.244.42.1", False),
        ("8.8.8.8", False),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("2001:db8::1", True),
        ("::ffff:10.0.0.1", True),
        ("2002:0a00:0001::1", True),  # 6to4 of 10.0.0.1
        ("2606:4700::1111", False),
        ("not-an-ip", True),
    ],
)
def test_bogons(address: str, bogon: bool) -> None:
    assert is_bogon(address) is bogon
