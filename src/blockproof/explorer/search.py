"""Search and aggregation over the verdicts, like OONI's Measurement Aggregation Toolkit.

Theory of operation: a ``Query`` (country, network, platform, domain, test, date
range, granularity, and an optional second axis) is parsed and validated from the
page's or the API's query string, then answered with one DuckDB ``GROUP BY`` over
the verdicts table. Only the partitions that can hold matching rows are read: the
store is partitioned by day and country, so the date range and the country pick
directories before any file is opened. Counts come with their denominators: every
row has the number of measurements and of distinct probes behind its outcome
counts. Results are capped at ``MAX_ROWS`` (and say so) so a careless query stays
cheap; the CSV and JSON exports are the same rows.

Each measurement is counted by one of its two outcomes (``count``): ``ooni``, what
OONI's Explorer and MAT count (a site down for everyone is ok there), ``ours``
(where ``down`` is its own column), or ``auto``, the default: OONI's count for OONI's
measurements and ours for blockproof's, so that a search over OONI's data gives the
numbers OONI's own tools give.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from blockproof.errors import InputError
from blockproof.explorer.tables import parquet
from blockproof.explorer.timeline import choose_granularity, parse_day
from blockproof.pipeline.store import Store

AXES = {
    "none": None,
    "cc": "probe_cc",
    "asn": "probe_asn",
    "platform": "platform",
    "domain": "domain",
    "test": "test_name",
}
DEFAULT_DAYS = 30
MAX_ROWS = 20_000
COLUMNS = (
    "bucket",
    "axis",
    "measurements",
    "ok",
    "anomaly",
    "confirmed",
    "down",
    "failure",
    "probes",
)
# which outcome a measurement is counted by (see the module docstring)
COUNTS = {
    "auto": "CASE WHEN software_name = 'blockproof' THEN outcome ELSE ooni_outcome END",
    "ooni": "ooni_outcome",
    "ours": "outcome",
}
_DOMAIN = "lower(regexp_extract(input, '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#]+)', 1))"


@dataclass(frozen=True, slots=True)
class Query:
    cc: str = ""
    asn: int | None = None
    platform: str = ""
    domain: str = ""
    test: str = ""
    since: date | None = None
    until: date | None = None  # inclusive
    granularity: str = "auto"
    axis: str = "none"
    count: str = "auto"

    def params(self) -> dict[str, str]:
        """The query as query-string parameters (empty ones left out)."""
        out = {
            "cc": self.cc,
            "asn": "" if self.asn is None else str(self.asn),
            "platform": self.platform,
            "domain": self.domain,
            "test": self.test,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "granularity": self.granularity,
            "axis": self.axis,
            "count": self.count,
        }
        return {k: v for k, v in out.items() if v}


def parse_query(params: Mapping[str, str]) -> Query:
    """Validate a query string; every mistake is an ``InputError`` with a sentence."""

    def text(name: str, limit: int = 253) -> str:
        value = (params.get(name) or "").strip()
        if len(value) > limit:
            raise InputError(f"{name} is too long ({len(value)} characters; at most {limit})")
        return value

    cc = text("cc", 20).upper()
    if cc and not (len(cc) == 2 and cc.isascii() and cc.isalpha()):
        raise InputError(f"cc must be a two-letter country code like PK, not {cc!r}")
    asn_text = text("asn", 20).upper().removeprefix("AS")
    asn: int | None = None
    if asn_text:
        if not asn_text.isdigit() or int(asn_text) >= 2**32:
            raise InputError(f"asn must be an AS number like 17557 or AS17557, not {asn_text!r}")
        asn = int(asn_text)
    platform = text("platform", 40).lower()
    if platform and not all(c.isalnum() or c in "-_" for c in platform):
        raise InputError(f"platform must be a platform id like x or youtube, not {platform!r}")
    domain = text("domain").lower()
    if domain and not all(c.isalnum() or c in ".-_" for c in domain):
        raise InputError(f"domain must be a host name like x.com, not {domain!r}")
    test = text("test", 60)
    if test and not all(c.isalnum() or c == "_" for c in test):
        raise InputError(f"test must be a test name like web_connectivity, not {test!r}")
    axis = text("axis", 20) or "none"
    if axis not in AXES:
        raise InputError(f"axis must be one of {', '.join(AXES)}, not {axis!r}")
    count = text("count", 10) or "auto"
    if count not in COUNTS:
        raise InputError(f"count must be one of {', '.join(COUNTS)}, not {count!r}")
    granularity = text("granularity", 10) or "auto"
    choose_granularity(granularity, 1)  # validates the word
    since, until = parse_day(text("since", 10), "since"), parse_day(text("until", 10), "until")
    if since and until and until < since:
        raise InputError(f"until must not be before since ({until} is before {since})")
    return Query(cc, asn, platform, domain, test, since, until, granularity, axis, count)


@dataclass(slots=True)
class Result:
    query: Query
    since: date
    until: date  # inclusive
    granularity: str
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False

    def totals(self) -> dict[str, int]:
        keys = ("measurements", "ok", "anomaly", "confirmed", "down", "failure")
        return {k: sum(int(r[COLUMNS.index(k)]) for r in self.rows) for k in keys}

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(COLUMNS, row, strict=True)) for row in self.rows]

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query.params(),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "granularity": self.granularity,
            "columns": list(COLUMNS),
            "truncated": self.truncated,
            "rows": self.records(),
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(self.rows)
        return out.getvalue()


def _last_day(store: Store, cc: str) -> date | None:
    """The last day with verdicts (from ``cc``, when given): the default range ends there."""
    base = store.table_dir("verdicts")
    days = sorted(base.glob("day=*"), reverse=True) if base.is_dir() else []
    for day in days:
        if not cc or (day / f"cc={cc}").is_dir():
            return date.fromisoformat(day.name.removeprefix("day="))
    return None


def aggregate(store: Store, query: Query) -> Result:
    """Answer ``query`` (see the module docstring)."""
    import duckdb

    until = query.until or _last_day(store, query.cc) or date.today()
    since = query.since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise InputError(f"since ({since}) is after the last day with data ({until})")
    granularity = choose_granularity(query.granularity, (until - since).days + 1)
    result = Result(query, since, until, granularity)
    files = store.files(
        "verdicts", cc=query.cc or None, first_day=since.isoformat(), last_day=until.isoformat()
    )
    if not files:
        return result
    where = ["measurement_start_time >= $since", "measurement_start_time < $end"]
    values: dict[str, Any] = {"since": since, "end": until + timedelta(days=1)}
    for name, column, value in (
        ("cc", "probe_cc", query.cc),
        ("asn", "probe_asn", query.asn),
        ("platform", "platform", query.platform),
        ("domain", _DOMAIN, query.domain),
        ("test", "test_name", query.test),
    ):
        if value not in ("", None):
            where.append(f"{column} = ${name}")
            values[name] = value
    axis = AXES[query.axis]
    axis_expr = "NULL" if axis is None else (_DOMAIN if axis == "domain" else axis)
    bucket = (
        "strftime(date_trunc('hour', measurement_start_time), '%Y-%m-%dT%H:00:00Z')"
        if granularity == "hour"
        else "strftime(measurement_start_time, '%Y-%m-%d')"
    )
    sql = f"""
        SELECT {bucket} AS bucket, CAST({axis_expr} AS VARCHAR) AS axis,
               count(*) AS measurements,
               count(*) FILTER (WHERE counted = 'ok') AS ok,
               count(*) FILTER (WHERE counted = 'anomaly') AS anomaly,
               count(*) FILTER (WHERE counted = 'confirmed') AS confirmed,
               count(*) FILTER (WHERE counted = 'down') AS down,
               count(*) FILTER (WHERE counted = 'failure') AS failure,
               count(DISTINCT probe_id) AS probes
        FROM (SELECT *, {COUNTS[query.count]} AS counted FROM {parquet(files)})
        WHERE {" AND ".join(where)}
        GROUP BY ALL ORDER BY bucket, axis NULLS FIRST
        LIMIT {MAX_ROWS + 1}
    """
    con = duckdb.connect()
    try:
        rows = con.execute(sql, values).fetchall()
    finally:
        con.close()
    result.truncated = len(rows) > MAX_ROWS
    result.rows = [tuple(r) for r in rows[:MAX_ROWS]]
    return result
