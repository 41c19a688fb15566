"""Telnyx end to end through the real state machine (local runner), against the Telnyx simulator on loopback."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from report_exporter.local import query
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import TelnyxExport, month_window
from report_exporter.vendors.telnyx.adapter import PAGE_SIZE
from report_exporter.vendors.telnyx.dataset import DATASET
from report_exporter.vendors.telnyx.export import telnyx_time
from report_exporter.vendors.telnyx.simulator import TelnyxSimulator
from tests.local.conftest import PERIOD as LOCAL_PERIOD

EXPORT = TelnyxExport(
    name="telnyx-demo", secret_name="report-exporter/telnyx-demo", product="messaging",
    dimensions=("direction", "currency"), metrics=("cost", "parts"),
)
PERIOD = LOCAL_PERIOD
WINDOW = month_window(PERIOD, "UTC")
CURATED = f"curated/telnyx_usage/export=telnyx-demo/period={PERIOD}/data.parquet"


def test_telnyx_export_pages_through_the_report_into_one_partition(local_env: LocalEnvironment,
                                                                    tmp_path: Path) -> None:
    # Given a report of three pages, the second throttled once with a short Retry-After
    sim = TelnyxSimulator(rows=2 * PAGE_SIZE + 3, throttle_page=2, retry_after=5)
    with sim:
        # When the export runs
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        served = sim.data("messaging", ["direction", "currency"], ["cost", "parts"], telnyx_time(WINDOW.start))
        throttled, pages = sim.throttled, sim.pages_served
    # Then it succeeded without the wait loop (Telnyx is synchronous) and without a Step Functions retry
    assert result.succeeded, result.cause
    assert "CheckReport" not in result.states_entered()
    assert result.waits == [] and result.retries == []
    # And the throttled page was asked for again inside the Lambda; each page was served once
    assert (throttled, pages) == (1, 3)
    # And the raw file keeps one page per line, and the partition one row per aggregate
    raw_key, manifest = local_env.keys("raw")
    assert manifest == f"{raw_key}.manifest.json"
    assert raw_key == f"raw/telnyx/telnyx-demo/{PERIOD}/telnyx-demo-{PERIOD}-usage.jsonl"
    raw_pages = [json.loads(line) for line in local_env.read("raw", raw_key).splitlines()]
    assert [row for page in raw_pages for row in page["response"]["data"]] == served
    assert pq.read_table(io.BytesIO(local_env.read("curated", CURATED))).num_rows == len(served)
    # And the named queries answer with the simulator's numbers
    local_env.download(tmp_path)
    con = query.connect(tmp_path)
    results = {q.name: query.rows(con, q.sql) for q in DATASET.queries}
    total = sum(Decimal(str(row["cost"])) for row in served)
    _, month = results["telnyx_cost_month_over_month"]
    assert sum(r[4] for r in month) == total
    _, by_dimension = results["telnyx_cost_by_product_dimension_month"]
    assert sum(r[-1] for r in by_dimension if r[3] == "currency") == total


def test_telnyx_long_throttling_is_retried_by_step_functions(local_env: LocalEnvironment) -> None:
    # Given page 2 is throttled once with a wait too long to spend inside a Lambda
    sim = TelnyxSimulator(rows=PAGE_SIZE + 1, throttle_page=2, retry_after=900)
    with sim:
        # When the export runs
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    # Then DownloadReport failed once with VendorThrottledError, was retried, and the run succeeded
    assert result.succeeded, result.cause
    assert len(result.retries) == 1
    assert result.output and result.output["curated"]["rows"] == PAGE_SIZE + 1


def test_telnyx_wrong_key_fails_with_auth_error_and_is_not_retried(local_env: LocalEnvironment) -> None:
    # Given the secret holds a key Telnyx refuses
    sim = TelnyxSimulator()
    with sim:
        sent = local_env.point_at(EXPORT, sim)
        local_env.put_secret(EXPORT.secret_name, {"api_key": "KEY-revoked-31337"})
        # When the export runs
        result = local_env.run(sent, period=PERIOD)
        calls = len(sim.seen)
    # Then DownloadReport fails with VendorAuthError after one call, nothing is stored, the key is not shown
    assert result.error == "VendorAuthError"
    assert "KEY-revoked-31337" not in (result.cause or "")
    assert calls == 1 and result.retries == []
    assert result.states_entered()[-2:] == ["RecordFailure", "Failed"]
    assert local_env.keys("raw") == [] and local_env.keys("curated") == []
