"""Fuzz ingest (pipeline/ingest.py): any JSON lines, through one worker, into a store.

Input: lines (split at newlines) fed to an ingest ``Worker``, which parses, extracts
and stages them. Nothing may raise; ``read == new + duplicate + bad``; every bad line
is in the rejects; every new measurement has its rows staged. Seeds: the real OONI
samples, one per line, and damaged copies. See fuzzkit.py for how to run it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris
import orjson
from fuzzkit import main

with atheris.instrument_imports(include=["blockproof.pipeline", "blockproof.codec.ooni"]):
    from blockproof.codec.jsonl import iter_json_objects
    from blockproof.pipeline.ingest import Worker
    from blockproof.pipeline.store import Store

DATA = Path(__file__).resolve().parents[1] / "data"
STORE = Store(tempfile.mkdtemp(prefix="fuzz-store-"))


def test_one_input(data: bytes) -> None:
    lines = [line.strip() for line in data.split(b"\n") if line.strip()]
    if not lines:
        return
    worker = Worker(STORE, "fuzz", 0, batch=len(lines) + 1)
    try:
        worker.feed("/in/fuzz.jsonl", "0" * 64, list(enumerate(lines, 1)))
        done = worker.flush()
        rejects = worker.rejects.close()
        bad = sum(worker.reasons.values())
        counts = worker.counts
        assert counts["read"] == len(lines)
        assert counts["new"] + counts["duplicate"] + bad == counts["read"]
        kept = Path(rejects).read_bytes().count(b"\n") if rejects else 0
        assert kept == bad
        assert len(done["ids"] if done else []) == counts["new"]
    finally:
        shutil.rmtree(STORE.root, ignore_errors=True)


def seeds() -> list[bytes]:
    samples = [
        orjson.dumps(obj)
        for path in sorted(DATA.glob("ooni/**/*.json*"))
        if path.name.endswith((".json", ".json.gz"))
        for obj in iter_json_objects(path)
    ]
    found = list(samples)
    found.append(b"\n".join(samples[:3]))
    found += [sample[: len(sample) // 2] for sample in samples[:3]]
    found.append(
        b'{"test_name":"web_connectivity","measurement_start_time":"2024-02-17 17:05:12",'
        b'"test_keys":{"tcp_connect":[{"ip":"1.2.3.4","port":443}]}}'
    )
    return found


if __name__ == "__main__":
    main(test_one_input, seeds)
    sys.exit(0)
