"""The hostile lab's pure parts and the probe's bounds against them: DNS replies a hostile
resolver builds and how the probe judges each (``netx.dns.judge_reply``), short fixed
failure texts for HTTP protocol errors, the cap on 1xx responses, and the scenario keys."""

from __future__ import annotations

import struct
from typing import Any

import dns.message
import dns.rrset
import h11
import pytest

from blockproof.core.dns import MAX_ANSWERS, analyze_reply, build_query
from blockproof.core.http import (
    MAX_INFORMATIONAL,
    HTTPExchange,
    HTTPProtocolError,
    browser_request,
    protocol_error_reason,
)
from blockproof.lab.hostile import (
    DNS_BEHAVIOURS,
    FLOOD_REPLIES,
    MANY_RECORDS,
    TCP_MAX_MESSAGE,
    UDP_MAX_PAYLOAD,
    dns_replies,
)
from blockproof.lab.scenario import ScenarioError, parse_scenario
from blockproof.netx.dns import MAX_PARSED_RECORDS, _trimmed, judge_reply
from blockproof.netx.failures import classify

TRUTH = ("104.244.42.1",)

# behaviour -> the failure of every reply over (udp, tcp, doh)
EXPECTED: dict[str, tuple[str | None, str | None, str | None]] = {
    "compression_loop": ("dns_server_misbehaving",) * 3,
    "truncated": ("dns_server_misbehaving",) * 3,
    "wrong_id": ("dns_reply_with_wrong_query_id",) * 3,
    "wrong_question": ("dns_server_misbehaving",) * 3,
    # 10,000 records over DoH are a valid message of 160 KB: the DoH shell refuses it for
    # its size (a DNS message has at most 65,535 bytes), not judge_reply
    "many_records": ("dns_server_misbehaving", "dns_server_misbehaving", None),
    "max_records": (None, None, None),
    "reply_flood": ("dns_reply_with_wrong_query_id",) * 3,
}


def test_every_dns_behaviour_is_tested() -> None:
    assert set(EXPECTED) == set(DNS_BEHAVIOURS)


@pytest.mark.parametrize("behaviour", list(EXPECTED))
@pytest.mark.parametrize("transport", ["udp", "tcp", "doh"])
def test_hostile_replies_are_judged(behaviour: str, transport: str) -> None:
    query = build_query("x.com", "A")
    wires = dns_replies(behaviour, query.to_wire(), TRUTH, transport)
    expected = EXPECTED[behaviour][("udp", "tcp", "doh").index(transport)]
    assert wires
    for wire in wires:
        reply = judge_reply(query, wire)
        assert reply.failure == expected
        assert reply.raw == wire
        assert len(reply.answers) <= MAX_ANSWERS
        if len(wire) <= 2000:
            # small replies are judged exactly as the full parser judges them
            assert reply == analyze_reply(query, wire)


def test_reply_sizes_are_what_the_docs_say() -> None:
    query = build_query("x.com", "A").to_wire()
    udp = dns_replies("many_records", query, TRUTH, "udp")[0]
    tcp = dns_replies("many_records", query, TRUTH, "tcp")[0]
    doh = dns_replies("many_records", query, TRUTH, "doh")[0]
    assert len(udp) <= UDP_MAX_PAYLOAD
    assert len(tcp) <= TCP_MAX_MESSAGE
    for wire in (udp, tcp, doh):
        assert struct.unpack_from("!H", wire, 6)[0] == MANY_RECORDS  # ANCOUNT says 10,000
    head = 12 + 11  # the header and the question for x.com
    assert (len(udp) - head) // 16 == (UDP_MAX_PAYLOAD - head) // 16 == 4092
    assert (len(doh) - head) // 16 == MANY_RECORDS
    assert len(dns_replies("reply_flood", query, TRUTH, "udp")) == FLOOD_REPLIES
    assert len(dns_replies("reply_flood", query, TRUTH, "tcp")) == 1
    biggest = dns_replies("max_records", query, TRUTH, "udp")[0]
    assert len(biggest) <= UDP_MAX_PAYLOAD
    assert dns.message.from_wire(biggest).answer[0].__len__() == 4092


def test_a_large_valid_reply_is_parsed_only_as_far_as_kept() -> None:
    query = build_query("x.com", "A")
    wire = dns_replies("max_records", query.to_wire(), TRUTH, "udp")[0]
    trimmed = _trimmed(wire)
    assert trimmed is not None
    assert len(trimmed) < 12 + 20 + MAX_ANSWERS * 16
    full = analyze_reply(query, wire)
    judged = judge_reply(query, wire)
    assert judged.answers == full.answers[:MAX_ANSWERS]
    assert (judged.failure, judged.rcode, judged.raw) == (full.failure, full.rcode, wire)


def _reply(query: dns.message.Message, count: int, *, extra: int = 0) -> bytes:
    reply = dns.message.make_response(query)
    ips = [f"10.0.{i // 256}.{i % 256}" for i in range(count)]
    reply.answer.append(dns.rrset.from_text_list(query.question[0].name, 60, "IN", "A", ips))
    for i in range(extra):
        reply.additional.append(dns.rrset.from_text(f"n{i}.example.", 60, "IN", "A", "10.9.9.9"))
    return reply.to_wire(max_size=65535)


@pytest.mark.parametrize(
    ("count", "extra"), [(1, 0), (MAX_ANSWERS, 0), (MAX_ANSWERS + 1, 0), (300, 0), (10, 200)]
)
def test_judge_reply_agrees_with_the_full_parser(count: int, extra: int) -> None:
    query = build_query("x.com", "A")
    wire = _reply(query, count, extra=extra)
    full, judged = analyze_reply(query, wire), judge_reply(query, wire)
    assert (judged.failure, judged.rcode, judged.answers, judged.raw) == (
        full.failure, full.rcode, full.answers, full.raw,
    )  # fmt: skip


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda w: w[:-1], id="last record cut"),
        pytest.param(lambda w: w[:6] + struct.pack("!H", 400) + w[8:], id="ANCOUNT lies"),
        pytest.param(lambda w: w[:-16] + b"\x3f" + w[-15:], id="label runs past the end"),
    ],
)
def test_a_large_malformed_reply_is_misbehaving(mangle: Any) -> None:
    query = build_query("x.com", "A")
    wire = mangle(_reply(query, 300))
    assert struct.unpack_from("!H", wire, 6)[0] > MAX_PARSED_RECORDS
    assert judge_reply(query, wire).failure == "dns_server_misbehaving"
    assert analyze_reply(query, wire).failure == "dns_server_misbehaving"


# --- HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("illegal chunk header: bytearray(b'zz\\r\\n')", "illegal chunk header"),
        ("illegal status line: bytearray(b'\\xde\\xad')", "illegal status line"),
        ("Illegal header value b'\\x01\\x02'", "Illegal header value"),
        ("malformed chunk footer: b'xy' (expected b'\\r\\n')", "malformed chunk footer"),
        ("Only Transfer-Encoding: chunked is supported",
         "Only Transfer-Encoding: chunked is supported"),
        ("x" * 500, "x" * 80),
    ],
)  # fmt: skip
def test_protocol_error_reasons_carry_no_peer_bytes(text: str, reason: str) -> None:
    assert protocol_error_reason(h11.RemoteProtocolError(text)) == reason


def _exchange(data: bytes) -> HTTPExchange:
    exchange = HTTPExchange(browser_request("http://x.com/"))
    exchange.bytes_to_send()
    exchange.receive_data(data)
    return exchange


@pytest.mark.parametrize(
    ("data", "failure"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000,
         "unknown_failure: http protocol error: response header section over 65536 bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         "unknown_failure: http protocol error: illegal chunk header"),
        (b"\xde\xad\xbe\xef" * 100 + b"\r\n\r\n",
         "unknown_failure: http protocol error: illegal status line"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_INFORMATIONAL + 1),
         "unknown_failure: http protocol error: too many 1xx informational responses"),
    ],
)  # fmt: skip
def test_protocol_errors_become_short_fixed_failures(data: bytes, failure: str) -> None:
    with pytest.raises(HTTPProtocolError) as caught:
        _exchange(data)
    assert classify(caught.value) == failure


def test_a_few_1xx_responses_are_fine() -> None:
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    exchange = _exchange(b"HTTP/1.1 100 Continue\r\n\r\n" * MAX_INFORMATIONAL + final)
    response = exchange.response()
    assert exchange.done
    assert response is not None
    assert response.body == b"ok"


# --- scenario keys -----------------------------------------------------------------------


def _host(**keys: Any) -> dict[str, Any]:
    return {"host": [{"name": "h.example", "addresses": ["93.184.215.99"], **keys}]}


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        (_host(hostile="endless"), "host[0].hostile", "is not one of"),
        (_host(hostile="tls_garbage", https=False), "host[0].hostile", "https = false"),
        (_host(hostile="reset", blockpage="isp_pk_nayatel_block_optin"), "host[0].hostile",
         "not both"),
        ({"resolver": [{"match": ["x.com"]}]}, "resolver[0].hostile", "is required"),
        ({"resolver": [{"hostile": "loop"}]}, "resolver[0].hostile", "is not one of"),
        ({"resolver": [{"hostile": "wrong_id", "match": ["x*.com"]}]}, "resolver[0].match[0]",
         "only allowed"),
        ({"resolver": [{"hostile": "wrong_id", "answer": "1.2.3.4"}]}, "resolver[0].answer",
         "unknown key"),
    ],
)  # fmt: skip
def test_hostile_keys_are_checked(data: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, source="h.toml", name="h")
    assert caught.value.key == key
    assert words in caught.value.problem


def test_hostile_keys_load() -> None:
    scenario = parse_scenario(
        {**_host(hostile="endless_body"),
         "resolver": [{"hostile": "wrong_id", "match": ["*.x.com"]}, {"hostile": "truncated"}]},
        source="h.toml", name="h",
    )  # fmt: skip
    host = scenario.host("h.example")
    assert host is not None
    assert host.hostile == "endless_body"
    assert scenario.hostile_dns("api.x.com") == "wrong_id"
    assert scenario.hostile_dns("example.org") == "truncated"  # no match: every name
