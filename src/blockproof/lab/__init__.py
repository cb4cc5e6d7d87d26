"""The lab: an emulated censored internet on loopback, driven by scenario files.

See docs/lab.md. ``Lab`` runs a scenario; ``load_scenario`` reads one;
``blockproof.lab.run.run_scenario`` runs the real probe inside it.
"""

from __future__ import annotations

from blockproof.lab.lab import Lab
from blockproof.lab.scenario import (
    Expect,
    Rule,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
    shipped_scenarios,
)

__all__ = [
    "Expect",
    "Lab",
    "Rule",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "shipped_scenarios",
]
