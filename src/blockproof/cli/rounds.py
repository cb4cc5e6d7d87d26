"""``blockproof pipeline``: fetch -> ingest -> analyze -> alerts, in rounds.

Each round does what the four commands do, in order, and prints one line:

1. ``fetch ooni`` of the asked countries and tests, from the first day not yet *settled*
   to today (UTC). A day is settled once a round fetched it whole and it is more than
   ``--settle-days`` old: OONI's late uploads land in the hour they arrive, so recent days
   are listed again each round and older ones are not (``.blockproof-rounds.state`` in the
   data folder keeps the date, written atomically after a round whose fetch failed
   nowhere).
2. ``ingest`` of the data folder: files ingested whole before are skipped.
3. ``analyze``: events keep their ids across rounds; a change gives a new revision.
4. ``alerts`` to the destinations given (the same options as ``blockproof alerts``).

Nothing a round does is lost when it fails: each step is resumable on its own (fetch
rewrites nothing complete, ingest skips what it has, analyze recomputes, the alerts'
ledger delivers what is pending), so a failed round is logged and the next one catches
up. Without ``--every`` one round runs; with it, rounds start every PERIOD (at once when
a round took longer), until ``--rounds`` or Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blockproof.cli.alerts import alert_setup, destination_options
from blockproof.cli.base import EPILOG
from blockproof.cli.options import parse_duration
from blockproof.errors import EXIT_FAILED, EXIT_INTERRUPTED, BlockproofError, InputError
from blockproof.sources.ooni_bucket import (
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    DEFAULT_TEST,
    check_bucket,
    check_endpoint,
    check_region,
    make_request,
    parse_day,
)

if TYPE_CHECKING:
    from blockproof.alerts.run import Settings
    from blockproof.alerts.subscriptions import Subscription

# not .json: `ingest` reads every .json file of the data folder as measurements
STATE_FILE = ".blockproof-rounds.state"


@dataclass(frozen=True, slots=True)
class Plan:
    """What every round does; checked once, before the first round."""

    store: Path
    data: Path
    countries: tuple[str, ...]
    tests: tuple[str, ...]
    since: date
    until: date | None  # None: today, whatever day it is when the round runs
    endpoint: str | None
    bucket: str
    region: str
    jobs: int
    attempts: int
    engine: str
    spark_master: str | None
    settle_days: int
    allow_long: bool
    subscriptions: tuple[Subscription, ...]
    settings: Settings | None


def settled_until(data: Path) -> date | None:
    """The last day fetched whole by an earlier round and old enough not to be listed again."""
    try:
        value = json.loads((data / STATE_FILE).read_text())["settled_until"]
        return date.fromisoformat(value)
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return None  # no state, or a damaged one: list everything again (nothing is lost)


def _settle(data: Path, day: date) -> None:
    from blockproof.sources.files import write_atomic

    write_atomic(data / STATE_FILE, json.dumps({"settled_until": day.isoformat()}).encode())


def first_day(since: date, settled: date | None) -> date:
    """The first day a round lists: the day after the settled ones, never before --since."""
    return since if settled is None or settled < since else settled + timedelta(days=1)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def one_round(plan: Plan, *, now: datetime | None = None) -> str:
    """Fetch, ingest, analyze, alert; the round's log line (an error raises)."""
    from blockproof.alerts.run import run_alerts
    from blockproof.pipeline.analyze import analyze_store, save
    from blockproof.pipeline.ingest import IngestError, ingest
    from blockproof.pipeline.store import Store
    from blockproof.sources.fetch import Options, fetch
    from blockproof.sources.s3 import ObstoreBucket

    today = (now or datetime.now(UTC)).date()
    last = today if plan.until is None else min(plan.until, today)
    parts: list[str] = []
    start = first_day(plan.since, settled_until(plan.data))
    if start > last:
        parts.append(f"fetch: every day up to {last} already fetched")
    else:
        request = make_request(
            plan.countries, plan.tests, start, last, today=today, allow_long=plan.allow_long
        )
        client = ObstoreBucket(plan.bucket, region=plan.region, endpoint=plan.endpoint)
        fetched = fetch(
            request,
            plan.data,
            client,
            bucket=plan.bucket,
            options=Options(jobs=plan.jobs, attempts=plan.attempts),
        )
        parts.append(
            f"fetch {start}..{last}: {fetched.downloaded} new file(s) "
            f"({_size(fetched.bytes)}) of {fetched.listed}"
            + (f", {len(fetched.failed)} failed" if fetched.failed else "")
        )
        settle = min(last, today - timedelta(days=plan.settle_days))
        if not fetched.failed and settle >= start:
            _settle(plan.data, settle)
        if fetched.failed:
            what, why = fetched.failed[0]
            raise InputError(f"{'; '.join(parts)}; first failure: {what}: {why}")
    store = Store(str(plan.store))
    try:
        ingested = ingest([plan.data], store)
    except IngestError:
        return "; ".join([*parts, "nothing to ingest yet"])
    parts.append(
        f"ingest: {ingested.new} new measurement(s), {ingested.skipped} file(s) unchanged"
        + (f", {ingested.bad} bad" if ingested.bad else "")
    )
    if not any(store.files("verdicts")):
        return "; ".join([*parts, "nothing to analyze yet"])
    analysis = analyze_store(store, engine=plan.engine, spark_master=plan.spark_master)
    changes = save(store, analysis)
    told = ", ".join(f"{len(ids)} {what}" for what, ids in changes.items() if ids)
    parts.append(f"analyze: {len(analysis.events)} event(s)" + (f" ({told})" if told else ""))
    if plan.subscriptions and plan.settings is not None:
        report = run_alerts(store, plan.subscriptions, plan.settings)
        parts.append(
            f"alerts: {len(report.new_alerts)} new, {report.count('delivered')} delivered, "
            f"{report.count('pending')} pending, {report.count('failed')} failed"
        )
        if not report.ok:
            raise InputError("; ".join([*parts, "some alerts are not delivered yet"]))
    return "; ".join(parts)


@click.command("pipeline", epilog=EPILOG)
@click.option(
    "--store",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The store; created by the first round.",
)
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where OONI's files are mirrored (as `fetch ooni --out`); created if missing.",
)
@click.option("--cc", "countries", multiple=True, required=True, metavar="CC",
              help="A country, two letters (repeatable).")  # fmt: skip
@click.option("--test", "tests", multiple=True, default=(DEFAULT_TEST,), show_default=True,
              metavar="NAME", help="An OONI test name, with underscores (repeatable).")  # fmt: skip
@click.option("--since", required=True, metavar="YYYY-MM-DD", help="The first day (UTC) to follow.")
@click.option(
    "--until", metavar="YYYY-MM-DD", help="The last day (UTC) [default: today, each round]."
)
@click.option("--endpoint", metavar="URL", help="An S3-compatible server [default: AWS S3].")
@click.option("--bucket", default=DEFAULT_BUCKET, show_default=True, help="The bucket.")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The bucket's region.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Listings and downloads at once.")  # fmt: skip
@click.option("--attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Tries per file and per folder listing.")  # fmt: skip
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb",
              show_default=True, help="The analysis engine.")  # fmt: skip
@click.option("--spark-master", metavar="URL", help="With --engine spark [default: local[*]].")
@click.option("--every", metavar="PERIOD", help="Run a round every PERIOD (30m, 1h, 6h...); "
              "without it, one round.")  # fmt: skip
@click.option("--rounds", type=click.IntRange(1), help="Stop after N rounds [default: never].")
@click.option("--settle-days", type=click.IntRange(1, 60), default=3, show_default=True,
              help="Days older than this, once fetched whole, are not listed again.")  # fmt: skip
@click.option("--yes", is_flag=True, help="Go ahead when the first round lists over 366 days.")
@destination_options
def pipeline_cmd(
    store: Path,
    data_dir: Path,
    countries: tuple[str, ...],
    tests: tuple[str, ...],
    since: str,
    until: str | None,
    endpoint: str | None,
    bucket: str,
    region: str,
    jobs: int,
    attempts: int,
    engine: str,
    spark_master: str | None,
    every: str | None,
    rounds: int | None,
    settle_days: int,
    yes: bool,
    **destinations: Any,
) -> None:
    """Follow OONI's data: fetch -> ingest -> analyze -> alerts, in rounds.

    Each round fetches what is new in OONI's bucket for the countries and tests
    (from --since, then only the recent days: see --settle-days), ingests what
    changed, analyzes (event ids stay stable; changes get new revisions) and sends
    the alerts (the same destination options as `blockproof alerts`), then prints
    one line. A failed round loses nothing: it is logged and the next catches up.

    \b
    Example: Pakistan, hourly, alerts into an Atom feed:
      blockproof pipeline --cc PK --since 2024-02-01 --data ooni/ --store pk \\
          --atom /var/www/feeds/pk.atom --every 1h --yes

    Exit 1 if the last round failed (with --rounds or without --every).
    docs/ooni-data.md has a systemd unit and a cron line.
    """
    from blockproof.cli.fetch import need_fetch
    from blockproof.cli.pipeline import need_pipeline

    need_pipeline()
    need_fetch()
    period = None if every is None else parse_duration(every).total_seconds()
    if period is not None and period < 1:
        raise InputError("--every must be at least 1s")
    today = datetime.now(UTC).date()
    first = parse_day(since, "--since")
    last = None if until is None else parse_day(until, "--until")
    make_request(countries, tests, first, last or today, today=today, allow_long=True)
    subscriptions: list[Subscription] = []
    settings = None
    if any(v for k, v in destinations.items() if k != "explorer_url"):
        subscriptions, settings = alert_setup(store, **destinations)
    plan = Plan(
        store=store, data=data_dir, countries=countries, tests=tests, since=first, until=last,
        endpoint=check_endpoint(endpoint) if endpoint is not None else None,
        bucket=check_bucket(bucket), region=check_region(region), jobs=jobs,
        attempts=attempts, engine=engine, spark_master=spark_master, settle_days=settle_days,
        allow_long=yes,
        subscriptions=tuple(subscriptions), settings=settings,
    )  # fmt: skip
    number, failed = 0, False
    try:
        while True:
            number += 1
            started = time.monotonic()
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            try:
                line = one_round(plan)
                failed = False
                click.echo(f"round {number} {stamp}: {line} ({time.monotonic() - started:.1f} s)")
            except Exception as exc:  # a round's failure is logged, not fatal
                # every step is resumable: say what failed, and let the next round catch up
                failed = True
                what = (
                    str(exc) if isinstance(exc, BlockproofError) else f"{type(exc).__name__}: {exc}"
                )
                click.echo(
                    f"round {number} {stamp}: failed after {time.monotonic() - started:.1f} s:"
                    f" {what}; the next round catches up"
                )
            sys.stdout.flush()
            if period is None or (rounds is not None and number >= rounds):
                break
            time.sleep(max(0.0, period - (time.monotonic() - started)))
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again to go on", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if failed:
        sys.exit(EXIT_FAILED)


def register(main: click.Group, serve: click.Group) -> None:
    main.add_command(pipeline_cmd)
