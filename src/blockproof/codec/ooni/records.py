"""Observation records: df-001 http, df-002 dns, df-005 tcp_connect, df-006 tls_handshake,
df-008 network event, each with a ``decode_*`` and an ``encode_*``.

Decoders are *tolerant* (see ``values``): they accept whatever ten years of OONI
probes wrote and never raise on a JSON object. Encoders write what Web
Connectivity 0.5 writes, in Go's key order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blockproof.codec.ooni.values import (
    JSON,
    b64decode_lenient,
    b64encode,
    encode_binary,
    encode_binary_str,
    read_bool,
    read_dict,
    read_float,
    read_int,
    read_list,
    read_maybe_binary_bytes,
    read_maybe_binary_str,
    read_opt_int,
    read_opt_str,
    read_str,
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
)


def _tags(value: Any) -> tuple[str, ...]:
    if not value or not isinstance(value, list):  # most records: null, or no tags
        return ()
    return tuple([tag for tag in value if isinstance(tag, str)])


def _nonempty_str(value: Any) -> str | None:
    """``read_opt_str(value) or None``."""
    return value if value and isinstance(value, str) else None


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
    get = read_dict(obj).get
    ttl = get("ttl")
    return DNSAnswer(
        answer_type=read_str(get("answer_type")),
        ipv4=_nonempty_str(get("ipv4")),
        ipv6=_nonempty_str(get("ipv6")),
        hostname=_nonempty_str(get("hostname")),
        ttl=None if ttl is None else read_opt_int(ttl),
        asn=read_int(get("asn")),
        as_org_name=read_str(get("as_org_name")),
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
    get = read_dict(obj).get
    raw = get("raw_response") if binary else None
    answers = get("answers")
    rcode = get("rcode")
    return DNSQuery(
        engine=read_str(get("engine")),
        resolver_address=read_str(get("resolver_address")),
        hostname=read_str(get("hostname")),
        query_type=read_str(get("query_type")),
        answers=tuple([decode_answer(a) for a in answers if isinstance(a, dict)])
        if answers and isinstance(answers, list)
        else (),
        failure=read_opt_str(get("failure")),
        rcode=None if rcode is None else read_opt_int(rcode),
        raw_response=b64decode_lenient(raw) if isinstance(raw, str) else None,
        t0=read_float(get("t0")),
        t=read_float(get("t")),
        tags=_tags(get("tags")),
        transaction_id=read_int(get("transaction_id")),
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
        out["raw_response"] = b64encode(query.raw_response)
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
    get = read_dict(obj).get
    status = read_dict(get("status"))
    failure = read_opt_str(status.get("failure"))
    if failure is None and status.get("success") is False:
        failure = "unknown_failure: no failure string recorded"
    return TCPConnect(
        ip=read_str(get("ip")),
        port=read_int(get("port")),
        failure=failure,
        t0=read_float(get("t0")),
        t=read_float(get("t")),
        tags=_tags(get("tags")),
        transaction_id=read_int(get("transaction_id")),
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
        return b64decode_lenient(value["data"])
    if isinstance(value, str):
        return b64decode_lenient(value)
    return None


def decode_tls_handshake(obj: Any, *, binary: bool = True) -> TLSHandshake:
    """``binary=False`` does not decode the certificates: ``peer_certificates`` then
    holds one empty placeholder per certificate (the chain's length, not its bytes)."""
    get = read_dict(obj).get
    listed = read_list(get("peer_certificates"))
    if binary:
        decoded = (_decode_certificate(c) for c in listed)
        certificates = tuple([c for c in decoded if c is not None])
    else:
        certificates = (b"",) * len(listed)
    return TLSHandshake(
        address=read_str(get("address")),
        server_name=read_str(get("server_name")),
        failure=read_opt_str(get("failure")),
        network=read_str(get("network"), "tcp"),
        tls_version=read_str(get("tls_version")),
        cipher_suite=read_str(get("cipher_suite")),
        negotiated_protocol=read_str(get("negotiated_protocol")),
        no_tls_verify=read_bool(get("no_tls_verify")),
        peer_certificates=certificates,
        t0=read_float(get("t0")),
        t=read_float(get("t")),
        tags=_tags(get("tags")),
        transaction_id=read_int(get("transaction_id")),
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
            {"data": b64encode(der), "format": "base64"} for der in handshake.peer_certificates
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
                name, value = pair
                # most names and values are plain strings: no call for those
                out.append(
                    (
                        name if isinstance(name, str) else read_maybe_binary_str(name),
                        value if isinstance(value, str) else read_maybe_binary_str(value),
                    )
                )
        return tuple(out)
    return tuple(
        (str(k), read_maybe_binary_str(v)) for k, v in read_dict(obj.get("headers")).items()
    )


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
    listed = [[encode_binary_str(k), encode_binary_str(v)] for k, v in pairs]
    mapped = {k: encode_binary_str(first[k]) for k in sorted(first)}
    return listed, mapped


def decode_http_transaction(obj: Any) -> HTTPTransaction:
    t = read_dict(obj)
    get = t.get
    req = read_dict(get("request"))
    request = HTTPRequest(
        method=read_str(req.get("method"), "GET"),
        url=read_str(req.get("url")),
        headers_list=_decode_headers(req),
        body=read_maybe_binary_str(req.get("body")),
    )
    response: HTTPResponse | None = None
    resp = get("response")
    if isinstance(resp, dict):
        response = HTTPResponse(
            code=read_int(resp.get("code")),
            headers_list=_decode_headers(resp),
            body=read_maybe_binary_bytes(resp.get("body")),
            body_is_truncated=read_bool(resp.get("body_is_truncated")),
        )
    return HTTPTransaction(
        request=request,
        response=response,
        failure=read_opt_str(get("failure")),
        network=read_str(get("network")),
        address=read_str(get("address")),
        alpn=read_str(get("alpn")),
        t0=read_float(get("t0")),
        t=read_float(get("t")),
        tags=_tags(get("tags")),
        transaction_id=read_int(get("transaction_id")),
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
        "body": encode_binary_str(tx.request.body),
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
        "body": encode_binary(response.body),
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
    e = read_dict(obj)
    return NetworkEvent(
        operation=read_str(e.get("operation")),
        address=read_str(e.get("address")),
        failure=read_opt_str(e.get("failure")),
        num_bytes=read_int(e.get("num_bytes")),
        proto=read_str(e.get("proto")),
        t0=read_float(e.get("t0")),
        t=read_float(e.get("t")),
        tags=_tags(e.get("tags")),
        transaction_id=read_int(e.get("transaction_id")),
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
