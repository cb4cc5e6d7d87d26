"""Run each atheris harness (tests/fuzz/fuzz_*.py) for a bounded number of inputs.

Each harness runs in its own process with libFuzzer's bounds (``-runs``,
``-max_total_time``; ``BLOCKPROOF_FUZZ_RUNS`` and ``BLOCKPROOF_FUZZ_SECONDS``
override them) from its seeds, and must end without a crash. Skipped when atheris is
not installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from figures import Figures

HERE = Path(__file__).resolve().parent
RUNS = int(os.environ.get("BLOCKPROOF_FUZZ_RUNS") or 20_000)
SECONDS = int(os.environ.get("BLOCKPROOF_FUZZ_SECONDS") or 60)
HARNESSES = {
    "fuzz_ooni_codec.py": "OONI codec round trip",
    "fuzz_dns.py": "DNS reply analysis",
    "fuzz_http.py": "HTTP driver",
    "fuzz_ingest.py": "ingest of arbitrary JSON lines",
    "fuzz_jcs.py": "canonical JSON signing",
}
DONE = re.compile(rb"Done (\d+) runs in (\d+) second")

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.long,
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None,
        reason="atheris is not installed (pip install atheris): the fuzz harnesses need it",
    ),
]


@pytest.mark.timeout(SECONDS + 180)
@pytest.mark.parametrize("harness", sorted(HARNESSES), ids=lambda name: name[5:-3])
def test_harness_runs_without_a_crash(harness: str, tmp_path: Path, figures: Figures) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    artifacts = tmp_path / "crashes"
    artifacts.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / harness),
            f"-runs={RUNS}",
            f"-max_total_time={SECONDS}",
            "-timeout=30",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={artifacts}/",
            str(corpus),
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=SECONDS + 150,
        check=False,
    )
    output = result.stdout + result.stderr
    crashes = sorted(p.name for p in artifacts.iterdir())
    tail = output[-4000:].decode("utf-8", "replace")
    assert result.returncode == 0, f"{harness} crashed ({crashes}):\n{tail}"
    assert not crashes, tail
    done = DONE.search(output)
    assert done is not None, tail
    inputs, seconds = int(done.group(1)), int(done.group(2))
    assert inputs > 0
    figures.add(
        "fuzz",
        target=HARNESSES[harness],
        tool="atheris",
        run="long",
        inputs=inputs,
        seconds=seconds,
        corpus=len(list(corpus.iterdir())),
        crashes=0,
    )
