"""Run the real probe inside a lab scenario (``blockproof lab run``, the demo, the tests).

The lab supplies the network seam, the CA, the resolver address and the
control server (our own, measuring over the lab's clean path); the probe runs
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from blockproof.experiments.web_connectivity import ProbeContext
from blockproof.lab import Lab, Scenario, load_scenario
from blockproof.lab.lab import LAB_TIMEOUTS
from blockproof.model.measurement import Measurement
from blockproof.netx.endpoint import Timeouts
from blockproof.probe.runner import FollowUp, run_urls

CONTROL_BUDGET = 8.0  # the control itself waits at most LAB_TIMEOUTS per step


def scenario_urls(scenario: Scenario) -> list[str]:
    """The URLs a scenario's expectations talk about, in file order."""
    return list(dict.fromkeys(e.url for e in scenario.expect))


async def run_scenario(
    scenario: Scenario | Path,
    urls: list[str] | None = None,
    *,
    concurrency: int = 8,
    timeouts: Timeouts = LAB_TIMEOUTS,
    on_result: Callable[[Measurement], None] | None = None,
    hide_asn: bool = False,
    follow_up: FollowUp | None = None,
) -> list[Measurement]:
    """Measure ``urls`` (default: the scenario's expectations) inside the scenario."""
    if isinstance(scenario, Path):
        scenario = load_scenario(scenario)
    async with Lab(scenario) as lab:
        ctx = ProbeContext(
            network=lab.probe_network,
            control_url=lab.control_url,
            resolver=lab.resolver_address,
            ca_file=lab.ca_file,
            timeouts=timeouts,
            control_budget=CONTROL_BUDGET,
            asn_of=lab.asn_of,
            probe_cc=lab.probe_cc,
            probe_asn=lab.probe_asn,
            probe_network_name=lab.probe_network_name,
            hide_asn=hide_asn,
            annotations={"lab_scenario": scenario.name},
        )
        return await run_urls(
            urls or scenario_urls(scenario), ctx, concurrency=concurrency, on_result=on_result,
            follow_up=follow_up,
        )  # fmt: skip
