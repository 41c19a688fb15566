"""KORE end to end through the real state machine (local runner), against the KORE simulator on loopback."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq

from report_exporter.local import query
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import KoreExport, month_window
from report_exporter.vendors.kore.dataset import DATASET
from report_exporter.vendors.kore.simulator import KoreSimulator
from tests.local.conftest import PERIOD as LOCAL_PERIOD

EXPORT = KoreExport(name="kore-demo", secret_name="report-exporter/kore-demo")
# Last month, so the period stays inside KORE's 18-month retention whenever the suite runs.
PERIOD = LOCAL_PERIOD
WINDOW = month_window(PERIOD, "UTC")
DAYS = (WINDOW.end - WINDOW.start).days


def curated_key(export: str = "kore-demo") -> str:
    return f"curated/kore_usage_records/export={export}/period={PERIOD}/data.parquet"


def test_kore_export_pages_through_usage_records_into_one_partition(local_env: LocalEnvironment,
                                                                     tmp_path: Path) -> None:
    # Given KORE serving last month's daily records 7 a page, 3 of them with totals that do not add up
    with KoreSimulator(page_size=7, inconsistent=3) as sim:
        # When the export runs
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        start, end = EXPORT.query_range(WINDOW)
        served = sim.usage_records(start, end, "daily")
        tokens, pages = sim.tokens_issued, sim.pages_served
    # Then it succeeded without entering the wait loop (KORE is synchronous)
    assert result.succeeded, result.cause
    assert result.waits == []
    assert "CheckReport" not in result.states_entered()
    # And one token served RequestReport and DownloadReport; every page was fetched once
    assert tokens == 1
    assert pages == -(-DAYS // 7)
    # And the raw file keeps one page body per line, and the partition one row per record
    raw_key, manifest = local_env.keys("raw")
    assert manifest == f"{raw_key}.manifest.json"
    assert raw_key == f"raw/kore/kore-demo/{PERIOD}/kore-demo-{PERIOD}-usage-records.jsonl"
    raw_pages = [json.loads(line) for line in local_env.read("raw", raw_key).splitlines()]
    assert [r for p in raw_pages for r in p["usage_records"]] == served
    table = pq.read_table(io.BytesIO(local_env.read("curated", curated_key())))
    assert table.num_rows == DAYS
    # And the named queries answer with the simulator's numbers
    local_env.download(tmp_path)
    con = query.connect(tmp_path)
    results = {q.name: query.rows(con, q.sql) for q in DATASET.queries}
    names, monthly = results["kore_data_usage_by_account_month"]
    assert monthly[0][names.index("data_total")] == sum(r["data"]["total"] for r in served)
    _, inconsistent = results["kore_inconsistent_totals"]
    assert len(inconsistent) == 3


def test_kore_per_sim_hourly_export_gets_every_hour(local_env: LocalEnvironment) -> None:
    # Given an hourly export of one SIM
    sim_sid = "DE" + "0123456789abcdef" * 2
    export = EXPORT.model_copy(update={"name": "kore-sim", "granularity": "hourly", "sim_sid": sim_sid})
    with KoreSimulator() as sim:
        # When the export runs
        result = local_env.run(export, period=PERIOD, simulator=sim)
        calls = sim.calls("GET", f"/v1/Sims/{sim_sid}/UsageRecords")
    # Then every hour of the month is a row of that SIM
    assert result.succeeded, result.cause
    assert len(calls) == 1
    table = pq.read_table(io.BytesIO(local_env.read("curated", curated_key("kore-sim"))))
    assert table.num_rows == DAYS * 24
    assert set(table.column("sim_sid").to_pylist()) == {sim_sid}
    assert set(table.column("granularity").to_pylist()) == {"hourly"}


def test_kore_wrong_credentials_fail_with_auth_error_and_are_not_retried(local_env: LocalEnvironment) -> None:
    # Given the secret holds client credentials KORE refuses
    with KoreSimulator() as sim:
        sent = local_env.point_at(EXPORT, sim)
        local_env.put_secret(EXPORT.secret_name, {"client_id": "someone-else", "client_secret": "wrong-secret-9f3"})
        # When the export runs
        result = local_env.run(sent, period=PERIOD)
        token_calls = len(sim.calls("POST", "/auth/token"))
    # Then it fails at RequestReport with VendorAuthError after one token request, and nothing is stored
    assert result.error == "VendorAuthError"
    assert "wrong-secret-9f3" not in (result.cause or "")
    assert token_calls == 1
    assert result.retries == []
    assert result.states_entered()[-2:] == ["RecordFailure", "Failed"]
    assert local_env.keys("raw") == [] and local_env.keys("curated") == []


def test_kore_period_past_retention_is_refused_before_any_request(local_env: LocalEnvironment) -> None:
    # Given a backfill of a month more than 18 months ago
    old = "2024-06"
    with KoreSimulator() as sim:
        # When the export runs
        result = local_env.run(EXPORT, period=old, simulator=sim)
        seen = list(sim.seen)
    # Then PlanRun refuses it and KORE was never called
    assert result.error == "InvalidExportError"
    assert "18 months" in (result.cause or "")
    assert seen == []
