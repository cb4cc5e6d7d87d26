"""The probe's commands: run, watch, and the evidence they leave (upload, list, show, rm, verify).

Glue only: parse options, build what measures (the real network, or a lab scenario the
command line injects), call the probe, print.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from blockproof.cli.base import EPILOG, line_writer, run_async, show_table
from blockproof.cli.options import (
    COLLECTOR_ENV,
    collector_option,
    control_option,
    list_option,
    network_options,
    parse_duration,
    platform_option,
    spool_option,
)
from blockproof.errors import EXIT_FAILED, InputError
from blockproof.loop import run_event_loop
from blockproof.model.measurement import Measurement

if TYPE_CHECKING:
    from blockproof.probe.measure import Measure
    from blockproof.probe.runner import FollowUp


def measurer(
    targets: list[str],
    *,
    lab_scenario: str | None,
    control: str | None,
    cc: str,
    asn: str,
    hide_asn: bool,
    resolver: str | None = "8.8.8.8:53",
    ca_file: str | None = None,
    concurrency: int = 8,
    follow_up: FollowUp | None = None,
) -> Measure:
    """What measures ``targets``: the real network, or the lab scenario ``--lab`` names."""
    from blockproof.probe import measure

    if lab_scenario is None:
        return measure.measurer(
            targets, control=control, cc=cc, asn=asn, hide_asn=hide_asn, resolver=resolver,
            ca_file=ca_file, concurrency=concurrency, follow_up=follow_up,
        )  # fmt: skip
    from blockproof.lab import load_scenario
    from blockproof.lab.check import resolve_scenario_path
    from blockproof.lab.run import run_scenario

    measure.check_network(cc, asn)
    scenario = load_scenario(resolve_scenario_path(lab_scenario))

    async def in_lab(on_result: measure.OnResult) -> list[Measurement]:
        return await run_scenario(
            scenario, targets or None, concurrency=concurrency, on_result=on_result,
            hide_asn=hide_asn, follow_up=follow_up,
        )  # fmt: skip

    return in_lab


@click.command("run", epilog=EPILOG)
@click.argument("urls", nargs=-1)
@platform_option("Measure every endpoint of a platform (x, youtube, facebook, ...); repeatable.")
@list_option
@control_option
@click.option(
    "--resolver",
    default="8.8.8.8:53",
    show_default=True,
    metavar="IP:PORT",
    help="DNS-over-UDP resolver also asked (injected replies are recorded). '' to skip.",
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="Trust this CA PEM.")
@click.option("--json", "as_json", is_flag=True, help="Print measurements as JSON lines on stdout.")
@click.option("--output", type=click.File("w"), help="Also write measurements (JSONL) here.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@network_options
@click.option(
    "--via",
    "vias",
    multiple=True,
    metavar="URL",
    help="Also try each blocked URL through this proxy: socks5://HOST:PORT or "
    "http://HOST:PORT (how VPN and Tor clients are exposed locally); repeatable.",
)
@click.option(
    "--bypass/--no-bypass",
    default=True,
    show_default=True,
    help="Try each blocked URL again with DNS over HTTPS and with a fragmented "
    "ClientHello, and record which restores access (x_circumvention).",
)
@click.option(
    "--throttling/--no-throttling",
    default=True,
    show_default=True,
    help="With --platform: time the media, video and static endpoints that load, with "
    "their SNI and with an innocuous one, to detect throttling (x_throttling).",
)
@spool_option
@collector_option
@click.option("--no-upload", is_flag=True, help="Keep measurements in the spool only.")
def run_cmd(
    urls: tuple[str, ...],
    platforms: tuple[str, ...],
    list_file: Path | None,
    control: str | None,
    resolver: str,
    ca_file: str | None,
    as_json: bool,
    output: IO[str] | None,
    concurrency: int,
    cc: str,
    asn: str,
    hide_asn: bool,
    lab_scenario: str | None,
    spool_dir: Path | None,
    collector: str | None,
    no_upload: bool,
    vias: tuple[str, ...] = (),
    bypass: bool = True,
    throttling: bool = True,
) -> None:
    """Measure URLs step by step (DNS, TCP, TLS, HTTP) and say whether and how each is blocked.

    Then, for each blocked URL, which bypasses restore access (DNS over HTTPS, a
    fragmented ClientHello, each --via proxy), and with --platform, whether the
    endpoints that load (media, video, static) are throttled: the same download
    with the site's SNI and with an innocuous one, on the same address.

    Every measurement is signed with this probe's key (created on first run) and
    written to the local spool before anything else; then, if a collector is
    configured (--collector or BLOCKPROOF_COLLECTOR) and --no-upload is not
    given, pending measurements are uploaded. Exits 1 if an upload failed.

    Never records your IP address: measurements carry country and network only.
    """
    from blockproof.cli.console import progress_bar
    from blockproof.custody.keys import load_or_create_key
    from blockproof.netx.proxy import parse_proxy
    from blockproof.probe.followups import FollowUps, throttling_targets
    from blockproof.probe.measure import targets_for
    from blockproof.probe.sink import Sink

    targets = targets_for(urls, platforms, list_file, allow_empty=lab_scenario is not None)
    follow_up = FollowUps(
        bypass=bypass,
        vias=tuple(parse_proxy(v) for v in vias),
        throttling_urls=throttling_targets(platforms) if throttling else frozenset(),
    )
    measure = measurer(
        targets,
        control=control,
        cc=cc,
        asn=asn,
        hide_asn=hide_asn,
        lab_scenario=lab_scenario,
        resolver=resolver,
        ca_file=ca_file,
        concurrency=concurrency,
        follow_up=follow_up,
    )
    spool = open_spool(spool_dir)
    sink = Sink(spool, load_or_create_key(), also=[line_writer(as_json, output)])

    def done(m: Measurement) -> None:
        sink(m)
        bar.advance(bar.task_ids[0])

    with progress_bar(len(targets) or None, "measuring") as bar:
        measurements = run_async(measure(done))
    show_table(measurements, f"lab scenario {lab_scenario}" if lab_scenario else "web_connectivity")
    from blockproof.cli.console import function_table, stderr
    from blockproof.platforms import profiles
    from blockproof.probe.functions import by_function

    for pid in dict.fromkeys(p.lower() for p in platforms):
        platform = profiles()[pid]
        stderr.print(function_table(platform.name, by_function(platform, measurements)))

    stderr.print(f"{len(sink.entries)} measurements signed and spooled in {spool.root}")
    if collector and not no_upload and not run_upload(spool, collector):
        sys.exit(EXIT_FAILED)


def open_spool(spool_dir: Path | None) -> Any:
    from blockproof.probe.spool import Spool

    return Spool(spool_dir)


def run_upload(spool: Any, collector: str, *, log_id: str | None = None, attempts: int = 5) -> bool:
    """Upload pending measurements with a progress bar; print a summary; True if all went."""
    from rich.markup import escape

    from blockproof.cli.console import progress_bar, stderr
    from blockproof.probe.upload import RetryPolicy, upload

    pending = len(spool.pending())
    if not pending:
        stderr.print("upload: nothing pending")
        return True
    with progress_bar(pending, "uploading") as bar:
        report = run_event_loop(
            upload(
                spool,
                collector,
                log_id=log_id,
                policy=RetryPolicy(attempts=attempts),
                on_progress=lambda n: bar.advance(bar.task_ids[0], n),
            )
        )
    stderr.print(
        f"upload to {collector}: {report.accepted} accepted, {report.duplicates} already there, "
        f"{report.rejected} rejected, {report.failed} still pending",
        soft_wrap=True,
    )
    for error in report.errors[:20]:
        stderr.print(f"  [red]{escape(error)}[/]", soft_wrap=True)
    if len(report.errors) > 20:
        stderr.print(f"  ... and {len(report.errors) - 20} more")
    return bool(report.ok)


@click.command("upload")
@spool_option
@collector_option
@click.option("--log-id", metavar="KEY_ID", help="Require the collector's log to have this key id.")
@click.option(
    "--attempts",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="Tries per batch (exponential backoff with jitter between them).",
)
def upload_cmd(
    spool_dir: Path | None, collector: str | None, log_id: str | None, attempts: int
) -> None:
    """Send pending measurements to the collector; resumable and idempotent.

    Each receipt (inclusion proof and signed tree head) is verified before a
    measurement is marked uploaded. Exits 1 if anything is still pending.
    """
    if not collector:
        raise InputError(f"no collector: give --collector URL or set {COLLECTOR_ENV}")
    if not run_upload(open_spool(spool_dir), collector, log_id=log_id, attempts=attempts):
        sys.exit(EXIT_FAILED)


def _parse_since(text: str) -> datetime:
    try:
        day = datetime.fromisoformat(text)
    except ValueError:
        return datetime.now(UTC) - parse_duration(text)
    return day if day.tzinfo else day.replace(tzinfo=UTC)


def _summary(entry: Any) -> dict[str, Any]:
    obj = entry.measurement()
    tk = obj.get("test_keys") or {}
    verdict = tk.get("x_verdict") or {}
    receipt = entry.sidecar_json() if entry.state == "uploaded" else None
    return {
        "id": entry.id,
        "state": entry.state,
        "test_name": obj.get("test_name"),
        "input": obj.get("input"),
        "measurement_start_time": obj.get("measurement_start_time"),
        "probe_cc": obj.get("probe_cc"),
        "probe_asn": obj.get("probe_asn"),
        "blocking": tk.get("blocking"),
        "method": verdict.get("method"),
        "measurement_uid": receipt.get("measurement_uid") if receipt else None,
    }


@click.command("list")
@spool_option
@click.option("--since", metavar="WHEN", help="Only newer: a date (2024-02-17) or an age (7d).")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=50,
    show_default=True,
    help="Show the newest N (0: all).",
)
@click.option("--state", type=click.Choice(["pending", "uploaded", "rejected"]), multiple=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout.")
def list_cmd(
    spool_dir: Path | None, since: str | None, limit: int, state: tuple[str, ...], as_json: bool
) -> None:
    """List the spool's measurements, newest last."""
    from rich.table import Table

    from blockproof.cli.console import stderr

    spool = open_spool(spool_dir)
    entries = spool.entries(tuple(state) or ("pending", "uploaded", "rejected"))
    if since:
        cutoff = _parse_since(since)
        entries = [e for e in entries if e.time >= cutoff]
    if limit:
        entries = entries[-limit:]
    rows = [_summary(e) for e in entries]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"spool {spool.root}", title_justify="left")
    columns = ("id", "state", "input", "blocking", "method", "measurement_uid")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) if row[c] is not None else "" for c in columns))
    stderr.print(table)
    counts = {s: len(spool.entries((s,))) for s in ("pending", "uploaded", "rejected")}
    stderr.print(", ".join(f"{n} {s}" for s, n in counts.items()))


@click.command("show")
@spool_option
@click.argument("ref")
def show_cmd(spool_dir: Path | None, ref: str) -> None:
    """Print a measurement (by spool id, id prefix or collector uid) and its receipt as JSON."""
    entry = open_spool(spool_dir).find(ref)
    answer = {
        "id": entry.id,
        "state": entry.state,
        "path": str(entry.path),
        "measurement": entry.measurement(),
        "receipt" if entry.state != "rejected" else "rejection": entry.sidecar_json(),
    }
    click.echo(json.dumps(answer, indent=1, ensure_ascii=False))


@click.command("rm")
@spool_option
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Remove measurements older than this (e.g. 30d).",
)
@click.option(
    "--include-pending",
    is_flag=True,
    help="Also remove measurements never uploaded (they are lost for good).",
)
@click.option("--yes", is_flag=True, help="Do it (without --yes, only say what would go).")
def rm_cmd(spool_dir: Path | None, older_than: str, include_pending: bool, yes: bool) -> None:
    """Remove old measurements from the spool (uploaded and rejected ones by default)."""
    from blockproof.cli.console import stderr

    spool = open_spool(spool_dir)
    cutoff = datetime.now(UTC) - parse_duration(older_than)
    states = ("uploaded", "rejected", "pending") if include_pending else ("uploaded", "rejected")
    doomed = [e for e in spool.entries(states) if e.time < cutoff]
    if not yes:
        stderr.print(
            f"would remove {len(doomed)} measurements older than {older_than}; "
            "add --yes to remove them"
        )
        return
    for entry in doomed:
        spool.remove(entry)
    stderr.print(f"removed {len(doomed)} measurements older than {older_than}")


@click.command("verify")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--receipt",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The receipt [default: FILE's .receipt.json beside it].",
)
@click.option("--log-id", metavar="KEY_ID", help="Require tree heads signed by this log key.")
@click.option("--allow-unsigned", is_flag=True, help="Accept measurements without a signature.")
@click.option(
    "--consistency",
    is_flag=True,
    help="FILES are an OLD and a NEW tree head (or receipts): check NEW extends OLD.",
)
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --consistency: the consistency proof (else fetched from --collector).",
)
@collector_option
@click.option("--json", "as_json", is_flag=True, help="One JSON line per file on stdout.")
def verify_cmd(
    files: tuple[Path, ...],
    receipt: Path | None,
    log_id: str | None,
    allow_unsigned: bool,
    consistency: bool,
    proof_file: Path | None,
    collector: str | None,
    as_json: bool,
) -> None:
    """Check evidence offline: a measurement's signature and its inclusion in the log.

    \b
    blockproof verify MEASUREMENT.json [--receipt R.json]
        the probe's signature is valid and the content unchanged; the receipt's
        inclusion proof leads to a root that the collector signed.
    blockproof verify --consistency OLD.json NEW.json [--proof P.json]
        the newer tree head extends the older one: nothing logged was removed
        or rewritten in between.

    Exits 0 if every check passes, 1 otherwise.
    """
    from blockproof.custody.proofs import ProofFormatError
    from blockproof.custody.verify import Verification, verify_measurement_file

    if not files:
        raise InputError("give a measurement file (or --consistency OLD NEW)")
    results: list[Verification] = []
    if consistency:
        try:
            results.append(_consistency(files, proof_file, collector, log_id))
        except ProofFormatError as exc:
            failed = Verification("consistency")
            failed.add("consistency", False, str(exc))
            results.append(failed)
    else:
        if receipt is not None and len(files) > 1:
            raise InputError("--receipt goes with a single measurement file")
        for path in files:
            results.append(
                verify_measurement_file(path, receipt, log_id=log_id, allow_unsigned=allow_unsigned)
            )
    _print_verifications(results, as_json)
    if not all(r.ok for r in results):
        sys.exit(EXIT_FAILED)


def _consistency(
    files: tuple[Path, ...], proof_file: Path | None, collector: str | None, log_id: str | None
) -> Any:
    from blockproof.custody.verify import (
        _read_json,
        check_consistency,
        load_tree_head,
        parse_consistency_proof,
    )

    if len(files) != 2:
        raise InputError("--consistency takes two files: the OLD and the NEW tree head")
    old, new = load_tree_head(files[0]), load_tree_head(files[1])
    if proof_file is not None:
        proof_obj = _read_json(proof_file, "consistency proof")
    elif old.tree_size in (0, new.tree_size):
        proof_obj = {"first": old.tree_size, "second": new.tree_size, "proof": []}
    elif collector:
        import httpx

        url = collector.rstrip("/") + "/log/consistency"
        try:
            response = httpx.get(
                url, params={"first": old.tree_size, "second": new.tree_size}, timeout=30
            )
        except httpx.HTTPError as exc:
            raise InputError(f"cannot fetch the consistency proof from {url}: {exc}") from exc
        if response.status_code != 200:
            raise InputError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
        proof_obj = response.json()
    else:
        raise InputError("give --proof FILE, or --collector URL to fetch the proof")
    proof = parse_consistency_proof(proof_obj, old.tree_size, new.tree_size)
    return check_consistency(old, new, proof, log_id=log_id)


def _print_verifications(results: list[Any], as_json: bool) -> None:
    from blockproof.cli.console import stderr

    for result in results:
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
            continue
        verdict = "[green]VERIFIED[/]" if result.ok else "[red]FAILED[/]"
        stderr.print(f"{verdict} {result.subject}")
        for check in result.checks:
            mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
            stderr.print(f"  {mark} {check.name}: {check.message}", soft_wrap=True)


@click.command("watch")
@click.argument("urls", nargs=-1)
@platform_option("Measure this platform's endpoints (e.g. x, youtube); repeatable.")
@click.option(
    "--every",
    default="30m",
    show_default=True,
    metavar="PERIOD",
    help="Time between rounds: 30m, 1h, 6h...",
)
@click.option("--rounds", type=click.IntRange(1), help="Stop after N rounds [default: never].")
@control_option
@network_options
@spool_option
@collector_option
def watch_cmd(
    urls: tuple[str, ...],
    platforms: tuple[str, ...],
    every: str,
    rounds: int | None,
    control: str | None,
    cc: str,
    asn: str,
    hide_asn: bool,
    lab_scenario: str | None,
    spool_dir: Path | None,
    collector: str | None,
) -> None:
    """Measure on a schedule (for volunteers' always-on machines), spool and upload.

    One line per round on stderr. Survives network loss (measurements wait in
    the spool) and restarts. See docs/collector.md for a systemd unit.
    """
    from blockproof.cli.console import stderr
    from blockproof.probe.measure import targets_for
    from blockproof.probe.sink import Sink
    from blockproof.probe.upload import RetryPolicy
    from blockproof.probe.watch import Schedule, watch

    targets = targets_for(urls, platforms, None, allow_empty=lab_scenario is not None)
    period = parse_duration(every).total_seconds()
    if period < 1:
        raise InputError("--every must be at least 1s")
    measure = measurer(
        targets, control=control, cc=cc, asn=asn, hide_asn=hide_asn, lab_scenario=lab_scenario
    )
    sink = Sink(open_spool(spool_dir), _probe_key())
    stderr.print(
        f"watching {len(targets) or 'the scenario'} URLs every {every}"
        + (f", uploading to {collector}" if collector else ", no collector (spool only)")
    )
    try:
        run_event_loop(
            watch(
                measure,
                sink,
                Schedule(period, rounds=rounds),
                collector=collector,
                # the next round retries anyway: do not spend the period waiting
                policy=RetryPolicy(attempts=2, max_delay=min(60.0, period / 4)),
                log=lambda line: print(line, file=sys.stderr, flush=True),
            )
        )
    except KeyboardInterrupt:
        stderr.print("stopped")


def _probe_key() -> Any:
    from blockproof.custody.keys import load_or_create_key

    return load_or_create_key()


COMMANDS = (run_cmd, upload_cmd, list_cmd, show_cmd, rm_cmd, verify_cmd, watch_cmd)


def register(main: click.Group, serve: click.Group) -> None:
    for command in COMMANDS:
        main.add_command(command)
