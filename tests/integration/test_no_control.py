"""Without a control's view the probe never says "accessible" for what it cannot judge.

Measured in the lab with no control asked (``--control none``) and with every control
failing: a failed lookup is blocking and accessible null (OONI's rule for a failed
control), an HTTPS page that loads is still accessible, the fallback controls are tried
in order, and the verdict table reads "unknown (no control)".
"""

from __future__ import annotations

import pytest
from rich.console import Console

from blockproof.cli.console import verdict_table
from blockproof.experiments.web_connectivity import ProbeContext
from blockproof.lab import Lab, parse_scenario
from blockproof.lab.run import CONTROL_BUDGET
from blockproof.model.measurement import Measurement
from blockproof.netx.endpoint import Timeouts
from blockproof.probe.runner import Summary, run_urls

pytestmark = pytest.mark.lab

TIMEOUTS = Timeouts(dns=1.0, tcp=1.0, tls=1.0, http=2.0)
SCENARIO = {
    "rule": [{"layer": "dns", "match": ["www.wikipedia.org"], "action": "nxdomain"}],
}
NXDOMAIN, HTTPS_OK = "https://www.wikipedia.org/", "https://www.example.org/"
# nothing listens there: these controls are refused at once
DEAD_CONTROLS = ("http://37.218.240.10:81/", "http://37.218.240.10:82/")


async def _measure(controls: tuple[str, ...], *, lab_control: bool) -> dict[str, Measurement]:
    scenario = parse_scenario(SCENARIO, source="no-control", name="no-control")
    async with Lab(scenario) as lab:
        chain = (*controls, lab.control_url) if lab_control else controls
        ctx = ProbeContext(
            network=lab.probe_network, control_url=chain[0] if chain else None,
            fallback_controls=chain[1:], resolver=lab.resolver_address, ca_file=lab.ca_file,
            timeouts=TIMEOUTS, control_budget=CONTROL_BUDGET, asn_of=lab.asn_of,
        )  # fmt: skip
        measurements = await run_urls([NXDOMAIN, HTTPS_OK], ctx)
    return {m.input or "": m for m in measurements}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("controls", "control_failure"),
    [
        pytest.param((), None, id="no-control-asked"),
        pytest.param(DEAD_CONTROLS, "connection_refused", id="every-control-failed"),
    ],
)
async def test_without_a_control_only_https_successes_are_judged(
    controls: tuple[str, ...], control_failure: str | None
) -> None:
    out = await _measure(controls, lab_control=False)
    failed = out[NXDOMAIN].test_keys
    assert failed["dns_experiment_failure"] == "dns_nxdomain_error"
    assert failed["blocking"] is None
    assert failed["accessible"] is None
    assert failed["control_failure"] == control_failure
    assert [a["address"] for a in failed["x_control_attempts"]] == list(controls)
    loaded = out[HTTPS_OK].test_keys
    assert loaded["blocking"] is False
    assert loaded["accessible"] is True
    row = Summary.of(out[NXDOMAIN])
    assert row.unjudged is not None
    console = Console(record=True, width=200)
    console.print(verdict_table([row, Summary.of(out[HTTPS_OK])]))
    text = console.export_text()
    assert "unknown (no control)" in text
    assert "true" in text


@pytest.mark.asyncio
async def test_the_next_control_is_asked_when_one_fails() -> None:
    out = await _measure(DEAD_CONTROLS, lab_control=True)
    keys = out[NXDOMAIN].test_keys
    attempts = keys["x_control_attempts"]
    assert [a["failure"] for a in attempts] == ["connection_refused", "connection_refused", None]
    assert keys["control_failure"] is None
    assert keys["control"] is not None
    assert keys["blocking"] == "dns"
    assert keys["accessible"] is False
    assert out[NXDOMAIN].test_helpers["backend"]["address"] == attempts[-1]["address"]
