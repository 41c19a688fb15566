"""A demo run records its metrics (the handlers' EMF output, captured by the local runner) and its estimated
AWS cost in the ledger, and ``status --json`` over the saved ledger shows both. ``run`` shows a live line
while it waits on a terminal, and plain lines when its output is not one."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from report_exporter.local.cli import main
from report_exporter.local.demo import SIMULATORS, demo_exports
from report_exporter.local.progress import ERASE
from report_exporter.local.runner import LocalEnvironment, RunResult
from report_exporter.telemetry import values
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def particle_run(local_env: LocalEnvironment) -> RunResult:
    export = demo_exports().get("particle-demo")
    with SIMULATORS[export.vendor_name]() as simulator:
        result = local_env.run(export, period=PERIOD, simulator=simulator)
    assert result.succeeded, (result.error, result.cause)
    return result


def test_the_runner_captures_each_states_emf_metrics(particle_run: RunResult) -> None:
    states = [blob["state"] for blob in particle_run.metrics]
    assert states == ["PlanRun", "RequestReport", "CheckReport", "CheckReport", "CheckReport", "CheckReport",
                      "DownloadReport", "WriteParquet"]
    for blob in particle_run.metrics:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "ReportExporter/local"  # the synthesized functions' stage
        assert (blob["export"], blob["vendor"]) == ("particle-demo", "particle")
    # The demo's Particle simulator is pending for 3 polls, then ready with a link valid for 7 days.
    assert particle_run.metric_values("Polls") == [1, 1, 1, 1]
    assert particle_run.metric_values("TimeWaited") == particle_run.waits == [15, 30, 60, 60]
    assert particle_run.metric_values("RunsStarted") == [1] and particle_run.metric_values("RunsPublished") == [1]
    (headroom,) = particle_run.metric_values("LinkExpiryHeadroom")
    assert headroom == 7 * 86400  # downloaded the moment it was ready (virtual time)
    assert particle_run.metric_values("Rows") == [1200]
    assert particle_run.metric_values("RunDuration") == [165]


def test_the_ledger_holds_the_same_figures_and_the_runs_cost(local_env: LocalEnvironment,
                                                              particle_run: RunResult) -> None:
    item = local_env.ledger_item("particle-demo", PERIOD)
    (raw_bytes,) = particle_run.metric_values("RawBytes")
    (parquet_bytes,) = particle_run.metric_values("ParquetBytes")
    assert (item["polls"], item["waited_seconds"], item["rows"], item["raw_bytes"], item["parquet_bytes"]) == (
        4, 165, 1200, raw_bytes, parquet_bytes)
    assert item["link_headroom_seconds"] == 7 * 86400 and item["run_seconds"] == 165
    # Every state the execution entered is one billed transition (no retries in this run).
    entered = len(particle_run.states_entered())
    assert item["usage_state_transitions"] == entered == 18
    # One Lambda request per task invocation, PlanRun's included.
    invocations = sum(1 for e in particle_run.history if e["type"] == "LambdaFunctionScheduled")
    assert item["usage_lambda_requests"] == invocations == 8
    assert item["usage_secrets_api_calls"] >= 1 and item["usage_s3_write_requests"] >= 3
    assert item["usage_s3_stored_bytes"] == raw_bytes + parquet_bytes
    assert item["cost_region"] == "us-east-1"
    # The ledger's cost is the sum of what the states reported to CloudWatch.
    reported = sum(values(blob).get("EstimatedCost", 0) for blob in particle_run.metrics)
    assert item["cost_usd"] == pytest.approx(reported, rel=1e-6)
    assert 0.0003 < item["cost_usd"] < 0.002


def test_a_rerun_counts_its_own_cost(local_env: LocalEnvironment, particle_run: RunResult) -> None:
    first = local_env.ledger_item("particle-demo", PERIOD)
    with ParticleSimulator(pending_polls=0, rows=10) as simulator:
        again = local_env.run(demo_exports().get("particle-demo"), period=PERIOD, simulator=simulator)
    assert again.succeeded
    second = local_env.ledger_item("particle-demo", PERIOD)
    # A new request starts the month's figures afresh: only the second run's transitions and polls count.
    assert second["usage_state_transitions"] == len(again.states_entered()) == 9 < first["usage_state_transitions"]
    assert second["polls"] == 1 and second["waited_seconds"] == again.waits[0]


def test_status_json_shows_a_saved_runs_metrics_and_cost(local_env: LocalEnvironment, particle_run: RunResult,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local_env.save_ledger(tmp_path / "ledger.json")
    assert main(["status", "--local", str(tmp_path), "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert (run["export"], run["period"], run["status"]) == ("particle-demo", PERIOD, "PUBLISHED")
    assert run["metrics"]["polls"] == 4 and run["metrics"]["rows"] == 1200
    assert run["metrics"]["link_headroom_seconds"] == 7 * 86400
    assert run["cost"]["usd"] > 0 and run["cost"]["prices_region"] == "us-east-1"
    assert run["cost"]["usage"]["state_transitions"] == 18


def _run_command(tmp_path: Path, sim: ParticleSimulator, *, terminal: bool) -> tuple[int, str]:
    config = tmp_path / "exports.toml"
    config.write_text(f'[[exports]]\nname = "particle-fleet"\nvendor = "particle"\n'
                      f'secret_name = "report-exporter/particle-fleet"\nbase_url = "{sim.base_url}"\n')
    secrets = tmp_path / "my.secrets.json"
    secrets.write_text(json.dumps({"report-exporter/particle-fleet": sim.credentials()}))
    args = [sys.executable, "-m", "report_exporter.local.cli", "run", "--config", str(config), "--export",
            "particle-fleet", "--period", PERIOD, "--secrets", str(secrets), "--virtual-time", "--out",
            str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("functions", "infra")),
           "COLUMNS": "200"}
    if not terminal:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
        return done.returncode, done.stdout + done.stderr
    primary, secondary = pty.openpty()
    process = subprocess.Popen(args, stdout=secondary, stderr=secondary, stdin=subprocess.DEVNULL, env=env)
    os.close(secondary)
    output = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(primary)
    return process.wait(timeout=30), output.decode(errors="replace")


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_run_shows_a_live_line_only_on_a_terminal(tmp_path: Path, terminal: bool) -> None:
    with ParticleSimulator(pending_polls=3, rows=20) as sim:
        code, output = _run_command(tmp_path, sim, terminal=terminal)
    assert code == 0, output[-2000:]
    assert "Traceback" not in output
    assert "Published" in output and "Estimated AWS cost $" in output
    wait = r"\d\d:\d\d:\d\d particle-fleet-\d{4}-\d\d: waiting \d+ (?:s|min \d+ s) before poll (\d)"
    if terminal:
        # Each of the 4 waits redraws the one live line (carriage return + erase line, its clock ticking)
        # instead of adding a line: no line break from the first wait to the run's end.
        assert set(re.findall(re.escape(ERASE) + wait, output)) == {"1", "2", "3", "4"}, output[:3000]
        live = output[output.index("waiting 15 s"):output.index("ended SUCCEEDED")]
        assert "\n" not in live
    else:
        assert "\r" not in output and "\x1b[" not in output
        assert re.findall("^" + wait, output, flags=re.MULTILINE) == ["1", "2", "3", "4"], output[:3000]
