"""Alerts as webhooks: one JSON POST per alert, signed, retried with backoff.

Theory of operation. The body is the alert's JSON (``Alert.to_json``) encoded once,
compactly and with sorted keys, and sent as those exact bytes: the signature header
``X-Blockproof-Signature: sha256=<hex>`` is the HMAC-SHA256 of the body with the
subscription's secret (no header when it has none). ``X-Blockproof-Alert-Id`` and
``Idempotency-Key`` carry the alert id, so that a receiver can drop the repeat of a
delivery whose acknowledgement was lost (docs/alerts.md).

A 2xx answer delivers the alert. A connection error, a timeout, a 429 or a 5xx is
retried: ``RetryPolicy.attempts`` attempts in all, waiting ``backoff``, then twice
as long each time (or the answer's ``Retry-After`` seconds), never more than
``max_wait``; after the last one the delivery stays pending for the next run. Any other
answer (a 4xx, a redirect: redirects are not followed) is a permanent failure: it is
reported and not retried by later runs unless asked (``--retry-failed``). The answer's
body is never read, so a receiver cannot make a run slow or big by its answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from blockproof import __version__
from blockproof.alerts.changes import Alert, clean
from blockproof.alerts.subscriptions import Webhook

__all__ = ["Result", "RetryPolicy", "body_of", "deliver", "signature"]

SIGNATURE_HEADER = "X-Blockproof-Signature"
ALERT_ID_HEADER = "X-Blockproof-Alert-Id"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    backoff: float = 1.0  # seconds before the 2nd attempt, doubled after each
    max_wait: float = 30.0
    timeout: float = 10.0  # per attempt: connect, write, read


@dataclass(frozen=True, slots=True)
class Result:
    """How a delivery went: delivered, pending (to retry later) or failed (for good)."""

    status: str
    attempts: int
    error: str | None = None


def body_of(alert: Alert) -> bytes:
    """The bytes POSTed for ``alert`` (and signed)."""
    return json.dumps(
        alert.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def deliver(
    client: httpx.Client,
    hook: Webhook,
    alert: Alert,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """POST ``alert`` to ``hook``, retrying as the module says."""
    body = body_of(alert)
    headers = {
        "content-type": "application/json",
        "user-agent": f"blockproof/{__version__}",
        ALERT_ID_HEADER: alert.id,
        "idempotency-key": alert.id,
    }
    if hook.secret is not None:
        headers[SIGNATURE_HEADER] = signature(hook.secret, body)
    wait = policy.backoff
    error = "not tried"
    for attempt in range(1, policy.attempts + 1):
        hint: float | None = None
        try:
            with client.stream(
                "POST", hook.url, content=body, headers=headers, timeout=policy.timeout
            ) as response:
                status = response.status_code
                hint = _retry_after(response)
        except httpx.HTTPError as exc:
            error = clean(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, 200)
        else:
            if 200 <= status < 300:
                return Result("delivered", attempt)
            error = f"answered {status}"
            if status != 429 and status < 500:
                if 300 <= status < 400:
                    error += " (redirects are not followed: give the final URL)"
                return Result("failed", attempt, error)
        if attempt < policy.attempts:
            sleep(min(policy.max_wait, hint if hint is not None else wait))
            wait *= 2
    return Result("pending", policy.attempts, error)
