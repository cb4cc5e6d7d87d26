"""A platform's reachability by function: "web blocked by TLS reset, API reachable, ...".

A platform is not one URL (``data/platforms.toml``): X serves its web pages,
its apps' API, short links, images, video and scripts from different hosts, and
a censor may treat them differently. ``by_function`` folds one run's verdicts
over a platform's endpoints into one line per function. Pure: no I/O.

States, in order of precedence for a function with several endpoints:

- ``blocked``: at least one endpoint was judged blocked (``blocking`` is a
  method, not false/null); the methods seen are listed;
- ``reachable``: every endpoint was accessible with no blocking;
- ``down``: nothing blocked, and the control could not reach it either;
- ``unknown``: anything else (no measurement, control unavailable...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from blockproof.model.measurement import Measurement
from blockproof.platforms import Platform


@dataclass(frozen=True, slots=True)
class FunctionStatus:
    function: str
    state: str  # blocked | reachable | down | unknown
    endpoints: int
    blocked: int
    methods: tuple[str, ...]  # blocking methods seen (tls, dns, tcp_ip, http-diff...), sorted

    @property
    def text(self) -> str:
        if self.state == "blocked":
            share = (
                "" if self.blocked == self.endpoints else f" ({self.blocked} of {self.endpoints})"
            )
            return f"blocked by {', '.join(self.methods)}{share}"
        if self.state == "reachable":
            return "reachable"
        if self.state == "down":
            return "down for the control too (not censorship)"
        return "could not be determined"


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
        statuses.append(FunctionStatus(function, state, len(urls), len(blocked), methods))
    return statuses
