"""``blockproof collector export``: OONI's daily layout, byte-exact lines, receipts that verify."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from collector_kit import measurement

from blockproof.cli import main
from blockproof.codec.jcs import canonicalize
from blockproof.collector.admission import admit_object
from blockproof.collector.proofs import Receipt, TreeHead, receipt_problems
from blockproof.collector.service import Collector
from blockproof.loop import run_event_loop
from blockproof.pipeline.ingest import discover

REPORT_IR = "20240217T160500Z_webconnectivity_IR_58224_n1_abcdefghijklmnop"
SUBMITTED = [
    measurement(1),
    measurement(2),
    measurement(3, measurement_start_time="2024-02-18 09:00:00"),
    measurement(4, probe_cc="IR", probe_asn="AS58224", report_id=REPORT_IR),
]


def _fill(data: Path) -> None:
    async def fill() -> None:
        collector = await Collector.open(data)
        try:
            for m in SUBMITTED:
                await collector.submit(admit_object(m))
        finally:
            await collector.aclose()

    run_event_loop(fill())


@pytest.mark.timeout(60)
def test_export_layout_lines_and_receipts(tmp_path: Path) -> None:
    data, out = tmp_path / "collector", tmp_path / "export"
    _fill(data)
    result = CliRunner().invoke(
        main, ["collector", "export", "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert "exported 4 measurements" in result.stderr

    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.jsonl.gz"))
    assert files == [
        "20240217/IR/webconnectivity/20240217_IR_webconnectivity.jsonl.gz",
        "20240217/IR/webconnectivity/20240217_IR_webconnectivity.receipts.jsonl.gz",
        "20240217/PK/webconnectivity/20240217_PK_webconnectivity.jsonl.gz",
        "20240217/PK/webconnectivity/20240217_PK_webconnectivity.receipts.jsonl.gz",
        "20240218/PK/webconnectivity/20240218_PK_webconnectivity.jsonl.gz",
        "20240218/PK/webconnectivity/20240218_PK_webconnectivity.receipts.jsonl.gz",
    ]
    head = TreeHead.from_json(json.loads((out / "tree-head.json").read_text()))
    assert head.tree_size == 4
    checked = 0
    for path in out.rglob("*_webconnectivity.jsonl.gz"):
        lines = gzip.decompress(path.read_bytes()).splitlines()
        receipts_path = path.with_name(path.name.replace(".jsonl.gz", ".receipts.jsonl.gz"))
        receipts = gzip.decompress(receipts_path.read_bytes()).splitlines()
        assert len(lines) == len(receipts)
        for line, raw in zip(lines, receipts, strict=True):
            assert line in {canonicalize(m) for m in SUBMITTED}
            receipt = Receipt.from_json({**json.loads(raw), "tree_head": head.to_json()})
            assert receipt_problems(line, receipt) == []
            checked += 1
    assert checked == 4
    # the pipeline reads the measurement files and leaves the receipts and tree head alone
    assert sorted(p.name for p in discover([out])) == [
        "20240217_IR_webconnectivity.jsonl.gz",
        "20240217_PK_webconnectivity.jsonl.gz",
        "20240218_PK_webconnectivity.jsonl.gz",
    ]


def test_export_refuses_a_directory_that_is_not_a_collectors(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["collector", "export", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "not a collector data directory" in result.stderr
