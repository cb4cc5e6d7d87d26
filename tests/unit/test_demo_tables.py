"""The demo's tables in an 80-column terminal: every line fits, and rich wraps at spaces,
never inside a word (no "suspended nationwide by Inte", no "confi…")."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from rich.console import Console
from rich.table import Table

from blockproof.cli import campaign_demo as demo

WIDTH = 80


def _render(table: Table, width: int = WIDTH) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False).print(table)
    return out.getvalue().splitlines()


def _columns(lines: list[str], separator: str) -> list[list[str]]:
    """Each column's words, in order, from the rendered lines using ``separator``."""
    columns: list[list[str]] = []
    for line in lines:
        if not line.startswith(separator):
            continue
        parts = line.split(separator)[1:-1]
        columns += [[] for _ in range(len(parts) - len(columns))]
        for i, part in enumerate(parts):
            columns[i] += part.split()
    return columns


def cut_words(table: Table, width: int = WIDTH) -> list[str]:
    """Problems: a line wider than ``width``, or a column whose rendered words are not its
    cells' words (a word cut, folded or ellipsized). Empty when the table is readable."""
    lines = _render(table, width)
    problems = [
        f"line {i} is {len(line)} wide" for i, line in enumerate(lines) if len(line) > width
    ]
    expected_header = [str(c.header).split() for c in table.columns]
    expected_cells = [[w for cell in c.cells for w in str(cell).split()] for c in table.columns]
    for what, separator, expected in (
        ("header", "┃", expected_header),
        ("cells", "│", expected_cells),
    ):
        rendered = _columns(lines, separator)
        for i, words in enumerate(expected):
            got = rendered[i] if i < len(rendered) else []
            if got != words:
                bad = next((a, b) for a, b in zip([*got, ""], [*words, ""], strict=False) if a != b)
                problems.append(f"{what} of column {i}: rendered {bad[0]!r} for {bad[1]!r}")
    return problems


def _span(asn: int, start: str) -> SimpleNamespace:
    return SimpleNamespace(asn=asn, start=start)


def _event(**kw: Any) -> Any:
    base: dict[str, Any] = {
        "id": "pk-x-2024021717-0000",
        "kind": "platform_block",
        "platform": "x",
        "start": "2024-02-17T17:00:00Z",
        "end": None,
        "ongoing": True,
        "networks": [
            _span(asn, "2024-02-17T17:00:00Z")
            for asn in (17557, 59257, 24499, 45669, 9541, 23674, 136384)
        ],
        "methods": [
            {"method": "tls", "share": 0.81},
            {"method": "tcp_ip", "share": 0.12},
            {"method": "dns", "share": 0.07},
        ],
        "confidence": "confirmed",
        "n_measurements": 2814,
        "restorations": [("2024-02-18T09:00:00Z", "2024-02-18T13:00:00Z")],
    }
    base.update(kw)
    return SimpleNamespace(**base)


EVENTS = [
    _event(kind="outage", platform="*", start="2024-02-08T03:00:00Z",
           end="2024-02-08T19:00:00Z", ongoing=False, networks=[_span(45669, "2024-02-08")],
           methods=[{"method": "dns", "share": 1.0}], confidence="medium", n_measurements=26,
           restorations=[]),
    _event(start="2024-02-10T13:00:00Z", end="2024-02-11T02:00:00Z", ongoing=False,
           confidence="high", n_measurements=9, restorations=[]),
    _event(),
]  # fmt: skip
WINDOW_END = datetime(2024, 4, 24, tzinfo=UTC)
COUNTS = [
    demo.DayCount(f"2024-02-{d:02d}", measured=10 * d, blocked=8 * d, failed=d, networks=7)
    for d in range(6, 22)
]

TABLES: list[tuple[str, Callable[[], Table]]] = [
    ("detected events", lambda: demo.events_table(EVENTS, "Detected events (simulated campaign)")),
    ("X day by day", lambda: demo.daily_table(COUNTS, "X in Pakistan, day by day (simulated)")),
    ("real timeline", lambda: demo.timeline_table(demo.timeline(), EVENTS, WINDOW_END)),
]


@pytest.mark.parametrize("make", [t[1] for t in TABLES], ids=[t[0] for t in TABLES])
def test_demo_tables_fit_80_columns_and_cut_no_word(make: Callable[[], Table]) -> None:
    assert cut_words(make()) == []


def test_the_check_catches_cut_words() -> None:
    """The check itself: a sentence truncated, a word folded, a word ellipsized."""
    sentence = demo.timeline()[1]["event"]
    truncated = Table()
    truncated.add_column("what happened")
    truncated.add_row(sentence[:90])  # what the demo used to print
    assert cut_words(truncated) == []  # readable, but it is not the sentence:
    full = Table()
    full.add_column("what happened")
    full.add_row(sentence)
    assert cut_words(full) == []
    assert sentence[:90].split()[-1] not in sentence.split()  # "...by Inte"
    for overflow in ("fold", "ellipsis"):
        narrow = Table()
        narrow.add_column("url", overflow=overflow, max_width=12)  # type: ignore[arg-type]
        narrow.add_row("https://twitter.com/")
        assert cut_words(narrow) != [], overflow


def test_the_timeline_keeps_every_sentence_whole() -> None:
    table = demo.timeline_table(demo.timeline(), EVENTS, WINDOW_END)
    (cells,) = [list(c.cells) for c in table.columns if c.header == "what happened"]
    assert cells == [row["event"] for row in demo.timeline()]


def test_detected_labels() -> None:
    day = datetime(2024, 2, 18, tzinfo=UTC)
    assert demo.detected_label(day, EVENTS, WINDOW_END) == "x block (restored from 09:00)"
    assert demo.detected_label(datetime(2024, 2, 8, tzinfo=UTC), EVENTS, WINDOW_END) == "outage"
    assert demo.detected_label(datetime(2024, 1, 26, tzinfo=UTC), EVENTS, WINDOW_END) == "-"
    after = datetime(2025, 5, 7, tzinfo=UTC)
    assert demo.detected_label(after, EVENTS, WINDOW_END) == "(after the data)"


def test_daily_counts_from_cells() -> None:
    hour = int(datetime(2024, 2, 17, 18, tzinfo=UTC).timestamp())
    cells = pa.Table.from_pylist(
        [
            {"platform": "x", "probe_asn": 17557, "hour": hour, "n_measurements": 5,
             "anomaly": 3, "confirmed": 1, "failure": 1},
            {"platform": "x", "probe_asn": 23674, "hour": hour + 3600, "n_measurements": 2,
             "anomaly": 0, "confirmed": 0, "failure": 0},
            {"platform": "youtube", "probe_asn": 17557, "hour": hour, "n_measurements": 4,
             "anomaly": 0, "confirmed": 0, "failure": 0},
        ]
    )  # fmt: skip
    counts = demo.daily_counts(cells, "x", "2024-02-16", "2024-02-18")
    assert counts == [
        demo.DayCount("2024-02-16", 0, 0, 0, 0),  # no data: zeros, not missing
        demo.DayCount("2024-02-17", 7, 4, 1, 2),
        demo.DayCount("2024-02-18", 0, 0, 0, 0),
    ]
    rendered = "\n".join(_render(demo.daily_table(counts, "x")))
    assert "67%" in rendered  # 4 blocked of the 6 that did not fail
    hourly = demo.hourly_counts(cells, "x", "2024-02-17 17:00", "2024-02-17 20:00")
    assert hourly == [
        demo.DayCount("2024-02-17 17:00", 0, 0, 0, 0),
        demo.DayCount("2024-02-17 18:00", 5, 4, 1, 1),
        demo.DayCount("2024-02-17 19:00", 2, 0, 0, 1),
        demo.DayCount("2024-02-17 20:00", 0, 0, 0, 0),
    ]
    assert cut_words(demo.daily_table(hourly, "X restored, by hour", unit="hour")) == []
