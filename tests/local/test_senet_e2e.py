"""Senet end to end through the real state machine (local runner), against the Senet simulator on loopback."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from report_exporter.local import query
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import SenetExport, previous_period
from report_exporter.vendors.senet.dataset import APPLICATION_DATASET, DEVICE_DATASET
from report_exporter.vendors.senet.simulator import SenetSimulator
from tests.local.conftest import PERIOD as LOCAL_PERIOD

EUIS = ("00250C0000010001", "00250C0000010002")
EXPORT = SenetExport(name="senet-demo", secret_name="report-exporter/senet-demo", application_euis=EUIS)
# The month that just ended: the only one for which a 404 means "not generated yet".
PERIOD = LOCAL_PERIOD


def rows(env: LocalEnvironment, dataset: str) -> int:
    key = f"curated/{dataset}/export=senet-demo/period={PERIOD}/data.parquet"
    return int(pq.read_table(io.BytesIO(env.read("curated", key))).num_rows)


def test_senet_export_lands_summaries_and_devices_when_the_month_is_there(local_env: LocalEnvironment,
                                                                         tmp_path: Path) -> None:
    # Given two Applications of six devices, with the month already generated
    sim = SenetSimulator(euis=EUIS, devices=6)
    with sim:
        # When the export runs
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        summaries = {eui: sim.summary(eui, PERIOD) for eui in EUIS}
        devices = {eui: sim.device_rows(eui, PERIOD) for eui in EUIS}
    # Then it went straight to DownloadReport (the raw key, no Bearer, was accepted on every call)
    assert result.succeeded, result.cause
    assert "CheckReport" not in result.states_entered() and result.waits == []
    # And one summary file plus one details CSV per Application were kept, and both tables filled
    kept = [f"raw/senet/senet-demo/{PERIOD}/senet-demo-{PERIOD}-summary.jsonl"] + [
        f"raw/senet/senet-demo/{PERIOD}/senet-demo-{PERIOD}-details-{eui}.csv" for eui in EUIS]
    # (each with its manifest beside it)
    assert sorted(local_env.keys("raw")) == sorted(kept + [f"{key}.manifest.json" for key in kept])
    assert rows(local_env, "senet_application_month") == 2
    assert rows(local_env, "senet_device_month") == 12
    # And the named queries answer with the simulator's numbers
    local_env.download(tmp_path)
    con = query.connect(tmp_path)
    (per_application,) = (q.sql for q in APPLICATION_DATASET.queries)
    (top_devices,) = (q.sql for q in DEVICE_DATASET.queries)
    _, applications = query.rows(con, per_application)
    assert [(r[2], r[3], r[4]) for r in applications] == [
        (eui, summaries[eui]["totalUpPackets"], summaries[eui]["totalDownPackets"]) for eui in EUIS
    ]
    _, top = query.rows(con, top_devices)
    assert top[0][4] == max(d["uplinks"] for rows_ in devices.values() for d in rows_)


def test_senet_waits_for_the_month_to_be_generated_then_exports_it(local_env: LocalEnvironment) -> None:
    # Given the just-ended month answers 404 to the first two probes
    sim = SenetSimulator(euis=EUIS, unavailable_probes=2)
    with sim:
        # When the export runs
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    # Then it waited 15 then 30 minutes (virtually) for availability, and succeeded
    assert result.succeeded, result.cause
    assert result.waits == [900, 1800]
    assert result.states_entered().count("CheckReport") == 2


def test_senet_month_never_generated_fails_with_report_not_available(local_env: LocalEnvironment) -> None:
    # Given a one-hour deadline and a month that never appears
    export = EXPORT.model_copy(update={"report_deadline_minutes": 60})
    sim = SenetSimulator(euis=EUIS, unavailable_probes=10_000)
    with sim:
        # When the export runs
        result = local_env.run(export, period=PERIOD, simulator=sim)
    # Then it gives up at the deadline with its own error, distinct from a report timing out
    assert result.error == "ReportNotAvailableError"
    assert sum(result.waits) >= 60 * 60
    assert result.states_entered()[-2:] == ["RecordFailure", "Failed"]
    assert local_env.keys("raw") == []


def test_senet_older_month_without_data_fails_at_once(local_env: LocalEnvironment) -> None:
    # Given a backfill of a month Senet has no data for
    old = previous_period(datetime(2026, 6, 15, tzinfo=UTC), "UTC")
    sim = SenetSimulator(euis=EUIS, no_data_periods=frozenset({old}))
    with sim:
        # When the export runs
        result = local_env.run(EXPORT, period=old, simulator=sim)
    # Then there is nothing to wait for: RequestReport fails naming the cause
    assert result.error == "VendorRequestError"
    assert "application not found or no usage data" in (result.cause or "")
    assert result.waits == []


def test_senet_wrong_key_fails_with_auth_error_and_is_not_retried(local_env: LocalEnvironment) -> None:
    # Given the secret holds a key Senet refuses
    sim = SenetSimulator(euis=EUIS)
    with sim:
        sent = local_env.point_at(EXPORT, sim)
        local_env.put_secret(EXPORT.secret_name, {"api_key": "senet-revoked-4242"})
        # When the export runs
        result = local_env.run(sent, period=PERIOD)
        calls = len(sim.seen)
    # Then RequestReport fails with VendorAuthError after one probe, and the key is not shown
    assert result.error == "VendorAuthError"
    assert "senet-revoked-4242" not in (result.cause or "")
    assert calls == 1 and result.retries == []
