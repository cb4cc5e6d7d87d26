"""``fetch ooni``: OONI's public bucket to local files (``blockproof.sources``).

Glue only: options, the progress bar and the summary. obstore (the ``[fetch]`` extra) is
imported inside the command, so the other commands work without it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from blockproof.cli.base import EPILOG
from blockproof.errors import EXIT_FAILED, EXIT_INTERRUPTED, InputError
from blockproof.sources.ooni_bucket import (
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    DEFAULT_TEST,
    LONG_RANGE_DAYS,
    check_bucket,
    check_endpoint,
    check_region,
    make_request,
    parse_day,
)


def need_fetch() -> None:
    try:
        import obstore  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"fetch needs the fetch extra ({exc.name} is missing): pip install 'blockproof[fetch]'"
        ) from exc


@click.group("fetch")
def fetch_group() -> None:
    """Bring public measurement data onto this machine, ready for `ingest`."""


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@fetch_group.command("ooni", epilog=EPILOG)
@click.option(
    "--cc",
    "countries",
    multiple=True,
    required=True,
    metavar="CC",
    help="A country, two letters (repeat, or comma-separate: --cc PK --cc IR).",
)
@click.option(
    "--test",
    "tests",
    multiple=True,
    default=(DEFAULT_TEST,),
    show_default=True,
    metavar="NAME",
    help="An OONI test name, with underscores (repeat for more).",
)
@click.option("--since", required=True, metavar="YYYY-MM-DD", help="First day (UTC), included.")
@click.option("--until", required=True, metavar="YYYY-MM-DD", help="Last day (UTC), included.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to mirror into; created if missing.",
)
@click.option(
    "--endpoint",
    metavar="URL",
    help="An S3-compatible server, http(s)://HOST[:PORT] [default: AWS S3].",
)
@click.option("--bucket", default=DEFAULT_BUCKET, show_default=True, help="The bucket.")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The bucket's region.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Listings and downloads at once.",
)
@click.option(
    "--attempts",
    type=click.IntRange(1, 20),
    default=5,
    show_default=True,
    help="Tries per file and per folder listing (retries back off exponentially).",
)
@click.option("--yes", is_flag=True, help=f"Go ahead with more than {LONG_RANGE_DAYS} days.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def fetch_ooni(
    countries: tuple[str, ...],
    tests: tuple[str, ...],
    since: str,
    until: str,
    out_dir: Path,
    endpoint: str | None,
    bucket: str,
    region: str,
    jobs: int,
    attempts: int,
    yes: bool,
    as_json: bool,
) -> None:
    """Download OONI's raw measurements of some countries, tests and days.

    Reads OONI's public bucket (anonymous requests) in its own layout, listing only
    the asked folders, one per hour of upload (UTC), country and test:

    \b
      raw/YYYYMMDD/HH/CC/TESTNAME/YYYYMMDDHH_CC_TESTNAME.n1.0.jsonl.gz
      (TESTNAME is the test name without underscores: webconnectivity)

    and mirrors them under OUT with the same paths. Every .jsonl.gz is taken; a
    .tar.gz postcan only where no .jsonl.gz of the same name exists, and it is then
    also converted to NAME.postcan.jsonl.gz beside it for `ingest`. Downloads run in
    parallel with retries; each file is checked (size, MD5 ETag) and appears whole
    or not at all. Running it again downloads only what is missing or changed: an
    interrupted run is completed, a finished one rewrites nothing. OUT keeps a
    manifest (.blockproof-fetch.manifest) of what was written.

    \b
    Example (Pakistan, X blocked from 17 February 2024):
      blockproof fetch ooni --cc PK --since 2024-02-01 --until 2024-04-30 --out ooni/
      blockproof ingest ooni/ --store pk
      blockproof analyze --store pk && blockproof events --store pk

    More than 366 days need --yes (each day is 24 listings per country and test).
    Exit 1 if any file failed, after trying all of them.

    \b
    More: docs/ooni-data.md
    """
    today = datetime.now(UTC).date()
    request = make_request(
        countries,
        tests,
        parse_day(since, "--since"),
        parse_day(until, "--until"),
        today=today,
        allow_long=yes,
    )
    check_bucket(bucket)
    check_region(region)
    endpoint = check_endpoint(endpoint) if endpoint is not None else None
    need_fetch()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from blockproof.sources.fetch import Options, fetch
    from blockproof.sources.fetch import Progress as FetchProgress
    from blockproof.sources.s3 import ObstoreBucket, PermanentError

    try:
        client = ObstoreBucket(bucket, region=region, endpoint=endpoint)
    except PermanentError as exc:
        raise InputError(str(exc)) from exc
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[size]}"),
        console=Console(stderr=True),
        transient=True,
        disable=as_json or not sys.stderr.isatty(),
    )
    with bar:
        task = bar.add_task("listing", total=None, size="")

        def show(p: FetchProgress) -> None:
            size = f"{_size(p.bytes_done)} of {_size(p.bytes_total)}" if p.bytes_total else ""
            bar.update(task, description=p.phase, completed=p.done, total=p.total, size=size)

        try:
            report = fetch(
                request,
                out_dir,
                client,
                bucket=bucket,
                options=Options(jobs=jobs, attempts=attempts),
                on_progress=show,
            )
        except KeyboardInterrupt:
            bar.stop()
            click.echo("interrupted: run the same command again to finish", err=True)
            sys.exit(EXIT_INTERRUPTED)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        postcans = f" ({report.postcans} postcan(s) without JSON lines)" if report.postcans else ""
        converted = (
            f", {report.converted} postcan(s) converted ({report.lines} measurements)"
            if report.converted
            else ""
        )
        adopted = f", {report.adopted} of them checked by MD5" if report.adopted else ""
        retries = f", {report.retries} retries" if report.retries else ""
        click.echo(
            f"{report.folders} folder(s) listed, {report.listed} file(s){postcans}:"
            f" {report.complete + report.adopted} already complete{adopted},"
            f" {report.downloaded} downloaded ({_size(report.bytes)}){converted},"
            f" {len(report.failed)} failed{retries}, in {report.seconds:.1f} s"
        )
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for what, why in report.failed:
        click.echo(f"failed: {what}: {why}", err=True)
    if report.failed:
        sys.exit(EXIT_FAILED)


def register(main: click.Group, serve: click.Group) -> None:
    main.add_command(fetch_group)
