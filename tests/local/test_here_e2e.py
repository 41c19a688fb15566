"""HERE end to end through the real state machine (local runner), against the HERE simulator on loopback."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from report_exporter.local import query
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import HereExport
from report_exporter.vendors.here.dataset import DATASET
from report_exporter.vendors.here.simulator import HereSimulator
from tests.local.conftest import PERIOD as LOCAL_PERIOD
from tests.local.conftest import CapturedLogs

EXPORT = HereExport(name="here-demo", secret_name="report-exporter/here-demo", realm="org123456789",
                    detail_level="day")
PERIOD = LOCAL_PERIOD
CURATED = f"curated/here_usage/export=here-demo/period={PERIOD}/data.parquet"


def test_report_pending_for_three_polls_lands_in_one_partition(local_env: LocalEnvironment) -> None:
    # Given a report that stays pending for three polls, with a column the dataset does not know
    with HereSimulator(pending_polls=3, rows=1234, extra_column=True) as sim:
        # When the export runs
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        (report,) = sim.reports.values()
        tokens = sim.token_requests
    # Then it succeeded after HERE's cadence: once a minute while the report is young
    assert result.succeeded, result.cause
    assert result.waits == [60, 60, 60, 60]
    # And one token served every Lambda call, and the report was downloaded once
    assert tokens == 1
    assert report.downloads == 1
    # And the raw object is HERE's gzip, named after the report
    raw_key, manifest = local_env.keys("raw")
    assert manifest == f"{raw_key}.manifest.json"
    assert raw_key == f"raw/here/here-demo/{PERIOD}/report-{report.id}.csv.gz"
    assert gzip.decompress(local_env.read("raw", raw_key)).count(b"\n") == 1234 + 1
    # And the Parquet partition holds every row, the unknown column in extra
    table = pq.read_table(io.BytesIO(local_env.read("curated", CURATED)))
    assert table.num_rows == 1234 and result.output and result.output["curated"]["rows"] == 1234
    assert table.column("extra")[0].as_py() == [("Cost Center (costCenter)", "CC-7, north")]
    assert table.column("usage_datetime").null_count == 0


def test_named_queries_answer_with_the_vendor_numbers(local_env: LocalEnvironment, tmp_path: Path) -> None:
    # Given a summarized report
    export = EXPORT.model_copy(update={"detail_level": "summarized"})
    with HereSimulator(pending_polls=0, rows=900) as sim:
        result = local_env.run(export, period=PERIOD, simulator=sim)
        total = sim.total_billable()
    assert result.succeeded, result.cause
    # When the named queries run on the downloaded partition
    local_env.download(tmp_path)
    con = query.connect(tmp_path)
    results = {q.name: query.rows(con, q.sql) for q in DATASET.queries}
    # Then their billable totals are the simulator's
    columns, by_feature = results["here_usage_by_category_feature_month"]
    assert sum(dict(zip(columns, r, strict=True))["billable_value"] for r in by_feature) == total
    columns, mom = results["here_billable_month_over_month"]
    assert all(dict(zip(columns, r, strict=True))["previous_month"] is None for r in mom)
    assert con.execute("SELECT count(*) FROM here_usage WHERE usage_datetime IS NOT NULL").fetchone() == (0,)


@pytest.mark.parametrize(("knobs", "error"), [({"fail_report": True}, "ReportFailedError"),
                                               ({"archive_report": True}, "ReportArchivedError"),
                                               ({"archive_before_download": True}, "ReportArchivedError")])
def test_failed_or_archived_report_is_recorded_then_the_execution_fails(
    local_env: LocalEnvironment, knobs: dict[str, bool], error: str
) -> None:
    with HereSimulator(pending_polls=1, **knobs) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert result.status == "FAILED"
    assert result.error == error
    assert result.states_entered()[-2:] == ["RecordFailure", "Failed"]
    assert local_env.keys("curated") == []


def test_wrong_access_key_secret_fails_with_auth_error_and_is_not_retried(local_env: LocalEnvironment) -> None:
    # Given the secret holds a key secret that does not sign correctly
    with HereSimulator() as sim:
        sent = local_env.point_at(EXPORT, sim)
        local_env.put_secret(EXPORT.secret_name, {"access_key_id": sim.access_key_id,
                                                  "access_key_secret": "rotated-away"})
        result = local_env.run(sent, period=PERIOD)
        token_calls, report_calls = sim.token_requests, len(sim.calls("POST", "/reports"))
    # Then RequestReport fails with VendorAuthError after one token request and no report request
    assert result.error == "VendorAuthError"
    assert "401300" in (result.cause or "")
    assert (token_calls, report_calls) == (1, 0)
    assert result.retries == []


def test_token_expiring_during_the_waits_is_renewed(local_env: LocalEnvironment) -> None:
    # Given tokens that live 4 minutes and a report that takes nine polls (10 minutes of waits)
    with HereSimulator(pending_polls=9, token_lifetime=240, rows=10) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        tokens = sim.token_requests
    # Then new tokens were fetched as the old ones expired, and the run succeeded
    assert result.succeeded, result.cause
    assert tokens >= 3


def test_no_secret_or_token_in_logs_payloads_or_errors(local_env: LocalEnvironment,
                                                       captured_logs: CapturedLogs) -> None:
    # Given every log line of a good and a failing run is captured
    with HereSimulator(pending_polls=1, rows=20) as sim:
        ok = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        secrets = [sim.access_key_secret, *sim.issued_tokens]
    with HereSimulator(pending_polls=0, fail_report=True) as failing:
        failed = local_env.run(EXPORT, period=PERIOD, simulator=failing)
        secrets += [failing.access_key_secret, *failing.issued_tokens]
    haystack = "\n".join([captured_logs.text(), str(ok.history), str(failed.history), str(ok.output),
                          str(failed.cause)])
    # Then neither the key secret nor any issued token, nor an OAuth signature, appears anywhere
    assert ok.succeeded and failed.status == "FAILED"
    assert len(secrets) >= 4
    for secret in secrets:
        assert secret not in haystack
    assert "oauth_signature" not in haystack
