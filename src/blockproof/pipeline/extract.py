"""From one parsed measurement to rows of every store table (sans-IO).

``Extractor.add(obj, source)`` decodes one OONI df-000 measurement
(OONI's own or ours: the format is the same), judges it
(``verdict.judge``) and appends one row per observation to column buffers,
one ``Columns`` per table. ``Extractor.take()`` hands the buffers over as Arrow
tables and starts new ones. Nothing here touches the disk.

Decoding is done once: Web Connectivity test keys become ``WebObservations``,
which feed the observation rows, the classifier and the fingerprint matcher
alike. Other tests get a ``measurements`` and a ``verdicts`` row (their
observations are not tabulated yet). The raw bytes are not copied into
tables: the store keeps every input file whole (``Store.sources``) and each
measurement row says where it came from (``source_sha256``, ``source_line``).

``msm_id`` is OONI's ``measurement_uid`` when the record has one, otherwise
``<YYYYMMDDHHMMSS>_<CC>_<test>_<16 hex>`` with a BLAKE2b of report id, test
name, input and start time: the same measurement ingested twice gets the same
id, which is how the store drops duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa

from blockproof.codec.ooni import web_observations_from_test_keys
from blockproof.core.http import extract_title
from blockproof.core.webconnectivity import analyze
from blockproof.custody.proofs import inclusion_status
from blockproof.custody.signing import verify_measurement
from blockproof.model.observations import split_endpoint
from blockproof.model.web import WebObservations
from blockproof.pipeline import schema
from blockproof.platforms import platform_of_test, platform_of_url
from blockproof.verdict.judge import (
    RULES_VERSION,
    Judgement,
    find_fingerprints,
    judge_app,
    judge_web,
    unreadable,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RecordError(ValueError):
    """A JSON object that is not a measurement we can place (no time, no test name)."""


def parse_asn(value: Any) -> int:
    """``"AS17557"`` -> 17557; anything unreadable -> 0 (unknown)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else 0
    if isinstance(value, str):
        digits = value[2:] if value[:2].upper() == "AS" else value
        if digits.isdigit():
            return int(digits)
    return 0


def parse_time_us(value: Any) -> int:
    """OONI's ``"2024-02-17 17:05:12"`` (UTC) as microseconds since the epoch."""
    if not isinstance(value, str) or len(value) < 19:
        raise RecordError(f"measurement_start_time is not a time: {value!r}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RecordError(f"measurement_start_time is not a time: {value!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@lru_cache(maxsize=4096)
def _hour_stamp(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y%m%d%H")


def _valid_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _host(url: str | None) -> str | None:
    if not url:
        return None
    rest = url.split("://", 1)[1] if "://" in url else url
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower() or None
    return host.split(":", 1)[0].lower() or None


def measurement_id(obj: Mapping[str, Any], time_us: int, cc: str, test_name: str) -> str:
    uid = obj.get("measurement_uid")
    if isinstance(uid, str) and 8 <= len(uid) <= 128:
        return uid
    key = "\0".join(
        str(obj.get(k) or "") for k in ("report_id", "test_name", "input", "measurement_start_time")
    )
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    seconds = time_us // 1_000_000
    stamp = f"{_hour_stamp(seconds // 3600)}{seconds % 3600 // 60:02d}{seconds % 60:02d}"
    return f"{stamp}_{cc}_{test_name.replace('_', '')}_{digest}"


@dataclass(slots=True)
class Source:
    """Where a measurement was read: the file's name and SHA-256, the line (or record)
    number, and the record's bytes as received (empty when the caller has none)."""

    name: str
    sha256: str
    line: int
    raw: bytes = b""
    receipt: bytes | None = None  # the collector's receipt for this record, if exported


class Columns:
    """Column buffers for one table."""

    __slots__ = ("data", "schema")

    def __init__(self, table_schema: pa.Schema) -> None:
        self.schema = table_schema
        self.data: dict[str, list[Any]] = {name: [] for name in table_schema.names}

    def __len__(self) -> int:
        return len(self.data["msm_id"])

    def append(self, row: Mapping[str, Any]) -> None:
        for name, column in self.data.items():
            column.append(row.get(name))

    def to_arrow(self) -> pa.Table:
        arrays = [self._array(f) for f in self.schema]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _array(self, f: pa.Field) -> pa.Array:
        values = self.data[f.name]
        try:
            return pa.array(values, type=f.type)
        except UnicodeEncodeError:
            # Text decoded from bytes that were not UTF-8 carries lone surrogates
            # (surrogateescape): store it with U+FFFD in their place.
            return pa.array([_valid_text(v) for v in values], type=f.type)


class Extractor:
    """Accumulates the rows of many measurements; see the module docstring."""

    def __init__(self) -> None:
        self._new()

    def _new(self) -> None:
        self.tables = {name: Columns(s) for name, s in schema.TABLES.items()}
        self.count = 0

    def take(self) -> dict[str, pa.Table]:
        """The buffered rows as Arrow tables; then start afresh."""
        out = {name: cols.to_arrow() for name, cols in self.tables.items()}
        self._new()
        return out

    def add(self, obj: Mapping[str, Any], source: Source) -> str:
        """Extract one measurement; return its msm_id. Raises RecordError if unplaceable."""
        test_name = obj.get("test_name")
        if not isinstance(test_name, str) or not test_name:
            raise RecordError("no test_name")
        time_us = parse_time_us(obj.get("measurement_start_time"))
        cc_value = obj.get("probe_cc")
        cc = cc_value.upper() if isinstance(cc_value, str) and len(cc_value) == 2 else "ZZ"
        asn = parse_asn(obj.get("probe_asn"))
        msm_id = measurement_id(obj, time_us, cc, test_name)
        url = _s(obj.get("input"))
        platform = platform_of_url(url) if url else platform_of_test(test_name)
        report_id = _s(obj.get("report_id")) or ""
        # a signed measurement names its probe key; a simulated one its pseudonymous probe
        probe_id = _s(obj.get("x_key_id")) or _s(obj.get("x_probe_id")) or report_id or msm_id
        key = {
            "msm_id": msm_id,
            "measurement_start_time": time_us,
            "probe_cc": cc,
            "probe_asn": asn,
        }
        test_keys = obj.get("test_keys")
        if test_name == "web_connectivity":
            judgement = self._web(key, url or "", test_keys, cc)
        else:
            judgement = judge_app(obj)
        runtime = obj.get("test_runtime")
        self.tables["measurements"].append(
            {
                **key,
                "report_id": report_id,
                "test_name": test_name,
                "test_version": _s(obj.get("test_version")),
                "input": url,
                "domain": _host(url),
                "platform": platform,
                "probe_id": probe_id,
                "probe_network_name": _s(obj.get("probe_network_name")),
                "resolver_asn": parse_asn(obj.get("resolver_asn")),
                "resolver_network_name": _s(obj.get("resolver_network_name")),
                "software_name": _s(obj.get("software_name")),
                "software_version": _s(obj.get("software_version")),
                "test_runtime": float(runtime) if isinstance(runtime, int | float) else None,
                "signature": str(verify_measurement(obj).status),
                "raw_sha256": hashlib.sha256(source.raw).hexdigest() if source.raw else None,
                "receipt": source.receipt.decode("utf-8", "replace") if source.receipt else None,
                "inclusion": inclusion_status(source.raw, source.receipt),
                "source": source.name,
                "source_sha256": source.sha256,
                "source_line": source.line,
            }
        )
        self.tables["verdicts"].append(
            {
                **key,
                "report_id": report_id,
                "input": url,
                "test_name": test_name,
                "platform": platform,
                "probe_id": probe_id,
                "software_name": _s(obj.get("software_name")),
                "outcome": judgement.outcome,
                "ooni_outcome": judgement.ooni_outcome,
                "method": judgement.method,
                "rule_id": judgement.rule_id,
                "explanation": judgement.explanation,
                "fingerprint": judgement.fingerprint,
                "blocking": judgement.blocking,
                "rules_version": RULES_VERSION,
            }
        )
        self.count += 1
        return msm_id

    # -- Web Connectivity -------------------------------------------------------------

    def _web(self, key: dict[str, Any], url: str, test_keys: Any, cc: str) -> Judgement:
        try:
            obs = web_observations_from_test_keys(url, test_keys, binary=False)
            analysis = analyze(obs)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return unreadable(f"{type(exc).__name__}: {exc}")
        hits = find_fingerprints(obs)
        self._observations(key, obs, hits)
        recorded = test_keys if isinstance(test_keys, dict) else None
        throttling = recorded.get("x_throttling") if recorded is not None else None
        return judge_web(
            obs, probe_cc=cc, analysis=analysis, hits=hits, throttling=throttling,
            recorded=recorded or {},
        )  # fmt: skip

    def _observations(self, key: dict[str, Any], obs: WebObservations, hits: list[Any]) -> None:
        control = obs.control
        ctrl_dns = control.dns if control else None
        ctrl_addrs = set(ctrl_dns.addrs) if ctrl_dns else set()
        dns_fp = {h.detail: h.fingerprint.name for h in hits if h.where == "dns"}
        http_fp = {h.where: h.fingerprint.name for h in hits if h.where != "dns"}
        dns = self.tables["obs_dns"]
        for q in obs.queries:
            base = {
                **key,
                "hostname": q.hostname,
                "engine": q.engine,
                "resolver_address": q.resolver_address,
                "query_type": q.query_type,
                "failure": q.failure,
                "ctrl_failure": ctrl_dns.failure if ctrl_dns else None,
                "t0": q.t0,
                "t": q.t,
                "transaction_id": q.transaction_id,
            }
            answers = [a for a in q.answers if a.answer_type in ("A", "AAAA", "CNAME")]
            if not answers:
                dns.append(base)
            for a in answers:
                value = a.address or a.hostname
                dns.append(
                    {
                        **base,
                        "answer_type": a.answer_type,
                        "answer": value,
                        "answer_asn": a.asn,
                        "answer_in_ctrl": (value in ctrl_addrs) if ctrl_dns else None,
                        "fingerprint": dns_fp.get(value or ""),
                    }
                )
        tcp = self.tables["obs_tcp"]
        for c in obs.tcp_connect:
            ctrl = control.tcp_connect.get(c.address) if control else None
            tcp.append(
                {
                    **key,
                    "ip": c.ip,
                    "port": c.port,
                    "failure": c.failure,
                    "ctrl_status": ctrl.status if ctrl else None,
                    "ctrl_failure": ctrl.failure if ctrl else None,
                    "t0": c.t0,
                    "t": c.t,
                    "transaction_id": c.transaction_id,
                }
            )
        tls = self.tables["obs_tls"]
        for h in obs.tls_handshakes:
            try:
                ip, port = split_endpoint(h.address)
            except ValueError:
                ip, port = h.address, 0
            ctrl_tls = control.tls_handshake.get(h.address) if control else None
            if ctrl_tls is not None and ctrl_tls.server_name != h.server_name:
                ctrl_tls = None
            tls.append(
                {
                    **key,
                    "ip": ip,
                    "port": port,
                    "server_name": h.server_name,
                    "failure": h.failure,
                    "tls_version": h.tls_version or None,
                    "cipher_suite": h.cipher_suite or None,
                    "negotiated_protocol": h.negotiated_protocol or None,
                    "peer_certificates": len(h.peer_certificates),
                    "ctrl_status": ctrl_tls.status if ctrl_tls else None,
                    "ctrl_failure": ctrl_tls.failure if ctrl_tls else None,
                    "t0": h.t0,
                    "t": h.t,
                    "transaction_id": h.transaction_id,
                }
            )
        http = self.tables["obs_http"]
        ctrl_http = control.http_request if control else None
        for tx in obs.requests:
            resp = tx.response
            body = resp.body if resp else b""
            http.append(
                {
                    **key,
                    "url": tx.request.url,
                    "method": tx.request.method,
                    "address": tx.address or None,
                    "failure": tx.failure,
                    "status_code": resp.code if resp else None,
                    "body_length": len(body) if resp else None,
                    "body_is_truncated": resp.body_is_truncated if resp else None,
                    "body_sha256": hashlib.sha256(body).hexdigest() if resp else None,
                    "title": extract_title(body) or None if resp else None,
                    "location": resp.header("location") if resp else None,
                    "server": resp.header("server") if resp else None,
                    "fingerprint": http_fp.get(tx.request.url),
                    "ctrl_status_code": ctrl_http.status_code if ctrl_http else None,
                    "ctrl_body_length": ctrl_http.body_length if ctrl_http else None,
                    "ctrl_title": (ctrl_http.title or None) if ctrl_http else None,
                    "ctrl_failure": ctrl_http.failure if ctrl_http else None,
                    "t0": tx.t0,
                    "t": tx.t,
                    "transaction_id": tx.transaction_id,
                }
            )
