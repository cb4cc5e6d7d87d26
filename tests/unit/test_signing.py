"""Measurement signatures (custody.signing) and the probe's key on disk (custody.keys).

A signature covers the RFC 8785 canonical form of the measurement minus
``x_signature``, after a domain-separation prefix: any JSON spelling of the
signed measurement verifies, and any change to its content does not, with a
reason a person can act on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blockproof.codec.jcs import CanonicalizationError, canonicalize
from blockproof.custody import keys
from blockproof.custody.keys import KEY_FILE, config_dir, load_or_create_key
from blockproof.custody.signing import (
    SIGNING_CONTEXT,
    NotAnObjectError,
    SignatureStatus,
    check_and_canonicalize,
    key_id,
    public_key_raw,
    sign_measurement,
    signing_message,
    unsigned_canonical,
    verify_measurement,
)
from blockproof.errors import ConfigError

# RFC 8032 §7.1, test 1: a fixed key, so that the signatures below are fixed too
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
KEY = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

MISMATCH = (
    "the signature does not match the measurement's content (it was altered after signing, "
    "or signed by another key)"
)


def measurement() -> dict[str, Any]:
    return {
        "annotations": {"engine_name": "blockproof"},
        "data_format_version": "0.2.0",
        "input": "https://x.com/",
        "measurement_start_time": "2024-02-17 09:06:17",
        "probe_asn": "AS17557",
        "probe_cc": "PK",
        "probe_ip": "127.0.0.1",
        "probe_network_name": "Pakistan Telecommunication Company Limited",
        "report_id": "20240217T090617Z_webconnectivity_PK_17557_n1_abcdefgh12345678",
        "software_name": "blockproof",
        "software_version": "0.1.0",
        "test_keys": {
            "accessible": False,
            "blocking": "dns",
            "body_proportion": 1.0,
            "queries": [{"answers": [{"ipv4": "10.0.0.1"}], "t": 0.0123}],
            "requests": [{"failure": "connection_reset", "t": 1.5e-6}],
        },
        "test_name": "web_connectivity",
        "test_runtime": 2.5,
    }


# ----------------------------------------------------------------- key ids and messages


def test_key_id_is_32_hex_digits_of_the_sha256_of_the_raw_public_key() -> None:
    assert key_id(bytes(32)) == "66687aadf862bd776c8fc18b8e9f8e20"
    assert key_id(RFC8032_PUBLIC) == hashlib.sha256(RFC8032_PUBLIC).hexdigest()[:32]
    assert public_key_raw(KEY) == RFC8032_PUBLIC


def test_the_signed_message_is_the_prefix_and_the_canonical_unsigned_part() -> None:
    signed = sign_measurement({"b": 1.0, "a": "é"}, KEY)
    public = base64.b64encode(RFC8032_PUBLIC).decode()
    message = (
        b'blockproof-measurement-v1\n{"a":"\xc3\xa9","b":1,"x_key_id":"'
        + key_id(RFC8032_PUBLIC).encode()
        + b'","x_public_key":"'
        + public.encode()
        + b'"}'
    )
    assert SIGNING_CONTEXT == b"blockproof-measurement-v1\n"
    assert signing_message(b"{}") == SIGNING_CONTEXT + b"{}"
    assert signed["x_signature"] == base64.b64encode(KEY.sign(message)).decode()
    assert signed["x_public_key"] == public
    assert signed["x_key_id"] == key_id(RFC8032_PUBLIC)


# ----------------------------------------------------------------- sign and verify


def test_sign_then_verify_is_valid() -> None:
    original = measurement()
    signed = sign_measurement(original, KEY)
    assert original == measurement()  # the input is not modified
    assert set(signed) - set(original) == {"x_key_id", "x_public_key", "x_signature"}
    assert len(base64.b64decode(signed["x_signature"])) == 64
    check = verify_measurement(signed)
    assert check.status is SignatureStatus.VALID
    assert check.valid
    assert check.key_id == key_id(RFC8032_PUBLIC)
    assert check.key_id in check.reason


def test_signing_again_replaces_the_signature() -> None:
    resigned = sign_measurement(sign_measurement(measurement(), OTHER_KEY), KEY)
    assert resigned["x_key_id"] == key_id(RFC8032_PUBLIC)
    assert verify_measurement(resigned).status is SignatureStatus.VALID


def test_an_unsigned_measurement_is_unsigned() -> None:
    check = verify_measurement(measurement())
    assert check.status is SignatureStatus.UNSIGNED
    assert check.key_id is None
    assert "not signed" in check.reason
    _, canonical, check = check_and_canonicalize(json.dumps(measurement()).encode())
    assert check.status is SignatureStatus.UNSIGNED
    assert canonical == canonicalize(measurement())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = m
        for name in parents:
            target = target[name]
        target[last] = value

    return change


def _delete(*names: str) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        for name in names:
            del m[name]

    return change


def _other_keys_signature(m: dict[str, Any]) -> None:
    unsigned = {k: v for k, v in m.items() if k != "x_signature"}
    forged = OTHER_KEY.sign(signing_message(canonicalize(unsigned)))
    m["x_signature"] = base64.b64encode(forged).decode()


def _other_public_key(m: dict[str, Any]) -> None:
    m["x_public_key"] = base64.b64encode(public_key_raw(OTHER_KEY)).decode()


def _other_public_key_and_id(m: dict[str, Any]) -> None:
    _other_public_key(m)
    m["x_key_id"] = key_id(public_key_raw(OTHER_KEY))


def _truncate_signature(m: dict[str, Any]) -> None:
    m["x_signature"] = base64.b64encode(base64.b64decode(m["x_signature"])[:63]).decode()


def _respell_signature(m: dict[str, Any]) -> None:
    # the last character carries 2 unused bits: a second spelling of the same bytes
    text = m["x_signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    m["x_signature"] = text[:-3] + alphabet[alphabet.index(text[-3]) ^ 1] + "=="


TAMPERINGS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("a test_keys value", _set("test_keys.blocking", False), MISMATCH),
    ("a nested value", _set("test_keys.queries", []), MISMATCH),
    ("a float", _set("test_runtime", 2.6), MISMATCH),
    ("probe_cc", _set("probe_cc", "IN"), MISMATCH),
    ("an added key", _set("x_note", "hello"), MISMATCH),
    ("a removed key", _delete("input"), MISMATCH),
    ("another key's signature", _other_keys_signature, MISMATCH),
    ("another public key", _other_public_key, "x_key_id does not match x_public_key"),
    ("another key and its id", _other_public_key_and_id, MISMATCH),
    ("a wrong key id", _set("x_key_id", "0" * 32), "x_key_id does not match x_public_key"),
    ("a key id of a number", _set("x_key_id", 7), "x_key_id does not match x_public_key"),
    ("a truncated signature", _truncate_signature, "x_signature is not base64 of 64 bytes"),
    ("bad base64", _set("x_signature", "not base64!"), "x_signature is not base64 of 64 bytes"),
    ("base64, respelled", _respell_signature, "x_signature is not base64 of 64 bytes"),
    ("a null signature", _set("x_signature", None), "x_signature is not base64 of 64 bytes"),
    ("a short public key", _set("x_public_key", "AAAA"), "x_public_key is not base64 of 32 bytes"),
    (
        "no x_signature",
        _delete("x_signature"),
        "x_key_id and x_public_key present without x_signature",
    ),
    (
        "no x_public_key",
        _delete("x_public_key"),
        "x_key_id and x_signature present without x_public_key",
    ),
    ("no x_key_id", _delete("x_key_id"), "x_public_key and x_signature present without x_key_id"),
    (
        "a public key only",
        _delete("x_key_id", "x_signature"),
        "x_public_key present without x_key_id and x_signature",
    ),
]


@pytest.mark.parametrize(
    ("change", "reason"), [t[1:] for t in TAMPERINGS], ids=[t[0] for t in TAMPERINGS]
)
def test_tampering_is_invalid(change: Callable[[dict[str, Any]], None], reason: str) -> None:
    signed = sign_measurement(measurement(), KEY)
    change(signed)
    check = verify_measurement(signed)
    assert check.status is SignatureStatus.INVALID
    assert check.reason == reason
    # the collector's path, from bytes, says the same
    _, canonical, check = check_and_canonicalize(json.dumps(signed, indent=2).encode())
    assert (check.status, check.reason) == (SignatureStatus.INVALID, reason)
    assert canonical == canonicalize(signed)


def test_content_without_canonical_form_is_invalid_not_an_exception() -> None:
    signed = sign_measurement(measurement(), KEY)
    signed["test_keys"]["t"] = float("nan")
    check = verify_measurement(signed)
    assert check.status is SignatureStatus.INVALID
    assert "no canonical form" in check.reason
    assert "$.test_keys.t" in check.reason


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


@pytest.mark.parametrize(
    "spell",
    [
        lambda m: json.dumps(m),
        lambda m: json.dumps(_reversed(m), indent=4),
        lambda m: json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        lambda m: json.dumps(m, separators=(" , ", " : ")).replace("/", "\\/"),
        lambda m: canonicalize(m).decode(),
    ],
    ids=["plain", "reversed-indented", "sorted-compact", "escaped-slashes-spaced", "canonical"],
)
def test_any_json_spelling_of_a_signed_measurement_verifies(spell: Callable[[Any], str]) -> None:
    signed = sign_measurement(measurement(), KEY)
    parsed, canonical, check = check_and_canonicalize(spell(signed).encode())
    assert check.status is SignatureStatus.VALID, check.reason
    assert canonical == canonicalize(signed)
    assert parsed == signed


def test_non_ascii_content_signs_and_verifies() -> None:
    m = measurement()
    m["probe_network_name"] = "Türk Telekom — İstanbul"
    m["test_keys"]["title"] = "Заблокировано 🚫 \u2028 \U0001f600"
    m["test_keys"]["headers"] = {"\U0001f600": "emoji key", "\ue000": "private use", "ü": "1"}
    signed = sign_measurement(m, KEY)
    assert verify_measurement(signed).status is SignatureStatus.VALID
    for text in (json.dumps(signed), json.dumps(signed, ensure_ascii=False)):
        assert check_and_canonicalize(text.encode())[2].status is SignatureStatus.VALID


def test_the_unsigned_part_is_cut_from_the_canonical_bytes() -> None:
    signed = sign_measurement(measurement(), KEY)
    canonical = canonicalize(signed)
    unsigned = {k: v for k, v in signed.items() if k != "x_signature"}
    assert unsigned_canonical(signed, canonical) == canonicalize(unsigned)
    assert unsigned_canonical(unsigned, canonicalize(unsigned)) == canonicalize(unsigned)
    # a top-level key after x_signature: the general way
    later = {**signed, "x_zzz": 1, "zebra": [1.0]}
    resigned = sign_measurement(later, KEY)
    unsigned_later = {k: v for k, v in resigned.items() if k != "x_signature"}
    assert unsigned_canonical(resigned, canonicalize(resigned)) == canonicalize(unsigned_later)
    assert check_and_canonicalize(canonicalize(resigned))[2].status is SignatureStatus.VALID


@pytest.mark.parametrize("text", [b"[]", b'"x"', b"1", b"null"])
def test_a_measurement_must_be_an_object(text: bytes) -> None:
    with pytest.raises(NotAnObjectError, match="must be a JSON object"):
        check_and_canonicalize(text)
    assert issubclass(NotAnObjectError, ValueError)


@pytest.mark.parametrize("text", [b"{", b'{"a":1,"a":2}', b'{"a":NaN}', b"\xff"])
def test_unacceptable_json_raises_canonicalization_error(text: bytes) -> None:
    with pytest.raises(CanonicalizationError):
        check_and_canonicalize(text)


# ----------------------------------------------------------------- the probe's key on disk


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


@posix_only
def test_first_use_creates_a_private_key_in_a_private_directory(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "blockproof"
    old_umask = os.umask(0)  # a permissive umask must not loosen anything
    try:
        key = load_or_create_key(directory)
    finally:
        os.umask(old_umask)
    assert key.path == directory / KEY_FILE
    assert _mode(directory) == 0o700
    assert _mode(key.path) == 0o600
    assert key.path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in directory.iterdir()] == [KEY_FILE]  # no temporary left
    assert key.key_id == key_id(key.public_key_raw)
    assert public_key_raw(key.private_key) == key.public_key_raw
    assert base64.b64decode(key.public_key_base64) == key.public_key_raw


def test_the_key_is_reused(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path)
    second = load_or_create_key(tmp_path)
    assert first == second
    assert second.key_id == first.key_id
    signed = sign_measurement(measurement(), second.private_key)
    assert verify_measurement(signed).key_id == first.key_id


def test_the_default_directory_is_blockproof_home(tmp_path: Path) -> None:
    # tests/conftest.py points BLOCKPROOF_HOME at a temporary directory
    key = load_or_create_key()
    assert key.path == Path(os.environ["BLOCKPROOF_HOME"]) / KEY_FILE


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"BLOCKPROOF_HOME": "/srv/bp", "XDG_CONFIG_HOME": "/xdg"}, "/srv/bp"),
        ({"XDG_CONFIG_HOME": "/xdg"}, "/xdg/blockproof"),
        ({"XDG_CONFIG_HOME": "relative/ignored"}, "~/.config/blockproof"),
        ({"BLOCKPROOF_HOME": "", "XDG_CONFIG_HOME": ""}, "~/.config/blockproof"),
        ({}, "~/.config/blockproof"),
    ],
)
def test_config_dir(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("BLOCKPROOF_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert config_dir() == Path(expected).expanduser()


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_a_key_open_to_other_users_is_refused(tmp_path: Path, mode: int) -> None:
    key = load_or_create_key(tmp_path)
    key.path.chmod(mode)
    with pytest.raises(ConfigError, match=f"open to other users \\(mode {mode:04o}\\).*chmod 600"):
        load_or_create_key(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an unencrypted PEM"),
        (b"garbage\n", "not an unencrypted PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not an unencrypted"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "is not an Ed25519 key",
        ),
        (
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
            "not an unencrypted PEM",
        ),
    ],
    ids=["empty", "garbage", "bad-base64", "ec-key", "encrypted"],
)
def test_a_malformed_key_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=message):
        load_or_create_key(tmp_path)
    assert path.read_bytes() == content  # never overwritten


def test_a_directory_in_place_of_the_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="probe key"):
        load_or_create_key(tmp_path)


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    directory = tmp_path / "race"
    start = threading.Barrier(8)
    keys: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            keys.append(load_or_create_key(directory).key_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert [p.name for p in directory.iterdir()] == [KEY_FILE]
    assert load_or_create_key(directory).key_id == keys[0]


def test_losing_the_race_reads_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another process creates the key between our "no key yet" and our link
    winner = Ed25519PrivateKey.generate()
    real_link = os.link

    def link_after_the_winner(source: Any, target: Any) -> None:
        _write_key(Path(target), winner)
        real_link(source, target)

    monkeypatch.setattr(keys.os, "link", link_after_the_winner)
    key = load_or_create_key(tmp_path)
    assert key.public_key_raw == public_key_raw(winner)
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


def test_without_hard_links_the_key_is_created_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: Any, target: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(keys.os, "link", no_links)
    key = load_or_create_key(tmp_path)
    assert load_or_create_key(tmp_path).key_id == key.key_id
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]
    if os.name == "posix":
        assert _mode(key.path) == 0o600


def _write_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
