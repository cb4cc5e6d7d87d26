"""The control server (`blockproof serve control`): OONI's test-helper protocol over HTTP.

``GET /`` is a health check (``{"message": "Hello OONItarian!"}``, as OONI's
helper answers, so OONI probes accept it). ``POST /`` takes a THRequest and
returns a THResponse measured by ``control.measure``. Every request is bounded:
body size (``MAX_BODY``), validated fields (``codec.ooni.control_request_from_json``),
total time (``REQUEST_BUDGET``) and concurrency (``MAX_CONCURRENT``; beyond it a
503). Bad input gets a 4xx JSON ``{"error": "..."}``, never a 500.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from blockproof.codec.ooni import DecodeError, control_request_from_json, control_response_to_json
from blockproof.control.measure import CONTROL_TIMEOUTS, AsnLookup, measure_control
from blockproof.netx.endpoint import Timeouts
from blockproof.netx.network import Network, SystemNetwork

MAX_BODY = 64 * 1024
MAX_CONCURRENT = 64
REQUEST_BUDGET = 45.0


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(
    network: Network | None = None,
    ca_file: str | None = None,
    *,
    asn_of: AsnLookup | None = None,
    timeouts: Timeouts = CONTROL_TIMEOUTS,
    max_concurrent: int = MAX_CONCURRENT,
) -> Starlette:
    """The control server's ASGI app, measuring through ``network``."""
    net: Network = network or SystemNetwork()
    lookup: AsnLookup = asn_of or (lambda _ip: 0)
    slots = asyncio.Semaphore(max_concurrent)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"message": "Hello OONItarian!"})

    async def control(request: Request) -> JSONResponse:
        body = await _read_body(request, MAX_BODY)
        if body is None:
            return _error(413, f"request body larger than {MAX_BODY} bytes")
        try:
            payload: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"malformed JSON: {exc}")
        try:
            th_request = control_request_from_json(payload)
        except DecodeError as exc:
            return _error(400, str(exc))
        if slots.locked():
            return _error(503, "too many concurrent control requests, retry later")
        async with slots:
            try:
                async with asyncio.timeout(REQUEST_BUDGET):
                    response = await measure_control(
                        net, th_request, asn_of=lookup, ca_file=ca_file, timeouts=timeouts
                    )
            except TimeoutError:
                return _error(504, f"control measurement exceeded {REQUEST_BUDGET:.0f} s")
        return JSONResponse(control_response_to_json(response))

    async def not_allowed(_request: Request) -> JSONResponse:
        return _error(405, "use GET for a health check or POST a THRequest")

    return Starlette(
        routes=[
            Route("/", health, methods=["GET"]),
            Route("/", control, methods=["POST"]),
            Route("/", not_allowed, methods=["PUT", "DELETE", "PATCH"]),
        ]
    )
