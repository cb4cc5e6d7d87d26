"""One measurement as the explorer shows it: its row, verdict, bytes and steps.

The measurement is found in its day's and country's partition (its id starts with
its UTC date and country), its bytes are read from the store's kept source file,
and its observations (DNS, TCP, TLS, HTTP) become ``Step``s in time order, each
with its timing, its failure, and what the uncensored control saw for the same
operation: the material of the page's waterfall.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from blockproof.explorer.tables import kept_bytes, parquet
from blockproof.pipeline.store import Store


@dataclass(frozen=True, slots=True)
class Step:
    """One operation of a measurement (a DNS lookup, a TCP connect, a TLS handshake, an
    HTTP request): what was tried, when (seconds since the measurement began), what
    came back, and what the control saw for the same operation."""

    kind: str  # dns | tcp | tls | http
    what: str
    t0: float | None
    t: float | None
    failure: str | None
    result: str
    control: str

    @property
    def failed(self) -> bool:
        return bool(self.failure)


def _failure_or(failure: Any, ok: str) -> str:
    return str(failure) if failure else ok


def _dns_steps(rows: list[dict[str, Any]]) -> list[Step]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row.get("transaction_id"), row.get("engine"), row.get("query_type"),
               row.get("hostname"), row.get("resolver_address"))  # fmt: skip
        groups.setdefault(key, []).append(row)
    steps = []
    for (_tid, engine, qtype, host, resolver), group in groups.items():
        first = group[0]
        answers = [str(r["answer"]) for r in group if r.get("answer")]
        in_ctrl = [r.get("answer_in_ctrl") for r in group if r.get("answer")]
        if first.get("ctrl_failure"):
            control = f"control: {first['ctrl_failure']}"
        elif answers and any(v is False for v in in_ctrl):
            control = "control: got other addresses"
        elif answers and all(v for v in in_ctrl):
            control = "control: same addresses"
        else:
            control = "control: -"
        where = f" via {engine}" + (f" {resolver}" if resolver else "") if engine else ""
        steps.append(
            Step(
                "dns",
                f"{qtype or 'A'} {host}{where}",
                first.get("t0"),
                first.get("t"),
                first.get("failure"),
                _failure_or(first.get("failure"), ", ".join(answers[:6]) or "no answer"),
                control,
            )
        )
    return steps


def _ctrl(row: dict[str, Any]) -> str:
    if row.get("ctrl_failure"):
        return f"control: {row['ctrl_failure']}"
    if row.get("ctrl_status") is True:
        return "control: succeeded"
    return "control: -"


def _tcp_steps(rows: list[dict[str, Any]]) -> list[Step]:
    return [
        Step(
            "tcp",
            f"connect {r['ip']}:{r['port']}",
            r.get("t0"),
            r.get("t"),
            r.get("failure"),
            _failure_or(r.get("failure"), "connected"),
            _ctrl(r),
        )
        for r in rows
    ]


def _tls_steps(rows: list[dict[str, Any]]) -> list[Step]:
    return [
        Step(
            "tls",
            f"handshake {r['ip']}:{r['port']} naming {r.get('server_name') or '-'}",
            r.get("t0"),
            r.get("t"),
            r.get("failure"),
            _failure_or(
                r.get("failure"),
                " ".join(str(x) for x in (r.get("tls_version"), r.get("negotiated_protocol")) if x)
                or "done",
            ),
            _ctrl(r),
        )
        for r in rows
    ]


def _http_steps(rows: list[dict[str, Any]]) -> list[Step]:
    steps = []
    for r in rows:
        got = _failure_or(
            r.get("failure"),
            f"{r.get('status_code')}, {r.get('body_length') or 0} bytes"
            + (f", title {r['title']!r}" if r.get("title") else "")
            + (f", blockpage {r['fingerprint']}" if r.get("fingerprint") else ""),
        )
        if r.get("ctrl_failure"):
            control = f"control: {r['ctrl_failure']}"
        elif r.get("ctrl_status_code") is not None:
            control = (
                f"control: {r['ctrl_status_code']}, {r.get('ctrl_body_length') or 0} bytes"
                + (f", title {r['ctrl_title']!r}" if r.get("ctrl_title") else "")
            )
        else:
            control = "control: -"
        what = f"{r.get('method') or 'GET'} {r.get('url')}"
        steps.append(Step("http", what, r.get("t0"), r.get("t"), r.get("failure"), got, control))
    return steps


_STEP_BUILDERS: dict[str, Callable[[list[dict[str, Any]]], list[Step]]] = {
    "obs_dns": _dns_steps,
    "obs_tcp": _tcp_steps,
    "obs_tls": _tls_steps,
    "obs_http": _http_steps,
}


@dataclass(frozen=True, slots=True)
class MeasurementView:
    """One stored measurement: its row, its verdict, and its bytes as received."""

    row: dict[str, Any]
    raw: bytes | None
    sha256: str | None
    signature: str
    key_id: str | None
    steps: list[Step] = field(default_factory=list)


def _candidate_files(store: Store, table: str, msm_id: str) -> list[str]:
    """The table's files that can hold ``msm_id``: ids start with a UTC date and hold the
    country (``20240217175306_PK_webconnectivity_...``, OONI's upload-time uids too), so
    the day (and the day before, for uids stamped at upload) narrows the files; anything
    else means every file."""
    parts = msm_id.split("_")
    if len(parts) >= 3 and len(parts[0]) >= 8 and parts[0][:8].isdigit():
        try:
            day = datetime.strptime(parts[0][:8], "%Y%m%d")
        except ValueError:
            pass
        else:
            window = {"first_day": f"{day - timedelta(days=1):%Y-%m-%d}",
                      "last_day": f"{day:%Y-%m-%d}"}  # fmt: skip
            narrow = store.files(table, cc=parts[1], **window) or store.files(table, **window)
            if narrow:
                return [str(p) for p in narrow]
    files = store.files(table)
    if len(parts) >= 3 and len(parts[0]) >= 8 and parts[0][:8].isdigit():
        try:
            day = datetime.strptime(parts[0][:8], "%Y%m%d")
        except ValueError:
            return [str(p) for p in files]
        days = {f"day={(day - timedelta(days=k)):%Y-%m-%d}" for k in (0, 1)}
        chosen = [p for p in files if any(d in p.parts for d in days)]
        cc = f"cc={parts[1]}"
        chosen = [p for p in chosen if cc in p.parts] or chosen
        if chosen:
            return [str(p) for p in chosen]
    return [str(p) for p in files]


def measurement_view(store: Store, msm_id: str) -> MeasurementView | None:
    """The measurement ``msm_id`` (None if the store has no such measurement)."""
    import duckdb

    def source(table: str) -> str:
        return parquet(_candidate_files(store, table, msm_id))

    if not store.files("measurements"):
        return None
    con = duckdb.connect()
    try:
        cursor = con.execute(
            f"""
            SELECT m.*, v.outcome, v.method, v.rule_id, v.explanation, v.fingerprint,
                   v.rules_version
            FROM {source("measurements")} m LEFT JOIN {source("verdicts")} v USING (msm_id)
            WHERE m.msm_id = ? LIMIT 1
            """,
            [msm_id],
        )
        names = [d[0] for d in cursor.description]
        found = cursor.fetchone()
    finally:
        con.close()
    if found is None:
        return None
    row = dict(zip(names, found, strict=True))
    raw, digest, signature, key_id = kept_bytes(store, row["source_sha256"], row["source_line"])
    return MeasurementView(
        row=row,
        raw=raw,
        sha256=digest,
        signature=signature,
        key_id=key_id,
        steps=_steps(store, msm_id),
    )


def _steps(store: Store, msm_id: str) -> list[Step]:
    """The measurement's observations as steps in time order."""
    import duckdb

    steps: list[Step] = []
    con = duckdb.connect()
    try:
        for table, build in _STEP_BUILDERS.items():
            files = _candidate_files(store, table, msm_id)
            if not files:
                continue
            cursor = con.execute(
                f"SELECT * FROM {parquet(files)} WHERE msm_id = ? ORDER BY t0 NULLS LAST",
                [msm_id],
            )
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            steps.extend(build(rows))
    finally:
        con.close()
    steps.sort(key=lambda s: (s.t0 if s.t0 is not None else float("inf"), s.kind))
    return steps
