"""The commands that report, run as an operator runs them over the local runner: ``run --json`` and its exit codes,
``backfill --json``, and backfill's counter, live on a terminal and plain lines anywhere else."""

from __future__ import annotations

import io
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from report_exporter.clock import VirtualClock
from report_exporter.local import cli, runner
from report_exporter.local.cli import main
from report_exporter.local.progress import ERASE
from report_exporter.local.runner import LocalEnvironment
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD, START

RUN_KEYS = {"export", "period", "status", "succeeded", "execution", "error", "message", "waits", "seconds",
            "elapsed_seconds", "objects_written", "run"}
RECORD_KEYS = {"export", "period", "status", "report_id", "updated_at", "last_error", "metrics", "cost"}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _config(tmp_path: Path, base_url: str, name: str = "particle-demo") -> Path:
    path = tmp_path / "exports.toml"
    path.write_text(f'[[exports]]\nname = "{name}"\nvendor = "particle"\nsecret_name = "report-exporter/{name}"\n'
                    f'base_url = "{base_url}"\n')
    return path


@pytest.fixture
def run_command(monkeypatch: pytest.MonkeyPatch, local_templates: dict[str, dict[str, Any]],
                tmp_path: Path) -> Any:
    """``report-exporter run ... --virtual-time --json`` in this process, on a virtual clock that starts at START.

    ``run`` synthesizes the app for its one export; the session's templates, synthesized for the demo exports
    (particle-demo among them, the export run here), stand in to save the time.
    """
    monkeypatch.setattr(runner, "synthesize", lambda exports: local_templates)
    monkeypatch.setattr(cli, "SYSTEM", VirtualClock(START))

    def run(sim: ParticleSimulator, credentials: dict[str, str]) -> int:
        secrets = tmp_path / "my.secrets.json"
        secrets.write_text(json.dumps({"report-exporter/particle-demo": credentials}))
        return main(["run", "--config", str(_config(tmp_path, sim.base_url)), "--export", "particle-demo",
                     "--period", PERIOD, "--secrets", str(secrets), "--virtual-time", "--json",
                     "--out", str(tmp_path / "out")])

    return run


def test_run_json_is_the_outcome_and_the_runs_record(run_command: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with ParticleSimulator(pending_polls=1, rows=30) as sim:
        code = run_command(sim, sim.credentials())
    out, err = capsys.readouterr()
    assert code == cli.OK, err
    # stdout is the one JSON document; what the run says while it works went to stderr.
    document = json.loads(out)
    assert set(document) == RUN_KEYS
    assert (document["export"], document["period"], document["status"], document["succeeded"]) == (
        "particle-demo", PERIOD, "SUCCEEDED", True)
    assert (document["error"], document["message"]) == (None, None)
    assert document["waits"] == [15, 30] and document["elapsed_seconds"] >= 45
    # The raw file, its manifest and the Parquet partition
    assert document["execution"].startswith("arn:aws:states:") and document["objects_written"] == 3
    record = document["run"]
    assert set(record) == RECORD_KEYS
    assert (record["status"], record["metrics"]["polls"], record["metrics"]["rows"]) == ("PUBLISHED", 2, 30)
    assert record["metrics"]["waited_seconds"] == 45
    assert record["cost"]["usd"] > 0 and record["cost"]["usage"]["state_transitions"] == 12
    assert "particle-demo 2026-10: running against" in err and "waiting 15 s before poll 1" in err
    assert "Traceback" not in err


def test_a_failed_run_exits_1_with_one_line_and_still_prints_its_json(run_command: Any,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with ParticleSimulator(pending_polls=1, rows=30) as sim:
        code = run_command(sim, {"access_token": "not-the-token"})
    out, err = capsys.readouterr()
    assert code == cli.FAILED
    document = json.loads(out)
    assert (document["status"], document["succeeded"], document["error"]) == ("FAILED", False, "VendorAuthError")
    assert document["message"] and "not-the-token" not in out + err
    assert document["run"]["status"] == "FAILED" and document["run"]["last_error"].startswith("VendorAuthError")
    assert "Traceback" not in err
    failures = [line for line in err.splitlines() if line.startswith("report-exporter:")]
    assert failures == [err.strip().splitlines()[-1]]
    assert failures[0].startswith(f"report-exporter: particle-demo {PERIOD} failed: VendorAuthError: ")


def _backfill(local_env: LocalEnvironment, tmp_path: Path, *extra: str) -> int:
    with ParticleSimulator(pending_polls=0, rows=5) as sim:
        local_env.put_secret("report-exporter/particle-fleet", sim.credentials())
        code = main(["backfill", "--config", str(_config(tmp_path, sim.base_url, "particle-fleet")), "--export",
                     "particle-fleet", "--from", "2026-09", "--to", PERIOD, "--state-machine-arn",
                     local_env.state_machine_arn, "--region", "us-east-1", *extra])
        # Let the runs end while their vendor is there (a bounded wait: the loop gives up after 60 s).
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            executions = sfn.list_executions(stateMachineArn=local_env.state_machine_arn)["executions"]
            if all(e["status"] != "RUNNING" for e in executions):
                break
            time.sleep(0.05)
    assert [e["status"] for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    return code


COUNTER = r"backfill particle-fleet: (\d)/2 started"


def counters(text: str) -> list[str]:
    """The counts the live line showed, in order (a redraw of its ticking clock shows one again)."""
    return list(dict.fromkeys(re.findall(re.escape(ERASE) + COUNTER, text)))


def screen(text: str) -> list[str]:
    """What a terminal shows at the end: each line as it stands after its last erase."""
    return [line.rsplit(ERASE, 1)[-1] for line in text.split("\n")]


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_backfill_json_and_its_counter(local_env: LocalEnvironment, tmp_path: Path, terminal: bool,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stderr = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert _backfill(local_env, tmp_path, "--json") == cli.OK
    document = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in document.items() if k != "executions"} == {
        "export": "particle-fleet", "stage": "prod", "dry_run": False}
    assert [(e["period"], e["name"]) for e in document["executions"]] == [
        ("2026-09", "particle-fleet-2026-09"), (PERIOD, f"particle-fleet-{PERIOD}")]
    for execution in document["executions"]:
        assert set(execution) == {"period", "name", "arn", "console"}
        assert execution["arn"].endswith(f":execution:{execution['arn'].split(':')[6]}:{execution['name']}")
        assert "console.aws.amazon.com/states" in execution["console"] and execution["arn"] in execution["console"]
    progress = stderr.getvalue()
    if terminal:
        # One live line, redrawn in place for each start, and erased at the end.
        assert counters(progress) == ["1", "2"]
        assert "\n" not in progress and screen(progress) == [""]
    else:
        assert progress.splitlines() == ["backfill particle-fleet: 1/2 started", "backfill particle-fleet: 2/2 started"]


def test_backfill_on_a_terminal_prints_each_start_above_the_live_counter(
        local_env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = Terminal()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert _backfill(local_env, tmp_path) == cli.OK
    text = stdout.getvalue()
    assert counters(text) == ["1", "2"]
    # Each start stays on the screen, the counter below them is gone at the end.
    shown = screen(text)
    assert [line.split(":")[0] for line in shown] == ["particle-fleet-2026-09", f"particle-fleet-{PERIOD}", ""]


def test_backfill_on_a_pipe_prints_only_the_executions(local_env: LocalEnvironment, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert _backfill(local_env, tmp_path) == cli.OK
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in out.splitlines()] == ["particle-fleet-2026-09", f"particle-fleet-{PERIOD}"]
    assert "started" in out and "/2 started" not in out + err
    assert "\r" not in out and "\x1b" not in out
