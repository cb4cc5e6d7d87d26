"""The kernel lab's I/O shell: check the machine, apply a plan, and always clean up.

Safe by construction:

* every namespace of a run is named ``blockproof-<id>-...`` and its veths and
  nftables tables live inside those namespaces (``plan.link_commands``), so deleting
  the three namespaces removes everything the run made in the kernel;
* ``teardown`` kills whatever still runs in them, deletes them and their
  ``/etc/netns/<name>`` files; it is idempotent;
* a **janitor** process, started before anything is created and in its own session
  (a Ctrl-C to the terminal does not reach it), waits for the run to close a pipe
  and then tears down: on a clean exit there is nothing left for it to do; when
  the run dies, even by SIGKILL, the pipe closes and the janitor cleans up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blockproof.errors import EXIT_FAILED, BlockproofError
from blockproof.lab.kernel.plan import PREFIX, Names

ETC_NETNS = Path("/etc/netns")
NETNS_DIR = Path("/run/netns")
RUN_DIR_PREFIX = "blockproof-kernel-"  # a run's temporary folder: <prefix><id>-<random>
JANITOR_MODULE = "blockproof.lab.kernel.shell"
TOOLS = {"ip": "iproute2", "nft": "nftables", "tc": "iproute2", "sysctl": "procps"}


class KernelLabError(BlockproofError):
    """The kernel lab cannot run here (not root, no namespaces, a tool missing) or cannot
    express the scenario: exit 2."""


class KernelLabFailed(KernelLabError):
    """A kernel lab run started and failed (a server or the probe): exit 1."""

    exit_code = EXIT_FAILED


def preflight() -> None:
    """Refuse, with what to do, when this machine cannot run the kernel lab."""
    if os.geteuid() != 0:
        raise KernelLabError(
            "the kernel lab needs root (it creates network namespaces and nftables "
            "tables): run it as root, or use --backend inproc"
        )
    missing = [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise KernelLabError(
            f"the kernel lab needs {', '.join(missing)}; on Debian: "
            f"apt-get install {' '.join(sorted({TOOLS[m.split()[0]] for m in missing}))}"
        )


def run(cmd: list[str], *, stdin: str | None = None) -> None:
    """Run one command; a failure raises ``KernelLabError`` with its message."""
    result = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, check=False, timeout=30
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise KernelLabError(f"{' '.join(cmd)}: {detail[-1] if detail else 'failed'}")


def works(cmd: list[str]) -> bool:
    """Whether a command succeeds (a feature probe: netem, say)."""
    result = subprocess.run(cmd, capture_output=True, check=False, timeout=30)
    return result.returncode == 0


def namespaces() -> list[str]:
    """The network namespaces ``ip netns`` knows, by name."""
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def write_etc(names: Names, files: dict[str, dict[str, str]]) -> None:
    """``/etc/netns/<ns>/...``: what ``ip netns exec`` mounts over /etc for each namespace."""
    by_role = {"probe": names.probe, "censor": names.censor, "internet": names.internet}
    for role, content in files.items():
        folder = ETC_NETNS / by_role[role]
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in content.items():
            (folder / name).write_text(text)


def teardown(names: Names) -> list[str]:
    """Remove everything of the run ``names``; returns what was removed (idempotent)."""
    removed: list[str] = []
    existing = set(namespaces())
    for ns in names.namespaces:
        if ns in existing:
            _kill_inside(ns)
            with contextlib.suppress(KernelLabError, subprocess.TimeoutExpired):
                run(["ip", "netns", "del", ns])
                removed.append(ns)
        folder = ETC_NETNS / ns
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        ETC_NETNS.rmdir()  # only when empty
    return removed


def _kill_inside(ns: str) -> None:
    for _ in range(3):
        out = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False, timeout=30
        ).stdout
        pids = [int(p) for p in out.split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def leftovers() -> list[str]:
    """Run ids of kernel lab namespaces that no live run owns (their run and its janitor
    were both killed): ``blockproof lab clean`` removes them."""
    ids = {ns[len(PREFIX) :].rsplit("-", 1)[0] for ns in namespaces() if ns.startswith(PREFIX)}
    return sorted(ids - _live_janitors())


def run_dirs(run_id: str) -> list[Path]:
    """The temporary folders of run ``run_id`` (``run.RUN_DIR_PREFIX``)."""
    return sorted(Path(tempfile.gettempdir()).glob(f"{RUN_DIR_PREFIX}{run_id}-*"))


def _live_janitors() -> set[str]:
    live: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if JANITOR_MODULE.encode() in args:
                at = args.index(JANITOR_MODULE.encode())
                if at + 1 < len(args):
                    live.add(args[at + 1].decode(errors="replace"))
    return live


def start_janitor(names: Names, run_dir: Path) -> subprocess.Popen[bytes]:
    """The process that cleans up when this one ends, however it ends."""
    return subprocess.Popen(
        [sys.executable, "-m", JANITOR_MODULE, names.run_id, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def release_janitor(janitor: subprocess.Popen[bytes]) -> None:
    """Tell the janitor the run ended (it checks, finds nothing, and exits)."""
    if janitor.stdin is not None:
        with contextlib.suppress(OSError):
            janitor.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        janitor.wait(30)


def _janitor(run_id: str, run_dir: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass  # the run holds the other end; EOF means it ended
    teardown(Names(run_id))
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    _janitor(sys.argv[1], sys.argv[2])
