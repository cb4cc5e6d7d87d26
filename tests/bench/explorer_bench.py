"""Explorer benchmark: page times on a store of at least 10 million measurements.

Usage: python tests/bench/explorer_bench.py --work DIR [--measurements 10000000]
       [--write docs/benchmarks.md] [--json RUN.json] [--reanalyze]
       python tests/bench/explorer_bench.py --work DIR --render RUN.json [--write FILE]

1. **The store** (cached under ``--work``; rebuilt only when its manifest differs): the
   ``measurements`` and ``verdicts`` tables of the same synthetic measurements, written
   with the store's own code (``Store.stage`` + ``Store.commit``: ``day=/cc=``
   partitions, the store's encodings) from the store's Arrow schemas (a column this
   script does not know is filled with a neutral value and named in the report), and
   every measurement's bytes kept in ``sources/`` as gzip JSON lines, one file per day,
   country and generation chunk, so that ``source_sha256``, ``source_line`` and
   ``raw_sha256`` point at real bytes. 20 countries x 50 ASNs (Zipf), 10 platforms,
   probes making runs of about 50 measurements, an outcome mix, and a few dozen injected
   blocks (one platform on one network for hours to days, by one method), two network
   outages, and an X block in Pakistan on five networks (TLS on four, DNS on one).
   Then the real analysis: ``blockproof analyze --store DIR``.
2. **Pages**: ``blockproof serve explorer`` as its own process on 127.0.0.1, timed with
   httpx: the first request of a fresh process (cold) and the following ones (warm),
   for the event page, the event's JSON, the country page and the platform-in-country
   timeline (``/countries/CC/PLATFORM?since=&until=&granularity=auto``, 30- and 7-day
   ranges; reported as missing when the explorer answers 404). Side by side, in the
   same rounds, bare DuckDB queries: counting an event's verdicts over its country's and
   days' files only, and over every file; summing a timeline's hourly cells.
3. **Profile**: ``evidence.gather`` and ``evidence.country_status`` in-process: phases,
   and cProfile's top functions.

Rounds are interleaved (``--rounds``) and every request loop is bounded in count
(``--requests``) and time (``--seconds``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform as platform_mod
import shutil
import socket
import statistics
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from pipeline_bench import (  # noqa: E402
    COUNTRIES,
    PLATFORMS,
    _hex16,
    msm_ids,
    platform_inputs,
    probe_runs,
    weights,
)

BEGIN = "<!-- explorer:begin -->"
END = "<!-- explorer:end -->"
GEN_VERSION = 1  # bump when the synthetic store changes

ASNS_PER_COUNTRY = 50
PROBES = 20_000
START = 1_735_689_600  # 2025-01-01T00:00:00Z
MEAN_RUN = 50  # measurements per probe run (one report_id)
OUTCOME_P = {"ok": 0.915, "anomaly": 0.045, "confirmed": 0.0005, "failure": 0.0395}
BLOCKS = 36  # random blocks: one platform on one network, 6 h to 10 days, one method
BLOCK_METHODS = {"tls": 0.4, "dns": 0.3, "tcp_ip": 0.1, "http": 0.1, "http-diff": 0.1}
BLOCK_ANOMALY = 0.85  # share of a blocked platform's measurements that show it
BLOCK_CONFIRMED = 0.3  # of those, by DNS or blockpage, fingerprint-confirmed
PK = COUNTRIES.index("PK")
PK_NETWORKS = (  # the five largest Pakistani networks (names as their probes report them)
    (17557, "Pakistan Telecommunication Company Limited"),
    (45669, "Mobilink-PK"),
    (59257, "China Mobile Pak"),
    (24499, "Telenor Pakistan (Pvt) Ltd."),
    (45595, "Pakistan Telecom Mobile Ltd"),
)
SUFFIXES = ("Telecom", "Mobile", "Broadband", "Net", "Communications", "Online", "Cable")
SOFTWARE = (("ooniprobe-android", "3.8.8", "android"), ("ooniprobe-cli", "3.22.0", "linux"),
            ("ooniprobe-desktop", "3.9.5", "macos"), ("ooniprobe-ios", "3.8.5", "ios"))  # fmt: skip


# -- the synthetic world ---------------------------------------------------------------------


def _rule_pool() -> dict[str, list[tuple[str, str, str]]]:
    """(rule_id, method, template) per outcome and per block method, from the catalogue."""
    from blockproof.verdict.judge import rules

    pool: dict[str, list[tuple[str, str, str]]] = {}
    for rule in rules():
        if not rule.id.startswith(("wc.", "fp.")):
            continue
        pool.setdefault(rule.outcome, []).append((rule.id, rule.method, rule.template))
        if rule.outcome in ("anomaly", "confirmed"):
            pool.setdefault(f"{rule.outcome}:{rule.method}", []).append(
                (rule.id, rule.method, rule.template)
            )
    for key in OUTCOME_P:
        if not pool.get(key):
            raise SystemExit(f"the rule catalogue has no web_connectivity rule for {key}")
    return pool


def world(seed: int, days: int) -> dict[str, Any]:
    """Networks, probes, URLs and blocks: the same in every chunk."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_nets = len(COUNTRIES) * ASNS_PER_COUNTRY
    net_cc = np.repeat(np.arange(len(COUNTRIES)), ASNS_PER_COUNTRY)
    fixed = [a for a, _ in PK_NETWORKS]
    pool = np.setdiff1d(np.arange(1_000, 400_000), fixed)
    net_asn = rng.choice(pool, size=n_nets, replace=False)
    names = []
    for i in range(n_nets):
        cc, k = COUNTRIES[net_cc[i]], i % ASNS_PER_COUNTRY
        names.append(f"{cc} {SUFFIXES[k % len(SUFFIXES)]} {k // len(SUFFIXES) + 1}")
    for k, (asn, name) in enumerate(PK_NETWORKS):
        net_asn[PK * ASNS_PER_COUNTRY + k] = asn
        names[PK * ASNS_PER_COUNTRY + k] = name
    net_w, plat_w = weights()
    probe_net = rng.choice(n_nets, size=PROBES, p=net_w)
    inputs = platform_inputs()
    hours = days * 24
    methods = list(BLOCK_METHODS)
    blocks: list[dict[str, Any]] = []
    for _ in range(BLOCKS):
        start = int(rng.integers(0, hours - 24))
        blocks.append(
            {
                "net": int(rng.choice(n_nets, p=net_w)),
                "platform": int(rng.integers(0, len(PLATFORMS))),
                "start": START + start * 3600,
                "end": START + min(hours, start + int(rng.integers(6, 24 * 10))) * 3600,
                "method": methods[int(rng.choice(len(methods), p=list(BLOCK_METHODS.values())))],
            }
        )
    for _ in range(2):  # outages: every platform on one network
        start = int(rng.integers(0, hours - 48))
        blocks.append(
            {
                "net": int(rng.choice(n_nets, p=net_w)),
                "platform": -1,
                "start": START + start * 3600,
                "end": START + (start + int(rng.integers(8, 30))) * 3600,
                "method": "tcp_ip",
            }
        )
    # Pakistan, X: from day 17, 17:00 UTC to the end of the data, with a brief
    # restoration on day 18; TLS on four networks, DNS on the fifth.
    x = PLATFORMS.index("x")
    pk_start = START + (17 * 24 + 17) * 3600
    pk_gap = (START + (18 * 24 + 6) * 3600, START + (18 * 24 + 14) * 3600)
    for k in range(len(PK_NETWORKS)):
        for a, b in ((pk_start, pk_gap[0]), (pk_gap[1], START + hours * 3600)):
            blocks.append({"net": PK * ASNS_PER_COUNTRY + k, "platform": x, "start": a,
                           "end": b, "method": "dns" if k == 3 else "tls"})  # fmt: skip
    return {
        "net_cc": net_cc,
        "net_asn": net_asn,
        "net_name": names,
        "probe_net": probe_net,
        "plat_w": plat_w,
        "inputs": inputs,
        "blocks": blocks,
        "rules": _rule_pool(),
        "probe_names": _hex16(np.random.default_rng(seed + 1), PROBES),
    }


class _Fill(dict[str, str]):
    """Plausible values for a rule template's placeholders."""

    def __missing__(self, key: str) -> str:
        return {
            "address": "104.244.42.1:443",
            "failure": "connection_reset",
            "control_failure": "generic_timeout_error",
            "control_evidence": "the control completed the same step",
            "server_name": self["host"],
            "request_url": self["url"],
            "probe_addrs": "10.10.34.35",
            "answer": "10.10.34.35",
            "fingerprint": "fp_blockpage_1",
            "source": "OONI",
            "scope": "nat",
            "comparison": "different title and body length",
            "probe_summary": "every step failed",
            "operation": "the TLS handshake",
            "error": "KeyError: 'queries'",
        }.get(key, key)


def _test_keys(url: str, host: str, rule_id: str, method: str, outcome: str, text: str) -> str:
    """A web_connectivity ``test_keys`` object for this URL and verdict (compact JSON)."""
    import orjson

    blocked = outcome in ("anomaly", "confirmed")
    failures = {"tls": "connection_reset", "dns": "dns_nxdomain_error",
                "tcp_ip": "generic_timeout_error", "http": "connection_reset"}  # fmt: skip
    failure = failures.get(method) if blocked else None
    if outcome == "failure":
        failure = "generic_timeout_error"
    keys = {
        "accessible": outcome == "ok",
        "blocking": method if blocked else (False if outcome == "ok" else None),
        "control_failure": None,
        "dns_consistency": "inconsistent" if method == "dns" and blocked else "consistent",
        "dns_experiment_failure": failure if method == "dns" else None,
        "http_experiment_failure": failure if method in ("tls", "http", "tcp_ip") else None,
        "queries": [
            {
                "answers": [{"answer_type": "A", "ipv4": "104.244.42.1", "ttl": None}],
                "engine": "system",
                "failure": failure if method == "dns" else None,
                "hostname": host,
                "query_type": "A",
                "resolver_hostname": None,
                "t": 0.0412,
            }
        ],
        "tcp_connect": [
            {
                "ip": "104.244.42.1",
                "port": 443,
                "t": 0.1103,
                "status": {
                    "failure": failure if method == "tcp_ip" else None,
                    "success": method != "tcp_ip" or not blocked,
                },
            }
        ],
        "tls_handshakes": [
            {
                "address": "104.244.42.1:443",
                "cipher_suite": "TLS_AES_128_GCM_SHA256",
                "failure": failure if method == "tls" else None,
                "negotiated_protocol": "h2",
                "server_name": host,
                "t": 0.2311,
                "tls_version": "TLSv1.3",
            }
        ],
        "requests": [
            {
                "failure": failure if method == "http" else None,
                "request": {"method": "GET", "url": url, "headers": {"Accept": "*/*"}},
                "response": {
                    "code": 200 if outcome == "ok" else 0,
                    "body": None,
                    "headers": {"Content-Type": "text/html"},
                },
            }
        ],
        "x_verdict": {"method": method, "outcome": outcome, "rule_id": rule_id, "why": text},
    }
    return orjson.dumps(keys).decode()


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].lower()


def chunk(job: dict[str, Any]) -> dict[str, Any]:
    """One span of days: measurements, verdicts and their source files, into the store."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from blockproof.pipeline.schema import MEASUREMENTS, VERDICTS
    from blockproof.pipeline.store import Store
    from blockproof.verdict.judge import RULES_VERSION

    started = time.perf_counter()
    w = world(job["seed"], job["days"])
    rng = np.random.default_rng([job["seed"], job["index"]])
    rows, t0, t1 = job["rows"], job["t0"], job["t1"]

    run_probe, run_start, run_of_row, when = probe_runs(rng, rows, t0, t1)
    when = np.minimum(when, job["horizon"] - 1)
    net = w["probe_net"][run_probe[run_of_row]]
    cc_i = w["net_cc"][net]
    order = np.lexsort((when, cc_i, when // 86_400))  # the store's order
    when, net, cc_i, run_of_row = when[order], net[order], cc_i[order], run_of_row[order]
    asn = w["net_asn"][net]
    plat = rng.choice(len(PLATFORMS), size=rows, p=w["plat_w"])

    # Outcomes and rules: background mix, then the blocks.
    pool = w["rules"]
    keys = list(OUTCOME_P) + sorted(k for k in pool if ":" in k)
    rule_list: list[tuple[str, str, str, str]] = []  # (rule_id, method, template, outcome)
    offset, count = {}, {}
    for key in keys:
        offset[key] = len(rule_list)
        count[key] = len(pool[key])
        rule_list += [(*r, key.split(":")[0]) for r in pool[key]]
    outcomes = list(OUTCOME_P)
    outcome = rng.choice(len(outcomes), size=rows, p=list(OUTCOME_P.values()))
    off = np.array([offset[o] for o in outcomes])[outcome]
    cnt = np.array([count[o] for o in outcomes])[outcome]
    u = rng.random(rows)
    for b in w["blocks"]:
        hit = (net == b["net"]) & (when >= b["start"]) & (when < b["end"])
        if b["platform"] >= 0:
            hit &= plat == b["platform"]
        idx = np.flatnonzero(hit)
        if not len(idx):
            continue
        shows = idx[u[idx] < BLOCK_ANOMALY]
        conf_key = f"confirmed:{'http-diff' if b['method'] == 'http-diff' else b['method']}"
        confirmable = conf_key in pool and b["method"] in ("dns", "http-diff")
        conf = shows[u[shows] < BLOCK_ANOMALY * BLOCK_CONFIRMED] if confirmable else shows[:0]
        plain = np.setdiff1d(shows, conf)
        key = f"anomaly:{b['method']}"
        off[plain], cnt[plain] = offset[key], count[key]
        outcome[plain] = outcomes.index("anomaly")
        if len(conf):
            off[conf], cnt[conf] = offset[conf_key], count[conf_key]
            outcome[conf] = outcomes.index("confirmed")
    rule = off + (rng.random(rows) * cnt).astype(np.int64)

    msm_id = msm_ids(when, cc_i, rng)

    run_time = pa.array(run_start.astype("datetime64[s]"))
    run_net = w["probe_net"][run_probe]
    report = pc.binary_join_element_wise(
        pc.strftime(run_time, format="%Y%m%dT%H%M%SZ"), pa.scalar("webconnectivity"),
        pa.array(COUNTRIES).take(w["net_cc"][run_net]),
        pc.binary_join_element_wise(
            pa.scalar("AS"), pc.cast(pa.array(w["net_asn"][run_net]), pa.string()), ""
        ),
        pa.scalar("n1"), _hex16(rng, len(run_start)), "_",
    ).take(run_of_row)  # fmt: skip
    test_start = pc.strftime(run_time, format="%Y-%m-%d %H:%M:%S").take(run_of_row)
    probe_of_row = run_probe[run_of_row]
    probe_id = w["probe_names"].take(probe_of_row)
    urls = [u_ for p in PLATFORMS for u_ in w["inputs"][p]]
    url_off = np.cumsum([0] + [len(w["inputs"][p]) for p in PLATFORMS])
    url_n = np.array([len(w["inputs"][p]) for p in PLATFORMS])
    url_i = url_off[plat] + (rng.random(rows) * url_n[plat]).astype(np.int64)
    # Per (rule, URL): the explanation, the test keys and the OONI blocking value.
    n_urls = len(urls)
    expl, keys_json, blocking = [], [], []
    for rule_id, method, template, out in rule_list:
        for url in urls:
            host = _host(url)
            text = template.format_map(_Fill(url=url, host=host))
            expl.append(text)
            keys_json.append(_test_keys(url, host, rule_id, method, out, text))
        blocking.append("false" if out == "ok" else None if out == "failure" else method)
    combo = rule * n_urls + url_i
    cc_text = pa.array(COUNTRIES).take(cc_i)
    fingerprint = pc.if_else(
        pa.array(outcome == outcomes.index("confirmed")),
        pc.binary_join_element_wise(pa.scalar("fp"), pc.utf8_lower(cc_text), pa.scalar("1"), "_"),
        pa.scalar(None, pa.string()),
    )
    stamp = pa.array((when * 1_000_000).astype("datetime64[us]"))
    start_text = pc.strftime(stamp, format="%Y-%m-%d %H:%M:%S")
    software = rng.choice(len(SOFTWARE), size=PROBES, p=[0.55, 0.25, 0.12, 0.08])[probe_of_row]
    via_google = rng.random(PROBES)[probe_of_row] < 0.2
    resolver_asn = np.where(via_google, 15169, asn)
    net_names = pa.array(w["net_name"]).take(net)
    resolver_name = pc.if_else(pa.array(via_google), pa.scalar("Google LLC"), net_names)
    runtime = np.round(rng.gamma(2.0, 1.2, size=rows) + 0.2, 4)
    url_arr = pa.array(urls).take(url_i)
    asn_text = pc.cast(pa.array(asn), pa.string())
    rasn_text = pc.cast(pa.array(resolver_asn), pa.string())

    def lit(text: str) -> pa.Scalar:
        return pa.scalar(text, pa.large_string())

    def big(a: pa.Array) -> pa.Array:
        return pc.cast(a, pa.large_string())

    parts = [
        lit('{"annotations":{"engine_name":"ooniprobe-engine","platform":"'),
        big(pa.array([s[2] for s in SOFTWARE]).take(software)),
        lit('"},"data_format_version":"0.2.0","input":"'), big(url_arr),
        lit('","measurement_start_time":"'), big(start_text),
        lit('","measurement_uid":"'), big(msm_id),
        lit('","probe_asn":"AS'), big(asn_text),
        lit('","probe_cc":"'), big(cc_text),
        lit('","probe_ip":"127.0.0.1","probe_network_name":"'), big(net_names),
        lit('","report_id":"'), big(report),
        lit('","resolver_asn":"AS'), big(rasn_text),
        lit('","resolver_ip":"'),
        big(pc.if_else(pa.array(via_google), pa.scalar("8.8.8.8"), pa.scalar("10.0.0.1"))),
        lit('","resolver_network_name":"'), big(resolver_name),
        lit('","software_name":"'), big(pa.array([s[0] for s in SOFTWARE]).take(software)),
        lit('","software_version":"'), big(pa.array([s[1] for s in SOFTWARE]).take(software)),
        lit('","test_helpers":{"backend":{"address":"https://0.th.ooni.org","type":"https"}},'
            '"test_keys":'), big(pa.array(keys_json).take(combo)),
        lit(',"test_name":"web_connectivity","test_runtime":'),
        big(pc.cast(pa.array(runtime), pa.string())),
        lit(',"test_start_time":"'), big(test_start),
        lit('","test_version":"0.5.28","x_probe_id":"'), big(probe_id), lit('"}'),
    ]  # fmt: skip
    lines = pc.binary_join_element_wise(*parts, lit(""))
    raw = pc.cast(lines, pa.large_binary()).to_pylist()
    del lines, parts
    raw_sha = [hashlib.sha256(b).hexdigest() for b in raw]

    # Sources: one gzip JSON-lines file per (day, country) of the chunk.
    store = Store(job["store"])
    store.sources.mkdir(parents=True, exist_ok=True)
    pkey = (when // 86_400) * 100 + cc_i
    starts = np.flatnonzero(np.diff(pkey, prepend=-1))
    ends = np.append(starts[1:], len(pkey))
    source_name: list[str] = []
    source_sha: list[str] = []
    source_line = np.empty(rows, dtype=np.int64)
    source_bytes = raw_bytes = 0
    for a, b in zip(starts, ends, strict=True):
        key = int(pkey[a])
        day = datetime.fromtimestamp(key // 100 * 86_400, UTC).strftime("%Y%m%d")
        name = f"{day}_{COUNTRIES[key % 100]}_webconnectivity_c{job['index']:03d}.jsonl.gz"
        data = b"\n".join(raw[a:b]) + b"\n"
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        packed = packer.compress(data) + packer.flush()
        sha = hashlib.sha256(packed).hexdigest()
        target = store.source_path(sha, name)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(packed)
        os.replace(tmp, target)
        source_name += [name] * int(b - a)
        source_sha += [sha] * int(b - a)
        source_line[a:b] = np.arange(1, b - a + 1)
        source_bytes += len(packed)
        raw_bytes += len(data)
    del raw

    common = {
        "msm_id": msm_id,
        "measurement_start_time": pc.cast(stamp, pa.timestamp("us", tz="UTC")),
        "probe_cc": cc_text,
        "probe_asn": pa.array(asn, pa.int64()),
        "report_id": report,
        "input": url_arr,
        "test_name": pa.repeat(pa.scalar("web_connectivity"), rows),
        "platform": pa.array(PLATFORMS).take(plat),
        "probe_id": probe_id,
    }
    m_cols = {
        **common,
        "test_version": pa.repeat(pa.scalar("0.5.28"), rows),
        "domain": pa.array([_host(x) for x in urls]).take(url_i),
        "probe_network_name": net_names,
        "resolver_asn": pa.array(resolver_asn, pa.int64()),
        "resolver_network_name": resolver_name,
        "software_name": pa.array([s[0] for s in SOFTWARE]).take(software),
        "software_version": pa.array([s[1] for s in SOFTWARE]).take(software),
        "test_runtime": pa.array(runtime),
        "signature": pa.repeat(pa.scalar("unsigned"), rows),  # OONI data: no probe signature
        "signed": pa.repeat(pa.scalar(False), rows),
        "raw_sha256": pa.array(raw_sha),
        "source": pa.array(source_name),
        "source_sha256": pa.array(source_sha),
        "source_line": pa.array(source_line),
    }
    v_cols = {
        **common,
        "outcome": pa.array([r[3] for r in rule_list]).take(rule),
        "method": pa.array([r[1] for r in rule_list]).take(rule),
        "rule_id": pa.array([r[0] for r in rule_list]).take(rule),
        "explanation": pa.array(expl).take(combo),
        "fingerprint": fingerprint,
        "blocking": pa.array(blocking, pa.string()).take(rule),
        "rules_version": pa.repeat(pa.scalar(RULES_VERSION), rows),
    }
    generic: list[str] = []
    tables = {}
    for table, schema, cols in (("measurements", MEASUREMENTS, m_cols),
                                ("verdicts", VERDICTS, v_cols)):  # fmt: skip
        arrays = []
        for f in schema:
            if f.name in cols:
                arrays.append(pc.cast(cols[f.name], f.type))
            else:  # a column this script does not know yet: a neutral value
                generic.append(f"{table}.{f.name}")
                arrays.append(_neutral(f, rows, cols["measurement_start_time"]))
        tables[table] = pa.Table.from_arrays(arrays, schema=schema)
    files = store.stage(tables, f"bench{job['index']:03d}")
    store.commit(files)
    return {
        "index": job["index"],
        "rows": rows,
        "files": len(files),
        "source_files": len(starts),
        "source_bytes": source_bytes,
        "raw_bytes": raw_bytes,
        "generic_columns": sorted(set(generic)),
        "seconds": time.perf_counter() - started,
    }


def _neutral(field: Any, rows: int, when: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = field.type
    if pa.types.is_timestamp(t):
        return pc.cast(when, t)
    if field.nullable:
        return pa.nulls(rows, t)
    value: Any = (
        "" if pa.types.is_string(t) else False if pa.types.is_boolean(t)
        else 0.0 if pa.types.is_floating(t) else 0
    )  # fmt: skip
    return pa.repeat(pa.scalar(value, t), rows)


def schema_digest() -> str:
    from blockproof.pipeline.schema import MEASUREMENTS, VERDICTS

    text = str(MEASUREMENTS) + str(VERDICTS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_analyze(store_dir: Path) -> dict[str, Any]:
    """``blockproof analyze --store DIR`` in its own process: its time, cells and events."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "blockproof", "analyze", "--store", str(store_dir)],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    analyze_s = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"blockproof analyze failed:\n{out.stderr[-4000:]}")
    events = json.loads((store_dir / "events.json").read_text())["events"]
    return {
        "analyze_s": analyze_s,
        "cells": pq.ParquetFile(store_dir / "cells" / "cells.parquet").metadata.num_rows,
        "events": len(events),
    }


def build_store(store_dir: Path, measurements: int, days: int, seed: int, jobs: int,
                chunk_days: int, reanalyze: bool = False) -> dict[str, Any]:  # fmt: skip
    """The store, built once; reused while its manifest matches (``reanalyze``: run
    ``blockproof analyze`` again on it, e.g. after the analysis changed)."""
    from concurrent.futures import ProcessPoolExecutor

    meta = {"measurements": measurements, "days": days, "seed": seed, "gen": GEN_VERSION,
            "chunk_days": chunk_days, "schema": schema_digest()}  # fmt: skip
    manifest = store_dir / "bench-manifest.json"
    if manifest.exists():
        found = json.loads(manifest.read_text())
        if found.get("meta") == meta and (store_dir / "events.json").exists():
            if reanalyze:
                found.update(run_analyze(store_dir))
                found["bytes"]["cells"] = (store_dir / "cells" / "cells.parquet").stat().st_size
                manifest.write_text(json.dumps(found, indent=2))
            return dict(found, reused=True)
    manifest.unlink(missing_ok=True)
    if store_dir.exists():
        shutil.rmtree(store_dir)
    store_dir.mkdir(parents=True)
    chunks = math.ceil(days / chunk_days)
    horizon = START + days * 86_400
    jobs_list = []
    done = 0
    for i in range(chunks):
        d0, d1 = i * chunk_days, min(days, (i + 1) * chunk_days)
        rows = measurements * d1 // days - done
        done += rows
        jobs_list.append({"index": i, "rows": rows, "t0": START + d0 * 86_400,
                          "t1": START + d1 * 86_400, "seed": seed, "days": days,
                          "horizon": horizon, "store": str(store_dir)})  # fmt: skip
    started = time.perf_counter()
    results = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for res in pool.map(chunk, jobs_list):
            results.append(res)
            log(f"chunk {res['index']}: {res['rows']:,} rows in {res['seconds']:.0f} s")
    build_s = time.perf_counter() - started
    analysis = run_analyze(store_dir)
    import pyarrow.parquet as pq

    def size(sub: str) -> int:
        return sum(p.stat().st_size for p in (store_dir / sub).rglob("*") if p.is_file())

    found = {
        "meta": meta,
        "measurements": sum(r["rows"] for r in results),
        "verdicts": pq.ParquetDataset(str(store_dir / "verdicts")).read(["outcome"]).num_rows,
        "files": {
            t: len(list((store_dir / t).rglob("*.parquet"))) for t in ("measurements", "verdicts")
        },
        "bytes": {t: size(t) for t in ("measurements", "verdicts", "sources", "cells")},
        "raw_bytes": sum(r["raw_bytes"] for r in results),
        "source_files": sum(r["source_files"] for r in results),
        "generic_columns": sorted({c for r in results for c in r["generic_columns"]}),
        **analysis,
        "build_s": build_s,
        "jobs": jobs,
        "built": time.strftime("%Y-%m-%d"),
    }
    manifest.write_text(json.dumps(found, indent=2))
    return dict(found, reused=False)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the explorer as a process -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Explorer:
    """``blockproof serve explorer`` in its own process, on 127.0.0.1."""

    def __init__(self, store_dir: Path, log_path: Path) -> None:
        self.store_dir = store_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.startup_s = 0.0

    def __enter__(self) -> Explorer:
        self.port = free_port()
        started = time.perf_counter()
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blockproof", "serve", "explorer", "--store",
                 str(self.store_dir), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the port answers: no HTTP request before the timed one
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"the explorer exited ({self.proc.returncode}); see {self.log_path}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.02)
        else:
            raise SystemExit("the explorer did not listen within 60 s")
        self.startup_s = time.perf_counter() - started
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():  # type: ignore[union-attr]
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


def timed_get(client: Any, url: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    response = client.get(url)
    body = response.content
    return time.perf_counter() - started, response.status_code, len(body)


# -- what is requested ------------------------------------------------------------------------


PAGES = {
    "event": "event page `/events/{id}`",
    "event_json": "event JSON `/api/events/{id}`",
    "country": "country page `/countries/{cc}`",
    "timeline30": "timeline `/countries/{cc}/{platform}`, 30 days",
    "timeline7": "timeline `/countries/{cc}/{platform}`, 7 days",
}
BARE = {
    "bare_pruned": "bare DuckDB: count the event's verdicts, its country's and days' files",
    "bare_all": "bare DuckDB: count the event's verdicts, every verdicts file",
    "bare_cells": "bare DuckDB: a 30-day timeline's hourly sums from cells.parquet",
}


def targets(store_dir: Path, meta: dict[str, Any], count: int, seed: int) -> dict[str, Any]:
    """The events (largest first, then spread) and timeline requests to cycle through."""
    import random

    events = json.loads((store_dir / "events.json").read_text())["events"]
    events.sort(key=lambda e: -e["n_measurements"])
    rest = events[1:]
    step = max(1, len(rest) // max(1, count - 1))
    picked = [events[0], *rest[::step][: count - 1]] if events else []
    rng = random.Random(seed)
    days = meta["days"]
    first = datetime.fromtimestamp(START, UTC).date()
    timelines: dict[int, list[tuple[str, str, str, str]]] = {30: [], 7: []}
    pairs = [(e["country"], e["platform"]) for e in events if e["platform"] != "*"]
    for span, out in timelines.items():
        for i in range(count):
            if i == 0:
                cc, plat = "PK", "x"
                end = days
            elif i % 2 and pairs:
                cc, plat = pairs[rng.randrange(len(pairs))]
                end = rng.randint(span, days)
            else:
                cc, plat = rng.choice(COUNTRIES), rng.choice(PLATFORMS)
                end = rng.randint(span, days)
            since = first + timedelta(days=end - span)
            until = first + timedelta(days=end)
            out.append((cc, plat, since.isoformat(), until.isoformat()))
    countries = ["PK", *[c for c in COUNTRIES if c != "PK"]]
    return {"events": picked, "timelines": timelines, "countries": countries}


def page_urls(kind: str, tg: dict[str, Any]) -> list[str]:
    if kind in ("event", "event_json"):
        prefix = "/events/" if kind == "event" else "/api/events/"
        return [prefix + e["id"] for e in tg["events"]]
    if kind == "country":
        return [f"/countries/{cc}" for cc in tg["countries"]]
    span = 30 if kind == "timeline30" else 7
    return [f"/countries/{cc}/{p}?since={a}&until={b}&granularity=auto"
            for cc, p, a, b in tg["timelines"][span]]  # fmt: skip


def run_page(store_dir: Path, kind: str, urls: list[str], requests: int, seconds: float,
             log_path: Path) -> dict[str, Any]:  # fmt: skip
    """A fresh explorer: the first request (cold), then up to ``requests`` more (warm)."""
    import httpx

    warm: list[float] = []
    per_url: list[tuple[str, float]] = []
    statuses: dict[str, int] = {}
    sizes: list[int] = []
    with (
        Explorer(store_dir, log_path) as server,
        httpx.Client(base_url=server.base, timeout=httpx.Timeout(180.0), trust_env=False) as client,
    ):
        cold, status, size = timed_get(client, urls[0])
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 404:
            return {"missing": True, "status": status, "startup_s": server.startup_s}
        deadline = time.monotonic() + seconds
        for i in range(requests):
            if time.monotonic() > deadline:
                break
            url = urls[(i + 1) % len(urls)]
            t, status, size = timed_get(client, url)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            per_url.append((url, t))
            if status == 200:
                warm.append(t)
                sizes.append(size)
        rss = server.peak_rss_mb()
        startup = server.startup_s
    return {"missing": False, "cold": cold, "warm": warm, "per_url": per_url, "statuses": statuses,
            "bytes": statistics.median(sizes) if sizes else 0, "rss_mb": rss,
            "startup_s": startup}  # fmt: skip


def _verdict_files(
    store_dir: Path, cc: str | None, day0: str | None, day1: str | None
) -> list[str]:
    base = store_dir / "verdicts"
    if cc is None:
        return [str(p) for p in sorted(base.rglob("*.parquet"))]
    files = []
    for day_dir in sorted(base.iterdir()):
        day = day_dir.name.removeprefix("day=")
        if (day0 is None or day >= day0) and (day1 is None or day <= day1):
            files += [str(p) for p in sorted((day_dir / f"cc={cc}").glob("*.parquet"))]
    return files


def bare_event(store_dir: Path, event: dict[str, Any], pruned: bool) -> tuple[float, int]:
    """Count an event's verdicts (its platform, country, networks and window) with a fresh
    DuckDB connection: over its country's and days' files, or over every file."""
    import duckdb

    started = time.perf_counter()
    start = event["start_earliest"]
    end = event.get("end_latest")
    files = (
        _verdict_files(store_dir, event["country"], start[:10], end[:10] if end else None)
        if pruned
        else _verdict_files(store_dir, None, None, None)
    )
    con = duckdb.connect()
    try:
        sql = (
            f"SELECT count(*) FROM read_parquet({files!r}) WHERE probe_cc = $cc "
            "AND probe_asn IN (SELECT unnest($asns)) AND measurement_start_time >= $start"
            + (" AND measurement_start_time < $end" if end else "")
            + (" AND platform = $platform" if event["platform"] != "*" else "")
        )
        params: dict[str, Any] = {"cc": event["country"], "start": datetime.fromisoformat(start),
                                  "asns": [int(n["asn"]) for n in event["networks"]]}  # fmt: skip
        if end:
            params["end"] = datetime.fromisoformat(end)
        if event["platform"] != "*":
            params["platform"] = event["platform"]
        (n,) = con.execute(sql, params).fetchone()  # type: ignore[misc]
    finally:
        con.close()
    return time.perf_counter() - started, int(n)


def bare_cells(store_dir: Path, cc: str, plat: str, since: str, until: str) -> tuple[float, int]:
    """A timeline's hourly sums from cells.parquet, with a fresh DuckDB connection."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT hour, sum(ok), sum(anomaly), sum(confirmed), sum(failure), sum(n_probes) "
            "FROM read_parquet(?) WHERE probe_cc = ? AND platform = ? AND hour >= ? AND hour < ? "
            "GROUP BY hour ORDER BY hour",
            [str(store_dir / "cells" / "cells.parquet"), cc, plat,
             int(datetime.fromisoformat(since + "T00:00:00+00:00").timestamp()),
             int(datetime.fromisoformat(until + "T00:00:00+00:00").timestamp())],
        ).fetchall()  # fmt: skip
    finally:
        con.close()
    return time.perf_counter() - started, len(rows)


def run_bare(store_dir: Path, kind: str, tg: dict[str, Any], requests: int,
             seconds: float) -> dict[str, Any]:  # fmt: skip
    times: list[float] = []
    counts: list[int] = []
    deadline = time.monotonic() + seconds
    for i in range(requests):
        if time.monotonic() > deadline:
            break
        if kind == "bare_cells":
            cc, plat, a, b = tg["timelines"][30][i % len(tg["timelines"][30])]
            t, n = bare_cells(store_dir, cc, plat, a, b)
        else:
            t, n = bare_event(store_dir, tg["events"][i % len(tg["events"])], kind == "bare_pruned")
        times.append(t)
        counts.append(n)
    return {"missing": False, "warm": times, "counts": counts}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure(store_dir: Path, manifest: dict[str, Any], args: argparse.Namespace,
            work: Path) -> dict[str, Any]:  # fmt: skip
    tg = targets(store_dir, manifest["meta"], args.targets, args.seed)
    log_path = work / "explorer.log"
    kinds = [*PAGES, *BARE]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    missing: set[str] = set()
    for round_ in range(args.rounds):  # interleaved and rotated: drift hits every kind alike
        order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
        for kind in order:
            if kind in missing:
                continue
            if kind in PAGES:
                res = run_page(store_dir, kind, page_urls(kind, tg), args.requests,
                               args.seconds, log_path)  # fmt: skip
            else:
                res = run_bare(store_dir, kind, tg, args.requests, args.seconds)
            res["round"] = round_
            if res["missing"]:
                missing.add(kind)
            runs[kind].append(res)
            brief = {k: v for k, v in res.items() if k not in ("warm", "counts", "per_url")}
            if res.get("warm"):
                brief.update(n=len(res["warm"]), p50=pct(res["warm"], 0.5),
                             p95=pct(res["warm"], 0.95))  # fmt: skip
            log(f"round {round_} {kind}: {json.dumps(brief)}")
    return {"targets": tg, "runs": runs, "missing": sorted(missing)}


# -- profile -------------------------------------------------------------------------------------


def child_profile(store_dir: Path, event_id: str, cc: str, top: int) -> dict[str, Any]:
    """Where a warm event page, timeline page and country page spend their time,
    in-process. The explorer is being changed: a step whose function is gone is skipped."""
    import cProfile
    import pstats

    from blockproof.explorer import evidence
    from blockproof.pipeline.store import Store

    store = Store(str(store_dir))
    event = evidence.find_event(store, event_id)
    evidence.gather(store, event_id)  # warm: imports, page cache
    phases: list[dict[str, Any]] = []

    def clock(label: str, fn: Any, *a: Any, **kw: Any) -> float:
        if fn is None:
            phases.append({"phase": label, "s": None})
            return 0.0
        runs = []
        try:
            for _ in range(3):
                started = time.perf_counter()
                fn(*a, **kw)
                runs.append(time.perf_counter() - started)
        except Exception as exc:  # a step that changed under us: say so, go on
            phases.append({"phase": f"{label} (failed: {type(exc).__name__})", "s": None})
            return 0.0
        phases.append({"phase": label, "s": statistics.fmean(runs)})
        return statistics.fmean(runs)

    def counting(module: Any, name: str, acc: list[float]) -> Any:
        original = getattr(module, name)

        def wrapper(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                acc[0] += time.perf_counter() - started
                acc[1] += 1

        setattr(module, name, wrapper)
        return original

    clock("event page: gather (whole)", evidence.gather, store, event_id)
    clock("  find_event (read and parse events.json)", evidence.find_event, store, event_id)
    clock("  _timeline (hourly buckets around the event)",
          getattr(evidence, "_timeline", None), store, event)  # fmt: skip
    kept_name = next((n for n in ("kept_bytes", "_kept_bytes") if hasattr(evidence, n)), None)
    acc = [0.0, 0]
    original = counting(evidence, kept_name, acc) if kept_name else None
    try:
        samples_s = clock("  _samples (whole)", getattr(evidence, "_samples", None), store, event,
                          evidence.SAMPLE_SIZE)  # fmt: skip
    finally:
        if kept_name:
            setattr(evidence, kept_name, original)
    if samples_s:
        phases.append({"phase": f"    of which {kept_name} ({acc[1] // 3} samples' bytes read "
                       "from gzip sources: find, decompress to the line, hash, signature)",
                       "s": acc[0] / 3})  # fmt: skip
        phases.append({"phase": "    of which the DuckDB query and the rest",
                       "s": samples_s - acc[0] / 3})  # fmt: skip
    picked_sql = _picked_sql(event)
    last = (event.get("end_latest") or "9999")[:10]
    for label, files in (
        ("every verdicts file", _verdict_files(store_dir, None, None, None)),
        ("the event's country's and days' files",
         _verdict_files(store_dir, event["country"], event["start_earliest"][:10], last)),
    ):  # fmt: skip
        clock(f"  bare: the sample pick alone (no join), {label} ({len(files):,})",
              _run_picked, picked_sql, files, event)  # fmt: skip
    m_all = [str(p) for p in sorted((store_dir / "measurements").rglob("*.parquet"))]
    m_cc = [p for p in m_all if f"cc={event['country']}" in p]
    clock(f"  bare: read msm_id of every measurements file ({len(m_all):,})", _scan_ids, m_all)
    clock(f"  bare: read msm_id of the country's measurements files ({len(m_cc):,})",
          _scan_ids, m_cc)  # fmt: skip
    clock("  store.files('verdicts') (rglob of the table directory)", store.files, "verdicts")
    try:
        from blockproof.explorer import timeline as tl_mod
    except ImportError:
        tl_mod = None
    if tl_mod is not None:
        end = datetime.fromtimestamp(START, UTC).date() + timedelta(days=60)
        for span in (30, 7):
            since = end - timedelta(days=span)
            read = [0.0, 0]
            orig = counting(tl_mod, "read_cells", read) if hasattr(tl_mod, "read_cells") else None
            try:
                whole = clock(f"timeline {event['country']}/{event['platform']} {span} days: "
                              "timeline() (whole)", tl_mod.timeline, store, event["country"],
                              event["platform"], since=since, until=end)  # fmt: skip
            finally:
                if orig is not None:
                    tl_mod.read_cells = orig
            if orig is not None and whole:
                phases.append({"phase": f"  of which read_cells ({read[1] // 3} reads of "
                               "cells.parquet)", "s": read[0] / 3})  # fmt: skip
    clock(f"country page: country_status({cc}) (whole)",
          getattr(evidence, "country_status", None), store, cc)  # fmt: skip
    profiler = cProfile.Profile()
    profiler.enable()
    started = time.perf_counter()
    evidence.gather(store, event_id)
    profiled = time.perf_counter() - started
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (path, line, name), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = _short(path)
        rows.append({"function": f"{short}:{line}({name})" if line else name,
                     "calls": calls, "own_s": own, "cum_s": cum})  # fmt: skip
    rows.sort(key=lambda r: -r["own_s"])
    return {"event": event_id, "event_measurements": event["n_measurements"], "cc": cc,
            "phases": phases, "profiled_s": profiled, "own": rows[:top]}  # fmt: skip


def _short(path: str) -> str:
    """A function's file without this machine's directories."""
    for marker in ("site-packages/", "/src/"):
        if marker in path:
            return path.split(marker)[-1]
    if "/lib/python" in path:
        return path.split("/lib/python")[-1].split("/", 1)[-1]
    return Path(path).name if "/" in path else path


def _picked_sql(event: dict[str, Any]) -> str:
    end = " AND v.measurement_start_time < $end" if event.get("end_latest") else ""
    plat = "" if event["platform"] == "*" else " AND v.platform = $platform"
    return f"""
        WITH picked AS (
            SELECT v.msm_id, v.probe_asn, v.outcome, v.method,
                   row_number() OVER (
                       PARTITION BY v.probe_asn, v.method
                       ORDER BY v.outcome <> 'confirmed', v.measurement_start_time, v.msm_id
                   ) AS rank
            FROM read_parquet($files) v
            WHERE v.probe_cc = $cc AND v.probe_asn IN (SELECT unnest($asns))
              AND v.measurement_start_time >= $start {end} {plat}
              AND v.outcome IN ('anomaly', 'confirmed'))
        SELECT * FROM picked WHERE rank = 1 LIMIT 12"""


def _run_picked(sql: str, files: list[str], event: dict[str, Any]) -> None:
    import duckdb

    params: dict[str, Any] = {"files": files, "cc": event["country"],
                              "asns": [int(n["asn"]) for n in event["networks"]],
                              "start": datetime.fromisoformat(event["start_earliest"])}  # fmt: skip
    if event.get("end_latest"):
        params["end"] = datetime.fromisoformat(event["end_latest"])
    if event["platform"] != "*":
        params["platform"] = event["platform"]
    con = duckdb.connect()
    try:
        con.execute(sql, params).fetchall()
    finally:
        con.close()


def _scan_ids(files: list[str]) -> None:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(
            "SELECT count(*) FROM read_parquet(?) WHERE msm_id = 'none'", [files]
        ).fetchall()
    finally:
        con.close()


def _names(files: list[str]) -> None:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SELECT probe_asn, mode(probe_network_name) FROM read_parquet(?) "
                    "GROUP BY probe_asn", [files]).fetchall()  # fmt: skip
    finally:
        con.close()


# -- markdown ------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:,.0f}"


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rounds = [r for r in runs if not r.get("missing") and r.get("warm")]
    colds = [r["cold"] for r in runs if "cold" in r]
    every = [t for r in rounds for t in r["warm"]]
    return {
        "n": len(every),
        "rounds": len(rounds),
        "cold": statistics.median(colds) if colds else float("nan"),
        "cold_min": min(colds, default=float("nan")),
        "cold_max": max(colds, default=float("nan")),
        "p50": statistics.median(pct(r["warm"], 0.5) for r in rounds) if rounds else float("nan"),
        "p95": statistics.median(pct(r["warm"], 0.95) for r in rounds) if rounds else float("nan"),
        "max": max(every, default=float("nan")),
        "rss": max((r.get("rss_mb", float("nan")) for r in rounds), default=float("nan")),
        "startup": statistics.median(r["startup_s"] for r in runs) if colds else float("nan"),
        "errors": sum(n for r in runs for s, n in r.get("statuses", {}).items() if s != "200"),
        "bytes": statistics.median(r["bytes"] for r in rounds) if colds and rounds else 0,
    }


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform_mod.python_version()}
    for name in ("duckdb", "pyarrow", "starlette", "uvicorn", "httpx"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def results_table(res: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    sums = {k: summarize(v) for k, v in res["runs"].items()}
    bare = sums["bare_pruned"]["p50"]
    lines = [
        "| request | warm requests | cold: first request of a new process (ms, median; min-max) "
        "| warm p50 (ms) | warm p95 (ms) | warm max (ms) | p50 / bare pruned count "
        "| explorer peak RSS (MB) | page size (kB) | non-200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    stand_in = bool({"timeline30", "timeline7"} & set(res["missing"]))
    for kind, label in {**PAGES, **BARE}.items():
        s = sums[kind]
        if stand_in and kind in ("event_json", "country"):
            label += " (**stand-in** for the missing timeline)"
        if kind in res["missing"]:
            lines.append(f"| {label} | **missing** (the explorer answers 404: not built yet, not "
                         "timed) | - | - | - | - | - | - | - | - |")  # fmt: skip
            continue
        cold = "-" if kind in BARE else (
            f"{_ms(s['cold'])} ({_ms(s['cold_min'])}-{_ms(s['cold_max'])})")  # fmt: skip
        ratio = s["p50"] / bare if bare == bare and bare > 0 else float("nan")
        lines.append(
            f"| {label} | {s['n']:,} | {cold} | {_ms(s['p50'])} | **{_ms(s['p95'])}** "
            f"| {_ms(s['max'])} | {ratio:.1f}x | "
            + ("-" if kind in BARE else f"{s['rss']:.0f}")
            + " | "
            + ("-" if kind in BARE else f"{s['bytes'] / 1e3:.0f}")
            + f" | {'-' if kind in BARE else s['errors']} |"
        )
    return "\n".join(lines), sums


def profile_tables(prof: dict[str, Any]) -> str:
    lines = [
        f"In-process, warm (each figure the mean of 3 calls), for the largest event "
        f"(`{prof['event']}`, {prof['event_measurements']:,} measurements), a timeline of its "
        f"platform in its country ending at the end of the data, and the country page of "
        f"{prof['cc']}; the bare rows are DuckDB alone over the same files:",
        "",
        "| step | ms |",
        "|---|---:|",
    ]
    for p in prof["phases"]:
        shown = "n/a" if p["s"] is None else f"{p['s'] * 1000:,.0f}"
        lines.append(f"| {p['phase']} | {shown} |")
    lines += [
        "",
        f"cProfile of one warm `gather()` ({prof['profiled_s']:.2f} s under the profiler), "
        "top functions by own time:",
        "",
        "| function | calls | own (s) | cumulative (s) |",
        "|---|---:|---:|---:|",
    ]
    for f in prof["own"]:
        lines.append(
            f"| `{f['function']}` | {f['calls']:,} | {f['own_s']:.3f} | {f['cum_s']:.3f} |"
        )
    return "\n".join(lines)


def _run_args(args: argparse.Namespace) -> dict[str, Any]:
    return {"rounds": args.rounds, "requests": args.requests, "targets": args.targets}


def render(store: dict[str, Any], res: dict[str, Any], prof: dict[str, Any] | None,
           run: dict[str, Any]) -> str:  # fmt: skip
    meta = store["meta"]
    events = res["targets"]["events"]
    big = events[0] if events else None
    table, sums = results_table(res)
    b = store["bytes"]
    parts = [
        f"_Measured {time.strftime('%Y-%m-%d')} with `python tests/bench/explorer_bench.py "
        f"--work DIR --write docs/benchmarks.md`: {run['rounds']} interleaved rounds; in each, "
        f"every page type in a new explorer process (its first request is the cold one, then "
        f"up to {run['requests']} warm requests cycling over {len(events)} events, "
        f"{len(res['targets']['countries'])} countries or {run['targets']} timeline ranges), and "
        f"the bare queries in this process; p50 and p95 are the median of the rounds' own, max "
        f"over all rounds. Loopback; the files are in the page cache (cold = new process, not "
        f"a cold disk)._",
        f"**Machine.** {os.cpu_count()} cores ({platform_mod.machine()}, {platform_mod.system()} "
        f"{platform_mod.release()}); " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        f"**Store.** **{store['measurements']:,} measurements** ({store['verdicts']:,} verdicts, "
        f"same ids), {meta['days']} days from {datetime.fromtimestamp(START, UTC):%Y-%m-%d}: "
        f"`measurements` {b['measurements'] / 1e6:,.0f} MB in {store['files']['measurements']:,} "
        f"files and `verdicts` {b['verdicts'] / 1e6:,.0f} MB in {store['files']['verdicts']:,} "
        f"files (`day=/cc=` partitions written by `Store.stage`/`commit`, one file per day, "
        f"country and {meta['chunk_days']}-day generation chunk), and `sources/`: "
        f"{store['source_files']:,} gzip JSON-lines files, {b['sources'] / 1e9:.1f} GB "
        f"({store['raw_bytes'] / 1e9:.1f} GB of measurements, "
        f"{store['raw_bytes'] / store['measurements']:,.0f} bytes each: synthetic "
        f"web_connectivity documents, smaller than most real ones). {len(COUNTRIES)} countries x "
        f"{ASNS_PER_COUNTRY} ASNs (Zipf-weighted), {len(PLATFORMS)} platforms, {PROBES:,} probes "
        f"in runs of about {MEAN_RUN} measurements; outcomes "
        + ", ".join(f"{k} {v:.2%}" for k, v in OUTCOME_P.items())
        + f"; {BLOCKS} blocks of one platform on one network for 6 h to 10 days by one method "
        f"({BLOCK_ANOMALY:.0%} of its measurements show it), 2 network outages, and X blocked in "
        f"Pakistan on 5 networks from day 17 to the end (TLS on four, DNS on one). Generated in "
        f"{store['build_s'] / 60:.1f} min on {store['jobs']} cores, then `blockproof analyze` in "
        f"{store['analyze_s'] / 60:.1f} min: **{store['cells']:,} cells, {store['events']} "
        f"events**"
        + (f" (largest: `{big['id']}`, {big['n_measurements']:,} measurements on "
           f"{len(big['networks'])} networks)" if big else "")
        + "."
        + (f" Columns filled with a neutral value (unknown to the generator): "
           f"{', '.join(store['generic_columns'])}." if store["generic_columns"] else ""),
        table,
    ]  # fmt: skip
    goals = ["**Goal: p95 under 300 ms** (warm)."]
    for kind in ("event", "timeline30", "timeline7"):
        if kind in res["missing"]:
            goals.append(f"* {PAGES[kind]}: **not measured**: the page does not exist yet.")
            continue
        p95 = sums[kind]["p95"]
        verdict = "met" if p95 < 0.3 else "not met"
        goals.append(f"* {PAGES[kind]}: p95 {_ms(p95)} ms: **{verdict}**.")
    parts.append("\n".join(goals))
    if prof:
        parts.append("### Where the event page's time goes\n\n" + profile_tables(prof))
    return "\n\n".join(parts)


HEADER = """## Explorer: page times

**Question.** How long do the explorer's pages take on a store of at least 10 million
measurements, the event page and the platform-in-country timeline first, and how far is
that from the least work such a page must do (a bare DuckDB query over the same files)?
Goal: p95 under 300 ms.

**Setup.** `tests/bench/explorer_bench.py --work DIR`. A synthetic store built with the
store's own schemas and writer (cached in `DIR`), analyzed by the real `blockproof analyze`;
`blockproof serve explorer` in its own process on 127.0.0.1, timed with httpx, one request
at a time. See the script's docstring for what the store holds.
"""


def write_section(path: Path, text: str) -> None:
    section = f"{BEGIN}\n{text}\n{END}"
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + section + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + HEADER + "\n" + section + "\n"
    path.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--event", help=argparse.SUPPRESS)
    parser.add_argument("--cc", default="PK", help=argparse.SUPPRESS)
    parser.add_argument(
        "--work", type=Path, required=True,
        help="work directory (outside the repository): the store is cached there",
    )  # fmt: skip
    parser.add_argument("--measurements", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--chunk-days", type=int, default=3, help="days generated at a time")
    parser.add_argument("--jobs", type=int, default=2, help="generator processes")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=25,
                        help="warm requests per page type per round, at most")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=90.0,
                        help="time per page type per round, at most (then it stops)")  # fmt: skip
    parser.add_argument("--targets", type=int, default=12,
                        help="events and timeline ranges to cycle through")  # fmt: skip
    parser.add_argument("--top", type=int, default=12, help=argparse.SUPPRESS)
    parser.add_argument("--reanalyze", action="store_true",
                        help="run `blockproof analyze` again on the cached store")  # fmt: skip
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--render", type=Path, help="no measuring: render (and --write) a --json run's results"
    )
    parser.add_argument("--write", type=Path, help="update this markdown file's explorer section")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        text = render(saved["store"], saved["results"], saved["profile"], saved["args"])
        print(text)
        if args.write:
            write_section(args.write, text)
        return
    work = args.work.resolve()
    store_dir = work / "store"
    if args.child == "profile":
        print(json.dumps(child_profile(store_dir, args.event, args.cc, args.top)))
        return
    if work.is_relative_to(ROOT):
        raise SystemExit("the work directory must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)
    store = build_store(store_dir, args.measurements, args.days, args.seed, args.jobs,
                        args.chunk_days, args.reanalyze)  # fmt: skip
    log(f"store: {json.dumps({k: v for k, v in store.items() if k != 'meta'})}")
    res = measure(store_dir, store, args, work)
    prof = None
    if args.profile and res["targets"]["events"]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "profile", "--work", str(work), "--event",
             res["targets"]["events"][0]["id"], "--cc", res["targets"]["events"][0]["country"]],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if out.returncode == 0:
            prof = json.loads(out.stdout)
        else:
            log(f"profile failed:\n{out.stderr[-3000:]}")
    if args.json:
        saved = {"store": store, "results": res, "profile": prof, "args": _run_args(args)}
        args.json.write_text(json.dumps(saved, indent=2, default=str))
    text = render(store, res, prof, _run_args(args))
    print(text)
    if args.write:
        write_section(args.write, text)


if __name__ == "__main__":
    main()
