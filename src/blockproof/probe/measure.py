"""What a probe command measures, and where: targets and the measuring function.

``run`` and ``watch`` share this: URLs from arguments, a list file and
platform profiles (``--platform x`` = every endpoint of X), measured either on
the real network or inside a lab scenario (``--lab``), with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockproof.errors import InputError
from blockproof.model.measurement import Measurement

OnResult = Callable[[Measurement], None]

if TYPE_CHECKING:
    from blockproof.probe.runner import FollowUp


def targets_for(
    urls: tuple[str, ...] | list[str],
    platforms: tuple[str, ...],
    list_file: Path | None,
    lab_scenario: str | None,
) -> list[str]:
    """The URLs to measure, deduplicated in order; empty means 'the lab scenario's own'."""
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
    if not targets and lab_scenario is None:
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
    lab_scenario: str | None = None,
    resolver: str | None = "8.8.8.8:53",
    ca_file: str | None = None,
    concurrency: int = 8,
    follow_up: FollowUp | None = None,
) -> Callable[[OnResult], Coroutine[Any, Any, list[Measurement]]]:
    """An async function measuring ``targets`` once per call, reporting each result."""
    cc, asn = check_network(cc, asn)

    if lab_scenario is not None:
        from blockproof.lab import load_scenario
        from blockproof.lab.check import resolve_scenario_path
        from blockproof.lab.run import run_scenario

        scenario = load_scenario(resolve_scenario_path(lab_scenario))

        async def in_lab(on_result: OnResult) -> list[Measurement]:
            return await run_scenario(
                scenario,
                targets or None,
                concurrency=concurrency,
                on_result=on_result,
                hide_asn=hide_asn,
                follow_up=follow_up,
            )

        return in_lab

    from blockproof.control.choice import choose_controls
    from blockproof.experiments.web_connectivity import ProbeContext
    from blockproof.probe.identity import config_dir
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
