"""``make bench``: the detection scorecard, written to docs/detection.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(1200)
def test_detection_scorecard() -> None:
    script = Path(__file__).with_name("scorecard.py")
    out = subprocess.run(
        [sys.executable, str(script), "--write", str(ROOT / "docs" / "detection.md")],
        check=True, capture_output=True, text=True, timeout=1100, cwd=ROOT,
    )  # fmt: skip
    assert "## Goals" in out.stdout
    assert "False events per 100 quiet network-months" in out.stdout
