"""Admission: is a submitted measurement acceptable, and what exactly is kept? (sans-IO)

Every byte a client sends is checked here before anything is stored, and every
refusal is a ``Rejection`` carrying the HTTP status, a stable error code and a
sentence for the person reading it. Nothing here touches a socket or a disk, so
the whole table of bad inputs is tested without a server.

What is kept is the measurement's RFC 8785 canonical form (``codec.jcs``): it
is the transparency-log leaf, so anyone holding the measurement in any JSON
spelling can recompute the leaf hash, and it is what the probe signed. The
collector never edits a measurement: one it would have to change (an
unscrubbed ``probe_ip``) is refused instead.

Identifiers follow OONI's backend:

- report ids (bk-003 ``POST /report``):
  ``20240214T090617Z_webconnectivity_PK_17557_n1_<16 random chars>``;
- measurement uids: ``<received %Y%m%d%H%M%S.%f>_<CC>_<testname>_<16 hex>``,
  where the hex digits are the start of the leaf hash, so resubmitting the same
  measurement finds the same uid.
"""

from __future__ import annotations

import calendar
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from blockproof.codec.jcs import CanonicalizationError, canonicalize, canonicalize_bytes
from blockproof.custody.merkle import leaf_hash
from blockproof.custody.signing import (
    KEY_ID,
    PUBLIC_KEY,
    SIGNATURE,
    SIGNATURE_KEYS,
    SignatureCheck,
    SignatureStatus,
    unsigned_canonical,
    verify_canonical,
)
from blockproof.model.measurement import SCRUBBED_IP

MAX_MEASUREMENT_BYTES = 8 * 1024 * 1024
MAX_BATCH_BYTES = 32 * 1024 * 1024
MAX_BATCH_MEASUREMENTS = 1000
MAX_SMALL_BODY = 64 * 1024  # POST /report and /close bodies
SUPPORTED_FORMATS = ("json",)

_TEST_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CC = re.compile(r"[A-Z]{2}")
_ASN = re.compile(r"AS[0-9]{1,10}")
_REPORT_ID = re.compile(
    r"([0-9]{8}T[0-9]{6}Z)_([a-z0-9]{1,64})_([A-Z]{2})_([0-9]{1,10})_n1_[A-Za-z0-9_-]{8,64}"
)
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_SHORT_TEXT = 256  # software_name, software_version, test_version, report_id...


@dataclass(frozen=True, slots=True)
class Rejection(Exception):
    """A refused submission: HTTP status, stable code, plain explanation."""

    status: int
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


def _bad(code: str, detail: str, status: int = 400) -> Rejection:
    return Rejection(status, code, detail)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A measurement that passed every check, ready to be logged."""

    canonical: bytes  # RFC 8785 bytes: the log leaf and what the probe signed
    leaf_hash: bytes
    test_name: str
    probe_cc: str
    measurement_start_time: str
    key_id: str | None  # the probe key that signed it, if signed

    @property
    def leaf_hex(self) -> str:
        return self.leaf_hash.hex()


# ---------------------------------------------------------------- measurements


def _field(obj: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    if key not in obj:
        raise _bad("missing_field", f"the measurement has no {key!r}")
    value = obj[key]
    if not isinstance(value, str):
        raise _bad("wrong_type", f"{key!r} must be a string, not {_json_type(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise _bad("invalid_value", f"{key!r} = {value[:80]!r} is not valid ({_HINTS[key]})")
    if len(value) > _SHORT_TEXT and key not in ("input",):
        raise _bad("invalid_value", f"{key!r} is longer than {_SHORT_TEXT} characters")
    return value


_HINTS = {
    "test_name": "lower-case snake_case, e.g. 'web_connectivity'",
    "probe_cc": "two upper-case letters, e.g. 'PK', or 'ZZ' when unknown",
    "probe_asn": "'AS' and a number, e.g. 'AS17557', or 'AS0' when hidden",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _valid_time(text: str) -> bool:
    """``YYYY-MM-DD HH:MM:SS`` naming a real instant (strptime is ten times slower)."""
    match = _TIME.fullmatch(text)
    if match is None:
        return False
    year, month, day, hour, minute, second = map(int, match.groups())
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return False
    return 1 <= day <= calendar.monthrange(year, month)[1]


def check_fields(obj: Any) -> tuple[str, str, str]:
    """Validate the envelope keys the collector relies on; returns (test_name, cc, start)."""
    if not isinstance(obj, dict):
        raise _bad("not_an_object", f"a measurement must be a JSON object, not {_json_type(obj)}")
    test_name = _field(obj, "test_name", _TEST_NAME)
    cc = _field(obj, "probe_cc", _CC)
    _field(obj, "probe_asn", _ASN)
    start = _field(obj, "measurement_start_time")
    if not _valid_time(start):
        raise _bad(
            "invalid_value",
            f"'measurement_start_time' = {start[:40]!r} is not 'YYYY-MM-DD HH:MM:SS' (UTC)",
        ) from None
    for key in ("data_format_version", "software_name", "software_version", "report_id"):
        _field(obj, key)
    if "input" in obj and obj["input"] is not None and not isinstance(obj["input"], str):
        raise _bad(
            "wrong_type", f"'input' must be a string or null, not {_json_type(obj['input'])}"
        )
    if "test_keys" not in obj:
        raise _bad("missing_field", "the measurement has no 'test_keys'")
    if not isinstance(obj["test_keys"], dict):
        raise _bad(
            "wrong_type", f"'test_keys' must be an object, not {_json_type(obj['test_keys'])}"
        )
    probe_ip = obj.get("probe_ip", SCRUBBED_IP)
    if probe_ip not in (SCRUBBED_IP, "", None):
        raise _bad(
            "unscrubbed_probe_ip",
            f"'probe_ip' must be scrubbed to {SCRUBBED_IP!r}: the collector never stores a "
            "probe's address (the measurement was not stored)",
            422,
        )
    return test_name, cc, start


@dataclass(frozen=True, slots=True)
class Candidate:
    """A measurement that passed every check but its signature's, which is left to run.

    Checking an Ed25519 signature is the costliest step by far (about 0.2 ms),
    so it is kept apart: ``verify`` runs it, ``finish`` applies the result, and
    ``admit_*`` below do both in one go. (Running ``verify`` on worker threads,
    since it releases the GIL, was measured slower on two cores: see
    docs/benchmarks.md.)
    """

    admitted: Admitted
    verify: Callable[[], SignatureCheck] | None  # None: unsigned, nothing to check


def _candidate(obj: Any, canonical: bytes, checked: tuple[str, str, str] | None) -> Candidate:
    test_name, cc, start = checked or check_fields(obj)
    if len(canonical) > MAX_MEASUREMENT_BYTES:
        raise _bad(
            "body_too_large", f"a measurement may be at most {MAX_MEASUREMENT_BYTES} bytes", 413
        )
    admitted = Admitted(
        canonical=canonical,
        leaf_hash=leaf_hash(canonical),
        test_name=test_name,
        probe_cc=cc,
        measurement_start_time=start,
        key_id=None,
    )
    present = [k for k in SIGNATURE_KEYS if k in obj]
    if not present:
        return Candidate(admitted, None)

    def verify() -> SignatureCheck:
        return verify_canonical(
            lambda: unsigned_canonical(obj, canonical),
            obj.get(KEY_ID),
            obj.get(PUBLIC_KEY),
            obj.get(SIGNATURE),
            present=present,
        )

    return Candidate(admitted, verify)


def finish(candidate: Candidate, check: SignatureCheck | None) -> Admitted:
    """The admitted measurement, given its signature check (None when unsigned)."""
    if check is None:
        return candidate.admitted
    if check.status is SignatureStatus.INVALID:
        raise _bad("bad_signature", f"signature check failed: {check.reason}", 422)
    if check.status is SignatureStatus.VALID:
        return replace(candidate.admitted, key_id=check.key_id)
    return candidate.admitted


def candidate_from_bytes(data: bytes) -> Candidate:
    """One measurement sent as JSON text (the batch endpoint's lines, our probe's)."""
    try:
        obj, canonical = canonicalize_bytes(data)
    except CanonicalizationError as exc:
        raise _bad("malformed_json", f"not acceptable JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _bad("not_an_object", f"a measurement must be a JSON object, not {_json_type(obj)}")
    return _candidate(obj, canonical, None)


def candidate_from_object(obj: Any, checked: tuple[str, str, str] | None = None) -> Candidate:
    """One measurement already parsed (the content of a bk-003 submission).

    ``checked``: ``check_fields(obj)``'s answer, when the caller already has it.
    """
    if not isinstance(obj, dict):
        raise _bad("not_an_object", f"a measurement must be a JSON object, not {_json_type(obj)}")
    try:
        canonical = canonicalize(obj)
    except CanonicalizationError as exc:
        raise _bad("malformed_json", f"not acceptable JSON: {exc}") from None
    return _candidate(obj, canonical, checked)


def _admit(candidate: Candidate) -> Admitted:
    return finish(candidate, candidate.verify() if candidate.verify else None)


def admit_bytes(data: bytes) -> Admitted:
    """Admit one measurement sent as JSON text, signature checked here."""
    return _admit(candidate_from_bytes(data))


def admit_object(obj: Any, checked: tuple[str, str, str] | None = None) -> Admitted:
    """Admit one parsed measurement, signature checked here."""
    return _admit(candidate_from_object(obj, checked))


# ------------------------------------------------------------- bk-003 bodies


def parse_json_body(data: bytes) -> Any:
    """A request body as JSON, or a 400 that says why not."""
    if not data.strip():
        raise _bad("malformed_json", "the request body is empty; expected a JSON object")
    try:
        return orjson.loads(data)  # strict: no NaN/Infinity, valid UTF-8, 64-bit integers
    except orjson.JSONDecodeError as exc:
        raise _bad("malformed_json", f"the request body is not JSON: {exc}") from None


def parse_open_report(body: Any) -> dict[str, str]:
    """``POST /report``: the fields that name the new report."""
    if not isinstance(body, dict):
        raise _bad("not_an_object", "the body must be a JSON object")
    fmt = body.get("format", "json")
    if fmt not in SUPPORTED_FORMATS:
        raise _bad("unsupported_format", f"format {fmt!r} is not supported; use 'json'")
    test_name = _field(body, "test_name", _TEST_NAME)
    cc = _field(body, "probe_cc", _CC)
    asn = _field(body, "probe_asn", _ASN)
    for key in ("software_name", "software_version"):
        _field(body, key)
    return {"test_name": test_name, "probe_cc": cc, "probe_asn": asn}


def new_report_id(test_name: str, probe_cc: str, probe_asn: str, now: datetime) -> str:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    rand = secrets.token_urlsafe(12)
    return (
        f"{stamp}_{test_name.replace('_', '')}_{probe_cc}_{probe_asn.removeprefix('AS')}_n1_{rand}"
    )


def check_report_id(report_id: str) -> re.Match[str]:
    match = _REPORT_ID.fullmatch(report_id)
    if match is None:
        raise _bad(
            "unknown_report",
            f"{report_id[:100]!r} is not a report id this collector issues (open one with "
            "POST /report)",
            404,
        )
    return match


def parse_submission(report_id: str, body: Any) -> tuple[dict[str, Any], tuple[str, str, str]]:
    """``POST /report/{id}``: the measurement inside ``{"format": "json", "content": ...}``."""
    match = check_report_id(report_id)
    if not isinstance(body, dict):
        raise _bad("not_an_object", "the body must be a JSON object")
    fmt = body.get("format")
    if fmt not in SUPPORTED_FORMATS:
        raise _bad("unsupported_format", f"format {fmt!r} is not supported; use 'json'")
    if "content" not in body:
        raise _bad("missing_field", "the body has no 'content' (the measurement)")
    content = body["content"]
    if not isinstance(content, dict):
        raise _bad("not_an_object", f"'content' must be a JSON object, not {_json_type(content)}")
    checked = check_fields(content)
    test_name, cc, _start = checked
    if content.get("report_id") != report_id:
        raise _bad(
            "report_id_mismatch",
            "the measurement's report_id differs from the report it is submitted to",
        )
    if test_name.replace("_", "") != match.group(2):
        raise _bad("report_id_mismatch", "the measurement's test_name differs from the report's")
    if cc != match.group(3):
        raise _bad("report_id_mismatch", "the measurement's probe_cc differs from the report's")
    return content, checked


def split_batch(data: bytes) -> list[bytes]:
    """``POST /measurements``: JSON lines, one measurement per line (blank lines ignored)."""
    items = [line for line in data.split(b"\n") if line.strip()]
    if not items:
        raise _bad("invalid_value", "the batch is empty; send one measurement (JSON) per line")
    if len(items) > MAX_BATCH_MEASUREMENTS:
        raise _bad(
            "body_too_large",
            f"at most {MAX_BATCH_MEASUREMENTS} measurements per batch ({len(items)} sent)",
            413,
        )
    return items


def measurement_uid(received: datetime, probe_cc: str, test_name: str, leaf: bytes) -> str:
    """OONI's measurement uid shape, ending with the leaf hash (so it is stable per content)."""
    t = received.astimezone(UTC)
    stamp = (
        f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"
        f".{t.microsecond:06d}"
    )
    return f"{stamp}_{probe_cc}_{test_name.replace('_', '')}_{leaf[:8].hex()}"
