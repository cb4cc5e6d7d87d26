"""``make bench``: the S3 clients compared for ``fetch ooni``, written to docs/ooni-data.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(1800)
def test_fetch_clients_benchmark() -> None:
    script = Path(__file__).with_name("fetch_clients_bench.py")
    out = subprocess.run(
        [sys.executable, str(script), "--write", str(ROOT / "docs" / "ooni-data.md")],
        check=True, capture_output=True, text=True, timeout=1700, cwd=ROOT,
    )  # fmt: skip
    assert "obstore" in out.stdout
