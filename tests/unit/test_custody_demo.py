"""The demo's share of the campaign that goes through the collector (``cli.custody_demo``).

The share must leave the hourly cells exactly as they were: a signed measurement's
probe is its key (one per network), so two signed runs of one network in one hour
would count as one probe. Each row: runs as (network, start times of its
measurements), the share's period, and the runs chosen.
"""

from __future__ import annotations

import orjson
import pytest

from blockproof.cli.custody_demo import pick_share


def lines_of(runs: list[tuple[str, list[str]]]) -> list[bytes]:
    out = []
    for n, (asn, starts) in enumerate(runs):
        for start in starts:
            out.append(
                orjson.dumps(
                    {"report_id": f"run-{n}", "probe_asn": asn, "measurement_start_time": start}
                )
            )
    return out


def chosen(runs: list[tuple[str, list[str]]], every: int) -> list[int]:
    """The indexes of the runs whose lines are in the share."""
    lines = lines_of(runs)
    share = pick_share(lines, every)
    picked = sorted({int(orjson.loads(lines[i])["report_id"].split("-")[1]) for i in share.lines})
    assert share.runs == len(picked)
    return picked


H = "2024-02-22 1{}:00:00"


@pytest.mark.parametrize(
    ("runs", "every", "expected"),
    [
        # every second run of each network, by start time (the first included)
        ([("AS1", [H.format(0)]), ("AS1", [H.format(1)]), ("AS1", [H.format(2)])], 2, [0, 2]),
        # networks counted apart
        ([("AS1", [H.format(0)]), ("AS2", [H.format(0)]), ("AS1", [H.format(1)])], 2, [0, 1]),
        # by start time, not by line order
        ([("AS1", [H.format(5)]), ("AS1", [H.format(1)]), ("AS1", [H.format(3)])], 2, [0, 1]),
        # a run whose hour another chosen run of the network holds is left out
        ([("AS1", ["2024-02-22 10:05:00"]), ("AS1", ["2024-02-22 10:30:00"])], 1, [0]),
        # ... also when it only reaches into that hour
        ([("AS1", [H.format(0)]), ("AS1", ["2024-02-22 09:59:00", H.format(0)])], 1, [1]),
        # the same hour on another network is fine
        ([("AS1", [H.format(0)]), ("AS2", [H.format(0)])], 1, [0, 1]),
    ],
)
def test_the_share(runs: list[tuple[str, list[str]]], every: int, expected: list[int]) -> None:
    assert chosen(runs, every) == expected


def test_lines_that_are_not_measurements_are_left_out() -> None:
    lines = [b"not json", b"[1, 2]", b'{"report_id": 7}', *lines_of([("AS1", [H.format(0)])])]
    share = pick_share(lines, 1)
    assert share.lines == [3]
