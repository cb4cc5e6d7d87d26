"""A real S3-compatible server on loopback for the tests: moto's server mode.

``ThreadedMotoServer`` on 127.0.0.1 and a free port gives real HTTP, real S3 listings
(delimiters, pages) and real ETags. ``public_bucket`` makes a bucket readable by anyone,
as OONI's ``ooni-data-eu-fra`` is, so that ``fetch ooni`` reads it with anonymous,
unsigned requests; ``admin`` is the signed client the tests fill it with.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
