"""Kill the collector with SIGKILL under load, again and again: nothing acknowledged is lost.

Several client threads submit measurements (and resubmit earlier ones) to a real
collector process; it is SIGKILLed at random moments and restarted, at least 20
times. Afterwards every acknowledged measurement is in the log exactly once,
byte for byte, every receipt handed out still verifies, and every tree head
handed out is consistent with the final one (the log was only ever appended to).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from collector_kit import REPORT_ID, CollectorProcess, measurement

from blockproof.codec.jcs import canonicalize
from blockproof.collector.merkle import leaf_hash, verify_consistency
from blockproof.collector.proofs import Receipt, receipt_problems
from blockproof.collector.service import Collector
from blockproof.loop import run_event_loop

CYCLES = 20
CLIENTS = 6
MAX_REQUESTS_PER_CYCLE = 400  # per client; bounds the loop whatever the timing


class Ledger:
    """What the clients were told: acknowledged measurements and their receipts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[bytes, Receipt]] = {}  # leaf -> (canonical, receipt)
        self.sent: list[bytes] = []
        self.mismatches: list[str] = []


def client(url: str, ledger: Ledger, ids: itertools.count[int], stop: threading.Event,
           rng: random.Random) -> None:  # fmt: skip
    with httpx.Client(base_url=url, timeout=5) as http:
        for _ in range(MAX_REQUESTS_PER_CYCLE):
            if stop.is_set():
                return
            with ledger.lock:
                resend = ledger.sent and rng.random() < 0.2
                canonical = rng.choice(ledger.sent) if resend else None
            if canonical is None:
                canonical = canonicalize(measurement(next(ids), pad=2000))
                with ledger.lock:
                    ledger.sent.append(canonical)
            body = b'{"format":"json","content":' + canonical + b"}"
            try:
                response = http.post(f"/report/{REPORT_ID}", content=body)
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            if response.status_code != 200:
                continue
            answer: dict[str, Any] = response.json()
            receipt = Receipt.from_json(answer["x_receipt"])
            leaf = leaf_hash(canonical)
            with ledger.lock:
                earlier = ledger.acked.get(leaf)
                if earlier and earlier[1].measurement_uid != receipt.measurement_uid:
                    ledger.mismatches.append(
                        f"{leaf.hex()}: uid {earlier[1].measurement_uid} then "
                        f"{receipt.measurement_uid}"
                    )
                if earlier is None:
                    ledger.acked[leaf] = (canonical, receipt)


@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "collector"
    collector = CollectorProcess(data)
    ledger = Ledger()
    ids = itertools.count()
    rng = random.Random(20240217)
    kills = 0
    for cycle in range(CYCLES):
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
    assert kills >= 20
    assert ledger.mismatches == []
    assert len(ledger.acked) > 100, "too little load to prove anything"

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
    finally:
        run_event_loop(final.aclose())
    print(f"{kills} kills, {len(ledger.acked)} acknowledged, {head.tree_size} logged")
