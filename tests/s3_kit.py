"""A real S3-compatible server on loopback for the tests: moto's server mode.

``ThreadedMotoServer`` on 127.0.0.1 and a free port gives real HTTP, real S3 listings
(delimiters, pages) and real ETags. ``public_bucket`` makes a bucket readable by anyone,
as OONI's ``ooni-data-eu-fra`` is, so that ``fetch ooni`` reads it with anonymous,
unsigned requests; ``admin`` is the signed client the tests fill it with.
``FaultyProxy``, in front of the server, breaks chosen requests to show the retries.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from moto.server import ThreadedMotoServer

REGION = "eu-central-1"


@contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto server on 127.0.0.1, stopped on exit."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    assert host == "127.0.0.1"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        moto.stop()


def admin(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def public_bucket(endpoint: str) -> str:
    """A new bucket with a public-read policy; its name."""
    name = f"ooni-test-{uuid.uuid4().hex[:12]}"
    s3 = admin(endpoint)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    return name


class FaultyProxy:
    """A loopback HTTP proxy in front of the S3 server that breaks chosen requests.

    ``faults``: what happens to the next object GETs, in order ("503", "reset": the
    connection closed without an answer, "cut": half the body, then closed);
    ``list_faults``: how many listings get a 503 first; ``broken``: key -> a fault
    ("503" or "404") for every GET of that key. Everything else is relayed as is."""

    def __init__(
        self,
        upstream: str,
        faults: list[str] | None = None,
        list_faults: int = 0,
        broken: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.faults = list(faults or [])
        self.list_faults = list_faults
        self.broken = dict(broken or {})
        self.lock = threading.Lock()
        self.injected = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.relay(self)

            def do_HEAD(self) -> None:
                proxy.relay(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def fault_for(self, handler: BaseHTTPRequestHandler) -> str | None:
        parts = urlsplit(handler.path)
        key = unquote(parts.path).split("/", 2)[2] if parts.path.count("/") >= 2 else ""
        with self.lock:
            if handler.command != "GET":
                return None
            if "list-type" in parts.query or not key:
                if self.list_faults:
                    self.list_faults -= 1
                    self.injected += 1
                    return "503"
                return None
            if key in self.broken:
                self.injected += 1
                return self.broken[key]
            if self.faults:
                self.injected += 1
                return self.faults.pop(0)
            return None

    def relay(self, handler: BaseHTTPRequestHandler) -> None:
        fault = self.fault_for(handler)
        if fault == "reset":
            handler.close_connection = True
            return
        if fault in ("503", "404"):
            status, code = (503, "SlowDown") if fault == "503" else (404, "NoSuchKey")
            body = f"<Error><Code>{code}</Code><Message>{fault}</Message></Error>".encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        upstream = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
            upstream.request(handler.command, handler.path, headers=headers)
            response = upstream.getresponse()
            body = response.read(64 << 20)
            handler.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if handler.command == "HEAD":
                return
            if fault == "cut":
                handler.wfile.write(body[: len(body) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                return
            handler.wfile.write(body)
        finally:
            upstream.close()
