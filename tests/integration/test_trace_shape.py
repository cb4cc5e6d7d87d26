"""The simulator and the lab leave traces of the same shape for the same interference.

Both follow one Web Connectivity plan (``core.wcplan``): the real probe runs it over the
in-process lab's emulated censored internet, the simulator's virtual probe replays it
without any network. For each interference both can express, and for an https:// and an
http:// URL, this runs the real probe in a shipped lab scenario and the virtual probe
under the matching simulated method, and compares what must not differ:

- every DNS query, TCP connect, TLS handshake and HTTP request as (operation, port, TLS
  or not, tags, failure), as a multiset (concurrent steps finish in any order);
- the ports of the control request's ``tcp_connect``;
- the verdict keys ``blocking`` and ``accessible``.

Addresses and times differ by nature and are left out.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from blockproof.codec.ooni import measurement_to_json
from blockproof.lab.run import run_scenario
from blockproof.lab.scenario import load_scenario
from blockproof.model.observations import split_endpoint
from blockproof.simulate import Campaign, resolve_sim_scenario
from blockproof.simulate.campaign import Interference
from blockproof.simulate.scenario import METHODS

pytestmark = pytest.mark.lab

URLS = ("https://x.com/", "http://x.com/")

# interference -> (the shipped lab scenario, the simulator's method; None: no interference)
INTERFERENCES: dict[str, tuple[str, str | None]] = {
    "none": ("no-censorship", None),
    "dns-nxdomain": ("dns-nxdomain", "dns-nxdomain"),
    "dns-forged-bogon-answer": ("dns-bogon", "dns-bogon"),
    "tcp-blackhole": ("tcp-blackhole", "tcp-blackhole"),
    "tls-reset-after-clienthello": ("tls-reset", "tls-reset"),
    "http-blockpage": ("http-blockpage", "http-blockpage"),
}

Row = tuple[Any, ...]


def _port(endpoint: str) -> int:
    return split_endpoint(endpoint)[1]


def trace_shape(test_keys: dict[str, Any]) -> list[Row]:
    """Every operation as (kind, port, tls, tags, failure[, status]), sorted."""
    tls_ids = {h["transaction_id"] for h in test_keys["tls_handshakes"] or []}
    rows: list[Row] = []
    for query in test_keys["queries"] or []:
        rows.append((f"dns/{query['engine']}", None, None, tuple(query["tags"]), query["failure"]))
    for connect in test_keys["tcp_connect"] or []:
        tls = connect["transaction_id"] in tls_ids
        failure = connect["status"]["failure"]
        rows.append(("tcp_connect", connect["port"], tls, tuple(connect["tags"]), failure))
    for handshake in test_keys["tls_handshakes"] or []:
        port = _port(handshake["address"])
        rows.append(("tls_handshake", port, True, tuple(handshake["tags"]), handshake["failure"]))
    for request in test_keys["requests"] or []:
        https = urlsplit(request["request"]["url"]).scheme == "https"
        code = (request["response"] or {}).get("code")
        tags = tuple(request["tags"])
        rows.append(
            ("http_request", _port(request["address"]), https, tags, request["failure"], code)
        )
    return sorted(rows, key=repr)


def shape(test_keys: dict[str, Any]) -> dict[str, Any]:
    control_request = test_keys["x_control_request"] or {}
    return {
        "trace": trace_shape(test_keys),
        "control_ports": sorted(_port(e) for e in control_request.get("tcp_connect") or []),
        "blocking": test_keys["blocking"],
        "accessible": test_keys["accessible"],
    }


@cache
def lab_test_keys(scenario_stem: str) -> dict[str, dict[str, Any]]:
    """url -> test_keys of the real probe in the shipped lab scenario (one lab run)."""
    path = Path(str(resources.files("blockproof.lab") / "scenarios" / f"{scenario_stem}.toml"))
    measurements = asyncio.run(run_scenario(load_scenario(path), list(URLS)))
    return {m.input: measurement_to_json(m)["test_keys"] for m in measurements}


@cache
def _campaign() -> Campaign:
    return Campaign(resolve_sim_scenario("test-block"), probes=1, days=1)


def simulated_test_keys(url: str, method: str | None) -> dict[str, Any]:
    """The virtual probe's test_keys for ``url`` under ``method``; a method that does not
    act on the URL's scheme leaves it alone, as in a campaign."""
    interference = None
    if method is not None:
        info = METHODS[method]
        if info.https if url.startswith("https:") else info.http:
            interference = Interference(
                method=method, answer=info.answer or "", blockpage=info.blockpage or ""
            )
    template = _campaign().template(url, interference)
    test_keys: dict[str, Any] = json.loads(template.example_line())["test_keys"]
    return test_keys


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("interference", sorted(INTERFERENCES))
def test_simulator_and_lab_leave_the_same_trace_shape(interference: str, url: str) -> None:
    scenario_stem, method = INTERFERENCES[interference]
    lab = shape(lab_test_keys(scenario_stem)[url])
    simulated = shape(simulated_test_keys(url, method))
    assert simulated == lab


def test_the_shape_leaves_out_addresses_and_times_only() -> None:
    """Two addresses of one site give two rows: the shape counts connections."""
    keys = simulated_test_keys("https://x.com/", None)
    rows = trace_shape(keys)
    assert sum(1 for row in rows if row[0] == "tcp_connect") == len(keys["tcp_connect"]) == 2
    assert shape(keys)["control_ports"] == [443, 443]


@pytest.mark.parametrize("interference", sorted(set(INTERFERENCES) - {"none"}))
def test_every_interference_changes_the_shape(interference: str) -> None:
    """The comparison above is not vacuous: each interference leaves a mark in the lab."""
    scenario_stem, _ = INTERFERENCES[interference]
    clear = lab_test_keys(INTERFERENCES["none"][0])
    censored = lab_test_keys(scenario_stem)
    assert any(shape(censored[url]) != shape(clear[url]) for url in URLS)
