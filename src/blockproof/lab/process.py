"""A lab in a child process, so that its servers do not share a CPU core with the probe.

``async with LabProcess(scenario) as lab:`` gives the same view as ``Lab`` (its
``probe_network``, ``control_url``, ``ca_file``...). The child is this module
run as ``python -m blockproof.lab.process``: it reads the pickled scenario on
stdin, starts a ``Lab``, writes its ``Ports`` as one JSON line on stdout and
serves until its stdin closes. The probe's side of the network seam needs
nothing else: routing decisions are pure functions of the scenario, taken in the
parent by its own ``Censor``, and every byte crosses the child's wire.

Used by the throughput benchmark; tests and ``blockproof lab run`` use the
simpler in-process ``Lab``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import struct
import sys
import time
from typing import Any

from blockproof.lab.censor import Censor
from blockproof.lab.lab import Lab, LabView, Ports
from blockproof.lab.scenario import Scenario
from blockproof.loop import run_event_loop

START_TIMEOUT = 60.0


class LabProcess(LabView):
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.censor = Censor(scenario)
        self.rtt = scenario.rtt_ms / 1000.0
        self._ports: Ports | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self.startup_cpu_s = 0.0  # CPU the child spent starting (certificates, listeners)

    @property
    def ports(self) -> Ports:
        assert self._ports is not None, "the lab process is not running"
        return self._ports

    async def __aenter__(self) -> LabProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "blockproof.lab.process",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        blob = pickle.dumps(self.scenario)
        self._proc.stdin.write(struct.pack("!I", len(blob)) + blob)
        await self._proc.stdin.drain()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                line = await self._proc.stdout.readline()
            data: dict[str, Any] = json.loads(line)
        except (TimeoutError, ValueError) as exc:
            await self.__aexit__()
            raise RuntimeError(f"the lab process did not start: {exc!r}") from exc
        self.startup_cpu_s = float(data.pop("startup_cpu_s"))
        served = frozenset((name, int(port)) for name, port in data.pop("served"))
        self._ports = Ports(served=served, **data)
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _serve(scenario: Scenario) -> None:
    loop = asyncio.get_running_loop()
    async with Lab(scenario) as lab:
        ports = lab.ports
        line = json.dumps(
            {
                "wire": ports.wire,
                "closed": ports.closed,
                "dns_censored": ports.dns_censored,
                "dns_clean": ports.dns_clean,
                "served": sorted(ports.served),
                "ca_file": ports.ca_file,
                "startup_cpu_s": time.process_time(),
            }
        )
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        # Serve until the parent closes our stdin (or dies).
        await loop.run_in_executor(None, sys.stdin.buffer.read)


def main() -> None:
    (size,) = struct.unpack("!I", sys.stdin.buffer.read(4))
    scenario = pickle.loads(sys.stdin.buffer.read(size))  # our own parent sent it
    with contextlib.suppress(KeyboardInterrupt):
        run_event_loop(_serve(scenario))


if __name__ == "__main__":
    main()
