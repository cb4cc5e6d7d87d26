"""Measurement signatures: a probe vouches for exactly the content it measured.

A signed measurement carries three extra envelope keys (OONI allows extra keys
that start with ``x_``):

``x_key_id``
    the first 32 hex digits (128 bits) of SHA-256 over the probe's raw 32-byte
    Ed25519 public key: a short, stable name for the probe key;
``x_public_key``
    the raw public key, standard base64 (44 characters);
``x_signature``
    the 64-byte Ed25519 signature, standard base64 (88 characters).

What is signed is::

    b"blockproof-measurement-v1\\n" + canonicalize(measurement without "x_signature")

``canonicalize`` is RFC 8785 (``codec.jcs``), so any JSON spelling of the same
measurement (key order, whitespace, escapes) verifies. ``x_key_id`` and
``x_public_key`` are inside the signed part: nobody can re-label whose key it
was. The first line is a *domain separation* prefix: a signature made here can
never be passed off as a signature over some other kind of message the same key
might sign (a tree head, a future format), and a future format changes the
``v1``. The signature is only as trustworthy as the key's provenance: it proves
"the holder of this key produced exactly these bytes", not who holds it.

    signed = sign_measurement(measurement, private_key)   # a new dict
    check = verify_measurement(signed)
    check.status        # SignatureStatus.VALID / UNSIGNED / INVALID
    check.reason        # a sentence for a person

A measurement with none of the three keys is UNSIGNED (an OONI probe's); with
some but not all of them, or with any of them malformed or not matching, it is
INVALID, never UNSIGNED: stripping part of a signature must not turn a forgery
into an "unsigned" measurement.

The collector receives bytes and needs both the canonical bytes of the whole
measurement (its transparency-log leaf) and the check; ``check_and_canonicalize``
parses and canonicalizes once and derives the signed part from the canonical
bytes instead of canonicalizing again. Nothing here touches files (the probe's
key lives in ``custody.keys``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from blockproof.codec.jcs import CanonicalizationError, canonicalize, canonicalize_bytes

__all__ = [
    "KEY_ID",
    "PUBLIC_KEY",
    "SIGNATURE",
    "SIGNATURE_KEYS",
    "SIGNING_CONTEXT",
    "NotAnObjectError",
    "SignatureCheck",
    "SignatureStatus",
    "check_and_canonicalize",
    "key_id",
    "public_key_raw",
    "sign_measurement",
    "signing_message",
    "unsigned_canonical",
    "verify_canonical",
    "verify_measurement",
]

SIGNING_CONTEXT: Final = b"blockproof-measurement-v1\n"
"""Domain-separation prefix of every signed message (see the module docstring)."""

KEY_ID: Final = "x_key_id"
PUBLIC_KEY: Final = "x_public_key"
SIGNATURE: Final = "x_signature"
SIGNATURE_KEYS: Final = (KEY_ID, PUBLIC_KEY, SIGNATURE)

KEY_ID_HEX_DIGITS: Final = 32
PUBLIC_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64


class SignatureStatus(StrEnum):
    VALID = "valid"
    """Signed, and the signature matches the content and the key named in it."""
    UNSIGNED = "unsigned"
    """None of the three signature keys is present."""
    INVALID = "invalid"
    """Some signature key is present, and something about them is wrong."""


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The verdict on one measurement's signature.

    ``reason`` is a plain sentence. ``key_id`` is the verified key id when VALID,
    the claimed ``x_key_id`` (if it is a string) when INVALID, None when UNSIGNED.
    """

    status: SignatureStatus
    reason: str
    key_id: str | None = None

    @property
    def valid(self) -> bool:
        return self.status is SignatureStatus.VALID


class NotAnObjectError(ValueError):
    """JSON text that is valid but not an object, where a measurement was expected."""


def key_id(public_key_raw: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key: 32 hex digits of its SHA-256."""
    return hashlib.sha256(public_key_raw).hexdigest()[:KEY_ID_HEX_DIGITS]


def public_key_raw(private_key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of ``private_key``."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def signing_message(unsigned_canonical: bytes) -> bytes:
    """The exact bytes Ed25519 signs: the prefix, then the canonical unsigned part."""
    return SIGNING_CONTEXT + unsigned_canonical


def sign_measurement(measurement: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``measurement`` with ``x_key_id``, ``x_public_key`` and ``x_signature`` set.

    Any previous signature keys are replaced; the input is not modified. Raises
    ``CanonicalizationError`` if the measurement has no canonical form.
    """
    raw = public_key_raw(private_key)
    signed = {k: v for k, v in measurement.items() if k != SIGNATURE}
    signed[KEY_ID] = key_id(raw)
    signed[PUBLIC_KEY] = base64.b64encode(raw).decode("ascii")
    signature = private_key.sign(signing_message(canonicalize(signed)))
    signed[SIGNATURE] = base64.b64encode(signature).decode("ascii")
    return signed


def verify_measurement(measurement: Mapping[str, Any]) -> SignatureCheck:
    """Check the signature of a parsed measurement (see the module docstring).

    Never raises for bad content: a measurement that has signature keys but no
    canonical form (say, a NaN) is INVALID, with the reason.
    """
    return verify_canonical(
        lambda: canonicalize({k: v for k, v in measurement.items() if k != SIGNATURE}),
        measurement.get(KEY_ID),
        measurement.get(PUBLIC_KEY),
        measurement.get(SIGNATURE),
        present=[k for k in SIGNATURE_KEYS if k in measurement],
    )


def verify_canonical(
    unsigned: bytes | Callable[[], bytes],
    claimed_key_id: Any,
    public_key: Any,
    signature: Any,
    *,
    present: list[str] | None = None,
) -> SignatureCheck:
    """Check a signature given the canonical bytes of the measurement minus ``x_signature``.

    ``claimed_key_id``, ``public_key`` and ``signature`` are the JSON values of
    the three keys (None where absent, unless ``present`` lists the keys that
    are there: a key present with the value null is not an absent key).
    ``unsigned`` may be a function, called only once the keys are well formed,
    so that a malformed signature costs no canonicalization.
    """
    if present is None:
        values = zip(SIGNATURE_KEYS, (claimed_key_id, public_key, signature), strict=True)
        present = [name for name, value in values if value is not None]
    if not present:
        return SignatureCheck(
            SignatureStatus.UNSIGNED,
            f"the measurement is not signed (it has none of {_and(list(SIGNATURE_KEYS), 'or')})",
        )
    named = claimed_key_id if isinstance(claimed_key_id, str) else None
    if len(present) < len(SIGNATURE_KEYS):
        missing = [k for k in SIGNATURE_KEYS if k not in present]
        return _invalid(f"{_and(present)} present without {_and(missing)}", named)

    raw = _decode_base64(public_key, PUBLIC_KEY_BYTES)
    if raw is None:
        return _invalid(f"{PUBLIC_KEY} is not base64 of {PUBLIC_KEY_BYTES} bytes", named)
    if claimed_key_id != key_id(raw):
        return _invalid(f"{KEY_ID} does not match {PUBLIC_KEY}", named)
    signature_raw = _decode_base64(signature, SIGNATURE_BYTES)
    if signature_raw is None:
        return _invalid(f"{SIGNATURE} is not base64 of {SIGNATURE_BYTES} bytes", named)
    try:
        verifier = _public_key(raw)
    except ValueError:
        return _invalid(f"{PUBLIC_KEY} is not a valid Ed25519 public key", named)
    try:
        message = signing_message(unsigned if isinstance(unsigned, bytes) else unsigned())
    except CanonicalizationError as exc:
        return _invalid(f"the measurement has no canonical form to check: {exc}", named)
    try:
        verifier.verify(signature_raw, message)
    except InvalidSignature:
        return _invalid(
            "the signature does not match the measurement's content (it was altered after "
            "signing, or signed by another key)",
            named,
        )
    return SignatureCheck(
        SignatureStatus.VALID, f"signed by probe key {claimed_key_id}; content unchanged", named
    )


def unsigned_canonical(measurement: dict[str, Any], canonical: bytes) -> bytes:
    """The canonical bytes of ``measurement`` minus ``x_signature``, from its canonical bytes.

    When ``x_signature`` is the last top-level key in canonical order (no
    top-level key sorts after it, as with OONI's keys and ours), its member is
    the tail ``,"x_signature":"..."}`` of ``canonical`` and is cut off without
    canonicalizing again. (Comparing with the all-ASCII ``"x_signature"``,
    Python's code-point order agrees with JCS's UTF-16 order.)
    """
    if SIGNATURE not in measurement:
        return canonical
    tail = b',"' + SIGNATURE.encode() + b'":' + canonicalize(measurement[SIGNATURE]) + b"}"
    if len(measurement) > 1 and canonical.endswith(tail) and max(measurement) == SIGNATURE:
        return canonical[: -len(tail)] + b"}"
    return canonicalize({k: v for k, v in measurement.items() if k != SIGNATURE})


def check_and_canonicalize(data: bytes) -> tuple[dict[str, Any], bytes, SignatureCheck]:
    """Parse one measurement's JSON text: ``(measurement, canonical bytes, signature check)``.

    The collector's hot path: one parse, one canonicalization. Raises
    ``CanonicalizationError`` if the text is not acceptable JSON (see
    ``codec.jcs``) and ``NotAnObjectError`` if it is JSON but not an object;
    both are ``ValueError``.
    """
    measurement, canonical = canonicalize_bytes(data)
    if not isinstance(measurement, dict):
        raise NotAnObjectError(
            f"a measurement must be a JSON object, not {_json_type(measurement)}"
        )
    check = verify_canonical(
        lambda: unsigned_canonical(measurement, canonical),
        measurement.get(KEY_ID),
        measurement.get(PUBLIC_KEY),
        measurement.get(SIGNATURE),
        present=[k for k in SIGNATURE_KEYS if k in measurement],
    )
    return measurement, canonical, check


# ------------------------------------------------------------------ helpers


def _invalid(reason: str, named: str | None) -> SignatureCheck:
    return SignatureCheck(SignatureStatus.INVALID, reason, named)


def _and(names: list[str], conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _decode_base64(value: Any, size: int) -> bytes | None:
    """``value`` decoded, if it is the standard base64 spelling of ``size`` bytes.

    Only the one canonical spelling is accepted (padding, no whitespace, zero
    unused bits): a second spelling of the same signature would be a second,
    different-looking copy of the same signed measurement.
    """
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except binascii.Error:
        return None
    if len(decoded) != size or base64.b64encode(decoded).decode("ascii") != value:
        return None
    return decoded


@lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """The key object for raw bytes (cached: a collector sees the same probes again and again)."""
    return Ed25519PublicKey.from_public_bytes(raw)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
