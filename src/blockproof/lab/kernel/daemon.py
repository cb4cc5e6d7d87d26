"""The kernel lab's server processes: how they start, report ready, and end.

``python -m blockproof.lab.kernel ROLE --scenario FILE --run-dir DIR`` runs the
``world`` (internet namespace) or the ``censor`` (router namespace) of a run; the
run starts each with ``ip netns exec``. A server prints ``ready`` once it listens,
and ends when its stdin closes: the run that started it finished or died, so a
killed run never leaves a server behind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


class Servers(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class UDPServer(asyncio.DatagramProtocol):
    """A UDP server that answers each datagram with ``answer(data, peer address)``'s
    replies, in order (a DNS injector's forgery first)."""

    def __init__(self, answer: Callable[[bytes, str], list[bytes]]) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self.transport is not None
        for wire in self.answer(data, str(addr[0])):
            self.transport.sendto(wire, addr)


def guarded(handler: Handler) -> Handler:
    """A connection handler whose network errors end the connection, not the server."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            writer.close()

    return run


async def serve_until_released(servers: Servers) -> None:
    """Start, say ``ready`` on stdout, serve until stdin closes or SIGTERM, stop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def release(*_: object) -> None:
        if not done.done():
            done.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, release)
    await servers.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            release()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    try:
        await done
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await servers.stop()


def main(argv: list[str] | None = None) -> int:
    from blockproof.lab import load_scenario
    from blockproof.lab.pki import LabPKI

    parser = argparse.ArgumentParser(prog="python -m blockproof.lab.kernel")
    parser.add_argument("role", choices=["world", "censor"])
    parser.add_argument("--scenario", required=True, type=Path)
    parser.add_argument("--run-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    folder = args.run_dir / args.role
    folder.mkdir(exist_ok=True)
    pki = LabPKI(folder, shared=args.run_dir / "pki")
    servers: Servers
    if args.role == "world":
        from blockproof.lab.kernel.world import World

        servers = World(scenario, pki, args.run_dir)
    else:
        from blockproof.lab.kernel.censorbox import CensorBox

        servers = CensorBox(scenario, pki)
    asyncio.run(serve_until_released(servers))
    return 0
