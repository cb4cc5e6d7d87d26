"""``make bench``: the collector benchmark, written to docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(3600)
def test_collector_benchmark() -> None:
    script = Path(__file__).with_name("collector_bench.py")
    out = subprocess.run(
        [sys.executable, str(script), "--write", str(ROOT / "docs" / "benchmarks.md")],
        check=True, capture_output=True, text=True, timeout=3500, cwd=ROOT,
    )  # fmt: skip
    assert "bare append" in out.stdout
