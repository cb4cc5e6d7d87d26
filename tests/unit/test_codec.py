"""OONI JSON <-> model (codec.ooni) and the JSON-lines reader/writer (codec.jsonl).

Round trips of every record type, both ways: model -> JSON -> model, and, for
records written by Web Connectivity 0.5.28 (tests/data/ooni), JSON -> model ->
JSON. Validating decoders name the JSON path of what they refuse.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockproof.codec import ooni
from blockproof.codec.jsonl import BadRecord, dumps_line, iter_json_objects, write_jsonl
from blockproof.model.control import (
    ControlDNS,
    ControlHTTPRequest,
    ControlIPInfo,
    ControlRequest,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
)
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
)
from blockproof.model.verdict import Method, Verdict, WebConnectivityAnalysis

DATA = Path(__file__).resolve().parents[1] / "data" / "ooni"

# Measurements written by the current Web Connectivity (0.5.28): their records must
# survive decode -> encode unchanged.
LTE_0_5_28 = [
    DATA / "probe-cli-real" / "manual-8844.measurement.json",
    DATA / "probe-cli-real" / "manual-firefoxcom.measurement.json.gz",
    DATA / "probe-cli-real" / "manual-issue-2456.measurement.json.gz",
]


def load(path: Path) -> dict[str, Any]:
    (obj,) = iter_json_objects(path)
    return obj


# --------------------------------------------------------------------------------------
# records: model -> JSON -> model

QUERY = DNSQuery(
    engine="udp",
    resolver_address="8.8.8.8:53",
    hostname="x.com",
    query_type="A",
    answers=(
        DNSAnswer(answer_type="A", ipv4="104.244.42.1", ttl=300, asn=13414, as_org_name="X Corp"),
        DNSAnswer(answer_type="CNAME", hostname="x.com.cdn.example."),
        DNSAnswer(answer_type="AAAA", ipv6="2001:db8::1"),
    ),
    rcode=0,
    raw_response=b"\x12\x34\x81\x80\x00\x01",
    t0=0.001,
    t=0.052,
    tags=("depth=0",),
    transaction_id=3,
)
RECORDS: list[tuple[str, Any, Any, Any]] = [
    ("dns query", QUERY, ooni.encode_query, ooni.decode_query),
    (
        "dns failure",
        DNSQuery(
            engine="getaddrinfo",
            resolver_address="",
            hostname="x.com",
            query_type="ANY",
            failure="dns_nxdomain_error",
            t=0.2,
            tags=("classic", "depth=0"),
            transaction_id=1,
        ),
        ooni.encode_query,
        ooni.decode_query,
    ),
    (
        "tcp connect",
        TCPConnect(ip="2001:db8::1", port=443, failure="connection_refused", t0=0.1, t=0.2),
        ooni.encode_tcp_connect,
        ooni.decode_tcp_connect,
    ),
    (
        "tls handshake",
        TLSHandshake(
            address="104.244.42.1:443",
            server_name="x.com",
            tls_version="TLSv1.3",
            cipher_suite="TLS_AES_128_GCM_SHA256",
            negotiated_protocol="h2",
            peer_certificates=(b"\x30\x82leaf", b"\x30\x82ca"),
            t0=0.2,
            t=0.4,
            tags=("classic", "tcptls_experiment", "depth=0", "fetch_body=true"),
            transaction_id=5,
        ),
        ooni.encode_tls_handshake,
        ooni.decode_tls_handshake,
    ),
    (
        "tls failure",
        TLSHandshake(address="1.2.3.4:443", server_name="x.com", failure="connection_reset", t=1),
        ooni.encode_tls_handshake,
        ooni.decode_tls_handshake,
    ),
    (
        "http transaction",
        HTTPTransaction(
            request=HTTPRequest(
                method="GET",
                url="http://x.com/",
                headers_list=(("Host", "x.com"), ("Accept", "*/*")),
            ),
            response=HTTPResponse(
                code=200,
                headers_list=(("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Bin", "caf\xe9")),
                body=b"\x89PNG\r\n\x1a\n\xff binary",
                body_is_truncated=True,
            ),
            address="104.244.42.1:80",
            alpn="http/1.1",
            t0=0.5,
            t=0.9,
            tags=("depth=0", "fetch_body=true"),
            transaction_id=4,
        ),
        ooni.encode_http_transaction,
        ooni.decode_http_transaction,
    ),
    (
        "http failure",
        HTTPTransaction(
            request=HTTPRequest(method="GET", url="https://x.com/"),
            response=HTTPResponse(code=0),
            failure="generic_timeout_error",
            address="104.244.42.1:443",
            t=10,
            transaction_id=6,
        ),
        ooni.encode_http_transaction,
        ooni.decode_http_transaction,
    ),
    (
        "network event",
        NetworkEvent(
            operation="read", address="1.2.3.4:443", num_bytes=517, t0=0.3, t=0.31, tags=("a",)
        ),
        ooni.encode_network_event,
        ooni.decode_network_event,
    ),
]


@pytest.mark.parametrize(("record", "encode", "decode"), [r[1:] for r in RECORDS],
                         ids=[r[0] for r in RECORDS])  # fmt: skip
def test_record_round_trip(record: Any, encode: Any, decode: Any) -> None:
    encoded = encode(record)
    assert json.loads(json.dumps(encoded)) == encoded, "not plain JSON"
    assert decode(encoded) == record


def test_binary_values_are_written_as_base64_objects() -> None:
    encoded = ooni.encode_http_transaction(RECORDS[5][1])
    body = encoded["response"]["body"]
    assert body["format"] == "base64"
    assert encoded["response"]["headers"]["Set-Cookie"] == "a=1"  # first value, as Go does
    assert encoded["response"]["headers_list"][2] == ["X-Bin", "caf\xe9"]


def test_trace_round_trip_and_request_order() -> None:
    first = RECORDS[5][1]
    second = RECORDS[6][1]
    trace = Trace(queries=[QUERY], requests=[first, second], network_events=[RECORDS[7][1]])
    keys = ooni.trace_to_test_keys(trace)
    assert [r["transaction_id"] for r in keys["requests"]] == [6, 4]  # OONI: last one first
    assert ooni.trace_from_test_keys(keys) == trace


def test_web_observations_from_test_keys() -> None:
    trace = Trace(queries=[QUERY], requests=[RECORDS[5][1], RECORDS[6][1]])
    keys = ooni.trace_to_test_keys(trace)
    keys["control"] = ooni.control_response_to_json(CONTROL_RESPONSE)
    obs = ooni.web_observations_from_test_keys("http://x.com/", keys)
    assert obs.requests == (RECORDS[5][1], RECORDS[6][1])
    assert obs.control == CONTROL_RESPONSE
    keys["control_failure"] = "connection_reset"  # 0.4 probes leave a zero-valued control
    obs = ooni.web_observations_from_test_keys("http://x.com/", keys)
    assert (obs.control, obs.control_failure) == (None, "connection_reset")
    empty = ooni.web_observations_from_test_keys("http://x.com/", None)
    assert (empty.queries, empty.requests, empty.control) == ((), (), None)


def test_analysis_to_test_keys() -> None:
    analysis = WebConnectivityAnalysis(
        blocking="http-failure",
        accessible=False,
        dns_consistency="consistent",
        http_experiment_failure="connection_reset",
        x_blocking_flags=4,
        verdict=Verdict(method=Method.TLS, rule_id="wc.tls.reset", explanation="Reset."),
    )
    keys = ooni.analysis_to_test_keys(analysis)
    assert list(keys)[-3:] == ["blocking", "accessible", "x_verdict"]
    assert keys["x_verdict"] == {
        "method": "tls",
        "rule_id": "wc.tls.reset",
        "explanation": "Reset.",
    }
    assert keys["x_blocking_flags"] == 4
    assert "x_verdict" not in ooni.analysis_to_test_keys(
        WebConnectivityAnalysis(blocking=None, accessible=None)
    )


# --------------------------------------------------------------------------------------
# records: OONI JSON -> model -> JSON (Web Connectivity 0.5.28 as written by OONI)

_KINDS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "queries": (ooni.decode_query, ooni.encode_query),
    "x_dns_duplicate_responses": (ooni.decode_query, ooni.encode_query),
    "tcp_connect": (ooni.decode_tcp_connect, ooni.encode_tcp_connect),
    "tls_handshakes": (ooni.decode_tls_handshake, ooni.encode_tls_handshake),
    "requests": (ooni.decode_http_transaction, ooni.encode_http_transaction),
    "network_events": (ooni.decode_network_event, ooni.encode_network_event),
}


@pytest.mark.parametrize("path", LTE_0_5_28, ids=[p.name.split(".")[0] for p in LTE_0_5_28])
def test_ooni_records_survive_decode_encode(path: Path) -> None:
    keys = load(path)["test_keys"]
    seen = 0
    for kind, (decode, encode) in _KINDS.items():
        for index, record in enumerate(keys.get(kind) or []):
            assert encode(decode(record)) == record, f"{kind}[{index}]"
            seen += 1
    assert seen >= 5
    control = keys["control"]
    assert ooni.control_response_to_json(ooni.control_response_from_json(control)) == control
    decoded = ooni.decode_control_response(control)
    assert decoded is not None
    assert ooni.control_response_to_json(decoded) == control
    request = keys["x_control_request"]
    assert ooni.control_request_to_json(ooni.control_request_from_json(request)) == request


# --------------------------------------------------------------------------------------
# control messages

CONTROL_REQUEST = ControlRequest(
    http_request="https://x.com/",
    http_request_headers={"Accept-Language": ["en-US,en;q=0.9"], "User-Agent": ["probe"]},
    tcp_connect=("104.244.42.1:443", "[2001:db8::1]:443"),
)
CONTROL_RESPONSE = ControlResponse(
    tcp_connect={
        "104.244.42.1:443": ControlTCPConnect(status=True),
        "[2001:db8::1]:443": ControlTCPConnect(status=False, failure="connect_error"),
    },
    tls_handshake={"104.244.42.1:443": ControlTLSHandshake(server_name="x.com", status=True)},
    http_request=ControlHTTPRequest(
        body_length=1234, title="X", headers={"Server": "nginx"}, status_code=200
    ),
    dns=ControlDNS(addrs=("104.244.42.1", "2001:db8::1")),
    ip_info={"104.244.42.1": ControlIPInfo(asn=13414, flags=11)},
)


def test_control_round_trips() -> None:
    assert (
        ooni.control_request_from_json(ooni.control_request_to_json(CONTROL_REQUEST))
        == CONTROL_REQUEST
    )
    encoded = ooni.control_response_to_json(CONTROL_RESPONSE)
    assert ooni.control_response_from_json(encoded) == CONTROL_RESPONSE
    assert ooni.decode_control_response(encoded) == CONTROL_RESPONSE
    failed = ControlResponse(http_request=ControlHTTPRequest(failure="unknown_error"))
    encoded = ooni.control_response_to_json(failed)
    assert "tls_handshake" not in encoded  # Go's omitempty
    assert "ip_info" not in encoded
    assert ooni.control_response_from_json(encoded) == failed


def test_control_request_without_endpoints_is_null() -> None:
    request = ControlRequest(http_request="https://x.com/")
    assert ooni.control_request_to_json(request)["tcp_connect"] is None
    assert ooni.control_request_from_json(ooni.control_request_to_json(request)) == request


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a JSON object"),
        ({}, "http_request: missing"),
        ({"http_request": 3}, "http_request: not a string"),
        ({"http_request": "ftp://x.com/"}, "http_request: URL scheme must be http or https"),
        ({"http_request": "https:///"}, "http_request: URL has no host"),
        ({"http_request": "https://x.com/ a"}, "http_request: URL contains whitespace"),
        ({"http_request": "https://x.com:99999/"}, "http_request: not a valid URL"),
        (
            {"http_request": "https://x.com/", "tcp_connect": ["1.2.3.4:443", "x.com:443"]},
            "tcp_connect[1]: not an ip:port endpoint",
        ),
        (
            {"http_request": "https://x.com/", "tcp_connect": ["2001:db8::1:443"]},
            "tcp_connect[0]: not an ip:port endpoint",
        ),
        (
            {"http_request": "https://x.com/", "tcp_connect": ["1.2.3.4:443"] * 65},
            "tcp_connect: more than 64 items",
        ),
        (
            {"http_request": "https://x.com/", "http_request_headers": {"X": "v"}},
            "http_request_headers['X']: not a JSON array",
        ),
        (
            {"http_request": "https://x.com/", "http_request_headers": {"X": ["a\r\nB: c"]}},
            "http_request_headers['X']: header value contains CR, LF or NUL",
        ),
        (
            {"http_request": "https://x.com/", "http_request_headers": {"A B": ["v"]}},
            "http_request_headers['A B']: not a valid header name",
        ),
        ({"http_request": "https://x.com/", "x_quic_enabled": 1}, "x_quic_enabled: not a boolean"),
    ],
)
def test_control_request_errors_name_the_path(body: Any, message: str) -> None:
    with pytest.raises(ooni.DecodeError) as info:
        ooni.control_request_from_json(body)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("nope", "not a JSON object"),
        ({"tcp_connect": {"1.2.3.4": {"status": True}}}, "tcp_connect['1.2.3.4']: not an ip:port"),
        ({"tcp_connect": {"1.2.3.4:80": {"status": "yes"}}}, "tcp_connect['1.2.3.4:80'].status"),
        ({"tls_handshake": {"1.2.3.4:443": {"status": True}}}, "tls_handshake['1.2.3.4:443']."
         "server_name: not a string"),
        ({"http_request": {"status_code": "200"}}, "http_request.status_code: not an integer"),
        ({"http_request": {"headers": {"A": 1}}}, "http_request.headers['A']: not a string"),
        ({"dns": {"addrs": "1.2.3.4"}}, "dns.addrs: not a JSON array"),
        ({"ip_info": {"x": {"asn": 1, "flags": 1}}}, "ip_info['x']: not an IP address"),
        ({"ip_info": {"1.2.3.4": {"asn": 1.5, "flags": 1}}}, "ip_info['1.2.3.4'].asn"),
    ],
)  # fmt: skip
def test_control_response_errors_name_the_path(body: Any, message: str) -> None:
    with pytest.raises(ooni.DecodeError) as info:
        ooni.control_response_from_json(body)
    assert str(info.value).startswith(message)


def test_tolerant_control_decoder_never_raises() -> None:
    assert ooni.decode_control_response(None) is None
    odd = {"tcp_connect": {"1.2.3.4:80": {}}, "dns": {"addrs": None}, "http_request": []}
    decoded = ooni.decode_control_response(odd)
    assert decoded is not None
    assert decoded.tcp_connect["1.2.3.4:80"] == ControlTCPConnect(status=True)
    assert decoded.dns == ControlDNS()
    assert decoded.http_request is None


def test_tolerant_record_decoders_accept_old_shapes() -> None:
    old = {
        "failure": None,
        "request": {"headers": {"Accept": "*/*"}, "body": None, "url": "http://x.com/"},
        "response": {"body": {"format": "base64", "data": "aGk"}, "code": 200.0,
                     "headers": {"Location": {"format": "base64", "data": "aHR0cDovL3k="}}},
    }  # fmt: skip
    tx = ooni.decode_http_transaction(old)
    assert tx.request.headers_list == (("Accept", "*/*"),)
    assert tx.response is not None
    assert (tx.response.code, tx.response.body) == (200, b"hi")
    assert tx.response.header("location") == "http://y"
    urlsafe = {"response": {"code": 200, "body": {"format": "base64", "data": "-_8"}}}
    response = ooni.decode_http_transaction(urlsafe).response
    assert response is not None
    assert response.body == b"\xfb\xff"
    connect = ooni.decode_tcp_connect({"ip": "1.2.3.4", "port": 80, "status": {"success": False}})
    assert connect.failure is not None
    assert connect.failure.startswith("unknown_failure")
    assert ooni.decode_query("garbage") == DNSQuery(
        engine="", resolver_address="", hostname="", query_type=""
    )


# --------------------------------------------------------------------------------------
# the measurement envelope


def test_measurement_round_trip_keeps_odd_types_and_absent_keys() -> None:
    raw = {
        "input": ["a.example", "b.example"],  # meek writes a list
        "test_keys": None,
        "test_runtime": 3,  # an int, not a float
        "annotations": None,
        "test_name": "web_connectivity",
        "measurement_uid": "20240101000000.000000_IT_webconnectivity_0123456789abcdef",
        "x_custom": {"nested": [1, 2.5, None]},
    }
    m = ooni.measurement_from_json(raw)
    assert m.test_name == "web_connectivity"
    assert m.test_keys == {}
    assert m.input is None
    assert "probe_cc" in m.absent
    back = ooni.measurement_to_json(m)
    assert json.dumps(back, sort_keys=True) == json.dumps(raw, sort_keys=True)


def test_measurement_decode_error() -> None:
    with pytest.raises(ooni.DecodeError, match="measurement: not a JSON object"):
        ooni.measurement_from_json([1, 2])


def test_measurement_changed_after_reading_writes_the_new_value() -> None:
    m = ooni.measurement_from_json({"test_keys": None, "test_runtime": 3})
    m.test_keys = {"blocking": False}
    m.test_runtime = 2.5
    assert ooni.measurement_to_json(m) == {"test_keys": {"blocking": False}, "test_runtime": 2.5}


def _sample_paths() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.name.endswith((".json", ".json.gz")))


@pytest.mark.parametrize("path", _sample_paths(), ids=lambda p: p.name.split(".measurement")[0])
def test_measurement_round_trip_on_samples(path: Path) -> None:
    raw = load(path)
    back = ooni.measurement_to_json(ooni.measurement_from_json(raw))
    assert json.dumps(back, sort_keys=True) == json.dumps(raw, sort_keys=True)


# --------------------------------------------------------------------------------------
# JSON lines

OBJECTS = [{"a": 1}, {"b": "ü", "c": [1.5, None]}, {}]


def _jsonl(objects: list[Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("one.json", json.dumps(OBJECTS[0]).encode()),
        ("array.json", json.dumps(OBJECTS).encode()),
        ("lines.jsonl", _jsonl(OBJECTS)),
        ("lines.jsonl.gz", gzip.compress(_jsonl(OBJECTS))),
        ("array.json.gz", gzip.compress(json.dumps(OBJECTS).encode())),
        ("misnamed.json", _jsonl(OBJECTS)),  # a .json file holding JSON lines
        ("gzip-without-suffix.jsonl", gzip.compress(_jsonl(OBJECTS))),
        ("crlf-and-blank-lines.jsonl", b'{"a": 1}\r\n\r\n{"b": "\xc3\xbc", "c": [1.5, null]}\n{}'),
        ("bom.jsonl", b"\xef\xbb\xbf" + _jsonl(OBJECTS)),
    ],
)
def test_reader_formats(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    expected = OBJECTS[:1] if name == "one.json" else OBJECTS
    assert list(iter_json_objects(path)) == expected


def test_reader_reports_bad_lines_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl.gz"
    lines = [b'{"ok": 1}', b"{not json", b"[1, 2]", b'{"x": NaN}', b"\xff\xfe", b'{"ok": 2}']
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    bad: list[BadRecord] = []
    assert list(iter_json_objects(path, on_error=bad.append)) == [{"ok": 1}, {"ok": 2}]
    assert [(b.line, b.reason.split(" (")[0]) for b in bad] == [
        (2, "not valid JSON"),
        (3, "not a JSON object"),
        (4, "not valid JSON"),
        (5, "not valid UTF-8"),
    ]
    assert str(bad[0]).startswith(f"{path}:2: not valid JSON")
    with pytest.raises(BadRecord, match=r"mixed\.jsonl\.gz:2: not valid JSON"):
        list(iter_json_objects(path))


def test_reader_reports_array_items_and_truncated_gzip(tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_text('[{"a": 1}, 2, {"b": 2}]')
    bad: list[BadRecord] = []
    assert list(iter_json_objects(array, on_error=bad.append)) == [{"a": 1}, {"b": 2}]
    assert (bad[0].line, bad[0].index, bad[0].reason) == (1, 1, "not a JSON object")
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(_jsonl(OBJECTS * 200))[:-40])
    bad = []
    objects = list(iter_json_objects(truncated, on_error=bad.append))
    assert 0 < len(objects) < 600
    assert len(bad) == 1
    assert bad[0].reason.startswith("unreadable")


def test_reader_accepts_binary_streams() -> None:
    assert list(iter_json_objects(io.BytesIO(gzip.compress(_jsonl(OBJECTS))))) == OBJECTS


def test_writer_round_trips(tmp_path: Path) -> None:
    for name in ("out.jsonl", "out.jsonl.gz"):
        assert write_jsonl(tmp_path / name, OBJECTS) == 3
        assert list(iter_json_objects(tmp_path / name)) == OBJECTS
    assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()).count(b"\n") == 3
    text = io.StringIO()
    write_jsonl(text, OBJECTS)
    assert text.getvalue().splitlines()[1] == '{"b":"ü","c":[1.5,null]}'
    binary = io.BytesIO()
    write_jsonl(binary, OBJECTS)
    assert binary.getvalue().decode("utf-8") == text.getvalue()
    with pytest.raises(ValueError, match="Out of range float"):
        dumps_line({"x": float("nan")})


# --------------------------------------------------------------------------------------
# tolerance: any JSON gives observations, and the classifier never raises on them

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 600),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "1.2.3.4", "1.2.3.4:443", "[::1]:80", "x.com", "https://x.com/",
                     "getaddrinfo", "A", "AAAA", "depth=1", "classic", "fetch_body=true",
                     "generic_timeout_error", "eof_error", "dns_no_answer"]),
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_RECORD_KEYS = st.sampled_from(
    ["answers", "engine", "failure", "hostname", "query_type", "tags", "transaction_id", "ip",
     "port", "status", "address", "server_name", "request", "response", "url", "code", "body",
     "headers", "headers_list", "dns", "addrs", "tcp_connect", "tls_handshake", "http_request",
     "ip_info", "flags", "asn", "ipv4", "answer_type", "status_code", "title", "body_length"]
)  # fmt: skip
_RECORD = st.dictionaries(_RECORD_KEYS, _JSON, max_size=8)
_TEST_KEYS = st.fixed_dictionaries(
    {},
    optional={
        "queries": st.lists(_RECORD, max_size=3),
        "tcp_connect": st.lists(_RECORD, max_size=3),
        "tls_handshakes": st.lists(_RECORD, max_size=3),
        "requests": st.lists(_RECORD, max_size=3),
        "control": _RECORD,
        "control_failure": _SCALARS,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEST_KEYS, st.sampled_from(["https://x.com/", "http://x.com:8080/", "http://[::1/", ""]))
def test_any_json_test_keys_classify_without_raising(keys: dict[str, Any], url: str) -> None:
    from blockproof.core.webconnectivity import analyze

    result = analyze(ooni.web_observations_from_test_keys(url, keys))
    assert result.verdict is not None
    ooni.analysis_to_test_keys(result)


def test_an_int_enum_decodes_as_its_number_and_at_once() -> None:
    """dnspython's ``Rcode`` is an IntEnum: it reaches the decoder when a measurement is
    judged straight from memory (``measurement_to_json`` without a JSON round trip). A
    range test on it once walked 2**64 numbers one by one."""
    import time

    import dns.rcode

    from blockproof.codec.ooni import web_observations_from_test_keys

    started = time.monotonic()
    keys = {"queries": [{"hostname": "x.com", "rcode": dns.rcode.Rcode.NXDOMAIN, "answers": []}]}
    obs = web_observations_from_test_keys("https://x.com/", keys, binary=False)
    assert obs.queries[0].rcode == 3
    assert type(obs.queries[0].rcode) is int
    assert time.monotonic() - started < 1.0
