"""Per-client rate limits for the servers that face the internet (sans-IO).

A token bucket per client address: each client may send ``burst`` requests at
once, then ``rate`` requests a second on average. The caller passes the time
(``now``, seconds on any monotonic clock), so this module never reads a clock,
sleeps or touches a socket, and the tests drive it with made-up times.

The table of clients is bounded (``max_clients``): when it is full, the client
seen longest ago is forgotten. A forgotten client starts again with a full
bucket, which is what it would have had anyway if it was idle for
``burst / rate`` seconds; an attacker who cycles through more addresses than the
table holds gains at most one burst per address, as it would with no table bound
at all. Memory stays at ``max_clients`` small entries whatever arrives.

Limits are meant for abuse, not for real probes: an upload sends batches of 50
measurements, one request each, and a probe asks the control server once per
URL it measures, with a handful in flight. The defaults of the serve commands
are far above that, and also leave room for many probes behind one carrier-grade
NAT address.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_MAX_CLIENTS = 65_536


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate`` requests a second on average, ``burst`` at once; ``rate <= 0`` means off."""

    rate: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        return f"{self.rate:g} requests/s per client, bursts of {self.burst}"


class RateLimiter:
    """Token buckets keyed by client address, at most ``max_clients`` of them."""

    __slots__ = ("_buckets", "limit", "limited", "max_clients")

    def __init__(self, limit: RateLimit, *, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.limit = limit
        self.max_clients = max_clients
        self.limited = 0  # requests refused so far
        # client -> (tokens left, time they were counted); oldest-seen first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, client: str, now: float) -> float | None:
        """Take one token for ``client``: None if allowed, else seconds until one is due."""
        limit = self.limit
        if not limit.enabled:
            return None
        buckets = self._buckets
        entry = buckets.pop(client, None)
        if entry is None:
            tokens = float(limit.burst)
            if len(buckets) >= self.max_clients:
                buckets.popitem(last=False)  # forget the client seen longest ago
        else:
            tokens, then = entry
            elapsed = max(0.0, now - then)
            tokens = min(float(limit.burst), tokens + elapsed * limit.rate)
        if tokens >= 1.0:
            buckets[client] = (tokens - 1.0, now)
            return None
        buckets[client] = (tokens, now)
        self.limited += 1
        return (1.0 - tokens) / limit.rate


def retry_after_header(wait: float) -> bytes:
    """A Retry-After value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait))).encode()
