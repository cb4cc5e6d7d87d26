"""The OONI df-000 measurement envelope.

``test_keys`` stays the JSON object it is on the wire: each experiment owns its
shape (web_connectivity's is decoded into typed records by
``blockproof.codec.ooni``). Unknown envelope keys are kept in ``extra`` so that a
read-write round trip loses nothing, including OONI's own ``x_`` keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATA_FORMAT_VERSION = "0.2.0"
SCRUBBED_IP = "127.0.0.1"
HIDDEN_ASN = "AS0"
UNKNOWN_CC = "ZZ"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # measurement_start_time / test_start_time, UTC


@dataclass(slots=True, kw_only=True)
class Measurement:
    test_name: str
    test_version: str
    input: str | None
    measurement_start_time: str
    test_start_time: str
    probe_cc: str = UNKNOWN_CC
    probe_asn: str = HIDDEN_ASN
    probe_ip: str = SCRUBBED_IP
    probe_network_name: str = ""
    report_id: str = ""
    resolver_asn: str = HIDDEN_ASN
    resolver_ip: str = SCRUBBED_IP
    resolver_network_name: str = ""
    software_name: str = "blockproof"
    software_version: str = ""
    data_format_version: str = DATA_FORMAT_VERSION
    test_runtime: float = 0.0
    annotations: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, int] = field(default_factory=dict)
    test_helpers: dict[str, Any] = field(default_factory=dict)
    test_keys: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # envelope keys that were absent when read (so writing them back omits them)
    absent: frozenset[str] = frozenset()
