"""Run many measurements concurrently, in input order, with a bounded number in flight.

``run_urls`` starts at most ``concurrency`` measurements at once and hands
each finished one to ``on_result`` as it completes (progress bars, spooling).
It returns the measurements in input order.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from blockproof.errors import InputError
from blockproof.experiments.web_connectivity import ProbeContext, measure_url, validate_url
from blockproof.model.measurement import Measurement
from blockproof.netx.failures import unexpected_failure

# Runs after a URL's measurement, before it is reported: may add x_ keys to it.
FollowUp = Callable[[str, Measurement, ProbeContext], Awaitable[None]]


async def run_urls(
    urls: list[str],
    ctx: ProbeContext,
    *,
    concurrency: int = 8,
    on_result: Callable[[Measurement], None] | None = None,
    follow_up: FollowUp | None = None,
) -> list[Measurement]:
    """Measure ``urls``; ``follow_up`` may add experiments' results to a measurement
    (throttling, bypass attempts) before it is reported (and so signed and kept)."""
    for url in urls:
        validate_url(url)
    ctx = ctx.with_report_id()
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(url: str) -> Measurement:
        async with slots:
            measurement = await measure_url(url, ctx)
            if follow_up is not None:
                try:
                    await follow_up(url, measurement, ctx)
                except Exception as exc:  # a follow-up's bug keeps the measurement
                    measurement.test_keys["x_follow_up_failure"] = unexpected_failure(exc)
        if on_result is not None:
            on_result(measurement)
        return measurement

    return list(await asyncio.gather(*(one(u) for u in urls)))


def read_url_list(path: Path) -> list[str]:
    """URLs from a Citizen Lab test-list CSV (``url,category_code,...``) or one URL a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the URL list: {exc.strerror}") from exc
    lines = text.splitlines()
    urls: list[str] = []
    if lines and lines[0].lower().startswith("url,"):
        for lineno, row in enumerate(csv.reader(lines[1:]), start=2):
            if not row or not row[0].strip():
                continue
            url = row[0].strip()
            try:
                validate_url(url)
            except InputError as exc:
                raise InputError(f"{path}:{lineno}: {exc}") from None
            urls.append(url)
    else:
        for lineno, line in enumerate(lines, start=1):
            url = line.strip()
            if not url or url.startswith("#"):
                continue
            try:
                validate_url(url)
            except InputError as exc:
                raise InputError(f"{path}:{lineno}: {exc}") from None
            urls.append(url)
    return list(dict.fromkeys(urls))


@dataclass(frozen=True, slots=True)
class Summary:
    """One line of the verdict table."""

    input: str
    blocking: str | bool | None
    accessible: bool | None
    method: str
    rule_id: str
    explanation: str
    # why the measurement could not be judged: no control answered (its failure), none
    # was asked, or the probe itself failed; None when it was judged
    unjudged: str | None = None

    @staticmethod
    def of(m: Measurement) -> Summary:
        tk = m.test_keys
        verdict = tk.get("x_verdict") or {}
        unjudged = None
        if tk.get("blocking") is None and tk.get("accessible") is None:
            if tk.get("x_failure"):
                unjudged = f"probe error: {tk['x_failure']}"
            elif tk.get("control_failure"):
                unjudged = f"no control: {tk['control_failure']}"
            elif tk.get("control") is None:
                unjudged = "no control asked"
        return Summary(
            input=m.input or "",
            blocking=tk.get("blocking"),
            accessible=tk.get("accessible"),
            method=str(verdict.get("method", "")),
            rule_id=str(verdict.get("rule_id", "")),
            explanation=str(verdict.get("explanation", "")) or (unjudged or ""),
            unjudged=unjudged,
        )


def summaries(measurements: Iterable[Measurement]) -> list[Summary]:
    return [Summary.of(m) for m in measurements]
