"""OONI JSON wire shapes <-> blockproof model. The only package that knows them.

The parts, each in its own module (the dependencies run one way, up this list):

``values``
    Tolerant readers of JSON values (nulls, missing keys, ints written as floats,
    base64 bodies and headers; they never raise), and ``DecodeError``.
``records``
    ``decode_*`` / ``encode_*`` for one observation record (df-001 http, df-002
    dns, df-005 tcp_connect, df-006 tls_handshake, df-008 network event).
    Decoders are tolerant; encoders write what Web Connectivity 0.5 writes, in
    Go's key order.
``control``
    The test-helper protocol: ``control_*_from_json`` are *validating* decoders
    for untrusted input, raising ``DecodeError`` with the JSON path of the bad
    value; ``decode_control_response`` is the tolerant variant for stored
    measurements.
``testkeys``
    Web Connectivity ``test_keys``: observation lists, the classifier's input
    (``web_observations_from_test_keys``), the analysis keys.
``envelope``
    ``measurement_from_json`` / ``measurement_to_json``: the df-000 envelope,
    lossless (unknown keys kept in ``Measurement.extra``, missing ones in
    ``Measurement.absent``).
"""

from __future__ import annotations

from blockproof.codec.ooni.control import (
    control_request_from_json,
    control_request_to_json,
    control_response_from_json,
    control_response_to_json,
    decode_control_response,
)
from blockproof.codec.ooni.envelope import measurement_from_json, measurement_to_json
from blockproof.codec.ooni.records import (
    decode_answer,
    decode_http_transaction,
    decode_network_event,
    decode_query,
    decode_tcp_connect,
    decode_tls_handshake,
    encode_answer,
    encode_http_transaction,
    encode_network_event,
    encode_query,
    encode_tcp_connect,
    encode_tls_handshake,
)
from blockproof.codec.ooni.testkeys import (
    analysis_to_test_keys,
    trace_from_test_keys,
    trace_to_test_keys,
    web_observations_from_test_keys,
)
from blockproof.codec.ooni.values import DecodeError

__all__ = [
    "DecodeError",
    "analysis_to_test_keys",
    "control_request_from_json",
    "control_request_to_json",
    "control_response_from_json",
    "control_response_to_json",
    "decode_answer",
    "decode_control_response",
    "decode_http_transaction",
    "decode_network_event",
    "decode_query",
    "decode_tcp_connect",
    "decode_tls_handshake",
    "encode_answer",
    "encode_http_transaction",
    "encode_network_event",
    "encode_query",
    "encode_tcp_connect",
    "encode_tls_handshake",
    "measurement_from_json",
    "measurement_to_json",
    "trace_from_test_keys",
    "trace_to_test_keys",
    "web_observations_from_test_keys",
]
