"""S3 clients for ``fetch ooni``: obstore, boto3 and pyarrow's S3 filesystem, side by side.

Usage: python tests/bench/fetch_clients_bench.py [--write docs/ooni-data.md] [--rounds N]

A moto S3 server runs as its own process on 127.0.0.1 (so that the client's CPU time is
measured apart from the server's), with a public bucket laid out like OONI's: 240
hourly folders (10 days of one country and test). Each client, with 8 threads:

- **list**: lists the 240 folders one by one with the ``/`` delimiter (what fetch does);
- **small**: downloads 300 objects of 64 kB (OONI's hourly files of one country are
  often this small);
- **large**: downloads 48 objects of 8 MB.

Wall time and the client process's CPU time (user + system, all threads), medians of
``--rounds`` interleaved rounds. The server (moto, Python) bounds the wall times on
loopback; against AWS the round trip does, and the client's CPU time is what is left
to compare. pyarrow lists without ETags (so fetch could not check a download against
the listing) and needs ``allow_not_found`` for empty folders; it is measured anyway.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BEGIN = "<!-- fetch-clients:begin -->"
END = "<!-- fetch-clients:end -->"
BUCKET = "bench-ooni"
JOBS = 8
FOLDERS = [
    f"raw/202402{d:02d}/{h:02d}/PK/webconnectivity/" for d in range(1, 11) for h in range(24)
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto did not start")


def fill(endpoint: str) -> dict[str, list[str]]:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="eu-central-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip
    s3.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    rng = random.Random(1)
    keys: dict[str, list[str]] = {"small": [], "large": []}
    for i in range(300):
        key = FOLDERS[i % len(FOLDERS)] + f"small{i}.jsonl.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=rng.randbytes(64_000), ACL="public-read")
        keys["small"].append(key)
    for i in range(48):
        key = FOLDERS[i] + f"large{i}.jsonl.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=rng.randbytes(8_000_000), ACL="public-read")
        keys["large"].append(key)
    return keys


class Client:
    name = ""

    def list_folder(self, prefix: str) -> int:
        raise NotImplementedError

    def download(self, key: str) -> int:
        raise NotImplementedError


class Obstore(Client):
    name = "obstore"

    def __init__(self, endpoint: str) -> None:
        from blockproof.sources.s3 import ObstoreBucket

        self.bucket = ObstoreBucket(BUCKET, region="eu-central-1", endpoint=endpoint)

    def list_folder(self, prefix: str) -> int:
        return len(self.bucket.list_folder(prefix))

    def download(self, key: str) -> int:
        return sum(len(c) for c in self.bucket.open(key).chunks())


class Boto3(Client):
    name = "boto3"

    def __init__(self, endpoint: str) -> None:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        config = Config(signature_version=UNSIGNED, max_pool_connections=JOBS)
        self.s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="eu-central-1", config=config
        )

    def list_folder(self, prefix: str) -> int:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=prefix, Delimiter="/"
        )
        return sum(len(page.get("Contents", [])) for page in pages)

    def download(self, key: str) -> int:
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        return sum(len(c) for c in body.iter_chunks(1 << 20))


class Pyarrow(Client):
    name = "pyarrow"

    def __init__(self, endpoint: str) -> None:
        import pyarrow.fs as pafs

        self.pafs = pafs
        self.fs = pafs.S3FileSystem(
            anonymous=True, endpoint_override=endpoint, scheme="http", region="eu-central-1"
        )

    def list_folder(self, prefix: str) -> int:
        selector = self.pafs.FileSelector(f"{BUCKET}/{prefix}", allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return sum(1 for i in infos if i.type == self.pafs.FileType.File)

    def download(self, key: str) -> int:
        n = 0
        with self.fs.open_input_stream(f"{BUCKET}/{key}", compression=None) as f:
            while chunk := f.read(1 << 20):
                n += len(chunk)
        return n


def timed(work: Callable[[], int]) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    count = work()
    return time.perf_counter() - wall, time.process_time() - cpu, count


def run(rounds: int) -> dict[str, dict[str, tuple[float, float]]]:
    process, endpoint = start_moto()
    try:
        keys = fill(endpoint)
        clients: list[Client] = [Obstore(endpoint), Boto3(endpoint), Pyarrow(endpoint)]
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for _ in range(rounds):
            for client in clients:
                with ThreadPoolExecutor(JOBS) as pool:
                    tasks: dict[str, Callable[[], int]] = {
                        "list": lambda c=client, p=pool: sum(p.map(c.list_folder, FOLDERS)),
                        "small": lambda c=client, p=pool: sum(p.map(c.download, keys["small"])),
                        "large": lambda c=client, p=pool: sum(p.map(c.download, keys["large"])),
                    }
                    expected = {"list": 348, "small": 300 * 64_000, "large": 48 * 8_000_000}
                    for task, work in tasks.items():
                        wall, cpu, count = timed(work)
                        assert count == expected[task], (client.name, task, count)
                        samples.setdefault(client.name, {}).setdefault(task, []).append((wall, cpu))
        return {
            name: {
                task: (
                    statistics.median(w for w, _ in values),
                    statistics.median(c for _, c in values),
                )
                for task, values in tasks_.items()
            }
            for name, tasks_ in samples.items()
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def table(results: dict[str, dict[str, tuple[float, float]]], rounds: int) -> str:
    import boto3
    import obstore
    import pyarrow

    versions = {"obstore": obstore.__version__, "boto3": boto3.__version__}
    versions["pyarrow"] = pyarrow.__version__
    lines = [
        f"Medians of {rounds} rounds, 8 threads, moto on loopback in its own process; "
        "seconds of wall time / of the client's CPU time:",
        "",
        "| client | list 240 folders | 300 x 64 kB | 48 x 8 MB |",
        "|---|---|---|---|",
    ]
    for name, tasks in results.items():
        cells = [f"{tasks[t][0]:.2f} / {tasks[t][1]:.2f}" for t in ("list", "small", "large")]
        lines.append(f"| {name} {versions[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path, help="replace the table between the markers")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(max(1, min(args.rounds, 20)))
    text = table(results, args.rounds)
    print(json.dumps(results, indent=2) if args.json else text)
    if args.write:
        doc = args.write.read_text()
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        args.write.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


if __name__ == "__main__":
    main()
