"""Option groups shared by several commands, defined once.

- the target: ``--platform ID`` (repeatable) and ``--list FILE`` (``run``, ``watch``);
- the network the probe stands on: ``--cc``, ``--asn``, ``--hide-asn``, ``--lab``
  (``run``, ``watch``), and the control: ``--control`` (or $BLOCKPROOF_CONTROL);
- the probe's evidence: ``--spool``, ``--collector`` (or $BLOCKPROOF_COLLECTOR);
- a store: ``--store DIR`` (the pipeline's and the explorer's commands);
- a public server's limits: ``--rate-limit``, ``--rate-burst``, ``--max-connections``
  (``serve collector``, ``serve control``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from blockproof.control.choice import OONI_TEST_HELPERS
from blockproof.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

COLLECTOR_ENV = "BLOCKPROOF_COLLECTOR"
CONTROL_ENV = "BLOCKPROOF_CONTROL"

spool_option = click.option(
    "--spool",
    "spool_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The spool directory [default: $BLOCKPROOF_HOME/spool, else "
    "~/.local/share/blockproof/spool].",
)
collector_option = click.option(
    "--collector",
    metavar="URL",
    envvar=COLLECTOR_ENV,
    help=f"The collector to upload to (or set {COLLECTOR_ENV}).",
)
control_option = click.option(
    "--control",
    metavar="URL[,URL...]",
    envvar=CONTROL_ENV,
    help="Control servers (OONI's test-helper protocol: ours, `blockproof serve control`, "
    "or OONI's), tried in order until one answers; 'none' measures without a control "
    "(then only HTTPS successes can be judged). [default: $"
    + CONTROL_ENV
    + ", else `control` in config.toml in the probe's configuration directory, else "
    "OONI's public test helpers: " + ", ".join(OONI_TEST_HELPERS) + "]",
)


def platform_option(help_text: str) -> Callable[[F], F]:
    """``--platform ID``, repeatable: every endpoint of a platform profile."""
    return click.option("--platform", "platforms", multiple=True, metavar="ID", help=help_text)


list_option = click.option(
    "--list",
    "list_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A Citizen Lab test-list CSV (or one URL a line) to measure.",
)


def network_options(func: F) -> F:
    """``--cc``, ``--asn``, ``--hide-asn`` and ``--lab``: where the probe measures from."""
    func = click.option(
        "--lab",
        "lab_scenario",
        metavar="SCENARIO",
        help="Measure inside a lab scenario (offline) instead of the real network.",
    )(func)
    func = click.option("--hide-asn", is_flag=True, help="Record AS0 instead of your network.")(
        func
    )
    func = click.option(
        "--asn", default="AS0", show_default=True, help="Your network, e.g. AS17557."
    )(func)
    func = click.option(
        "--cc", default="ZZ", show_default=True, help="Your country code (ISO alpha-2)."
    )(func)
    return func


def store_option(
    help_text: str, *, exists: bool = False, as_path: bool = False
) -> Callable[[F], F]:
    """``--store DIR`` (required), passed as ``store_dir`` or, with ``as_path``, ``store``."""
    if as_path:
        return click.option(
            "--store",
            required=True,
            type=click.Path(exists=exists, file_okay=False, path_type=Path),
            help=help_text,
        )
    return click.option(
        "--store",
        "store_dir",
        required=True,
        type=click.Path(exists=exists, file_okay=False),
        help=help_text,
    )


def public_server_options(rate: float, burst: int, max_connections: int) -> Callable[[F], F]:
    """``--rate-limit``, ``--rate-burst`` and ``--max-connections``, shared by the public
    servers (collector and control server)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--max-connections",
            default=max_connections,
            show_default=True,
            type=click.IntRange(1, 1_000_000),
            help="Open connections at most; beyond, new requests get 503.",
        )(func)
        func = click.option(
            "--rate-burst",
            default=burst,
            show_default=True,
            type=click.IntRange(1, 1_000_000),
            help="Requests a client address may send at once before --rate-limit applies.",
        )(func)
        func = click.option(
            "--rate-limit",
            default=rate,
            show_default=True,
            type=click.FloatRange(0, 1_000_000),
            help="Requests per second allowed per client address on average (a token "
            "bucket); beyond, 429 with Retry-After. 0 turns the limit off.",
        )(func)
        return func

    return decorate


_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'30m', '12h', '7d', '2w' (or combinations like '1d12h') as a timedelta."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or _DURATION.sub("", text.strip().lower()).strip():
        raise InputError(f"{text!r}: expected a duration like 30m, 12h, 7d or 2w")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
