"""``make bench``: the explorer's page times on 10 million measurements, to docs/benchmarks.md.

The synthetic store is cached in ``BLOCKPROOF_BENCH_WORK`` (default: a directory under the
system's temporary directory), so that a rerun skips building it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(7200)
def test_explorer_benchmark() -> None:
    script = Path(__file__).with_name("explorer_bench.py")
    work = os.environ.get("BLOCKPROOF_BENCH_WORK") or str(
        Path(tempfile.gettempdir()) / "blockproof-explorer-bench"
    )
    out = subprocess.run(
        [sys.executable, str(script), "--work", work,
         "--write", str(ROOT / "docs" / "benchmarks.md")],
        check=True, capture_output=True, text=True, timeout=7000,
    )  # fmt: skip
    assert "Goal: p95 under 300 ms" in out.stdout
    assert "event page" in out.stdout
