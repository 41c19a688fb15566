"""Particle end to end through the real state machine (local runner), as a user would run it."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from report_exporter.local import query
from report_exporter.local.polling import poll_loop
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import ParticleExport
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD as LOCAL_PERIOD
from tests.local.conftest import CapturedLogs

EXPORT = ParticleExport(name="particle-demo", secret_name="report-exporter/particle-demo")
# Last month: Particle only serves the last 6 months, so a fixed month would expire.
PERIOD = LOCAL_PERIOD


def parquet_rows(env: LocalEnvironment, key: str) -> int:
    return pq.read_table(io.BytesIO(env.read("curated", key))).num_rows


def test_ready_after_polls_downloads_once_with_escalating_waits(local_env: LocalEnvironment) -> None:
    # Given a report that is pending for four polls
    with ParticleSimulator(pending_polls=4, rows=777) as sim:
        # When the export runs
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        downloads = [r.downloads for r in sim.reports.values()]
    # Then it succeeded after waits of 15, 30, 60, then once a minute
    assert result.succeeded, result.cause
    assert result.waits == [15, 30, 60, 60, 60]
    # And its history has exactly the events the polling model counts for five polls (what `make bench` uses)
    assert len(result.history) == poll_loop(local_env.definition).history_events(polls=5)
    # And the report was requested and downloaded exactly once
    assert downloads == [1]
    # And the Parquet partition holds every CSV row
    raw_key, manifest = local_env.keys("raw")
    assert manifest == f"{raw_key}.manifest.json"
    assert local_env.read("raw", raw_key).count(b"\n") == 777 + 1
    key = f"curated/particle_data_operations/export=particle-demo/period={PERIOD}/data.parquet"
    assert parquet_rows(local_env, key) == 777
    assert result.output and result.output["curated"]["rows"] == 777


def test_vendor_failure_is_recorded_then_the_execution_fails(local_env: LocalEnvironment) -> None:
    with ParticleSimulator(pending_polls=1, fail_report=True) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert result.status == "FAILED"
    assert result.error == "ReportFailedError"
    assert result.states_entered()[-2:] == ["RecordFailure", "Failed"]
    (record,) = result.task_outputs("RecordFailure")
    assert record["export"] == "particle-demo" and record["period"] == PERIOD
    assert local_env.keys("curated") == []


def test_report_past_the_deadline_times_out(local_env: LocalEnvironment) -> None:
    # Given a 5-minute deadline and a report that is never ready
    export = EXPORT.model_copy(update={"report_deadline_minutes": 5})
    with ParticleSimulator(never_ready=True) as sim:
        result = local_env.run(export, period=PERIOD, simulator=sim)
    # Then the run fails with ReportTimedOutError once 5 minutes of (virtual) waiting have passed
    assert result.error == "ReportTimedOutError"
    assert sum(result.waits) >= 5 * 60
    assert "RecordFailure" in result.states_entered()


def test_link_refused_once_gets_a_fresh_link_and_succeeds(local_env: LocalEnvironment) -> None:
    with ParticleSimulator(pending_polls=0, link_fail_once=403, rows=50) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        (report,) = sim.reports.values()
    assert result.succeeded, result.cause
    assert (report.link_refusals, report.downloads) == (1, 1)


def test_wrong_token_fails_with_auth_error_and_is_not_retried(local_env: LocalEnvironment) -> None:
    # Given the secret holds a token the vendor refuses
    with ParticleSimulator() as sim:
        sent = local_env.point_at(EXPORT, sim)
        local_env.put_secret(EXPORT.secret_name, {"access_token": "revoked-token"})
        result = local_env.run(sent, period=PERIOD)
        calls = len(sim.calls("GET", "service_agreements"))
    # Then the run fails at RequestReport with VendorAuthError after exactly one vendor call
    assert result.error == "VendorAuthError"
    assert calls == 1
    assert result.retries == []


def test_throttled_poll_waits_longer_and_still_succeeds(local_env: LocalEnvironment) -> None:
    with ParticleSimulator(pending_polls=2, throttle_polls=frozenset({2}), retry_after=90) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert result.succeeded, result.cause
    assert result.waits[:3] == [15, 30, 120]


def test_preamble_before_the_header_is_skipped(local_env: LocalEnvironment) -> None:
    with ParticleSimulator(pending_polls=0, preamble=True, rows=30) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert result.succeeded, result.cause
    assert result.output and result.output["curated"]["rows"] == 30


def test_rerun_replaces_the_partition_instead_of_adding_rows(local_env: LocalEnvironment, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with ParticleSimulator(pending_polls=0, rows=120) as sim:
        first = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        second = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert first.succeeded and second.succeeded
    local_env.download(tmp_path)
    con = query.connect(tmp_path)
    assert con.execute("SELECT count(*) FROM particle_data_operations").fetchone() == (120,)
    assert len(local_env.keys("curated")) == 1


def test_named_queries_answer_with_the_vendor_numbers(local_env: LocalEnvironment, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from report_exporter.vendors.particle.dataset import DATASET

    with ParticleSimulator(pending_polls=0, rows=400, devices=10) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        (report_id,) = sim.reports
        total = sim.total_operations(report_id)
    assert result.succeeded
    local_env.download(tmp_path)
    con = query.connect(tmp_path)
    results = {q.name: query.rows(con, q.sql) for q in DATASET.queries}
    _, per_device = results["particle_usage_by_device_month"]
    assert len(per_device) == 10 and sum(r[-1] for r in per_device) == total
    _, top = results["particle_top_devices_latest_month"]
    assert top[0][-1] == max(r[-1] for r in per_device)
    _, mom = results["particle_product_month_over_month"]
    assert sum(r[3] for r in mom) == total and all(r[4] is None for r in mom)


def test_no_secret_or_signed_url_in_logs_payloads_or_errors(local_env: LocalEnvironment,
                                                             captured_logs: CapturedLogs) -> None:
    # Given every log line of a full run (a refused link included) and of a failing run is captured
    with ParticleSimulator(pending_polls=1, link_fail_once=410, rows=20) as sim:
        ok = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        signatures = [r.signature for r in sim.reports.values()]
        token = sim.token
    with ParticleSimulator(fail_report=True, pending_polls=0) as failing:
        failed = local_env.run(EXPORT, period=PERIOD, simulator=failing)
        token2 = failing.token
    logs = captured_logs.text()
    # Then neither the token nor any link signature appears anywhere a person or a payload could see
    haystack = "\n".join([logs, str(ok.history), str(failed.history), str(ok.output), str(failed.cause)])
    assert ok.succeeded and failed.status == "FAILED"
    assert "run planned" in logs and "export failed" in logs
    for secret in [token, token2, *signatures]:
        assert secret and secret not in haystack
    assert "/download/" not in haystack
