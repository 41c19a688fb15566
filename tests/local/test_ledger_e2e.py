"""The job ledger end to end: adopt instead of re-requesting, the outstanding-request cap, publish once."""

from __future__ import annotations

import io

import boto3
import pyarrow.parquet as pq

from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import ParticleExport, month_window, previous_period
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD as LOCAL_PERIOD

EXPORT = ParticleExport(name="particle-demo", secret_name="report-exporter/particle-demo")
PERIOD = LOCAL_PERIOD


def earlier(period: str, months: int) -> str:
    for _ in range(months):
        period = previous_period(month_window(period, "UTC").start, "UTC")
    return period


def ledger_item(env: LocalEnvironment, period: str) -> dict[str, object]:
    from report_exporter.aws.ledger import DynamoLedger

    return DynamoLedger(env.env["LEDGER_TABLE"]).get(EXPORT.name, period) or {}


def test_second_run_while_pending_adopts_the_report_and_publishes_once(local_env: LocalEnvironment) -> None:
    # Given a report that stays pending for a while
    with ParticleSimulator(pending_polls=4, rows=300) as sim:
        # When two executions of the same export and period run at the same time
        first, second = local_env.run_many([(EXPORT, PERIOD), (EXPORT, PERIOD)], simulator=sim)
        created = len(sim.reports)
        downloads = sum(r.downloads for r in sim.reports.values())
    # Then both succeed, and the vendor's report was requested, downloaded and published once
    assert first.succeeded and second.succeeded, (first.cause, second.cause)
    assert created == 1 and downloads == 1
    assert len(local_env.keys("raw")) == 2  # one raw object and its manifest
    published = [r.output["curated"]["published"] for r in (first, second) if r.output]
    assert sorted(published) == [False, True]
    adopted = [r.task_outputs("RequestReport")[-1]["adopted"] for r in (first, second)]
    assert sorted(adopted) == [False, True]
    # And the partition holds the report's rows once
    key = f"curated/particle_data_operations/export={EXPORT.name}/period={PERIOD}/data.parquet"
    assert pq.read_metadata(io.BytesIO(local_env.read("curated", key))).num_rows == 300
    assert ledger_item(local_env, PERIOD)["status"] == "PUBLISHED"


def test_four_concurrent_runs_never_exceed_three_outstanding_reports(local_env: LocalEnvironment) -> None:
    # Given one Particle account (cap 3) and four months to export at once
    periods = [earlier(PERIOD, n) for n in range(4)]
    with ParticleSimulator(pending_polls=3, rows=50) as sim:
        # When the four executions run concurrently
        results = local_env.run_many([(EXPORT, p) for p in periods], simulator=sim)
        peak, created = sim.max_seen_outstanding, len(sim.reports)
    # Then all four finish, and the vendor never saw more than three reports outstanding
    assert [r.status for r in results] == ["SUCCEEDED"] * 4, [r.cause for r in results]
    assert peak <= 3
    assert created == 4
    # And the account's slots are all released
    slots = boto3.client("dynamodb").get_item(
        TableName=local_env.env["LEDGER_TABLE"],
        Key={"pk": {"S": f"ACCOUNT#{EXPORT.account_key()}"}, "sk": {"S": "OUTSTANDING"}},
    ).get("Item", {})
    assert not slots.get("slots", {}).get("SS")


def test_rerun_after_success_requests_a_fresh_report_and_replaces_the_partition(local_env: LocalEnvironment) -> None:
    with ParticleSimulator(pending_polls=0, rows=80) as sim:
        first = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        sim.rows = 60
        second = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        created = len(sim.reports)
    assert first.succeeded and second.succeeded
    assert created == 2
    key = f"curated/particle_data_operations/export={EXPORT.name}/period={PERIOD}/data.parquet"
    assert pq.read_metadata(io.BytesIO(local_env.read("curated", key))).num_rows == 60
    assert ledger_item(local_env, PERIOD)["rows"] == 60


def test_failed_run_is_recorded_in_the_ledger_and_a_rerun_requests_again(local_env: LocalEnvironment) -> None:
    with ParticleSimulator(pending_polls=0, fail_report=True) as sim:
        failed = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    item = ledger_item(local_env, PERIOD)
    assert failed.error == "ReportFailedError"
    assert item["status"] == "FAILED" and str(item["last_error"]).startswith("ReportFailedError")
    with ParticleSimulator(pending_polls=0, rows=5) as sim:
        again = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert again.succeeded and ledger_item(local_env, PERIOD)["status"] == "PUBLISHED"
