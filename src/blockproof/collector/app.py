"""The collector's HTTP API, as a small ASGI app (``blockproof serve collector``).

Routes (every answer is JSON; every refusal is ``{"error": code, "detail": sentence}``):

=======  ==============================  ================================================
POST     /report                          OONI bk-003: open a report -> ``report_id``
POST     /report/{report_id}              OONI bk-003: ``{"format": "json", "content": m}``
                                          -> ``measurement_uid`` (+ ``x_receipt``)
POST     /report/{report_id}/close        OONI bk-003: close (a no-op; reports are stateless)
POST     /measurements                    batch: JSON lines, one measurement each ->
                                          ``{"results": [...], "tree_head": ...}``
GET      /measurements/{uid}              the measurement exactly as logged (canonical JSON)
GET      /measurements/{uid}/receipt      inclusion proof against the current tree head
GET      /log/tree-head                   the current signed tree head
GET      /log/consistency?first=N&second=M  consistency proof between two tree sizes
GET      /health                          liveness and log size
GET      /openapi.json                    this API as an OpenAPI 3.0 document
GET      /admin/export?from=N&limit=M     logged measurements as JSON lines, with their
                                          leaf index (needs the admin token)
GET      /admin/stats                     counters (needs the admin token)
=======  ==============================  ================================================

The admin endpoints exist only when an admin token is configured (else 404) and
need ``Authorization: Bearer <token>`` (401 otherwise), compared in constant time.

Why raw ASGI rather than a framework: this is the hot path (thousands of
submissions a second) and the whole surface is the table above; reading the
body with a hard size cap, before anything is parsed, is a few lines here.

Admission (parse, canonical form, field and signature checks) runs in worker
processes when the lifespan started them (``collector.workers``; inline
otherwise, and whenever a worker is lost); this process then only moves bytes,
logs (``service.Collector``) and answers. A batch is submitted to the log with
one ``submit_many``, so its records share one wait for the disk, and its
receipts share the one tree head sent beside them.

Bounds: bodies are capped (``admission.MAX_*``; 413 beyond, checked against
Content-Length first and again while streaming), reading a body has a deadline
(408), and at most ``max_inflight`` submissions wait for the disk at once (503
with Retry-After beyond). Each client address has a token bucket
(``blockproof.ratelimit``; 429 with Retry-After beyond). Request heads are
bounded by the server (``serving``). A failing disk (full, I/O error)
answers 503 and stores nothing; a bug answers 500 but cannot corrupt the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from blockproof import __version__
from blockproof.collector import admission
from blockproof.collector.admission import Rejection
from blockproof.collector.segments import LogClosedError, LogWriteError
from blockproof.collector.service import Collector
from blockproof.collector.workers import (
    AdmissionPool,
    WorkerLost,
    admit_submission,
    default_workers,
)
from blockproof.ratelimit import RateLimit, RateLimiter, retry_after_header
from blockproof.serving import openapi_document

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY_DEADLINE = 30.0
MAX_INFLIGHT = 4096
# Per client address: far above what probes send (an upload is one request per 50
# measurements), with room for many probes behind one carrier-grade NAT address.
RATE_LIMIT = RateLimit(rate=50.0, burst=500)
EXPORT_LIMIT = 1000  # measurements per export page, at most
EXPORT_DEFAULT = 100
EXPORT_MAX_BYTES = 16 * 1024 * 1024  # a page stops early past this many bytes
log = logging.getLogger("blockproof.collector")

_JSON = b"application/json"
_NDJSON = b"application/x-ndjson"
_INTEGER = re.compile(r"[0-9]{1,18}")
ADMIN_REALM = b'Bearer realm="blockproof-admin"'


def token_digest(token: str | bytes) -> bytes:
    """What an admin token is compared as (a hash: equal-length, constant-time compare)."""
    raw = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(raw).digest()


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class CollectorApp:
    """ASGI callable. ``collector`` is opened at lifespan start-up unless given."""

    def __init__(
        self,
        data_dir: Any = None,
        *,
        collector: Collector | None = None,
        max_inflight: int = MAX_INFLIGHT,
        rate_limit: RateLimit = RATE_LIMIT,
        admin_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        workers: int | None = None,
    ) -> None:
        self._data_dir = data_dir
        # Admission worker processes, started with the lifespan (none without it).
        self._workers = default_workers() if workers is None else workers
        self._pool: AdmissionPool | None = None
        self.collector = collector
        self._inflight = 0
        self._max_inflight = max_inflight
        self.limiter = RateLimiter(rate_limit)
        self._clock = clock
        self._admin = token_digest(admin_token) if admin_token else None
        self._started = clock()
        self.answers: Counter[int] = Counter()  # answers given, by status
        self._openapi: bytes | None = None

    # ------------------------------------------------------------ plumbing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            self._rate_limit(scope)
            status, body, extra = await self._route(scope, receive)
        except Rejection as rej:
            status, body, extra = rej.status, _dumps(rej.to_json()), []
        except (LogWriteError, LogClosedError) as exc:
            log.error("log write failed: %s", exc)
            status, body = (
                503,
                _dumps(
                    {
                        "error": "storage_unavailable",
                        "detail": "the collector cannot write to disk "
                        "right now; nothing was stored, try again later",
                    }
                ),
            )
            extra = [(b"retry-after", b"30")]
        if status == 429:
            extra = [(b"retry-after", retry_after_header(self._wait))]
        elif status == 401:
            extra = [(b"www-authenticate", ADMIN_REALM)]
        elif status == 405:
            parts = [p for p in scope["path"].split("/") if p]
            extra = [(b"allow", self._allowed(parts) or b"GET")]
        elif status == 503 and not extra:
            extra = [(b"retry-after", b"1")]
        self.answers[status] += 1
        if not any(name == b"content-type" for name, _ in extra):
            extra = [(b"content-type", _JSON), *extra]
        headers = [(b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _rate_limit(self, scope: Scope) -> None:
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        wait = self.limiter.check(address, self._clock())
        if wait is not None:
            self._wait = wait
            raise Rejection(
                429,
                "rate_limited",
                f"too many requests from this address ({self.limiter.limit.describe()}); "
                f"retry in {retry_after_header(wait).decode()} s",
            )

    _wait = 1.0

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.collector is None:
                        from pathlib import Path

                        self.collector = await Collector.open(Path(self._data_dir))
                        _report_recovery(self.collector)
                except Exception as exc:  # reported to the server, which exits
                    log.error(
                        "the log in %s cannot be opened, so the collector will not start; "
                        "nothing was changed on disk (see 'Durability' in docs/collector.md)",
                        self._data_dir,
                    )
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await self._start_workers()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    await self._pool.aclose()
                    self._pool = None
                if self.collector is not None:
                    await self.collector.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_workers(self) -> None:
        """Start the admission worker processes; without them, admission runs inline."""
        if self._workers <= 0 or self._pool is not None:
            return
        pool = AdmissionPool(self._workers)
        try:
            await pool.start()
        except OSError as exc:
            log.warning("admission workers could not start (%s); admitting inline", exc)
            await pool.aclose()
            return
        self._pool = pool

    async def _body(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit():
                    raise Rejection(400, "bad_request", "Content-Length is not a number")
                if int(value) > limit:
                    raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0

        async def read_all() -> None:
            nonlocal size
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Rejection(400, "bad_request", "the client went away mid-body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                more = message.get("more_body", False)

        try:
            async with asyncio.timeout(BODY_DEADLINE):
                await read_all()
        except TimeoutError:
            raise Rejection(
                408, "body_timeout", f"the body took over {BODY_DEADLINE:.0f} s"
            ) from None
        return b"".join(chunks)

    # -------------------------------------------------------------- routes

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list[Any]]:
        method: str = scope["method"]
        parts = [p for p in scope["path"].split("/") if p]
        if (method, parts) == ("GET", ["openapi.json"]):
            if self._openapi is None:
                self._openapi = openapi_document("collector")
            return 200, self._openapi, []
        collector = self.collector
        if collector is None:
            raise Rejection(503, "starting", "the collector is starting")
        route = (method, len(parts), parts[0] if parts else "")
        if route == ("POST", 1, "measurements"):
            return await self._batch(scope, receive, collector)
        if route == ("POST", 2, "report"):
            return await self._submit(scope, receive, collector, parts[1])
        if route == ("POST", 1, "report"):
            return await self._open_report(scope, receive)
        if route == ("POST", 3, "report") and parts[2] == "close":
            admission.check_report_id(parts[1])
            await self._body(scope, receive, admission.MAX_SMALL_BODY)
            return 200, b"{}", []
        if route == ("GET", 2, "measurements"):
            return self._measurement(collector, parts[1])
        if route == ("GET", 3, "measurements") and parts[2] == "receipt":
            return self._receipt(collector, parts[1], scope)
        if route == ("GET", 2, "log") and parts[1] == "tree-head":
            return 200, _dumps(collector.tree_head.to_json()), []
        if route == ("GET", 2, "log") and parts[1] == "consistency":
            return self._consistency(collector, scope)
        if route == ("GET", 1, "health"):
            return 200, _dumps({"status": "ok", "tree_size": len(collector)}), []
        if (
            route == ("GET", 2, "admin")
            and parts[1] in ("export", "stats")
            and self._admin is not None
        ):
            self._authorize(scope)
            if parts[1] == "export":
                return self._export(collector, scope)
            return self._stats(collector)
        if self._allowed(parts) is not None:
            raise Rejection(
                405, "method_not_allowed", f"{method} is not allowed on {scope['path'][:100]}"
            )
        raise Rejection(404, "not_found", f"no such endpoint: {scope['path'][:100]}")

    def _allowed(self, parts: list[str]) -> bytes | None:
        """The methods a known path allows (for 405 and its Allow header), else None."""
        shape = (len(parts), parts[0] if parts else "")
        if shape[1] == "report" and (shape[0] in (1, 2) or (shape[0] == 3 and parts[2] == "close")):
            return b"POST"
        if shape == (1, "measurements"):
            return b"POST"
        if shape == (2, "measurements") or (shape == (3, "measurements") and parts[2] == "receipt"):
            return b"GET"
        if shape == (2, "log") and parts[1] in ("tree-head", "consistency"):
            return b"GET"
        if shape in ((1, "health"), (1, "openapi.json")):
            return b"GET"
        if shape == (2, "admin") and parts[1] in ("export", "stats") and self._admin is not None:
            return b"GET"
        return None

    # --------------------------------------------------------------- admin

    def _authorize(self, scope: Scope) -> None:
        expected = self._admin
        assert expected is not None
        given: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = bytes(value).strip().partition(b" ")
                if scheme.lower() == b"bearer" and token.strip():
                    given = token.strip()
                break
        if given is None:
            raise Rejection(
                401,
                "unauthorized",
                "this endpoint needs the admin token: send 'Authorization: Bearer <token>'",
            )
        if not hmac.compare_digest(token_digest(given), expected):
            raise Rejection(401, "unauthorized", "the admin token is not the right one")

    def _export(self, collector: Collector, scope: Scope) -> tuple[int, bytes, list[Any]]:
        query = _query(scope, ("from", "limit"))
        size = collector.tree_head.tree_size
        start = _query_int(query, "from", 0)
        limit = _query_int(query, "limit", EXPORT_DEFAULT)
        if start > size:
            raise Rejection(
                400, "invalid_value", f"'from' is past the end of the log ({size} measurements)"
            )
        if not 1 <= limit <= EXPORT_LIMIT:
            raise Rejection(400, "invalid_value", f"'limit' must be from 1 to {EXPORT_LIMIT}")
        lines: list[bytes] = []
        total = 0
        ordinal = start
        while ordinal < min(size, start + limit) and total < EXPORT_MAX_BYTES:
            stored = collector.read(ordinal)
            line = b"".join(
                (
                    b'{"leaf_index":',
                    str(ordinal).encode(),
                    b',"measurement_uid":',
                    _dumps(stored.uid),
                    b',"received":',
                    _dumps(stored.received),
                    b',"measurement":',
                    stored.canonical,
                    b"}\n",
                )
            )
            lines.append(line)
            total += len(line)
            ordinal += 1
        extra = [
            (b"content-type", _NDJSON),
            (b"x-next-from", str(ordinal).encode()),
            (b"x-tree-size", str(size).encode()),
        ]
        return 200, b"".join(lines), extra

    def _stats(self, collector: Collector) -> tuple[int, bytes, list[Any]]:
        head = collector.tree_head
        answer = {
            "tree_size": head.tree_size,
            "log_id": collector.log_id,
            "tree_head_timestamp_ms": head.timestamp_ms,
            "inflight": self._inflight,
            "max_inflight": self._max_inflight,
            "uptime_s": round(self._clock() - self._started, 3),
            "answers": {str(status): n for status, n in sorted(self.answers.items())},
            "rate_limit": {
                "rate": self.limiter.limit.rate,
                "burst": self.limiter.limit.burst,
                "enabled": self.limiter.limit.enabled,
                "clients_tracked": len(self.limiter),
                "max_clients": self.limiter.max_clients,
                "limited": self.limiter.limited,
            },
        }
        return 200, _dumps(answer), []

    async def _open_report(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list[Any]]:
        body = admission.parse_json_body(await self._body(scope, receive, admission.MAX_SMALL_BODY))
        fields = admission.parse_open_report(body)
        report_id = admission.new_report_id(
            fields["test_name"], fields["probe_cc"], fields["probe_asn"], datetime.now(UTC)
        )
        answer = {
            "backend_version": f"blockproof {__version__}",
            "report_id": report_id,
            "supported_formats": list(admission.SUPPORTED_FORMATS),
        }
        return 200, _dumps(answer), []

    def _admission_slot(self) -> None:
        if self._inflight >= self._max_inflight:
            raise Rejection(503, "busy", "too many submissions in flight; retry shortly")

    async def _submit(
        self, scope: Scope, receive: Receive, collector: Collector, report_id: str
    ) -> tuple[int, bytes, list[Any]]:
        admission.check_report_id(report_id)
        data = await self._body(scope, receive, admission.MAX_MEASUREMENT_BYTES + 4096)
        admitted = await self._admit_submission(report_id, data)
        self._admission_slot()
        self._inflight += 1
        try:
            ordinal, duplicate = await collector.submit(admitted)
        finally:
            self._inflight -= 1
        receipt = collector.receipt_json(ordinal)
        answer = {
            "measurement_uid": receipt["measurement_uid"],
            "x_duplicate": duplicate,
            "x_receipt": receipt,
        }
        return 200, _dumps(answer), []

    async def _admit_submission(self, report_id: str, data: bytes) -> admission.Admitted:
        """Parse, canonicalise and check one bk-003 body: in a worker process if any."""
        pool = self._pool
        if pool is not None and pool.available:
            with contextlib.suppress(WorkerLost):
                return await pool.admit_submission(report_id, data)
        return admit_submission(report_id, data)

    async def _admit_lines(self, lines: list[bytes]) -> list[admission.Admitted | Rejection]:
        """Each batch line admitted or refused: in a worker process if any."""
        pool = self._pool
        if pool is not None and pool.available:
            with contextlib.suppress(WorkerLost):
                return await pool.admit_lines(lines)
        admitted: list[admission.Admitted | Rejection] = []
        for line in lines:
            try:
                admitted.append(admission.admit_bytes(line))
            except Rejection as rej:
                admitted.append(rej)
        return admitted

    async def _batch(
        self, scope: Scope, receive: Receive, collector: Collector
    ) -> tuple[int, bytes, list[Any]]:
        lines = admission.split_batch(await self._body(scope, receive, admission.MAX_BATCH_BYTES))
        admitted = await self._admit_lines(lines)
        self._admission_slot()
        self._inflight += len(lines)
        try:
            outcomes = await collector.submit_many(
                [a for a in admitted if not isinstance(a, Rejection)]
            )
        finally:
            self._inflight -= len(lines)
        head = collector.tree_head  # every receipt below is proved against this one head
        results: list[dict[str, Any]] = []
        stored = iter(outcomes)
        for item in admitted:
            if isinstance(item, Rejection):
                results.append({"status": "rejected", **item.to_json()})
                continue
            ordinal, duplicate = next(stored)
            results.append(
                {
                    "status": "duplicate" if duplicate else "accepted",
                    "receipt": collector.receipt_json(ordinal, head, with_head=False),
                }
            )
        answer = {"results": results, "tree_head": collector.tree_head_json(head)}
        return 200, _dumps(answer), []

    def _lookup(self, collector: Collector, uid: str) -> int:
        ordinal = collector.ordinal_of(uid)
        if ordinal is None:
            raise Rejection(404, "not_found", f"no measurement with uid {uid[:100]!r}")
        return ordinal

    def _measurement(self, collector: Collector, uid: str) -> tuple[int, bytes, list[Any]]:
        stored = collector.read(self._lookup(collector, uid))
        return 200, stored.canonical, [(b"x-measurement-uid", stored.uid.encode())]

    def _receipt(
        self, collector: Collector, uid: str, scope: Scope
    ) -> tuple[int, bytes, list[Any]]:
        ordinal = self._lookup(collector, uid)
        return 200, _dumps(collector.receipt(ordinal).to_json()), []

    def _consistency(self, collector: Collector, scope: Scope) -> tuple[int, bytes, list[Any]]:
        query = _query(scope, ("first", "second"))
        size = len(collector)
        values: dict[str, int] = {}
        for name in ("first", "second"):
            raw = query.get(name, [str(size)] if name == "second" else [])
            # ASCII digits only: str.isdigit() also accepts '²', which int() refuses
            if len(raw) != 1 or not _INTEGER.fullmatch(raw[0]):
                raise Rejection(400, "invalid_value", f"'{name}' must be a tree size (an integer)")
            values[name] = int(raw[0])
        first, second = values["first"], values["second"]
        if not 0 < first <= second <= collector.tree_head.tree_size:
            raise Rejection(
                400,
                "invalid_value",
                f"need 0 < first <= second <= {collector.tree_head.tree_size} (the current size)",
            )
        proof = collector.consistency_proof(first, second)
        answer = {"first": first, "second": second, "proof": [h.hex() for h in proof]}
        return 200, _dumps(answer), []


def _query(scope: Scope, known: tuple[str, ...]) -> dict[str, list[str]]:
    """The query string's parameters; a parameter this endpoint does not take is a 400."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    for name in query:
        if name not in known:
            raise Rejection(
                400,
                "invalid_value",
                f"unknown query parameter {name[:40]!r} (this endpoint takes {', '.join(known)})",
            )
    return query


def _query_int(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if len(raw) != 1 or not _INTEGER.fullmatch(raw[0]):
        raise Rejection(400, "invalid_value", f"'{name}' must be a non-negative integer")
    return int(raw[0])


def _report_recovery(collector: Collector) -> None:
    recovery = collector.recovery
    if recovery is not None and not recovery.clean:
        log.warning(
            "recovered the log: cut %d bytes of torn tail from %s at byte %s (%s); "
            "no acknowledged measurement is in a torn tail",
            recovery.truncated_bytes,
            recovery.truncated_segment,
            recovery.truncated_at,
            recovery.reason,
        )
    log.info("collector open: %d measurements, log %s", len(collector), collector.log_id)


def _too_large(limit: int) -> Rejection:
    return Rejection(413, "body_too_large", f"the body is over the limit of {limit} bytes")
