"""What ``run`` does after a URL's Web Connectivity measurement, before keeping it.

* a **blocked** URL: try the bypasses (DoH, ClientHello fragmentation, each
  ``--via`` proxy) and attach the attempts as ``x_circumvention``
  (``experiments.circumvention``);
* a **reachable** URL whose platform function carries bulk traffic (media,
  video, static: where throttling bites, as in Russia 2021): run the throttling
  experiment (the same download with the site's SNI and an innocuous one) and
  attach it as ``x_throttling`` (``experiments.throttling``).

The follow-up runs inside the URL's slot, so its extra connections count in the
run's concurrency, and before the measurement is signed and spooled, so the
attached results are covered by the signature.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from blockproof.experiments.circumvention import Bypass, bypasses, is_blocked, try_bypasses
from blockproof.experiments.web_connectivity import ProbeContext
from blockproof.model.measurement import Measurement
from blockproof.netx.proxy import DEFAULT_DOH, Proxy

THROTTLING_FUNCTIONS = frozenset({"media", "video", "static"})


@dataclass
class FollowUps:
    """The follow-up experiments of one run (see the module docstring)."""

    bypass: bool = True  # try DoH and fragmentation on blocked URLs
    vias: tuple[Proxy, ...] = ()
    throttling_urls: frozenset[str] = frozenset()
    doh: tuple[str, str] = DEFAULT_DOH
    throttling_seconds: float = 3.0
    _tries: list[Bypass] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _throttling_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def __call__(self, url: str, measurement: Measurement, ctx: ProbeContext) -> None:
        if is_blocked(measurement):
            if self.bypass or self.vias:
                tries = await self._bypasses(ctx)
                attempts = await try_bypasses(url, measurement, tries)
                measurement.test_keys["x_circumvention"] = [a.as_dict() for a in attempts]
        elif url in self.throttling_urls and measurement.test_keys.get("accessible") is True:
            from blockproof.experiments.throttling import measure_throttling

            # one download at a time: two would share the link and slow each other
            async with self._throttling_lock:
                result = await measure_throttling(ctx, url, seconds=self.throttling_seconds)
            measurement.test_keys.update(result.attachment())

    async def _bypasses(self, ctx: ProbeContext) -> list[Bypass]:
        async with self._lock:
            if self._tries is None:
                self._tries = await bypasses(
                    ctx, vias=self.vias, doh=self.doh, fragment=self.bypass, use_doh=self.bypass
                )
            return self._tries


def throttling_targets(platform_ids: tuple[str, ...]) -> frozenset[str]:
    """The endpoints of these platforms whose function carries bulk traffic."""
    from blockproof.platforms import profiles

    known = profiles()
    return frozenset(
        e.url
        for pid in platform_ids
        if (p := known.get(pid.lower())) is not None
        for e in p.endpoints
        if e.function in THROTTLING_FUNCTIONS
    )
