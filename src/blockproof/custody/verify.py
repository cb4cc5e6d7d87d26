"""``blockproof verify``: check a measurement's evidence offline, step by step.

Given a measurement file (any JSON spelling of it) and its receipt, three
independent facts are checked, each with a sentence a non-expert can read:

1. **signature**: the probe key named in ``x_key_id`` signed exactly this
   content (RFC 8785 canonical form, Ed25519);
2. **inclusion**: the measurement's leaf hash, folded with the receipt's audit
   path (RFC 9162), gives the root stated by the tree head;
3. **tree head**: that root and size were signed by the collector's log key
   (optionally: the key you expected, ``--log-id``).

``check_consistency`` checks that a newer tree head extends an older one, so a
log cannot drop or rewrite a measurement after giving out a receipt for it.
No network access is needed for either, except to fetch a consistency proof
from the collector when the caller does not already have one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockproof.codec.jcs import CanonicalizationError, canonicalize
from blockproof.custody.proofs import (
    ProofFormatError,
    Receipt,
    TreeHead,
    consistency_problems,
    receipt_problems,
)
from blockproof.custody.signing import SignatureStatus, verify_measurement


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    message: str


@dataclass(slots=True)
class Verification:
    subject: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, message: str) -> None:
        self.checks.append(Check(name, ok, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.ok,
            "checks": [{"check": c.name, "ok": c.ok, "message": c.message} for c in self.checks],
        }


def _read_json(path: Path, what: str) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProofFormatError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ProofFormatError(
            f"{path}: the {what} is not valid JSON ({exc}); the file was damaged or altered"
        ) from None


def default_receipt_path(measurement: Path) -> Path:
    """Where the spool keeps a measurement's receipt: ``<id>.receipt.json`` beside it."""
    name = measurement.name
    stem = name[: -len(".json")] if name.endswith(".json") else measurement.stem
    return measurement.with_name(stem + ".receipt.json")


def verify_measurement_file(
    path: Path,
    receipt_path: Path | None = None,
    *,
    log_id: str | None = None,
    allow_unsigned: bool = False,
) -> Verification:
    """Check a measurement file's signature and its receipt (see the module docstring)."""
    result = Verification(str(path))
    try:
        measurement = _read_json(path, "measurement")
    except ProofFormatError as exc:
        result.add("measurement", False, str(exc))
        return result
    if not isinstance(measurement, dict):
        result.add("measurement", False, f"{path}: not a measurement (a JSON object)")
        return result
    try:
        canonical = canonicalize(measurement)
    except CanonicalizationError as exc:
        result.add("measurement", False, f"{path}: cannot be put in canonical form: {exc}")
        return result

    check = verify_measurement(measurement)
    if check.status is SignatureStatus.VALID:
        result.add("signature", True, f"signed by probe key {check.key_id}; content unchanged")
    elif check.status is SignatureStatus.UNSIGNED:
        result.add(
            "signature",
            allow_unsigned,
            "the measurement is not signed (an OONI probe's, or produced without a key)"
            + ("" if allow_unsigned else "; pass --allow-unsigned to check the rest only"),
        )
    else:
        result.add("signature", False, f"INVALID: {check.reason}")

    receipt_path = receipt_path or default_receipt_path(path)
    if not receipt_path.exists():
        result.add(
            "receipt",
            False,
            f"no receipt at {receipt_path}: the measurement was not uploaded yet, or give "
            "--receipt FILE",
        )
        return result
    try:
        receipt = Receipt.from_json(_read_json(receipt_path, "receipt"))
    except ProofFormatError as exc:
        result.add("receipt", False, str(exc))
        return result
    problems = receipt_problems(canonical, receipt, log_id=log_id)
    head = receipt.tree_head
    if problems:
        for problem in problems:
            result.add("inclusion", False, problem)
    else:
        result.add(
            "inclusion",
            True,
            f"measurement {receipt.measurement_uid} is leaf {receipt.leaf_index} of the log "
            f"{head.log_id}, whose tree head (size {head.tree_size}, root "
            f"{head.root_hash.hex()[:16]}...) is validly signed",
        )
    return result


def load_tree_head(path: Path) -> TreeHead:
    """A tree head from a file holding a tree head, a receipt, or a batch answer."""
    obj = _read_json(path, "tree head")
    if isinstance(obj, dict) and "tree_head" in obj:
        obj = obj["tree_head"]
    return TreeHead.from_json(obj)


def check_consistency(
    old: TreeHead, new: TreeHead, proof: list[bytes], *, log_id: str | None = None
) -> Verification:
    result = Verification(f"tree size {old.tree_size} -> {new.tree_size}")
    problems = consistency_problems(old, new, proof, log_id=log_id)
    if problems:
        for problem in problems:
            result.add("consistency", False, problem)
    else:
        result.add(
            "consistency",
            True,
            f"the log {new.log_id} at size {new.tree_size} contains, unchanged, all "
            f"{old.tree_size} measurements of the older tree head",
        )
    return result


def parse_consistency_proof(obj: Any, first: int, second: int) -> list[bytes]:
    if not isinstance(obj, dict) or not isinstance(obj.get("proof"), list):
        raise ProofFormatError("a consistency proof must be an object with a 'proof' array")
    if obj.get("first") != first or obj.get("second") != second:
        raise ProofFormatError(
            f"the proof is for sizes {obj.get('first')} -> {obj.get('second')}, "
            f"not {first} -> {second}"
        )
    try:
        return [bytes.fromhex(h) for h in obj["proof"]]
    except (TypeError, ValueError):
        raise ProofFormatError("the proof's hashes are not hex") from None
