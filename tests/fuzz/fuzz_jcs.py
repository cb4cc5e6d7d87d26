"""Fuzz canonical JSON and signatures (codec/jcs.py, custody/signing.py).

Input: any text. The fast path and the reference must both refuse it or both give the
same value and bytes; canonical bytes are their own canonical form; an accepted object,
signed, verifies from any of its spellings tried here, and not once a byte of its
content changes. Seeds: the RFC 8785 examples, the fast path's traps, real samples.
See fuzzkit.py for how to run it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import atheris
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fuzzkit import main

with atheris.instrument_imports(include=["blockproof.codec.jcs", "blockproof.custody.signing"]):
    from blockproof.codec import jcs
    from blockproof.codec.jcs import CanonicalizationError, canonicalize, canonicalize_bytes
    from blockproof.custody.signing import SignatureStatus, check_and_canonicalize, sign_measurement

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
DATA = Path(__file__).resolve().parents[1] / "data"


def test_one_input(data: bytes) -> None:
    try:
        want = jcs._reference_bytes(data)
    except CanonicalizationError:
        try:
            canonicalize_bytes(data)
        except CanonicalizationError:
            return
        raise AssertionError("the fast path accepted what the reference refuses") from None
    value, canonical = canonicalize_bytes(data)
    assert canonical == want[1]
    assert value == want[0]
    assert canonicalize_bytes(canonical) == (value, canonical)
    assert canonicalize(value) == canonical
    if not isinstance(value, dict):
        return
    signed = sign_measurement(value, KEY)
    for text in (
        orjson.dumps(signed),
        json.dumps(signed, indent=1, ensure_ascii=True).encode(),
        canonicalize(signed),
    ):
        assert check_and_canonicalize(text)[2].status is SignatureStatus.VALID
    spelled = canonicalize(signed)
    for at in range(1, len(spelled) - 1, max(1, len(spelled) // 7)):
        changed = spelled[:at] + bytes([spelled[at] ^ 1]) + spelled[at + 1 :]
        try:
            _parsed, again, check = check_and_canonicalize(changed)
        except ValueError:
            continue  # no longer JSON, or no longer an object
        if again != spelled:
            assert check.status is not SignatureStatus.VALID, changed


def seeds() -> list[bytes]:
    found = [
        b'{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],'
        b'"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
        b'{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew","1":"One",'
        b'"\\ud83d\\ude00":"Emoji","\\u0080":"Control","\\u00f6":"Latin Small Letter O"}',
        b'{"a:":1.0,"\\ud83d\\ude00":[5e-6],"\\ue000":":1.0,","k":"1e+16,","v":1e16}',
        b'[[[1.0]],{"a":[{"b":0.0}]},"e-6}",1e-6,-0.0,9007199254740991]',
        b'{"a":1,"a":2}',
        b'{"x_signature":"AAAA","x_key_id":"00","x_public_key":"AAAA"}',
    ]
    for path in sorted(DATA.glob("ooni/fastpath-testdata/*.json"))[:6]:
        found.append(path.read_bytes())
    return found


if __name__ == "__main__":
    main(test_one_input, seeds)
    sys.exit(0)
