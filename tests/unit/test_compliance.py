"""The compliance view's computation: hourly cells and a date in, per-network summary out.

Every case is a table row: the cells (per network and hour, blocked and clear
probe-hours), the date asked, and what the network's summary must say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from blockproof.explorer.compliance import (
    BLOCKED,
    CLEAR,
    NO_DATA,
    Compliance,
    choose_unit,
    compliance,
    judge,
)

T0 = datetime(2024, 2, 22, tzinfo=UTC)  # the Sindh High Court's first order
PTCL = 17557


def at(hour: int) -> datetime:
    return T0 + timedelta(hours=hour)


def cell(hour: int, blocked: int, clear: int, asn: int = PTCL) -> tuple[int, int, int, int]:
    return asn, int(at(hour).timestamp()), blocked, clear


def series(states: str, asn: int = PTCL, first: int = 0) -> list[tuple[int, int, int, int]]:
    """One cell per character from hour ``first``: B blocked, C clear, F only failures
    (probes, none judged), '.' no cell at all."""
    out = []
    for i, ch in enumerate(states):
        if ch == ".":
            continue
        blocked, clear = {"B": (2, 0), "C": (0, 3), "F": (0, 0)}[ch]
        out.append(cell(first + i, blocked, clear, asn))
    return out


@dataclass(frozen=True)
class Case:
    name: str
    cells: list[tuple[int, int, int, int]]
    since: date
    blocked: int
    measured: int
    first_clear: datetime | None
    after: int
    sentence: str
    span: tuple[int, int] | None = None  # data's first and last hour (default: the cells')
    last_blocked: datetime | None = None


CASES = [
    Case(
        "all blocked",
        series("BBBBBB"),
        T0.date(),
        6,
        6,
        None,
        0,
        "Since 22 February 2024, AS17557 (PTCL) was blocked in 6 of 6 measured hours; "
        "not one clear hour.",
        last_blocked=at(5),
    ),
    Case(
        "cleared at once",
        series("BBBCCCC"),
        T0.date(),
        3,
        7,
        at(3),
        0,
        "Since 22 February 2024, AS17557 (PTCL) was blocked in 3 of 7 measured hours; "
        "first clear hour: 2024-02-22 03:00 UTC; not blocked again after it.",
        last_blocked=at(2),
    ),
    Case(
        "cleared then relapse",
        series("BBCCBBCB"),
        T0.date(),
        5,
        8,
        at(2),
        3,
        "Since 22 February 2024, AS17557 (PTCL) was blocked in 5 of 8 measured hours; "
        "first clear hour: 2024-02-22 02:00 UTC; blocked again in 3 hours after it.",
        last_blocked=at(7),
    ),
    Case(
        # hours without cells and hours of failures only are no data: never clear, not
        # counted as measured, and no first clear hour among them
        "no data gaps",
        series("B..FF.BF.C.B"),
        T0.date(),
        3,
        4,
        at(9),
        1,
        "Since 22 February 2024, AS17557 (PTCL) was blocked in 3 of 4 measured hours; "
        "first clear hour: 2024-02-22 09:00 UTC; blocked again in 1 hour after it.",
        last_blocked=at(11),
    ),
    Case(
        "since after the end",
        series("BBCC"),
        date(2024, 3, 1),
        0,
        0,
        None,
        0,
        "Since 1 March 2024, AS17557 (PTCL) was not measured (no hour with a verdict).",
    ),
    Case(
        # the days before the date do not count; before the data, nothing is invented
        "since before the start",
        series("CCBB", first=48),
        date(2024, 2, 1),
        2,
        4,
        at(48),
        2,
        "Since 1 February 2024, AS17557 (PTCL) was blocked in 2 of 4 measured hours; "
        "first clear hour: 2024-02-24 00:00 UTC; blocked again in 2 hours after it.",
        last_blocked=at(51),
    ),
    Case(
        "the date cuts the series",
        series("CCCCBB", first=-4),
        T0.date(),
        2,
        2,
        None,
        0,
        "Since 22 February 2024, AS17557 (PTCL) was blocked in 2 of 2 measured hours; "
        "not one clear hour.",
        last_blocked=at(1),
    ),
    Case(
        # a network of the event without a single cell since the date
        "unknown network",
        series("BBC", asn=64500),
        T0.date(),
        0,
        0,
        None,
        0,
        "Since 22 February 2024, AS17557 (PTCL) was not measured (no hour with a verdict).",
    ),
    Case(
        "one hour",
        series("B"),
        T0.date(),
        1,
        1,
        None,
        0,
        "Since 22 February 2024, AS17557 (PTCL) was blocked in 1 of 1 measured hour; "
        "not one clear hour.",
        last_blocked=at(0),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_networks_compliance(case: Case) -> None:
    hours = sorted({h for _, h, _, _ in case.cells})
    if case.span is not None:
        span = (at(case.span[0]), at(case.span[1]))
    else:
        span = (datetime.fromtimestamp(hours[0], UTC), datetime.fromtimestamp(hours[-1], UTC))
    result = compliance(
        case.cells, case.since, data_span=span, event_networks=[(PTCL, "PTCL")], names={}
    )
    ptcl = result.networks[0]
    assert ptcl.asn == PTCL
    assert ptcl.in_event
    assert (ptcl.blocked_hours, ptcl.measured_hours) == (case.blocked, case.measured)
    assert ptcl.first_clear == case.first_clear
    assert ptcl.blocked_after_first_clear == case.after
    assert ptcl.last_blocked == case.last_blocked
    assert ptcl.sentence(case.since) == case.sentence
    # the strip covers the range exactly, and agrees with the counts
    assert sum(s.hours for s in ptcl.strip) == result.hours == ptcl.hours
    assert sum(s.blocked for s in ptcl.strip) == ptcl.blocked_hours
    assert sum(s.clear for s in ptcl.strip) == ptcl.clear_hours


@pytest.mark.parametrize(
    ("blocked", "clear", "state"),
    [
        (0, 0, NO_DATA),  # no probe-hour judged (no measurement, or only failures)
        (1, 0, BLOCKED),
        (0, 1, CLEAR),
        (1, 1, BLOCKED),  # half: blocked, as the heatmap and the country page say
        (1, 2, CLEAR),
        (2, 3, CLEAR),
        (3, 3, BLOCKED),
        (5, 1, BLOCKED),
    ],
)
def test_one_judgement_of_an_hour(blocked: int, clear: int, state: str) -> None:
    assert judge(blocked, clear) == state


def test_the_explorers_other_judgements_are_this_one() -> None:
    """The heatmap's colour and the country page's word come from ``judge`` too."""
    from blockproof.explorer.charts import _shade
    from blockproof.explorer.evidence import NetworkStatus

    for blocked, clear in [(0, 0), (1, 0), (0, 1), (1, 1), (1, 2), (2, 3), (3, 3)]:
        state = judge(blocked, clear)
        colour = _shade(blocked, blocked + clear)
        status = NetworkStatus("x", 1, "", blocked, clear, 1, T0).state
        assert (colour == "#c62828") == (state == BLOCKED)
        assert status.startswith("blocked") == (state == BLOCKED)
        assert (colour == "#bdbdbd") == (state == NO_DATA)


def test_networks_of_the_event_first_then_the_others_with_data() -> None:
    cells = [
        *series("BBBB", asn=PTCL),
        *series("CCCB", asn=45669),
        *series("C", asn=9541),
        *series("FF", asn=24499),  # only failures: nothing to say, not listed
    ]
    result = compliance(
        cells,
        T0.date(),
        data_span=(at(0), at(3)),
        event_networks=[(23674, "Nayatel"), (PTCL, "")],
        names={PTCL: "PTCL", 45669: "Jazz"},
    )
    assert [(n.asn, n.in_event) for n in result.networks] == [
        (23674, True), (PTCL, True), (45669, False), (9541, False),
    ]  # fmt: skip
    assert result.networks[0].measured_hours == 0  # in the event, not measured since
    assert result.networks[1].label == "AS17557 (PTCL)"  # the name from the others' names
    assert result.networks[3].label == "AS9541"  # no name known
    assert result.networks[2].sentence(T0.date()) == (
        "Since 22 February 2024, AS45669 (Jazz), not part of the event, was blocked in 1 of "
        "4 measured hours; first clear hour: 2024-02-22 00:00 UTC; blocked again in 1 hour "
        "after it."
    )


def test_no_data_at_all() -> None:
    result = compliance([], T0.date(), data_span=None, event_networks=[(PTCL, "PTCL")], names=None)
    assert result.hours == 0
    assert result.networks[0].strip == ()
    assert "was not measured" in result.networks[0].sentence(T0.date())


@pytest.mark.parametrize(
    ("hours", "unit"),
    [(1, "hour"), (7 * 24, "hour"), (7 * 24 + 1, "day"), (366 * 24, "day"), (400 * 24, "week")],
)
def test_the_strip_is_hourly_for_a_week_daily_for_a_year_weekly_beyond(
    hours: int, unit: str
) -> None:
    assert choose_unit(hours) == unit


def test_a_daily_strip_judges_each_day_by_its_measured_hours() -> None:
    # day 1: 20 blocked, 2 clear; day 2: 3 blocked, 5 clear; day 3..9: nothing
    cells = series("B" * 20 + "CC" + ".." + "BBB" + "CCCCC" + "." * 16)
    result = compliance(
        cells, T0.date(), data_span=(at(0), at(9 * 24 - 1)), event_networks=[(PTCL, "PTCL")]
    )
    assert result.unit == "day"
    strip = result.networks[0].strip
    assert len(strip) == 9
    assert [(s.blocked, s.clear, s.state) for s in strip[:3]] == [
        (20, 2, BLOCKED), (3, 5, CLEAR), (0, 0, NO_DATA),
    ]  # fmt: skip
    assert all(s.hours == 24 for s in strip)


def test_a_range_starting_mid_day_has_a_short_first_cell() -> None:
    cells = series("C" * 30, first=10)
    result = compliance(
        cells,
        date(2024, 2, 1),
        data_span=(at(10), at(10 + 8 * 24)),
        event_networks=[(PTCL, "PTCL")],
    )
    strip = result.networks[0].strip
    assert strip[0].start == T0
    assert strip[0].hours == 14
    assert sum(s.hours for s in strip) == result.hours == 8 * 24 + 1


def test_as_dict_carries_the_sentence_and_the_strip() -> None:
    result: Compliance = compliance(
        series("BBC"), T0.date(), data_span=(at(0), at(2)), event_networks=[(PTCL, "PTCL")]
    )
    data = result.as_dict()
    assert data["since"] == "2024-02-22"
    assert data["unit"] == "hour"
    (ptcl,) = data["networks"]
    assert ptcl["first_clear_hour"] == "2024-02-22T02:00:00Z"
    assert ptcl["no_data_hours"] == 0
    assert [s["state"] for s in ptcl["strip"]] == [BLOCKED, BLOCKED, CLEAR]
    assert ptcl["sentence"].startswith("Since 22 February 2024, AS17557 (PTCL) was blocked")
