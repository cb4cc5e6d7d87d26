"""Pages and reports without a compliance date are pinned byte for byte.

The compliance view (``--since``, ``?since=``) adds a section; without it, the evidence
report, the explorer's event page, the heatmap and the country page must stay exactly
what they were. The inputs below are hand-made and fixed (no clock, no store), and each
rendering is compared with a file under ``tests/data/pinned/`` (see its README.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blockproof.explorer.charts import heatmap_html
from blockproof.explorer.evidence import (
    Context,
    Evidence,
    ExplainedMethod,
    NetworkStatus,
    Sample,
)
from blockproof.explorer.pages import country_html
from blockproof.explorer.report import render_html
from blockproof.explorer.timeline import Bucket, NetworkRow, Timeline
from blockproof.pipeline.events import StoredEvent, StoredMethod, StoredNetwork

PINNED = Path(__file__).resolve().parent.parent / "data" / "pinned"
START = datetime(2024, 2, 17, 12, tzinfo=UTC)
RECEIPT = {
    "measurement_uid": "20240217160500.000000_PK_webconnectivity_0011223344556677",
    "leaf_index": 41,
    "leaf_hash": "ab" * 32,
    "inclusion_proof": ["ef" * 32] * 6,
    "log_id": "12" * 32,
    "tree_size": 64,
    "root_hash": "cd" * 32,
    "tree_head": {"log_id": "12" * 32, "tree_size": 64, "root_hash": "cd" * 32},
}


def _sample(msm_id: str, asn: int, method: str, *, signed: bool) -> Sample:
    return Sample(
        msm_id=msm_id,
        measurement_start_time="2024-02-17 16:05:00",
        probe_asn=asn,
        input="https://x.com/<b>",
        outcome="anomaly",
        ooni_outcome="anomaly" if signed else "",
        method=method,
        rule_id="wc.tls.reset",
        explanation="<b>reset</b> after the ClientHello",
        fingerprint=None,
        sha256="9f" * 32,
        signature="valid" if signed else "unsigned",
        key_id="cbcee8c6" if signed else None,
        receipt=RECEIPT if signed else None,
        inclusion="valid" if signed else None,
    )


def _network(asn: int, name: str, end: str | None) -> StoredNetwork:
    return StoredNetwork(
        asn=asn, name=name, start="2024-02-17T16:00:00Z",
        start_earliest="2024-02-17T15:00:00Z", start_latest="2024-02-17T16:00:00Z",
        end=end, end_earliest=end, end_latest=end, blocked_probe_hours=21,
        scored_probe_hours=25, floor_p_value=1e-9,
        restorations=(("2024-02-17T18:00:00Z", "2024-02-17T19:00:00Z"),),
    )  # fmt: skip


def pinned_evidence() -> Evidence:
    buckets = [
        Bucket(START + timedelta(hours=h), ok=5 if h < 4 else 1, anomaly=0 if h < 4 else 7,
               failure=h % 2, probes=5, blocked_probes=0 if h < 4 else 4,
               clear_probes=5 if h < 4 else 1)
        if h != 5 else Bucket(START + timedelta(hours=h))
        for h in range(8)
    ]  # fmt: skip
    event = StoredEvent(
        id="pk-x-2024021716-aaaa", kind="platform_block", platform="x", country="PK",
        start="2024-02-17T16:00:00Z", start_earliest="2024-02-17T15:00:00Z",
        start_latest="2024-02-17T16:00:00Z", end=None, end_earliest=None, end_latest=None,
        ongoing=True,
        networks=(_network(17557, "PTCL <i>", None),
                  _network(23674, "Nayatel", "2024-02-17T19:00:00Z")),
        methods=(StoredMethod("tls", 20, 0.8), StoredMethod("dns", 5, 0.2)),
        confidence="high", n_measurements=48, n_probes=5, n_blocked=28, n_confirmed=0,
        restorations=(), witnesses=(), samples=None, rules_version="test-rules",
    )  # fmt: skip
    return Evidence(
        event=event,
        platform_name="X (Twitter)",
        summary="X (Twitter) has been blocked in PK <on> AS17557.",
        timeline=buckets,
        samples=[
            _sample("m1", 17557, "tls", signed=True),
            _sample("m2", 23674, "dns", signed=False),
        ],
        methods=[ExplainedMethod.of(m) for m in event.methods],
        generated="2024-05-01 00:00 UTC",
        context=Context(20, 0, 28, 28, 4, 4, 3, 2),
    )


def pinned_timeline() -> Timeline:
    ev = pinned_evidence()
    row = [b if b.total else None for b in ev.timeline]
    other = [
        None if h % 3 else Bucket(START + timedelta(hours=h), failure=2, probes=1) for h in range(8)
    ]
    return Timeline(
        cc="PK", platform="x", platform_name="X (Twitter)", granularity="hour",
        since=START, until=START + timedelta(hours=8), buckets=ev.timeline,
        networks=[NetworkRow(17557, "PTCL <i>", row), NetworkRow(23674, "Nayatel", other)],
        data_first=START, data_last=START + timedelta(hours=7),
    )  # fmt: skip


def pinned_statuses() -> list[NetworkStatus]:
    last = START + timedelta(hours=7)
    return [
        NetworkStatus("x", 17557, "PTCL <i>", 9, 1, 12, last),
        NetworkStatus("x", 23674, "Nayatel", 1, 1, 3, last),
        NetworkStatus("x", 45669, "Jazz", 1, 9, 10, last),
        NetworkStatus("x", 59257, "Zong", 0, 4, 4, last),
        NetworkStatus("x", 9541, "Cyber", 0, 0, 2, last),
    ]


RENDERINGS = {
    "report.html": lambda: render_html(pinned_evidence()),
    "report-linked.html": lambda: render_html(
        pinned_evidence(), measurement_url=lambda msm_id: f"/measurements/{msm_id}"
    ),
    "heatmap.html": lambda: heatmap_html(pinned_timeline()),
    "country.html": lambda: country_html("PK", pinned_statuses(), {"x": "X (Twitter)"}),
}


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_rendering_without_a_compliance_date_is_unchanged(name: str) -> None:
    assert RENDERINGS[name]() == (PINNED / name).read_text(encoding="utf-8")
