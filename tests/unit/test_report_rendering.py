"""Rendering of evidence reports from hand-made evidence: proofs, escaping, context."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from blockproof.explorer.evidence import Context, Evidence, Sample
from blockproof.explorer.report import inclusion_text, render_html
from blockproof.explorer.timeline import Bucket
from blockproof.pipeline.events import StoredEvent
from blockproof.verdict.judge import RULES_VERSION

LEAF = "ab" * 32
ROOT = "cd" * 32
RECEIPT = {
    "measurement_uid": "20240217160500.000000_PK_webconnectivity_0011223344556677",
    "leaf_index": 41,
    "leaf_hash": LEAF,
    "inclusion_proof": ["ef" * 32] * 6,
    "log_id": "12" * 32,
    "tree_size": 64,
    "root_hash": ROOT,
}


def sample(**changes: object) -> Sample:
    fields: dict[str, object] = {
        "msm_id": "20240217T160500Z_PK_webconnectivity_1",
        "measurement_start_time": "2024-02-17 16:05:00",
        "probe_asn": 17557,
        "input": "https://x.com/",
        "outcome": "anomaly",
        "ooni_outcome": "anomaly",
        "method": "tls",
        "rule_id": "wc.tls.reset",
        "explanation": "<b>reset</b> after the ClientHello",
        "fingerprint": None,
        "sha256": "9f" * 32,
        "signature": "valid",
        "key_id": "cbcee8c6",
        "receipt": RECEIPT,
        "inclusion": "valid",
    }
    fields.update(changes)
    return Sample(**fields)  # type: ignore[arg-type]


def evidence(samples: list[Sample]) -> Evidence:
    start = datetime(2024, 2, 17, 12, tzinfo=UTC)
    hours = [Bucket(start + timedelta(hours=h), ok=5 if h < 4 else 0, anomaly=0 if h < 4 else 7,
                    probes=5, blocked_probes=0 if h < 4 else 5, clear_probes=5 if h < 4 else 0)
             for h in range(8)]  # fmt: skip
    event = StoredEvent(
        id="pk-x-20240217-aaaa", kind="platform_block", platform="x", country="PK",
        start="2024-02-17T16:00:00Z", start_earliest="2024-02-17T15:00:00Z",
        start_latest="2024-02-17T16:00:00Z", end=None, end_earliest=None, end_latest=None,
        ongoing=True, networks=(), methods=(), confidence="medium",
        n_measurements=48, n_probes=5, n_blocked=28, n_confirmed=0, restorations=(),
        witnesses=(), samples=None, rules_version=RULES_VERSION,
    )  # fmt: skip
    return Evidence(
        event=event,
        platform_name="X (Twitter)",
        summary="X (Twitter) has been blocked in PK.",
        timeline=hours,
        samples=samples,
        context=Context(20, 0, 28, 28, 4, 4, 3, 1),
    )


@pytest.mark.parametrize(
    ("inclusion", "receipt", "shown"),
    [
        ("valid", RECEIPT, "valid: leaf 41 of a log of 64"),
        ("the inclusion proof does not lead", RECEIPT, "INVALID: the inclusion proof does not"),
        (None, None, "no receipt (not uploaded through a blockproof collector)"),
    ],
)
def test_inclusion_wording(inclusion: str | None, receipt: dict | None, shown: str) -> None:
    assert inclusion_text(inclusion, receipt).startswith(shown)


def test_a_report_lists_each_proof_whole_and_escapes_measurement_text() -> None:
    html = render_html(evidence([sample(), sample(msm_id="m2", receipt=None, inclusion=None)]))
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert LEAF in html
    assert ROOT in html
    assert "leaf 41" in text
    assert "6 hashes" in text
    assert "no receipt" in text
    assert "<b>reset</b>" not in html
    assert "&lt;b&gt;reset&lt;/b&gt;" in html
    # the measured background rate and the coverage are stated with their counts
    assert "0 of 20 measurements" in text
    assert "28 of 28 (100.0%)" in text
    assert "4 of the event's 4 hours have measurements" in text


def test_a_report_without_receipts_says_so() -> None:
    html = render_html(evidence([sample(receipt=None, inclusion=None)]))
    assert "None of these measurements came with a collector's receipt" in html
