"""Benchmark, the "Local" goal of issue 11: the peak memory of ``report-exporter run`` on a 1M-row Particle report.

Run from the repository root (see bench/README.md)::

    .venv/bin/python bench/bench_local_run.py              # 1,000,000 rows, 2 runs
    .venv/bin/python bench/bench_local_run.py --rows 100000 --runs 1

Each run is a fresh ``report-exporter run --virtual-time --fresh`` process, as a user types it, against the
Particle simulator of ``bench_particle.py``'s world process serving the pre-generated report (the same file as
the P1 benchmark). The runner keeps everything else in its own process: the synthesized state machine, moto's
S3, DynamoDB and Step Functions, and the six Lambda handlers. Its peak is the operating system's maximum
resident set size of that process and of the children it waited for (``os.wait4``). The run's Parquet file,
mirrored under ``--out``, is read back and the sum of ``data_operations`` compared with pandas' sum of the
same CSV.

The first run after the exports or the code change synthesizes the stacks' templates in a child process (the
CDK app and its Node.js jsii runtime) and caches them; the warm-up run (``--warmup``, default 1) is that one,
and its peak is printed apart. The goal, the peak of a run ≤ 400 MiB, is the median of the runs after it.
Reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_particle
import harness
import launch

GOAL_MIB = 400
PERIOD = "2026-10"
EXPORT = "particle-bench"


def configure(world: dict, folder: Path) -> tuple[Path, Path]:
    config = folder / "exports.toml"
    config.write_text(f"""[[exports]]
name = "{EXPORT}"
vendor = "particle"
secret_name = "particle/bench"
scope = "user"
report_type = "devices"
base_url = "{world['vendor']}"
""")
    secrets = folder / "secrets.json"
    secrets.write_text(json.dumps({"particle/bench": world["credentials"]}))
    return config, secrets


def run_once(config: Path, secrets: Path, out: Path) -> dict:
    command = [str(Path(sys.executable).with_name("report-exporter")), "run", "--config", str(config),
               "--export", EXPORT, "--period", PERIOD, "--out", str(out), "--secrets", str(secrets),
               "--virtual-time", "--fresh"]
    # Through launch.py: the peak is the run's (and its children's), never this driver's.
    output, usage = launch.spawn(command, merge_stderr=True, cwd=harness.ROOT)
    if usage["status"] != 0:
        raise SystemExit(f"report-exporter run failed:\n{output.decode()}")
    return {"wall": usage["wall"], "cpu": usage["cpu"], "rss_mib": usage["rss_mib"]}


def published_sum(out: Path) -> tuple[int, int]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    [path] = out.glob(f"curated/particle_data_operations/export={EXPORT}/period={PERIOD}/*.parquet")
    table = pq.read_table(path, columns=["data_operations"])
    return table.num_rows, pc.sum(table.column("data_operations")).as_py()


def pandas_sum(source: Path) -> int:
    import pandas as pd

    frame = pd.read_csv(source, skiprows=1, usecols=["Data Operations"], dtype={"Data Operations": "int64"})
    return int(frame["Data Operations"].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark: report-exporter run's peak memory (issue 11, Local)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the report (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=2, help="runs (default 2); the table shows the median")
    parser.add_argument("--warmup", type=int, default=1,
                        help="runs first, not in the median (default 1: the one that may synthesize the templates)")
    args = parser.parse_args()
    vendor = bench_particle.VENDOR
    source = vendor.source(args.rows)
    vendor.generate(source, args.rows)
    world_proc = subprocess.Popen([sys.executable, vendor.script, "--world", "--source", str(source)],
                                  stdout=subprocess.PIPE, cwd=harness.ROOT)
    results = []
    try:
        assert world_proc.stdout is not None
        world = json.loads(world_proc.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
            config, secrets = configure(world, Path(scratch))
            out = Path(scratch) / "out"
            warmups = []
            for run in range(args.warmup + args.runs):
                result = run_once(config, secrets, out)
                label = f"warm-up {run + 1}" if run < args.warmup else f"run {run - args.warmup + 1}/{args.runs}"
                (warmups if run < args.warmup else results).append(result)
                print(f"{label}  wall {result['wall']:6.2f} s  cpu {result['cpu']:6.2f} s"
                      f"  peak {result['rss_mib']:5.0f} MiB", flush=True)
            rows, ours = published_sum(out)
    finally:
        world_proc.terminate()
        world_proc.wait(timeout=30)
    theirs = pandas_sum(source)
    peak = statistics.median(r["rss_mib"] for r in results)
    print(f"\nLocal run, Particle data-operations report: {args.rows:,} rows; median of {args.runs} run(s)\n")
    print("| goal | figure | verdict |")
    print("| --- | --- | --- |")
    print(f"| `report-exporter run` peak RSS (the process and its children) | {peak:,.0f} MiB "
          f"| ≤ {GOAL_MIB} MiB: {'met' if peak <= GOAL_MIB else 'NOT MET'} |")
    if warmups:
        print(f"\nthe warm-up run's peak: {warmups[0]['rss_mib']:,.0f} MiB in {warmups[0]['wall']:.1f} s (when it "
              "synthesized the templates, the CDK app's child process and its Node.js runtime count in it; "
              "reported)")
    check = "equal" if ours == theirs and rows == args.rows else "DIFFERENT"
    print(f"\nrows published: {rows:,}; sum of data_operations: {ours} (pandas: {theirs}, {check})")


if __name__ == "__main__":
    main()
