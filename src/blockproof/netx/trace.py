"""Recording what a measurement does: clock, transaction ids and the Trace.

A ``Recorder`` belongs to one measurement. Shells ask it for the time since
the measurement started (``now``), for transaction ids (OONI's ranges:
getaddrinfo 10001+, UDP 20001+, DoH 30001+, cleartext endpoints 40001+,
TLS endpoints 50001+) and append their records to ``trace``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

from blockproof.model.observations import NetworkEvent, Trace

TX_GETADDRINFO = 10001
TX_UDP = 20001
TX_DOH = 30001
TX_CLEARTEXT = 40001
TX_TLS = 50001
TX_CONTROL = 60001

# Per connection, at most this many read/write events are kept (OONI keeps ~64).
MAX_IO_EVENTS_PER_CONN = 64
# bytes_received_cumulative is sampled at most this often (seconds), as OONI's ~250 ms ticker.
SAMPLE_INTERVAL = 0.25


class Recorder:
    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._zero = self._loop.time()
        self.trace = Trace()
        self._ids: dict[int, Iterator[int]] = {}

    def now(self) -> float:
        return round(self._loop.time() - self._zero, 6)

    def next_id(self, base: int) -> int:
        counter = self._ids.setdefault(base, itertools.count(base))
        return next(counter)

    def event(
        self,
        operation: str,
        *,
        t0: float,
        address: str = "",
        failure: str | None = None,
        num_bytes: int = 0,
        proto: str = "tcp",
        tags: tuple[str, ...] = (),
        transaction_id: int = 0,
    ) -> None:
        self.trace.network_events.append(
            NetworkEvent(
                operation=operation,
                address=address,
                failure=failure,
                num_bytes=num_bytes,
                proto=proto,
                t0=t0,
                t=self.now(),
                tags=tags,
                transaction_id=transaction_id,
            )
        )
