"""``make bench``: the pipeline benchmark (ingest and analyze), written to docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(7200)
def test_pipeline_benchmark() -> None:
    script = Path(__file__).with_name("pipeline_bench.py")
    out = subprocess.run(
        [sys.executable, str(script), "--write", str(ROOT / "docs" / "benchmarks.md")],
        check=True, capture_output=True, text=True, timeout=7000,
    )  # fmt: skip
    assert "ingest / orjson" in out.stdout
    assert "cells / bare" in out.stdout
