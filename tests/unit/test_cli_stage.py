"""The operator commands find the stacks of the stage they are given (``--stage``, default prod)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from report_exporter.local import operate
from report_exporter.local.cli import main
from report_exporter.models.exports import ExportSpec

CONFIG = '''[[exports]]
name = "particle-fleet"
vendor = "particle"
secret_name = "report-exporter/particle-fleet"

[[exports]]
name = "particle-shared"
vendor = "particle"
secret_name = "shared/particle"
create_secret = false
'''


@pytest.fixture(autouse=True)
def _logger_levels_restored() -> Iterator[None]:
    """``main`` quiets the exporter's and the AWS libraries' loggers for the whole process: undo it."""
    names = ("report-exporter", "moto", "botocore", "urllib3")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exports.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def looked_up(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Stack outputs asked for, answered with a made-up value (no AWS)."""
    asked: list[tuple[str, str]] = []

    def stack_output(stack: str, key: str, *, region: str | None = None) -> str:
        asked.append((stack, key))
        return f"{stack}.{key}"

    monkeypatch.setattr(operate, "stack_output", stack_output)
    monkeypatch.setattr(operate, "ledger_rows", lambda table, export=None, *, region=None: [])
    return asked


@pytest.mark.parametrize(("args", "stack"), [
    ([], "ReportExporterStorage"),
    (["--stage", "prod"], "ReportExporterStorage"),
    (["--stage", "dev"], "ReportExporterStorage-dev"),
])
def test_status_reads_the_ledger_of_the_stage(looked_up: list[tuple[str, str]], args: list[str], stack: str) -> None:
    assert main(["status", *args]) == 0
    assert looked_up == [(stack, operate.LEDGER_OUTPUT)]


def test_backfill_starts_on_the_stages_state_machine_with_the_stages_secret(
    config: Path, looked_up: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[ExportSpec, str]] = []

    def backfill(export: ExportSpec, periods: list[str], *, state_machine_arn: str, region: str | None = None,
                 on_start: Any = None) -> list[Any]:
        started.append((export, state_machine_arn))
        return []

    monkeypatch.setattr(operate, "backfill", backfill)
    assert main(["backfill", "--config", str(config), "--export", "particle-fleet", "--from", "2026-01",
                 "--to", "2026-01", "--stage", "dev"]) == 0
    assert looked_up == [("ReportExporterPipeline-dev", operate.STATE_MACHINE_OUTPUT)]
    ((export, arn),) = started
    assert arn == "ReportExporterPipeline-dev.StateMachineArn"
    # The input names the secret the dev stack created, as dev's own schedules do.
    assert export.secret_name == "dev/report-exporter/particle-fleet"


@pytest.mark.parametrize(("args", "secret"), [
    (["--export", "particle-fleet"], "report-exporter/particle-fleet"),
    (["--export", "particle-fleet", "--stage", "dev"], "dev/report-exporter/particle-fleet"),
    # Managed elsewhere: the same secret in every stage.
    (["--export", "particle-shared", "--stage", "dev"], "shared/particle"),
])
def test_backfill_dry_run_prints_the_stages_execution_input(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], secret: str
) -> None:
    assert main(["backfill", "--config", str(config), *args, "--from", "2026-01", "--to", "2026-01",
                 "--dry-run"]) == 0
    assert f'"secret_name":"{secret}"' in capsys.readouterr().out


def test_replay_uses_the_stages_raw_bucket_ledger_and_function(
    looked_up: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(operate, "replay", lambda export, period, **kwargs: calls.append(kwargs) or {"objects": []})
    # No config: the raw files' manifests say what they answer
    assert main(["replay", "--export", "particle-fleet", "--period", "2026-01", "--stage", "test2"]) == 0
    assert looked_up == [("ReportExporterStorage-test2", operate.RAW_BUCKET_OUTPUT),
                         ("ReportExporterStorage-test2", operate.LEDGER_OUTPUT),
                         ("ReportExporterPipeline-test2", operate.WRITE_PARQUET_OUTPUT)]
    assert calls[0]["raw_bucket"] == "ReportExporterStorage-test2.RawBucketName"
    assert calls[0]["table"] == "ReportExporterStorage-test2.LedgerTableName"
    assert calls[0]["function_name"] == "ReportExporterPipeline-test2.WriteParquetFunctionName"


def test_a_stage_name_that_names_nothing_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["status", "--stage", "Dev-1"])
    assert raised.value.code == 2
    assert "not a valid stage name" in capsys.readouterr().err
