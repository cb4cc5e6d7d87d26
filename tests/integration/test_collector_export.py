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
from blockproof.collector.service import Collector
from blockproof.custody.proofs import Receipt, TreeHead, receipt_problems
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


@pytest.mark.timeout(120)
def test_ingested_export_keeps_receipts_that_the_explorer_serves(tmp_path: Path) -> None:
    """Export -> ingest: each measurement keeps its receipt, checked at ingest; the
    explorer shows it and serves it, and `blockproof verify` accepts the pair."""
    import httpx
    import pyarrow.parquet as pq

    from blockproof.explorer.app import create_app
    from blockproof.pipeline.store import Store

    data, out, store = tmp_path / "collector", tmp_path / "export", tmp_path / "store"
    _fill(data)
    runner = CliRunner()
    result = runner.invoke(main, ["collector", "export", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    # one receipt of the IR file is tampered with: its proof must not pass
    ir = next(out.rglob("20240217_IR_webconnectivity.receipts.jsonl.gz"))
    lines = gzip.decompress(ir.read_bytes()).splitlines()
    bad = json.loads(lines[0])
    bad["leaf_index"] += 1
    ir.write_bytes(gzip.compress(json.dumps(bad).encode() + b"\n"))
    result = runner.invoke(main, ["ingest", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.stderr
    rows = pq.read_table(
        [str(p) for p in Store(str(store)).files("measurements")],
        columns=["msm_id", "probe_cc", "receipt", "inclusion", "raw_sha256"],
    ).to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert row["receipt"] is not None
        if row["probe_cc"] == "IR":
            assert row["inclusion"].startswith("the inclusion proof does not lead")
        else:
            assert row["inclusion"] == "valid"

    pk = next(r for r in rows if r["probe_cc"] == "PK")
    ir_row = next(r for r in rows if r["probe_cc"] == "IR")

    async def browse() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://explorer") as client:
            page = await client.get(f"/measurements/{pk['msm_id']}")
            assert page.status_code == 200
            assert "valid: leaf" in page.text
            assert 'id="download-receipt"' in page.text
            raw = await client.get(f"/measurements/{pk['msm_id']}.json")
            receipt = await client.get(f"/measurements/{pk['msm_id']}.receipt.json")
            assert receipt.status_code == 200
            ir_page = await client.get(f"/measurements/{ir_row['msm_id']}")
            assert "INVALID: the inclusion proof does not lead" in ir_page.text
            return raw, receipt

    raw, receipt = run_event_loop(browse())
    (tmp_path / "m.json").write_bytes(raw.content)
    (tmp_path / "m.receipt.json").write_bytes(receipt.content)
    result = runner.invoke(main, ["verify", str(tmp_path / "m.json"), "--allow-unsigned"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout + result.stderr
