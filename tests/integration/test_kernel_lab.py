"""The kernel lab: shipped scenarios in real network namespaces, with the unmodified probe.

* **Parity.** Every shipped scenario the kernel can express is run on both backends:
  each must meet its ``[[expect]]`` tables, and the verdict keys (``blocking``,
  ``accessible``, ``x_blocking_flags``, the failures, the method) must be the same on
  both, URL by URL. Scenarios run four at a time (each run has its own namespaces);
  most of their time is spent waiting for the probe's timeouts.
* **Cleanup.** A run interrupted by Ctrl-C, SIGTERM or SIGKILL, or failing, leaves no
  namespace and no ``/etc/netns`` entry behind.
* **Bypasses, for real.** The fragmented ClientHello, DNS over HTTPS and the proxies
  abroad are measured against the kernel's censor.
* **Refusal.** Not root: a clear message and exit 2, nothing created.

Marked ``kernel``: skipped, with the reason, where the machine cannot run it (not
root, no ``ip``/``nft``, no network namespaces).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_circumvention_lab import CASES

from blockproof.lab import load_scenario, shipped_scenarios
from blockproof.lab.check import compare
from blockproof.lab.kernel import plan
from blockproof.lab.kernel.run import run_kernel_scenario
from blockproof.lab.kernel.shell import namespaces
from blockproof.lab.run import run_scenario, scenario_urls
from blockproof.model.measurement import Measurement


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the kernel lab needs root"
    for tool in ("ip", "nft", "tc"):
        if shutil.which(tool) is None:
            return f"the kernel lab needs {tool}"
    probe = f"blockproof-check-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"network namespaces are unavailable: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


WHY_NOT = _why_not()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]

# Shipped scenarios the kernel backend cannot run, and why (plan.unsupported says so
# for each; this list keeps the table honest if that changes).
CANNOT = {
    "dns-blocking-android-dns-cache-no-data": "android getaddrinfo",
    "throttling-with-http": "throttle delay with loss needs netem",
    "throttling-with-https": "throttle delay with loss needs netem",
}
VERDICT_KEYS = (
    "blocking",
    "accessible",
    "x_blocking_flags",
    "dns_consistency",
    "dns_experiment_failure",
    "http_experiment_failure",
    "control_failure",
)


def _kernel_scenarios() -> list[Path]:
    out = []
    for path in shipped_scenarios():
        scenario = load_scenario(path)
        if plan.unsupported(scenario):
            assert path.stem in CANNOT, f"{path.stem}: {plan.unsupported(scenario)}"
            continue
        out.append(path)
    return out


KERNEL_SCENARIOS = _kernel_scenarios() if WHY_NOT is None else []


def _verdict(m: Measurement) -> dict[str, Any]:
    keys = {k: m.test_keys.get(k) for k in VERDICT_KEYS}
    verdict = m.test_keys.get("x_verdict") or {}
    keys["method"] = verdict.get("method")
    return keys


Run = list[Measurement] | BaseException


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], Run]:
    """Every expressible shipped scenario on both backends, six runs at a time: a kernel
    run spends most of its time waiting (process starts, the probe's timeouts)."""

    def one(job: tuple[str, Path]) -> Run:
        backend, path = job
        scenario = load_scenario(path)
        try:
            if backend == "kernel":
                return run_kernel_scenario(path, scenario, scenario_urls(scenario))
            return asyncio.run(run_scenario(scenario))
        except Exception as exc:  # reported by the scenario's own test
            return exc

    jobs = [(backend, path) for path in KERNEL_SCENARIOS for backend in ("kernel", "inproc")]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, jobs))
    return {(backend, path.stem): r for (backend, path), r in zip(jobs, results, strict=True)}


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", KERNEL_SCENARIOS, ids=[p.stem for p in KERNEL_SCENARIOS])
def test_both_backends_meet_the_scenario_with_the_same_verdicts(
    path: Path, runs: dict[tuple[str, str], Run]
) -> None:
    scenario = load_scenario(path)
    kernel, inproc = runs[("kernel", path.stem)], runs[("inproc", path.stem)]
    if isinstance(kernel, BaseException):
        raise kernel
    if isinstance(inproc, BaseException):
        raise inproc
    assert compare(scenario, kernel) == [], "kernel backend"
    assert compare(scenario, inproc) == [], "inproc backend"
    by_url = {m.input: _verdict(m) for m in inproc}
    for m in kernel:
        assert _verdict(m) == by_url[m.input], m.input


def test_every_acceptance_scenario_is_in_the_parity_table() -> None:
    stems = {p.stem for p in KERNEL_SCENARIOS}
    wanted = {"pakistan-2024-x", "dns-inject", "dns-nxdomain", "tcp-blackhole",
              "tls-reset-first-segment", "http-blockpage", "throttle-rate",
              "no-censorship"}  # fmt: skip
    assert wanted <= stems


# --- bypasses, measured against the kernel's censor ---------------------------------

VIAS = ("socks5://vpn.proxy.example:1080", "http://vpn.proxy.example:3128")
# the in-process lab's table (test_circumvention_lab.CASES), measured on the kernel
BYPASS_CASES = CASES


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("name", "url", "expected"), BYPASS_CASES, ids=[c[0] for c in BYPASS_CASES]
)
def test_which_bypass_restores_access_on_the_kernel(
    name: str, url: str, expected: dict[str, bool]
) -> None:
    from blockproof.lab.check import resolve_scenario_path

    path = resolve_scenario_path(name)
    [m] = run_kernel_scenario(path, load_scenario(path), [url], bypass=True, vias=VIAS)
    assert m.test_keys["blocking"] not in (False, None)
    attempts = {a["method"]: a for a in m.test_keys["x_circumvention"]}
    assert {k: a["restored"] for k, a in attempts.items()} == expected, attempts


# --- nothing left behind -------------------------------------------------------------


def _ours() -> set[str]:
    return {ns for ns in namespaces() if ns.startswith(plan.PREFIX)}


def _etc_ours() -> set[str]:
    etc = Path("/etc/netns")
    return (
        {p.name for p in etc.iterdir() if p.name.startswith(plan.PREFIX)} if etc.exists() else set()
    )


def _lab_run(*args: str, stderr: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "blockproof", "lab", "run", "--backend", "kernel", *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name
)
def test_an_interrupted_run_leaves_nothing(sig: signal.Signals) -> None:
    before, etc_before = _ours(), _etc_ours()
    # tcp-blackhole waits for timeouts: the run is surely in the middle when killed
    proc = _lab_run("tcp-blackhole")
    try:
        assert _wait(lambda: len(_ours() - before) == 3, 30), "the run created its namespaces"
        time.sleep(1.0)  # servers up, probe measuring
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert _wait(lambda: _ours() == before and _etc_ours() == etc_before, 30), (
        f"left behind: {_ours() - before} {_etc_ours() - etc_before}"
    )
    if sig != signal.SIGKILL:
        assert proc.returncode != 0


@pytest.mark.timeout(120)
def test_a_failing_run_leaves_nothing_and_says_why() -> None:
    before = _ours()
    proc = _lab_run("no-censorship", "not a url", stderr=subprocess.PIPE)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode != 0
    assert b"blockproof run exited" in err, err.decode()
    assert _ours() == before


@pytest.mark.timeout(60)
def test_not_root_is_refused_with_a_clear_message() -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux)")
    before = set(namespaces())
    result = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "blockproof", "lab", "run", "--backend", "kernel",
         "no-censorship"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "HOME": "/tmp"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "needs root" in result.stderr
    assert "--backend inproc" in result.stderr
    assert set(namespaces()) == before


def _janitor_pids(run_id: str) -> list[int]:
    from blockproof.lab.kernel.shell import JANITOR_MODULE

    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        if JANITOR_MODULE.encode() in args and run_id.encode() in args:
            pids.append(int(cmdline.parent.name))
    return pids


@pytest.mark.timeout(120)
def test_lab_clean_removes_what_a_run_killed_with_its_janitor_left() -> None:
    before = _ours()
    proc = _lab_run("tcp-blackhole")
    try:
        assert _wait(lambda: len(_ours() - before) == 3, 30)
        [run_ns] = [ns for ns in _ours() - before if ns.endswith("-probe")]
        run_id = run_ns[len(plan.PREFIX) : -len("-probe")]
        janitors = _janitor_pids(run_id)
        assert janitors
        for pid in janitors:
            os.kill(pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert len(_ours() - before) == 3, "killed with its janitor, the run left its namespaces"
    cli = [sys.executable, "-m", "blockproof", "lab", "clean"]
    listed = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=True)
    assert f"left behind by run {run_id}" in listed.stdout
    assert len(_ours() - before) == 3, "without --yes nothing is removed"
    subprocess.run([*cli, "--yes"], capture_output=True, text=True, timeout=60, check=True)
    assert _ours() == before
