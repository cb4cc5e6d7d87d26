"""``blockproof demo``: the offline end-to-end demo (the lab, then ``campaign_demo``)."""

from __future__ import annotations

from pathlib import Path

import click

from blockproof.cli.base import EPILOG, run_async, show_table


@click.command("demo", epilog=EPILOG)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="blockproof-demo",
    show_default=True,
    help="Where the simulated campaign, its store and the custody chain (demo probe keys,"
    " spool, collector log, export) are written.",
)
@click.option(
    "--probes",
    type=click.IntRange(10, 10_000),
    default=120,
    show_default=True,
    help="Probes in the simulated campaign: which networks have a probe that may run at a"
    " given time (how often they run comes from the networks' OONI-like densities).",
)
@click.option(
    "--lab-only", is_flag=True, help="Only the lab half (no collector, no pipeline, no files)."
)
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
       written, with each network's compliance since the court order of 22
       February 2024.
       On the way, the custody chain: the lab's measurements and a share of the
       campaign are signed by demo probe keys (in WORKDIR/custody, never your
       own key), uploaded to a collector on 127.0.0.1 and exported with their
       receipts; the report's samples show them verified, and the demo prints
       the `blockproof verify` command that checks one.
    3. The explorer over that store, on loopback, until Ctrl-C.
    """
    import time

    from blockproof.cli.console import stderr
    from blockproof.lab.check import resolve_scenario_path
    from blockproof.lab.run import run_scenario

    path = resolve_scenario_path("pakistan-2024-x")
    stderr.print(f"[bold]blockproof demo[/]: lab scenario {path.name} (offline, loopback only)")
    started = time.monotonic()
    measurements = run_async(run_scenario(path))
    show_table(measurements, "Pakistan, February 2024: is X reachable from AS17557?")
    stderr.print(f"{len(measurements)} measurements in {time.monotonic() - started:.1f} s")
    if lab_only:
        return
    from blockproof.cli.campaign_demo import run_campaign_demo
    from blockproof.cli.explorer import serve_store

    store = run_campaign_demo(Path(workdir), probes=probes, console=stderr, lab=measurements)
    if serve:
        serve_store(Path(store.root), port=port)


def register(main: click.Group, serve: click.Group) -> None:
    main.add_command(demo)
