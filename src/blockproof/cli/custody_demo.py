"""The demo's custody chain: signed by a probe key, logged by a collector, verifiable.

What a real deployment does, on loopback and under the demo's work directory:

1. **Keys.** One Ed25519 probe key per network, in ``WORKDIR/custody/keys/AS<asn>/``
   (``custody.keys``; never the user's own key, whose directory is not consulted).
   The lab's measurements are signed by the key of the lab's network (PTCL).
2. **Spool.** Each signed measurement is written to ``WORKDIR/custody/spool/`` first
   (``probe.sink``, ``probe.spool``), as the probe does.
3. **A share of the campaign.** One simulated run in ``SHARE_EVERY`` on each network
   (every ``SHARE_EVERY``-th by start time, so the same runs every time) is signed by
   its network's key, at most one run per network and hour: the hourly cells count a
   probe once per hour and a signed measurement's probe is its key, so two signed
   runs in one hour would count as one probe and change the cells. With one run per
   network and hour, the cells and events are exactly those of the unsigned campaign;
   only the events' distinct-probe counts are smaller (one key stands for many runs'
   report ids).
4. **Collector.** ``blockproof serve collector``'s application, run in this process
   on 127.0.0.1 (a free port) over ``WORKDIR/custody/collector/``, which persists so
   that a rerun adds to the same log. ``probe.upload`` sends the spool and checks
   every receipt against the collector's log key before marking anything uploaded.
5. **Export.** ``collector.export`` writes the log as OONI-layout daily files with
   receipts under ``WORKDIR/custody/export/``; the campaign's days of it are what the
   demo ingests, before the simulated file, so that the signed copy of each shared
   measurement is the one stored (the unsigned twin in the simulated file is then a
   duplicate). The lab's own measurements carry today's date and stay out of the
   2024 store: they would extend its data to today and become part of the 2024 block.

Nothing here prints; the demo (``cli.campaign_demo``) reports the counts and the
``blockproof verify`` command that checks one measurement of the evidence report.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from blockproof.custody.keys import ProbeKey, load_or_create_key
from blockproof.errors import EXIT_FAILED, BlockproofError
from blockproof.probe.spool import Spool

if TYPE_CHECKING:
    from blockproof.model.measurement import Measurement

CUSTODY = "custody"
SHARE_EVERY = 40  # one simulated run in this many, on each network, goes through the collector
SHARE_MARKER = "campaign-share.json"
START_TIMEOUT = 30.0


class CustodyError(BlockproofError):
    """The demo's collector did not start or an upload failed."""

    exit_code = EXIT_FAILED


@dataclass(slots=True)
class Share:
    """The simulated runs chosen for the custody chain: their lines' indexes."""

    lines: list[int] = field(default_factory=list)
    runs: int = 0


def pick_share(lines: Iterable[bytes], every: int = SHARE_EVERY) -> Share:
    """Every ``every``-th run (report id) of each network, in order of start time, the
    first included, at most one run per network and hour (see the module docstring).
    Lines that are not measurements are skipped."""
    by_run: dict[str, list[tuple[int, str, str]]] = {}
    for i, line in enumerate(lines):
        try:
            obj = orjson.loads(line)
            report_id = obj["report_id"]
            asn, start = str(obj["probe_asn"]), str(obj["measurement_start_time"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        if not isinstance(report_id, str):
            continue
        by_run.setdefault(report_id, []).append((i, asn, start))
    per_network: dict[str, list[tuple[str, str]]] = {}
    for report_id, members in by_run.items():
        first = min(start for _, _, start in members)
        per_network.setdefault(members[0][1], []).append((first, report_id))
    taken: set[tuple[str, str]] = set()
    share = Share()
    for runs in per_network.values():
        for n, (_, report_id) in enumerate(sorted(runs)):
            if n % every:
                continue
            members = by_run[report_id]
            cells = {(asn, start[:13]) for _, asn, start in members}  # YYYY-MM-DD HH
            if cells & taken:
                continue
            taken |= cells
            share.lines.extend(i for i, _, _ in members)
            share.runs += 1
    share.lines.sort()
    return share


@dataclass(slots=True)
class Custody:
    """The demo's custody directory (see the module docstring)."""

    root: Path

    @classmethod
    def under(cls, workdir: Path) -> Custody:
        return cls(workdir / CUSTODY)

    @property
    def spool(self) -> Spool:
        return Spool(self.root / "spool")

    @property
    def collector_dir(self) -> Path:
        return self.root / "collector"

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    def key(self, asn: int | str) -> ProbeKey:
        """The demo probe's key on network ``asn`` (created on first use)."""
        number = str(asn).upper().removeprefix("AS")
        return load_or_create_key(self.root / "keys" / f"AS{int(number)}")

    def add_lab(self, measurements: Iterable[Measurement]) -> int:
        """Sign the lab's measurements with the key of their network and spool them, as
        the probe does (``probe.sink``); returns how many."""
        from blockproof.probe.sink import Sink

        count = 0
        for m in measurements:
            Sink(self.spool, self.key(m.probe_asn))(m)
            count += 1
        return count

    def add(self, measurement: dict[str, Any]) -> None:
        """Sign ``measurement`` with its network's key and spool it (idempotent)."""
        from blockproof.codec.jcs import canonicalize
        from blockproof.custody.signing import sign_measurement

        key = self.key(measurement["probe_asn"])
        canonical = canonicalize(sign_measurement(measurement, key.private_key))
        self.spool.add(canonical, str(measurement["measurement_start_time"]))

    def share_campaign(self, simulated: Path) -> int | None:
        """Sign and spool the campaign's share, once (None: done by an earlier run);
        returns how many measurements."""
        import gzip

        marker = self.root / SHARE_MARKER
        if marker.exists():
            return None
        with gzip.open(simulated, "rb") as handle:
            lines = handle.read().splitlines()
        share = pick_share(lines)
        for i in share.lines:
            self.add(orjson.loads(lines[i]))
        self.root.mkdir(parents=True, exist_ok=True)
        marker.write_bytes(
            orjson.dumps({"source": simulated.name, "runs": share.runs, "lines": len(share.lines)})
        )
        return len(share.lines)

    def log_id(self) -> str:
        """The collector's log key id (the key is made here if the collector has none
        yet, as the collector itself would on first start)."""
        from blockproof.collector.service import KEY_DIR, LOG_KEY_FILE

        return load_or_create_key(self.collector_dir / KEY_DIR, filename=LOG_KEY_FILE).key_id

    def upload(self) -> tuple[int, int]:
        """Start the collector, upload what is pending, stop it: (accepted, duplicates)."""
        from blockproof.loop import run_event_loop
        from blockproof.probe.upload import upload

        if not self.spool.pending():
            return 0, 0
        log_id = self.log_id()
        with collector_on_loopback(self.collector_dir) as url:
            report = run_event_loop(upload(self.spool, url, log_id=log_id))
        if not report.ok:
            raise CustodyError(
                f"the demo's upload left {report.failed + report.rejected} measurements "
                f"behind: {'; '.join(report.errors[:3])}"
            )
        return report.accepted, report.duplicates

    def export(self) -> None:
        from blockproof.collector.export import export

        export(self.collector_dir, self.export_dir)

    def days(self, first: str, last: str) -> list[Path]:
        """The export's day directories from ``first`` to ``last`` (``YYYYMMDD``)."""
        if not self.export_dir.is_dir():
            return []
        return sorted(
            d
            for d in self.export_dir.iterdir()
            if d.is_dir() and d.name.isdigit() and first <= d.name <= last
        )

    def spooled(self, sha256: str, measurement_start_time: str) -> Path | None:
        """The uploaded spool file of the measurement with these bytes, if any."""
        try:
            stamp = datetime.strptime(measurement_start_time[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        path = self.spool.root / "uploaded" / f"{stamp:%Y%m%dT%H%M%SZ}-{sha256[:12]}.json"
        return path if path.exists() else None

    def verify_command(self, path: Path) -> str:
        """The command that checks a spooled measurement's signature and receipt."""
        receipt = path.with_name(path.name.removesuffix(".json") + ".receipt.json")
        return (
            f"blockproof verify {shlex.quote(str(path))} --receipt {shlex.quote(str(receipt))} "
            f"--log-id {self.log_id()}"
        )


@contextlib.contextmanager
def collector_on_loopback(data_dir: Path) -> Iterator[str]:
    """The collector's ASGI application served by uvicorn on 127.0.0.1 (a free port), in a
    thread of this process, holding the data directory's lock; yields its URL."""
    import uvicorn

    from blockproof.collector.app import CollectorApp
    from blockproof.collector.service import data_dir_lock
    from blockproof.ratelimit import RateLimit

    lock = data_dir_lock(data_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        app = CollectorApp(data_dir, rate_limit=RateLimit(rate=0, burst=0))  # one client: us
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="demo-collector", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise CustodyError(f"the demo's collector over {data_dir} did not start")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise CustodyError(f"the demo's collector did not start in {START_TIMEOUT:.0f} s")
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(START_TIMEOUT)
    finally:
        sock.close()
        os.close(lock)
