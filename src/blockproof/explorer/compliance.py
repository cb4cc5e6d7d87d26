"""Compliance since a date: each network's hourly state from that date on (sans-IO).

The question it answers: a court ordered a platform restored on a date; did the
networks comply, and when? In: the hourly cells of one platform in one country (per
network and hour, the probe-hours judged blocked and judged clear, as ``analyze``
writes them) and the date. Out: per network, its state hour by hour from that date to
the end of the data, the first clear hour, and the blocked hours after it, in numbers
and in one sentence ("Since 22 February 2024, AS17557 (PTCL) was blocked in 1,310 of
1,342 measured hours; first clear hour: 2024-04-18 09:00 UTC; blocked again in 12
hours after it").

Theory of operation:

* **One judgement of an hour** (``judge``), the one the explorer already used for its
  heatmap and country page, now shared by all three: an hour of a network is
  *blocked* when at least half of its judged probe-hours were blocked, *clear* when
  fewer were, and *no data* when no probe-hour was judged at all (no measurement, or
  only failed ones and sites down for everyone: what abstains in the cells). A
  probe-hour is blocked when most of that probe's scored measurements in the hour were
  anomaly or confirmed (``pipeline.engine.cells``); the detector reads the same cells
  and, like this module, treats an hour whose probes all abstained as no data
  (``pipeline.detect``). Nothing here is a second definition of "blocked".
* **The range** starts at 00:00 UTC of the date, or at the first hour with data for
  the platform in the country when that is later (hours before any data say nothing),
  and ends after the last hour with data. A date after the end of the data gives an
  empty range: every network "not measured since".
* **Counts are of measured hours** (blocked + clear): hours without data are counted
  apart and never as clear. The *first clear hour* is the first clear hour in the
  range; the *residual* blocked hours are the blocked hours after it. With a leaky
  block (a censor that lets some measurements through) a first clear hour can come
  early while the block goes on: the residual count, and the share of blocked hours,
  say so.
* **The strip** (one row per network) has one cell per hour for ranges up to
  ``HOURLY_UP_TO_DAYS`` days, per day up to ``DAILY_UP_TO_DAYS``, per week beyond; a
  longer cell is judged by the same rule over its measured hours (blocked when at
  least half of them were).
* **Networks**: the event's first, in its order, then every other network of the
  country with data for the platform in the range; a network of the event without
  any cell in the range is still listed, "not measured".

Reading the cells is ``explorer.evidence.compliance_since``; drawing the strip is
``explorer.charts.compliance_svg``; this module only computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

BLOCKED: Final = "blocked"
CLEAR: Final = "clear"
NO_DATA: Final = "no data"
STATES: Final = (BLOCKED, CLEAR, NO_DATA)

HOUR = 3600
HOURLY_UP_TO_DAYS = 7  # as the explorer's timelines: hourly cells for ranges up to a week
DAILY_UP_TO_DAYS = 366  # daily cells up to a year, weekly beyond
UNIT_SECONDS = {"hour": HOUR, "day": 24 * HOUR, "week": 7 * 24 * HOUR}


def judge(blocked: int, clear: int) -> str:
    """The state of an hour (or of any span) from its judged counts: ``blocked`` when at
    least half of them were blocked, ``clear`` when fewer, ``no data`` when none was
    judged. Probe-hours for an hour of a network; measured hours for a longer cell."""
    if blocked + clear <= 0:
        return NO_DATA
    return BLOCKED if blocked * 2 >= blocked + clear else CLEAR


def stamp_hour(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:00} UTC"


def long_date(day: date) -> str:
    """``22 February 2024``."""
    return f"{day.day} {day:%B %Y}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class Span:
    """One cell of a network's strip: an hour, a day or a week (the part in the range)."""

    start: datetime
    hours: int  # hours of the range in this cell
    blocked: int  # of them, blocked
    clear: int  # of them, clear (the rest had no data)

    @property
    def state(self) -> str:
        return judge(self.blocked, self.clear)

    @property
    def measured(self) -> int:
        return self.blocked + self.clear


@dataclass(frozen=True, slots=True)
class NetworkCompliance:
    asn: int
    name: str  # "" when unknown
    in_event: bool
    hours: int  # hours in the range
    blocked_hours: int
    clear_hours: int
    first_clear: datetime | None  # the first clear hour in the range
    blocked_after_first_clear: int  # blocked hours after it
    last_blocked: datetime | None  # the last blocked hour in the range
    strip: tuple[Span, ...]

    @property
    def measured_hours(self) -> int:
        return self.blocked_hours + self.clear_hours

    @property
    def label(self) -> str:
        """``AS17557 (PTCL)``, or ``AS17557`` without a known name."""
        return f"AS{self.asn} ({self.name})" if self.name else f"AS{self.asn}"

    def sentence(self, since: date) -> str:
        """The network's compliance in one sentence (not escaped)."""
        head = f"Since {long_date(since)}, {self.label}"
        if not self.in_event:
            head += ", not part of the event,"
        if self.measured_hours == 0:
            return f"{head} was not measured (no hour with a verdict)."
        text = (
            f"{head} was blocked in {self.blocked_hours:,} of "
            f"{_plural(self.measured_hours, 'measured hour')}"
        )
        if self.first_clear is None:
            return f"{text}; not one clear hour."
        text += f"; first clear hour: {stamp_hour(self.first_clear)}"
        after = self.blocked_after_first_clear
        if after == 0:
            return f"{text}; not blocked again after it."
        return f"{text}; blocked again in {_plural(after, 'hour')} after it."

    def as_dict(self, since: date) -> dict[str, Any]:
        return {
            "asn": self.asn,
            "name": self.name,
            "in_event": self.in_event,
            "hours": self.hours,
            "measured_hours": self.measured_hours,
            "blocked_hours": self.blocked_hours,
            "clear_hours": self.clear_hours,
            "no_data_hours": self.hours - self.measured_hours,
            "first_clear_hour": _iso(self.first_clear),
            "blocked_hours_after_first_clear": self.blocked_after_first_clear,
            "last_blocked_hour": _iso(self.last_blocked),
            "sentence": self.sentence(since),
            "strip": [
                {
                    "start": _iso(s.start),
                    "hours": s.hours,
                    "blocked_hours": s.blocked,
                    "clear_hours": s.clear,
                    "state": s.state,
                }
                for s in self.strip
            ],
        }


@dataclass(frozen=True, slots=True)
class Compliance:
    since: date  # as asked
    start: datetime  # the range: since 00:00 UTC, or the first hour with data if later
    end: datetime  # exclusive: after the last hour with data (== start: an empty range)
    unit: str  # a strip cell: "hour" | "day" | "week"
    networks: tuple[NetworkCompliance, ...]

    @property
    def hours(self) -> int:
        return max(0, int((self.end - self.start).total_seconds()) // HOUR)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "hours": self.hours,
            "unit": self.unit,
            "networks": [n.as_dict(self.since) for n in self.networks],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def choose_unit(hours: int) -> str:
    if hours <= HOURLY_UP_TO_DAYS * 24:
        return "hour"
    if hours <= DAILY_UP_TO_DAYS * 24:
        return "day"
    return "week"


def compliance(
    cells: Iterable[tuple[int, int, int, int]],
    since: date,
    *,
    data_span: tuple[datetime, datetime] | None,
    event_networks: Sequence[tuple[int, str]],
    names: Mapping[int, str] | None = None,
) -> Compliance:
    """Each network's state from ``since`` on (see the module docstring).

    ``cells``: ``(asn, hour, blocked_probes, clear_probes)`` with ``hour`` the start of
    the hour in seconds since the epoch (rows of the same network and hour are added
    up; rows outside the range are ignored). ``data_span``: the first and last hour
    with data for the platform in the country (None: no data at all).
    ``event_networks``: ``(asn, name)`` of the event's networks, in order. ``names``:
    the other networks' names."""
    asked = datetime(since.year, since.month, since.day, tzinfo=UTC)
    if data_span is None:
        start = end = asked
    else:
        start = max(asked, data_span[0])
        end = max(start, data_span[1] + timedelta(hours=1))
    lo, hi = int(start.timestamp()), int(end.timestamp())
    hours = (hi - lo) // HOUR
    unit = choose_unit(hours)
    step = UNIT_SECONDS[unit]
    origin = lo - lo % (24 * HOUR) if unit != "hour" else lo  # day and week cells from 00:00

    counts: dict[int, dict[int, list[int]]] = {}
    for asn, hour, blocked, clear in cells:
        if lo <= hour < hi:
            acc = counts.setdefault(int(asn), {}).setdefault(int(hour) - int(hour) % HOUR, [0, 0])
            acc[0] += int(blocked)
            acc[1] += int(clear)

    def network(asn: int, name: str, in_event: bool) -> NetworkCompliance:
        by_hour = counts.get(asn, {})
        states = {h: judge(b, c) for h, (b, c) in by_hour.items()}
        blocked_at = sorted(h for h, s in states.items() if s == BLOCKED)
        clear_at = sorted(h for h, s in states.items() if s == CLEAR)
        first_clear = clear_at[0] if clear_at else None
        cells_of: dict[int, list[int]] = {}
        for h, s in states.items():
            if s != NO_DATA:
                cell = cells_of.setdefault(origin + (h - origin) // step * step, [0, 0])
                cell[0 if s == BLOCKED else 1] += 1
        strip = []
        for cell_start in range(origin, hi, step):
            first, last = max(cell_start, lo), min(cell_start + step, hi)
            if last <= first:
                continue
            b, c = cells_of.get(cell_start, (0, 0))
            strip.append(Span(_at(cell_start), (last - first) // HOUR, b, c))
        return NetworkCompliance(
            asn=asn,
            name=name,
            in_event=in_event,
            hours=hours,
            blocked_hours=len(blocked_at),
            clear_hours=len(clear_at),
            first_clear=_at(first_clear) if first_clear is not None else None,
            blocked_after_first_clear=(
                sum(1 for h in blocked_at if h > first_clear) if first_clear is not None else 0
            ),
            last_blocked=_at(blocked_at[-1]) if blocked_at else None,
            strip=tuple(strip),
        )

    known = dict(names or {})
    listed = [network(asn, name or known.get(asn, ""), True) for asn, name in event_networks]
    in_event = {asn for asn, _ in event_networks}
    others = [
        network(asn, known.get(asn, ""), False)
        for asn in counts
        if asn not in in_event and any(judge(b, c) != NO_DATA for b, c in counts[asn].values())
    ]
    others.sort(key=lambda n: (-n.measured_hours, n.asn))
    return Compliance(since=since, start=start, end=end, unit=unit, networks=(*listed, *others))


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
