"""Run a measured command from a small process of its own, so its peak memory is its own.

Linux keeps, in a process's maximum resident set size (``ru_maxrss``, what ``os.wait4`` reports), the high-water
mark of the memory the process replaced at ``exec``. A child that Python spawns (``vfork`` or ``fork``, then
``exec``) replaces its parent's memory, so it reports at least its parent's peak: a ``python -c pass`` child of a
parent that once held 400 MiB reports 413 MiB. A bench driver grows (reading the outputs back, duckdb, pandas),
and every process it spawns after that would carry the driver's peak as a floor of its own: WriteParquet at 3M
rows read 266 and 352 MiB, four runs out of four, where it peaks at 220-230 (bench/README.md).

So the driver starts this file, a fresh interpreter of a few MiB that imports nothing heavy, and it starts the
command, waits for it with ``os.wait4`` and writes what it saw (wall, user+sys CPU, peak RSS, exit status) as
JSON to a file. The command's stdin, stdout and stderr are the launcher's, which are the driver's pipes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_SELF = str(Path(__file__).resolve())


def spawn(command: list[str], *, stdin: bytes | None = None, merge_stderr: bool = False,
          env: dict[str, str] | None = None, cwd: Path | str | None = None) -> tuple[bytes, dict[str, Any]]:
    """Run ``command`` through the launcher: its standard output, and its own wall, CPU, peak RSS and exit status
    (``wall``, ``cpu``, ``rss_mib``, ``status``; the peak covers the children it waited for)."""
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as folder:
        report = Path(folder) / "usage.json"
        process = subprocess.Popen(
            [sys.executable, "-S", "-I", _SELF, str(report), "--", *command],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else None, env=env, cwd=cwd,
        )
        output, _ = process.communicate(stdin)
        if process.returncode != 0 or not report.exists():
            raise SystemExit(f"the launcher failed (exit code {process.returncode}) running {command[:3]}...")
        facts: dict[str, Any] = json.loads(report.read_text())
    return output, facts


def _launch(report: str, command: list[str]) -> None:
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    facts = {"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
             "rss_mib": usage.ru_maxrss / 1024, "status": os.waitstatus_to_exitcode(status)}
    Path(report).write_text(json.dumps(facts))


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit("usage: launch.py REPORT -- COMMAND...")
    _launch(sys.argv[1], sys.argv[3:])
