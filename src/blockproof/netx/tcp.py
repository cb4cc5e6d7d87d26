"""TCP connect shell: returns a TCPConnect record and, on success, a TCPStream."""

from __future__ import annotations

import asyncio

from blockproof.model.observations import TCPConnect, join_endpoint
from blockproof.netx.failures import classify, unexpected_failure
from blockproof.netx.network import Network
from blockproof.netx.stream import TCPStream
from blockproof.netx.trace import Recorder


async def tcp_connect(
    network: Network,
    recorder: Recorder,
    ip: str,
    port: int,
    *,
    timeout: float,
    tags: tuple[str, ...] = (),
    transaction_id: int = 0,
    record: bool = True,
) -> tuple[TCPConnect, TCPStream | None]:
    address = join_endpoint(ip, port)
    t0 = recorder.now()
    failure: str | None = None
    stream: TCPStream | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await network.open_stream(ip, port)
        stream = TCPStream(
            reader,
            writer,
            address=address,
            recorder=recorder,
            tags=tags,
            transaction_id=transaction_id,
        )
    except (OSError, TimeoutError) as exc:
        failure = classify(exc)
    except Exception as exc:  # a bug or an error nobody expected: this step's failure
        failure = unexpected_failure(exc)
    result = TCPConnect(
        ip=ip,
        port=port,
        failure=failure,
        t0=t0,
        t=recorder.now(),
        tags=tags,
        transaction_id=transaction_id,
    )
    if record:
        recorder.event(
            "connect",
            t0=t0,
            address=address,
            failure=failure,
            tags=tags,
            transaction_id=transaction_id,
        )
        recorder.trace.tcp_connect.append(result)
    return result, stream
