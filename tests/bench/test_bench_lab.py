"""``make bench``: the lab throughput benchmark, written to docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(1800)
def test_lab_throughput_benchmark() -> None:
    script = Path(__file__).with_name("lab_throughput.py")
    out = subprocess.run(
        [sys.executable, str(script), "--write", str(ROOT / "docs" / "benchmarks.md")],
        check=True, capture_output=True, text=True, timeout=1700,
    )  # fmt: skip
    assert "| 64 |" in out.stdout
