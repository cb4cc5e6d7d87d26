"""Upload the spool's pending measurements to a collector: resumable, idempotent, verified.

Pending measurements go in batches to the collector's ``POST /measurements``
(JSON lines). A batch that meets a network error, a timeout, a 5xx or a 429 is
retried with exponential backoff and jitter, a bounded number of times; a batch
refused as a whole (another 4xx) is not retried. Per measurement the collector
answers accepted, duplicate (already logged: same uid) or rejected (with why).

Nothing is marked uploaded on the collector's word alone: each receipt's
inclusion proof is checked against the signed tree head, and the tree head's
key against the key this spool saw the first time it talked to that collector
(``collectors.json``, trust on first use; ``--log-id`` pins it explicitly). A
receipt that does not verify leaves the measurement pending and counts as a
failure. Re-running after any failure sends only what is still pending, and a
measurement the collector already holds comes back as a duplicate with its
original uid, so each measurement is logged exactly once.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from blockproof.custody.proofs import ProofFormatError, Receipt, TreeHead, receipt_problems
from blockproof.errors import InputError
from blockproof.probe.spool import Spool, SpoolEntry, write_atomic

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
PINS_FILE = "collectors.json"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 60.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(slots=True)
class UploadReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0  # still pending after this run
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "failed": self.failed,
            "errors": self.errors,
        }


class _BatchFailed(Exception):
    pass


def _pinned_log_id(spool: Spool, collector: str) -> str | None:
    path = spool.root / PINS_FILE
    if not path.exists():
        return None
    pins = json.loads(path.read_bytes())
    value = pins.get(collector.rstrip("/"))
    return value if isinstance(value, str) else None


def _pin(spool: Spool, collector: str, log_id: str) -> None:
    path = spool.root / PINS_FILE
    pins = json.loads(path.read_bytes()) if path.exists() else {}
    pins[collector.rstrip("/")] = log_id
    spool.root.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(pins, indent=1, sort_keys=True).encode() + b"\n")


async def _post_batch(
    client: httpx.AsyncClient, url: str, body: bytes, policy: RetryPolicy
) -> dict[str, Any]:
    last = ""
    for attempt in range(1, policy.attempts + 1):
        if attempt > 1:
            await asyncio.sleep(policy.delay(attempt - 1))
        try:
            response = await client.post(
                url, content=body, headers={"content-type": "application/x-ndjson"}
            )
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            continue
        if response.status_code == 200:
            try:
                answer = response.json()
            except ValueError:
                raise _BatchFailed(
                    "the collector answered 200 with a body that is not JSON"
                ) from None
            if not isinstance(answer, dict):
                raise _BatchFailed("the collector's answer is not a JSON object")
            return answer
        detail = response.text[:300]
        last = f"HTTP {response.status_code}: {detail}"
        if response.status_code not in RETRYABLE_STATUS:
            raise _BatchFailed(last)
    raise _BatchFailed(f"gave up after {policy.attempts} attempts; last: {last}")


async def upload(
    spool: Spool,
    collector: str,
    *,
    batch_size: int = 50,
    policy: RetryPolicy | None = None,
    log_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> UploadReport:
    """Send every pending measurement to ``collector``; see the module docstring."""
    if not collector.startswith(("http://", "https://")):
        raise InputError(f"--collector {collector!r}: expected an http:// or https:// URL")
    policy = policy or RetryPolicy()
    report = UploadReport()
    pending = spool.pending()
    if not pending:
        return report
    expected = log_id or _pinned_log_id(spool, collector)
    url = collector.rstrip("/") + "/measurements"
    async with httpx.AsyncClient(timeout=policy.timeout, transport=transport) as client:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            contents = [entry.read().rstrip(b"\n") for entry in batch]
            try:
                answer = await _post_batch(client, url, b"\n".join(contents) + b"\n", policy)
                expected = _apply(spool, collector, batch, contents, answer, expected, report)
            except _BatchFailed as exc:
                report.failed += len(batch)
                report.errors.append(f"{len(batch)} measurements not uploaded: {exc}")
            if on_progress is not None:
                on_progress(len(batch))
    return report


def _apply(
    spool: Spool,
    collector: str,
    batch: list[SpoolEntry],
    contents: list[bytes],
    answer: dict[str, Any],
    expected: str | None,
    report: UploadReport,
) -> str | None:
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != len(batch):
        raise _BatchFailed("the collector's answer does not have one result per measurement")
    try:
        head = TreeHead.from_json(answer.get("tree_head"))
    except ProofFormatError as exc:
        raise _BatchFailed(f"the collector's tree head is malformed: {exc}") from None
    if expected is None:  # first contact: trust this collector's key from now on
        _pin(spool, collector, head.log_id)
        expected = head.log_id
    for entry, canonical, result in zip(batch, contents, results, strict=True):
        status = result.get("status") if isinstance(result, dict) else None
        if status == "rejected":
            report.rejected += 1
            report.errors.append(f"{entry.id}: rejected: {result.get('detail', result)}")
            spool.mark_rejected(entry, result)
            continue
        if status not in ("accepted", "duplicate"):
            report.failed += 1
            report.errors.append(f"{entry.id}: unexpected result {str(result)[:200]}")
            continue
        try:
            receipt = Receipt.from_json({**result["receipt"], "tree_head": answer["tree_head"]})
        except (ProofFormatError, KeyError, TypeError) as exc:
            report.failed += 1
            report.errors.append(f"{entry.id}: malformed receipt: {exc}")
            continue
        problems = receipt_problems(canonical, receipt, log_id=expected)
        if problems:
            report.failed += 1
            report.errors.append(f"{entry.id}: the receipt does not verify: {problems[0]}")
            continue
        spool.mark_uploaded(entry, receipt.to_json())
        if status == "duplicate":
            report.duplicates += 1
        else:
            report.accepted += 1
    return expected
