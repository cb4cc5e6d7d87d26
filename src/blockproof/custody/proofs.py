"""Signed tree heads and receipts: what a collector hands out and anyone can check offline.

A **tree head** states "my log holds ``tree_size`` measurements whose Merkle root
is ``root_hash``", signed by the collector's Ed25519 key over a canonical
(RFC 8785) form with a domain-separation prefix. A **receipt** is what a probe
keeps for each uploaded measurement: its uid, its leaf index and hash, an
inclusion proof (RFC 9162 audit path) and the tree head the proof is for.

Checking a receipt needs only the measurement, the receipt and (to be sure who
signed) the collector's key id: recompute the leaf hash from the measurement's
canonical form, fold the audit path up to a root, compare with the tree head,
check the tree head's signature. A later tree head proves it extends an earlier
one with a consistency proof (``check_consistency``). Pure functions; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from blockproof.codec.jcs import canonicalize
from blockproof.custody.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from blockproof.custody.signing import key_id as key_id_of

TREE_HEAD_CONTEXT = b"blockproof-tree-head-v1\n"


class ProofFormatError(ValueError):
    """A tree head, receipt or proof document that is not well formed."""


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProofFormatError(f"{what} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ProofFormatError(f"{what} is not hex") from None
    if len(raw) != 32:
        raise ProofFormatError(f"{what} must be 32 bytes (64 hex digits)")
    return raw


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofFormatError(f"{what} must be a non-negative integer")
    return value


def _b64(value: Any, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise ProofFormatError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProofFormatError(f"{what} is not base64") from None
    if len(raw) != size:
        raise ProofFormatError(f"{what} must decode to {size} bytes")
    return raw


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed statement of the log's size and root."""

    tree_size: int
    timestamp_ms: int
    root_hash: bytes
    log_id: str  # key id of the collector's public key
    public_key: bytes  # raw Ed25519 public key (32 bytes)
    signature: bytes  # 64 bytes

    def signed_part(self) -> dict[str, Any]:
        return {
            "log_id": self.log_id,
            "public_key": base64.b64encode(self.public_key).decode(),
            "root_hash": self.root_hash.hex(),
            "timestamp_ms": self.timestamp_ms,
            "tree_size": self.tree_size,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.signed_part(), "signature": base64.b64encode(self.signature).decode()}

    @staticmethod
    def from_json(obj: Any) -> TreeHead:
        if not isinstance(obj, dict):
            raise ProofFormatError("a tree head must be a JSON object")
        log_id = obj.get("log_id")
        if not isinstance(log_id, str):
            raise ProofFormatError("tree head: log_id must be a string")
        return TreeHead(
            tree_size=_count(obj.get("tree_size"), "tree head: tree_size"),
            timestamp_ms=_count(obj.get("timestamp_ms"), "tree head: timestamp_ms"),
            root_hash=_hex32(obj.get("root_hash"), "tree head: root_hash"),
            log_id=log_id,
            public_key=_b64(obj.get("public_key"), "tree head: public_key", 32),
            signature=_b64(obj.get("signature"), "tree head: signature", 64),
        )


def sign_tree_head(
    tree_size: int, root_hash: bytes, timestamp_ms: int, key: Ed25519PrivateKey
) -> TreeHead:
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    unsigned = TreeHead(tree_size, timestamp_ms, root_hash, key_id_of(public), public, b"")
    signature = key.sign(TREE_HEAD_CONTEXT + canonicalize(unsigned.signed_part()))
    return TreeHead(tree_size, timestamp_ms, root_hash, unsigned.log_id, public, signature)


def tree_head_problem(head: TreeHead, *, log_id: str | None = None) -> str | None:
    """Why ``head`` is not a valid tree head (of the log ``log_id``, if given), or None."""
    if key_id_of(head.public_key) != head.log_id:
        return "the tree head's log_id does not match its public key"
    if log_id is not None and head.log_id != log_id:
        return f"the tree head was signed by log {head.log_id}, not by the expected {log_id}"
    try:
        Ed25519PublicKey.from_public_bytes(head.public_key).verify(
            head.signature, TREE_HEAD_CONTEXT + canonicalize(head.signed_part())
        )
    except InvalidSignature:
        return "the tree head's signature is not valid (it was altered, or not signed by its log)"
    return None


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that one measurement is in the collector's log."""

    measurement_uid: str
    leaf_index: int
    leaf_hash: bytes
    inclusion_proof: tuple[bytes, ...]
    tree_head: TreeHead

    def to_json(self) -> dict[str, Any]:
        return {
            "measurement_uid": self.measurement_uid,
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash.hex(),
            "inclusion_proof": [h.hex() for h in self.inclusion_proof],
            "tree_head": self.tree_head.to_json(),
        }

    @staticmethod
    def from_json(obj: Any) -> Receipt:
        if not isinstance(obj, dict):
            raise ProofFormatError("a receipt must be a JSON object")
        uid = obj.get("measurement_uid")
        if not isinstance(uid, str):
            raise ProofFormatError("receipt: measurement_uid must be a string")
        path = obj.get("inclusion_proof")
        if not isinstance(path, list):
            raise ProofFormatError("receipt: inclusion_proof must be an array of hex hashes")
        return Receipt(
            measurement_uid=uid,
            leaf_index=_count(obj.get("leaf_index"), "receipt: leaf_index"),
            leaf_hash=_hex32(obj.get("leaf_hash"), "receipt: leaf_hash"),
            inclusion_proof=tuple(_hex32(h, "receipt: inclusion_proof entry") for h in path),
            tree_head=TreeHead.from_json(obj.get("tree_head")),
        )


def receipt_problems(canonical: bytes, receipt: Receipt, *, log_id: str | None = None) -> list[str]:
    """Everything wrong with ``receipt`` as proof that ``canonical`` is in the log."""
    problems: list[str] = []
    actual = leaf_hash(canonical)
    if actual != receipt.leaf_hash:
        problems.append(
            "the measurement does not match the receipt: its leaf hash is "
            f"{actual.hex()[:16]}..., the log holds {receipt.leaf_hash.hex()[:16]}... "
            "(the measurement was altered after it was logged, or this is another measurement)"
        )
    head = receipt.tree_head
    if not verify_inclusion(
        receipt.leaf_hash,
        receipt.leaf_index,
        head.tree_size,
        receipt.inclusion_proof,
        head.root_hash,
    ):
        problems.append(
            f"the inclusion proof does not lead from leaf {receipt.leaf_index} to the tree "
            f"head's root (tree size {head.tree_size})"
        )
    problem = tree_head_problem(head, log_id=log_id)
    if problem:
        problems.append(problem)
    return problems


def consistency_problems(
    old: TreeHead, new: TreeHead, proof: list[bytes], *, log_id: str | None = None
) -> list[str]:
    """Everything wrong with the claim that ``new`` extends ``old``."""
    problems = [
        p
        for p in (tree_head_problem(old, log_id=log_id), tree_head_problem(new, log_id=log_id))
        if p
    ]
    if old.log_id != new.log_id:
        problems.append("the two tree heads come from different logs")
    if old.tree_size > new.tree_size:
        problems.append(
            f"the 'newer' tree head is smaller ({new.tree_size}) than the older ({old.tree_size})"
        )
    elif old.tree_size == 0:  # every log extends the empty one
        if old.root_hash != EMPTY_ROOT:
            problems.append("the older tree head claims size 0 with a root that is not empty")
    elif not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof):
        problems.append(
            f"the consistency proof does not show that the tree of size {new.tree_size} extends "
            f"the tree of size {old.tree_size}: the log was rewritten, or the proof is wrong"
        )
    return problems


def inclusion_status(canonical: bytes, receipt: bytes | None) -> str | None:
    """``"valid"`` when ``receipt`` (a receipt's JSON) proves that ``canonical`` (the
    logged bytes, as in a collector export's line) is in the log under a validly signed
    tree head; otherwise its problems in a sentence; None without a receipt."""
    if receipt is None:
        return None
    try:
        problems = receipt_problems(canonical, Receipt.from_json(json.loads(receipt)))
    except (ProofFormatError, ValueError) as exc:
        return f"unreadable receipt: {exc}"
    return "; ".join(problems) or "valid"
