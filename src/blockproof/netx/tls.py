"""TLS handshake shell: an explicit SNI, independent of the IP we dialed.

Verification is against the system store or a given CA file; the certificate
must be valid for the SNI. The record keeps version, cipher, ALPN and the peer
chain (DER), also when verification fails (so a MITM certificate is evidence).
"""

from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache

from blockproof.model.observations import TLSHandshake
from blockproof.netx.failures import classify, unexpected_failure
from blockproof.netx.stream import TCPStream, TLSStream, peer_certificates
from blockproof.netx.trace import Recorder

ALPN = ["http/1.1"]


@lru_cache(maxsize=8)
def client_context(ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """A client context: system store (or ``ca_file``), TLS >= 1.2, HTTP/1.1 ALPN."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(ALPN)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def tls_handshake(
    recorder: Recorder,
    tcp: TCPStream,
    server_name: str,
    *,
    timeout: float,
    ca_file: str | None = None,
    verify: bool = True,
    first_flight_splits: int = 1,
    tags: tuple[str, ...] = (),
    transaction_id: int = 0,
    record: bool = True,
) -> tuple[TLSHandshake, TLSStream | None]:
    t0 = recorder.now()
    if record:
        recorder.event(
            "tls_handshake_start",
            t0=t0,
            address=tcp.address,
            tags=tags,
            transaction_id=transaction_id,
        )
    failure: str | None = None
    stream: TLSStream | None = None
    try:
        stream = TLSStream(
            tcp,
            client_context(ca_file, verify),
            server_name,
            first_flight_splits=first_flight_splits,
        )
        async with asyncio.timeout(timeout):
            await stream.handshake()
    except (OSError, TimeoutError, ssl.SSLError, EOFError) as exc:
        failure = classify(exc)
    except Exception as exc:  # a bug or an error nobody expected: this step's failure
        failure = unexpected_failure(exc)
    sslobj = stream.sslobj if stream is not None else None  # its certificates even if failed
    done = sslobj if failure is None else None
    cipher = done.cipher() if done is not None else None
    result = TLSHandshake(
        address=tcp.address,
        server_name=server_name,
        failure=failure,
        tls_version=(done.version() or "") if done is not None else "",
        cipher_suite=cipher[0] if cipher else "",
        negotiated_protocol=(done.selected_alpn_protocol() or "") if done is not None else "",
        no_tls_verify=not verify,
        peer_certificates=peer_certificates(sslobj) if sslobj is not None else (),
        t0=t0,
        t=recorder.now(),
        tags=tags,
        transaction_id=transaction_id,
    )
    if record:
        recorder.event(
            "tls_handshake_done",
            t0=t0,
            address=tcp.address,
            failure=failure,
            tags=tags,
            transaction_id=transaction_id,
        )
        recorder.trace.tls_handshakes.append(result)
    if failure is not None or stream is None:
        tcp.close()
        return result, None
    return result, stream
