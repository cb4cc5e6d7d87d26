"""A platform's reachability by function: "web blocked by TLS reset, API reachable, ...".

A platform is not one URL (``data/platforms.toml``): X serves its web pages,
its apps' API, short links, images, video and scripts from different hosts, and
a censor may treat them differently. ``by_function`` folds one run's verdicts
over a platform's endpoints into one line per function. Pure: no I/O.

States, in order of precedence for a function with several endpoints:

- ``blocked``: at least one endpoint was judged blocked (``blocking`` is a
  method, not false/null); the methods seen are listed, and, when bypasses were
  tried (``x_circumvention``), which restored access to every blocked endpoint
  and which did not;
- ``throttled``: nothing blocked, but the throttling experiment (``x_throttling``)
  found an endpoint slowed down by name: its rate and how many times slower it is
  than the same download with an innocuous SNI;
- ``reachable``: every endpoint was accessible with no blocking (a generally slow
  network is said so: every name equally slow is not throttling);
- ``down``: nothing blocked, and the control could not reach it either;
- ``unknown``: anything else (no measurement, control unavailable...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from blockproof.model.measurement import Measurement
from blockproof.platforms import Platform


@dataclass(frozen=True, slots=True)
class FunctionStatus:
    function: str
    state: str  # blocked | reachable | down | unknown
    endpoints: int
    blocked: int
    methods: tuple[str, ...]  # blocking methods seen (tls, dns, tcp_ip, http-diff...), sorted
    restored_by: tuple[str, ...] = ()  # bypasses that restored every blocked endpoint
    not_restored_by: tuple[str, ...] = ()  # bypasses tried that did not
    throttled_kbps: float | None = None  # the slowest throttled endpoint's rate
    throttle_ratio: float | None = None  # how many times slower than with another SNI
    slow_network_kbps: float | None = None  # every SNI equally slow (not throttling)

    @property
    def text(self) -> str:
        if self.state == "blocked":
            share = (
                "" if self.blocked == self.endpoints else f" ({self.blocked} of {self.endpoints})"
            )
            text = f"blocked by {', '.join(self.methods)}{share}"
            if self.restored_by:
                text += f"; restored by {_labels(self.restored_by)}"
            if self.not_restored_by:
                text += f"; not by {_labels(self.not_restored_by)}"
            return text
        if self.state == "throttled":
            ratio = f", {self.throttle_ratio:.1f}x slower than with another SNI" if (
                self.throttle_ratio) else ""  # fmt: skip
            return f"throttled to {self.throttled_kbps:.0f} kbit/s{ratio}"
        if self.state == "reachable":
            if self.slow_network_kbps is not None:
                return (
                    f"reachable (a slow network: {self.slow_network_kbps:.0f} kbit/s whatever "
                    "the SNI, not throttling)"
                )
            return "reachable"
        if self.state == "down":
            return "down for the control too (not censorship)"
        return "could not be determined"


BYPASS_LABELS = {"doh": "DNS over HTTPS", "fragment": "ClientHello fragmentation"}


def _labels(methods: tuple[str, ...]) -> str:
    return ", ".join(BYPASS_LABELS.get(m, m) for m in methods)


def _method(m: Measurement) -> str:
    verdict = m.test_keys.get("x_verdict") or {}
    method = verdict.get("method")
    return str(method) if method else str(m.test_keys.get("blocking"))


def by_function(platform: Platform, measurements: Iterable[Measurement]) -> list[FunctionStatus]:
    """One status per function of ``platform``, in the profile's order."""
    by_input = {m.input: m for m in measurements}
    order: list[str] = []
    for endpoint in platform.endpoints:
        if endpoint.function not in order:
            order.append(endpoint.function)
    statuses: list[FunctionStatus] = []
    for function in order:
        urls = [e.url for e in platform.endpoints if e.function == function]
        found = [by_input[u] for u in urls if u in by_input]
        blocked = [m for m in found if m.test_keys.get("blocking") not in (False, None)]
        if blocked:
            state = "blocked"
        elif (
            found
            and len(found) == len(urls)
            and all(m.test_keys.get("accessible") is True for m in found)
        ):
            state = "reachable"
        elif found and all(_method(m) == "down" for m in found):
            state = "down"
        else:
            state = "unknown"
        methods = tuple(sorted({_method(m) for m in blocked}))
        restored, not_restored = _bypasses(blocked)
        throttled = [t for m in found if (t := _throttling(m)) and t["verdict"] == "throttled"]
        slow = [t for m in found if (t := _throttling(m)) and t["verdict"] == "slow_network"]
        if state == "reachable" and throttled:
            state = "throttled"
        worst = min(throttled, key=lambda t: float(t["target_kbps"])) if throttled else None
        statuses.append(
            FunctionStatus(
                function, state, len(urls), len(blocked), methods,
                restored_by=restored, not_restored_by=not_restored,
                throttled_kbps=float(worst["target_kbps"]) if worst else None,
                throttle_ratio=float(worst["ratio"]) if worst and worst.get("ratio") else None,
                slow_network_kbps=(
                    min(float(t["target_kbps"]) for t in slow) if slow and not throttled else None
                ),
            )
        )  # fmt: skip
    return statuses


def _throttling(m: Measurement) -> dict[str, Any] | None:
    found = m.test_keys.get("x_throttling")
    return found if isinstance(found, dict) and "verdict" in found else None


def _bypasses(blocked: list[Measurement]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Bypasses that restored every blocked endpoint they were tried on, and the others."""
    outcomes: dict[str, list[bool]] = {}
    for m in blocked:
        for attempt in m.test_keys.get("x_circumvention") or []:
            outcomes.setdefault(str(attempt["method"]), []).append(bool(attempt["restored"]))
    restored = tuple(k for k, v in outcomes.items() if all(v))
    return restored, tuple(k for k in outcomes if k not in restored)
