"""Every shipped lab scenario of ours, run end to end: the real probe inside the emulated
censored internet must reach exactly the conclusions the scenario's [[expect]] tables
state, in measurements that OONI's own loader reads. (OONI's QA catalogue, the other
shipped group, runs in test_ooni_qa.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from blockproof.lab.check import compare
from blockproof.lab.run import run_scenario
from blockproof.lab.scenario import (
    LAYERS,
    load_scenario,
    shipped_scenario_groups,
    shipped_scenarios,
)
from ooni_tools import assert_ooni_can_read

pytestmark = pytest.mark.lab

SHIPPED = shipped_scenarios()
OURS = shipped_scenario_groups()[0][1]


@pytest.mark.parametrize("path", OURS, ids=[p.stem for p in OURS])
def test_shipped_scenario_meets_its_expectations(path: Path) -> None:
    scenario = load_scenario(path)
    measurements = asyncio.run(run_scenario(path))
    assert {m.input for m in measurements} == {e.url for e in scenario.expect}
    problems = compare(scenario, measurements)
    assert problems == [], "\n".join(problems)
    assert_ooni_can_read(measurements)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_has_expectations(path: Path) -> None:
    assert len(load_scenario(path).expect) >= 1


def test_shipped_scenarios_cover_every_layer_and_action() -> None:
    used = {(rule.layer, rule.action) for path in SHIPPED for rule in load_scenario(path).rules}
    for layer, actions in LAYERS.items():
        for action in actions:
            assert (layer, action) in used, f"no shipped scenario has a {layer} {action} rule"
