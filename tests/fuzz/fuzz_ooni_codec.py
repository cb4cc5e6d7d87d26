"""Fuzz the OONI codec (codec/ooni/): any JSON decodes, and what is decoded round-trips.

Input: JSON text (seeds: the real OONI samples and their records), or, when the bytes
are not JSON, a JSON value built from them. Every tolerant decoder must accept it;
the validating ones may only raise ``DecodeError``; a decoded record written and read
again reads the same; a measurement envelope read and written is what was read.
See fuzzkit.py for how to run it.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import atheris
import orjson
from fuzzkit import json_from, main

with atheris.instrument_imports(include=["blockproof.codec"]):
    from blockproof.codec import ooni
    from blockproof.codec.jsonl import iter_json_objects
    from blockproof.model.observations import DNSAnswer, HTTPResponse, HTTPTransaction

DATA = Path(__file__).resolve().parents[1] / "data"
KEYS = [
    "answers",
    "failure",
    "hostname",
    "ip",
    "port",
    "status",
    "address",
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
    "ip_info",
    "data",
    "format",
    "raw_response",
    "peer_certificates",
    "t0",
    "t",
    "tags",
    "test_keys",
    "control",
    "queries",
    "requests",
    "tls_handshakes",
    "input",
    "test_runtime",
    "annotations",
    "1.2.3.4:443",
    "[::1]:80",
    "https://x.com/",
    "base64",
    "aGk=",
]
RECORDS = [
    (ooni.decode_query, ooni.encode_query),
    (ooni.decode_answer, ooni.encode_answer),
    (ooni.decode_tcp_connect, ooni.encode_tcp_connect),
    (ooni.decode_tls_handshake, ooni.encode_tls_handshake),
    (ooni.decode_http_transaction, ooni.encode_http_transaction),
    (ooni.decode_network_event, ooni.encode_network_event),
]


def _as_read(record: Any) -> Any:
    if isinstance(record, HTTPTransaction) and record.response is None:
        return replace(record, response=HTTPResponse(code=0))
    if isinstance(record, DNSAnswer):
        return replace(
            record,
            ipv4=record.ipv4 or None,
            ipv6=record.ipv6 or None,
            hostname=record.hostname or None,
        )
    return record


def check(value: Any) -> None:
    for decode, encode in RECORDS:
        decoded = decode(value)
        assert decode(orjson.loads(orjson.dumps(encode(decoded)))) == _as_read(decoded)
    ooni.trace_from_test_keys(value)
    ooni.web_observations_from_test_keys("https://x.com/", value, binary=False)
    control = ooni.decode_control_response(value)
    if control is not None:
        assert ooni.decode_control_response(ooni.control_response_to_json(control)) == control
    for validate in (ooni.control_request_from_json, ooni.control_response_from_json):
        with contextlib.suppress(ooni.DecodeError):
            validate(value)
    if isinstance(value, dict):
        assert ooni.measurement_to_json(ooni.measurement_from_json(value)) == value
        ooni.trace_from_test_keys(value.get("test_keys"))
    else:
        with contextlib.suppress(ooni.DecodeError):
            ooni.measurement_from_json(value)


def test_one_input(data: bytes) -> None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = json_from(atheris.FuzzedDataProvider(data), KEYS)
    check(value)
    if isinstance(value, dict):
        for kind in ("queries", "tcp_connect", "tls_handshakes", "requests", "network_events"):
            items = value.get(kind)
            for item in items if isinstance(items, list) else []:
                check(item)


def seeds() -> list[bytes]:
    found = []
    for path in sorted(DATA.glob("ooni/**/*.json*")):
        if not path.name.endswith((".json", ".json.gz")):
            continue
        for obj in iter_json_objects(path):
            found.append(orjson.dumps(obj))
            keys = obj.get("test_keys") if isinstance(obj.get("test_keys"), dict) else obj
            for kind in ("queries", "tcp_connect", "tls_handshakes", "requests", "control"):
                items = keys.get(kind)
                for item in (items if isinstance(items, list) else [items])[:3]:
                    found.append(orjson.dumps(item))
    return found[:400]


if __name__ == "__main__":
    main(test_one_input, seeds)
    sys.exit(0)
