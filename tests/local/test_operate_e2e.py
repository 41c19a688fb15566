"""Backfill and status against a stack (moto, via the local runner), as an operator would use them."""

from __future__ import annotations

import io
import time
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from report_exporter.clock import VirtualClock
from report_exporter.local.cli import main
from report_exporter.local.demo import SIMULATORS, demo_exports
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import VendorName, load_exports, month_window, previous_period
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD

LAST = PERIOD
FIRST = previous_period(month_window(previous_period(month_window(LAST, "UTC").start, "UTC"), "UTC").start, "UTC")


def config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "exports.toml"
    path.write_text(f'''[[exports]]
name = "particle-fleet"
vendor = "particle"
secret_name = "report-exporter/particle-fleet"
base_url = "{base_url}"
''')
    return path


def test_backfill_runs_each_month_and_status_shows_them(local_env: LocalEnvironment, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with ParticleSimulator(pending_polls=1, rows=40) as sim:
        local_env.put_secret("report-exporter/particle-fleet", sim.credentials())
        path = config(tmp_path, sim.base_url)
        # When three months are backfilled
        code = main(["backfill", "--config", str(path), "--export", "particle-fleet", "--from", FIRST, "--to", LAST,
                     "--state-machine-arn", local_env.state_machine_arn, "--region", "us-east-1"])
        out = capsys.readouterr().out
        # Then three executions start, named after export and month, with console links
        assert code == 0
        assert [line.split(":")[0] for line in out.splitlines()] == [
            f"particle-fleet-{p}" for p in (FIRST, previous_period(month_window(LAST, "UTC").start, "UTC"), LAST)]
        assert "console.aws.amazon.com/states" in out
        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + 60
        while any(e["status"] == "RUNNING" for e in sfn.list_executions(
                stateMachineArn=local_env.state_machine_arn)["executions"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    # And status lists each month as published, with its rows
    assert main(["status", "--table", local_env.env["LEDGER_TABLE"], "--region", "us-east-1"]) == 0
    table = capsys.readouterr().out
    assert table.count("PUBLISHED") == 3 and " 40 " in table


def test_backfill_dry_run_prints_the_execution_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, "https://api.particle.io")
    assert main(["backfill", "--config", str(path), "--export", "particle-fleet", "--from", "2026-01",
                 "--to", "2026-02", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["particle-fleet-2026-01", "particle-fleet-2026-02"]
    assert '"period":"2026-02"' in lines[1]


def test_backfill_with_from_after_to_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, "https://api.particle.io")
    assert main(["backfill", "--config", str(path), "--export", "particle-fleet", "--from", "2026-05",
                 "--to", "2026-02", "--dry-run"]) == 2
    assert "--from 2026-05 is after --to 2026-02" in capsys.readouterr().err


def test_replay_rebuilds_the_partition_from_raw_without_calling_the_vendor(
    local_env: LocalEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a published month
    with ParticleSimulator(pending_polls=0, rows=70) as sim:
        path = config(tmp_path, sim.base_url)
        export = local_env.point_at(load_exports(path).get("particle-fleet"), sim)
        assert local_env.run(export, period=LAST).succeeded
        calls_before = len(sim.seen)
        key = f"curated/particle_data_operations/export=particle-fleet/period={LAST}/data.parquet"
        local_env.download(tmp_path / "before")
        # When the month is replayed a day later
        assert isinstance(local_env.clock, VirtualClock)
        local_env.clock.advance(86_400)
        code = replay(local_env, "particle-fleet", LAST)
        calls_after = len(sim.seen)
    # Then the partition is rebuilt with the same rows, and the vendor was not called
    assert code == 0, capsys.readouterr().err
    assert "70 rows rebuilt" in capsys.readouterr().out
    assert calls_after == calls_before
    table = pq.read_table(io.BytesIO(local_env.read("curated", key)))
    before = pq.read_table(tmp_path / "before" / key)
    assert table.num_rows == 70
    assert table.column("exported_at")[0].as_py() > before.column("exported_at")[0].as_py()
    assert table.drop(["exported_at"]).equals(before.drop(["exported_at"]))


def replay(env: LocalEnvironment, export: str, period: str) -> int:
    """``report-exporter replay`` against the local stack: no config, only the stack's resources."""
    function = next(name for name in env._functions if "WriteParquet" in name)
    return main(["replay", "--export", export, "--period", period, "--raw-bucket", env.env["RAW_BUCKET"],
                 "--table", env.env["LEDGER_TABLE"], "--function-name", function, "--region", "us-east-1"])


def test_replay_of_a_month_never_run_says_so(local_env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    code = replay(local_env, "particle-fleet", "2026-01")
    assert code == 2
    err = capsys.readouterr().err
    assert "no run recorded in the ledger" in err and "no raw file with a manifest" in err


@pytest.mark.parametrize("vendor", list(VendorName))
def test_replay_needs_only_the_raw_prefix_once_the_export_is_gone_from_config_and_ledger(
    local_env: LocalEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str], vendor: VendorName
) -> None:
    # Given a month published by the vendor's demo export
    (export,) = [e for e in demo_exports().exports if e.vendor_name is vendor]
    with SIMULATORS[vendor]() as sim:
        assert local_env.run(local_env.point_at(export, sim), period=LAST).succeeded
    published = local_env.keys("curated", "curated/")
    before = {key: pq.read_table(io.BytesIO(local_env.read("curated", key))) for key in published}
    assert before and all(table.num_rows for table in before.values())
    # And then the export removed from the config (replay is given none), the vendor gone, and the month's
    # run removed from the ledger: only the raw prefix is left
    remaining = [e for e in demo_exports().exports if e.name != export.name]
    assert export.name not in {e.name for e in remaining}
    boto3.client("dynamodb").delete_item(TableName=local_env.env["LEDGER_TABLE"], Key={
        "pk": {"S": f"EXPORT#{export.name}"}, "sk": {"S": f"PERIOD#{LAST}"}})
    assert local_env.ledger_item(export.name, LAST) == {}
    assert isinstance(local_env.clock, VirtualClock)
    local_env.clock.advance(86_400)
    # When the month is replayed
    code = replay(local_env, export.name, LAST)
    # Then every partition is rebuilt with the same rows, values and lineage (only exported_at is new)
    assert code == 0, capsys.readouterr().err
    assert local_env.keys("curated", "curated/") == published
    for key, table in before.items():
        after = pq.read_table(io.BytesIO(local_env.read("curated", key)))
        assert after.drop(["exported_at"]).equals(table.drop(["exported_at"])), key
        assert after.column("exported_at")[0].as_py() > table.column("exported_at")[0].as_py()
    # And the ledger notes the replay's row count
    assert local_env.ledger_item(export.name, LAST)["rows"] == sum(t.num_rows for t in before.values())
