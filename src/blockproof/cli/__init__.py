"""The ``blockproof`` command line: the only part of the project that imports click and rich.

Glue only: each module parses one family's options, calls the library and prints.

- ``base``: exit codes, the event loop, measurement output, the group that turns a
  ``BlockproofError`` into one line and an exit code;
- ``options``: option groups shared by several commands (target, network, spool and
  collector, store, public-server limits), defined once;
- ``console``: the terminal (stderr console, progress bars, verdict and function tables);
- one module per command family: ``probe`` (run, watch, upload, list, show, rm, verify),
  ``control`` (serve control), ``collector`` (serve collector, collector export/head),
  ``pipeline`` (ingest, analyze, events, verdicts, rules, rejudge, simulate), ``fetch``
  (fetch ooni), ``alerts``, ``rounds`` (pipeline: fetch, ingest, analyze, alerts in rounds),
  ``explorer`` (serve explorer, report), ``lab`` (lab list/run), ``demo`` (with
  ``campaign_demo``, its pipeline half).

Heavy libraries (pyarrow, DuckDB, Spark, uvicorn) are imported inside the commands, so
that ``blockproof run`` starts fast and works without the ``[pipeline]`` extra.
Exit codes: 0 success (finding censorship is success), 1 an operation failed, 2 bad
usage or input, 130 interrupted.
"""

from __future__ import annotations

import click

from blockproof import __version__
from blockproof.cli import (
    alerts,
    collector,
    control,
    demo,
    explorer,
    fetch,
    lab,
    pipeline,
    probe,
    rounds,
)
from blockproof.cli.base import EPILOG, BlockproofGroup

__all__ = ["main"]


@click.group(
    cls=BlockproofGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
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


@main.group()
def serve() -> None:
    """Run a blockproof server."""


for family in (probe, control, collector, pipeline, fetch, alerts, rounds, explorer, lab, demo):
    family.register(main, serve)
