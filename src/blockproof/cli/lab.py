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
def labrun_async(scenario: str, urls: tuple[str, ...], concurrency: int, check: bool) -> None:
    """Run the probe inside SCENARIO (a TOML file, or the name of a shipped one).

    Measurements go to stdout as JSON lines; the verdict table to stderr.
    Without URLs, the URLs named by the scenario's expectations are measured.
    """
    from blockproof.lab import load_scenario
    from blockproof.lab.check import compare, resolve_scenario_path
    from blockproof.lab.run import run_scenario

    loaded = load_scenario(resolve_scenario_path(scenario))
    measurements = run_async(
        run_scenario(
            loaded, list(urls) or None, concurrency=concurrency, on_result=emitter(True, None)
        )
    )
    show_table(measurements, f"lab scenario {loaded.name}")
    if check:
        if urls:  # check only what was measured
            loaded = replace(loaded, expect=tuple(e for e in loaded.expect if e.url in urls))
        problems = compare(loaded, measurements)
        for problem in problems:
            click.echo(f"MISMATCH {problem}", err=True)
        if problems:
            sys.exit(1)


def register(main: click.Group, serve: click.Group) -> None:
    main.add_command(lab_group)
