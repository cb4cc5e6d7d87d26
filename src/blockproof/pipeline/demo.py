"""The second half of `blockproof demo`: a simulated Pakistan-2024 campaign, end to end.

Simulate many probes over three months (``pakistan-2024-x``), ingest, analyze,
then print the detected events next to the real timeline of Pakistan's X block
(``blockproof/data/timelines/pakistan-x-2024.csv``: press, courts, OONI), so a
reader can see what the pipeline would have said, and when.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from blockproof.pipeline.analyze import Event, analyze_store, save
from blockproof.pipeline.ingest import ingest
from blockproof.pipeline.store import Store
from blockproof.simulate import resolve_scenario, simulate

SCENARIO = "pakistan-2024-x"


def timeline() -> list[dict[str, str]]:
    text = (resources.files("blockproof.data") / "timelines" / "pakistan-x-2024.csv").read_text(
        "utf-8"
    )
    return list(csv.DictReader(io.StringIO(text)))


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)


def _covering(day: datetime, events: list[Event]) -> list[Event]:
    out = []
    for e in events:
        start = _day(e.start)
        end = _day(e.end) if e.end else None
        if start <= day and (end is None or day <= end):
            out.append(e)
    return out


def scenario_window_end(out: Path) -> str:
    """The end of the simulated window, from the truth file next to the data."""
    import json

    truth = out.with_name(out.name.split(".", 1)[0] + ".truth.json")
    end: str = json.loads(truth.read_text())["window"]["end"]
    return end


def run_campaign_demo(workdir: Path, *, probes: int, console: Console) -> Store:
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{SCENARIO}.jsonl.gz"
    store = Store(workdir / "store")
    console.print(
        f"\n[bold]Pipeline[/]: simulate {probes} probes in Pakistan over 90 days, ingest, analyze"
        f" (store: {store.root})"
    )
    started = time.monotonic()
    scenario = resolve_scenario(SCENARIO)
    if not out.exists():
        result = simulate(scenario, out, probes=probes, seed=0)
        console.print(f"  simulated: {result.summary()}")
    with console.status("ingesting (parse, judge, tabulate)..."):
        report = ingest([out], store)
    console.print(
        f"  ingested: {report.new} new, {report.duplicate} already stored, {report.bad} bad"
        f" ({report.seconds:.1f} s)"
    )
    with console.status("analyzing (cells, change points, events)..."):
        analysis = analyze_store(store)
    save(store, analysis)
    events = analysis.events
    from blockproof.pipeline.commands import events_table

    table = events_table(
        [e.as_dict() for e in events], "Detected events (simulated campaign)", ids=False
    )
    console.print(table)
    window_end = _day(scenario_window_end(out))
    real = Table(title="The real timeline (press, courts, OONI)")
    real.add_column("date")
    real.add_column("what happened")
    real.add_column("detected")
    for row in timeline():
        day = _day(row["date_utc_or_local"])
        if day > window_end:
            label = "(after the data)"
        else:
            found = _covering(day, events)
            label = (
                ", ".join("outage" if e.platform == "*" else f"{e.platform} block" for e in found)
                or "-"
            )
        real.add_row(row["date_utc_or_local"], row["event"][:90], label)
    console.print(real)
    evidence_report = _write_report(store, events, workdir)
    if evidence_report is not None:
        console.print(f"  evidence report of the X block: {evidence_report}", soft_wrap=True)
    console.print(
        f"  pipeline demo: {time.monotonic() - started:.1f} s;"
        f" `blockproof events --store {store.root}` lists the events again"
    )
    return store


def _write_report(store: Store, events: list[Event], workdir: Path) -> Path | None:
    """The evidence report of the longest X block, as a self-contained HTML page."""
    from blockproof.explorer.evidence import gather
    from blockproof.explorer.report import render_html

    blocks = [e for e in events if e.platform == "x" and e.kind == "platform_block"]
    if not blocks:
        return None
    main = max(blocks, key=lambda e: e.n_measurements)
    path = workdir / f"report-{main.id}.html"
    path.write_text(render_html(gather(store, main.id)), encoding="utf-8")
    return path
