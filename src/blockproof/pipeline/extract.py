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


# Inputs repeat across measurements (OONI's test lists): their platform is remembered.
_platform_of_url = lru_cache(maxsize=1 << 14)(platform_of_url)


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
    """Column buffers for one table: ``data`` maps each column's name to its values."""

    __slots__ = ("_appends", "_extends", "data", "schema")

    def __init__(self, table_schema: pa.Schema) -> None:
        self.schema = table_schema
        self.data: dict[str, list[Any]] = {name: [] for name in table_schema.names}
        self._appends = tuple(column.append for column in self.data.values())
        self._extends = tuple(column.extend for column in self.data.values())

    def __len__(self) -> int:
        return len(self.data["msm_id"])

    def append(self, row: Mapping[str, Any]) -> None:
        """One row given by column name (a missing column is null)."""
        self.add(tuple(row.get(name) for name in self.data))

    def add(self, values: tuple[Any, ...]) -> None:
        """One row given as its values in the schema's column order (the fast way)."""
        for append, value in zip(self._appends, values, strict=True):
            append(value)

    def add_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Several rows as ``add`` takes them: one ``extend`` per column."""
        if len(rows) == 1:
            self.add(rows[0])
        elif rows:
            for extend, values in zip(self._extends, zip(*rows, strict=True), strict=True):
                extend(values)

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


# Rows are built as tuples (one dict per row, then a lookup per column, cost more than
# the rest of tabulating): each tuple lists its table's columns in this order, which
# ``_check_row_layouts`` holds to the schema when the module loads.
_KEY = ("msm_id", "measurement_start_time", "probe_cc", "probe_asn")
ROW_LAYOUTS: dict[str, tuple[str, ...]] = {
    "measurements": (
        *_KEY, "report_id", "test_name", "test_version", "input", "domain", "platform",
        "probe_id", "probe_network_name", "resolver_asn", "resolver_network_name",
        "software_name", "software_version", "test_runtime", "signature", "raw_sha256",
        "receipt", "inclusion", "source", "source_sha256", "source_line",
    ),
    "obs_dns": (
        *_KEY, "hostname", "engine", "resolver_address", "query_type", "failure",
        "answer_type", "answer", "answer_asn", "answer_in_ctrl", "ctrl_failure", "fingerprint",
        "t0", "t", "transaction_id",
    ),
    "obs_tcp": (
        *_KEY, "ip", "port", "failure", "ctrl_status", "ctrl_failure", "t0", "t",
        "transaction_id",
    ),
    "obs_tls": (
        *_KEY, "ip", "port", "server_name", "failure", "tls_version", "cipher_suite",
        "negotiated_protocol", "peer_certificates", "ctrl_status", "ctrl_failure", "t0", "t",
        "transaction_id",
    ),
    "obs_http": (
        *_KEY, "url", "method", "address", "failure", "status_code", "body_length",
        "body_is_truncated", "body_sha256", "title", "location", "server", "fingerprint",
        "ctrl_status_code", "ctrl_body_length", "ctrl_title", "ctrl_failure", "t0", "t",
        "transaction_id",
    ),
    "verdicts": (
        *_KEY, "report_id", "input", "test_name", "platform", "probe_id", "software_name",
        "outcome", "ooni_outcome", "method", "rule_id", "explanation", "fingerprint",
        "blocking", "rules_version",
    ),
}  # fmt: skip


def _check_row_layouts() -> None:
    for table, table_schema in schema.TABLES.items():
        if ROW_LAYOUTS.get(table) != tuple(table_schema.names):
            raise RuntimeError(f"extract.ROW_LAYOUTS[{table!r}] differs from the schema")


_check_row_layouts()


def _location_and_server(headers: tuple[tuple[str, str], ...]) -> tuple[str | None, str | None]:
    """The first ``Location`` and ``Server`` values (names case-insensitive), in one pass."""
    location = server = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == "location":
            if location is None:
                location = value
        elif lowered == "server" and server is None:
            server = value
    return location, server


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
        get = obj.get
        test_name = get("test_name")
        if not isinstance(test_name, str) or not test_name:
            raise RecordError("no test_name")
        time_us = parse_time_us(get("measurement_start_time"))
        cc_value = get("probe_cc")
        cc = cc_value.upper() if isinstance(cc_value, str) and len(cc_value) == 2 else "ZZ"
        asn = parse_asn(get("probe_asn"))
        msm_id = measurement_id(obj, time_us, cc, test_name)
        url = _s(get("input"))
        platform = _platform_of_url(url) if url else platform_of_test(test_name)
        report_id = _s(get("report_id")) or ""
        # a signed measurement names its probe key; a simulated one its pseudonymous probe
        probe_id = _s(get("x_key_id")) or _s(get("x_probe_id")) or report_id or msm_id
        key = (msm_id, time_us, cc, asn)
        test_keys = get("test_keys")
        if test_name == "web_connectivity":
            judgement = self._web(key, url or "", test_keys, cc)
        else:
            judgement = judge_app(obj)
        runtime = get("test_runtime")
        software_name = _s(get("software_name"))
        raw, receipt = source.raw, source.receipt
        self.tables["measurements"].add(
            (
                *key,
                report_id,
                test_name,
                _s(get("test_version")),
                url,
                _host(url),
                platform,
                probe_id,
                _s(get("probe_network_name")),
                parse_asn(get("resolver_asn")),
                _s(get("resolver_network_name")),
                software_name,
                _s(get("software_version")),
                float(runtime) if isinstance(runtime, int | float) else None,
                str(verify_measurement(obj).status),
                hashlib.sha256(raw).hexdigest() if raw else None,
                receipt.decode("utf-8", "replace") if receipt else None,
                inclusion_status(raw, receipt),
                source.name,
                source.sha256,
                source.line,
            )
        )
        self.tables["verdicts"].add(
            (
                *key,
                report_id,
                url,
                test_name,
                platform,
                probe_id,
                software_name,
                judgement.outcome,
                judgement.ooni_outcome,
                judgement.method,
                judgement.rule_id,
                judgement.explanation,
                judgement.fingerprint,
                judgement.blocking,
                RULES_VERSION,
            )
        )
        self.count += 1
        return msm_id

    # -- Web Connectivity -------------------------------------------------------------

    def _web(self, key: tuple[Any, ...], url: str, test_keys: Any, cc: str) -> Judgement:
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

    def _observations(self, key: tuple[Any, ...], obs: WebObservations, hits: list[Any]) -> None:
        control = obs.control
        ctrl_dns = control.dns if control else None
        ctrl_dns_failure = ctrl_dns.failure if ctrl_dns else None
        ctrl_addrs = set(ctrl_dns.addrs) if ctrl_dns else set()
        dns_fp = {h.detail: h.fingerprint.name for h in hits if h.where == "dns"}
        http_fp = {h.where: h.fingerprint.name for h in hits if h.where != "dns"}
        dns_rows: list[tuple[Any, ...]] = []
        add_dns = dns_rows.append
        for q in obs.queries:
            query = (*key, q.hostname, q.engine, q.resolver_address, q.query_type, q.failure)
            timing = (q.t0, q.t, q.transaction_id)
            answered = False
            for a in q.answers:
                if a.answer_type not in ("A", "AAAA", "CNAME"):
                    continue
                answered = True
                value = a.address or a.hostname
                add_dns(
                    (
                        *query,
                        a.answer_type,
                        value,
                        a.asn,
                        (value in ctrl_addrs) if ctrl_dns else None,
                        ctrl_dns_failure,
                        dns_fp.get(value or ""),
                        *timing,
                    )
                )
            if not answered:
                add_dns((*query, None, None, None, None, ctrl_dns_failure, None, *timing))
        self.tables["obs_dns"].add_rows(dns_rows)
        tcp_rows: list[tuple[Any, ...]] = []
        add_tcp = tcp_rows.append
        ctrl_tcp = control.tcp_connect if control else {}
        for c in obs.tcp_connect:
            ctrl = ctrl_tcp.get(c.address) if ctrl_tcp else None
            add_tcp(
                (
                    *key,
                    c.ip,
                    c.port,
                    c.failure,
                    ctrl.status if ctrl else None,
                    ctrl.failure if ctrl else None,
                    c.t0,
                    c.t,
                    c.transaction_id,
                )
            )
        self.tables["obs_tcp"].add_rows(tcp_rows)
        tls_rows: list[tuple[Any, ...]] = []
        add_tls = tls_rows.append
        ctrl_tls_all = control.tls_handshake if control else {}
        for h in obs.tls_handshakes:
            try:
                ip, port = split_endpoint(h.address)
            except ValueError:
                ip, port = h.address, 0
            ctrl_tls = ctrl_tls_all.get(h.address) if ctrl_tls_all else None
            if ctrl_tls is not None and ctrl_tls.server_name != h.server_name:
                ctrl_tls = None
            add_tls(
                (
                    *key,
                    ip,
                    port,
                    h.server_name,
                    h.failure,
                    h.tls_version or None,
                    h.cipher_suite or None,
                    h.negotiated_protocol or None,
                    len(h.peer_certificates),
                    ctrl_tls.status if ctrl_tls else None,
                    ctrl_tls.failure if ctrl_tls else None,
                    h.t0,
                    h.t,
                    h.transaction_id,
                )
            )
        self.tables["obs_tls"].add_rows(tls_rows)
        add_http = self.tables["obs_http"].add
        ctrl_http = control.http_request if control else None
        # the control's columns are the same on every row of this measurement
        ctrl_columns = (
            (
                ctrl_http.status_code,
                ctrl_http.body_length,
                ctrl_http.title or None,
                ctrl_http.failure,
            )
            if ctrl_http
            else (None, None, None, None)
        )
        for tx in obs.requests:
            resp = tx.response
            request_url = tx.request.url
            if resp:
                body = resp.body
                location, server = _location_and_server(resp.headers_list)
                response: tuple[Any, ...] = (
                    resp.code,
                    len(body),
                    resp.body_is_truncated,
                    hashlib.sha256(body).hexdigest(),
                    extract_title(body) or None,
                    location,
                    server,
                )
            else:
                response = (None, None, None, None, None, None, None)
            add_http(
                (
                    *key,
                    request_url,
                    tx.request.method,
                    tx.address or None,
                    tx.failure,
                    *response,
                    http_fp.get(request_url),
                    *ctrl_columns,
                    tx.t0,
                    tx.t,
                    tx.transaction_id,
                )
            )
