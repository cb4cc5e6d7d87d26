"""The control server (`blockproof serve control`): OONI's test-helper protocol over HTTP.

``GET /`` is a health check (``{"message": "Hello OONItarian!"}``, as OONI's
helper answers, so OONI probes accept it). ``POST /`` takes a THRequest and
returns a THResponse measured by ``control.measure``. ``GET /openapi.json`` is
this API as an OpenAPI 3.0 document. Every request is bounded: body size
(``MAX_BODY``) and the time it takes to arrive (``BODY_DEADLINE``, 408), validated
fields (``codec.ooni.control_request_from_json``), total time (``REQUEST_BUDGET``,
504), concurrency (``MAX_CONCURRENT``; beyond it a 503) and, when a ``rate_limit``
is given (``blockproof serve control`` gives one), requests per client address
(429 with Retry-After). Bad input gets a 4xx JSON ``{"error": "..."}``, never a
500; so do unknown paths (404) and methods (405).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from blockproof.codec.ooni import DecodeError, control_request_from_json, control_response_to_json
from blockproof.control.measure import CONTROL_TIMEOUTS, AsnLookup, measure_control
from blockproof.netx.endpoint import Timeouts
from blockproof.netx.network import Network, SystemNetwork
from blockproof.ratelimit import RateLimit, RateLimiter, retry_after_header

MAX_BODY = 64 * 1024
MAX_CONCURRENT = 64
REQUEST_BUDGET = 45.0
BODY_DEADLINE = 30.0
# Per client address, for ``blockproof serve control``: a probe asks once per URL it
# measures, a handful at a time; each request makes this server dial up to 32
# endpoints, so the limit is lower than the collector's.
RATE_LIMIT = RateLimit(rate=10.0, burst=100)
_DIGITS = re.compile(r"[0-9]{1,18}")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not _DIGITS.fullmatch(declared) or int(declared) > limit):
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


class RateLimited:
    """ASGI middleware: a token bucket per client address (``blockproof.ratelimit``)."""

    def __init__(
        self, app: ASGIApp, limit: RateLimit, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.limiter = RateLimiter(limit)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            wait = self.limiter.check(str(client[0]) if client else "unknown", self.clock())
            if wait is not None:
                seconds = retry_after_header(wait).decode()
                response = _error(
                    429,
                    f"rate limit exceeded: {self.limiter.limit.describe()}; retry in {seconds} s",
                    {"retry-after": seconds},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    network: Network | None = None,
    ca_file: str | None = None,
    *,
    asn_of: AsnLookup | None = None,
    timeouts: Timeouts = CONTROL_TIMEOUTS,
    max_concurrent: int = MAX_CONCURRENT,
    rate_limit: RateLimit | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ASGIApp:
    """The control server's ASGI app, measuring through ``network``.

    ``rate_limit``: per client address; None (the default, e.g. inside the lab,
    whose probes all come from loopback) means no limit.
    """
    net: Network = network or SystemNetwork()
    lookup: AsnLookup = asn_of or (lambda _ip: 0)
    slots = asyncio.Semaphore(max_concurrent)
    openapi: list[bytes] = []

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"message": "Hello OONItarian!"})

    async def openapi_json(_request: Request) -> Response:
        if not openapi:
            from blockproof.serving import openapi_document

            openapi.append(openapi_document("control"))
        return Response(openapi[0], media_type="application/json")

    async def control(request: Request) -> JSONResponse:
        try:
            async with asyncio.timeout(BODY_DEADLINE):
                body = await _read_body(request, MAX_BODY)
        except _BodyTooLarge:
            return _error(413, f"request body larger than {MAX_BODY} bytes")
        except TimeoutError:
            return _error(408, f"the request body took over {BODY_DEADLINE:.0f} s to arrive")
        try:
            payload: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"malformed JSON: {exc}")
        except RecursionError:
            return _error(400, "malformed JSON: nested too deeply")
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

    async def root(request: Request) -> JSONResponse:
        if request.method == "POST":
            return await control(request)
        return await health(request)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return _error(404, f"no such endpoint: {request.url.path[:100]}")
        if exc.status_code == 405:
            return _error(
                405,
                f"{request.method} is not allowed on {request.url.path[:100]}",
                dict(exc.headers or {}),
            )
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    app = Starlette(
        routes=[
            Route("/", root, methods=["GET", "HEAD", "POST"]),  # else 405 with Allow
            Route("/openapi.json", openapi_json, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    if rate_limit is not None and rate_limit.enabled:
        return RateLimited(app, rate_limit, clock)
    return app
