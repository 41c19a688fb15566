"""P4, cold start: each handler's import time from its bundle's own files, bundle contents and size.

The bundles are built by the deploy's own code (``exporter_infra.bundling.PipLocalBundling``, as
``make synth`` builds them): the arm64 bundle for its size, and an x86-64 twin, built the same way for
this machine's processor, to time imports with the Lambda runtime's Python (3.12). boto3 and botocore
come with Lambda's runtime, not the bundles: a compiled x86-64 install of the locked boto3 stands in for it.

Every measurement is a fresh ``python3.12 -I -B`` process with the bundle, then the runtime, on its path
(``-B``: nothing is written, as on Lambda's read-only ``/var/task``), timing the import of the handler
module from inside. The handlers take turns (round 1: every handler, round 2: every handler, ...), so
the host's drift hits all of them alike; the table shows medians.

    .venv/bin/python bench/bench_cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "infra"), str(ROOT)]

from exporter_infra import names  # noqa: E402
from exporter_infra.bundling import FUNCTIONS_DIR, PipLocalBundling, target_python  # noqa: E402
from exporter_infra.constructs.exporter_functions import (  # noqa: E402
    COMMON_HANDLERS,
    COMMON_REQUIREMENTS,
    PARQUET_HANDLERS,
    PARQUET_REQUIREMENTS,
)

OUT = ROOT / "bench" / "data" / "bundles"
LIGHT_GOAL = 0.3
PARQUET_GOAL = 0.6
SIZE_GOAL_MB = 250
BUNDLES = {"common": (COMMON_REQUIREMENTS, COMMON_HANDLERS), "parquet": (PARQUET_REQUIREMENTS, PARQUET_HANDLERS)}
RUNTIME_PINS = ["boto3==1.44.5"]  # the version uv.lock pins; Lambda's runtime carries its own
TIMER = """
import importlib, sys, time
sys.path[:0] = sys.argv[2].split(":")
started = time.perf_counter()
importlib.import_module(sys.argv[1])
print(time.perf_counter() - started)
"""


def build(arch: str) -> dict[str, Path]:
    """Both bundles (and, for the x86-64 twin, the runtime's boto3) for ``arch``, built afresh."""
    built = {}
    for name, (requirements, handlers) in BUNDLES.items():
        out = OUT / arch / name
        shutil.rmtree(out, ignore_errors=True)
        PipLocalBundling(FUNCTIONS_DIR / requirements, handlers=handlers, arch=arch).try_bundle(str(out))
        built[name] = out
    return built


def runtime_twin(python: str) -> Path:
    out = OUT / "x86_64" / "runtime"
    if not (out / "boto3").exists():
        shutil.rmtree(out, ignore_errors=True)
        uv = ROOT / ".tools" / "bin" / "uv"
        subprocess.run([str(uv), "pip", "install", "--quiet", "--no-compile", "--only-binary", ":all:",
                        "--python-platform", "x86_64-manylinux_2_34", "--python-version", "3.12",
                        "--target", str(out), *RUNTIME_PINS], check=True)
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        str(out)], check=False, stdout=subprocess.DEVNULL)
    return out


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def uncompiled(path: Path) -> int:
    """Modules without 3.12 bytecode beside them."""
    return sum(1 for p in path.rglob("*.py")
               if not (p.parent / "__pycache__" / f"{p.stem}.cpython-312.pyc").exists())


def top_level(path: Path) -> set[str]:
    return {p.name.removesuffix(".py") for p in path.iterdir()
            if not p.name.endswith((".dist-info", ".libs")) and p.name not in {"bin", "__pycache__"}}


def imported_top_level(python: str, bundle: Path, runtime: Path, handlers: tuple[str, ...]) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for h in {[h.rsplit('.', 1)[0] for h in handlers]!r}: importlib.import_module(h)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{bundle}:{runtime}", "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([python, "-B", "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = target_python("3.12")
    arm = build("aarch64")
    twin = build("x86_64")
    runtime = runtime_twin(python)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1",
           "POWERTOOLS_SERVICE_NAME": "report-exporter", "AWS_DEFAULT_REGION": "us-east-1"}
    states = {handler: state for state, handler in names.HANDLERS.items()}
    bundle_of = {h: name for name, (_, handlers) in BUNDLES.items() for h in handlers}
    times: dict[str, list[float]] = {h: [] for h in names.HANDLERS.values()}
    for _ in range(args.runs + 1):  # the first round warms the page cache and is not counted
        for handler in times:
            path = f"{twin[bundle_of[handler]]}:{runtime}"
            out = subprocess.run([python, "-I", "-B", "-c", TIMER, handler.rsplit(".", 1)[0], path],
                                 env=env, capture_output=True, text=True, check=True)
            times[handler].append(float(out.stdout))
    print(f"\nP4 cold start: handler import from its bundle's own files (x86-64 twin, {python}, -I -B), "
          f"median of {args.runs} interleaved rounds after 1 warm-up\n")
    print("| function | bundle | import s (min-max) | goal | verdict |")
    print("| --- | --- | --- | --- | --- |")
    for handler, samples in times.items():
        counted = samples[1:]
        goal = PARQUET_GOAL if handler in PARQUET_HANDLERS else LIGHT_GOAL
        median = statistics.median(counted)
        print(f"| {states[handler]} | {bundle_of[handler]} | {median:.3f} ({min(counted):.3f}-{max(counted):.3f}) "
              f"| ≤ {goal} s | {'met' if median <= goal else 'NOT MET'} |")
    print("\n| bundle | arm64 unzipped MB | goal | modules without 3.12 bytecode "
          "| installed, not imported with the handlers (loaded on first use, or never) |")
    print("| --- | ---: | --- | ---: | --- |")
    for name, (_, handlers) in BUNDLES.items():
        unused = top_level(twin[name]) - imported_top_level(python, twin[name], runtime, handlers)
        size = size_mb(arm[name])
        verdict = "met" if size <= SIZE_GOAL_MB else "NOT MET"
        print(f"| {name} ({len(handlers)} handlers) | {size:.1f} | ≤ {SIZE_GOAL_MB} MB: {verdict} "
              f"| {uncompiled(arm[name])} | {', '.join(sorted(unused)) or 'none'} |")


if __name__ == "__main__":
    main()
