"""Probe throughput in the lab: measurements/s against the critical-path lower bound.

Run by hand (``make bench`` runs it through tests/bench/test_bench_lab.py):

    python tests/bench/lab_throughput.py --write docs/benchmarks.md

Each configuration runs in its own child process so that peak RSS is that
configuration's alone. The lab has N distinct hostnames (all https, one address
each, no censorship) and ``rtt_ms`` added to every round trip.

Critical path of one web_connectivity measurement (R = one round trip):
  resolve (getaddrinfo and UDP in parallel)                      R
  then the control exchange: TCP connect to the control          R
       POST round trip                                           R
       the control's own fetch: resolve, TCP, TLS, GET           4R
  (the probe's own TCP, TLS and GET, 3R, run in parallel)
  and the UDP lookup keeps listening for injected duplicates for W seconds
  after its first reply.
So T_min = max(7R, R + W) and, with c measurements in flight, the whole run
cannot take less than ceil(N / c) * T_min.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HOSTS = 200
RTT_MS = 20.0


def bench_scenario(hosts: int, rtt_ms: float) -> Any:
    from blockproof.lab.internet import Host
    from blockproof.lab.scenario import parse_scenario

    scenario = parse_scenario({"rtt_ms": rtt_ms}, source="bench", name="bench")
    return scenario.with_hosts(
        Host(
            name=f"site{i:03d}.bench.example",
            addresses=(f"45.{60 + i // 200}.{i % 200}.10",),
            asn=64496 + i % 10,
            org="Bench Hosting",
            title=f"Bench site {i}",
        )
        for i in range(hosts)
    )


async def _measure(
    hosts: int, rtt_ms: float, concurrency: int, window: float, split: bool = True
) -> dict[str, Any]:
    from blockproof.experiments.web_connectivity import ProbeContext
    from blockproof.lab import Lab
    from blockproof.lab.lab import LAB_TIMEOUTS
    from blockproof.lab.process import LabProcess
    from blockproof.probe.runner import run_urls

    scenario = bench_scenario(hosts, rtt_ms)
    urls = [f"https://site{i:03d}.bench.example/" for i in range(hosts)]
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    async with LabProcess(scenario) if split else Lab(scenario) as lab:
        ctx = ProbeContext(
            network=lab.probe_network,
            control_url=lab.control_url,
            resolver=lab.resolver_address,
            ca_file=lab.ca_file,
            timeouts=LAB_TIMEOUTS,
            control_budget=30.0,
            asn_of=lab.asn_of,
            probe_cc="ZZ",
            probe_asn="AS0",
            duplicate_window=window,
        )
        # One warm-up measurement (imports, certificate contexts) outside the clock.
        await run_urls([urls[0]], replace(ctx, report_id="warmup"), concurrency=1)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        measurements = await run_urls(urls, ctx, concurrency=concurrency)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    lab_cpu = (children.ru_utime - children0.ru_utime) + (children.ru_stime - children0.ru_stime)
    lab_cpu -= getattr(lab, "startup_cpu_s", 0.0)  # certificates for 200 hosts, imports
    accessible = sum(1 for m in measurements if m.test_keys.get("accessible") is True)
    r = rtt_ms / 1000.0
    t_min = max(7 * r, r + window)
    bound = math.ceil(hosts / concurrency) * t_min
    return {
        "hosts": hosts,
        "rtt_ms": rtt_ms,
        "concurrency": concurrency,
        "window_s": window,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s": hosts / wall,
        "bound_s": bound,
        "ratio": wall / bound,
        "accessible": accessible,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "lab_cpu_s": lab_cpu,  # the lab's child process, after start-up
        "lab_peak_rss_mb": children.ru_maxrss / 1024,
    }


def child(args: argparse.Namespace) -> None:
    from blockproof.loop import run_event_loop

    result = run_event_loop(_measure(args.hosts, args.rtt_ms, args.concurrency, args.window))
    print(json.dumps(result))


def run_one(hosts: int, rtt_ms: float, concurrency: int, window: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--hosts", str(hosts), "--rtt-ms", str(rtt_ms),
         "--concurrency", str(concurrency), "--window", str(window)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def table(results: list[list[dict[str, Any]]]) -> str:
    """One row per configuration: the median run of its repetitions, and the ratio range."""
    lines = [
        "| concurrency | UDP window | wall (s) | measurements/s | lower bound (s) | ratio "
        "(median) | ratio (min-max) | probe CPU (s) | probe peak RSS (MB) | lab CPU (s) "
        "| lab peak RSS (MB) | accessible |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runs in results:
        ordered = sorted(runs, key=lambda run: run["wall_s"])
        r = ordered[len(ordered) // 2]
        low, high = ordered[0]["ratio"], ordered[-1]["ratio"]
        lines.append(
            f"| {r['concurrency']} | {r['window_s']:.1f} s | {r['wall_s']:.2f} | {r['per_s']:.1f} "
            f"| {r['bound_s']:.2f} | **{r['ratio']:.2f}x** | {low:.2f}-{high:.2f} "
            f"| {r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['lab_cpu_s']:.2f} "
            f"| {r['lab_peak_rss_mb']:.0f} | {min(x['accessible'] for x in runs)}/{r['hosts']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hosts", type=int, default=HOSTS)
    parser.add_argument("--rtt-ms", type=float, default=RTT_MS)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument("--window", type=float, nargs="*", default=[0.3, 0.0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each configuration")
    parser.add_argument("--write", type=Path, help="update this markdown file's lab section")
    args = parser.parse_args()
    if args.child:
        args.concurrency = args.concurrency[0]
        args.window = args.window[0]
        child(args)
        return
    configurations = [(w, c) for w in args.window for c in args.concurrency]
    results: list[list[dict[str, Any]]] = [[] for _ in configurations]
    for _round in range(args.repeat):  # interleaved, so drift hits every configuration alike
        for runs, (window, concurrency) in zip(results, configurations, strict=True):
            result = run_one(args.hosts, args.rtt_ms, concurrency, window)
            print(json.dumps(result), flush=True)
            runs.append(result)
    text = table(results)
    print(text)
    if args.write:
        write_section(args.write, text, args)


BEGIN = "<!-- lab-throughput:begin -->"
END = "<!-- lab-throughput:end -->"


def write_section(path: Path, text: str, args: argparse.Namespace) -> None:
    stamp = time.strftime("%Y-%m-%d")
    section = (
        f"{BEGIN}\n_Measured {stamp} with `python tests/bench/lab_throughput.py "
        f"--write docs/benchmarks.md`: {args.hosts} distinct hostnames, {args.rtt_ms:g} ms "
        f"per round trip, {args.repeat} interleaved runs of every configuration side by side "
        f"in one run; each row is the median run._\n\n{text}\n{END}"
    )
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + section + old[old.index(END) + len(END) :]
    else:
        new = old + ("\n" if old else "") + section + "\n"
    path.write_text(new)


if __name__ == "__main__":
    main()
