"""Simulated measurement campaigns: OONI web_connectivity data from many probes, with known truth.

``blockproof simulate SCENARIO --probes N --days D --out FILE [--seed S]`` writes the
measurements of a scenario (``scenario``: the TOML format, checked on load) as JSON
lines and a truth file next to them (``campaign``: the generator, with ``world``: the
simulated sites and interference, ``vprobe``: the virtual probe, driving the same Web
Connectivity plan as the real one, and ``templates``: one classified line per URL and
interference). The names carry ``Sim`` (``SimScenario``...) where the lab has its own
(``lab.Scenario``) or the network stack does (``netx.network.Network``). A campaign is dense
and clean, or, with a ``[density]`` table, as sparse and noisy as OONI's real data, with
densities derived from a real sample of OONI's fastpath table (``densities.json``, made
by ``scripts/derive_densities.py``). Used by the pipeline tests, the scale benchmarks
and the demo. docs/simulator.md is the manual.
"""

from blockproof.simulate.campaign import Campaign, SimulationError, SimulationResult, simulate
from blockproof.simulate.scenario import (
    SimScenario,
    SimScenarioError,
    load_sim_scenario,
    resolve_sim_scenario,
    shipped_sim_scenarios,
)

__all__ = [
    "Campaign",
    "SimScenario",
    "SimScenarioError",
    "SimulationError",
    "SimulationResult",
    "load_sim_scenario",
    "resolve_sim_scenario",
    "shipped_sim_scenarios",
    "simulate",
]
