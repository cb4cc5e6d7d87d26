"""Alerts as e-mail, through an SMTP server (``smtplib``).

Theory of operation. One message per alert and destination, to all of the destination's
recipients: the subject is the alert's title, the body its plain text (UTF-8), and the
headers say what it is: ``Message-ID`` is derived from the alert id (the same alert gives
the same Message-ID, so a mailbox or a list can drop a repeat), an update or a
resolution refers to its event's onset (``In-Reply-To``, ``References``: mail readers
thread an event's alerts), ``X-Blockproof-Alert-Id`` and ``X-Blockproof-Event-Id`` name
them, ``Auto-Submitted: auto-generated`` (RFC 3834) keeps auto-responders quiet.
Headers are built by the ``email`` package, which refuses line breaks in them; the
titles are one line already (``changes.clean``).

The server answers decide: 2xx delivered; a 4xx answer, a dropped connection or a
timeout is retried (``RetryPolicy``: a few attempts with backoff, then pending for the
next run); a 5xx answer (recipient, sender or message refused, authentication failed,
STARTTLS not offered) is a permanent failure.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from blockproof.alerts.changes import Alert, clean
from blockproof.alerts.subscriptions import SmtpSettings
from blockproof.alerts.webhook import Result, RetryPolicy

__all__ = ["build_message", "message_id", "send"]

MAIL_POLICY = RetryPolicy(attempts=3, backoff=2.0, max_wait=30.0, timeout=30.0)


def message_id(alert_id: str) -> str:
    """The Message-ID of an alert's e-mail: derived from the alert id alone."""
    digest = hashlib.sha256(alert_id.encode()).hexdigest()[:32]
    return f"<{digest}@alerts.blockproof.invalid>"


def _date(iso: str) -> datetime:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_message(alert: Alert, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = clean(alert.title, 300)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(_date(alert.issued))
    msg["Message-ID"] = message_id(alert.id)
    if alert.kind != "onset":
        onset = message_id(f"{alert.event_id}/onset")
        msg["In-Reply-To"] = onset
        msg["References"] = onset
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Blockproof-Alert-Id"] = clean(alert.id, 300)
    msg["X-Blockproof-Event-Id"] = clean(alert.event_id, 300)
    msg.set_content(alert.text, charset="utf-8")
    return msg


def _once(settings: SmtpSettings, msg: EmailMessage, recipients: tuple[str, ...],
          timeout: float) -> dict[str, tuple[int, bytes]]:  # fmt: skip
    with smtplib.SMTP(settings.host, settings.port, timeout=timeout) as smtp:
        smtp.ehlo()
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.user is not None and settings.password is not None:
            smtp.login(settings.user, settings.password)
        return smtp.send_message(msg, from_addr=settings.sender, to_addrs=list(recipients))


def _classify(exc: Exception) -> tuple[bool, str]:
    """(permanent?, what went wrong) for an exception of ``smtplib`` or the socket."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        refused = ", ".join(f"{r} ({c})" for r, (c, _) in sorted(exc.recipients.items()))
        return all(c >= 500 for c in codes), f"recipients refused: {refused}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return True, clean(f"the server does not support it: {exc}", 200)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)  # fmt: skip
        return exc.smtp_code >= 500, clean(f"answered {exc.smtp_code} {text}", 200)
    if isinstance(exc, ssl.SSLError):
        return True, clean(f"TLS: {exc}", 200)
    return False, clean(f"{type(exc).__name__}: {exc}", 200)


def send(
    settings: SmtpSettings,
    alert: Alert,
    recipients: tuple[str, ...],
    policy: RetryPolicy = MAIL_POLICY,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Send ``alert`` to ``recipients`` through ``settings``' server."""
    msg = build_message(alert, settings.sender, recipients)
    wait = policy.backoff
    error = "not tried"
    for attempt in range(1, policy.attempts + 1):
        try:
            refused = _once(settings, msg, recipients, policy.timeout)
        except (smtplib.SMTPException, OSError) as exc:
            permanent, error = _classify(exc)
            if permanent:
                return Result("failed", attempt, error)
        else:
            # accepted for some recipients: delivered (a repeat would reach them twice),
            # with the refused ones said
            note = ", ".join(f"{r} ({c})" for r, (c, _) in sorted(refused.items()))
            return Result("delivered", attempt, f"refused: {note}" if note else None)
        if attempt < policy.attempts:
            sleep(min(policy.max_wait, wait))
            wait *= 2
    return Result("pending", policy.attempts, error)
