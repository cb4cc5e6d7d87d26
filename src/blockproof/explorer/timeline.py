"""A platform in a country over time: the explorer's timeline page and the reports' chart.

Theory of operation: everything here is read from the hourly cells that ``analyze``
writes (``STORE/cells/cells.parquet``: per platform, country, ASN and hour, the
ok/anomaly/confirmed/down/failure counts and the probe counts), never from the
measurements, so a page costs the same on a store of ten thousand or ten million
measurements. The cells file is sorted by platform, country, ASN and hour and
written in small row groups, so reading one platform in one country skips the
rest by the row groups' statistics.

Buckets are hours or days (chosen by the range, like OONI's MAT, or asked for).
Every bucket of the range is present: one without measurements has ``total == 0``
and is drawn as "no data", never as "ok". Denominators travel with every share:
a network's bucket says how many probe-hours were blocked *out of how many*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from blockproof.errors import InputError
from blockproof.pipeline.store import Store
from blockproof.platforms import profiles

HOUR = 3600
DAY = 86_400
DEFAULT_DAYS = 30
HOURLY_UP_TO_DAYS = 7  # "auto": hourly buckets for ranges up to a week, daily beyond
MAX_HOURLY_DAYS = 31  # hourly buckets over more than a month would be unreadable
MAX_DAYS = 3 * 366
GRANULARITIES = ("auto", "hour", "day")
_COUNTS = (
    "ok", "anomaly", "confirmed", "down", "failure", "n_probes", "blocked_probes", "clear_probes",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Bucket:
    """One hour or day: outcome counts and probe counts (a probe counts once per hour)."""

    start: datetime
    ok: int = 0
    anomaly: int = 0
    confirmed: int = 0
    down: int = 0  # the site failed for the control too
    failure: int = 0
    probes: int = 0  # probe-hours
    blocked_probes: int = 0  # probe-hours judged blocked
    clear_probes: int = 0  # probe-hours judged clear

    @property
    def total(self) -> int:
        return self.ok + self.anomaly + self.confirmed + self.down + self.failure

    @property
    def blocked(self) -> int:
        return self.anomaly + self.confirmed


@dataclass(frozen=True, slots=True)
class NetworkRow:
    """One network's buckets (the heatmap's row): ``None`` where it has no data."""

    asn: int
    name: str
    buckets: list[Bucket | None]

    @property
    def measurements(self) -> int:
        return sum(b.total for b in self.buckets if b is not None)


@dataclass(frozen=True, slots=True)
class Timeline:
    cc: str
    platform: str  # "*" for every platform
    platform_name: str
    granularity: str  # "hour" | "day"
    since: datetime  # first bucket's start
    until: datetime  # end of the last bucket (exclusive)
    buckets: list[Bucket]
    networks: list[NetworkRow]
    data_first: datetime | None  # first and last hour with data for the platform here
    data_last: datetime | None

    @property
    def measurements(self) -> int:
        return sum(b.total for b in self.buckets)

    def as_dict(self) -> dict[str, Any]:
        def bucket(b: Bucket | None) -> dict[str, Any] | None:
            if b is None:
                return None
            return {
                "start": stamp(b.start),
                "measurements": b.total,
                "ok": b.ok,
                "anomaly": b.anomaly,
                "confirmed": b.confirmed,
                "down": b.down,
                "failure": b.failure,
                "probe_hours": b.probes,
                "blocked_probe_hours": b.blocked_probes,
                "clear_probe_hours": b.clear_probes,
            }

        return {
            "country": self.cc,
            "platform": self.platform,
            "platform_name": self.platform_name,
            "granularity": self.granularity,
            "since": stamp(self.since),
            "until": stamp(self.until),
            "data_first": stamp(self.data_first) if self.data_first else None,
            "data_last": stamp(self.data_last) if self.data_last else None,
            "measurements": self.measurements,
            "buckets": [bucket(b) for b in self.buckets],
            "networks": [
                {"asn": n.asn, "name": n.name, "buckets": [bucket(b) for b in n.buckets]}
                for n in self.networks
            ],
        }


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def platform_name(platform: str) -> str:
    if platform == "*":
        return "every platform"
    profile = profiles().get(platform)
    return profile.name if profile else platform


def parse_day(text: str | None, what: str) -> date | None:
    """``YYYY-MM-DD`` (or empty) -> a date; anything else is the caller's mistake."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} must be a date like 2024-02-17, not {text!r}") from None


def choose_granularity(asked: str, days: float) -> str:
    if asked not in GRANULARITIES:
        raise InputError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {asked!r}")
    if asked == "auto":
        return "hour" if days <= HOURLY_UP_TO_DAYS else "day"
    if asked == "hour" and days > MAX_HOURLY_DAYS:
        raise InputError(
            f"hourly buckets cover at most {MAX_HOURLY_DAYS} days; this range has {days:.0f} "
            "(choose a shorter range or daily buckets)"
        )
    return asked


def read_cells(
    store: Store,
    cc: str,
    platform: str,
    lo: int | None,
    hi: int | None,
    columns: list[str],
    step: int = 0,
) -> dict[str, list[Any]]:
    """The cells of ``platform`` ("*": all) in ``cc`` with ``lo <= hour < hi``; with a
    ``step``, summed per network and bucket (``hour`` becomes the bucket's start) by
    Arrow, so that Python sees one row per network and bucket, not per cell."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not store.cells_path.exists():
        return {c: [] for c in columns}
    filters: list[tuple[str, str, Any]] = [("probe_cc", "=", cc)]
    if platform != "*":
        filters.append(("platform", "=", platform))
    if lo is not None:
        filters.append(("hour", ">=", lo))
    if hi is not None:
        filters.append(("hour", "<", hi))
    table = pq.read_table(store.cells_path, columns=columns, filters=filters)
    if step:
        hours = table.column("hour")
        starts = pc.multiply(pc.divide(hours, step), step)  # integer division: hours >= 0
        table = table.set_column(table.schema.get_field_index("hour"), "hour", starts)
        sums = [(c, "sum") for c in columns if c not in ("probe_asn", "hour")]
        table = table.group_by(["probe_asn", "hour"]).aggregate(sums)
        table = table.rename_columns([c.removesuffix("_sum") for c in table.column_names])
    pydict: dict[str, list[Any]] = table.to_pydict()
    return pydict


def data_span(store: Store, cc: str, platform: str) -> tuple[datetime, datetime] | None:
    """First and last hour with data for ``platform`` (or "*") in ``cc``."""
    hours = read_cells(store, cc, platform, None, None, ["hour"])["hour"]
    if not hours:
        return None
    return datetime.fromtimestamp(min(hours), UTC), datetime.fromtimestamp(max(hours), UTC)


def timeline(
    store: Store,
    cc: str,
    platform: str,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    granularity: str = "auto",
    names: dict[tuple[str, int], str] | None = None,
    span: tuple[datetime, datetime] | None = None,
) -> Timeline:
    """``platform`` ("*" = all) in ``cc`` from ``since`` to ``until`` (a date means that
    whole day; default: the last ``DEFAULT_DAYS`` days with data). ``span``: the data's
    first and last hour, when the caller knows them already (``data_span``)."""
    from blockproof.pipeline.analyze import load_networks

    span = span or data_span(store, cc, platform)
    if isinstance(until, datetime):
        end = until
    elif isinstance(until, date):
        end = datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
    elif span is not None:
        end = span[1] + timedelta(hours=1)
    else:
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if isinstance(since, datetime):
        start = since
    elif isinstance(since, date):
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    else:
        start = end - timedelta(days=DEFAULT_DAYS)
        if span is not None and span[0] > start:
            start = span[0]
    if end <= start:
        raise InputError(
            f"until must not be before since: the range would end at {stamp(end)}, "
            f"before it starts at {stamp(start)}"
        )
    days = (end - start).total_seconds() / DAY
    if days > MAX_DAYS:
        raise InputError(f"a range covers at most {MAX_DAYS} days; this one has {days:.0f}")
    gran = choose_granularity(granularity, days)
    step = HOUR if gran == "hour" else DAY
    lo = int(start.timestamp()) // step * step
    hi = -(-int(end.timestamp()) // step) * step
    rows = read_cells(store, cc, platform, lo, hi, ["probe_asn", "hour", *_COUNTS], step)
    slots = range(lo, hi, step)
    totals: dict[int, list[int]] = {}
    per_network: dict[int, dict[int, list[int]]] = {}
    for i, (asn, hour) in enumerate(zip(rows["probe_asn"], rows["hour"], strict=True)):
        slot = hour  # already the bucket's start
        values = [rows[c][i] for c in _COUNTS]
        for acc in (
            totals.setdefault(slot, [0] * len(_COUNTS)),
            per_network.setdefault(asn, {}).setdefault(slot, [0] * len(_COUNTS)),
        ):
            for k, value in enumerate(values):
                acc[k] += value

    def bucket(slot: int, acc: list[int]) -> Bucket:
        return Bucket(datetime.fromtimestamp(slot, UTC), *acc)

    known = names if names is not None else load_networks(store)
    networks = [
        NetworkRow(
            asn=asn,
            name=known.get((cc, asn), ""),
            buckets=[bucket(s, acc[s]) if s in acc else None for s in slots],
        )
        for asn, acc in per_network.items()
    ]
    networks.sort(key=lambda n: (-n.measurements, n.asn))
    return Timeline(
        cc=cc,
        platform=platform,
        platform_name=platform_name(platform),
        granularity=gran,
        since=datetime.fromtimestamp(lo, UTC),
        until=datetime.fromtimestamp(hi, UTC),
        buckets=[bucket(s, totals.get(s, [0] * len(_COUNTS))) for s in slots],
        networks=networks,
        data_first=span[0] if span else None,
        data_last=span[1] if span else None,
    )
