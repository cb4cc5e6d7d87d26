"""What a probe command measures, and where: targets and the measuring function.

``run`` and ``watch`` share this: URLs from arguments, a list file and
platform profiles (``--platform x`` = every endpoint of X), measured on the real
network. The probe never imports the lab: to measure inside a lab scenario
(``--lab``), the command line builds a ``Measure`` from ``blockproof.lab.run`` with
the same signature and hands it to the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockproof.errors import InputError
from blockproof.model.measurement import Measurement

OnResult = Callable[[Measurement], None]
# Measures the targets once per call, reporting each result as it comes.
Measure = Callable[[OnResult], Coroutine[Any, Any, list[Measurement]]]

if TYPE_CHECKING:
    from blockproof.probe.runner import FollowUp


def targets_for(
    urls: tuple[str, ...] | list[str],
    platforms: tuple[str, ...],
    list_file: Path | None,
    *,
    allow_empty: bool = False,
) -> list[str]:
    """The URLs to measure, deduplicated in order; empty (with ``allow_empty``) means
    "whatever the caller measures by default" (a lab scenario's own URLs)."""
    from blockproof.platforms import profiles
    from blockproof.probe.runner import read_url_list

    targets = list(urls)
    if list_file is not None:
        targets += read_url_list(list_file)
    known = profiles()
    for pid in platforms:
        platform = known.get(pid.lower())
        if platform is None:
            raise InputError(f"--platform {pid!r}: unknown; known: {', '.join(sorted(known))}")
        targets += [endpoint.url for endpoint in platform.endpoints]
    if not targets and not allow_empty:
        raise InputError("give at least one URL, --platform ID or --list FILE")
    return list(dict.fromkeys(targets))


def check_network(cc: str, asn: str) -> tuple[str, str]:
    if not (len(cc) == 2 and cc.isalpha()):
        raise InputError(f"--cc {cc!r}: expected a two-letter country code")
    if not (asn.upper().startswith("AS") and asn[2:].isdigit()):
        raise InputError(f"--asn {asn!r}: expected AS followed by a number, e.g. AS17557")
    return cc.upper(), asn.upper()


def measurer(
    targets: list[str],
    *,
    control: str | None,
    cc: str,
    asn: str,
    hide_asn: bool,
    resolver: str | None = "8.8.8.8:53",
    ca_file: str | None = None,
    concurrency: int = 8,
    follow_up: FollowUp | None = None,
) -> Measure:
    """An async function measuring ``targets`` on the real network once per call."""
    cc, asn = check_network(cc, asn)

    from blockproof.control.choice import choose_controls
    from blockproof.custody.keys import config_dir
    from blockproof.experiments.web_connectivity import ProbeContext
    from blockproof.probe.runner import run_urls

    controls = choose_controls(control, config_dir=config_dir())
    ctx = ProbeContext(
        control_url=controls[0] if controls else None,
        fallback_controls=controls[1:],
        resolver=resolver or None,
        ca_file=ca_file,
        probe_cc=cc,
        probe_asn=asn,
        hide_asn=hide_asn,
    )

    async def on_network(on_result: OnResult) -> list[Measurement]:
        return await run_urls(
            targets, ctx, concurrency=concurrency, on_result=on_result, follow_up=follow_up
        )

    return on_network
