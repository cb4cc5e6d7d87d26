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


NO_RATE_LIMIT = ("--rate-limit", "0")


class CollectorProcess:
    """``blockproof serve collector`` as a real process on loopback.

    ``extra_args`` go to the command; by default the per-client rate limit is off,
    since every request of a test or benchmark comes from the one loopback address.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = NO_RATE_LIMIT,
    ) -> None:
        self.extra_args = extra_args
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
                 "--data", str(self.data_dir), "--port", str(self.port), *self.extra_args],
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


class ServerThread:
    """An ASGI app served by uvicorn on a loopback port, in a thread of this process.

    Used where a test needs a real socket (head limits, schemathesis over HTTP) and
    also needs to hand the app Python objects (a network that records dials).
    ``options`` go to ``uvicorn.Config``.
    """

    def __init__(self, app: Any, **options: Any) -> None:
        import threading

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server thread did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


class RecordingNetwork:
    """The control server's network seam for tests: records every lookup and dial.

    ``hosts`` maps host names to the addresses the "resolver" answers (others get
    ``default``, or a resolver failure when it is empty). ``routes`` maps a dialed
    ``(ip, port)`` to a loopback ``(host, port)`` really connected to (a local
    origin standing in for a public site); every other dial is refused. Nothing
    here ever reaches beyond loopback.
    """

    def __init__(
        self,
        hosts: dict[str, list[str]] | None = None,
        default: tuple[str, ...] = ("93.184.215.14",),
        routes: dict[tuple[str, int], tuple[str, int]] | None = None,
    ) -> None:
        self.hosts = hosts or {}
        self.default = list(default)
        self.routes = routes or {}
        self.dialed: list[tuple[str, int]] = []
        self.looked_up: list[str] = []

    async def open_stream(self, ip: str, port: int) -> tuple[Any, Any]:
        import asyncio

        self.dialed.append((ip, port))
        target = self.routes.get((ip, port))
        if target is None:
            raise ConnectionRefusedError(f"refused by the test network: {ip}:{port}")
        return await asyncio.open_connection(*target)

    def udp_address(self, ip: str, port: int) -> tuple[str, int]:
        self.dialed.append((ip, port))
        raise ConnectionRefusedError("no UDP in the test network")

    async def getaddrinfo(self, host: str) -> list[str]:
        self.looked_up.append(host)
        addresses = self.hosts.get(host.rstrip(".").lower(), self.default)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(addresses)
