"""Benchmark: 1M-row HERE report through DownloadReport and WriteParquet, against pandas read_csv + to_parquet.

Run from the repository root::

    .venv/bin/python bench/bench_here.py                # 1,000,000 rows, 3 runs per variant
    .venv/bin/python bench/bench_here.py --rows 100000 --runs 1

How it measures (as perf-baseline.md does): every variant runs in a fresh Python process, and the figures
are the operating system's accounting of that whole process (``os.wait4``): wall clock, user+sys CPU and
maximum resident set size, with interpreter start-up and imports included, as in a Lambda invocation.
The measured process also reports its own ``VmHWM`` as a cross-check. The venv has pandas, which pyarrow
imports lazily on first use; the pipeline variants block that import, as the deployed layer has no pandas.

S3 and the vendor live in a separate "world" process, so neither the objects moto keeps nor the
vendor's work are counted in the measured process: moto's S3 backend behind a small HTTP front (the
venv has no ``moto[server]``/flask, so the front hands each request to moto's own request dispatcher),
and the HERE simulator serving the pre-generated ``.csv.gz`` from disk on loopback. The measured
process talks to both over HTTP exactly as the Lambdas would (boto3 with ``AWS_ENDPOINT_URL_S3``).

The input is generated once, streamed to ``bench/data/`` (gitignored), by the HERE simulator's own row
generator (quoted values with commas, doubled quotes, non-ASCII, empty fields; ~277 bytes a row).
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RAW_BUCKET = "bench-raw"
CURATED_BUCKET = "bench-curated"
PERIOD = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
GOAL_MIB = 300
VARIANTS = {
    "download": "DownloadReport: HERE /output -> S3 raw (multipart)",
    "parquet": "WriteParquet: S3 raw .csv.gz -> S3 Parquet (logic as deployed)",
    "convert": "HERE reader -> local Parquet (no S3; same input as pandas)",
    "pandas": "pandas 2 read_csv + to_parquet (local, baseline)",
}

sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]


class _NoPandas(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` fail as it would where pandas is not installed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# Input.


def generate(path: Path, rows: int) -> None:
    """Stream the simulator's gzip CSV for ``rows`` rows to ``path`` (skipped when it is already there)."""
    from report_exporter.local.simulators.here import HereSimulator

    marker = path.with_suffix(".rows")
    if path.exists() and marker.exists() and marker.read_text() == str(rows):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sim = HereSimulator(rows=rows)
    report = sim.add_report(START, END, detail="day")
    started = time.perf_counter()
    with path.open("wb") as out:
        for chunk in sim.gzip_body(report):
            out.write(chunk)
    marker.write_text(str(rows))
    print(f"generated {rows:,} rows -> {path} ({path.stat().st_size / 1e6:.1f} MB gzip) "
          f"in {time.perf_counter() - started:.1f} s", flush=True)


# The world: S3 (moto) and HERE, in their own process.


def serve_world(source: Path) -> None:
    """Serve moto S3 and a HERE simulator whose report output is ``source``; print where, then serve forever."""
    from collections.abc import Iterator
    from dataclasses import dataclass
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    import boto3
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.compat import HTTPHeaders
    from moto import mock_aws
    from moto.core.models import botocore_stubber

    from report_exporter.local.simulators.here import HereSimulator, Report

    @dataclass
    class FileHere(HereSimulator):
        source: str = ""

        def gzip_body(self, report: Report) -> Iterator[bytes]:
            with open(self.source, "rb") as data:  # noqa: PTH123 - plain file streaming
                while chunk := data.read(1 << 20):
                    yield chunk

    mock = mock_aws()
    mock.start()
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in (RAW_BUCKET, CURATED_BUCKET):
        s3.create_bucket(Bucket=bucket)

    class S3Front(BaseHTTPRequestHandler):
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
    here = FileHere(source=str(source))
    here.start()
    report = here.add_report(START, END, detail="day")
    world = {"s3": f"http://127.0.0.1:{front.server_address[1]}", "here": here.base_url, "report_id": report.id,
             "credentials": here.credentials()}
    print(json.dumps(world), flush=True)
    while True:
        time.sleep(3600)


# The measured variants (each in its own process).


def _plan(world: dict[str, Any]) -> Any:
    from datetime import timedelta

    from report_exporter.models.exports import HereExport, month_window
    from report_exporter.models.payloads import RunPlan

    export = HereExport(name="here-bench", secret_name="here/bench", realm="org123456789", detail_level="day",
                        base_url=world["here"], token_url=f"{world['here']}/oauth2/token")
    now = datetime(2026, 11, 3, 6, tzinfo=UTC)
    return RunPlan(export=export, window=month_window(PERIOD, "UTC"), execution_id=f"bench:here-bench-{PERIOD}",
                   started_at=now, deadline=now + timedelta(hours=6))


def measure(variant: str, world: dict[str, Any], source: Path, scratch: Path) -> dict[str, Any]:
    """Run one variant to the end; return what it produced (rows, sizes, billable total)."""
    if variant == "download":
        from pydantic import SecretStr

        from report_exporter.adapters.here import HereAdapter
        from report_exporter.adapters.http_client import build_client
        from report_exporter.logic.download_report import download_report
        from report_exporter.models.payloads import DownloadInput, JobStatus, ReportJob

        plan = _plan(world)
        creds = {k: SecretStr(v) for k, v in world["credentials"].items()}
        adapter = HereAdapter(plan.export, build_client(plan.export.resolved_base_url()), creds)
        job = ReportJob(report_id=world["report_id"], status=JobStatus.READY, requested_at=plan.started_at)
        raw = download_report(DownloadInput(plan=plan, job=job), adapter=adapter, raw_bucket=RAW_BUCKET,
                              now=plan.started_at)
        return {"raw": raw.model_dump(mode="json"), "bytes": raw.objects[0].bytes}
    if variant == "parquet":
        from report_exporter.logic.write_parquet import write_parquet
        from report_exporter.models.payloads import JobStatus, ParquetInput, RawReport, ReportJob

        plan = _plan(world)
        job = ReportJob(report_id=world["report_id"], status=JobStatus.READY, requested_at=plan.started_at)
        raw = RawReport.model_validate(world["raw"])
        curated = write_parquet(ParquetInput(plan=plan, job=job, raw=raw), raw_bucket=RAW_BUCKET,
                                curated_bucket=CURATED_BUCKET, now=plan.started_at)
        (obj,) = curated.objects
        return {"rows": curated.rows, "bytes": obj.bytes}
    if variant == "convert":
        import pyarrow as pa
        import pyarrow.parquet as pq

        from report_exporter.datasets.base import ReadContext
        from report_exporter.datasets.here import DATASET

        plan = _plan(world)
        out = scratch / "convert.parquet"
        rows, pending = 0, []
        # Row groups gathered as logic/write_parquet does, but encoded on this thread (perf-baseline variant a).
        schema = DATASET.reader_schema
        dictionary = [n for n in DATASET.dictionary_columns or schema.names if n in schema.names]
        with source.open("rb") as data, pq.ParquetWriter(out, schema, compression="zstd",
                                                         use_dictionary=dictionary) as writer:
            for batch in DATASET.read(data, ReadContext(plan=plan, report_id=world["report_id"], source_key="x")):
                pending.append(batch)
                rows += batch.num_rows
                if sum(b.num_rows for b in pending) >= DATASET.row_group_size:
                    writer.write_table(pa.Table.from_batches(pending), row_group_size=DATASET.row_group_size)
                    pending = []
            if pending:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=DATASET.row_group_size)
        return {"rows": rows, "bytes": out.stat().st_size, "billable": _billable(out)}
    if variant == "pandas":
        import re
        from decimal import Decimal

        import pandas as pd

        names = {"usageDateTime": "usage_datetime", "realmId": "org_id", "category": "category", "appId": "app_id",
                 "featureId": "feature_id", "billingSubscriptionId": "billing_subscription_id",
                 "resourceHrn": "resource_hrn", "name": "item_name", "valueDriver": "unit",
                 "projectHrn": "project_hrn", "billingTag": "billing_tag", "billableValue": "billable_value",
                 "billingChargeNumber": "billing_charge_number", "usageValue": "usage_value"}
        frame = pd.read_csv(source, compression="gzip", dtype=str, keep_default_na=False, na_values=[""])
        frame.columns = [names[re.search(r"\(([^()]+)\)\s*$", c).group(1)] for c in frame.columns]  # type: ignore[union-attr]
        for column in ("usage_value", "billable_value"):
            frame[column] = frame[column].map(Decimal, na_action="ignore")
        frame["usage_datetime"] = pd.to_datetime(frame["usage_datetime"], utc=True)
        out = scratch / "pandas.parquet"
        frame.to_parquet(out, engine="pyarrow", compression="zstd", index=False)
        return {"rows": len(frame), "bytes": out.stat().st_size, "billable": _billable(out)}
    raise SystemExit(f"unknown variant {variant}")


def _billable(path: Path) -> str:
    """Exact sum of billable_value in a Parquet file (read column by column: small next to the run)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    total = pc.sum(pq.read_table(path, columns=["billable_value"]).column(0)).as_py()
    return str(total)


# Orchestration.


def run_measured(variant: str, world: dict[str, Any], source: Path, scratch: Path) -> dict[str, Any]:
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": world["s3"], "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--measure", variant, "--source", str(source), "--scratch", str(scratch)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(world).encode())
    proc.stdin.close()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"variant {variant} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    result.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss_mib=usage.ru_maxrss / 1024)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per variant; the table shows medians")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ", ".join(VARIANTS))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--world", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.world:
        serve_world(args.source)
        return
    if args.measure:
        if args.measure != "pandas":
            # The Lambda layer has no pandas; here pyarrow would import it lazily on first use (~1 s, ~40 MiB).
            sys.meta_path.insert(0, _NoPandas())
        world = json.loads(sys.stdin.read())
        result = measure(args.measure, world, args.source, args.scratch)
        result["vm_hwm_mib"] = _vm_hwm_mib()
        if "pyarrow" in sys.modules:
            result["arrow_peak_mib"] = sys.modules["pyarrow"].default_memory_pool().max_memory() / 2**20
        print(json.dumps(result), flush=True)
        return

    source = DATA / f"here_{args.rows}.csv.gz"
    generate(source, args.rows)
    scratch = DATA / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    world_proc = subprocess.Popen([sys.executable, __file__, "--world", "--source", str(source)],
                                  stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert world_proc.stdout is not None
        world = json.loads(world_proc.stdout.readline())
        results: dict[str, list[dict[str, Any]]] = {}
        for run in range(args.runs):
            for variant in args.variants.split(","):
                result = run_measured(variant, world, source, scratch)
                if variant == "download":
                    world["raw"] = result["raw"]
                results.setdefault(variant, []).append(result)
                print(f"run {run + 1}/{args.runs} {variant:9s} wall {result['wall']:6.2f} s  cpu {result['cpu']:6.2f} s"
                      f"  peak {result['rss_mib']:6.0f} MiB (VmHWM {result['vm_hwm_mib']:.0f}, Arrow pool "
                      f"{result.get('arrow_peak_mib', 0):.0f})", flush=True)
    finally:
        world_proc.terminate()
        world_proc.wait(timeout=30)
    report(results, args.rows, source)


def report(results: dict[str, list[dict[str, Any]]], rows: int, source: Path) -> None:
    import pandas
    import pyarrow

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    base = "pandas" if "pandas" in results else None
    print(f"\nHERE report, {rows:,} rows, {source.stat().st_size / 1e6:.1f} MB gzip; "
          f"pyarrow {pyarrow.__version__}, pandas {pandas.__version__}, {os.cpu_count()} CPUs; "
          f"medians of {len(next(iter(results.values())))} run(s), whole process\n")
    print(f"| variant | wall s | CPU s | peak RSS MiB | wall / pandas | peak / pandas | peak < {GOAL_MIB} MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for variant in results:
        wall, cpu, rss = median(variant, "wall"), median(variant, "cpu"), median(variant, "rss_mib")
        ratio_wall = f"{wall / median(base, 'wall'):.2f}" if base else "-"
        ratio_rss = f"{rss / median(base, 'rss_mib'):.2f}" if base else "-"
        goal = "yes" if rss < GOAL_MIB else "NO"
        print(f"| {VARIANTS[variant]} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {ratio_wall} | {ratio_rss} | {goal} |")
    checks = {v: runs[-1] for v, runs in results.items()}
    counted = {v: r.get("rows") for v, r in checks.items() if r.get("rows") is not None}
    print(f"\nrows out: {counted}")
    if "convert" in checks and "pandas" in checks:
        same = checks["convert"]["billable"] == checks["pandas"]["billable"]
        print(f"billable total: reader {checks['convert']['billable']} / pandas {checks['pandas']['billable']}"
              f" ({'equal' if same else 'DIFFERENT'})")
    sizes = {v: f"{r['bytes'] / 1e6:.1f} MB" for v, r in checks.items()}
    print(f"output sizes: {sizes}")


if __name__ == "__main__":
    main()
