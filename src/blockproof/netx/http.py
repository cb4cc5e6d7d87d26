"""HTTP shell: pumps bytes between a stream and the sans-IO ``HTTPExchange``."""

from __future__ import annotations

import asyncio
import ssl

from blockproof.core.http import MAX_BODY, HTTPExchange, HTTPProtocolError
from blockproof.model.observations import HTTPRequest, HTTPTransaction
from blockproof.netx.failures import classify, unexpected_failure
from blockproof.netx.stream import ByteStream
from blockproof.netx.trace import Recorder


async def http_round_trip(
    recorder: Recorder,
    stream: ByteStream,
    request: HTTPRequest,
    *,
    timeout: float,
    address: str,
    alpn: str = "",
    max_body: int = MAX_BODY,
    tags: tuple[str, ...] = (),
    transaction_id: int = 0,
    record: bool = True,
) -> HTTPTransaction:
    """One GET over an established stream; never raises for network failures."""
    exchange = HTTPExchange(request, max_body=max_body)
    t0 = recorder.now()
    failure: str | None = None
    try:
        async with asyncio.timeout(timeout):
            await stream.write(exchange.bytes_to_send())
            while not exchange.done:
                exchange.receive_data(await stream.read())
    except (OSError, TimeoutError, ssl.SSLError, EOFError, HTTPProtocolError) as exc:
        failure = classify(exc)
    except Exception as exc:  # a bug or an error nobody expected: this step's failure
        failure = unexpected_failure(exc)
    finally:
        stream.close()
    result = HTTPTransaction(
        request=request,
        response=exchange.response(),
        failure=failure,
        address=address,
        alpn=alpn,
        t0=t0,
        t=recorder.now(),
        tags=tags,
        transaction_id=transaction_id,
    )
    if record:
        recorder.trace.requests.append(result)
    return result
