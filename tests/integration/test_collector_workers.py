"""Admission in worker processes (``collector.workers``) decides exactly as inline admission.

The pool is an optimisation only: for every input, good or bad, its answer
must be the one ``admission`` gives in the collector process (same canonical
bytes, leaf hash, key id; same status, code and sentence). A worker that dies
must cost nothing but speed, and workers must not outlive a killed collector.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from collector_kit import REPORT_ID, CollectorProcess, measurement
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blockproof.codec.jcs import canonicalize
from blockproof.collector import admission
from blockproof.collector.admission import Admitted, Rejection
from blockproof.collector.workers import AdmissionPool, WorkerLost, admit_submission
from blockproof.custody.proofs import Receipt, receipt_problems
from blockproof.custody.signing import sign_measurement

KEY = Ed25519PrivateKey.generate()


def _lines() -> list[bytes]:
    signed = sign_measurement(measurement(1), KEY)
    tampered = dict(signed, input="https://x.com/other")
    partial = {k: v for k, v in signed.items() if k != "x_public_key"}
    return [
        canonicalize(signed),
        canonicalize(measurement(2)),
        json.dumps(signed, indent=2, sort_keys=False).encode(),  # not canonical: re-spelled
        json.dumps(dict(reversed(list(measurement(3).items())))).encode(),
        canonicalize(tampered),
        canonicalize(partial),
        b"{not json",
        b"[1, 2]",
        b'{"a": 1, "a": 2}',
        canonicalize({k: v for k, v in measurement(4).items() if k != "test_keys"}),
        canonicalize(measurement(5, probe_ip="10.1.2.3")),
        canonicalize(measurement(6, probe_cc="pk")),
    ]


def _inline_line(line: bytes) -> Admitted | Rejection:
    try:
        return admission.admit_bytes(line)
    except Rejection as rej:
        return rej


def _inline_single(body: bytes) -> Admitted | Rejection:
    try:
        return admit_submission(REPORT_ID, body)
    except Rejection as rej:
        return rej


def _bodies() -> list[bytes]:
    signed = sign_measurement(measurement(7), KEY)
    return [
        b'{"format":"json","content":' + canonicalize(signed) + b"}",
        json.dumps({"content": signed, "format": "json"}, indent=1).encode(),  # re-spelled
        json.dumps({"format": "json", "content": measurement(8)}).encode(),
        json.dumps({"format": "yaml", "content": measurement(9)}).encode(),
        json.dumps({"format": "json", "content": dict(signed, probe_asn="AS1")}).encode(),
        json.dumps({"format": "json", "content": measurement(10, report_id="x")}).encode(),
        json.dumps({"format": "json"}).encode(),
        b"",
        b"null",
    ]


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[AdmissionPool]:
    started = AdmissionPool(2)
    await started.start()
    yield started
    await started.aclose()


@pytest.mark.asyncio
async def test_batch_lines_get_the_inline_answer(pool: AdmissionPool) -> None:
    lines = _lines()
    answers = await pool.admit_lines(lines)
    assert answers == [_inline_line(line) for line in lines]
    first, respelled = answers[0], answers[2]
    assert isinstance(first, Admitted)
    assert first.key_id is not None
    assert isinstance(respelled, Admitted)
    assert respelled.canonical == first.canonical
    assert [type(a).__name__ for a in answers[4:]] == ["Rejection"] * 8


@pytest.mark.asyncio
async def test_single_submissions_get_the_inline_answer(pool: AdmissionPool) -> None:
    bodies = _bodies()

    async def one(body: bytes) -> Admitted | Rejection:
        try:
            return await pool.admit_submission(REPORT_ID, body)
        except Rejection as rej:
            return rej

    # Submitted together: they travel in one message per worker (micro-batching).
    answers = await asyncio.gather(*(one(body) for body in bodies))
    assert answers == [_inline_single(body) for body in bodies]
    assert [isinstance(a, Admitted) for a in answers] == [True] * 3 + [False] * 6


@pytest.mark.asyncio
async def test_a_dead_worker_fails_its_jobs_with_worker_lost() -> None:
    pool = AdmissionPool(1)
    await pool.start()
    try:
        os.kill(pool._workers[0].proc.pid, signal.SIGKILL)
        with pytest.raises(WorkerLost):
            await asyncio.wait_for(pool.admit_lines([canonicalize(measurement(1))]), 30)
        assert not pool.available
        with pytest.raises(WorkerLost):  # no worker left: the caller admits inline
            await pool.admit_lines([canonicalize(measurement(2))])
    finally:
        await pool.aclose()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _submit(url: str, m: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{url}/report/{REPORT_ID}", json={"format": "json", "content": m}, timeout=30
    )


def test_served_collector_survives_killed_workers_and_takes_them_down(tmp_path: Path) -> None:
    os.environ["BLOCKPROOF_COLLECTOR_WORKERS"] = "2"
    try:
        collector = CollectorProcess(tmp_path / "data")
        collector.start()
    finally:
        del os.environ["BLOCKPROOF_COLLECTOR_WORKERS"]
    try:
        assert collector.proc is not None
        workers = _children(collector.proc.pid)
        assert len(workers) == 2
        first = _submit(collector.url, sign_measurement(measurement(1), KEY))
        assert first.status_code == 200, first.text
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        # Admission falls back to the collector process: same answers, same proofs.
        for i in range(2, 6):
            m = sign_measurement(measurement(i), KEY)
            answer = _submit(collector.url, m)
            assert answer.status_code == 200, answer.text
            receipt = Receipt.from_json(answer.json()["x_receipt"])
            assert receipt_problems(canonicalize(m), receipt) == []
        bad = _submit(collector.url, dict(sign_measurement(measurement(9), KEY), input="x"))
        assert (bad.status_code, bad.json()["error"]) == (422, "bad_signature")
    finally:
        collector.stop()

    # And with live workers, SIGKILL of the collector takes them down too (end of file).
    collector = CollectorProcess(tmp_path / "data")
    os.environ["BLOCKPROOF_COLLECTOR_WORKERS"] = "2"
    try:
        collector.start()
    finally:
        del os.environ["BLOCKPROOF_COLLECTOR_WORKERS"]
    assert collector.proc is not None
    workers = _children(collector.proc.pid)
    assert len(workers) == 2
    collector.kill()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)
