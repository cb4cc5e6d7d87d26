"""``lab list`` and ``lab run``: the emulated censored internet."""

from __future__ import annotations

import sys
from dataclasses import replace

import click

from blockproof.cli.base import EPILOG, emitter, run_async, show_table


@click.group("lab")
def lab_group() -> None:
    """The emulated censored internet: scenarios, runs, and checks."""


@lab_group.command("list")
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


@lab_group.command("run", epilog=EPILOG)
@click.argument("scenario")
@click.argument("urls", nargs=-1)
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--check", is_flag=True, help="Compare with the scenario's [[expect]]; exit 1 if off."
)
@click.option(
    "--backend",
    type=click.Choice(["inproc", "kernel"]),
    default="inproc",
    show_default=True,
    help="inproc: the lab in this process, on loopback, no root needed. kernel: network "
    "namespaces, nftables and a DPI proxy, with the unmodified `blockproof run` inside "
    "(root; see docs/lab.md).",
)
@click.option(
    "--bypass/--no-bypass",
    default=False,
    show_default=True,
    help="Also try DNS over HTTPS and a fragmented ClientHello on blocked URLs (x_circumvention).",
)
@click.option(
    "--via",
    "vias",
    multiple=True,
    metavar="URL",
    help="Also try blocked URLs through this proxy, e.g. socks5://vpn.proxy.example:1080.",
)
def labrun_async(
    scenario: str,
    urls: tuple[str, ...],
    concurrency: int,
    check: bool,
    backend: str,
    bypass: bool,
    vias: tuple[str, ...],
) -> None:
    """Run the probe inside SCENARIO (a TOML file, or the name of a shipped one).

    Measurements go to stdout as JSON lines; the verdict table to stderr.
    Without URLs, the URLs named by the scenario's expectations are measured.

    With --backend kernel the scenario becomes three network namespaces (the
    probe's, the censor's router, the internet) and `blockproof run` measures
    from the first with real sockets and the system resolver; everything the run
    creates is removed when it ends, on Ctrl-C too.
    """
    from blockproof.lab import load_scenario
    from blockproof.lab.check import compare, resolve_scenario_path
    from blockproof.lab.run import run_scenario, scenario_urls

    path = resolve_scenario_path(scenario)
    loaded = load_scenario(path)
    emit = emitter(True, None)
    if backend == "kernel":
        from blockproof.cli.console import stderr
        from blockproof.lab.kernel.run import run_kernel_scenario

        measurements = run_kernel_scenario(
            path, loaded, list(urls) or scenario_urls(loaded), concurrency=concurrency,
            bypass=bypass, vias=vias, on_result=emit,
            on_note=lambda note: stderr.print(f"note: {note}"),
        )  # fmt: skip
    else:
        from blockproof.netx.proxy import parse_proxy
        from blockproof.probe.followups import FollowUps

        follow_up = (
            FollowUps(bypass=bypass, vias=tuple(parse_proxy(v) for v in vias))
            if bypass or vias
            else None
        )
        measurements = run_async(
            run_scenario(
                loaded, list(urls) or None, concurrency=concurrency, on_result=emit,
                follow_up=follow_up,
            )
        )  # fmt: skip
    show_table(measurements, f"lab scenario {loaded.name} ({backend})")
    if check:
        if urls:  # check only what was measured
            loaded = replace(loaded, expect=tuple(e for e in loaded.expect if e.url in urls))
        problems = compare(loaded, measurements)
        for problem in problems:
            click.echo(f"MISMATCH {problem}", err=True)
        if problems:
            sys.exit(1)


@lab_group.command("clean")
@click.option("--yes", is_flag=True, help="Remove them (without --yes, only list them).")
def lab_clean(yes: bool) -> None:
    """Remove what kernel lab runs left behind (root).

    A run cleans up after itself, and its janitor does when the run is killed; only a
    run killed together with its janitor leaves namespaces (blockproof-<id>-...).
    Runs still alive are never touched.
    """
    import shutil

    from blockproof.lab.kernel.plan import Names
    from blockproof.lab.kernel.shell import leftovers, preflight, run_dirs, teardown

    preflight()
    ids = leftovers()
    if not ids:
        click.echo("nothing left behind")
        return
    for run_id in ids:
        names = Names(run_id)
        if yes:
            teardown(names)
            for folder in run_dirs(run_id):
                shutil.rmtree(folder, ignore_errors=True)
            click.echo(f"removed run {run_id}: {', '.join(names.namespaces)}")
        else:
            click.echo(f"left behind by run {run_id}: {', '.join(names.namespaces)}")
    if not yes:
        click.echo("run again with --yes to remove them")


def register(main: click.Group, serve: click.Group) -> None:
    main.add_command(lab_group)
