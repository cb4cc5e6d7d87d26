"""The ``blockproof`` command. Glue only: parse options, call the library, print.

Exit codes: 0 success (finding censorship is success), 1 an operation failed,
2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from blockproof import __version__
from blockproof.collector.commands import public_server_options
from blockproof.collector.commands import register as register_collector
from blockproof.errors import EXIT_FAILED, EXIT_INTERRUPTED, BlockproofError
from blockproof.explorer.commands import register as register_explorer
from blockproof.loop import run_event_loop
from blockproof.model.measurement import Measurement
from blockproof.pipeline.commands import register as register_pipeline
from blockproof.probe.commands import (
    collector_option,
    control_option,
    open_spool,
    run_upload,
    spool_option,
)
from blockproof.probe.commands import register as register_probe

T = TypeVar("T")

EPILOG = """\b
Exit codes: 0 success (finding censorship is a success), 1 an operation failed,
2 bad usage or input, 130 interrupted.
"""


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return run_event_loop(coro)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BlockproofError as exc:
            click.echo(f"blockproof: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blockproof")
def main() -> None:
    """Measure, explain and prove internet censorship.

    \b
    Quick start:
      blockproof demo                      offline demo: Pakistan's X block, Feb 2024
      blockproof run https://x.com/        is X reachable from this network? how is it blocked?
      blockproof lab run SCENARIO.toml     run the probe inside an emulated censored network
      blockproof serve control             run a control server (OONI test-helper protocol)
      blockproof serve collector --data D  run a collector (signed, durable, transparency log)
      blockproof upload / list / verify F  the spool of signed measurements, and their proofs
    """


def _line_writer(as_json: bool, output: IO[str] | None) -> Callable[[bytes], None]:
    """Print (``--json``) and/or write (``--output``) one measurement's JSON line."""

    def write(line: bytes) -> None:
        text = line.decode()
        if as_json:
            click.echo(text)
        if output is not None:
            output.write(text + "\n")
            output.flush()

    return write


def _emitter(as_json: bool, output: IO[str] | None) -> Callable[[Measurement], None]:
    """Write each measurement as soon as it is done: a crash or ^C loses nothing finished."""
    from blockproof.codec.jsonl import dumps_line
    from blockproof.codec.ooni import measurement_to_json

    write = _line_writer(as_json, output)

    def emit(m: Measurement) -> None:
        write(dumps_line(measurement_to_json(m)).encode())

    return emit


def _show_table(measurements: list[Measurement], title: str) -> None:
    from blockproof.probe.console import stderr, verdict_table
    from blockproof.probe.runner import summaries

    stderr.print(verdict_table(summaries(measurements), title=title))


@main.command(epilog=EPILOG)
@click.argument("urls", nargs=-1)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="ID",
    help="Measure every endpoint of a platform (x, youtube, facebook, ...); repeatable.",
)
@click.option(
    "--list",
    "list_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A Citizen Lab test-list CSV (or one URL a line) to measure.",
)
@control_option
@click.option(
    "--resolver",
    default="8.8.8.8:53",
    show_default=True,
    metavar="IP:PORT",
    help="DNS-over-UDP resolver also asked (injected replies are recorded). '' to skip.",
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="Trust this CA PEM.")
@click.option("--json", "as_json", is_flag=True, help="Print measurements as JSON lines on stdout.")
@click.option("--output", type=click.File("w"), help="Also write measurements (JSONL) here.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--cc", default="ZZ", show_default=True, help="Your country code (ISO alpha-2).")
@click.option("--asn", default="AS0", show_default=True, help="Your network, e.g. AS17557.")
@click.option("--hide-asn", is_flag=True, help="Record AS0 instead of your network.")
@click.option(
    "--lab",
    "lab_scenario",
    metavar="SCENARIO",
    help="Measure inside a lab scenario (offline) instead of the real network.",
)
@click.option(
    "--via",
    "vias",
    multiple=True,
    metavar="URL",
    help="Also try each blocked URL through this proxy: socks5://HOST:PORT or "
    "http://HOST:PORT (how VPN and Tor clients are exposed locally); repeatable.",
)
@click.option(
    "--bypass/--no-bypass",
    default=True,
    show_default=True,
    help="Try each blocked URL again with DNS over HTTPS and with a fragmented "
    "ClientHello, and record which restores access (x_circumvention).",
)
@click.option(
    "--throttling/--no-throttling",
    default=True,
    show_default=True,
    help="With --platform: time the media, video and static endpoints that load, with "
    "their SNI and with an innocuous one, to detect throttling (x_throttling).",
)
@spool_option
@collector_option
@click.option("--no-upload", is_flag=True, help="Keep measurements in the spool only.")
def run(
    urls: tuple[str, ...],
    platforms: tuple[str, ...],
    list_file: Path | None,
    control: str | None,
    resolver: str,
    ca_file: str | None,
    as_json: bool,
    output: IO[str] | None,
    concurrency: int,
    cc: str,
    asn: str,
    hide_asn: bool,
    lab_scenario: str | None,
    spool_dir: Path | None,
    collector: str | None,
    no_upload: bool,
    vias: tuple[str, ...] = (),
    bypass: bool = True,
    throttling: bool = True,
) -> None:
    """Measure URLs step by step (DNS, TCP, TLS, HTTP) and say whether and how each is blocked.

    Then, for each blocked URL, which bypasses restore access (DNS over HTTPS, a
    fragmented ClientHello, each --via proxy), and with --platform, whether the
    endpoints that load (media, video, static) are throttled: the same download
    with the site's SNI and with an innocuous one, on the same address.

    Every measurement is signed with this probe's key (created on first run) and
    written to the local spool before anything else; then, if a collector is
    configured (--collector or BLOCKPROOF_COLLECTOR) and --no-upload is not
    given, pending measurements are uploaded. Exits 1 if an upload failed.

    Never records your IP address: measurements carry country and network only.
    """
    from blockproof.netx.proxy import parse_proxy
    from blockproof.probe.console import progress_bar
    from blockproof.probe.followups import FollowUps, throttling_targets
    from blockproof.probe.identity import load_or_create_key
    from blockproof.probe.measure import measurer, targets_for
    from blockproof.probe.sink import Sink

    targets = targets_for(urls, platforms, list_file, lab_scenario)
    follow_up = FollowUps(
        bypass=bypass,
        vias=tuple(parse_proxy(v) for v in vias),
        throttling_urls=throttling_targets(platforms) if throttling else frozenset(),
    )
    measure = measurer(
        targets,
        control=control,
        cc=cc,
        asn=asn,
        hide_asn=hide_asn,
        lab_scenario=lab_scenario,
        resolver=resolver,
        ca_file=ca_file,
        concurrency=concurrency,
        follow_up=follow_up,
    )
    spool = open_spool(spool_dir)
    sink = Sink(spool, load_or_create_key(), also=[_line_writer(as_json, output)])

    def done(m: Measurement) -> None:
        sink(m)
        bar.advance(bar.task_ids[0])

    with progress_bar(len(targets) or None, "measuring") as bar:
        measurements = _run(measure(done))
    _show_table(
        measurements, f"lab scenario {lab_scenario}" if lab_scenario else "web_connectivity"
    )
    from blockproof.platforms import profiles
    from blockproof.probe.console import function_table, stderr
    from blockproof.probe.functions import by_function

    for pid in dict.fromkeys(p.lower() for p in platforms):
        platform = profiles()[pid]
        stderr.print(function_table(platform.name, by_function(platform, measurements)))

    stderr.print(f"{len(sink.entries)} measurements signed and spooled in {spool.root}")
    if collector and not no_upload and not run_upload(spool, collector):
        sys.exit(EXIT_FAILED)


@main.group()
def serve() -> None:
    """Run a blockproof server."""


@serve.command("control", epilog=EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="Trust this CA PEM.")
@public_server_options(rate=10.0, burst=100, max_connections=1024)
def serve_control(
    host: str,
    port: int,
    ca_file: str | None,
    rate_limit: float = 10.0,
    rate_burst: int = 100,
    max_connections: int = 1024,
) -> None:
    """The control server: OONI's test-helper protocol (POST a THRequest to /).

    It measures from this machine's network, so run it outside the censorship.
    It never dials private, loopback or other bogon addresses a client names.

    \b
    Limits: a token bucket per client address (--rate-limit, --rate-burst; 429
    beyond), request heads of 16 KiB arriving within 10 s, bodies of 64 KiB
    arriving within 30 s, 64 measurements at once (503 beyond), 45 s per
    measurement (504), --max-connections open connections. GET /openapi.json
    describes the API.
    """
    import json

    import uvicorn

    from blockproof.control.server import create_app
    from blockproof.ratelimit import RateLimit
    from blockproof.serving import ServeLimits

    limit = RateLimit(rate=rate_limit, burst=rate_burst)
    click.echo(
        f"control server: listening on http://{host}:{port}/ (rate limit {limit.describe()})",
        err=True,
    )
    limits = ServeLimits(keep_alive=5, max_connections=max_connections)
    uvicorn.run(
        create_app(ca_file=ca_file, rate_limit=limit),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,  # client addresses are the peer's (rate limit only)
        **limits.uvicorn_options(lambda _code, detail: json.dumps({"error": detail}).encode()),
    )


@main.group()
def lab() -> None:
    """The emulated censored internet: scenarios, runs, and checks."""


@lab.command("list")
def lab_list() -> None:
    """List the shipped scenarios: ours, then OONI's QA catalogue."""
    from blockproof.lab import load_scenario
    from blockproof.lab.scenario import shipped_scenario_groups

    groups = [(heading, paths) for heading, paths in shipped_scenario_groups() if paths]
    for i, (heading, paths) in enumerate(groups):
        click.echo(f"{chr(10) if i else ''}{heading} ({len(paths)}):")
        width = max(len(path.stem) for path in paths)
        for path in paths:
            scenario = load_scenario(path)
            click.echo(f"  {path.stem:{width}}  {scenario.description}")


@lab.command("run", epilog=EPILOG)
@click.argument("scenario")
@click.argument("urls", nargs=-1)
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--check", is_flag=True, help="Compare with the scenario's [[expect]]; exit 1 if off."
)
def lab_run(scenario: str, urls: tuple[str, ...], concurrency: int, check: bool) -> None:
    """Run the probe inside SCENARIO (a TOML file, or the name of a shipped one).

    Measurements go to stdout as JSON lines; the verdict table to stderr.
    Without URLs, the URLs named by the scenario's expectations are measured.
    """
    from blockproof.lab import load_scenario
    from blockproof.lab.check import compare, resolve_scenario_path
    from blockproof.lab.run import run_scenario

    loaded = load_scenario(resolve_scenario_path(scenario))
    measurements = _run(
        run_scenario(
            loaded, list(urls) or None, concurrency=concurrency, on_result=_emitter(True, None)
        )
    )
    _show_table(measurements, f"lab scenario {loaded.name}")
    if check:
        if urls:  # check only what was measured
            loaded = replace(loaded, expect=tuple(e for e in loaded.expect if e.url in urls))
        problems = compare(loaded, measurements)
        for problem in problems:
            click.echo(f"MISMATCH {problem}", err=True)
        if problems:
            sys.exit(1)


register_probe(main)
register_pipeline(main)
register_explorer(main, serve)
register_collector(main, serve)


@main.command(epilog=EPILOG)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="blockproof-demo",
    show_default=True,
    help="Where the simulated campaign and its store are written.",
)
@click.option(
    "--probes",
    type=click.IntRange(10, 10_000),
    default=120,
    show_default=True,
    help="Probes in the simulated campaign: which networks have a probe that may run at a"
    " given time (how often they run comes from the networks' OONI-like densities).",
)
@click.option("--lab-only", is_flag=True, help="Only the lab half (no pipeline).")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="End by running the explorer over the demo's store (Ctrl-C stops it).",
)
@click.option("--port", default=8082, show_default=True, type=click.IntRange(0, 65535),
              help="The explorer's port (another free one if taken).")  # fmt: skip
def demo(workdir: str, probes: int, lab_only: bool, serve: bool, port: int) -> None:
    """Offline demo: Pakistan's X block of February 2024, end to end.

    \b
    1. The lab: X's domains are reset by the censor right after the TLS
       ClientHello names them; DNS is untouched; an unrelated site stays reachable.
    2. The pipeline: a simulated three-month campaign of many probes on
       Pakistan's networks is ingested and analyzed; the detected events are
       printed next to the real timeline, and the X block's evidence report is
       written.
    3. The explorer over that store, on loopback, until Ctrl-C.
    """
    import time

    from blockproof.lab.check import resolve_scenario_path
    from blockproof.lab.run import run_scenario
    from blockproof.probe.console import stderr

    path = resolve_scenario_path("pakistan-2024-x")
    stderr.print(f"[bold]blockproof demo[/]: lab scenario {path.name} (offline, loopback only)")
    started = time.monotonic()
    measurements = _run(run_scenario(path))
    _show_table(measurements, "Pakistan, February 2024: is X reachable from AS17557?")
    stderr.print(f"{len(measurements)} measurements in {time.monotonic() - started:.1f} s")
    if lab_only:
        return
    from blockproof.pipeline.demo import run_campaign_demo

    store = run_campaign_demo(Path(workdir), probes=probes, console=stderr)
    if serve:
        from blockproof.explorer.commands import serve_store

        serve_store(Path(store.root), port=port)
