"""OONI JSON wire shapes <-> blockproof model. The only module that knows them.

Three kinds of functions live here:

- ``decode_*`` / ``encode_*``: one observation record (df-001 http, df-002 dns,
  df-005 tcp_connect, df-006 tls_handshake, df-008 network event). Decoders are
  *tolerant*: real OONI data spans ten years of probes (Python ooniprobe,
  measurement-kit, Web Connectivity 0.4 and 0.5), so they accept nulls, missing
  keys, ints written as floats, base64 bodies and headers, and never raise on a
  JSON object. Encoders write what Web Connectivity 0.5 writes, in Go's key order.
- ``measurement_from_json`` / ``measurement_to_json``: the df-000 envelope,
  lossless. ``test_keys`` stays JSON. Unknown keys go to ``Measurement.extra``;
  known keys missing on read are listed in ``Measurement.absent`` and omitted on
  write. A known key whose value has an unexpected JSON type (``"input": [...]``,
  ``"test_helpers": null``, ``"test_runtime": 3``) gets a best-effort typed value
  and its raw value is also kept in ``extra`` under the same key; on write the
  raw value wins as long as the typed field was not changed since.
- ``control_*_from_json``: *validating* decoders for the test-helper protocol,
  used by servers and clients facing untrusted input. They raise ``DecodeError``
  naming the JSON path of the offending value (``tcp_connect[3]: not an ip:port
  endpoint``). ``decode_control_response`` is the tolerant variant used when
  reading stored measurements.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

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
    split_endpoint,
)
from blockproof.model.verdict import WebConnectivityAnalysis
from blockproof.model.web import WebObservations

JSON = dict[str, Any]


class DecodeError(ValueError):
    """Invalid JSON input; the message starts with the JSON path of the bad value."""


# Bounds on what a control server accepts (OONI's own helper caps the body at 16 MiB).
MAX_URL_LENGTH = 8192
MAX_ENDPOINTS = 64
MAX_HEADERS = 64
MAX_HEADER_VALUES = 16
MAX_HEADER_FIELD_LENGTH = 8192
MAX_RESPONSE_ENTRIES = 512


# --------------------------------------------------------------------------------------
# tolerant scalar readers


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# Integers outside what OONI's Go probes and orjson read and write (64 bits) are unreadable:
# ``1e300`` is an integral double, but written back as 10**300 no reader would take it.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # int(): an IntEnum (dnspython's Rcode) is an int, but ``in range(...)`` walks
        # a range element by element for anything but an exact int
        number = int(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        return None
    return number if _INT_MIN <= number <= _INT_MAX else None


def _int(value: Any, default: int = 0) -> int:
    number = _opt_int(value)
    return default if number is None else number


def _float(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return default


def _bool(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _tags(value: Any) -> tuple[str, ...]:
    return tuple(tag for tag in _list(value) if isinstance(tag, str))


def _b64decode(data: str) -> bytes:
    """Lenient base64: tolerates missing padding and whitespace (seen in real data)."""
    text = "".join(data.split())
    if len(text) % 4 == 1:  # cannot be valid: drop the stray character
        text = text[:-1]
    text += "=" * (-len(text) % 4)
    # the standard alphabet silently drops "-" and "_": try the URL-safe one first for them
    decoders: list[Callable[[str], bytes]] = [base64.b64decode, base64.urlsafe_b64decode]
    if "-" in text or "_" in text:
        decoders.reverse()
    for decode in decoders:
        try:
            return decode(text)
        except (binascii.Error, ValueError):
            continue
    return text.encode("utf-8", "surrogatepass")


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _maybe_binary_bytes(value: Any) -> bytes:
    """A df-001 "maybe binary" value: a string, or ``{"format": "base64", "data": ...}``."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict) and isinstance(value.get("data"), str):
        return _b64decode(value["data"])
    return b""


def _maybe_binary_str(value: Any) -> str:
    """Like ``_maybe_binary_bytes`` but as text; undecodable bytes are surrogate-escaped."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("data"), str):
        return _b64decode(value["data"]).decode("utf-8", "surrogateescape")
    if isinstance(value, list) and value:  # some producers write header values as lists
        return _maybe_binary_str(value[0])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _encode_binary(data: bytes) -> str | JSON:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"data": _b64encode(data), "format": "base64"}


def _encode_binary_str(text: str) -> str | JSON:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
        return {"data": _b64encode(raw), "format": "base64"}
    return text


def _timing(obj: JSON) -> dict[str, Any]:
    """``t0`` (omitted when zero, as Go does) and ``t``."""
    out: dict[str, Any] = {}
    if obj["t0"]:
        out["t0"] = obj["t0"]
    out["t"] = obj["t"]
    return out


# --------------------------------------------------------------------------------------
# df-002 DNS


def decode_answer(obj: Any) -> DNSAnswer:
    a = _dict(obj)
    return DNSAnswer(
        answer_type=_str(a.get("answer_type")),
        ipv4=_opt_str(a.get("ipv4")) or None,
        ipv6=_opt_str(a.get("ipv6")) or None,
        hostname=_opt_str(a.get("hostname")) or None,
        ttl=_opt_int(a.get("ttl")),
        asn=_int(a.get("asn")),
        as_org_name=_str(a.get("as_org_name")),
    )


def encode_answer(answer: DNSAnswer) -> JSON:
    out: JSON = {}
    if answer.asn:
        out["asn"] = answer.asn
    if answer.as_org_name:
        out["as_org_name"] = answer.as_org_name
    out["answer_type"] = answer.answer_type
    for key in ("hostname", "ipv4", "ipv6"):
        value = getattr(answer, key)
        if value:
            out[key] = value
    out["ttl"] = answer.ttl
    return out


def decode_query(obj: Any, *, binary: bool = True) -> DNSQuery:
    """``binary=False`` skips decoding ``raw_response`` (left None)."""
    q = _dict(obj)
    raw = q.get("raw_response") if binary else None
    return DNSQuery(
        engine=_str(q.get("engine")),
        resolver_address=_str(q.get("resolver_address")),
        hostname=_str(q.get("hostname")),
        query_type=_str(q.get("query_type")),
        answers=tuple(decode_answer(a) for a in _list(q.get("answers")) if isinstance(a, dict)),
        failure=_opt_str(q.get("failure")),
        rcode=_opt_int(q.get("rcode")),
        raw_response=_b64decode(raw) if isinstance(raw, str) else None,
        t0=_float(q.get("t0")),
        t=_float(q.get("t")),
        tags=_tags(q.get("tags")),
        transaction_id=_int(q.get("transaction_id")),
    )


def encode_query(query: DNSQuery) -> JSON:
    out: JSON = {
        "answers": [encode_answer(a) for a in query.answers] or None,
        "engine": query.engine,
        "failure": query.failure,
        "hostname": query.hostname,
        "query_type": query.query_type,
    }
    if query.raw_response is not None:
        out["raw_response"] = _b64encode(query.raw_response)
    if query.rcode is not None:
        out["rcode"] = query.rcode
    out["resolver_hostname"] = None
    out["resolver_port"] = None
    out["resolver_address"] = query.resolver_address
    out.update(_timing({"t0": query.t0, "t": query.t}))
    out["tags"] = list(query.tags)
    if query.transaction_id:
        out["transaction_id"] = query.transaction_id
    return out


# --------------------------------------------------------------------------------------
# df-005 TCP connect


def decode_tcp_connect(obj: Any) -> TCPConnect:
    c = _dict(obj)
    status = _dict(c.get("status"))
    failure = _opt_str(status.get("failure"))
    if failure is None and status.get("success") is False:
        failure = "unknown_failure: no failure string recorded"
    return TCPConnect(
        ip=_str(c.get("ip")),
        port=_int(c.get("port")),
        failure=failure,
        t0=_float(c.get("t0")),
        t=_float(c.get("t")),
        tags=_tags(c.get("tags")),
        transaction_id=_int(c.get("transaction_id")),
    )


def encode_tcp_connect(connect: TCPConnect) -> JSON:
    out: JSON = {
        "ip": connect.ip,
        "port": connect.port,
        "status": {"failure": connect.failure, "success": connect.failure is None},
    }
    out.update(_timing({"t0": connect.t0, "t": connect.t}))
    out["tags"] = list(connect.tags)
    if connect.transaction_id:
        out["transaction_id"] = connect.transaction_id
    return out


# --------------------------------------------------------------------------------------
# df-006 TLS handshake


def _decode_certificate(value: Any) -> bytes | None:
    if isinstance(value, dict) and isinstance(value.get("data"), str):
        return _b64decode(value["data"])
    if isinstance(value, str):
        return _b64decode(value)
    return None


def decode_tls_handshake(obj: Any, *, binary: bool = True) -> TLSHandshake:
    """``binary=False`` does not decode the certificates: ``peer_certificates`` then
    holds one empty placeholder per certificate (the chain's length, not its bytes)."""
    h = _dict(obj)
    listed = _list(h.get("peer_certificates"))
    certs = (_decode_certificate(c) for c in listed) if binary else (b"" for _ in listed)
    return TLSHandshake(
        address=_str(h.get("address")),
        server_name=_str(h.get("server_name")),
        failure=_opt_str(h.get("failure")),
        network=_str(h.get("network"), "tcp"),
        tls_version=_str(h.get("tls_version")),
        cipher_suite=_str(h.get("cipher_suite")),
        negotiated_protocol=_str(h.get("negotiated_protocol")),
        no_tls_verify=_bool(h.get("no_tls_verify")),
        peer_certificates=tuple(c for c in certs if c is not None),
        t0=_float(h.get("t0")),
        t=_float(h.get("t")),
        tags=_tags(h.get("tags")),
        transaction_id=_int(h.get("transaction_id")),
    )


def encode_tls_handshake(handshake: TLSHandshake) -> JSON:
    out: JSON = {
        "network": handshake.network,
        "address": handshake.address,
        "cipher_suite": handshake.cipher_suite,
        "failure": handshake.failure,
        "negotiated_protocol": handshake.negotiated_protocol,
        "no_tls_verify": handshake.no_tls_verify,
        # Go writes null, not [], when there is no certificate (e.g. a failed handshake)
        "peer_certificates": [
            {"data": _b64encode(der), "format": "base64"} for der in handshake.peer_certificates
        ]
        or None,
        "server_name": handshake.server_name,
    }
    out.update(_timing({"t0": handshake.t0, "t": handshake.t}))
    out["tags"] = list(handshake.tags)
    out["tls_version"] = handshake.tls_version
    if handshake.transaction_id:
        out["transaction_id"] = handshake.transaction_id
    return out


# --------------------------------------------------------------------------------------
# df-001 HTTP


def _decode_headers(obj: JSON) -> tuple[tuple[str, str], ...]:
    """``headers_list`` when present, else the ``headers`` map (older probes wrote only that)."""
    pairs = obj.get("headers_list")
    if isinstance(pairs, list):
        out = []
        for pair in pairs:
            if isinstance(pair, list) and len(pair) == 2:
                out.append((_maybe_binary_str(pair[0]), _maybe_binary_str(pair[1])))
        return tuple(out)
    return tuple((str(k), _maybe_binary_str(v)) for k, v in _dict(obj.get("headers")).items())


def _text_key(text: str) -> str:
    """``text`` as a JSON object key: a key cannot be a base64 object, so bytes that are
    not UTF-8 (surrogate-escaped by the decoder) become U+FFFD, as Go writes them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "replace")
    return text


def _encode_headers(headers: Iterable[tuple[str, str]]) -> tuple[list[Any], JSON]:
    """``headers_list`` and the ``headers`` map of first values (sorted keys, as Go writes)."""
    pairs = list(headers)
    first: dict[str, str] = {}
    for key, value in pairs:
        first.setdefault(_text_key(key), value)
    listed = [[_encode_binary_str(k), _encode_binary_str(v)] for k, v in pairs]
    mapped = {k: _encode_binary_str(first[k]) for k in sorted(first)}
    return listed, mapped


def decode_http_transaction(obj: Any) -> HTTPTransaction:
    t = _dict(obj)
    req = _dict(t.get("request"))
    request = HTTPRequest(
        method=_str(req.get("method"), "GET"),
        url=_str(req.get("url")),
        headers_list=_decode_headers(req),
        body=_maybe_binary_str(req.get("body")),
    )
    response: HTTPResponse | None = None
    resp = t.get("response")
    if isinstance(resp, dict):
        response = HTTPResponse(
            code=_int(resp.get("code")),
            headers_list=_decode_headers(resp),
            body=_maybe_binary_bytes(resp.get("body")),
            body_is_truncated=_bool(resp.get("body_is_truncated")),
        )
    return HTTPTransaction(
        request=request,
        response=response,
        failure=_opt_str(t.get("failure")),
        network=_str(t.get("network")),
        address=_str(t.get("address")),
        alpn=_str(t.get("alpn")),
        t0=_float(t.get("t0")),
        t=_float(t.get("t")),
        tags=_tags(t.get("tags")),
        transaction_id=_int(t.get("transaction_id")),
    )


def encode_http_transaction(tx: HTTPTransaction) -> JSON:
    out: JSON = {}
    for key in ("network", "address", "alpn"):
        if getattr(tx, key):
            out[key] = getattr(tx, key)
    out["failure"] = tx.failure
    req_list, req_map = _encode_headers(tx.request.headers_list)
    out["request"] = {
        # the decoder surrogate-escapes a body that was not UTF-8: written back as base64
        "body": _encode_binary_str(tx.request.body),
        "body_is_truncated": False,
        "headers_list": req_list,
        "headers": req_map,
        "method": tx.request.method,
        "tor": {"exit_ip": None, "exit_name": None, "is_tor": False},
        "x_transport": tx.network or "tcp",
        "url": tx.request.url,
    }
    response = tx.response or HTTPResponse(code=0)
    resp_list, resp_map = _encode_headers(response.headers_list)
    out["response"] = {
        "body": _encode_binary(response.body),
        "body_is_truncated": response.body_is_truncated,
        "code": response.code,
        "headers_list": resp_list,
        "headers": resp_map,
    }
    out.update(_timing({"t0": tx.t0, "t": tx.t}))
    out["tags"] = list(tx.tags)
    if tx.transaction_id:
        out["transaction_id"] = tx.transaction_id
    return out


# --------------------------------------------------------------------------------------
# df-008 network events


def decode_network_event(obj: Any) -> NetworkEvent:
    e = _dict(obj)
    return NetworkEvent(
        operation=_str(e.get("operation")),
        address=_str(e.get("address")),
        failure=_opt_str(e.get("failure")),
        num_bytes=_int(e.get("num_bytes")),
        proto=_str(e.get("proto")),
        t0=_float(e.get("t0")),
        t=_float(e.get("t")),
        tags=_tags(e.get("tags")),
        transaction_id=_int(e.get("transaction_id")),
    )


def encode_network_event(event: NetworkEvent) -> JSON:
    out: JSON = {}
    if event.address:
        out["address"] = event.address
    out["failure"] = event.failure
    if event.num_bytes:
        out["num_bytes"] = event.num_bytes
    out["operation"] = event.operation
    if event.proto:
        out["proto"] = event.proto
    out.update(_timing({"t0": event.t0, "t": event.t}))
    if event.transaction_id:
        out["transaction_id"] = event.transaction_id
    if event.tags:
        out["tags"] = list(event.tags)
    return out


# --------------------------------------------------------------------------------------
# test_keys


def trace_to_test_keys(trace: Trace) -> JSON:
    """The observation keys of Web Connectivity ``test_keys``; ``requests`` last-first, as OONI."""
    return {
        "network_events": [encode_network_event(e) for e in trace.network_events],
        "x_dns_duplicate_responses": [encode_query(q) for q in trace.dns_duplicate_responses],
        "queries": [encode_query(q) for q in trace.queries],
        "requests": [encode_http_transaction(r) for r in reversed(trace.requests)],
        "tcp_connect": [encode_tcp_connect(c) for c in trace.tcp_connect],
        "tls_handshakes": [encode_tls_handshake(h) for h in trace.tls_handshakes],
    }


def trace_from_test_keys(test_keys: Mapping[str, Any] | None) -> Trace:
    """Inverse of ``trace_to_test_keys`` (tolerant); ``requests`` come back in time order.

    ``test_keys`` that are not an object (``null`` in some old measurements) read as empty.
    """
    if not isinstance(test_keys, Mapping):
        test_keys = {}
    requests = [decode_http_transaction(r) for r in _list(test_keys.get("requests"))]
    requests.reverse()
    return Trace(
        queries=[decode_query(q) for q in _list(test_keys.get("queries"))],
        dns_duplicate_responses=[
            decode_query(q) for q in _list(test_keys.get("x_dns_duplicate_responses"))
        ],
        tcp_connect=[decode_tcp_connect(c) for c in _list(test_keys.get("tcp_connect"))],
        tls_handshakes=[decode_tls_handshake(h) for h in _list(test_keys.get("tls_handshakes"))],
        requests=requests,
        network_events=[decode_network_event(e) for e in _list(test_keys.get("network_events"))],
    )


def web_observations_from_test_keys(
    input: str, test_keys: Mapping[str, Any] | None, *, binary: bool = True
) -> WebObservations:
    """The classifier's input from (possibly old) Web Connectivity ``test_keys``.

    When ``control_failure`` is set the control is treated as unavailable: probes of
    version 0.4 write a zero-valued ``control`` object in that case. ``test_keys``
    that are not an object (``null``) give observations with nothing in them.
    """
    if not isinstance(test_keys, Mapping):
        test_keys = {}
    # Only what the classifier reads: no network events, no duplicate DNS responses.
    requests = [decode_http_transaction(r) for r in _list(test_keys.get("requests"))]
    requests.reverse()
    trace = Trace(
        queries=[decode_query(q, binary=binary) for q in _list(test_keys.get("queries"))],
        tcp_connect=[decode_tcp_connect(c) for c in _list(test_keys.get("tcp_connect"))],
        tls_handshakes=[
            decode_tls_handshake(h, binary=binary) for h in _list(test_keys.get("tls_handshakes"))
        ],
        requests=requests,
    )
    control_failure = _opt_str(test_keys.get("control_failure"))
    control = None if control_failure else decode_control_response(test_keys.get("control"))
    return WebObservations(
        input=input,
        queries=tuple(trace.queries),
        tcp_connect=tuple(trace.tcp_connect),
        tls_handshakes=tuple(trace.tls_handshakes),
        requests=tuple(trace.requests),
        control=control,
        control_failure=control_failure,
    )


def analysis_to_test_keys(analysis: WebConnectivityAnalysis) -> JSON:
    """OONI's analysis keys (in Web Connectivity 0.5's order) plus ``x_verdict``."""
    out: JSON = {
        "x_dns_flags": analysis.x_dns_flags,
        "dns_experiment_failure": analysis.dns_experiment_failure,
        "dns_consistency": analysis.dns_consistency,
        "http_experiment_failure": analysis.http_experiment_failure,
        "x_blocking_flags": analysis.x_blocking_flags,
        "x_null_null_flags": analysis.x_null_null_flags,
        "body_proportion": analysis.body_proportion,
        "body_length_match": analysis.body_length_match,
        "headers_match": analysis.headers_match,
        "status_code_match": analysis.status_code_match,
        "title_match": analysis.title_match,
        "blocking": analysis.blocking,
        "accessible": analysis.accessible,
    }
    if analysis.verdict is not None:
        out["x_verdict"] = {
            "method": str(analysis.verdict.method),
            "rule_id": analysis.verdict.rule_id,
            "explanation": analysis.verdict.explanation,
        }
    return out


# --------------------------------------------------------------------------------------
# control (test helper) messages: tolerant decoding of stored data, and encoding


def _decode_control_tcp(value: Any) -> ControlTCPConnect:
    v = _dict(value)
    failure = _opt_str(v.get("failure"))
    return ControlTCPConnect(status=_bool(v.get("status"), failure is None), failure=failure)


def decode_control_response(obj: Any) -> ControlResponse | None:
    """Tolerant decoder for a stored ``control`` object; ``None`` if it is not an object."""
    if not isinstance(obj, dict):
        return None
    http: ControlHTTPRequest | None = None
    h = obj.get("http_request")
    if isinstance(h, dict):
        http = ControlHTTPRequest(
            body_length=_int(h.get("body_length"), -1),
            failure=_opt_str(h.get("failure")),
            title=_str(h.get("title")),
            headers={str(k): _maybe_binary_str(v) for k, v in _dict(h.get("headers")).items()},
            status_code=_int(h.get("status_code"), -1),
            discovered_h3_endpoint=_str(h.get("discovered_h3_endpoint")),
        )
    dns: ControlDNS | None = None
    d = obj.get("dns")
    if isinstance(d, dict):
        addrs = tuple(a for a in _list(d.get("addrs")) if isinstance(a, str))
        dns = ControlDNS(failure=_opt_str(d.get("failure")), addrs=addrs)
    return ControlResponse(
        tcp_connect={
            str(k): _decode_control_tcp(v) for k, v in _dict(obj.get("tcp_connect")).items()
        },
        tls_handshake={
            str(k): ControlTLSHandshake(
                server_name=_str(_dict(v).get("server_name")),
                status=_bool(_dict(v).get("status")),
                failure=_opt_str(_dict(v).get("failure")),
            )
            for k, v in _dict(obj.get("tls_handshake")).items()
        },
        http_request=http,
        dns=dns,
        ip_info={
            str(k): ControlIPInfo(asn=_int(_dict(v).get("asn")), flags=_int(_dict(v).get("flags")))
            for k, v in _dict(obj.get("ip_info")).items()
        },
    )


def control_response_to_json(response: ControlResponse) -> JSON:
    """THResponse, keys in oohelperd's order; absent parts (``None``) are omitted, and so
    are an empty ``tls_handshake`` and ``ip_info`` (``omitempty`` in OONI's Go struct)."""
    out: JSON = {
        "tcp_connect": {
            k: {"status": v.status, "failure": v.failure} for k, v in response.tcp_connect.items()
        },
    }
    if response.tls_handshake:
        out["tls_handshake"] = {
            k: {"server_name": v.server_name, "status": v.status, "failure": v.failure}
            for k, v in response.tls_handshake.items()
        }
    out["quic_handshake"] = {}
    if response.http_request is not None:
        h = response.http_request
        out["http_request"] = {
            "body_length": h.body_length,
            "discovered_h3_endpoint": h.discovered_h3_endpoint,
            "failure": h.failure,
            "title": h.title,
            "headers": dict(h.headers),
            "status_code": h.status_code,
        }
    out["http3_request"] = None
    if response.dns is not None:
        out["dns"] = {"failure": response.dns.failure, "addrs": list(response.dns.addrs)}
    if response.ip_info:
        out["ip_info"] = {k: {"asn": v.asn, "flags": v.flags} for k, v in response.ip_info.items()}
    return out


def control_request_to_json(request: ControlRequest) -> JSON:
    """THRequest; no endpoint is written ``null``, as OONI's probe does."""
    return {
        "http_request": request.http_request,
        "http_request_headers": {k: list(v) for k, v in request.http_request_headers.items()},
        "tcp_connect": list(request.tcp_connect) or None,
        "x_quic_enabled": request.x_quic_enabled,
    }


# --------------------------------------------------------------------------------------
# validating decoders (untrusted input)


def _fail(path: str, message: str) -> DecodeError:
    return DecodeError(f"{path}: {message}" if path else message)


def _v_object(value: Any, path: str) -> JSON:
    if not isinstance(value, dict):
        raise _fail(path, "not a JSON object")
    return value


def _v_str(value: Any, path: str, *, max_length: int = MAX_HEADER_FIELD_LENGTH) -> str:
    if not isinstance(value, str):
        raise _fail(path, "not a string")
    if len(value) > max_length:
        raise _fail(path, f"longer than {max_length} characters")
    return value


def _v_opt_str(value: Any, path: str) -> str | None:
    return None if value is None else _v_str(value, path)


def _v_int(value: Any, path: str) -> int:
    number = _opt_int(value)
    if number is None:
        raise _fail(path, "not an integer")
    return number


def _v_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "not a boolean")
    return value


def _v_list(value: Any, path: str, max_items: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, "not a JSON array")
    if len(value) > max_items:
        raise _fail(path, f"more than {max_items} items")
    return value


def _v_map(value: Any, path: str, max_items: int) -> JSON:
    obj = _v_object(value, path)
    if len(obj) > max_items:
        raise _fail(path, f"more than {max_items} entries")
    return obj


def _v_ip(value: Any, path: str) -> str:
    text = _v_str(value, path, max_length=64)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise _fail(path, "not an IP address") from None
    return text


def _v_endpoint(value: Any, path: str) -> str:
    text = _v_str(value, path, max_length=64)
    try:
        ip, port = split_endpoint(text)
        ipaddress.ip_address(ip)
    except ValueError:
        raise _fail(path, "not an ip:port endpoint") from None
    if join_endpoint(ip, port) != text:  # IPv6 must be bracketed, no leading zeros in port
        raise _fail(path, "not an ip:port endpoint")
    return text


def _v_url(value: Any, path: str) -> str:
    text = _v_str(value, path, max_length=MAX_URL_LENGTH)
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise _fail(path, "URL contains whitespace or control characters")
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises on a bad port
    except ValueError:
        raise _fail(path, "not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise _fail(path, "URL scheme must be http or https")
    if not parts.hostname:
        raise _fail(path, "URL has no host")
    return text


def _v_entries(
    value: Any, path: str, key_check: Callable[[Any, str], str], item: Callable[[Any, str], Any]
) -> dict[str, Any]:
    obj = _v_map(value, path, MAX_RESPONSE_ENTRIES)
    return {key_check(k, f"{path}[{k!r}]"): item(v, f"{path}[{k!r}]") for k, v in obj.items()}


def control_request_from_json(obj: Any) -> ControlRequest:
    """Validate a THRequest (untrusted: this is what a control server receives)."""
    body = _v_object(obj, "")
    if "http_request" not in body:
        raise _fail("http_request", "missing")
    url = _v_url(body["http_request"], "http_request")

    headers: dict[str, list[str]] = {}
    raw_headers = body.get("http_request_headers")
    if raw_headers is not None:
        for name, values in _v_map(raw_headers, "http_request_headers", MAX_HEADERS).items():
            path = f"http_request_headers[{name!r}]"
            _v_str(name, path)
            if not name or any(ch in name for ch in ":\r\n\0 "):
                raise _fail(path, "not a valid header name")
            items = _v_list(values, path, MAX_HEADER_VALUES)
            checked = [_v_str(v, f"{path}[{i}]") for i, v in enumerate(items)]
            if any(ch in v for v in checked for ch in "\r\n\0"):
                raise _fail(path, "header value contains CR, LF or NUL")
            headers[name] = checked

    endpoints: tuple[str, ...] = ()
    raw_endpoints = body.get("tcp_connect")
    if raw_endpoints is not None:
        items = _v_list(raw_endpoints, "tcp_connect", MAX_ENDPOINTS)
        endpoints = tuple(_v_endpoint(e, f"tcp_connect[{i}]") for i, e in enumerate(items))

    quic = body.get("x_quic_enabled", False)
    return ControlRequest(
        http_request=url,
        http_request_headers=headers,
        tcp_connect=endpoints,
        x_quic_enabled=_v_bool(quic, "x_quic_enabled"),
    )


def _v_control_tcp(value: Any, path: str) -> ControlTCPConnect:
    v = _v_object(value, path)
    return ControlTCPConnect(
        status=_v_bool(v.get("status"), f"{path}.status"),
        failure=_v_opt_str(v.get("failure"), f"{path}.failure"),
    )


def _v_control_tls(value: Any, path: str) -> ControlTLSHandshake:
    v = _v_object(value, path)
    return ControlTLSHandshake(
        server_name=_v_str(v.get("server_name"), f"{path}.server_name"),
        status=_v_bool(v.get("status"), f"{path}.status"),
        failure=_v_opt_str(v.get("failure"), f"{path}.failure"),
    )


def _v_ip_info(value: Any, path: str) -> ControlIPInfo:
    v = _v_object(value, path)
    return ControlIPInfo(
        asn=_v_int(v.get("asn"), f"{path}.asn"), flags=_v_int(v.get("flags"), f"{path}.flags")
    )


def _v_control_http(value: Any, path: str) -> ControlHTTPRequest:
    v = _v_object(value, path)
    headers = {
        _v_str(k, f"{path}.headers"): _v_str(val, f"{path}.headers[{k!r}]")
        for k, val in _v_map(
            v.get("headers") or {}, f"{path}.headers", MAX_RESPONSE_ENTRIES
        ).items()
    }
    return ControlHTTPRequest(
        body_length=_v_int(v.get("body_length", -1), f"{path}.body_length"),
        failure=_v_opt_str(v.get("failure"), f"{path}.failure"),
        title=_v_str(v.get("title", ""), f"{path}.title"),
        headers=headers,
        status_code=_v_int(v.get("status_code", -1), f"{path}.status_code"),
        discovered_h3_endpoint=_v_str(
            v.get("discovered_h3_endpoint", ""), f"{path}.discovered_h3_endpoint"
        ),
    )


def _v_control_dns(value: Any, path: str) -> ControlDNS:
    v = _v_object(value, path)
    raw = v.get("addrs")
    addrs = [] if raw is None else _v_list(raw, f"{path}.addrs", MAX_RESPONSE_ENTRIES)
    return ControlDNS(
        failure=_v_opt_str(v.get("failure"), f"{path}.failure"),
        addrs=tuple(_v_str(a, f"{path}.addrs[{i}]", max_length=256) for i, a in enumerate(addrs)),
    )


def control_response_from_json(obj: Any) -> ControlResponse:
    """Validate a THResponse (untrusted: this is what a probe receives from a server)."""
    body = _v_object(obj, "")
    http = body.get("http_request")
    dns = body.get("dns")
    return ControlResponse(
        tcp_connect=_v_entries(
            body.get("tcp_connect") or {}, "tcp_connect", _v_endpoint, _v_control_tcp
        ),
        tls_handshake=_v_entries(
            body.get("tls_handshake") or {}, "tls_handshake", _v_endpoint, _v_control_tls
        ),
        http_request=None if http is None else _v_control_http(http, "http_request"),
        dns=None if dns is None else _v_control_dns(dns, "dns"),
        ip_info=_v_entries(body.get("ip_info") or {}, "ip_info", _v_ip, _v_ip_info),
    )


# --------------------------------------------------------------------------------------
# df-000 envelope


def _fits_str(value: Any) -> bool:
    return isinstance(value, str)


def _fits_opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _fits_float(value: Any) -> bool:
    return isinstance(value, float)


def _fits_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _fits_int_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    )


def _fits_object(value: Any) -> bool:
    return isinstance(value, dict)


def _coerce_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _coerce_opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _coerce_float(value: Any) -> float:
    return _float(value)


def _coerce_str_map(value: Any) -> dict[str, str]:
    return {str(k): v for k, v in _dict(value).items() if isinstance(v, str)}


def _coerce_int_map(value: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in _dict(value).items():
        number = _opt_int(v)
        if number is not None:
            out[str(k)] = number
    return out


def _coerce_object(value: Any) -> dict[str, Any]:
    return dict(_dict(value))


_Spec = tuple[Callable[[Any], bool], Callable[[Any], Any]]
_STR: _Spec = (_fits_str, _coerce_str)

# Known envelope keys, in the order OONI's probe writes them (Go struct order).
_ENVELOPE: dict[str, _Spec] = {
    "annotations": (_fits_str_map, _coerce_str_map),
    "data_format_version": _STR,
    "extensions": (_fits_int_map, _coerce_int_map),
    "input": (_fits_opt_str, _coerce_opt_str),
    "measurement_start_time": _STR,
    "probe_asn": _STR,
    "probe_cc": _STR,
    "probe_ip": _STR,
    "probe_network_name": _STR,
    "report_id": _STR,
    "resolver_asn": _STR,
    "resolver_ip": _STR,
    "resolver_network_name": _STR,
    "software_name": _STR,
    "software_version": _STR,
    "test_helpers": (_fits_object, _coerce_object),
    "test_keys": (_fits_object, _coerce_object),
    "test_name": _STR,
    "test_runtime": (_fits_float, _coerce_float),
    "test_start_time": _STR,
    "test_version": _STR,
}

# Where OONI writes the keys blockproof does not model: after the first of these present.
_EXTRA_ORDER: dict[str, tuple[str, ...]] = {
    "id": ("extensions", "data_format_version", "annotations"),
    "input_hashes": ("input",),
    "options": ("measurement_start_time",),
    "probe_city": ("probe_cc",),
    "probe_id": ("probe_network_name", "probe_ip"),
    "measurement_uid": ("report_id",),
}


def _default_of(key: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(Measurement)}[key]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return _ENVELOPE[key][1](None)


def measurement_from_json(obj: Any) -> Measurement:
    """Decode a df-000 measurement; raises ``DecodeError`` only if ``obj`` is not an object."""
    if not isinstance(obj, dict):
        raise DecodeError("measurement: not a JSON object")
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    absent: set[str] = set()
    for key, (fits, coerce) in _ENVELOPE.items():
        if key not in obj:
            absent.add(key)
            fields[key] = _default_of(key)
            continue
        value = obj[key]
        fields[key] = coerce(value)
        if not fits(value):
            extra[key] = value
    for key, value in obj.items():
        if key not in _ENVELOPE:
            extra[key] = value
    return Measurement(**fields, extra=extra, absent=frozenset(absent))


def measurement_to_json(m: Measurement) -> JSON:
    """Encode a df-000 measurement; inverse of ``measurement_from_json``."""
    known: JSON = {}
    for key, (_, coerce) in _ENVELOPE.items():
        value = getattr(m, key)
        if key in m.absent and value == _default_of(key):
            continue
        if key in m.extra and coerce(m.extra[key]) == value:
            value = m.extra[key]  # the raw value read, unchanged since
        known[key] = value
    pending = {k: v for k, v in m.extra.items() if k not in _ENVELOPE}
    after: dict[str, list[str]] = {}
    for key, anchors in _EXTRA_ORDER.items():
        anchor = next((a for a in anchors if a in known), None)
        if key in pending and anchor is not None:
            after.setdefault(anchor, []).append(key)
    out: JSON = {}
    for key, value in known.items():
        out[key] = value
        for extra_key in after.get(key, ()):
            out[extra_key] = pending.pop(extra_key)
    out.update(pending)
    return out
