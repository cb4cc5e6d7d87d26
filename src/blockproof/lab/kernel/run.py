"""Run the unmodified probe in a scenario built from real namespaces (``lab run --backend kernel``).

The steps, each undone by ``shell.teardown`` whatever happens:

1. check the machine (root, tools) and the scenario (``plan.unsupported``);
2. start the janitor, then create the namespaces, links and addresses, the
   censor's nftables table and tc tree, the internet's table, netem where the
   kernel has it, and the ``/etc/netns`` files (the probe's resolv.conf names the
   ISP resolver);
3. create the lab PKI and start the world and the censor servers
   (``python -m blockproof.lab.kernel``) with ``ip netns exec``, waiting for
   their ``ready``;
4. run ``blockproof run --json`` inside the probe namespace, exactly as a user
   runs it (real sockets, the system resolver, the lab CA as ``--ca-file``,
   our control server as ``--control``), reading its measurements as it prints them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import orjson

from blockproof.codec.ooni import measurement_from_json
from blockproof.lab.internet import ROLE_CONTROL, ROLE_RESOLVER
from blockproof.lab.kernel import plan, shell
from blockproof.lab.kernel.shell import KernelLabError, KernelLabFailed
from blockproof.lab.pki import LabPKI
from blockproof.lab.scenario import Scenario
from blockproof.model.measurement import Measurement

READY_TIMEOUT = 60.0
PROBE_TIMEOUT = 600.0  # the whole probe run, however many URLs


def run_kernel_scenario(
    path: Path,
    scenario: Scenario,
    urls: list[str],
    *,
    concurrency: int = 8,
    bypass: bool = False,
    vias: tuple[str, ...] = (),
    hide_asn: bool = False,
    on_result: Callable[[Measurement], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Measure ``urls`` with ``blockproof run`` inside the scenario's namespaces.

    ``path`` is the scenario's file (the server processes read it), ``scenario`` its
    contents. Raises ``KernelLabError`` when the machine or the scenario does not allow
    it; leaves nothing behind.
    """
    problems = plan.unsupported(scenario)
    if problems:
        raise KernelLabError(
            f"{scenario.name}: the kernel backend cannot express this scenario: "
            + "; ".join(problems)
        )
    shell.preflight()
    path = path.resolve()
    names = plan.Names(secrets.token_hex(3))
    run_dir = Path(tempfile.mkdtemp(prefix=f"{shell.RUN_DIR_PREFIX}{names.run_id}-"))
    janitor = shell.start_janitor(names, run_dir)
    servers: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        with _signals_end_the_run():
            netem = _build(scenario, names)
            notes = [f"run {names.run_id}: namespaces {', '.join(names.namespaces)}"]
            for note in notes + plan.notes(scenario, netem=netem):
                if on_note is not None:
                    on_note(note)
            (run_dir / "pki").mkdir()
            pki = LabPKI(run_dir / "pki")
            pki.save(run_dir / "pki")
            for role, ns in (("world", names.internet), ("censor", names.censor)):
                servers.append((role, _start_server(role, ns, path, run_dir)))
            for role, server in servers:
                _wait_ready(role, server, run_dir)
            options = ProbeOptions(concurrency, bypass, vias, hide_asn)
            return _probe(scenario, names, run_dir, pki.ca_file, urls, options, on_result)
    finally:
        for _role, server in servers:
            _stop(server)
        shell.teardown(names)
        shell.release_janitor(janitor)
        shutil.rmtree(run_dir, ignore_errors=True)


def _build(scenario: Scenario, names: plan.Names) -> bool:
    """Create the namespaces and their rules; whether netem delays the round trip."""
    shell.write_etc(names, plan.etc_files(scenario))
    for cmd in plan.link_commands(scenario, names):
        shell.run(cmd)
    shell.run(["ip", "netns", "exec", names.censor, "nft", "-f", "-"],
              stdin=plan.censor_ruleset(scenario, names))  # fmt: skip
    shell.run(["ip", "netns", "exec", names.internet, "nft", "-f", "-"],
              stdin=plan.internet_ruleset(scenario, names))  # fmt: skip
    for cmd in plan.tc_commands(scenario, names):
        shell.run(cmd)
    netem = plan.netem_commands(scenario, names)
    return bool(netem) and all(shell.works(cmd) for cmd in netem)


def _start_server(role: str, ns: str, path: Path, run_dir: Path) -> subprocess.Popen[bytes]:
    log = (run_dir / f"{role}.log").open("ab")
    try:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "blockproof.lab.kernel", role,
             "--scenario", str(path), "--run-dir", str(run_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip
    finally:
        log.close()


def _wait_ready(role: str, server: subprocess.Popen[bytes], run_dir: Path) -> None:
    assert server.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        readable, _, _ = select.select([server.stdout], [], [], 0.2)
        if readable:
            line = server.stdout.readline()
            if line.strip() == b"ready":
                return
            if not line:
                break
        if server.poll() is not None:
            break
    log = run_dir / f"{role}.log"
    tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
    raise KernelLabFailed(
        f"the lab's {role} did not start" + (":\n  " + "\n  ".join(tail) if tail else "")
    )


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.stdin is not None:
        with contextlib.suppress(OSError):
            server.stdin.close()  # a server ends when its stdin closes
    try:
        server.wait(5)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)
    if server.stdout is not None:
        server.stdout.close()


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """What ``blockproof run`` is asked besides the URLs."""

    concurrency: int = 8
    bypass: bool = False
    vias: tuple[str, ...] = ()
    hide_asn: bool = False


def probe_command(
    scenario: Scenario, ca_file: str, urls: list[str], options: ProbeOptions, spool: Path
) -> list[str]:
    """``blockproof run`` as a user in the scenario's country would type it."""
    resolver = plan.role_address(scenario, ROLE_RESOLVER)
    control = plan.role_address(scenario, ROLE_CONTROL)
    cmd = [sys.executable, "-m", "blockproof", "run", "--json", "--no-upload",
           "--spool", str(spool), "--ca-file", ca_file,
           "--cc", scenario.probe.cc, "--asn", scenario.probe.asn_string,
           "--concurrency", str(options.concurrency),
           "--resolver", f"{resolver}:53" if resolver else ""]  # fmt: skip
    if control:
        cmd += ["--control", f"http://{control}/"]
    if options.hide_asn:
        cmd.append("--hide-asn")
    if not options.bypass:
        cmd.append("--no-bypass")
    for via in options.vias:
        cmd += ["--via", via]
    return [*cmd, *urls]


def _probe(
    scenario: Scenario,
    names: plan.Names,
    run_dir: Path,
    ca_file: str,
    urls: list[str],
    options: ProbeOptions,
    on_result: Callable[[Measurement], None] | None,
) -> list[Measurement]:
    cmd = probe_command(scenario, ca_file, urls, options, run_dir / "spool")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPROOF_")}
    env["BLOCKPROOF_HOME"] = str(run_dir / "probe-home")
    log = (run_dir / "probe.log").open("ab")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", names.probe, *cmd],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
    )  # fmt: skip
    log.close()
    measurements: list[Measurement] = []
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + PROBE_TIMEOUT
        for line in proc.stdout:
            if not line.strip():
                continue
            m = measurement_from_json(orjson.loads(line))
            measurements.append(m)
            if on_result is not None:
                on_result(m)
            if time.monotonic() > deadline:
                break
        proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if proc.returncode not in (0,) or len(measurements) != len(urls):
        tail = (run_dir / "probe.log").read_text(errors="replace").strip().splitlines()[-8:]
        raise KernelLabFailed(
            f"blockproof run exited {proc.returncode} after {len(measurements)} of "
            f"{len(urls)} measurements:\n  " + "\n  ".join(tail)
        )
    return measurements


@contextlib.contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run as Ctrl-C does: through the ``finally`` that cleans
    (in the main thread; a run in another thread leaves signals to its program)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
