"""Properties of the DNS reply analysis (core/dns.py).

- any datagram (random bytes, random bytes behind the right id, real replies with
  bytes flipped, cut, inserted or deleted) gives one of the documented outcomes,
  never an exception, and keeps the datagram as it came;
- a well-formed reply (generated records and rcode) is judged as the module says:
  the rcode's failure, or the A/AAAA/CNAME answers in order (at most MAX_ANSWERS),
  ``dns_no_answer`` when none of them is an address; the wrong id and the wrong
  question are caught.

tests/unit/test_dns_reply.py has the hand-made replies (loops, bogons, each rcode).
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import example
from hypothesis import strategies as st
from properties_kit import RUNS, explore

from blockproof.core.dns import MAX_ANSWERS, DNSReply, analyze_reply, build_query
from blockproof.model.failure import Failure
from figures import Figures

TARGET = "DNS reply analysis"
pytestmark = pytest.mark.reliability

OUTCOMES = {
    None,
    Failure.DNS_SERVER_MISBEHAVING,
    Failure.DNS_WRONG_QUERY_ID,
    Failure.DNS_NXDOMAIN,
    Failure.DNS_REFUSED,
    Failure.DNS_SERVFAIL,
    Failure.DNS_NO_ANSWER,
}
RCODE_FAILURE = {
    dns.rcode.NOERROR: None,
    dns.rcode.NXDOMAIN: Failure.DNS_NXDOMAIN,
    dns.rcode.REFUSED: Failure.DNS_REFUSED,
    dns.rcode.SERVFAIL: Failure.DNS_SERVFAIL,
    dns.rcode.FORMERR: Failure.DNS_SERVER_MISBEHAVING,
    dns.rcode.NOTIMP: Failure.DNS_SERVER_MISBEHAVING,
}

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
qtypes = st.sampled_from(["A", "AAAA"])
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ttls = st.integers(0, 2**31 - 1)


@st.composite
def records(draw: st.DrawFn, owner: str) -> tuple[str, int, str, str]:
    """(owner, ttl, type, value) of one record a resolver (or a censor) might answer."""
    kind = draw(st.sampled_from(["A", "AAAA", "CNAME", "TXT", "MX", "NS"]))
    name = draw(st.just(owner) | hostnames)
    value = {
        "A": ipv4,
        "AAAA": ipv6,
        "CNAME": hostnames.map(lambda h: h + "."),
        "TXT": st.text("abc xyz", max_size=10).map(lambda t: f'"{t}"'),
        "MX": hostnames.map(lambda h: f"10 {h}."),
        "NS": hostnames.map(lambda h: h + "."),
    }[kind]
    return name, draw(ttls), kind, draw(value)


def _query(hostname: str, qtype: str, qid: int) -> dns.message.Message:
    """``build_query`` with a chosen id (strategies must not draw from ``random``)."""
    query = dns.message.make_query(hostname, qtype, use_edns=0, id=qid)
    query.flags |= dns.flags.RD
    return query


@st.composite
def replies(
    draw: st.DrawFn,
) -> tuple[dns.message.Message, bytes, int, list[tuple[str, int, str, str]]]:
    """A query, the wire of a well-formed reply to it, its rcode and its answer records."""
    hostname, qtype = draw(hostnames), draw(qtypes)
    query = _query(hostname, qtype, draw(st.integers(0, 65535)))
    reply = dns.message.make_response(query)
    rcode = draw(st.sampled_from(sorted(RCODE_FAILURE)) | st.integers(0, 15))
    reply.set_rcode(rcode)
    # one RRset per (owner, type): a reader merges records of the same RRset
    answers = draw(st.lists(records(hostname), max_size=8, unique_by=lambda r: (r[0], r[2])))
    for name, ttl, kind, value in answers:  # one RRset per record: order kept
        reply.answer.append(dns.rrset.from_text(name + ".", ttl, "IN", kind, value))
    if draw(st.booleans()):
        bulk = draw(st.integers(MAX_ANSWERS - 2, MAX_ANSWERS + 40))
        extra = [f"10.{i // 250}.{i % 250}.1" for i in range(bulk)]
        reply.answer.append(dns.rrset.from_text_list(f"bulk.{hostname}.", 60, "IN", "A", extra))
        answers += [(f"bulk.{hostname}", 60, "A", address) for address in extra]
    return query, reply.to_wire(max_size=65535, want_shuffle=False), rcode, answers


def _expected(qtype: str, answers: list[tuple[str, int, str, str]]) -> list[tuple[str, str, int]]:
    wanted = []
    for _name, ttl, kind, value in answers:
        if kind == qtype:
            wanted.append((kind, str(ipaddress.ip_address(value)), ttl))
        elif kind == "CNAME":
            wanted.append((kind, value.rstrip("."), ttl))
    return wanted[:MAX_ANSWERS]


def _check(reply: DNSReply, wire: bytes) -> None:
    assert reply.failure in OUTCOMES
    assert reply.raw == wire
    assert len(reply.answers) <= MAX_ANSWERS
    if reply.failure is None:
        assert any(a.answer_type in ("A", "AAAA") for a in reply.answers)


def prop_well_formed_reply(case: tuple[dns.message.Message, bytes, int, list[Any]]) -> None:
    query, wire, rcode, answers = case
    hostname = query.question[0].name.to_text(omit_final_dot=True)
    qtype = dns.rdatatype.to_text(query.question[0].rdtype)
    built = build_query(hostname, qtype)
    assert built.to_wire() == _query(hostname, qtype, built.id).to_wire()
    result = analyze_reply(query, wire)
    _check(result, wire)
    assert result.rcode == rcode
    if rcode != dns.rcode.NOERROR:
        assert result.failure == RCODE_FAILURE.get(rcode, Failure.DNS_SERVER_MISBEHAVING)
        assert result.answers == ()
        return
    got = [
        (a.answer_type, str(ipaddress.ip_address(a.address)) if a.address else a.hostname, a.ttl)
        for a in result.answers
    ]
    want = _expected(qtype, answers)
    assert got == want
    has_address = any(kind != "CNAME" for kind, _, _ in want)
    assert result.failure == (None if has_address else Failure.DNS_NO_ANSWER)
    # the same reply under another id, or for another name, is not this query's
    other = dns.message.from_wire(wire)
    other.id = (query.id + 1) % 65536
    assert analyze_reply(query, other.to_wire(max_size=65535, want_shuffle=False)).failure == (
        Failure.DNS_WRONG_QUERY_ID
    )
    stranger = _query("other-name.invalid", qtype, query.id)
    assert analyze_reply(stranger, wire).failure == Failure.DNS_SERVER_MISBEHAVING


@pytest.mark.parametrize("run", RUNS)
def test_well_formed_replies_are_judged_consistently(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_well_formed_reply, replies())


# ------------------------------------------------------------------ hostile datagrams


# type A, AAAA or CNAME then class IN, as they sit in a record's fixed part
_IN_RECORDS = {b"\x00\x01\x00\x01", b"\x00\x1c\x00\x01", b"\x00\x05\x00\x01"}


CHANGES = ["flip", "set", "insert", "delete", "pointer", "class"]


@st.composite
def datagrams(draw: st.DrawFn) -> tuple[dns.message.Message, bytes]:
    """A query and some datagram: random, random behind its id, or a damaged real reply."""
    query, wire, _rcode, _answers = draw(replies())
    how = draw(st.sampled_from(["random", "same id", "mutated", "cut", "spliced", "reclassed"]))
    if how == "random":
        return query, draw(st.binary(max_size=600))
    if how == "same id":
        return query, query.id.to_bytes(2, "big") + draw(st.binary(max_size=600))
    data = bytearray(wire)
    if how == "cut":
        return query, bytes(data[: draw(st.integers(0, max(0, len(data) - 1)))])
    for _ in range(1 if how == "reclassed" else draw(st.integers(1, 8))):
        at = draw(st.integers(2, max(2, len(data))))  # keep the id: go past the first check
        change = "class" if how == "reclassed" else draw(st.sampled_from(CHANGES))
        if change == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif change == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif change == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif change == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif change == "pointer":  # a compression pointer to anywhere, loops included
            data[at:at] = (0xC000 | draw(st.integers(0, 0x3FFF))).to_bytes(2, "big")
        elif change == "class":  # a record of another class (CHAOS, ANY, unassigned...)
            starts = [i for i in range(12, len(data) - 3) if bytes(data[i : i + 4]) in _IN_RECORDS]
            if starts:
                at = draw(st.sampled_from(starts)) + 2
                rdclass = draw(st.sampled_from([3, 4, 254, 255]) | st.integers(0, 0xFFFF))
                data[at : at + 2] = rdclass.to_bytes(2, "big")  # CH, HS, NONE, ANY or any
    if how == "spliced":  # the tail of some other reply
        data += draw(st.binary(max_size=40))
    return query, bytes(data)


# an A record of class ANY after a CNAME: dnspython leaves its data opaque (found by atheris)
@example(
    case=(
        _query("x.com", "A", 0x2172),
        bytes.fromhex(
            "21728100000100020000000101780363 6f6d0000010001c00c00050001000000"
            "3c000704656467 65c00cc023000100ffffff003c000468f42a4100002920000000000000 00"
        ),
    )
)
@example(case=(build_query("x.com", "A"), b""))
@example(case=(build_query("x.com", "A"), b"\x00" * 12 + b"\xc0\x0c"))
def prop_any_datagram(case: tuple[dns.message.Message, bytes]) -> None:
    query, wire = case
    result = analyze_reply(query, wire)
    _check(result, wire)
    if len(wire) < 2 or int.from_bytes(wire[:2], "big") != query.id:
        assert result.failure in (Failure.DNS_SERVER_MISBEHAVING, Failure.DNS_WRONG_QUERY_ID)


@pytest.mark.parametrize("run", RUNS)
def test_any_datagram_gives_a_documented_outcome(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_any_datagram, datagrams(), scale=2)


def prop_prefix_of_a_reply(case: tuple[dns.message.Message, bytes, int, list[Any]]) -> None:
    """A reply cut short anywhere never reads as a successful lookup."""
    query, wire, _rcode, _answers = case
    step = max(1, len(wire) // 48)  # some 60 cuts: spread out, and every one near the end
    for end in sorted({*range(0, len(wire), step), *range(max(0, len(wire) - 12), len(wire))}):
        result = analyze_reply(query, wire[:end])
        _check(result, wire[:end])
        assert result.failure is not None


@pytest.mark.parametrize("run", RUNS)
def test_a_reply_cut_short_is_never_a_success(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_prefix_of_a_reply, replies(), scale=0.5)


def test_a_record_of_class_any_does_not_change_how_later_replies_read() -> None:
    # in a fresh process: a censor's reply with an A record of class ANY comes first
    script = """
import dns.message, dns.rrset
from blockproof.core.dns import analyze_reply
q = dns.message.make_query("x.com", "A", use_edns=0, id=0x2172)
hostile = bytes.fromhex(
    "217281000001000200000001017803636f6d0000010001c00c000500010000003c00070465646765"
    "c00cc023000100ffffff003c000468f42a410000292000000000000000"
)
assert analyze_reply(q, hostile).failure == "dns_no_answer"
reply = dns.message.make_response(q)
reply.answer.append(dns.rrset.from_text("x.com.", 300, "IN", "A", "104.244.42.1"))
result = analyze_reply(q, reply.to_wire())
assert result.failure is None and result.answers[0].ipv4 == "104.244.42.1", result
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
