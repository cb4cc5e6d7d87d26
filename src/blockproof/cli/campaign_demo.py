"""The second half of `blockproof demo`: a simulated Pakistan-2024 campaign, end to end.

Simulate an OONI-like campaign over three months (``pakistan-2024-x``: as sparse and
noisy as OONI's real data, with densities derived from a real sample of OONI's
fastpath table, see docs/simulator.md), ingest it in the order it arrived, analyze,
then print the detected events, X's measurements day by day around the events, and
the real timeline of Pakistan's X block
(``blockproof/data/timelines/pakistan-x-2024.csv``: press, courts, OONI) with what
the pipeline detected on each date, so a reader can see what the pipeline would have
said, and when.

The custody chain is shown too (``cli.custody_demo``): the lab's measurements and one
simulated run in forty are signed by the demo probes' keys, uploaded to a collector
running on loopback, and the campaign's share is exported with its receipts and
ingested before the rest, so that the X block's evidence report shows sample
measurements with a valid signature and a valid inclusion proof; the demo prints the
``blockproof verify`` command that checks one. The report carries the compliance
view since the Sindh High Court's first order (22 February 2024), and the demo prints
one line per network of the block.

Every table fits an 80-column terminal and wraps at spaces, never inside a word
(``tables``; tests/unit/test_demo_tables.py renders them at width 80).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from blockproof.cli.custody_demo import SHARE_EVERY, Custody
from blockproof.pipeline.analyze import Event, analyze_store, save
from blockproof.pipeline.ingest import IngestReport, ingest
from blockproof.pipeline.store import Store
from blockproof.simulate import resolve_sim_scenario, simulate
from blockproof.simulate.campaign import truth_path

if TYPE_CHECKING:
    from blockproof.explorer.evidence import Evidence
    from blockproof.model.measurement import Measurement

SCENARIO = "pakistan-2024-x"
# the days of X's measurements the demo prints: the outage, the disruption, the block
DAILY_FROM, DAILY_TO = "2024-02-06", "2024-02-21"


def timeline() -> list[dict[str, str]]:
    text = (resources.files("blockproof.data") / "timelines" / "pakistan-x-2024.csv").read_text(
        "utf-8"
    )
    return list(csv.DictReader(io.StringIO(text)))


def court_order_date(rows: Iterable[Mapping[str, str]] | None = None) -> date | None:
    """The date of the Sindh High Court's first order to restore X, from the timeline."""
    for row in timeline() if rows is None else rows:
        if "Sindh High Court" in row["event"]:
            return date.fromisoformat(row["date_utc_or_local"][:10])
    return None


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)


def _covering(day: datetime, events: Iterable[Event]) -> list[Event]:
    out = []
    for e in events:
        start = _day(e.start)
        end = _day(e.end) if e.end else None
        if start <= day and (end is None or day <= end):
            out.append(e)
    return out


def scenario_window_end(out: Path) -> str:
    """The end of the simulated window, from the truth file next to the data."""
    end: str = json.loads(truth_path(out).read_text())["window"]["end"]
    return end


# --------------------------------------------------------------------------------------
# the tables (pure: events, cells and the timeline in, rich tables out)


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", expand=False)


def _hhmm(text: str) -> str:
    """``2024-02-17T17:00:00Z`` -> ``2024-02-17 17:00``."""
    return text[:16].replace("T", " ")


def _what(event: Event) -> str:
    return "outage (all)" if event.platform == "*" else f"{event.platform} blocked"


def events_table(events: Iterable[Event], title: str) -> Table:
    """The detected events, one row each, in 80 columns."""
    table = _table(title)
    table.add_column("what", min_width=7)
    table.add_column("networks", min_width=8)
    table.add_column("when (UTC)", min_width=10)
    table.add_column("how", min_width=7)
    table.add_column("confidence", min_width=9)
    table.add_column("n", justify="right", min_width=4)
    for e in events:
        networks = " ".join(f"AS{n.asn}" for n in sorted(e.networks, key=lambda n: n.start))
        until = "ongoing" if e.ongoing or e.end is None else _hhmm(e.end)
        if until[:10] == e.start[:10]:
            until = until[11:]  # the same day: the time only
        how = ", ".join(f"{m['method']} {m['share']:.0%}" for m in e.methods[:3])
        table.add_row(
            _what(e),
            networks,
            f"{_hhmm(e.start)} to {until}",
            how or "-",
            e.confidence,
            str(e.n_measurements),
        )
    return table


@dataclass(frozen=True, slots=True)
class DayCount:
    day: str
    measured: int
    blocked: int
    failed: int
    networks: int


def daily_counts(cells: pa.Table, platform: str, first: str, last: str) -> list[DayCount]:
    """One platform's measurements per day (UTC) from the hourly cells, every day from
    ``first`` to ``last`` (a day without data is a row of zeros)."""
    return _counts(cells, platform, first, last, "%Y-%m-%d", timedelta(days=1))


def hourly_counts(cells: pa.Table, platform: str, first: str, last: str) -> list[DayCount]:
    """The same per hour (``first`` and ``last`` as ``YYYY-MM-DD HH:00``)."""
    return _counts(cells, platform, first, last, "%Y-%m-%d %H:00", timedelta(hours=1))


def _counts(
    cells: pa.Table, platform: str, first: str, last: str, label: str, step: timedelta
) -> list[DayCount]:
    rows: dict[str, dict[str, Any]] = {}
    for cell in cells.to_pylist():
        if cell.get("platform") != platform:
            continue
        hour = cell["hour"]
        when = hour if isinstance(hour, datetime) else datetime.fromtimestamp(int(hour), UTC)
        key = when.strftime(label)
        if not first <= key <= last:
            continue
        row = rows.setdefault(key, {"n": 0, "blocked": 0, "failed": 0, "networks": set()})
        row["n"] += int(cell.get("n_measurements") or 0)
        row["blocked"] += int(cell.get("anomaly") or 0) + int(cell.get("confirmed") or 0)
        row["failed"] += int(cell.get("failure") or 0) + int(cell.get("down") or 0)
        row["networks"].add(cell.get("probe_asn"))
    out = []
    moment = datetime.fromisoformat(first)
    while (text := moment.strftime(label)) <= last:
        row = rows.get(text, {"n": 0, "blocked": 0, "failed": 0, "networks": set()})
        out.append(DayCount(text, row["n"], row["blocked"], row["failed"], len(row["networks"])))
        moment += step
    return out


def daily_table(counts: Iterable[DayCount], title: str, *, unit: str = "day") -> Table:
    """Day (or hour), measurements, blocked share (of those not failed), failures,
    networks."""
    table = _table(title)
    table.add_column(f"{unit} (UTC)", min_width=10)
    table.add_column("measured", justify="right")
    table.add_column("blocked", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("networks", justify="right")
    for c in counts:
        scored = c.measured - c.failed
        share = f"{c.blocked / scored:.0%}" if scored else "-"
        table.add_row(c.day, str(c.measured), share, str(c.failed), str(c.networks))
    return table


def detected_label(day: datetime, events: Iterable[Event], window_end: datetime) -> str:
    """What the pipeline detected on a date of the real timeline."""
    if day > window_end:
        return "(after the data)"
    labels = []
    for e in _covering(day, events):
        label = "outage" if e.platform == "*" else f"{e.platform} block"
        restored = [a for a, b in e.restorations if _day(a) <= day <= _day(b)]
        if restored:
            label += f" (restored from {restored[0][11:16]})"
        labels.append(label)
    return ", ".join(dict.fromkeys(labels)) or "-"


def timeline_table(
    rows: Iterable[Mapping[str, str]], events: Iterable[Event], window_end: datetime
) -> Table:
    """The real timeline, every sentence whole (wrapped at spaces), and what was detected."""
    events = list(events)
    table = _table("The real timeline (press, courts, OONI)")
    table.add_column("date", no_wrap=True, min_width=10)
    table.add_column("what happened", ratio=3)
    table.add_column("detected", ratio=1, min_width=10)
    for row in rows:
        when = row["date_utc_or_local"]
        table.add_row(when, row["event"], detected_label(_day(when), events, window_end))
    return table


# --------------------------------------------------------------------------------------
# the demo


def run_campaign_demo(
    workdir: Path, *, probes: int, console: Console, lab: Iterable[Measurement] = ()
) -> Store:
    """Simulate, sign a share and upload it with ``lab`` (the lab's measurements) to a
    collector, ingest, analyze, print, write the report; returns the store."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{SCENARIO}.jsonl.gz"
    store = Store(workdir / "store")
    custody = Custody.under(workdir)
    console.print(
        "\n[bold]Pipeline[/]: simulate three months of OONI-like measurements in Pakistan"
        " (as sparse and noisy as OONI's real data), ingest, analyze"
        f" (store: {store.root})"
    )
    started = time.monotonic()
    scenario = resolve_sim_scenario(SCENARIO)
    if not out.exists():
        result = simulate(scenario, out, probes=probes, seed=0)
        console.print(f"  simulated: {result.summary()}", soft_wrap=True)
    truth = json.loads(truth_path(out).read_text())
    noise = truth.get("noise", {})
    console.print(
        f"  {truth['measurements']} measurements in {truth['sessions']} runs (one report id"
        f" each), {noise.get('failures', 0)} failed, {noise.get('stray_anomalies', 0)} stray"
        f" anomalies, {noise.get('late_uploads', 0)} uploaded more than an hour late"
    )
    _custody(console, custody, out, lab)
    window = truth["window"]
    days = custody.days(window["start"][:10].replace("-", ""), window["end"][:10].replace("-", ""))
    with console.status("ingesting (parse, judge, tabulate)..."):
        # the signed copies first: the unsigned twins in the simulated file are then
        # duplicates, and the store keeps the measurements that can be checked
        signed = ingest(days, store) if days else IngestReport()
        report = ingest([out], store)
    console.print(
        f"  ingested: {signed.new} signed with receipts (the collector's export of the"
        " campaign's days: the lab's measurements, made today, stay in its log only), then"
        f" {report.new} new from the simulation; {signed.duplicate + report.duplicate}"
        f" already stored, {signed.bad + report.bad} bad"
        f" ({signed.seconds + report.seconds:.1f} s)"
    )
    with console.status("analyzing (cells, change points, events)..."):
        analysis = analyze_store(store)
    save(store, analysis)
    events = analysis.events
    console.print(events_table(events, "Detected events (simulated campaign)"))
    counts = daily_counts(analysis.cells, "x", DAILY_FROM, DAILY_TO)
    console.print(daily_table(counts, "X in Pakistan, day by day (simulated)"))
    _show_restorations(console, analysis.cells, truth, events)
    window_end = _day(scenario_window_end(out))
    console.print(timeline_table(timeline(), events, window_end))
    written = _write_report(store, events, workdir)
    if written is not None:
        path, evidence = written
        console.print(f"  evidence report of the X block: {path}", soft_wrap=True)
        _show_compliance(console, evidence)
        _show_verify(console, custody, evidence)
    console.print(
        f"  pipeline demo: {time.monotonic() - started:.1f} s;"
        f" `blockproof events --store {store.root}` lists the events again",
        soft_wrap=True,
    )
    return store


def _show_restorations(
    console: Console, cells: pa.Table, truth: Mapping[str, Any], events: list[Event]
) -> None:
    """The brief restoration of the X block, hour by hour, as the data show it, and
    whether the detector could tell it apart (it needs a run of clear measurements on
    one network: docs/detection.md)."""
    for episode in truth.get("episodes", []):
        if episode.get("platform") != "x":
            continue
        for gap in episode.get("restorations", []):
            start, end = (
                datetime.fromisoformat(gap[k].replace("Z", "+00:00")) for k in ("start", "end")
            )
            first = (start - timedelta(hours=4)).strftime("%Y-%m-%d %H:00")
            last = (end + timedelta(hours=3)).strftime("%Y-%m-%d %H:00")
            hours = hourly_counts(cells, "x", first, last)
            title = (
                f"X restored {gap['start'][:10]} {gap['start'][11:16]}-{gap['end'][11:16]}"
                " UTC, by hour"
            )
            console.print(daily_table(hours, title, unit="hour"))
            seen = any(
                a < gap["end"] and b > gap["start"] for e in events for a, b in e.restorations
            )
            console.print(
                "  detected as a restoration: "
                + (
                    "yes"
                    if seen
                    else "no (too few clear measurements in those hours to close the block"
                    " on one network; docs/detection.md)"
                )
            )
            return  # the SNI and DNS episodes share their restoration


def _write_report(store: Store, events: list[Event], workdir: Path) -> tuple[Path, Evidence] | None:
    """The evidence report of the longest X block, as a self-contained HTML page, with
    the compliance view since the court's first order."""
    from blockproof.explorer.evidence import gather
    from blockproof.explorer.report import render_html

    blocks = [e for e in events if e.platform == "x" and e.kind == "platform_block"]
    if not blocks:
        return None
    main = max(blocks, key=lambda e: e.n_measurements)
    path = workdir / f"report-{main.id}.html"
    evidence = gather(store, main.id, since=court_order_date())
    path.write_text(render_html(evidence), encoding="utf-8")
    return path, evidence


def _custody(
    console: Console, custody: Custody, simulated: Path, lab: Iterable[Measurement]
) -> None:
    """Sign the lab's measurements and the campaign's share, upload them to a collector
    on loopback, export its log (``cli.custody_demo``)."""
    with console.status("signing the lab's measurements and a share of the campaign..."):
        from_lab = custody.add_lab(lab)
        shared = custody.share_campaign(simulated)
    with console.status("uploading to a collector on 127.0.0.1 (receipts checked)..."):
        accepted, duplicates = custody.upload()
    exported = shared is not None or not custody.export_dir.is_dir()
    if exported:
        with console.status("exporting the collector's log with its receipts..."):
            custody.export()
    share = (
        f" and {shared} of the campaign's (one run in {SHARE_EVERY} on each network)"
        if shared
        else ""
    )
    console.print(
        f"  custody: {from_lab} lab measurements{share} signed by the demo probes' keys"
        f" ({custody.root / 'keys'}), uploaded to a collector on 127.0.0.1 ({accepted}"
        f" accepted, {duplicates} already logged, every receipt checked)"
        + (f", its log exported with receipts ({custody.export_dir})" if exported else ""),
        markup=False,
    )


def _show_compliance(console: Console, evidence: Evidence) -> None:
    """One line per network of the block since the court's order (the report's section)."""
    view = evidence.compliance
    if view is None:
        return
    console.print(
        f"  compliance with the Sindh High Court's order of {view.since:%Y-%m-%d} to restore X"
        " (the report's section):"
    )
    for network in view.networks:
        if network.in_event:
            console.print(f"  - {network.sentence(view.since)}", markup=False, highlight=False)


def _show_verify(console: Console, custody: Custody, evidence: Evidence) -> None:
    """How many of the report's samples carry a valid signature and inclusion proof, and
    the command that checks one of them from the probe's spool."""
    checked = [s for s in evidence.samples if s.signature == "valid" and s.inclusion == "valid"]
    console.print(
        f"  {len(checked)} of the report's {len(evidence.samples)} sample measurements are"
        " signed by their probe and included in the collector's log"
    )
    for sample in checked:
        path = custody.spooled(sample.sha256 or "", sample.measurement_start_time)
        if path is not None:
            console.print("  check one yourself (its signature, and its receipt's proof):")
            console.print(
                f"    {custody.verify_command(path)}", soft_wrap=True, markup=False, highlight=False
            )
            return
