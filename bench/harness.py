"""Shared machinery of the vendor benchmarks (``bench_<vendor>.py``): world process, measurement, tables.

A benchmark script describes its vendor with a :class:`Vendor` (how to generate the input once, how to
serve it from a simulator, how to run each variant) and calls :func:`main`. The script is then run in
three roles, chosen by hidden flags:

* the **driver** (no flag): generates the input once into ``bench/data/``, starts the world, runs every
  variant ``--runs`` times in fresh processes and prints the table;
* the **world** (``--world``): moto's S3 behind a small HTTP front, and the vendor simulator serving the
  pre-generated file, both on loopback, so neither moto's objects nor the vendor's work count against
  the measured process;
* a **measured process** (``--measure VARIANT``): imports what the variant needs, notes its RSS and CPU
  time (``post-import``), runs the variant once and prints one JSON line.

The figures are the operating system's accounting of the whole measured process (``os.wait4``): wall
clock, user+sys CPU and maximum resident set size (``ru_maxrss``), with interpreter start-up and imports
included, as in a Lambda invocation. It is started by ``launch.py``, a small process of its own, because Linux
counts the spawning process's peak into the spawned one's ``ru_maxrss``. The process also reports its own
``VmHWM`` (a cross-check of ``ru_maxrss``) and the peak of Arrow's default memory pool.

Only the standard library is imported at module level: a measured process must not pay for the driver.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import launch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RAW_BUCKET = "bench-raw"
CURATED_BUCKET = "bench-curated"
GOAL_MIB = 300
GOAL_RATIO = 1 / 3
BASELINE = "pandas"

sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

# A variant's preparation: do the imports and set-up, return the work to measure (which returns its facts).
Prepare = Callable[[dict[str, Any], Path, Path], Callable[[], dict[str, Any]]]


@dataclass(frozen=True)
class Vendor:
    """What a benchmark script tells the harness about its vendor."""

    name: str
    title: str
    script: str
    suffix: str
    variants: dict[str, str]
    generate: Callable[[Path, int], None]
    serve: Callable[[Path], dict[str, Any]]
    prepare: dict[str, Prepare]
    check_column: str
    pipeline: tuple[str, ...] = ("download", "parquet")
    peak_goal: float = 0.5
    """Goal P1: WriteParquet's peak at most this fraction of pandas'."""

    def source(self, rows: int) -> Path:
        return DATA / f"{self.name}_{rows}{self.suffix}"


class NoPandas(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` (and, with ``numpy``, ``import numpy``) fail as it would where they are not
    installed: the WriteParquet bundle has neither (``bench_cold_start.py`` lists what it holds).

    pyarrow imports pandas lazily on first use when it is there (~1 s, ~40 MiB), and numpy when it loads
    (~0.1 s): our variants block both so they pay what the deployed function pays; the peers block pandas.
    """

    def __init__(self, *, numpy: bool = False) -> None:
        self.blocked = ("pandas", "numpy") if numpy else ("pandas",)

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.split(".", 1)[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


OURS = ("download", "parquet", "convert")
"""The variants that run the project's code (the rest are the peers and the pandas baseline)."""
FLOOR = "pyarrow"
"""pyarrow alone on the same file: the library WriteParquet runs on, without the project's code."""


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Input.


def generate_once(path: Path, rows: int, write: Callable[[int], Iterator[bytes]]) -> None:
    """Write ``write(rows)``'s chunks to ``path`` unless a file for the same row count is already there."""
    marker = path.with_name(path.name + ".rows")
    if path.exists() and marker.exists() and marker.read_text() == str(rows):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        for chunk in write(rows):
            out.write(chunk)
    partial.replace(path)
    marker.write_text(str(rows))
    print(f"generated {rows:,} rows -> {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - started:.1f} s", flush=True)


def file_chunks(path: Path | str, size: int = 1 << 20) -> Iterator[bytes]:
    """A file's bytes in chunks (what a simulator serves instead of generating rows on every request)."""
    with Path(path).open("rb") as data:
        while chunk := data.read(size):
            yield chunk


# The world: S3 (moto) and the vendor simulator, in their own process.


def serve_world(vendor: Vendor, source: Path) -> None:
    """Serve moto S3 and the vendor's simulator; print where (one JSON line), then serve until killed."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    import boto3
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.compat import HTTPHeaders
    from moto import mock_aws
    from moto.core.models import botocore_stubber

    mock = mock_aws()
    mock.start()
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in (RAW_BUCKET, CURATED_BUCKET):
        s3.create_bucket(Bucket=bucket)

    class S3Front(BaseHTTPRequestHandler):
        """Hands each HTTP request to moto's own dispatcher (the venv has no ``moto[server]``/flask)."""

        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = HTTPHeaders()
            for name, value in self.headers.items():
                headers[name] = value
            request = AWSPreparedRequest(self.command, f"https://s3.amazonaws.com{self.path}", headers, body, False)
            status, out_headers, out_body = botocore_stubber.process_request(request)  # type: ignore[misc]
            payload = out_body.encode() if isinstance(out_body, str) else (out_body or b"")
            self.send_response(int(status))
            sent_length = False
            for name, value in dict(out_headers).items():
                if name.lower() == "transfer-encoding":
                    continue
                if name.lower() == "content-length":
                    if self.command != "HEAD":
                        continue
                    sent_length = True
                self.send_header(name, str(value))
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            elif not sent_length:
                self.send_header("Content-Length", "0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    front = ThreadingHTTPServer(("127.0.0.1", 0), S3Front)
    front.daemon_threads = True
    Thread(target=front.serve_forever, daemon=True).start()
    world = {"s3": f"http://127.0.0.1:{front.server_address[1]}", **vendor.serve(source)}
    print(json.dumps(world), flush=True)
    while True:
        time.sleep(3600)


def s3_env(world: dict[str, Any]) -> dict[str, str]:
    """Environment that points boto3 at the world's S3 (as ``AWS_ENDPOINT_URL_S3`` would in the local runner)."""
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": world["s3"], "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    return env


def measured_env(world: dict[str, Any]) -> dict[str, str]:
    """The world's S3, plus a bytecode cache of the benchmark's own (``bench/data/pycache``).

    Without cached bytecode every measured process would compile each module it imports (a venv
    synced without ``.pyc`` files, or ``PYTHONDONTWRITEBYTECODE`` set) and count that as import time.
    A deployed Lambda ships compiled dependencies; the warm-up run fills the cache.
    """
    env = s3_env(world)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(DATA / "pycache")
    return env


# A measured process.


def _sample(path: Path, stop: Any, interval: float = 0.005) -> None:
    """Append (seconds, VmRSS MiB, Arrow pool MiB) to ``path`` every ``interval`` until ``stop`` is set."""
    started = time.perf_counter()
    samples = []
    pool = sys.modules["pyarrow"].default_memory_pool() if "pyarrow" in sys.modules else None
    while not stop.wait(interval):
        arrow = pool.bytes_allocated() / 2**20 if pool is not None else 0.0
        samples.append(f"{time.perf_counter() - started:.3f}\t{_status_mib('VmRSS'):.1f}\t{arrow:.1f}\n")
    path.write_text("seconds\trss_mib\tarrow_mib\n" + "".join(samples))


def measured_main(vendor: Vendor, variant: str, source: Path, scratch: Path, trace: Path | None = None) -> None:
    if variant != BASELINE:
        sys.meta_path.insert(0, NoPandas(numpy=variant in (*OURS, FLOOR)))
    world = json.loads(sys.stdin.read())
    work = vendor.prepare[variant](world, source, scratch)
    imported = {"import_rss_mib": _status_mib("VmRSS"), "import_cpu": _cpu_seconds()}
    started = time.perf_counter()
    if trace is not None:
        import threading

        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(trace, stop), daemon=True)
        sampler.start()
    try:
        result = work()
    finally:
        if trace is not None:
            stop.set()
            sampler.join()
    # The work alone: after the imports and set-up (a peer's connection, our reader's dataset), before exit.
    result.update(imported, work_wall=time.perf_counter() - started, vm_hwm_mib=_status_mib("VmHWM"))
    if "pyarrow" in sys.modules:
        result["arrow_peak_mib"] = sys.modules["pyarrow"].default_memory_pool().max_memory() / 2**20
    print(json.dumps(result), flush=True)


def run_measured(vendor: Vendor, variant: str, world: dict[str, Any], source: Path, scratch: Path,
                 trace: Path | None = None) -> dict[str, Any]:
    """Run one variant in a fresh process; return its facts plus the OS's wall, CPU and peak RSS.

    The process is started by ``launch.py``, so its peak is its own, not this driver's (which grows once the
    outputs are read back)."""
    command = [sys.executable, vendor.script, "--measure", variant, "--source", str(source), "--scratch", str(scratch)]
    if trace is not None:
        command += ["--trace", str(trace)]
    output, usage = launch.spawn(command, stdin=json.dumps(world).encode(), env=measured_env(world), cwd=ROOT)
    if usage["status"] != 0:
        raise SystemExit(f"{vendor.name} variant {variant} failed with exit code {usage['status']}")
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    result.update(wall=usage["wall"], cpu=usage["cpu"], rss_mib=usage["rss_mib"])
    return result


# The driver.


def main(vendor: Vendor) -> None:
    parser = argparse.ArgumentParser(description=f"Benchmark: {vendor.title}")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the report (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per variant, interleaved; the table shows medians")
    parser.add_argument("--warmup", type=int, default=1,
                        help="unrecorded runs of each variant first (page cache, bytecode cache; default 1)")
    parser.add_argument("--variants", default=",".join(vendor.variants),
                        help="comma list of " + ", ".join(vendor.variants) + " (default: all)")
    parser.add_argument("--trace", type=Path, metavar="DIR",
                        help="also write each measured run's RSS and Arrow-pool timeline (5 ms samples) into DIR; "
                             "the sampler thread perturbs the figures slightly")
    parser.add_argument("--scale", type=int, default=3,
                        help="then WriteParquet once more on a report this many times larger, for its peak against "
                             "the first size's (default 3; 1: skip)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--world", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.world:
        serve_world(vendor, args.source)
        return
    if args.measure:
        measured_main(vendor, args.measure, args.source, args.scratch, args.trace)
        return

    if args.runs < 1 or args.rows < 1 or args.warmup < 0:
        parser.error("--runs and --rows must be at least 1, --warmup at least 0")
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in vendor.variants]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(vendor.variants)}")
    if "parquet" in variants and "download" not in variants:
        variants.insert(0, "download")  # WriteParquet reads what DownloadReport put into S3
    source = vendor.source(args.rows)
    vendor.generate(source, args.rows)
    scratch = DATA / "scratch" / vendor.name
    scratch.mkdir(parents=True, exist_ok=True)
    world_proc = subprocess.Popen([sys.executable, vendor.script, "--world", "--source", str(source)],
                                  stdout=subprocess.PIPE, cwd=ROOT)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        assert world_proc.stdout is not None
        world = json.loads(world_proc.stdout.readline())
        for run in range(-args.warmup, args.runs):
            label = f"run {run + 1}/{args.runs}" if run >= 0 else "warm-up"
            for variant in variants:
                trace = None
                if args.trace is not None and run >= 0:
                    args.trace.mkdir(parents=True, exist_ok=True)
                    trace = args.trace.resolve() / f"{vendor.name}-{variant}-{run + 1}.tsv"
                result = run_measured(vendor, variant, world, source, scratch, trace)
                if variant == "download":
                    world["raw"] = result["raw"]
                if run >= 0:
                    results.setdefault(variant, []).append(result)
                print(f"{vendor.name} {label:7s} {variant:9s} wall {result['wall']:6.2f} s"
                      f"  cpu {result['cpu']:6.2f} s  peak {result['rss_mib']:5.0f} MiB"
                      f"  (post-import {result['import_rss_mib']:3.0f} MiB, VmHWM {result['vm_hwm_mib']:.0f},"
                      f" Arrow pool peak {result.get('arrow_peak_mib', 0):.0f})", flush=True)
        checks = verify(vendor, results, world)
    finally:
        world_proc.terminate()
        world_proc.wait(timeout=30)
    if args.scale > 1 and "parquet" in results:
        results["parquet, scaled"] = [scaled_peak(vendor, args.rows * args.scale, scratch, args.runs)]
    report(vendor, results, args.rows, source, checks)


def scaled_peak(vendor: Vendor, rows: int, scratch: Path, runs: int) -> dict[str, Any]:
    """WriteParquet as deployed on a ``rows``-row report (after DownloadReport put it in S3), ``runs`` times: the
    facts of the run with the median peak."""
    source = vendor.source(rows)
    vendor.generate(source, rows)
    # (not pointed at the first world's S3, which verify() set in this process's environment)
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL_S3"}
    world_proc = subprocess.Popen([sys.executable, vendor.script, "--world", "--source", str(source)],
                                  stdout=subprocess.PIPE, cwd=ROOT, env=env)
    try:
        assert world_proc.stdout is not None
        world = json.loads(world_proc.stdout.readline())
        world["raw"] = run_measured(vendor, "download", world, source, scratch)["raw"]
        results = []
        for run in range(-1, runs):  # a warm-up first, as in the rounds (the new file's first read, the caches)
            result = run_measured(vendor, "parquet", world, source, scratch)
            if run >= 0:
                results.append(result)
            label = f"run {run + 1}/{runs}" if run >= 0 else "warm-up"
            print(f"{vendor.name} {rows:,} rows, {label}: parquet wall {result['wall']:6.2f} s"
                  f"  cpu {result['cpu']:6.2f} s  peak {result['rss_mib']:5.0f} MiB  ({result['rows']:,} rows out)",
                  flush=True)
    finally:
        world_proc.terminate()
        world_proc.wait(timeout=30)
    median = sorted(results, key=lambda r: r["rss_mib"])[len(results) // 2]
    return {**median, "scaled_rows": rows, "runs": len(results)}


def verify(vendor: Vendor, results: dict[str, list[dict[str, Any]]], world: dict[str, Any]) -> dict[str, str]:
    """Exact sum of ``vendor.check_column`` in each Parquet output (the published one is read back from S3)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def total(table: pa.Table) -> str:
        return str(pc.sum(table.column(0)).as_py())

    sums: dict[str, str] = {}
    for variant, runs in results.items():
        last = runs[-1]
        if "path" in last:
            sums[variant] = total(pq.read_table(last["path"], columns=[vendor.check_column]))
            if variant == "convert":
                # Our file read by another engine too (its encodings and compression are Athena's to read).
                import duckdb

                (row,) = duckdb.sql(f"SELECT sum({vendor.check_column}) FROM read_parquet('{last['path']}')").fetchall()
                sums["convert, read by duckdb"] = str(row[0])
        elif "bucket" in last:
            os.environ.update(s3_env(world))
            import boto3

            body = boto3.client("s3").get_object(Bucket=last["bucket"], Key=last["key"])["Body"].read()
            sums[variant] = total(pq.read_table(pa.BufferReader(body), columns=[vendor.check_column]))
    return sums


def report(vendor: Vendor, results: dict[str, list[dict[str, Any]]], rows: int, source: Path,
           checks: dict[str, str]) -> None:
    import pyarrow

    try:
        import pandas

        pandas_version = pandas.__version__
    except ImportError:
        pandas_version = "not installed"

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    base = BASELINE if BASELINE in results else None
    runs = len(next(iter(results.values())))
    print(f"\n{vendor.title}: {rows:,} rows, {source.stat().st_size / 1e6:.1f} MB {vendor.suffix.lstrip('.')}; "
          f"pyarrow {pyarrow.__version__}, pandas {pandas_version}, {os.cpu_count()} CPUs; "
          f"medians of {runs} run(s), whole process\n")
    print("| variant | wall s | CPU s | peak MiB | post-import MiB | import CPU s "
          "| wall ÷ pandas | CPU ÷ pandas | peak ÷ pandas | goal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    limit = GOAL_MIB if base is None else min(GOAL_MIB, GOAL_RATIO * median(base, "rss_mib"))
    for variant in [v for v in results if v in vendor.variants]:
        wall, cpu, rss = median(variant, "wall"), median(variant, "cpu"), median(variant, "rss_mib")
        ratios = ["-", "-", "-"]
        if base:
            ratios = [f"{value / median(base, key):.2f}" for value, key in
                      ((wall, "wall"), (cpu, "cpu"), (rss, "rss_mib"))]
        goal = "baseline" if variant == base else ("met" if rss < limit else "not met")
        print(f"| {vendor.variants[variant]} | {wall:.2f} | {cpu:.2f} | {rss:.0f} "
              f"| {median(variant, 'import_rss_mib'):.0f} | {median(variant, 'import_cpu'):.2f} "
              f"| {' | '.join(ratios)} | {goal} |")
    goal_text = f"peak < {GOAL_MIB} MiB"
    if base:
        goal_text += f" and < ⅓ of pandas' peak ({GOAL_RATIO * median(base, 'rss_mib'):.0f} MiB)"
    print(f"\nratios are ours ÷ pandas (below 1 is better); goal: {goal_text}. Reported, never asserted.")
    print("post-import: RSS and CPU once the variant's imports and set-up are done, before any work "
          "(interpreter + libraries)")
    counted = {v: r[-1]["rows"] for v, r in results.items() if r[-1].get("rows") is not None}
    print(f"rows out: {counted}")
    if checks:
        # Compared as numbers: decimal(38,18) prints 444376733.685200000000000000 where pandas prints 444376733.6852.
        agree = "all equal" if len({Decimal(value) for value in checks.values()}) == 1 else "DIFFERENT"
        print(f"sum of {vendor.check_column}: {checks} ({agree})")
    sizes = {v: f"{r[-1]['bytes'] / 1e6:.1f} MB" for v, r in results.items() if "bytes" in r[-1]}
    print(f"output sizes: {sizes}")
    goals(vendor, results)


def goals(vendor: Vendor, results: dict[str, list[dict[str, Any]]]) -> None:
    """Goal P1 of issue 11, each figure beside its goal: ratios taken round by round (the variants of a round
    run one after the other), then the median."""
    peers = [p for p in ("duckdb", "polars") if p in results]
    rows: list[tuple[str, str, str]] = []

    def paired(variant: str, against: Callable[[int], float], key: str = "wall") -> float:
        rounds = min(len(results[v]) for v in [variant, *peers, *([BASELINE] if BASELINE in results else [])])
        return statistics.median(results[variant][i][key] / against(i) for i in range(rounds))

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    if peers and "convert" in results:
        def fastest(i: int, key: str = "wall") -> float:
            return min(results[p][i][key] for p in peers)

        ratio = paired("convert", lambda i: fastest(i, "work_wall"), "work_wall")
        rows.append(("conversion (raw stream -> Parquet, after imports) wall ÷ faster of " + " and ".join(peers)
                     + "'s (read_csv -> COPY, scan_csv -> sink_parquet)", f"{ratio:.2f}",
                     f"≤ 0.90: {verdict(ratio <= 0.9)}"))
        rows.append(("the same, whole processes (imports included)", f"{paired('convert', fastest):.2f}",
                     "reported"))
        if "parquet" in results:
            rows.append(("as deployed (WriteParquet, S3 -> S3, imports included) ÷ faster peer's whole process",
                         f"{paired('parquet', fastest):.2f}", "reported"))
        if FLOOR in results:
            # What the library itself can do on this file, next to the peers and next to us: the share of the
            # gap that is pyarrow's (its CSV parser and Parquet writer), not the project's.
            floor = paired(FLOOR, lambda i: fastest(i, "work_wall"), "work_wall")
            rows.append(("pyarrow alone (read_csv -> write_table, whole file; no checks, lineage or extra), "
                         "after imports, ÷ faster peer", f"{floor:.2f}", "reported: the library's floor"))
            rows.append(("conversion ÷ pyarrow alone, after imports",
                         f"{paired('convert', lambda i: results[FLOOR][i]['work_wall'], 'work_wall'):.2f}",
                         "reported"))
    if "parquet" in results and BASELINE in results:
        peak = paired("parquet", lambda i: results[BASELINE][i]["rss_mib"], "rss_mib")
        rows.append(("WriteParquet peak ÷ pandas' peak", f"{peak:.2f}",
                     f"≤ {vendor.peak_goal}: {verdict(peak <= vendor.peak_goal)}"))
    if "parquet, scaled" in results and "parquet" in results:
        scaled = results["parquet, scaled"][0]
        ratio = scaled["rss_mib"] / statistics.median(r["rss_mib"] for r in results["parquet"])
        rows.append((f"WriteParquet peak at {scaled['scaled_rows']:,} rows ÷ at {results['parquet'][0]['rows']:,} "
                     f"(medians of {scaled['runs']} and {len(results['parquet'])} runs)",
                     f"{ratio:.2f} ({scaled['rss_mib']:.0f} MiB)", f"≤ 1.10: {verdict(ratio <= 1.1)}"))
    if "convert" in results and "duckdb" in results:
        ours, theirs = results["convert"][-1]["bytes"], results["duckdb"][-1]["bytes"]
        rows.append(("Parquet bytes ÷ duckdb's", f"{ours / theirs:.2f} ({ours / 1e6:.1f} / {theirs / 1e6:.1f} MB)",
                     f"≤ 1.00: {verdict(ours <= theirs)}"))
    if rows:
        print(f"\nP1 normalize, {vendor.title} (medians of per-round ratios):\n")
        print("| goal | figure | verdict |")
        print("| --- | --- | --- |")
        for goal, figure, result in rows:
            print(f"| {goal} | {figure} | {result} |")


# Helpers for the vendors' variants.


def prepare_duckdb(source: Path, scratch: Path, select: str, *, skip: int = 0) -> Callable[[], dict[str, Any]]:
    """duckdb ``COPY (SELECT ...) TO 'x.parquet'`` over ``read_csv`` of ``source`` (every field read as text,
    ``select`` types and names the columns), zstd, with the setting that measured fastest and
    flattest (``preserve_insertion_order=false``)."""
    import duckdb

    out = scratch / "duckdb.parquet"
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")

    def work() -> dict[str, Any]:
        csv = f"read_csv('{source}', header = true, skip = {skip}, all_varchar = true)"
        con.execute(f"COPY (SELECT {select} FROM {csv}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
        return {"rows": rows[0] if rows else None, "bytes": out.stat().st_size, "path": str(out)}

    return work


def prepare_polars(source: Path, scratch: Path, columns: Callable[[Any], list[Any]], *,
                   skip: int = 0) -> Callable[[], dict[str, Any]]:
    """polars ``scan_csv(...).select(columns(pl)).sink_parquet(...)``: streaming, every field read as text and
    typed by ``columns``; an empty field is null, as in the other engines; zstd."""
    import polars as pl

    out = scratch / "polars.parquet"

    def work() -> dict[str, Any]:
        frame = pl.scan_csv(source, skip_rows=skip, infer_schema=False, null_values=[""])
        frame.select(columns(pl)).sink_parquet(out, compression="zstd")
        return {"rows": pl.scan_parquet(out).select(pl.len()).collect().item(), "bytes": out.stat().st_size,
                "path": str(out)}

    return work


def prepare_pyarrow(source: Path, scratch: Path, column_types: dict[str, Any], names: dict[str, str], *,
                    skip: int = 0, row_group_size: int) -> Callable[[], dict[str, Any]]:
    """pyarrow alone, as a user of the library would write it: ``read_csv`` of the whole file (Arrow's threads,
    the typed columns named, an empty field null), then ``write_table`` with WriteParquet's compression and
    row-group size. No checks before the casts, no lineage columns, no ``extra``, no streaming: the floor of
    the library WriteParquet runs on, loaded as WriteParquet loads it. ``names``: CSV label -> column name."""
    load_pyarrow_as_deployed()
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from report_exporter.logic.write_parquet import ZSTD_LEVEL

    out = scratch / "pyarrow.parquet"
    read = pacsv.ReadOptions(skip_rows=skip)
    convert = pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=True)

    def work() -> dict[str, Any]:
        table = pacsv.read_csv(source, read_options=read, convert_options=convert)  # .gz: inflated as it reads
        table = table.rename_columns([names[label] for label in table.column_names])
        pq.write_table(table, out, compression="zstd", compression_level=ZSTD_LEVEL, row_group_size=row_group_size)
        return {"rows": table.num_rows, "bytes": out.stat().st_size, "path": str(out)}

    return work


def load_pyarrow_as_deployed() -> None:
    """Load pyarrow the way the WriteParquet Lambda does: ``logic.write_parquet`` first (it sets Arrow's
    allocator options before pyarrow loads), so the local variants run with the same allocator."""
    import report_exporter.logic.write_parquet  # noqa: F401


class _NoLedger:
    """The steps' ledger calls, answered as for a first run: nothing kept, nothing published, the download's
    resume cursor kept nowhere (no DynamoDB)."""

    def begin_download(self, plan: Any, *, job: str, now: Any) -> None:
        return None

    def downloaded(self, plan: Any, *, job: str, objects: Any, now: Any) -> Any:
        return objects

    def download_cursor(self, plan: Any, *, job: str) -> None:
        return None

    def save_download_cursor(self, plan: Any, *, job: str, cursor: Any) -> None:
        return None

    def clear_download_cursor(self, plan: Any, *, job: str) -> None:
        return None

    def begin_publish(self, plan: Any, *, job: str, now: Any) -> None:
        return None

    def published(self, plan: Any, *, job: str, objects: Any, now: Any) -> None:
        return None


def prepare_download(world: dict[str, Any], plan: Any, adapter_class: Any) -> Callable[[], dict[str, Any]]:
    """DownloadReport as deployed: the vendor adapter streams the READY report into S3 raw (multipart)."""
    from pydantic import SecretStr

    from report_exporter.adapters.http_client import build_client
    from report_exporter.aws.s3 import S3RawStore
    from report_exporter.clock import SYSTEM
    from report_exporter.logic.download_report import download_report
    from report_exporter.models.payloads import DownloadInput, JobStatus, ReportJob

    credentials = {k: SecretStr(v) for k, v in world["credentials"].items()}
    adapter = adapter_class(plan.export, build_client(plan.export.resolved_base_url()), credentials, SYSTEM)
    job = ReportJob(job=world["report_id"], report_id=world["report_id"], status=JobStatus.READY,
                    requested_at=plan.started_at)

    def work() -> dict[str, Any]:
        raw = download_report(DownloadInput(plan=plan, job=job), adapter=adapter, raw=S3RawStore(RAW_BUCKET),
                              ledger=_NoLedger(), now=plan.started_at)
        return {"raw": raw.model_dump(mode="json"), "bytes": sum(o.bytes for o in raw.objects)}

    return work


def prepare_convert(dataset_module: str, plan: Any, report_id: str, source: Path, scratch: Path
                    ) -> Callable[[], dict[str, Any]]:
    """WriteParquet's conversion on the local file into local Parquet: the same input the peers get, no S3.

    The deployed code path: the dataset's reader, the lineage columns and the row-group writer thread of
    ``logic/write_parquet.py``, writing to a local file instead of an S3 multipart upload.
    """
    load_pyarrow_as_deployed()
    import importlib
    from datetime import UTC, datetime

    from report_exporter.datasets.base import ReadContext
    from report_exporter.logic.write_parquet import _Lineage, _RowGroupWriter, _with_lineage

    dataset = importlib.import_module(dataset_module).DATASET
    context = ReadContext.for_plan(plan, report_id=report_id, source_key="local")
    out = scratch / "convert.parquet"

    def work() -> dict[str, Any]:
        writer = _RowGroupWriter(dataset, str(out))
        lineage = _Lineage(dataset, {"vendor": plan.export.vendor_name.value, "report_id": report_id,
                                     "exported_at": datetime.now(UTC), "source_key": "local"})
        with source.open("rb") as data:
            for batch in dataset.read(data, context):
                writer.write(_with_lineage(batch, dataset, lineage))
        writer.close()
        return {"rows": writer.rows, "bytes": out.stat().st_size, "path": str(out)}

    return work


def prepare_parquet(world: dict[str, Any], make_plan: Callable[[dict[str, Any]], Any]) -> Callable[[], dict[str, Any]]:
    """WriteParquet as deployed: S3 raw -> Parquet staging (multipart) -> footer check -> publish.

    ``logic.write_parquet`` is imported first, as the Lambda handler does: it is the module that loads
    pyarrow there (and sets Arrow's allocator options before it does).
    """
    from report_exporter.aws.s3 import S3CuratedStore, S3RawStore
    from report_exporter.logic.write_parquet import write_parquet
    from report_exporter.models.payloads import JobStatus, ParquetInput, RawReport, ReportJob

    plan = make_plan(world)

    job = ReportJob(job=world["report_id"], report_id=world["report_id"], status=JobStatus.READY,
                    requested_at=plan.started_at)
    raw = RawReport.model_validate(world["raw"])

    def work() -> dict[str, Any]:
        curated = write_parquet(ParquetInput(plan=plan, job=job, raw=raw), raw=S3RawStore(RAW_BUCKET),
                                curated=S3CuratedStore(CURATED_BUCKET), ledger=_NoLedger(), now=plan.started_at)
        (obj,) = curated.objects
        return {"rows": curated.rows, "bytes": obj.bytes, "bucket": CURATED_BUCKET, "key": obj.key}

    return work
