"""Shared by the collector tests and benchmark: measurements to submit, a collector process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPORT_ID = "20240217T160500Z_webconnectivity_PK_17557_n1_abcdefghijklmnop"


def measurement(i: int = 0, *, pad: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid web_connectivity measurement, distinct per ``i``; ``pad`` bytes of body text."""
    obj: dict[str, Any] = {
        "annotations": {"engine_name": "blockproof"},
        "data_format_version": "0.2.0",
        "input": f"https://x.com/{i}",
        "measurement_start_time": "2024-02-17 16:05:02",
        "probe_asn": "AS17557",
        "probe_cc": "PK",
        "probe_ip": "127.0.0.1",
        "probe_network_name": "Pakistan Telecommunication Company Limited",
        "report_id": REPORT_ID,
        "resolver_asn": "AS17557",
        "resolver_ip": "127.0.0.1",
        "software_name": "blockproof",
        "software_version": "0.1.0",
        "test_keys": {
            "accessible": False,
            "blocking": "http-failure",
            "http_experiment_failure": "connection_reset",
            "requests": [{"failure": "connection_reset", "t": 0.25, "t0": 0.125}],
            "x_body": "x" * pad,
        },
        "test_name": "web_connectivity",
        "test_runtime": 1.5,
        "test_start_time": "2024-02-17 16:05:00",
        "test_version": "0.5.28",
    }
    obj.update(changes)
    return obj


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CollectorProcess:
    """``blockproof serve collector`` as a real process on loopback."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.with_name(data_dir.name + ".stderr.log")

    def start(self, timeout: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # a file, not a pipe: it never fills up
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blockproof", "serve", "collector",
                 "--data", str(self.data_dir), "--port", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the collector exited ({self.proc.returncode}): {err}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("the collector did not come up")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def running_collector(data_dir: Path) -> Iterator[CollectorProcess]:
    collector = CollectorProcess(data_dir)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()
