"""The command line follows its field's conventions: --version, --json, help that says what each command
does, and one line with a documented exit code for every failure, never a traceback.

The failure cases run the command as a user would, in a subprocess with no AWS credentials in reach.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from report_exporter import __version__
from report_exporter.local import cli
from report_exporter.local.cli import main
from report_exporter.local.operate import StackNotFoundError

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("demo", "run", "backfill", "status", "replay", "validate")
SAYS = {
    "demo": "Run every demo export end to end locally",
    "run": "Run one configured export for one month locally",
    "backfill": "Start one execution per past month on a deployed stage's state machine",
    "status": "Show the job ledger: each export and month, its status, metrics and cost",
    "replay": "Rebuild a month's Parquet from its kept raw files",
    "validate": "Check an exports TOML file",
}
CONFIG = '''[[exports]]
name = "particle-fleet"
vendor = "particle"
secret_name = "report-exporter/particle-fleet"
publish_by_day = 6
'''


def command(*args: str, tmp_path: Path, region: bool = True) -> subprocess.CompletedProcess[str]:
    """``report-exporter ARGS`` in a fresh process, without AWS credentials or metadata service (and without a
    region, unless ``region``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("functions", "infra")),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if region:
        env["AWS_DEFAULT_REGION"] = "us-east-1"
    return subprocess.run([sys.executable, "-m", "report_exporter.local.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120, check=False)


def one_line_failure(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("report-exporter")
    return lines[0]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exports.toml"
    path.write_text(CONFIG)
    return path


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = command("--version", tmp_path=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"report-exporter {__version__}")


def test_help_says_what_each_command_does_today_in_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":class:" not in text
    for name in COMMANDS:
        assert f"\n    {name}" in text or f"  {name} " in text, name
    # The exit codes are documented where a user looks first.
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "70 ", "130 "):
        assert f"\n  {code}" in text, code
    assert "pip install 'report-exporter[local]'" in text


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help_in_plain_text(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([name, "--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    assert text.startswith(f"usage: report-exporter {name}")
    assert SAYS[name] in " ".join(text.split()), name


def test_json_is_offered_on_every_command_that_reports(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("run", "status", "backfill", "validate"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "--json" in capsys.readouterr().out, name


@pytest.mark.parametrize(("args", "words"), [
    (["backfill", "--config", "x.toml", "--export", "e", "--from", "2026-5", "--to", "2026-06", "--dry-run"],
     "'2026-5' is not a month: write it as YYYY-MM"),
    (["replay", "--export", "e", "--period", "26-05"], "'26-05' is not a month"),
    (["status", "--limit", "0"], "'0' is not a positive whole number"),
    (["status", "--stage", "Prod"], "not a valid stage name"),
    (["frobnicate"], "invalid choice"),
    (["demo", "--vendor", "nope"], "invalid choice: 'nope' (choose from 'here', 'kore', 'particle', 'senet'"),
    (["status", "--nope"], "unrecognized arguments"),
])
def test_bad_command_lines_exit_2_with_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    line = one_line_failure(command(*args, tmp_path=tmp_path), cli.USAGE)
    assert words in line
    assert "--help" in line


def test_an_unknown_export_exits_2_naming_the_known_ones(tmp_path: Path, config: Path) -> None:
    line = one_line_failure(command("backfill", "--config", str(config), "--export", "nope", "--from", "2026-01",
                                    "--to", "2026-02", "--dry-run", tmp_path=tmp_path), cli.USAGE)
    assert "no export named 'nope'" in line and "particle-fleet" in line


def test_a_missing_or_invalid_config_exits_2(tmp_path: Path) -> None:
    line = one_line_failure(command("validate", "--config", "missing.toml", tmp_path=tmp_path), cli.USAGE)
    assert "missing.toml does not exist" in line
    (tmp_path / "bad.toml").write_text('[[exports]]\nname = "x1"\nvendor = "particle"\nsecret_name = "s"\n'
                                       'publish_by_day = 2\n')
    line = one_line_failure(command("validate", "--config", "bad.toml", tmp_path=tmp_path), cli.USAGE)
    assert "publish_by_day" in line and "schedule.day_of_month (3)" in line


@pytest.mark.parametrize("args", [
    ["status", "--table", "x"],
    ["status"],
    ["backfill", "--config", "CONFIG", "--export", "particle-fleet", "--from", "2026-01", "--to", "2026-02"],
    ["replay", "--export", "particle-fleet", "--period", "2026-01", "--raw-bucket", "b", "--table", "t",
     "--function-name", "f"],
])
def test_missing_aws_credentials_exit_3_with_one_line(tmp_path: Path, config: Path, args: list[str]) -> None:
    line = one_line_failure(command(*[str(config) if a == "CONFIG" else a for a in args], tmp_path=tmp_path), cli.AWS)
    assert "no AWS credentials found" in line


def test_no_aws_region_exits_3_saying_how_to_give_one(tmp_path: Path) -> None:
    line = one_line_failure(command("status", "--table", "x", tmp_path=tmp_path, region=False), cli.AWS)
    assert "no AWS region configured: pass --region or set AWS_REGION" in line


def test_a_command_needing_the_local_extra_names_it(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name, *a: None if name in ("moto", "duckdb")
                        else real(name, *a))
    for args in (["demo"], ["run", "--config", "c", "--export", "e", "--period", "2026-01"]):
        assert main(args) == cli.MISSING_EXTRA
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert "needs the 'local' extra (missing: moto, duckdb)" in line
        assert "pip install 'report-exporter[local]'" in line


def test_an_unexpected_error_is_one_line_and_exit_70(monkeypatch: pytest.MonkeyPatch, config: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: Any) -> int:
        raise KeyError("boom")

    monkeypatch.setattr(cli, "cmd_validate", broken)
    assert main(["validate", "--config", str(config)]) == cli.INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "unexpected error: KeyError: 'boom' (--verbose shows the traceback)" in err
    # --verbose shows it, for a bug report.
    assert main(["--verbose", "validate", "--config", str(config)]) == cli.INTERNAL
    assert "Traceback" in capsys.readouterr().err


def _client_error(code: str, message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeStacks")


@pytest.mark.parametrize(("raised", "code", "line"), [
    (lambda: TimeoutError("execution particle-fleet-2026-10 still running after 60 s"), cli.FAILED,
     "gave up: execution particle-fleet-2026-10 still running after 60 s"),
    (lambda: _client_error("AccessDenied", "not authorized to perform: cloudformation:DescribeStacks"), cli.AWS,
     "AWS refused DescribeStacks: AccessDenied: not authorized to perform: cloudformation:DescribeStacks"),
    (lambda: _client_error("ExpiredTokenException", "The security token included in the request is expired"),
     cli.AWS, "AWS refused DescribeStacks: ExpiredTokenException: The security token included in the request is"),
    (lambda: StackNotFoundError("stack ReportExporterStorage not found in eu-west-1"), cli.AWS,
     "stack ReportExporterStorage not found in eu-west-1"),
], ids=["gave-up", "access-denied", "expired-token", "no-stack"])
def test_each_kind_of_failure_has_its_exit_code_and_one_line(
        monkeypatch: pytest.MonkeyPatch, config: Path, capsys: pytest.CaptureFixture[str], raised: Any, code: int,
        line: str) -> None:
    def failing(args: Any) -> int:
        raise raised()

    monkeypatch.setattr(cli, "cmd_validate", failing)
    assert main(["validate", "--config", str(config)]) == code
    err = capsys.readouterr().err
    assert err.startswith(f"report-exporter: {line}") and err.count("\n") == 1 and "Traceback" not in err


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_validate", interrupted)
    assert main(["validate", "--config", str(config)]) == cli.INTERRUPTED
    assert capsys.readouterr().err == "report-exporter: interrupted\n"


def test_validate_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(config), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {"config": str(config), "exports": [{
        "name": "particle-fleet", "vendor": "particle", "secret_name": "report-exporter/particle-fleet",
        "schedule": {"enabled": True, "day_of_month": 3, "hour": 6, "minute": 0, "timezone": "UTC",
                     "flexible_window_minutes": 15},
        "publish_by_day": 6}]}


def test_backfill_dry_run_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backfill", "--config", str(config), "--export", "particle-fleet", "--from", "2026-01",
                 "--to", "2026-02", "--dry-run", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["export"], document["stage"], document["dry_run"]) == ("particle-fleet", "prod", True)
    assert [(e["period"], e["name"]) for e in document["executions"]] == [
        ("2026-01", "particle-fleet-2026-01"), ("2026-02", "particle-fleet-2026-02")]
    assert document["executions"][1]["input"]["period"] == "2026-02"
    assert document["executions"][1]["input"]["export"]["secret_name"] == "report-exporter/particle-fleet"


LEDGER_ITEM = {
    "export": "particle-fleet", "period": "2026-10", "status": "PUBLISHED", "report_id": "1001", "polls": 4,
    "rows": 1200, "rows_outside_period": 0, "raw_bytes": 120872, "parquet_bytes": 8531, "waited_seconds": 165,
    "report_age_seconds": 165, "link_expires_at": "2026-11-10T06:02:45+00:00", "link_headroom_seconds": 604800,
    "run_seconds": 170, "cost_usd": 0.000511, "cost_region": "us-east-1", "usage_state_transitions": 18,
    "usage_lambda_requests": 8, "vendor_error_VendorThrottledError": 1, "updated_at": "2026-11-03T06:02:50+00:00",
}


def test_status_json_over_a_local_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ledger.json").write_text(json.dumps({"ledger": [LEDGER_ITEM]}))
    assert main(["status", "--local", str(tmp_path), "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert (run["export"], run["period"], run["status"]) == ("particle-fleet", "2026-10", "PUBLISHED")
    assert run["metrics"] == {
        "polls": 4, "waited_seconds": 165, "report_age_seconds": 165, "link_expires_at": "2026-11-10T06:02:45+00:00",
        "link_headroom_seconds": 604800, "raw_bytes": 120872, "parquet_bytes": 8531, "rows": 1200,
        "rows_outside_period": 0, "run_seconds": 170, "vendor_errors": {"VendorThrottledError": 1}}
    assert run["cost"] == {"usd": 0.000511, "prices_region": "us-east-1",
                           "usage": {"lambda_requests": 8, "state_transitions": 18}}
    # The table shows the cost too.
    assert main(["status", "--local", str(tmp_path)]) == 0
    assert "$0.000511" in capsys.readouterr().out


def test_status_local_without_a_saved_ledger_says_how_to_get_one(tmp_path: Path) -> None:
    line = one_line_failure(command("status", "--local", str(tmp_path), tmp_path=tmp_path), cli.USAGE)
    assert "ledger.json does not exist: run `report-exporter demo`" in line
