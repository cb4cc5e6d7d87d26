"""The store's tables: one explicit Arrow schema each.

A store is a directory of Parquet files, one sub-directory per table, partitioned
by measurement day and country (``<table>/day=2024-02-17/cc=PK/<part>.parquet``).
The partition values are also ordinary columns inside the files
(``measurement_start_time``, ``probe_cc``) so every engine reads the same columns
whether or not it understands Hive partitioning.

Conventions: IP addresses are strings; times are ``timestamp[us, UTC]``; ASNs are
integers (``AS17557`` -> 17557, 0 = unknown or hidden); failures are OONI df-007
strings, null on success. ``msm_id`` is the measurement's id (OONI's
``measurement_uid`` when present, else a stable hash of report, input and time)
and joins every table.

Tiers, in OONI's spirit (raw -> observations -> verdicts -> cells -> events):

* ``measurements``: one row per measurement: the envelope, the platform it measures.
* (not a table) ``sources/``: every input file exactly as received, named by its
  SHA-256; ``measurements.source_sha256`` and ``source_line`` point into it, for
  evidence (the bytes a court can hash) and for re-judging.
* ``obs_dns`` / ``obs_tcp`` / ``obs_tls`` / ``obs_http``: one row per DNS answer
  (or failed lookup), TCP connect, TLS handshake and HTTP round trip, each with
  the control's result for the same operation where the test has a control.
* ``verdicts``: one row per measurement: our outcome (ok / anomaly / confirmed /
  down / failure) and what OONI counts (``ooni_outcome``: ok / anomaly /
  confirmed / failure), method, the id of the rule that fired, its explanation,
  and the fingerprint that confirmed it. Recomputed by ``blockproof rejudge``.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

# Columns every table starts with: they join the tables and partition them.
_KEY = [
    pa.field("msm_id", pa.string(), nullable=False),
    pa.field("measurement_start_time", TS, nullable=False),
    pa.field("probe_cc", pa.string(), nullable=False),
    pa.field("probe_asn", pa.int64(), nullable=False),
]

MEASUREMENTS = pa.schema(
    [
        *_KEY,
        pa.field("report_id", pa.string()),
        pa.field("test_name", pa.string()),
        pa.field("test_version", pa.string()),
        pa.field("input", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("probe_id", pa.string()),
        pa.field("probe_network_name", pa.string()),
        pa.field("resolver_asn", pa.int64()),
        pa.field("resolver_network_name", pa.string()),
        pa.field("software_name", pa.string()),
        pa.field("software_version", pa.string()),
        pa.field("test_runtime", pa.float64()),
        # "valid", "unsigned" or "invalid": the probe signature, checked at ingest
        pa.field("signature", pa.string()),
        pa.field("raw_sha256", pa.string()),  # SHA-256 of the measurement's bytes as received
        # a collector's receipt (from a collector export) and its check at ingest:
        # "valid" (leaf hash, inclusion proof and signed tree head all hold) or the problems
        pa.field("receipt", pa.string()),
        pa.field("inclusion", pa.string()),
        pa.field("source", pa.string()),  # the input file's name
        pa.field("source_sha256", pa.string()),  # its SHA-256: STORE/sources/<sha256>.<ext>
        pa.field("source_line", pa.int64()),  # 1-based line (or record, in a .json document)
    ]
)

OBS_DNS = pa.schema(
    [
        *_KEY,
        pa.field("hostname", pa.string()),
        pa.field("engine", pa.string()),
        pa.field("resolver_address", pa.string()),
        pa.field("query_type", pa.string()),
        pa.field("failure", pa.string()),
        pa.field("answer_type", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("answer_asn", pa.int64()),
        pa.field("answer_in_ctrl", pa.bool_()),
        pa.field("ctrl_failure", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("t0", pa.float64()),
        pa.field("t", pa.float64()),
        pa.field("transaction_id", pa.int64()),
    ]
)

OBS_TCP = pa.schema(
    [
        *_KEY,
        pa.field("ip", pa.string()),
        pa.field("port", pa.int32()),
        pa.field("failure", pa.string()),
        pa.field("ctrl_status", pa.bool_()),
        pa.field("ctrl_failure", pa.string()),
        pa.field("t0", pa.float64()),
        pa.field("t", pa.float64()),
        pa.field("transaction_id", pa.int64()),
    ]
)

OBS_TLS = pa.schema(
    [
        *_KEY,
        pa.field("ip", pa.string()),
        pa.field("port", pa.int32()),
        pa.field("server_name", pa.string()),
        pa.field("failure", pa.string()),
        pa.field("tls_version", pa.string()),
        pa.field("cipher_suite", pa.string()),
        pa.field("negotiated_protocol", pa.string()),
        pa.field("peer_certificates", pa.int32()),
        pa.field("ctrl_status", pa.bool_()),
        pa.field("ctrl_failure", pa.string()),
        pa.field("t0", pa.float64()),
        pa.field("t", pa.float64()),
        pa.field("transaction_id", pa.int64()),
    ]
)

OBS_HTTP = pa.schema(
    [
        *_KEY,
        pa.field("url", pa.string()),
        pa.field("method", pa.string()),
        pa.field("address", pa.string()),
        pa.field("failure", pa.string()),
        pa.field("status_code", pa.int32()),
        pa.field("body_length", pa.int64()),
        pa.field("body_is_truncated", pa.bool_()),
        pa.field("body_sha256", pa.string()),
        pa.field("title", pa.string()),
        pa.field("location", pa.string()),
        pa.field("server", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("ctrl_status_code", pa.int32()),
        pa.field("ctrl_body_length", pa.int64()),
        pa.field("ctrl_title", pa.string()),
        pa.field("ctrl_failure", pa.string()),
        pa.field("t0", pa.float64()),
        pa.field("t", pa.float64()),
        pa.field("transaction_id", pa.int64()),
    ]
)

VERDICTS = pa.schema(
    [
        *_KEY,
        pa.field("report_id", pa.string()),
        pa.field("input", pa.string()),
        pa.field("test_name", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("probe_id", pa.string()),
        pa.field("software_name", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("ooni_outcome", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("explanation", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("blocking", pa.string()),
        pa.field("rules_version", pa.string(), nullable=False),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "measurements": MEASUREMENTS,
    "obs_dns": OBS_DNS,
    "obs_tcp": OBS_TCP,
    "obs_tls": OBS_TLS,
    "obs_http": OBS_HTTP,
    "verdicts": VERDICTS,
}
