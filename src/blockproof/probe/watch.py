"""``blockproof watch``: measure on a schedule, spool, upload, and keep going.

Each round measures the chosen URLs (platform endpoints and/or URLs), sends
every measurement through the ``Sink`` (signed, spooled), then uploads what is
pending if a collector is configured, and logs one line. Rounds start every
``every`` seconds, shifted by a random jitter (up to ``jitter`` of the period)
so that volunteers' probes do not all fire at the same second.

Nothing stops the loop but a signal or ``rounds``: a failed upload leaves
measurements pending for the next round (network loss, collector down); an
unexpected error in a round is logged and the next round runs. Restarting is
safe at any time: the spool is on disk, and uploads are idempotent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from blockproof.model.measurement import Measurement
from blockproof.probe.sink import Sink
from blockproof.probe.upload import RetryPolicy, UploadReport, upload

Measure = Callable[[Callable[[Measurement], None]], Coroutine[Any, Any, list[Measurement]]]


@dataclass(frozen=True, slots=True)
class Schedule:
    every: float
    jitter: float = 0.1  # fraction of the period
    rounds: int | None = None  # None: until stopped

    def delay(self, started: float, now: float) -> float:
        shift = random.uniform(-self.jitter, self.jitter) * self.every
        return max(0.0, started + self.every + shift - now)


def round_line(number: int, measurements: list[Measurement], pending: int, up: str) -> str:
    methods = Counter(
        str((m.test_keys.get("x_verdict") or {}).get("method", "?"))
        for m in measurements
        if m.test_keys.get("blocking") not in (False, None)
    )
    blocked = sum(methods.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(methods.items()))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{stamp} round {number}: {len(measurements)} measured, {blocked} blocked"
        + (f" ({detail})" if detail else "")
        + f"; {up}; {pending} pending"
    )


def _recorder(sink: Sink) -> Callable[[Measurement], None]:
    def record(measurement: Measurement) -> None:
        sink(measurement)

    return record


async def watch(
    measure: Measure,
    sink: Sink,
    schedule: Schedule,
    *,
    collector: str | None,
    log: Callable[[str], None],
    policy: RetryPolicy | None = None,
) -> int:
    """Run rounds until ``schedule.rounds`` or cancellation; returns rounds run."""
    number = 0
    while schedule.rounds is None or number < schedule.rounds:
        number += 1
        started = time.monotonic()
        try:
            measurements = await measure(_recorder(sink))
            up = "no collector"
            if collector is not None and sink.spool is not None:
                report: UploadReport = await upload(sink.spool, collector, policy=policy)
                up = f"uploaded {report.accepted + report.duplicates}"
                if not report.ok:
                    up += f", {report.failed + report.rejected} failed ({report.errors[0]})"
            pending = len(sink.spool.pending()) if sink.spool is not None else 0
            log(round_line(number, measurements, pending, up))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep watching: one bad round must not end the vigil
            log(f"round {number} failed: {type(exc).__name__}: {exc}")
        if schedule.rounds is not None and number >= schedule.rounds:
            break
        await asyncio.sleep(schedule.delay(started, time.monotonic()))
    return number
