"""Properties of the OONI codec (codec/ooni/) on generated model objects and JSON.

- model -> JSON text -> model is the identity, for every record type, the trace,
  the measurement envelope and the test-helper request and response;
- JSON -> model -> JSON is the identity for any measurement envelope;
- decoding any JSON (generated, or real samples with parts replaced) never
  raises, except ``DecodeError`` from the validating control decoders, and
  decoding what was encoded from a decoded record gives the same record.

tests/unit/test_codec.py has the hand-written cases and the classifier's
tolerance of any test keys; these generate the inputs instead.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import example
from hypothesis import strategies as st
from properties_kit import JSON_SCALARS, RUNS, explore, json_values, mutated_sample

from blockproof.codec import ooni
from blockproof.codec.ooni.envelope import ENVELOPE_SPECS
from blockproof.model.control import (
    ControlDNS,
    ControlHTTPRequest,
    ControlIPInfo,
    ControlRequest,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
)
from blockproof.model.measurement import Measurement
from blockproof.model.observations import (
    DNSAnswer,
    DNSQuery,
    HTTPRequest,
    HTTPResponse,
    HTTPTransaction,
    NetworkEvent,
    TCPConnect,
    TLSHandshake,
    Trace,
    join_endpoint,
)
from figures import Figures

TARGET = "OONI codec round trip"
pytestmark = pytest.mark.reliability

# ------------------------------------------------------------------ model strategies

text = st.text(max_size=16)


def _as_decoded(value: str) -> str:
    """The one spelling a decoder gives the bytes ``value`` stands for: escapes that
    together form valid UTF-8 (``\\udce9\\udc80\\udc80`` is the bytes of 退) read back as
    that text, as they would from the wire."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


# what the tolerant decoders make of bytes that are not UTF-8 (surrogateescape)
escaped_text = (
    st.lists(
        st.sampled_from(["a", "é", "\U0001f600", "\udc80", "\udcff", "\udce9", ":", " "]) | text,
        max_size=5,
    )
    .map("".join)
    .map(_as_decoded)
)
times = st.floats(0, 1e6, allow_nan=False) | st.sampled_from([0.0, 0.001, 12.5])
ids = st.integers(0, 2**53)
tags = st.lists(
    st.sampled_from(["classic", "depth=0", "depth=1", "fetch_body=true"]) | text, max_size=3
).map(tuple)
failures = st.none() | st.sampled_from(["connection_reset", "generic_timeout_error"]) | text
ips = st.ip_addresses().map(str)
ports = st.integers(1, 65535)
endpoints = st.builds(join_endpoint, ips, ports)
headers = st.lists(st.tuples(escaped_text, escaped_text), max_size=4).map(tuple)

answers = st.builds(
    DNSAnswer,
    answer_type=st.sampled_from(["A", "AAAA", "CNAME"]) | text,
    ipv4=st.none() | ips,
    ipv6=st.none() | ips,
    hostname=st.none() | text.filter(bool),
    ttl=st.none() | st.integers(0, 2**31),
    asn=st.integers(0, 2**32),
    as_org_name=text,
)
queries = st.builds(
    DNSQuery,
    engine=st.sampled_from(["udp", "getaddrinfo", "doh"]) | text,
    resolver_address=text,
    hostname=text,
    query_type=st.sampled_from(["A", "AAAA", "ANY"]),
    answers=st.lists(answers, max_size=3).map(tuple),
    failure=failures,
    rcode=st.none() | st.integers(0, 4095),
    raw_response=st.none() | st.binary(max_size=64),
    t0=times,
    t=times,
    tags=tags,
    transaction_id=ids,
)
connects = st.builds(
    TCPConnect,
    ip=ips,
    port=ports,
    failure=failures,
    t0=times,
    t=times,
    tags=tags,
    transaction_id=ids,
)
handshakes = st.builds(
    TLSHandshake,
    address=endpoints | text,
    server_name=text,
    failure=failures,
    network=st.sampled_from(["tcp", "udp"]),
    tls_version=text,
    cipher_suite=text,
    negotiated_protocol=text,
    no_tls_verify=st.booleans(),
    peer_certificates=st.lists(st.binary(max_size=40), max_size=3).map(tuple),
    t0=times,
    t=times,
    tags=tags,
    transaction_id=ids,
)
responses = st.builds(
    HTTPResponse,
    code=st.integers(0, 999),
    headers_list=headers,
    body=st.binary(max_size=64) | text.map(str.encode),
    body_is_truncated=st.booleans(),
)
transactions = st.builds(
    HTTPTransaction,
    request=st.builds(
        HTTPRequest,
        method=st.sampled_from(["GET", "POST"]),
        url=text,
        headers_list=headers,
        body=escaped_text,
    ),
    response=st.none() | responses,
    failure=failures,
    network=st.sampled_from(["tcp", "udp", ""]),
    address=endpoints | st.just(""),
    alpn=st.sampled_from(["", "h2", "http/1.1"]),
    t0=times,
    t=times,
    tags=tags,
    transaction_id=ids,
)
events = st.builds(
    NetworkEvent,
    operation=st.sampled_from(["connect", "read", "write"]) | text,
    address=endpoints | st.just(""),
    failure=failures,
    num_bytes=st.integers(0, 2**31),
    proto=st.sampled_from(["tcp", "udp", ""]),
    t0=times,
    t=times,
    tags=tags,
    transaction_id=ids,
)
traces = st.builds(
    Trace,
    queries=st.lists(queries, max_size=3),
    dns_duplicate_responses=st.lists(queries, max_size=2),
    tcp_connect=st.lists(connects, max_size=3),
    tls_handshakes=st.lists(handshakes, max_size=3),
    requests=st.lists(transactions, max_size=3),
    network_events=st.lists(events, max_size=3),
)

RECORDS = {
    "dns query": (queries, ooni.encode_query, ooni.decode_query),
    "dns answer": (answers, ooni.encode_answer, ooni.decode_answer),
    "tcp connect": (connects, ooni.encode_tcp_connect, ooni.decode_tcp_connect),
    "tls handshake": (handshakes, ooni.encode_tls_handshake, ooni.decode_tls_handshake),
    "http transaction": (
        transactions,
        ooni.encode_http_transaction,
        ooni.decode_http_transaction,
    ),
    "network event": (events, ooni.encode_network_event, ooni.decode_network_event),
}
record_kinds = st.sampled_from(sorted(RECORDS))


def _through_text(obj: Any) -> Any:
    """Out as JSON text and back in, as a stored measurement goes."""
    return orjson.loads(orjson.dumps(obj))


def _as_read(record: Any) -> Any:
    """What a record reads back as, where the wire has one spelling for two model values:
    OONI writes a transaction without a response as Go's zero response (code 0), and the
    classifier reads both the same way."""
    if isinstance(record, HTTPTransaction) and record.response is None:
        return replace(record, response=HTTPResponse(code=0))
    if isinstance(record, DNSAnswer):  # an empty address or name is written as none
        return replace(
            record,
            ipv4=record.ipv4 or None,
            ipv6=record.ipv6 or None,
            hostname=record.hostname or None,
        )
    return record


@example(
    kind="http transaction",
    data=HTTPTransaction(  # a request body read from base64 bytes that were not UTF-8
        request=HTTPRequest(method="POST", url="http://x.com/", body="caf\udce9"),
        response=HTTPResponse(code=200),
    ),
)
@example(
    kind="http transaction",
    data=HTTPTransaction(  # a header name read from base64 bytes that were not UTF-8
        request=HTTPRequest(method="GET", url="http://x.com/"),
        response=HTTPResponse(code=200, headers_list=(("X-\udcff", "v"), ("X-\udcfe", "w"))),
    ),
)
def prop_record_round_trip(kind: str, data: Any) -> None:
    strategy, encode, decode = RECORDS[kind]
    record = data.draw(strategy) if isinstance(data, st.DataObject) else data
    encoded = encode(record)
    assert decode(_through_text(encoded)) == _as_read(record)


@pytest.mark.parametrize("run", RUNS)
def test_records_round_trip_through_json_text(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_record_round_trip, kind=record_kinds, data=st.data())


def prop_trace_round_trip(trace: Trace) -> None:
    keys = _through_text(ooni.trace_to_test_keys(trace))
    back = ooni.trace_from_test_keys(keys)
    want = replace(
        trace,
        requests=[_as_read(r) for r in trace.requests],
        queries=[replace(q, answers=tuple(_as_read(a) for a in q.answers)) for q in trace.queries],
        dns_duplicate_responses=[
            replace(q, answers=tuple(_as_read(a) for a in q.answers))
            for q in trace.dns_duplicate_responses
        ],
    )
    assert back == want
    observations = ooni.web_observations_from_test_keys("https://x.com/", keys)
    assert observations.requests == tuple(want.requests)
    assert observations.tcp_connect == tuple(want.tcp_connect)


@pytest.mark.parametrize("run", RUNS)
def test_trace_round_trips_through_test_keys(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_trace_round_trip, traces, scale=0.5)


# ------------------------------------------------------------------ the envelope

json_value = json_values(max_leaves=8)
str_maps = st.dictionaries(text, text, max_size=3)
envelopes = st.builds(
    Measurement,
    test_name=text,
    test_version=text,
    input=st.none() | text,
    measurement_start_time=text,
    test_start_time=text,
    probe_cc=text,
    probe_asn=text,
    probe_ip=text,
    probe_network_name=text,
    report_id=text,
    resolver_asn=text,
    resolver_ip=text,
    resolver_network_name=text,
    software_name=text,
    software_version=text,
    data_format_version=text,
    test_runtime=st.floats(allow_nan=False, allow_infinity=False),
    annotations=str_maps,
    extensions=st.dictionaries(text, st.integers(-(2**53), 2**53), max_size=3),
    test_helpers=st.dictionaries(text, json_value, max_size=3),
    test_keys=st.dictionaries(text, json_value, max_size=4),
    extra=st.dictionaries(text.filter(lambda k: k not in ENVELOPE_SPECS), json_value, max_size=3),
)


def prop_measurement_model_round_trip(m: Measurement) -> None:
    assert ooni.measurement_from_json(_through_text(ooni.measurement_to_json(m))) == m


@pytest.mark.parametrize("run", RUNS)
def test_measurement_model_round_trip(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_measurement_model_round_trip, envelopes)


# raw envelopes: known keys with values of any JSON type, and unknown keys
ENVELOPE_KEYS = [
    *ENVELOPE_SPECS,
    "id",
    "input_hashes",
    "options",
    "probe_city",
    "probe_id",
    "measurement_uid",
    "x_signature",
    "extra",
    "absent",
]
raw_envelopes = st.dictionaries(st.sampled_from(ENVELOPE_KEYS) | text, json_value, max_size=12)


def prop_measurement_json_round_trip(obj: dict[str, Any]) -> None:
    back = ooni.measurement_to_json(ooni.measurement_from_json(obj))
    assert back == obj
    # the same types too (1 stays 1, not 1.0); the standard library writes lone surrogates
    assert json.dumps(back, sort_keys=True) == json.dumps(obj, sort_keys=True)


@pytest.mark.parametrize("run", RUNS)
def test_measurement_json_round_trip(run: str, figures: Figures) -> None:
    explore(
        figures,
        run,
        TARGET,
        prop_measurement_json_round_trip,
        raw_envelopes | mutated_sample().filter(lambda v: isinstance(v, dict)),
    )


# ------------------------------------------------------------------ control messages

# text, not lone surrogates: no JSON writer can send those
header_names = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters=":\r\n\0 "),
    min_size=1,
    max_size=12,
)
header_values = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\0"), max_size=24
)
hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){0,2}", fullmatch=True)
paths = st.from_regex(
    r"(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,10}){0,3}(\?[a-z0-9=&]{0,10})?", fullmatch=True
)
urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https"]),
    hosts | ips.map(lambda ip: f"[{ip}]" if ":" in ip else ip),
    st.just("") | ports.map(lambda p: f":{p}"),
    paths,
)
control_requests = st.builds(
    ControlRequest,
    http_request=urls,
    http_request_headers=st.dictionaries(
        header_names, st.lists(header_values, max_size=4), max_size=6
    ),
    tcp_connect=st.lists(endpoints, max_size=6).map(tuple),
    x_quic_enabled=st.booleans(),
)
control_responses = st.builds(
    ControlResponse,
    tcp_connect=st.dictionaries(
        endpoints,
        st.builds(ControlTCPConnect, status=st.booleans(), failure=failures),
        max_size=4,
    ),
    tls_handshake=st.dictionaries(
        endpoints,
        st.builds(ControlTLSHandshake, server_name=text, status=st.booleans(), failure=failures),
        max_size=3,
    ),
    http_request=st.none()
    | st.builds(
        ControlHTTPRequest,
        body_length=st.integers(-1, 2**40),
        failure=failures,
        title=text,
        headers=st.dictionaries(text, text, max_size=4),
        status_code=st.integers(-1, 999),
        discovered_h3_endpoint=text,
    ),
    dns=st.none()
    | st.builds(ControlDNS, failure=failures, addrs=st.lists(ips | text, max_size=4).map(tuple)),
    ip_info=st.dictionaries(
        ips,
        st.builds(ControlIPInfo, asn=st.integers(0, 2**32), flags=st.integers(0, 15)),
        max_size=3,
    ),
)


def prop_control_round_trip(request: ControlRequest, response: ControlResponse) -> None:
    sent = _through_text(ooni.control_request_to_json(request))
    assert ooni.control_request_from_json(sent) == request
    answered = _through_text(ooni.control_response_to_json(response))
    assert ooni.control_response_from_json(answered) == response
    assert ooni.decode_control_response(answered) == response


@pytest.mark.parametrize("run", RUNS)
def test_control_messages_round_trip(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_control_round_trip, control_requests, control_responses)


# ------------------------------------------------------------------ decoding any JSON

RECORD_KEYS = [
    "answers",
    "engine",
    "failure",
    "hostname",
    "query_type",
    "tags",
    "transaction_id",
    "ip",
    "port",
    "status",
    "success",
    "address",
    "server_name",
    "request",
    "response",
    "url",
    "code",
    "body",
    "headers",
    "headers_list",
    "dns",
    "addrs",
    "tcp_connect",
    "tls_handshake",
    "http_request",
    "http_request_headers",
    "ip_info",
    "flags",
    "asn",
    "ipv4",
    "ipv6",
    "answer_type",
    "status_code",
    "title",
    "body_length",
    "raw_response",
    "rcode",
    "t0",
    "t",
    "peer_certificates",
    "data",
    "format",
    "network",
    "num_bytes",
    "operation",
    "method",
    "body_is_truncated",
    "ttl",
    "x_quic_enabled",
    "queries",
    "requests",
    "tls_handshakes",
    "control",
    "control_failure",
    "network_events",
    "x_dns_duplicate_responses",
]
ODD_SCALARS = st.sampled_from(
    [
        "",
        "base64",
        "1.2.3.4:443",
        "[::1]:80",
        "[::1",
        "::1:80",
        "1.2.3.4:99999",
        "x.com:443",
        "https://x.com/",
        "http://[::1/",
        "ftp://x/",
        "https://x.com:0/",
        "aGk=",
        "-_8",
        "a",
        "\udce9",
        1e300,
        -0.0,
        2**63,
        -(2**63),
        2**64 - 1,
        3.5,
        True,
        None,
        "\x00",
        "٣",
    ]
)
odd_scalars = ODD_SCALARS | JSON_SCALARS
record_like = json_values(
    odd_scalars, st.sampled_from(RECORD_KEYS) | st.text(max_size=4), max_leaves=30
)

TOLERANT = [
    ooni.decode_query,
    ooni.decode_answer,
    ooni.decode_tcp_connect,
    ooni.decode_tls_handshake,
    ooni.decode_http_transaction,
    ooni.decode_network_event,
    ooni.decode_control_response,
    ooni.trace_from_test_keys,
    lambda v: ooni.web_observations_from_test_keys("https://x.com/", v),
    lambda v: ooni.web_observations_from_test_keys("https://x.com/", v, binary=False),
]
VALIDATING = [
    ooni.control_request_from_json,
    ooni.control_response_from_json,
    ooni.measurement_from_json,
]
REDECODABLE = {
    ooni.decode_query: ooni.encode_query,
    ooni.decode_answer: ooni.encode_answer,
    ooni.decode_tcp_connect: ooni.encode_tcp_connect,
    ooni.decode_tls_handshake: ooni.encode_tls_handshake,
    ooni.decode_http_transaction: ooni.encode_http_transaction,
    ooni.decode_network_event: ooni.encode_network_event,
}


def _ints_fit(value: Any) -> bool:
    """Every integer fits in 64 bits (what Go's and orjson's readers take)."""
    if isinstance(value, dict):
        return all(_ints_fit(v) for v in value.values())
    if isinstance(value, list):
        return all(_ints_fit(v) for v in value)
    return not isinstance(value, int) or -(2**63) <= value < 2**64


def _decode_everything(value: Any) -> None:
    for decode in TOLERANT:
        decoded = decode(value)
        encode = REDECODABLE.get(decode)
        if encode is not None:  # what was read, written and read again reads the same
            encoded = encode(decoded)
            assert _ints_fit(encoded), encoded
            assert decode(encoded) == _as_read(decoded)
    if isinstance(value, dict):
        ooni.trace_from_test_keys(value.get("test_keys"))
        ooni.decode_control_response(value.get("control"))
    for decode in VALIDATING:
        message = "accepted"
        try:
            decode(value)
        except ooni.DecodeError as exc:
            message = str(exc)
        assert message  # a refusal names what is wrong


@example(value={"response": {"headers_list": [[1.5, {"data": "\udce9"}]]}})
@example(value={"port": 1e300, "transaction_id": 2**70, "rcode": -1e30})  # found by atheris
@example(value={"tcp_connect": {"1.2.3.4:٣": {"status": True}}})
def prop_any_json_decodes(value: Any) -> None:
    _decode_everything(value)
    if isinstance(value, dict):
        for kind in ("queries", "tcp_connect", "tls_handshakes", "requests", "network_events"):
            items = value.get(kind)
            for item in items if isinstance(items, list) else []:
                _decode_everything(item)


@pytest.mark.parametrize("run", RUNS)
def test_decoding_any_json_raises_nothing_but_decode_error(run: str, figures: Figures) -> None:
    explore(
        figures,
        run,
        TARGET,
        prop_any_json_decodes,
        record_like | mutated_sample(odd_scalars | record_like),
    )
