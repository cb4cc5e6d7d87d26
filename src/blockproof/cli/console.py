"""What the user sees on stderr: progress bars and the verdict table.

stdout is reserved for machine output (JSON lines), so that ``| jq`` works
whatever a library logs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from blockproof.probe.functions import FunctionStatus
from blockproof.probe.runner import Summary

stderr = Console(stderr=True, highlight=False)

_METHOD_STYLE = {
    "none": "green",
    "down": "yellow",
    "undetermined": "yellow",
}


@contextmanager
def progress_bar(total: int | None, label: str) -> Iterator[Progress]:
    """A progress bar on stderr (hidden when stderr is not a terminal; total None: unknown)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with progress:
        progress.add_task(label, total=total)
        yield progress


def _json_text(value: str | bool | None) -> str:
    """A test_keys value as it reads in the JSON: null, false, true or the string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _accessible_text(row: Summary) -> str:
    """``accessible`` as JSON, or why it is unknown: never "accessible" without a judgement."""
    if row.unjudged is None:
        return _json_text(row.accessible)
    if row.unjudged.startswith("probe error"):
        return "[yellow]unknown (probe error)[/]"
    return "[yellow]unknown (no control)[/]"


# Below this many columns the explanations go under the table, numbered, instead of in
# a fifth column that would fold URLs and words (80-column terminals).
WIDE_TABLE = 110


def verdict_table(
    rows: list[Summary], title: str = "Verdicts", *, width: int | None = None
) -> RenderableType:
    """One line per URL: blocking, accessible, method and why.

    ``width`` is the terminal's (default: stderr's). On a narrow terminal the "why"
    column becomes numbered notes under the table, wrapped at words.
    """
    narrow = (width if width is not None else stderr.width) < WIDE_TABLE
    table = Table(title=title, title_justify="left", expand=False)
    if narrow:
        table.add_column("#", justify="right")
    longest = max((len(row.input) for row in rows), default=3)
    table.add_column("URL", overflow="fold", min_width=min(longest, 40))  # whole when short
    table.add_column("blocking")
    table.add_column("accessible")
    table.add_column("method")
    if not narrow:
        table.add_column("why", max_width=70)
    notes: list[Text] = []
    for number, row in enumerate(rows, 1):
        style = _METHOD_STYLE.get(row.method, "bold red")
        cells = [
            row.input,
            "[yellow]unknown[/]" if row.unjudged else _json_text(row.blocking),
            _accessible_text(row),
            f"[{style}]{row.method}[/]",
        ]
        if narrow:
            table.add_row(str(number), *cells)
            notes.append(Text(f"{number}. {row.explanation}"))
        else:
            table.add_row(*cells, row.explanation)
    return Group(table, *notes) if notes else table


_STATE_STYLE = {
    "blocked": "bold red",
    "throttled": "bold magenta",
    "reachable": "green",
    "down": "yellow",
    "unknown": "yellow",
}


def function_table(platform_name: str, statuses: list[FunctionStatus]) -> Table:
    """One line per function of a platform (web, api, media...): blocked how, or reachable."""
    table = Table(title=f"{platform_name}, by function", title_justify="left", expand=False)
    table.add_column("function")
    table.add_column("endpoints", justify="right")
    table.add_column("status")
    for status in statuses:
        style = _STATE_STYLE.get(status.state, "yellow")
        table.add_row(status.function, str(status.endpoints), f"[{style}]{status.text}[/]")
    return table
