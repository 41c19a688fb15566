"""bench/launch.py: a measured process's peak memory is its own, whatever the bench driver holds.

Linux counts the spawning process's high-water mark into the spawned one's ``ru_maxrss``; the bench's figures
(WriteParquet's peak at 3M rows, ``run``'s peak) were read after its driver had grown, and came out as the
driver's peak. Run in a child interpreter, so this test process keeps its own size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

# A driver that once held 256 MiB (freed since: the high-water mark stays), then runs a trivial command twice.
DRIVER = """
import json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
import launch
held = bytearray(256 << 20)
for i in range(0, len(held), 4096):
    held[i] = 1
del held
command = [sys.executable, "-c", "print('hello')"]
process = subprocess.Popen(command, stdout=subprocess.PIPE)
direct_output = process.stdout.read()
_, status, usage = os.wait4(process.pid, 0)
output, facts = launch.spawn(command)
print(json.dumps({"direct": usage.ru_maxrss / 1024, "direct_output": direct_output.decode(),
                  "launched": facts, "launched_output": output.decode()}))
"""


def _run_driver() -> dict:
    done = subprocess.run([sys.executable, "-c", DRIVER, str(BENCH)], capture_output=True, text=True, check=True,
                          timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_launched_command_reports_its_own_peak_not_the_drivers() -> None:
    seen = _run_driver()
    assert seen["direct"] >= 256  # what the bench measured before: the driver's peak
    assert seen["launched"]["rss_mib"] < 64  # a bare interpreter's own
    assert seen["launched"]["status"] == 0
    assert seen["launched_output"] == seen["direct_output"] == "hello\n"


def test_a_failing_command_reports_its_exit_status_and_its_input_reaches_it() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import launch
    finally:
        sys.path.remove(str(BENCH))
    output, facts = launch.spawn([sys.executable, "-c", "import sys; data = sys.stdin.read(); print(data[::-1]); "
                                  "sys.exit(3)"], stdin=b"abc")
    assert output == b"cba\n"
    assert facts["status"] == 3
    assert facts["wall"] > 0 and facts["cpu"] > 0
