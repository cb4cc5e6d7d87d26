"""The probe's verdict table reads well in an 80-column terminal and in a wide one:
no line wider than the terminal, no word of an explanation cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from blockproof.cli.console import WIDE_TABLE, verdict_table
from blockproof.pipeline.events import StoredEvent
from blockproof.probe.runner import Summary

ROWS = [
    Summary("https://twitter.com/", "http-failure", False, "tls", "wc.tls.reset",
            "The TLS handshake with 104.244.42.6:443 for twitter.com was reset "
            "(connection_reset) while the control's handshake succeeded."),
    Summary("https://www.wikipedia.org/", False, True, "none", "wc.ok.https",
            "https://www.wikipedia.org/ is accessible: the page was fetched over HTTPS from "
            "185.15.59.224:443, with a certificate valid for www.wikipedia.org."),
    Summary("https://x.com/", None, None, "undetermined", "wc.control.unavailable",
            "The control was unavailable (generic_timeout_error) and resolving failed.",
            unjudged="no control: generic_timeout_error"),
]  # fmt: skip


def _render(width: int) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    console.print(verdict_table(ROWS, width=width))
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 100, WIDE_TABLE, 160])
def test_the_verdict_table_fits_and_cuts_no_word(width: int) -> None:
    lines = _render(width)
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    text = " ".join(lines)
    for row in ROWS:
        assert row.input in text  # every URL whole on its line
        if width < WIDE_TABLE:  # explanations as numbered notes, wrapped at words
            words = " ".join(
                line for line in lines if not line.startswith(("┃", "│", "┏", "┡", "└"))
            ).split()
            for word in row.explanation.split():
                assert word in words, (word, lines)
    assert "unknown" in text
    assert "control)" in text  # "unknown (no control)", maybe on two lines


def test_narrow_tables_number_their_notes() -> None:
    lines = _render(80)
    notes = [line for line in lines if line[:2] in ("1.", "2.", "3.")]
    assert [n[:2] for n in notes] == ["1.", "2.", "3."]
    assert any(line.startswith("│ 1 │ https://twitter.com/") for line in lines)


def _network(asn: int) -> dict[str, object]:
    return {
        "asn": asn, "name": "", "start": "2024-02-17T15:00:00Z",
        "start_earliest": "2024-02-17T14:00:00Z", "start_latest": "2024-02-17T15:00:00Z",
        "end": None, "end_earliest": None, "end_latest": None, "blocked_probe_hours": 40,
        "scored_probe_hours": 44, "floor_p_value": 1e-9, "restorations": [],
    }  # fmt: skip


EVENT = StoredEvent.from_json({
    "id": "pk-x-20240217-857cdd76", "kind": "platform_block", "platform": "x", "country": "PK",
    "start": "2024-02-17T15:00:00Z", "start_earliest": "2024-02-17T14:00:00Z",
    "start_latest": "2024-02-17T15:00:00Z", "end": None, "end_earliest": None,
    "end_latest": None, "ongoing": True,
    "networks": [_network(a) for a in (17557, 45669, 59257, 24499, 9541)],
    "methods": [{"method": "tls", "count": 760, "share": 0.94},
                {"method": "tcp_ip", "count": 40, "share": 0.05}],
    "confidence": "confirmed", "n_measurements": 812, "n_probes": 40, "n_blocked": 800,
    "n_confirmed": 700, "restorations": [], "witnesses": [], "rules_version": "1",
})  # fmt: skip


def test_events_on_a_narrow_terminal_are_paragraphs_with_whole_words() -> None:
    from blockproof.cli.pipeline import events_paragraphs

    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(events_paragraphs([EVENT, EVENT]))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    words = out.getvalue().split()
    for word in ("pk-x-20240217-857cdd76", "AS59257", "2024-02-17", "confirmed;", "ongoing;"):
        assert word in words
    assert words.count("pk-x-20240217-857cdd76") == 2
