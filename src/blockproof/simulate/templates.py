"""Templates: one classified JSON line per (url, interference), with slots.

Theory of operation
-------------------

A ``(url, interference)`` pair is measured once by the virtual probe (``vprobe``): the
trace goes through the codec (``trace_to_test_keys``, ``control_response_to_json``),
the classifier (``analyze``, its keys written with ``analysis_to_test_keys``, as the
probe does) and the envelope (``Measurement``, ``measurement_to_json``, plus
``x_probe_id``) into one JSON line in which the per-measurement values (times,
measurement and session times, report id, network, probe key, HTTP ``Date``) are
slots. Each template's verdict is checked against what its interference must produce
(``MethodInfo.rule_ids``; "ok" for none): a mismatch is a bug and raises
``SimulationError``, so the written data never contradicts the truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from blockproof import __version__
from blockproof.codec.jsonl import dumps_line
from blockproof.codec.ooni import (
    analysis_to_test_keys,
    control_request_to_json,
    control_response_to_json,
    measurement_to_json,
    trace_to_test_keys,
)
from blockproof.core.webconnectivity import analyze
from blockproof.experiments.web_connectivity import TEST_NAME, TEST_VERSION
from blockproof.model.measurement import Measurement
from blockproof.model.verdict import WebConnectivityAnalysis
from blockproof.model.web import WebObservations
from blockproof.simulate.vprobe import SLOT_NAMES, Time, VirtualProbe
from blockproof.simulate.world import (
    FAILURE_RULES,
    OK_RULES,
    Interference,
    SimulationError,
    World,
    certificates,
    site_for,
)

CONTROL_URL = "https://th.blockproof.example/"  # .example: never a real test helper
_SLOT_RE = re.compile(r'"\u00a7(\w+)\u00a7"|900000(\d{6})\.0')
TIME_FORMAT = "%.6f"


@dataclass(frozen=True, slots=True)
class Template:
    url: str
    interference: Interference | None
    fmt: str  # the JSON line with %s for every slot
    order: tuple[int, ...]  # slot -> index into (string values..., time values...)
    times: tuple[Time, ...]
    runtime: Time
    analysis: WebConnectivityAnalysis

    @property
    def rule_id(self) -> str:
        return self.analysis.verdict.rule_id if self.analysis.verdict else ""

    @property
    def method(self) -> str:
        return str(self.analysis.verdict.method) if self.analysis.verdict else ""

    def example_line(self) -> str:
        """The line with placeholder values (every string slot one date-time, every time
        0.5 s): to read a template's measurement in tests and by hand."""
        strings = ['"2024-02-17 17:00:00"'] * len(SLOT_NAMES)
        values = strings + ["0.5"] * len(self.times)
        return self.fmt % tuple(values[i] for i in self.order)


def build_template(
    url: str,
    interference: Interference | None,
    cc: str,
    label: str,
    validity: tuple[datetime, datetime],
    *,
    uid: bool = False,
    probe_id: bool = True,
) -> Template:
    """``uid``: write OONI's ``measurement_uid`` (its arrival); ``probe_id``: ``x_probe_id``."""
    host = urlsplit(url).hostname or ""
    site = site_for(host)
    probe = VirtualProbe(url, World(site, interference), certificates(site.name, *validity))
    request, response, control_failure, runtime = probe.run()
    rec = probe.rec
    trace = rec.trace
    trace.tcp_connect.sort(key=lambda c: rec.ref(c.t))
    trace.tls_handshakes.sort(key=lambda h: rec.ref(h.t))
    trace.requests.sort(key=lambda r: rec.ref(r.t0))
    trace.network_events.sort(key=lambda e: rec.ref(e.t))
    observations = WebObservations(
        input=url,
        queries=tuple(trace.queries),
        tcp_connect=tuple(trace.tcp_connect),
        tls_handshakes=tuple(trace.tls_handshakes),
        requests=tuple(trace.requests),
        control=response,
        control_failure=control_failure,
    )
    analysis = analyze(observations)
    expected = interference.expected_rules if interference else OK_RULES
    rule = analysis.verdict.rule_id if analysis.verdict else ""
    if rule not in expected:
        what = interference.method if interference else "no interference"
        raise SimulationError(
            f"{url} under {what}: the classifier says {rule!r}, expected one of {sorted(expected)}"
        )
    runtime_stamp = rec.stamp(runtime)
    test_keys: dict[str, Any] = {
        "agent": "redirect",
        "client_resolver": None,
        "retries": None,
        "socksproxy": None,
        **trace_to_test_keys(trace),
        "x_control_request": control_request_to_json(request),
        "control": control_response_to_json(response) if response is not None else None,
        "control_failure": control_failure,
        **analysis_to_test_keys(analysis),
    }
    if rule in FAILURE_RULES:  # as the probe writes it: no control, no claim of access
        test_keys["blocking"] = None  # (experiments.web_connectivity, OONI's row 5.1.1)
        test_keys["accessible"] = None
    slot = {name: f"\u00a7{name}\u00a7" for name in SLOT_NAMES}
    measurement = Measurement(
        test_name=TEST_NAME,
        test_version=TEST_VERSION,
        input=url,
        measurement_start_time=slot["mst"],
        test_start_time=slot["tst"],
        probe_cc=cc,
        probe_asn=slot["asn"],
        probe_network_name=slot["net"],
        report_id=slot["rid"],
        software_name="blockproof",
        software_version=__version__,
        test_runtime=runtime_stamp,
        annotations={
            "engine_name": "blockproof",
            "network_type": slot["ntype"],
            "simulation": label,
        },
        test_helpers={"backend": {"address": CONTROL_URL, "type": "https"}},
        test_keys=test_keys,
    )
    obj = measurement_to_json(measurement)
    if uid:  # where OONI's files have it: right after report_id
        obj = {
            k: v
            for key, value in obj.items()
            for k, v in (
                ((key, value), ("measurement_uid", slot["uid"]))
                if key == "report_id"
                else ((key, value),)
            )
        }
    if probe_id:
        obj["x_probe_id"] = slot["key"]
    line = dumps_line(obj)
    pieces: list[str] = []
    order: list[int] = []
    seen_times: set[int] = set()
    position = 0
    for match in _SLOT_RE.finditer(line):
        pieces.append(line[position : match.start()].replace("%", "%%"))
        position = match.end()
        if match.group(1) is not None:
            order.append(SLOT_NAMES.index(match.group(1)))
        else:
            index = int(match.group(2))
            seen_times.add(index)
            order.append(len(SLOT_NAMES) + index)
    pieces.append(line[position:].replace("%", "%%"))
    if seen_times != set(range(len(rec.times))):
        raise SimulationError(f"{url}: time slots lost in the template")
    return Template(
        url=url,
        interference=interference,
        fmt="%s".join(pieces),
        order=tuple(order),
        times=tuple(rec.times),
        runtime=runtime,
        analysis=analysis,
    )
