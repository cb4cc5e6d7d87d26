"""Pipeline benchmark: ingest against a bare parse and OONI's loader, and analyze at scale.

Run by hand (``make bench`` runs it through tests/bench/test_bench_pipeline.py):

    python tests/bench/pipeline_bench.py --write docs/benchmarks.md

Part 1, ingest. The real OONI web_connectivity samples of tests/data/ooni are
replicated into a corpus of JSON lines (at least ``--corpus-mb`` MB, 10^6 bytes,
in ``--files`` files); every copy gets its own report_id and no measurement_uid,
so every line is a distinct measurement. Every copy holds every sample once:
the corpus has the samples' own mix of sizes. Four contenders read the whole
corpus, each in its own child process, ``--repeat`` interleaved rounds:

  orjson    ``orjson.loads`` of every line, one core: the parsing limit;
  oonidata  OONI's loader, ``oonidata.dataclient.load_measurement`` of every
            parsed line, one core, in its own virtualenv under the work
            directory (oonidata pins old versions); not measured if it cannot
            be installed;
  ingest    ``blockproof.pipeline.ingest.ingest`` into a fresh store, ``--jobs``
            workers: parse, decode, judge, fingerprints, Parquet tables;
  spark     the same with ``engine="spark"`` on ``local[--jobs]``, the session
            started before the clock (the JVM's start-up is not ingest's).

``--keep FILE.json`` puts the parts of an earlier run's ``--json`` results that are
not rerun into the section (the 100M-row analyze takes a while).

Part 2, analyze. A synthetic ``verdicts`` table of ``--rows`` rows (generated
with numpy and pyarrow, written in the store's layout and encodings, zstd) is
read by the analysis' cells query (``engine.cells_table`` on DuckDB: its SQL) and
by two bare DuckDB GROUP BYs over the same files (the hour by ``date_trunc``, the
bar; and by integer arithmetic on the epoch, as the cells query computes it),
interleaved.

Every timing is taken inside its child process (imports and interpreter start-up
excluded); each figure is the median of the rounds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "data" / "ooni"
MB = 1_000_000
GEN_VERSION = 3  # bump when the synthetic verdicts change

# -- part 1: the corpus ----------------------------------------------------------------


def load_samples() -> list[dict[str, Any]]:
    """The real web_connectivity measurements of tests/data/ooni, in a stable order."""
    from blockproof.codec.jsonl import iter_json_objects

    out: list[dict[str, Any]] = []
    for path in sorted(SAMPLES.rglob("*")):
        if not path.is_file() or ".json" not in path.name:
            continue
        for obj in iter_json_objects(str(path), on_error=lambda _error: None):
            if obj.get("test_name") == "web_connectivity":
                obj.pop("measurement_uid", None)
                out.append(obj)
    return out


def make_corpus(directory: Path, target_mb: float, files: int) -> dict[str, Any]:
    """Copies of every sample, each copy with its own report_id, spread over ``files`` files."""
    import orjson

    samples = load_samples()
    if not samples:
        raise SystemExit(f"no web_connectivity samples under {SAMPLES}")
    per_copy = sum(len(orjson.dumps(s)) + 1 for s in samples)
    copies = math.ceil(target_mb * MB / per_copy)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    outs = [open(directory / f"corpus-{i:02d}.jsonl", "wb") for i in range(files)]  # noqa: SIM115
    size = count = 0
    try:
        for copy in range(copies):
            out = outs[copy % files]
            for sample in samples:
                obj = dict(sample)
                obj["report_id"] = f"{sample.get('report_id') or 'report'}_bench{copy:05d}"
                line = orjson.dumps(obj) + b"\n"
                out.write(line)
                size += len(line)
                count += 1
    finally:
        for out in outs:
            out.close()
    return {
        "samples": len(samples),
        "copies": copies,
        "files": files,
        "measurements": count,
        "bytes": size,
        "mean_bytes": size / count,
        "min_bytes": min(len(orjson.dumps(s)) for s in samples),
        "max_bytes": max(len(orjson.dumps(s)) for s in samples),
    }


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(corpus.glob("*.jsonl"))


# -- part 1: the contenders (each runs in a child process) -----------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS since it started. ``ru_maxrss`` is not used for the process
    itself: Linux carries it over from the parent that forked it, across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usage() -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_s": me.ru_utime + me.ru_stime,
        "peak_rss_mb": peak_rss_mb(),
        "children_cpu_s": kids.ru_utime + kids.ru_stime,
        "children_peak_rss_mb": kids.ru_maxrss / 1024,
    }


def child_orjson(corpus: Path) -> dict[str, Any]:
    import orjson

    files = corpus_files(corpus)
    count = 0
    started = time.perf_counter()
    for path in files:
        with open(path, "rb") as f:
            for line in f:
                orjson.loads(line)
                count += 1
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "measurements": count, **_usage()}


OONIDATA_LOOP = """
import json, resource, sys, time
from pathlib import Path
import orjson
from oonidata.dataclient import load_measurement
files = sorted(Path(sys.argv[1]).glob("*.jsonl"))
count = errors = 0
first_error = None
started = time.perf_counter()
for path in files:
    with open(path, "rb") as f:
        for line in f:
            count += 1
            try:
                load_measurement(msmt=orjson.loads(line))
            except Exception as exc:
                errors += 1
                if first_error is None:
                    first_error = type(exc).__name__
seconds = time.perf_counter() - started
me = resource.getrusage(resource.RUSAGE_SELF)
hwm = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")]
print(json.dumps({"seconds": seconds, "measurements": count, "errors": errors,
                  "first_error": first_error, "cpu_s": me.ru_utime + me.ru_stime,
                  "peak_rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else None}))
"""

OONIDATA_VERSION = """
import importlib.metadata as m, json
print(json.dumps({k: m.version(k) for k in ("oonidata", "orjson", "mashumaro")}))
"""


def oonidata_python(work: Path) -> tuple[Path | None, str]:
    """The interpreter of a virtualenv with oonidata (made if missing), or None and why not."""
    venv = work / "oonidata-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import oonidata.dataclient"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, "already installed"
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "oonidata"],
        probe,
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{' '.join(step[1:3])}: {exc}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            return None, f"`{' '.join(Path(a).name for a in step[:4])}` failed: {last}"
    return python, "installed"


def run_oonidata(python: Path, corpus: Path) -> dict[str, Any]:
    out = subprocess.run(
        [str(python), "-c", OONIDATA_LOOP, str(corpus)],
        check=True, capture_output=True, text=True, timeout=7200,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def child_ingest(corpus: Path, store_dir: Path, jobs: int, engine: str = "local") -> dict[str, Any]:
    from blockproof.pipeline.ingest import ingest
    from blockproof.pipeline.store import Store

    if engine == "spark":  # the JVM's start-up is not ingest's: the session is made first
        from blockproof.pipeline.spark import session

        session(f"local[{jobs}]")
    report = ingest([corpus], Store(store_dir), jobs=jobs, engine=engine)
    usage = _usage()  # the workers are joined: their peak RSS and CPU are the children's
    tables = sum(
        p.stat().st_size
        for p in store_dir.rglob("*.parquet")
        if "sources" not in p.relative_to(store_dir).parts
    )
    return {
        "seconds": report.seconds,
        "measurements": report.new,
        "read": report.read,
        "bad": report.bad,
        "duplicate": report.duplicate,
        "bytes": report.bytes,
        "tables_bytes": tables,
        **usage,
    }


def child_profile(corpus: Path, store_dir: Path, top: int) -> dict[str, Any]:
    """cProfile of one in-process ingest worker over the first corpus file (the
    fingerprint matcher compiled first, as ``ingest`` compiles it before forking)."""
    import cProfile
    import pstats

    from blockproof.pipeline.ingest import DEFAULT_BATCH, ingest_file
    from blockproof.verdict.fingerprints import FingerprintDB

    path = corpus_files(corpus)[0]
    FingerprintDB.default()  # compiled before the workers are forked, as ingest does
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    counts = ingest_file(str(path), str(store_dir), "profile", 0, DEFAULT_BATCH)
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        file, line, func = key
        if file == "~":
            return func
        parts = Path(file).parts
        short = (
            "/".join(parts[parts.index("blockproof") :])
            if "blockproof" in parts
            else ("/".join(parts[-2:]))
        )
        return f"{short}:{line}({func})"

    by_own = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    own = [{"function": name(k), "calls": v[1], "own_s": v[2], "cum_s": v[3]} for k, v in by_own]
    # Phases: cumulative time of the functions that make up a worker's work.
    phases_wanted = {
        "orjson.loads (parse)": ("~", "loads", "orjson"),
        "Extractor.add (decode, judge, rows)": ("extract.py", "add", None),
        "decode test keys (web_observations_from_test_keys)": (
            "ooni/testkeys.py", "web_observations_from_test_keys", None),
        "classifier (core.webconnectivity.analyze)": (
            "webconnectivity/__init__.py", "analyze", None),
        "observation rows (Extractor._observations)": ("extract.py", "_observations", None),
        "judge_web (verdict and explanation)": ("judge.py", "judge_web", None),
        "find_fingerprints": ("judge.py", "find_fingerprints", None),
        "Extractor.take (rows -> Arrow)": ("extract.py", "take", None),
        "Store.stage (Parquet write)": ("store.py", "stage", None),
        "file_sha256": ("ingest.py", "file_sha256", None),
    }  # fmt: skip
    phases = []
    for label, (file_part, func, extra) in phases_wanted.items():
        cum = 0.0
        for (file, _line, fname), v in raw.items():
            if file_part == "~":
                if file == "~" and extra in fname and fname.endswith(f".{func}>"):
                    cum += v[3]
            elif file.endswith(file_part) and fname == func:
                cum += v[3]
        phases.append({"phase": label, "cum_s": cum, "share": cum / total if total else 0.0})
    return {
        "file": path.name,
        "file_bytes": path.stat().st_size,
        "measurements": counts.get("new", 0),
        "wall_s": wall,
        "profiled_s": total,
        "own": own,
        "phases": phases,
    }


# -- part 2: synthetic verdicts ----------------------------------------------------------

COUNTRIES = (
    "IR", "CN", "RU", "IN", "PK", "TR", "ID", "BR", "US", "DE",
    "EG", "VN", "MM", "BY", "KZ", "VE", "ET", "UG", "TM", "CU",
)  # fmt: skip
ASNS_PER_COUNTRY = 50
PLATFORMS = (
    "x", "youtube", "facebook", "instagram", "whatsapp",
    "telegram", "signal", "tiktok", "wikipedia", "reddit",
)  # fmt: skip
PROBES = 20_000
DAYS = 90
START = 1_735_689_600  # 2025-01-01T00:00:00Z
MEAN_RUN = 50  # measurements per probe run (one report_id)
OUTCOME_P = {"ok": 0.90, "anomaly": 0.06, "confirmed": 0.01, "failure": 0.03}
EVENTS = 40  # (network, platform, days) blocks, where most measurements are anomalies
EVENT_ANOMALY = 0.85

# Columns written without dictionary encoding or statistics, as the store does.
_PLAIN = {"explanation", "body_sha256", "msm_id", "report_id"}


def _rule_choices() -> dict[str, list[tuple[str, str, str]]]:
    """(rule_id, method, template) per outcome, from the rule catalogue."""
    from blockproof.verdict.judge import rules

    by: dict[str, list[tuple[str, str, str]]] = {o: [] for o in OUTCOME_P}
    for rule in rules():
        if rule.outcome in by and rule.id.startswith(("wc.", "fp.")):
            by[rule.outcome].append((rule.id, rule.method, rule.template))
    for outcome, found in by.items():
        if not found:
            raise SystemExit(f"the rule catalogue has no web_connectivity rule for {outcome}")
    return by


def _hex16(rng: Any, n: int) -> Any:
    """n random 16-character lower-case hex strings, as an Arrow string array."""
    import numpy as np
    import pyarrow as pa

    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    raw = digits[rng.integers(0, 16, size=(n, 16), dtype=np.uint8)]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw.tobytes())]
    )


def weights() -> tuple[Any, Any]:
    """Zipf-like weights: of each network (countries x ASNs, row-major) and each platform."""
    import numpy as np

    cc_w = 1.0 / (np.arange(len(COUNTRIES)) + 1) ** 0.8
    asn_w = 1.0 / (np.arange(ASNS_PER_COUNTRY) + 1) ** 1.1
    net_w = (cc_w[:, None] * asn_w[None, :]).ravel()
    net_w /= net_w.sum()
    plat_w = 1.0 / (np.arange(len(PLATFORMS)) + 1) ** 0.5
    plat_w /= plat_w.sum()
    return net_w, plat_w


def platform_inputs() -> dict[str, list[str]]:
    """Each platform's measured URLs: its profile's endpoints (or a placeholder)."""
    from blockproof.platforms import profiles

    known = profiles()
    return {
        p: [e.url for e in known[p].endpoints] if p in known else [f"https://{p}.example/"]
        for p in PLATFORMS
    }


def _world(seed: int) -> dict[str, Any]:
    """Networks, probes, platform inputs and blocking events (the same for every chunk)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_nets = len(COUNTRIES) * ASNS_PER_COUNTRY
    net_cc = np.repeat(np.arange(len(COUNTRIES)), ASNS_PER_COUNTRY)
    net_asn = rng.choice(np.arange(1_000, 400_000), size=n_nets, replace=False)
    net_w, plat_w = weights()
    probe_net = rng.choice(n_nets, size=PROBES, p=net_w)
    inputs = platform_inputs()
    hours = DAYS * 24
    events = []
    for _ in range(EVENTS):
        start = int(rng.integers(0, hours - 24))
        events.append(
            {
                "net": int(rng.choice(n_nets, p=net_w)),
                "platform": int(rng.integers(0, len(PLATFORMS))),
                "start": START + start * 3600,
                "end": START + min(hours, start + int(rng.integers(6, 24 * 10))) * 3600,
            }
        )
    return {
        "net_cc": net_cc,
        "net_asn": net_asn,
        "probe_net": probe_net,
        "plat_w": plat_w,
        "inputs": inputs,
        "events": events,
    }


def _digits(out: Any, column: int, values: Any, width: int) -> None:
    """Write ``values`` (non-negative integers) as zero-padded decimal into ``out[:, column:]``."""
    for k in range(width - 1, -1, -1):
        out[:, column + k] = 48 + values % 10
        values = values // 10


def _strings(matrix: Any) -> Any:
    """An (n, width) uint8 matrix of ASCII as an Arrow string array of n strings."""
    import numpy as np
    import pyarrow as pa

    n, width = matrix.shape
    offsets = np.arange(0, width * n + 1, width, dtype=np.int64)
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(matrix.tobytes())]
    ).cast(pa.string())


def probe_runs(rng: Any, rows: int, t0: int, t1: int) -> tuple[Any, Any, Any, Any]:
    """Probes' runs of about MEAN_RUN measurements a few seconds apart, starting in
    [t0, t1): each run's probe and start, each row's run, each row's time (epoch s)."""
    import numpy as np

    runs_n = rows // MEAN_RUN + 16
    sizes = rng.integers(1, 2 * MEAN_RUN, size=runs_n)
    while sizes.sum() < rows:
        sizes = np.concatenate([sizes, rng.integers(1, 2 * MEAN_RUN, size=runs_n)])
    cut = int(np.searchsorted(np.cumsum(sizes), rows))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(sizes.sum()) - rows
    runs_n = len(sizes)
    run_probe = rng.integers(0, PROBES, size=runs_n)
    run_start = rng.integers(t0, t1, size=runs_n)
    run_of_row = np.repeat(np.arange(runs_n), sizes)
    first_row = np.cumsum(sizes) - sizes
    step = rng.integers(2, 9, size=rows)  # seconds between a run's measurements
    elapsed = np.cumsum(step)
    elapsed -= np.repeat(elapsed[first_row] - step[first_row], sizes)
    when = run_start[run_of_row] + elapsed
    return run_probe, run_start, run_of_row, when


def msm_ids(when: Any, cc_i: Any, rng: Any) -> Any:
    """msm_id as the store makes it: <YYYYMMDDHHMMSS>_<CC>_webconnectivity_<16 hex>."""
    import numpy as np

    rows = len(when)
    cc_bytes = np.frombuffer("".join(COUNTRIES).encode(), dtype=np.uint8).reshape(-1, 2)
    days = when.astype("datetime64[s]").astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    ident = np.empty((rows, 50), dtype=np.uint8)
    _digits(ident, 0, months.astype(np.int64) // 12 + 1970, 4)
    _digits(ident, 4, months.astype(np.int64) % 12 + 1, 2)
    _digits(ident, 6, (days - months).astype(np.int64) + 1, 2)
    of_day = when % 86_400
    _digits(ident, 8, of_day // 3600, 2)
    _digits(ident, 10, of_day // 60 % 60, 2)
    _digits(ident, 12, of_day % 60, 2)
    ident[:, 14] = ident[:, 17] = ident[:, 33] = ord("_")
    ident[:, 15:17] = cc_bytes[cc_i]
    ident[:, 18:33] = np.frombuffer(b"webconnectivity", dtype=np.uint8)
    ident[:, 34:50] = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[
        rng.integers(0, 16, size=(rows, 16), dtype=np.uint8)
    ]
    return _strings(ident)


def _verdict_chunk(world: dict[str, Any], rng: Any, rows: int, t0: int, t1: int) -> Any:
    """``rows`` verdicts of probe runs starting in [t0, t1), sorted by (day, country, time)
    as the store's partitions hold them; a run is one probe's report, about MEAN_RUN
    measurements a few seconds apart, each of a random platform's URL.

    Returns the table and, per row, its partition key (day number * 100 + country)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from blockproof.pipeline.schema import VERDICTS
    from blockproof.verdict.judge import RULES_VERSION

    run_probe, run_start, run_of_row, when = probe_runs(rng, rows, t0, t1)
    net = world["probe_net"][run_probe[run_of_row]]
    cc_i = world["net_cc"][net]
    # The store's order: partitioned by day and country, in time order within.
    order = np.lexsort((when, cc_i, when // 86_400))
    when, net, cc_i, run_of_row = when[order], net[order], cc_i[order], run_of_row[order]
    asn = world["net_asn"][net]
    plat = rng.choice(len(PLATFORMS), size=rows, p=world["plat_w"])

    outcomes = list(OUTCOME_P)
    outcome = rng.choice(len(outcomes), size=rows, p=list(OUTCOME_P.values()))
    anomaly = outcomes.index("anomaly")
    for ev in world["events"]:
        hit = (net == ev["net"]) & (plat == ev["platform"])
        hit &= (when >= ev["start"]) & (when < ev["end"])
        if hit.any():
            blocked = rng.random(int(hit.sum())) < EVENT_ANOMALY
            outcome[np.flatnonzero(hit)[blocked]] = anomaly

    by_outcome = world["rules"]
    rule_ids, methods, templates, blockings, offsets = [], [], [], [], []
    for name in outcomes:
        offsets.append(len(rule_ids))
        for rule_id, method, template in by_outcome[name]:
            rule_ids.append(rule_id)
            methods.append(method)
            templates.append(template)
            blockings.append("false" if name == "ok" else None if name == "failure" else method)
    counts = np.array([len(by_outcome[name]) for name in outcomes])
    rule = np.array(offsets)[outcome] + (rng.random(rows) * counts[outcome]).astype(np.int64)

    ident = msm_ids(when, cc_i, rng)

    run_stamp = pc.strftime(pa.array(run_start.astype("datetime64[s]")), format="%Y%m%dT%H%M%SZ")
    run_net = world["probe_net"][run_probe]
    report = pc.binary_join_element_wise(
        run_stamp, pa.scalar("webconnectivity"), pa.array(COUNTRIES).take(world["net_cc"][run_net]),
        pc.binary_join_element_wise(
            pa.scalar("AS"), pc.cast(pa.array(world["net_asn"][run_net]), pa.string()), ""
        ),
        pa.scalar("n1"), _hex16(rng, len(run_start)), "_",
    )  # fmt: skip
    probe_names = _hex16(np.random.default_rng(world["seed"] + 1), PROBES)
    urls = [u for p in PLATFORMS for u in world["inputs"][p]]
    url_off = np.cumsum([0] + [len(world["inputs"][p]) for p in PLATFORMS])
    url_n = np.array([len(world["inputs"][p]) for p in PLATFORMS])
    url_i = url_off[plat] + (rng.random(rows) * url_n[plat]).astype(np.int64)
    cc_text = pa.array(COUNTRIES).take(cc_i)
    fingerprint = pc.if_else(
        pa.array(outcome == outcomes.index("confirmed")),
        pc.binary_join_element_wise(pa.scalar("fp"), pc.utf8_lower(cc_text), pa.scalar("1"), "_"),
        pa.scalar(None, pa.string()),
    )
    columns = {
        "msm_id": ident,
        "measurement_start_time": pa.array(when * 1_000_000).cast(VERDICTS.field(1).type),
        "probe_cc": cc_text,
        "probe_asn": pa.array(asn, pa.int64()),
        "report_id": report.take(run_of_row),
        "input": pa.array(urls).take(url_i),
        "test_name": pa.repeat(pa.scalar("web_connectivity"), rows),
        "platform": pa.array(PLATFORMS).take(plat),
        "probe_id": probe_names.take(run_probe[run_of_row]),
        "software_name": pa.repeat(pa.scalar("ooniprobe-cli"), rows),
        "outcome": pa.array(outcomes).take(outcome),
        "ooni_outcome": pa.array(outcomes).take(outcome),  # no "down": the same as ours
        "method": pa.array(methods).take(rule),
        "rule_id": pa.array(rule_ids).take(rule),
        "explanation": pa.array(templates).take(rule),
        "fingerprint": fingerprint,
        "blocking": pa.array(blockings, pa.string()).take(rule),
        "rules_version": pa.repeat(pa.scalar(RULES_VERSION), rows),
    }
    table = pa.Table.from_arrays([columns[f.name] for f in VERDICTS], schema=VERDICTS)
    return table, (when // 86_400) * 100 + cc_i


def _write_partitions(table_dir: Path, table: Any, keys: Any, tag: str) -> int:
    """The chunk in the store's layout, ``day=YYYY-MM-DD/cc=XX/part-<tag>.parquet``, with
    the store's encodings (zstd; no dictionary nor statistics on big free-text columns)."""
    from datetime import UTC, datetime

    import numpy as np
    import pyarrow.parquet as pq

    names = [c for c in table.schema.names if c not in _PLAIN]
    starts = np.flatnonzero(np.diff(keys, prepend=-1))
    ends = np.append(starts[1:], len(keys))
    for a, b in zip(starts, ends, strict=True):
        key = int(keys[a])
        day = datetime.fromtimestamp(key // 100 * 86_400, UTC).strftime("%Y-%m-%d")
        path = table_dir / f"day={day}" / f"cc={COUNTRIES[key % 100]}" / f"part-{tag}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.slice(int(a), int(b - a)), path, compression="zstd",
            use_dictionary=names, write_statistics=names, row_group_size=128 * 1024,
        )  # fmt: skip
    return len(starts)


def make_verdicts(store_dir: Path, rows: int, rows_per_chunk: int, seed: int) -> dict[str, Any]:
    """The synthetic verdicts table, in chunks of ``rows_per_chunk`` rows (each chunk a
    span of time, like a day's uploads); reused when already made with the same settings."""
    import numpy as np

    meta = {"rows": rows, "rows_per_chunk": rows_per_chunk, "seed": seed, "gen": GEN_VERSION}
    stamp = store_dir / "bench-verdicts.json"
    table_dir = store_dir / "verdicts"
    if stamp.exists() and json.loads(stamp.read_text()).get("meta") == meta:
        return dict(json.loads(stamp.read_text()), reused=True)
    stamp.unlink(missing_ok=True)
    if table_dir.exists():
        shutil.rmtree(table_dir)
    table_dir.mkdir(parents=True)
    world = _world(seed)
    world["seed"] = seed
    world["rules"] = _rule_choices()
    rng = np.random.default_rng(seed + 2)
    chunks = math.ceil(rows / rows_per_chunk)
    span = DAYS * 86_400
    started = time.perf_counter()
    written = files = 0
    for i in range(chunks):
        n = min(rows_per_chunk, rows - written)
        t0 = START + span * i // chunks
        t1 = START + span * (i + 1) // chunks
        table, keys = _verdict_chunk(world, rng, n, t0, t1)
        files += _write_partitions(table_dir, table, keys, f"bench-{i:04d}")
        written += n
        del table, keys
        print(f"verdicts: {written:,}/{rows:,} rows", file=sys.stderr, flush=True)
    size = sum(p.stat().st_size for p in table_dir.rglob("*.parquet"))
    out = {
        "meta": meta,
        "rows": written,
        "files": files,
        "bytes": size,
        "generate_s": time.perf_counter() - started,
    }
    stamp.write_text(json.dumps(out))
    return dict(out, reused=False)


BARE_SQL = (
    "SELECT platform, probe_cc, probe_asn, date_trunc('hour', measurement_start_time) h, "
    "count(*) FROM read_parquet(?) GROUP BY ALL"
)
# The same count with the hour as the cells query computes it (integer epoch, floored):
# what is left of the gap once date_trunc's per-row time-zone call is out of both.
BARE_INT_SQL = (
    "SELECT platform, probe_cc, probe_asn, epoch_us(measurement_start_time) // 3600000000 h, "
    "count(*) FROM read_parquet(?) GROUP BY ALL"
)


def child_cells(store_dir: Path) -> dict[str, Any]:
    import pyarrow.compute as pc

    from blockproof.pipeline import engine as q
    from blockproof.pipeline.store import Store

    started = time.perf_counter()
    eng = q.connect("duckdb", Store(store_dir))
    table = q.cells_table(eng)
    seconds = time.perf_counter() - started
    eng.close()
    return {
        "seconds": seconds,
        "groups": table.num_rows,
        "rows_counted": pc.sum(table.column("n_measurements")).as_py(),
        **_usage(),
    }


def child_bare(store_dir: Path, sql: str = BARE_SQL) -> dict[str, Any]:
    import duckdb
    import pyarrow.compute as pc

    from blockproof.pipeline.store import Store

    started = time.perf_counter()
    files = [str(p) for p in Store(store_dir).files("verdicts")]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # hours in UTC, as the cells query (Ibis sets it too)
    table = con.sql(sql, params=[files]).to_arrow_table()
    seconds = time.perf_counter() - started
    con.close()
    return {
        "seconds": seconds,
        "groups": table.num_rows,
        "rows_counted": pc.sum(table.column(table.num_columns - 1)).as_py(),
        **_usage(),
    }


# -- the parent: rounds, medians, the report ---------------------------------------------


def _busy_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (0 where /proc is missing)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def watched(run: Any, *args: Any) -> dict[str, Any]:
    """``run(*args)``, and how busy the rest of the machine was meanwhile.

    ``others_share`` is the CPU used by processes other than this benchmark's, as a
    share of the machine's capacity (cores x wall time) during the run."""
    busy0, mine0, wall0 = _busy_s(), _own_cpu(), time.perf_counter()
    result: dict[str, Any] = run(*args)
    busy1, mine1, wall1 = _busy_s(), _own_cpu(), time.perf_counter()
    capacity = (wall1 - wall0) * (os.cpu_count() or 1)
    others = max(0.0, (busy1 - busy0) - (mine1 - mine0))
    result["others_share"] = others / capacity if capacity > 0 else 0.0
    return result


def _own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_child(*args: str, timeout: float = 7200) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return dict(
        ordered[len(ordered) // 2],
        median_s=statistics.median(r["seconds"] for r in runs),
        min_s=ordered[0]["seconds"],
        max_s=ordered[-1]["seconds"],
    )


def versions(oonidata: dict[str, str] | None) -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("orjson", "duckdb", "pyarrow", "ibis-framework", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    out["oonidata"] = (oonidata or {}).get("oonidata", "not installed")
    if oonidata:
        out["oonidata venv: orjson"] = oonidata.get("orjson", "?")
        out["oonidata venv: mashumaro"] = oonidata.get("mashumaro", "?")
    return out


def part_ingest(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    corpus_dir = work / "corpus"
    corpus = make_corpus(corpus_dir, args.corpus_mb, args.files)
    print(f"corpus: {json.dumps(corpus)}", file=sys.stderr, flush=True)
    python, why = oonidata_python(work)
    print(f"oonidata: {why}", file=sys.stderr, flush=True)
    oonidata_versions = None
    if python is not None:
        out = subprocess.run([str(python), "-c", OONIDATA_VERSION], capture_output=True,
                             text=True, check=True)  # fmt: skip
        oonidata_versions = json.loads(out.stdout)
    contenders = ["orjson", "oonidata", "ingest", "spark"]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for round_ in range(args.repeat):  # interleaved, rotated: drift hits every contender alike
        turn = round_ % len(contenders)
        order = contenders[turn:] + contenders[:turn]
        for name in order:
            if name == "orjson":
                result = watched(run_child, "orjson", "--corpus", str(corpus_dir))
            elif name == "oonidata":
                if python is None:
                    continue
                result = watched(run_oonidata, python, corpus_dir)
            else:
                store_dir = work / f"store-{round_}"
                shutil.rmtree(store_dir, ignore_errors=True)
                engine = "spark" if name == "spark" else "local"
                result = watched(run_child, "ingest", "--corpus", str(corpus_dir), "--store",
                                 str(store_dir), "--jobs", str(args.jobs),
                                 "--engine", engine)  # fmt: skip
                shutil.rmtree(store_dir, ignore_errors=True)
            result["round"] = round_
            print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
            runs[name].append(result)
    profile = None
    if args.profile:
        store_dir = work / "store-profile"
        shutil.rmtree(store_dir, ignore_errors=True)
        profile = run_child("profile", "--corpus", str(corpus_dir), "--store", str(store_dir))
        shutil.rmtree(store_dir, ignore_errors=True)
    return {
        "corpus": corpus,
        "oonidata": {"status": why if python else f"not measured: {why}",
                     "versions": oonidata_versions},
        "runs": runs,
        "median": {c: median_run(r) for c, r in runs.items() if r},
        "profile": profile,
    }  # fmt: skip


def part_analyze(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    store_dir = work / "analyze-store"
    generated = run_child(  # in a child, so that this process stays small
        "verdicts", "--store", str(store_dir), "--rows", str(args.rows),
        "--rows-per-chunk", str(args.rows_per_chunk), "--seed", str(args.seed),
    )  # fmt: skip
    print(f"verdicts: {json.dumps(generated)}", file=sys.stderr, flush=True)
    contenders = ["cells", "bare", "bare-int"]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for round_ in range(args.repeat):  # interleaved, rotated: drift hits every contender alike
        order = contenders[round_ % 3 :] + contenders[: round_ % 3]
        for name in order:
            result = watched(run_child, name, "--store", str(store_dir))
            result["round"] = round_
            print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
            runs[name].append(result)
    return {
        "generated": generated,
        "runs": runs,
        "median": {c: median_run(r) for c, r in runs.items()},
    }


# -- markdown ------------------------------------------------------------------------------


def _rate(n: float, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def _others(runs: list[dict[str, Any]]) -> str:
    return f"{max(r.get('others_share', 0.0) for r in runs):.0%}"


def ingest_table(res: dict[str, Any]) -> tuple[str, list[str]]:
    corpus = res["corpus"]
    med = res["median"]
    size, count = corpus["bytes"], corpus["measurements"]
    labels = {
        "orjson": "`orjson.loads` of every line (the parsing limit)",
        "oonidata": "oonidata `load_measurement(orjson.loads(line))`",
        "ingest": "blockproof `ingest` (parse, decode, judge, write Parquet)",
        "spark": "blockproof `ingest --engine spark` on `local[N]` (the same work as Spark tasks)",
    }
    cores = {"orjson": "1", "oonidata": "1", "ingest": None, "spark": None}
    lines = [
        "| contender | cores | seconds (median) | min-max (s) | MB/s | measurements/s "
        "| CPU (s) | peak RSS (MB) | other processes' CPU (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("orjson", "oonidata", "ingest", "spark"):
        if name not in med:
            lines.append(f"| {labels[name]} | 1 | not measured | | | | | | |")
            continue
        r = med[name]
        s = r["median_s"]
        if name == "spark":  # the executors are Spark's Python workers, not children
            cpu = f"{r['cpu_s']:.1f} + executors"
            rss = f"{r['peak_rss_mb']:.0f} (driver)"
            core = str(res["jobs"])
        elif name == "ingest":
            cpu = f"{r['cpu_s']:.1f} + {r['children_cpu_s']:.1f}"
            rss = f"{r['peak_rss_mb']:.0f} (reader) / {r['children_peak_rss_mb']:.0f} (worker)"
            core = str(res["jobs"])
        else:
            cpu = f"{r['cpu_s']:.1f}"
            rss = f"{r['peak_rss_mb']:.0f}"
            core = cores[name] or ""
        lines.append(
            f"| {labels[name]} | {core} | {s:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} "
            f"| {_rate(size / MB, s):.1f} | {_rate(count, s):,.0f} | {cpu} | {rss} "
            f"| {_others(res['runs'][name])} |"
        )
    goals = []
    if "ingest" in med and "orjson" in med:
        vs_orjson = med["orjson"]["median_s"] / med["ingest"]["median_s"]
        goals.append(
            f"* Goal: ingest at least at the rate of a bare `orjson` parse on one core, while "
            f"also writing the tables. Measured: ingest / orjson = **{vs_orjson:.2f}x**: "
            f"**{'met' if vs_orjson >= 1.0 else 'not met'}**."
        )
    if "ingest" in med and "oonidata" in med:
        vs_ooni = med["oonidata"]["median_s"] / med["ingest"]["median_s"]
        goals.append(
            f"* Goal: ingest at least 3x oonidata's throughput. Measured: ingest / oonidata = "
            f"**{vs_ooni:.2f}x**: **{'met' if vs_ooni >= 3.0 else 'not met'}**."
        )
    elif "ingest" in med:
        goals.append(
            "* Goal: ingest at least 3x oonidata's throughput: **not measured** "
            f"({res['oonidata']['status']})."
        )
    if "ingest" in med and "spark" in med:
        vs_local = med["ingest"]["median_s"] / med["spark"]["median_s"]
        goals.append(
            f"* `ingest --engine spark` on `local[{res['jobs']}]` next to the local ingest "
            f"(same workers, same store): spark / local throughput = **{vs_local:.2f}x** "
            "(the JVM's start-up excluded)."
        )
    return "\n".join(lines), goals


def analyze_table(res: dict[str, Any]) -> str:
    gen = res["generated"]
    med = res["median"]
    lines = [
        "| query | rows | seconds (median) | min-max (s) | rows/s | result rows | CPU (s) "
        "| peak RSS (MB) | other processes' CPU (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "cells": "`engine.cells_table` (SQL on DuckDB, to Arrow)",
        "bare": "bare DuckDB `GROUP BY` platform, cc, ASN, `date_trunc` hour (the bar)",
        "bare-int": "bare DuckDB `GROUP BY` platform, cc, ASN, integer hour",
    }
    names = [n for n in ("cells", "bare", "bare-int") if n in med]
    for name in names:
        r = med[name]
        s = r["median_s"]
        lines.append(
            f"| {labels[name]} | {gen['rows']:,} | {s:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} "
            f"| {_rate(gen['rows'], s) / 1e6:.1f} M | {r['groups']:,} | {r['cpu_s']:.1f} "
            f"| {r['peak_rss_mb']:.0f} | {_others(res['runs'][name])} |"
        )
    ratio = med["cells"]["median_s"] / med["bare"]["median_s"]
    lines.append("")
    verdict = "met" if ratio <= 2.0 else "not met"
    lines.append(
        f"Goal: the cells query within 2x of the bare `GROUP BY`. Measured: cells / bare "
        f"(time) = **{ratio:.2f}x**: **{verdict}**."
    )
    if "bare-int" in med:
        vs_int = med["cells"]["median_s"] / med["bare-int"]["median_s"]
        lines.append(f"cells / bare with an integer hour (time): {vs_int:.2f}x.")
    return "\n".join(lines)


def profile_table(prof: dict[str, Any]) -> str:
    lines = [
        f"cProfile of one in-process ingest worker (`ingest_file`) over `{prof['file']}` "
        f"({prof['file_bytes'] / MB:.0f} MB, {prof['measurements']:,} measurements): "
        f"{prof['profiled_s']:.1f} s under the profiler, which inflates Python-heavy code, "
        "so the shares are indicative; the fingerprint matcher is compiled before, as "
        "`ingest` compiles it once before forking its workers.",
        "",
        "| phase (cumulative, phases overlap) | seconds | share |",
        "|---|---:|---:|",
    ]
    for p in prof["phases"]:
        lines.append(f"| {p['phase']} | {p['cum_s']:.2f} | {p['share']:.0%} |")
    lines += [
        "",
        "| top functions by own time | calls | own (s) | cumulative (s) |",
        "|---|---:|---:|---:|",
    ]
    for f in prof["own"]:
        lines.append(
            f"| `{f['function']}` | {f['calls']:,} | {f['own_s']:.2f} | {f['cum_s']:.2f} |"
        )
    return "\n".join(lines)


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    parts = []
    vers = versions((results.get("ingest") or {}).get("oonidata", {}).get("versions"))
    parts.append(
        f"_Measured {time.strftime('%Y-%m-%d')} with `python tests/bench/pipeline_bench.py "
        f"--write docs/benchmarks.md`: {args.repeat} interleaved rounds of every contender in one "
        "run, each in its own process; each row is the median round._"
    )
    parts.append(
        f"**Machine.** {os.cpu_count()} cores ({platform.machine()}, "
        f"{platform.system()} {platform.release()}); "
        + ", ".join(f"{k} {v}" for k, v in vers.items())
        + "."
    )
    ing = results.get("ingest")
    if ing:
        c = ing["corpus"]
        parts.append(
            f"**Corpus.** {c['samples']} real web_connectivity measurements of tests/data/ooni "
            f"({c['min_bytes']:,} to {c['max_bytes']:,} bytes each), {c['copies']} copies with "
            f"distinct report ids: **{c['bytes'] / MB:.0f} MB, {c['measurements']:,} "
            f"measurements, {c['mean_bytes'] / 1e3:.1f} kB on average**, in {c['files']} "
            "JSON-lines files, read from the page cache by every contender."
        )
        oon = ing["oonidata"]
        table, goals = ingest_table(dict(ing, jobs=args.jobs))
        notes = []
        if "oonidata" in ing["median"]:
            r = ing["median"]["oonidata"]
            if r.get("errors"):
                notes.append(
                    f"oonidata raised on {r['errors']:,} of {r['measurements']:,} measurements "
                    f"(first: `{r['first_error']}`; caught and counted, their time included)."
                )
        else:
            notes.append(f"oonidata: {oon['status']}.")
        r = ing["median"]["ingest"]
        notes.append(
            f"ingest stored {r['measurements']:,} new measurements ({r['bad']:,} rejected, "
            f"{r['duplicate']:,} duplicates) as {r['tables_bytes'] / MB:.0f} MB of Parquet; "
            "its CPU is the reader's + the workers', its RSS the reader's and the largest "
            "worker's."
        )
        parts.append("### Ingest\n\n" + table + "\n\n" + " ".join(notes))
        parts.append("**Goals.**\n\n" + "\n".join(goals))
        if ing.get("profile"):
            parts.append("### Where ingest's time goes\n\n" + profile_table(ing["profile"]))
    ana = results.get("analyze")
    if ana:
        g = ana["generated"]
        parts.append(
            "### Analyze at scale\n\n"
            f"Synthetic verdicts: **{g['rows']:,} rows**, {g['bytes'] / 1e9:.1f} GB of Parquet "
            f"in {g['files']:,} files in the store's layout (`verdicts/day=YYYY-MM-DD/cc=XX/"
            "part-*.parquet`, zstd, the store's encodings), generated in chunks of "
            f"{g['meta']['rows_per_chunk']:,} rows. "
            f"{len(COUNTRIES)} countries x {ASNS_PER_COUNTRY} ASNs (Zipf-weighted), "
            f"{len(PLATFORMS)} platforms, {DAYS} days, {PROBES:,} probes making runs of "
            f"about {MEAN_RUN} measurements (one report id each, a few seconds apart); "
            "outcomes "
            + ", ".join(f"{k} {v:.0%}" for k, v in OUTCOME_P.items())
            + f", and {EVENTS} blocks of one platform on one network for 6 h to 10 days "
            f"({EVENT_ANOMALY:.0%} anomalies). Every row has a platform, so both queries "
            "count every row. Both queries use DuckDB's default threads (all cores).\n\n"
            + analyze_table(ana)
        )
    return "\n\n".join(parts)


BEGIN = "<!-- pipeline:begin -->"
END = "<!-- pipeline:end -->"
HEADER = """## Pipeline: ingest and analyze

**Question.** How fast does `blockproof ingest` turn raw OONI measurements into the
store's tables, compared with the bare JSON parse and with OONI's own Python loader
(oonidata), and how does the analysis' cells query scale to 100 million verdicts,
compared with a bare DuckDB aggregation over the same files?

**Setup.** `tests/bench/pipeline_bench.py`. *Ingest:* the real web_connectivity
samples of `tests/data/ooni`, each copy with its own report id and no `measurement_uid`
(every line a distinct measurement), replicated to at least 300 MB of JSON lines in 8
files in a temporary directory. Four contenders read the whole corpus: `orjson.loads` of
every line on one core; oonidata's `load_measurement(msmt=orjson.loads(line))` on one
core, in its own virtualenv (its pins are old; its exceptions are caught and counted);
`blockproof.pipeline.ingest.ingest` with 2 workers into a fresh store each round; and the
same with `engine="spark"` on `local[2]` (its session started before the clock).
*Analyze:* a synthetic `verdicts` table generated with numpy and pyarrow (not through
ingest), read by the analysis' own cells query (`engine.cells_table`: its SQL on DuckDB,
results to Arrow) and by a bare DuckDB `SELECT platform, probe_cc, probe_asn,
date_trunc('hour', measurement_start_time) h, count(*) ... GROUP BY ALL` over the same
files. Every run is its own process, timed inside it (start-up and imports excluded);
the contenders run in 3 interleaved rounds and each figure is the median round. The
"other processes' CPU" column is the CPU used by anything else on the machine during the
run (this machine is shared), as a share of its capacity.
"""


def write_section(path: Path, text: str) -> None:
    section = f"{BEGIN}\n{text}\n{END}"
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + section + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + HEADER + "\n" + section + "\n"
    path.write_text(new)


def child(args: argparse.Namespace) -> None:
    kind = args.child
    if kind == "orjson":
        result = child_orjson(args.corpus)
    elif kind == "ingest":
        result = child_ingest(args.corpus, args.store, args.jobs, args.engine)
    elif kind == "profile":
        result = child_profile(args.corpus, args.store, args.top)
    elif kind == "verdicts":
        result = make_verdicts(args.store, args.rows, args.rows_per_chunk, args.seed)
    elif kind == "cells":
        result = child_cells(args.store)
    elif kind == "bare":
        result = child_bare(args.store)
    elif kind == "bare-int":
        result = child_bare(args.store, BARE_INT_SQL)
    else:
        raise SystemExit(f"unknown child {kind}")
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--top", type=int, default=12, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--corpus-mb", type=float, default=300.0,
                        help="corpus size in MB (10^6 bytes), at least")  # fmt: skip
    parser.add_argument("--files", type=int, default=8, help="JSON-lines files in the corpus")
    parser.add_argument("--rows", type=int, default=100_000_000,
                        help="synthetic verdicts for the analyze part")  # fmt: skip
    parser.add_argument(
        "--rows-per-chunk", type=int, default=5_000_000, help="verdicts generated at a time"
    )
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--jobs", type=int, default=2, help="ingest workers")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each contender")
    parser.add_argument(
        "--work", type=Path, help="work directory (default: a temporary one, removed at the end)"
    )
    parser.add_argument("--parts", nargs="+", choices=["ingest", "analyze"],
                        default=["ingest", "analyze"])  # fmt: skip
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--write", type=Path, help="update this markdown file's pipeline section")
    parser.add_argument(
        "--keep", type=Path, nargs="+", default=[], metavar="JSON",
        help="raw results (--json) of earlier runs: their parts not rerun now go in the section "
        "too (e.g. the 100M-row analyze while only ingest is rerun)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="blockproof-bench-")) if temporary else args.work
    work = work.resolve()
    if work.is_relative_to(ROOT):
        raise SystemExit("the work directory must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    try:
        if "ingest" in args.parts:
            results["ingest"] = part_ingest(args, work)
        if "analyze" in args.parts:
            results["analyze"] = part_analyze(args, work)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    for kept in args.keep:
        for part, result in json.loads(kept.read_text()).items():
            results.setdefault(part, result)
    text = render(results, args)
    print(text)
    if args.write:
        write_section(args.write, text)


if __name__ == "__main__":
    main()
