"""The test-helper (control) protocol: THRequest and THResponse as JSON.

``decode_control_response`` is tolerant, for the ``control`` object stored in
measurements. ``control_request_from_json`` and ``control_response_from_json``
are *validating* decoders for servers and clients facing untrusted input: they
enforce the ``MAX_*`` bounds and raise ``DecodeError`` naming the JSON path of
the offending value (``tcp_connect[3]: not an ip:port endpoint``). The encoders
write oohelperd's key order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from blockproof.codec.ooni.values import (
    JSON,
    DecodeError,
    read_bool,
    read_dict,
    read_int,
    read_list,
    read_maybe_binary_str,
    read_opt_int,
    read_opt_str,
    read_str,
)
from blockproof.model.control import (
    ControlDNS,
    ControlHTTPRequest,
    ControlIPInfo,
    ControlRequest,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
)
from blockproof.model.observations import join_endpoint, split_endpoint

# Bounds on what a control server accepts (OONI's own helper caps the body at 16 MiB).
MAX_URL_LENGTH = 8192
MAX_ENDPOINTS = 64
MAX_HEADERS = 64
MAX_HEADER_VALUES = 16
MAX_HEADER_FIELD_LENGTH = 8192
MAX_RESPONSE_ENTRIES = 512


# --------------------------------------------------------------------------------------
# control (test helper) messages: tolerant decoding of stored data, and encoding


# The control's per-endpoint results are small frozen values that repeat (most connects
# succeed, the same networks recur): one shared instance per distinct value, instead of
# a new dataclass per entry.
@lru_cache(maxsize=4096)
def _control_tcp(status: bool, failure: str | None) -> ControlTCPConnect:
    return ControlTCPConnect(status=status, failure=failure)


@lru_cache(maxsize=4096)
def _control_tls(server_name: str, status: bool, failure: str | None) -> ControlTLSHandshake:
    return ControlTLSHandshake(server_name=server_name, status=status, failure=failure)


@lru_cache(maxsize=4096)
def _control_ip_info(asn: int, flags: int) -> ControlIPInfo:
    return ControlIPInfo(asn=asn, flags=flags)


def _decode_control_tcp(value: Any) -> ControlTCPConnect:
    v = read_dict(value)
    failure = read_opt_str(v.get("failure"))
    return _control_tcp(read_bool(v.get("status"), failure is None), failure)


def _decode_control_tls(value: Any) -> ControlTLSHandshake:
    get = read_dict(value).get
    return _control_tls(
        read_str(get("server_name")), read_bool(get("status")), read_opt_str(get("failure"))
    )


def _decode_ip_info(value: Any) -> ControlIPInfo:
    get = read_dict(value).get
    return _control_ip_info(read_int(get("asn")), read_int(get("flags")))


def _decode_header_map(value: Any) -> dict[str, str]:
    # most names and values are plain strings: no call for those
    return {
        str(k): v if isinstance(v, str) else read_maybe_binary_str(v)
        for k, v in read_dict(value).items()
    }


def decode_control_response(obj: Any) -> ControlResponse | None:
    """Tolerant decoder for a stored ``control`` object; ``None`` if it is not an object."""
    if not isinstance(obj, dict):
        return None
    get = obj.get
    http: ControlHTTPRequest | None = None
    h = get("http_request")
    if isinstance(h, dict):
        http = ControlHTTPRequest(
            body_length=read_int(h.get("body_length"), -1),
            failure=read_opt_str(h.get("failure")),
            title=read_str(h.get("title")),
            headers=_decode_header_map(h.get("headers")),
            status_code=read_int(h.get("status_code"), -1),
            discovered_h3_endpoint=read_str(h.get("discovered_h3_endpoint")),
        )
    dns: ControlDNS | None = None
    d = get("dns")
    if isinstance(d, dict):
        addrs = tuple([a for a in read_list(d.get("addrs")) if isinstance(a, str)])
        dns = ControlDNS(failure=read_opt_str(d.get("failure")), addrs=addrs)
    return ControlResponse(
        tcp_connect={
            str(k): _decode_control_tcp(v) for k, v in read_dict(get("tcp_connect")).items()
        },
        tls_handshake={
            str(k): _decode_control_tls(v) for k, v in read_dict(get("tls_handshake")).items()
        },
        http_request=http,
        dns=dns,
        ip_info={str(k): _decode_ip_info(v) for k, v in read_dict(get("ip_info")).items()},
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
    number = read_opt_int(value)
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
