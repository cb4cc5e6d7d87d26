"""Faults: the collector killed under load, a full disk, a damaged segment.

1. **SIGKILL in a loop.** Several client threads submit measurements (single
   OONI submissions and batches, and resubmissions of earlier ones) to a real
   collector process; it is SIGKILLed at random moments and restarted, 50 times
   in the default run and 300 in the long one. Afterwards every acknowledged
   measurement is in the log exactly once, byte for byte, every receipt handed
   out still verifies, and every tree head handed out is consistent with the
   final one (the log was only ever appended to).
2. **A full disk.** The collector's data directory on a 1 MiB tmpfs (when this
   process may mount one) and, always, an injected ``ENOSPC`` under the HTTP
   API: a submission the disk refuses is answered 503 ``storage_unavailable``,
   nothing of it is kept, everything acknowledged before stays readable, and
   once space is back the same collector accepts again.
3. **A damaged segment.** A flipped byte in the middle of the log stops the
   collector at start-up with the file and the byte named, and the file is left
   as it was for an investigator.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from collector_kit import REPORT_ID, CollectorProcess, free_port, measurement

from blockproof.codec.jcs import canonicalize
from blockproof.collector.app import CollectorApp
from blockproof.collector.service import Collector
from blockproof.custody.merkle import leaf_hash, verify_consistency
from blockproof.custody.proofs import Receipt, receipt_problems
from blockproof.loop import run_event_loop
from figures import Figures

pytestmark = pytest.mark.reliability

CLIENTS = 6
MAX_REQUESTS_PER_CYCLE = 400  # per client; bounds the loop whatever the timing
BATCH = 8


class Ledger:
    """What the clients were told: acknowledged measurements and their receipts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[bytes, Receipt]] = {}  # leaf -> (canonical, receipt)
        self.sent: list[bytes] = []
        self.mismatches: list[str] = []
        self.requests = 0
        self.refused = 0  # connection errors and non-200 answers while being killed

    def acknowledge(self, canonical: bytes, receipt: Receipt) -> None:
        leaf = leaf_hash(canonical)
        with self.lock:
            earlier = self.acked.get(leaf)
            if earlier and earlier[1].measurement_uid != receipt.measurement_uid:
                self.mismatches.append(
                    f"{leaf.hex()}: uid {earlier[1].measurement_uid} then {receipt.measurement_uid}"
                )
            if earlier is None:
                self.acked[leaf] = (canonical, receipt)


def _pick(ledger: Ledger, ids: itertools.count[int], rng: random.Random) -> bytes:
    with ledger.lock:
        if ledger.sent and rng.random() < 0.2:
            return rng.choice(ledger.sent)
    canonical = canonicalize(measurement(next(ids), pad=2000))
    with ledger.lock:
        ledger.sent.append(canonical)
    return canonical


def client(url: str, ledger: Ledger, ids: itertools.count[int], stop: threading.Event,
           rng: random.Random) -> None:  # fmt: skip
    with httpx.Client(base_url=url, timeout=5) as http:
        for _ in range(MAX_REQUESTS_PER_CYCLE):
            if stop.is_set():
                return
            batch = rng.random() < 0.3
            canonicals = [_pick(ledger, ids, rng) for _ in range(BATCH if batch else 1)]
            try:
                if batch:
                    response = http.post("/measurements", content=b"\n".join(canonicals))
                else:
                    body = b'{"format":"json","content":' + canonicals[0] + b"}"
                    response = http.post(f"/report/{REPORT_ID}", content=body)
            except httpx.HTTPError:
                with ledger.lock:
                    ledger.requests += 1
                    ledger.refused += 1
                time.sleep(0.02)
                continue
            with ledger.lock:
                ledger.requests += 1
                ledger.refused += response.status_code != 200
            if response.status_code != 200:
                continue
            answer: dict[str, Any] = response.json()
            if not batch:
                ledger.acknowledge(canonicals[0], Receipt.from_json(answer["x_receipt"]))
                continue
            for canonical, result in zip(canonicals, answer["results"], strict=True):
                if result["status"] in ("accepted", "duplicate"):
                    receipt = dict(result["receipt"], tree_head=answer["tree_head"])
                    ledger.acknowledge(canonical, Receipt.from_json(receipt))


def _check_final_log(data: Path, ledger: Ledger) -> int:
    """Every acknowledged measurement once, byte for byte; proofs and heads still hold."""

    async def final_state() -> tuple[dict[bytes, int], Collector]:
        log = await Collector.open(data)
        counts: dict[bytes, int] = {}
        for stored in log.stored():
            leaf = leaf_hash(stored.canonical)
            counts[leaf] = counts.get(leaf, 0) + 1
        return counts, log

    counts, final = run_event_loop(final_state())
    try:
        head = final.tree_head
        assert all(n == 1 for n in counts.values()), "a measurement was stored twice"
        for leaf, (canonical, receipt) in ledger.acked.items():
            assert counts.get(leaf) == 1, f"acknowledged measurement {leaf.hex()} was lost"
            assert final.read(receipt.leaf_index).canonical == canonical
            assert receipt_problems(canonical, receipt) == []
            old = receipt.tree_head
            proof = (
                final.consistency_proof(old.tree_size, head.tree_size)
                if 0 < old.tree_size < head.tree_size
                else []
            )
            assert verify_consistency(
                old.tree_size, head.tree_size, old.root_hash, head.root_hash, proof
            ), f"tree head of size {old.tree_size} is not a prefix of the final log"
        return head.tree_size
    finally:
        run_event_loop(final.aclose())


@pytest.mark.timeout(3600)
@pytest.mark.parametrize(
    "cycles", [50, pytest.param(300, marks=pytest.mark.long)], ids=["50 kills", "300 kills"]
)
def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    tmp_path: Path, figures: Figures, cycles: int
) -> None:
    data = tmp_path / "collector"
    collector = CollectorProcess(data)
    ledger = Ledger()
    ids = itertools.count()
    rng = random.Random(20240217)
    kills = 0
    started = time.monotonic()
    for cycle in range(cycles):
        collector.start()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=client,
                args=(collector.url, ledger, ids, stop, random.Random(cycle * 100 + n)),
            )
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.05, 0.8))
        collector.kill()
        kills += 1
        stop.set()
        for thread in threads:
            thread.join(30)
    assert kills >= 50
    assert ledger.mismatches == []
    assert len(ledger.acked) > 100 * cycles // 20, "too little load to prove anything"
    logged = _check_final_log(data, ledger)
    figures.add(
        "faults",
        fault="SIGKILL under load, restart, again",
        cycles=kills,
        requests=ledger.requests,
        acknowledged=len(ledger.acked),
        logged=logged,
        lost=0,
        stored_twice=0,
        receipts_verified=len(ledger.acked),
        seconds=round(time.monotonic() - started, 1),
    )
    print(f"{kills} kills, {len(ledger.acked)} acknowledged, {logged} logged")


# ------------------------------------------------------------------ a full disk


def _may_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def _submit(http: httpx.Client, canonical: bytes) -> httpx.Response:
    return http.post(
        f"/report/{REPORT_ID}", content=b'{"format":"json","content":' + canonical + b"}"
    )


MAX_FILL_REQUESTS = 2000  # 1 MiB of 8 KB measurements fills long before this


@pytest.mark.timeout(300)
@pytest.mark.skipif(not _may_mount(), reason="mounting a tmpfs needs root")
def test_a_full_tmpfs_is_answered_503_and_corrupts_nothing(
    tmp_path: Path, figures: Figures
) -> None:
    disk = tmp_path / "disk"
    with tmpfs(disk, "1m"):
        ballast = disk / "ballast"
        ballast.write_bytes(os.urandom(192 * 1024))  # freed later: space comes back
        data = disk / "collector"
        collector = CollectorProcess(data)
        collector.log_path = tmp_path / "collector.stderr.log"  # the log file off the full disk
        collector.start()
        ledger = Ledger()
        refusals: list[dict[str, Any]] = []
        try:
            with httpx.Client(base_url=collector.url, timeout=10) as http:
                for i in range(MAX_FILL_REQUESTS):
                    canonical = canonicalize(measurement(i, pad=8000))
                    response = _submit(http, canonical)
                    ledger.requests += 1
                    if response.status_code == 200:
                        ledger.acknowledge(
                            canonical, Receipt.from_json(response.json()["x_receipt"])
                        )
                        continue
                    assert response.status_code == 503, response.text
                    assert response.headers["retry-after"].isdigit()
                    refusals.append(response.json())
                    if len(refusals) >= 20:
                        break
                assert len(refusals) == 20, "the disk never filled up"
                assert {r["error"] for r in refusals} == {"storage_unavailable"}
                full_at = len(ledger.acked)
                assert full_at > 20
                for canonical, receipt in list(ledger.acked.values())[-5:]:
                    read = http.get(f"/measurements/{receipt.measurement_uid}")
                    assert read.status_code == 200
                    assert read.content == canonical
                ballast.unlink()  # space comes back: the same process accepts again
                after = [canonicalize(measurement(10_000 + i, pad=8000)) for i in range(5)]
                for canonical in after:
                    response = _submit(http, canonical)
                    ledger.requests += 1
                    assert response.status_code == 200, response.text
                    ledger.acknowledge(canonical, Receipt.from_json(response.json()["x_receipt"]))
                head = http.get("/log/tree-head").json()
        finally:
            collector.stop()
        logged = _check_final_log(data, ledger)
        assert logged == len(ledger.acked) == head["tree_size"], "a refused submission was kept"
    figures.add(
        "faults",
        fault="disk full (1 MiB tmpfs), then space freed",
        requests=ledger.requests,
        acknowledged=len(ledger.acked),
        answered_503=len(refusals),
        logged=logged,
        lost=0,
        corrupted=0,
        accepted_after_space_freed=5,
    )


@pytest.mark.asyncio
async def test_an_injected_write_error_is_answered_503_and_corrupts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    collector = await Collector.open(tmp_path / "data")
    transport = httpx.ASGITransport(app=CollectorApp(collector=collector))
    real_pwrite = os.pwrite
    failing = {"on": False, "calls": 0}

    def pwrite(fd: int, data: Any, offset: int) -> int:
        if failing["on"]:
            failing["calls"] += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    kept = [canonicalize(measurement(i, pad=500)) for i in range(10)]
    refused = [canonicalize(measurement(100 + i, pad=500)) for i in range(10)]
    statuses: list[int] = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
            for canonical in kept:
                assert (await http.post("/measurements", content=canonical)).status_code == 200
            failing["on"] = True
            answers = await asyncio.gather(
                *(http.post("/measurements", content=c) for c in refused[:5]),
                *(http.post(f"/report/{REPORT_ID}",
                            content=b'{"format":"json","content":' + c + b"}")
                  for c in refused[5:]),
            )  # fmt: skip
            statuses = [a.status_code for a in answers]
            assert statuses == [503] * 10
            assert {a.json()["error"] for a in answers} == {"storage_unavailable"}
            assert len(collector) == 10
            failing["on"] = False
            again = await http.post("/measurements", content=b"\n".join(refused))
            assert [r["status"] for r in again.json()["results"]] == ["accepted"] * 10
    finally:
        await collector.aclose()
    reopened = await Collector.open(tmp_path / "data")
    try:
        assert reopened.recovery is not None
        assert reopened.recovery.clean
        assert [s.canonical for s in reopened.stored()] == kept + refused
    finally:
        await reopened.aclose()
    figures.add(
        "faults",
        fault="write error injected (ENOSPC) under the HTTP API",
        requests=len(kept) + len(refused) + 1,
        answered_503=statuses.count(503),
        failed_writes=failing["calls"],
        logged=20,
        lost=0,
        corrupted=0,
    )


# ------------------------------------------------------------ a damaged segment


def test_a_damaged_segment_stops_the_collector_at_start_up(
    tmp_path: Path, figures: Figures
) -> None:
    data = tmp_path / "collector"
    collector = CollectorProcess(data)
    collector.start()
    try:
        with httpx.Client(base_url=collector.url, timeout=10) as http:
            for i in range(40):
                assert _submit(http, canonicalize(measurement(i, pad=1000))).status_code == 200
    finally:
        collector.stop()
    segment = next((data / "log").glob("segment-*.log"))
    damaged = bytearray(segment.read_bytes())
    middle = len(damaged) // 2
    damaged[middle] ^= 0x40
    segment.write_bytes(damaged)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "blockproof", "serve", "collector", "--data", str(data),
         "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    assert str(segment) in run.stderr
    assert "damaged segment" in run.stderr
    assert "at byte" in run.stderr
    assert segment.read_bytes() == damaged, "the damaged file is left for an investigator"
    figures.add(
        "faults",
        fault="one flipped byte in the middle of a segment",
        detected_at_start_up=True,
        exit_status=run.returncode,
        seconds=round(time.monotonic() - started, 2),
        message=next(line for line in run.stderr.splitlines() if "damaged segment" in line).replace(
            str(tmp_path), "…"
        ),
    )
