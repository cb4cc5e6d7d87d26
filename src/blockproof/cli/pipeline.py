"""The pipeline's commands: ingest, analyze, events, verdicts, rejudge, rules.

Glue only. Heavy libraries (pyarrow, Ibis, DuckDB, Spark) are imported inside
the commands so that the probe's commands start fast and work without the
``[pipeline]`` extra.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from blockproof.cli.options import store_option
from blockproof.errors import EXIT_FAILED, InputError
from blockproof.model.verdict import OONI_OUTCOMES, OUTCOMES
from blockproof.sources.ooni_bucket import DEFAULT_REGION, check_endpoint, check_region

if TYPE_CHECKING:
    from blockproof.pipeline.events import StoredEvent

STORE_HELP = "The store directory (created by `ingest`)."


def need_pipeline() -> None:
    try:
        import duckdb  # noqa: F401
        import ibis  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"this command needs the pipeline extra ({exc.name} is missing):"
            " pip install 'blockproof[pipeline]'"
        ) from exc


def _store(path: str) -> Any:
    from blockproof.pipeline.store import Store

    return Store(path)


class _PathOrURL(click.ParamType[str]):
    """A local file or folder that exists, or an ``s3://BUCKET/PREFIX`` URL."""

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if isinstance(value, str) and value.startswith("s3://"):
            from blockproof.sources.objects import parse_url

            try:
                parse_url(value)
            except InputError as exc:
                self.fail(str(exc), param, ctx)
            return value
        return str(click.Path(exists=True).convert(value, param, ctx))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=_PathOrURL())
@store_option("Store directory; created if missing.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes (default: one per core).",
)
@click.option(
    "--reread",
    is_flag=True,
    help="Read every file, even those ingested whole before and unchanged since.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="local: worker processes on this machine. spark: the same workers as Spark tasks "
    "(the store must be reachable at the same path by every executor).",
)
@click.option(
    "--spark-master", metavar="URL", help="Spark master (default local[*]); e.g. spark://host:7077."
)
@click.option(
    "--s3-region",
    default=DEFAULT_REGION,
    show_default=True,
    help="The region of the buckets of s3:// PATHS (OONI's is the default).",
)
@click.option(
    "--s3-endpoint",
    metavar="URL",
    help="An S3-compatible server for s3:// PATHS (http://HOST:PORT); default: AWS.",
)
def ingest(
    paths: tuple[str, ...],
    store_dir: str,
    jobs: int | None,
    reread: bool,
    as_json: bool,
    engine: str = "local",
    spark_master: str | None = None,
    s3_region: str = DEFAULT_REGION,
    s3_endpoint: str | None = None,
) -> None:
    """Add OONI raw data and our own measurements to a store.

    PATHS are files or folders of .json, .jsonl, .json.gz or .jsonl.gz
    measurements (OONI's raw layout works as is). Each measurement is judged
    and tabulated (Parquet, by day and country). Bad lines are counted and kept
    in STORE/rejects/ with the reason; measurements already in the store are
    skipped, so running it twice adds nothing. Files ingested whole before are
    not read again while their size and modification time (or else their
    SHA-256) are unchanged; a file that grew or changed is read again, and only
    its new measurements are added. Input files are kept whole in
    STORE/sources/ (hard-linked when possible), named by their SHA-256.

    A PATH may also be s3://BUCKET/PREFIX: every measurement file under the
    prefix (and OONI's .tar.gz postcans, converted) is downloaded (with --engine
    spark, by the executors themselves), checked against the listing's size and
    MD5, ingested and kept like a local file. Objects read whole before and
    listed again with the same size and ETag are not downloaded again. Reading
    OONI's bucket needs no account.

    With --engine spark the same per-measurement work runs as Spark tasks
    (--jobs partitions, default the cluster's parallelism), for data that outgrows
    one machine; the store is the same.

    \b
    Example:
      blockproof ingest raw/2024-02-17/ --store pk-store
      blockproof ingest raw/2024-02/ --store pk-store --engine spark --spark-master spark://m:7077
      blockproof ingest s3://ooni-data-eu-fra/raw/20240217/ --store pk-store --engine spark
    """
    need_pipeline()
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from blockproof.pipeline.ingest import IngestError
    from blockproof.pipeline.ingest import ingest as run_ingest
    from blockproof.pipeline.store import StoreError

    if s3_endpoint is not None:
        s3_endpoint = check_endpoint(s3_endpoint, "--s3-endpoint")
    check_region(s3_region, "--s3-region")
    store = _store(store_dir)
    progress = Progress(
        TextColumn("ingest"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_stderr(),
        transient=True,
        disable=as_json,
    )
    try:
        with progress:
            task = progress.add_task("ingest", total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = run_ingest(
                paths, store, jobs=jobs, reread=reread, on_progress=update, engine=engine,
                spark_master=spark_master, s3_region=s3_region, s3_endpoint=s3_endpoint,
            )  # fmt: skip
    except (IngestError, StoreError) as exc:
        raise InputError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    mb = (report.bytes - report.skipped_bytes) / 1e6
    rate = mb / report.seconds if report.seconds else 0.0
    skipped = (
        f"; {report.skipped} file(s) ingested whole before and unchanged, not read again"
        if report.skipped
        else ""
    )
    click.echo(
        f"{report.files} file(s), {mb:.1f} MB read in {report.seconds:.1f} s ({rate:.1f} MB/s): "
        f"{report.new} new measurement(s), {report.duplicate} already stored, {report.bad} bad"
        + skipped
    )
    if report.bad:
        reasons = ", ".join(f"{n} {r}" for r, n in report.as_dict()["bad_reasons"].items())
        click.echo(f"bad lines: {reasons}; kept in:", err=True)
        for path in report.rejects:
            click.echo(f"  {path}", err=True)


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@click.command()
@store_option(STORE_HELP)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Embedded DuckDB, or Apache Spark for big stores.",
)
@click.option(
    "--spark-master", metavar="URL", help="Spark master (default local[*]); e.g. spark://host:7077."
)
def analyze(store_dir: str, engine: str, spark_master: str | None) -> None:
    """Hourly cells, change points and events from the store's verdicts.

    Writes STORE/cells/cells.parquet and STORE/events.json, then prints the
    events. Run it again after ingesting late or new data: everything is
    recomputed, and an event keeps its id while it is extended, gains networks
    or ends; each change of what matters (start, end, networks, method,
    confidence) gives it a new revision (STORE/event-history.json keeps every
    id ever given).
    """
    need_pipeline()
    import time

    from blockproof.pipeline.analyze import analyze_store, save
    from blockproof.pipeline.engine import EngineError
    from blockproof.pipeline.store import StoreError

    store = _store(store_dir)
    started = time.perf_counter()
    err = _stderr()
    try:
        with err.status("analyzing") as status:
            result = analyze_store(
                store,
                engine=engine,
                spark_master=spark_master,
                on_step=lambda msg: status.update(f"analyzing: {msg}"),
            )
    except (StoreError, EngineError) as exc:
        raise InputError(str(exc)) from exc
    try:
        changes = save(store, result)
    except StoreError as exc:
        raise InputError(str(exc)) from exc
    told = ", ".join(f"{len(ids)} {what}" for what, ids in changes.items() if ids)
    click.echo(
        f"{result.cells.num_rows} cells, {len(result.events)} event(s)"
        + (f": {told}" if told else "")
        + f" ({engine}, {time.perf_counter() - started:.1f} s)"
    )
    from blockproof.pipeline.events import read_events

    _print_events(read_events(store))  # as stored: what `events` prints later


def _short(text: str | None) -> str:
    return (text or "").replace("T", " ")[:16]


def events_table(events: Sequence[StoredEvent], title: str = "Events", *, ids: bool = True) -> Any:
    """A rich table of events; ``ids=False`` leaves out the event ids, to fit 80 columns."""
    from rich.table import Table

    table = Table(title=title)
    if ids:
        table.add_column("event", overflow="fold")
    table.add_column("what")
    table.add_column("start (UTC)", min_width=10)
    table.add_column("end (UTC)", min_width=10)
    for name in ("networks", "how", "confidence", "n"):
        table.add_column(name)
    for e in events:
        what = "outage (all)" if e.platform == "*" else f"{e.platform} blocked"
        how = ", ".join(f"{m.method} {m.share:.0%}" for m in e.methods[:2]) or "-"
        end = "ongoing" if e.ongoing else _short(e.end)
        nets = " ".join(f"AS{n.asn}" for n in e.networks)
        cells = [
            what,
            _short(e.start),
            end,
            nets,
            how,
            e.confidence,
            f"{e.n_measurements} msm, {e.n_probes} probes",
        ]
        table.add_row(*([e.id, *cells] if ids else cells))
    return table


# Below this many columns the events are printed one short paragraph each (the table's
# eight columns would ellipsize words).
WIDE_EVENTS = 130


def events_paragraphs(events: Sequence[StoredEvent]) -> Any:
    """The events as paragraphs that wrap at words: for narrow terminals."""
    from rich.console import Group
    from rich.text import Text

    parts = []
    for e in events:
        what = "outage (all platforms)" if e.platform == "*" else f"{e.platform} blocked"
        end = "ongoing" if e.ongoing else f"until {_short(e.end)}"
        how = ", ".join(f"{m.method} {m.share:.0%}" for m in e.methods[:3]) or "-"
        nets = " ".join(f"AS{n.asn}" for n in e.networks)
        head = Text(f"{e.id}\n", style="bold")
        body = Text(
            f"  {what} in {e.country} from {_short(e.start)} UTC, {end}; "
            f"networks {nets}; how {how}; confidence {e.confidence}; "
            f"{e.n_measurements} measurements, {e.n_probes} probes"
        )
        parts.append(Text.assemble(head, body))
    return Group(*parts)


def _print_events(events: Sequence[StoredEvent]) -> None:
    from rich.console import Console

    if not events:
        click.echo("no events")
        return
    console = Console()
    wide = console.width >= WIDE_EVENTS
    console.print(events_table(events) if wide else events_paragraphs(events))


@click.command()
@store_option(STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON: one object with every event.")
def events(store_dir: str, as_json: bool) -> None:
    """List the events found by the last `analyze`."""
    from blockproof.pipeline.events import load_events, read_events
    from blockproof.pipeline.store import StoreError

    store = _store(store_dir)
    try:
        if as_json:
            click.echo(json.dumps({"events": load_events(store)}, indent=2))
        else:
            _print_events(read_events(store))
    except (FileNotFoundError, StoreError) as exc:
        raise InputError(str(exc)) from exc


VERDICT_COLUMNS = [
    "report_id",
    "input",
    "test_name",
    "probe_cc",
    "probe_asn",
    "measurement_start_time",
    "outcome",
    "ooni_outcome",
    "method",
    "rule_id",
    "fingerprint",
]


@click.command()
@store_option(STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--explain", is_flag=True, help="Add each verdict's plain-language explanation.")
@click.option(
    "--outcome",
    type=click.Choice(OUTCOMES),
    multiple=True,
    help="Only these outcomes of ours (repeatable).",
)
@click.option(
    "--ooni-outcome",
    type=click.Choice(OONI_OUTCOMES),
    multiple=True,
    help="Only measurements OONI counts so (repeatable).",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many lines.")
def verdicts(
    store_dir: str,
    as_json: bool,
    explain: bool,
    outcome: tuple[str, ...],
    ooni_outcome: tuple[str, ...],
    limit: int | None,
) -> None:
    """One line per measurement: its outcomes, method, rule and fingerprint.

    Sorted by time. Columns: report_id, input, test_name, probe_cc, probe_asn,
    measurement_start_time, outcome, ooni_outcome, method, rule_id, fingerprint.

    Two outcomes per measurement: `outcome` is ours (ok, anomaly, confirmed, down:
    the site failed for the control too, failure: the measurement cannot tell);
    `ooni_outcome` is exactly what OONI's Explorer and MAT count for it (ok,
    anomaly, confirmed, failure; a site down for everyone is ok there). See
    docs/classifier.md for where the two differ and why.
    """
    need_pipeline()
    import duckdb

    from blockproof.pipeline.store import StoreError

    store = _store(store_dir)
    try:
        store.require()
    except StoreError as exc:
        raise InputError(str(exc)) from exc
    files = [str(p) for p in store.files("verdicts")]
    if not files:
        return
    cols = VERDICT_COLUMNS + (["explanation"] if explain else [])
    conditions: list[str] = []
    params: list[Any] = [files]
    for column, chosen in (("outcome", outcome), ("ooni_outcome", ooni_outcome)):
        if chosen:
            conditions.append(f"{column} IN (SELECT unnest(?))")
            params.append(list(chosen))
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT {', '.join(cols)} FROM read_parquet(?, union_by_name = true) {where} "
        f"ORDER BY measurement_start_time, msm_id" + (f" LIMIT {limit}" if limit else "")
    )
    con = duckdb.connect()
    try:
        cursor = con.execute(sql, params)
    except duckdb.BinderException as exc:
        raise InputError(
            f"{store_dir}: its verdicts were written before they carried OONI's outcome"
            f" (ooni_outcome); run `blockproof rejudge --store {store_dir}` once"
        ) from exc
    out = sys.stdout
    while rows := cursor.fetchmany(10_000):
        for row in rows:
            record = dict(zip(cols, row, strict=True))
            record["probe_asn"] = f"AS{record['probe_asn']}"
            record["measurement_start_time"] = record["measurement_start_time"].strftime(
                "%Y-%m-%d %H:%M:%S"
            )
            if as_json:
                out.write(json.dumps(record) + "\n")
            else:
                out.write("\t".join("" if v is None else str(v) for v in record.values()) + "\n")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def rules(as_json: bool) -> None:
    """Every rule a verdict can carry: id, outcome, method, explanation template."""
    from blockproof.verdict.judge import RULES_VERSION
    from blockproof.verdict.judge import rules as all_rules

    found = all_rules()
    if as_json:
        listed = [
            {"id": r.id, "outcome": r.outcome, "method": r.method, "template": r.template}
            for r in found
        ]
        click.echo(json.dumps({"rules_version": RULES_VERSION, "rules": listed}, indent=2))
        return
    click.echo(f"rules version {RULES_VERSION}")
    for r in found:
        click.echo(f"{r.id:32} {r.outcome:10} {r.method:13} {r.template}")


@click.command()
@store_option(STORE_HELP)
def rejudge(store_dir: str) -> None:
    """Recompute every verdict from the stored raw measurements with today's rules.

    Use it after upgrading blockproof (the rules or the fingerprints changed);
    then run `analyze` again.
    """
    need_pipeline()
    from blockproof.pipeline.rejudge import rejudge_store
    from blockproof.pipeline.store import StoreError

    store = _store(store_dir)
    try:
        count, changed = rejudge_store(store)
    except StoreError as exc:
        raise InputError(str(exc)) from exc
    click.echo(f"{count} measurement(s) re-judged, {changed} verdict(s) changed")
    if count == 0:
        sys.exit(EXIT_FAILED)


@click.command()
@click.argument("scenario", required=False)
@click.option("--out", type=click.Path(dir_okay=False), help="Output .jsonl or .jsonl.gz file.")
@click.option(
    "--probes",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Number of probes (default: the scenario's). In an OONI-like scenario (one with"
    " [density]) they say which networks may run at a given time; how often each network"
    " runs comes from its runs_per_day.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Campaign length in days (default: the scenario's).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--compresslevel",
    type=click.IntRange(1, 9),
    default=3,
    show_default=True,
    help="gzip level when --out ends in .gz.",
)
@click.option("--list", "list_only", is_flag=True, help="List the shipped scenarios.")
def simulate(
    scenario: str | None,
    out: str | None,
    probes: int | None,
    days: int | None,
    seed: int,
    compresslevel: int,
    list_only: bool,
) -> None:
    """Write a simulated measurement campaign with known truth.

    SCENARIO is a scenario file or a shipped name (see --list), e.g.
    pakistan-2024-x. Writes OONI-format web_connectivity measurements from many
    probes over time to --out, and the truth (episodes, networks, times) next to
    it as <name>.truth.json. Deterministic for a given --seed.

    \b
    Example:
      blockproof simulate pakistan-2024-x --probes 200 --days 90 --out pk.jsonl.gz
      blockproof ingest pk.jsonl.gz --store pk && blockproof analyze --store pk
    """
    from blockproof.simulate import resolve_sim_scenario, shipped_sim_scenarios
    from blockproof.simulate import simulate as run_simulation

    if list_only:
        for path in shipped_sim_scenarios():
            click.echo(path.stem)
        return
    if scenario is None or out is None:
        raise InputError("give a SCENARIO and --out FILE (or --list)")
    result = run_simulation(
        resolve_sim_scenario(scenario),
        out,
        probes=probes,
        days=days,
        seed=seed,
        compresslevel=compresslevel,
    )
    click.echo(result.summary())


COMMANDS = [ingest, analyze, events, verdicts, rules, rejudge, simulate]


def register(main: click.Group, serve: click.Group) -> None:
    for command in COMMANDS:
        main.add_command(command)
