"""Web Connectivity ``test_keys``: the observation lists, the classifier's input, the analysis.

``trace_to_test_keys``/``trace_from_test_keys`` write and read the observation
keys (``requests`` last-first, as OONI writes them); ``web_observations_from_test_keys``
reads only what the classifier needs, the control included; ``analysis_to_test_keys``
writes OONI's analysis keys plus ``x_verdict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blockproof.codec.ooni.control import decode_control_response
from blockproof.codec.ooni.records import (
    decode_http_transaction,
    decode_network_event,
    decode_query,
    decode_tcp_connect,
    decode_tls_handshake,
    encode_http_transaction,
    encode_network_event,
    encode_query,
    encode_tcp_connect,
    encode_tls_handshake,
)
from blockproof.codec.ooni.values import JSON, read_list, read_opt_str
from blockproof.model.observations import Trace
from blockproof.model.verdict import WebConnectivityAnalysis
from blockproof.model.web import WebObservations


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
    requests = [decode_http_transaction(r) for r in read_list(test_keys.get("requests"))]
    requests.reverse()
    return Trace(
        queries=[decode_query(q) for q in read_list(test_keys.get("queries"))],
        dns_duplicate_responses=[
            decode_query(q) for q in read_list(test_keys.get("x_dns_duplicate_responses"))
        ],
        tcp_connect=[decode_tcp_connect(c) for c in read_list(test_keys.get("tcp_connect"))],
        tls_handshakes=[
            decode_tls_handshake(h) for h in read_list(test_keys.get("tls_handshakes"))
        ],
        requests=requests,
        network_events=[
            decode_network_event(e) for e in read_list(test_keys.get("network_events"))
        ],
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
    get = test_keys.get
    # Only what the classifier reads: no network events, no duplicate DNS responses.
    requests = [decode_http_transaction(r) for r in read_list(get("requests"))]
    requests.reverse()
    queries = tuple([decode_query(q, binary=binary) for q in read_list(get("queries"))])
    tcp_connect = tuple([decode_tcp_connect(c) for c in read_list(get("tcp_connect"))])
    tls_handshakes = tuple(
        [decode_tls_handshake(h, binary=binary) for h in read_list(get("tls_handshakes"))]
    )
    control_failure = read_opt_str(get("control_failure"))
    control = None if control_failure else decode_control_response(get("control"))
    return WebObservations(
        input=input,
        queries=queries,
        tcp_connect=tcp_connect,
        tls_handshakes=tls_handshakes,
        requests=tuple(requests),
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
