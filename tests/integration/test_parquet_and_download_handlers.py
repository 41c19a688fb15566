"""DownloadReport and WriteParquet handlers with moto S3: what lands in the buckets."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from datetime import date
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from report_exporter.aws.ledger import DynamoLedger
from report_exporter.clock import SYSTEM
from report_exporter.errors import InvalidReportError
from report_exporter.handlers import download_report, write_parquet
from report_exporter.local import operate
from report_exporter.logic import write_parquet as write_logic
from report_exporter.models.payloads import RawObject, RunPlan
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.conftest import FIXTURES
from tests.integration.conftest import keep_manifest

HEADER = "Date,Device ID,Device Name,Product ID,Product Name,Connectivity,Data Operations,Firmware Version,Device OS\n"


def ledger_at(event: dict[str, Any], *, downloaded: bool = False) -> None:
    """Put the event's run in the ledger where the state machine would have left it before this step."""
    plan, job = RunPlan.model_validate(event["plan"]), event["job"]
    ledger, now = DynamoLedger(os.environ["LEDGER_TABLE"]), SYSTEM.now()
    ledger.claim(plan, now=now)
    ledger.requested(plan, job=job["job"], report_id=job["report_id"], ready=True, now=now)
    if downloaded:
        ledger.begin_download(plan, job=job["job"], now=now)
        objects = [RawObject.model_validate(o) for o in event["raw"]["objects"]]
        ledger.downloaded(plan, job=job["job"], objects=objects, now=now)


def put_raw(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def parquet_event(load_event: Any, raw_key: str, body: bytes, job: str = "1") -> dict[str, Any]:
    event = load_event("write_parquet/particle.json")
    event["raw"]["objects"][0].update(key=raw_key, bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    event["job"].update(job=job, report_id=job)
    ledger_at(event, downloaded=True)
    manifests_for(event)
    return event


def manifests_for(event: dict[str, Any]) -> None:
    """The manifests DownloadReport would have written beside the event's raw objects."""
    plan = RunPlan.model_validate(event["plan"])
    for obj in event["raw"]["objects"]:
        keep_manifest(os.environ["RAW_BUCKET"], plan, RawObject.model_validate(obj),
                      report_id=event["job"]["report_id"])


def curated_keys(bucket: str) -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def csv(rows: int, *, bad_row: int | None = None) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        ops = "many" if i == bad_row else str(i)
        lines.append(f"2026-10-{i % 28 + 1:02d},dev{i % 7},\"Dev, {i}\",{i % 3},P,cellular,{ops},1.0,6.1\n")
    return "".join(lines).encode()


def test_download_report_streams_the_vendor_file_into_the_raw_bucket(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    # Given a ready Particle report served by the simulator, and its token in Secrets Manager
    with ParticleSimulator(pending_polls=0, rows=2000) as sim:
        boto3.client("secretsmanager").create_secret(Name="report-exporter/particle-demo",
                                                     SecretString=json.dumps(sim.credentials()))
        report_id = sim.add_ready_report(date(2026, 10, 1), date(2026, 10, 31))
        event = load_event("download_report/particle.json")
        event["plan"]["export"]["base_url"] = sim.base_url
        event["job"].update(job=report_id, report_id=report_id)
        ledger_at(event)
        # When the handler runs
        out = download_report.lambda_handler(event, lambda_context)
    # Then the raw object holds the vendor's bytes, with their sha256 and size
    (obj,) = out["objects"]
    body = boto3.client("s3").get_object(Bucket=aws.raw, Key=obj["key"])["Body"].read()
    assert obj["key"] == f"raw/particle/particle-demo/2026-10/report-{report_id}.csv"
    assert obj["bytes"] == len(body) and obj["sha256"] == hashlib.sha256(body).hexdigest()
    assert body.count(b"\n") == 2001


def test_write_parquet_publishes_one_partition_with_every_row(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    # Given a raw CSV of 5,000 rows (quoted commas included)
    body = csv(5000)
    put_raw(aws.raw, "raw/particle/particle-demo/2026-10/report-1.csv", body)
    event = parquet_event(load_event, "raw/particle/particle-demo/2026-10/report-1.csv", body)
    # When the handler runs
    out = write_parquet.lambda_handler(event, lambda_context)
    # Then exactly one object is published at the partition's key with 5,000 typed rows and lineage
    key = "curated/particle_data_operations/export=particle-demo/period=2026-10/data.parquet"
    assert curated_keys(aws.curated) == [key]
    table = pq.read_table(io.BytesIO(boto3.client("s3").get_object(Bucket=aws.curated, Key=key)["Body"].read()))
    assert table.num_rows == 5000 == out["rows"]
    assert str(table.schema.field("data_operations").type) == "int64"
    assert str(table.schema.field("exported_at").type) == "timestamp[ms, tz=UTC]"
    assert set(table.column("source_key").to_pylist()) == {"raw/particle/particle-demo/2026-10/report-1.csv"}
    assert table.column("device_name")[1].as_py() == "Dev, 1"


def test_write_parquet_rerun_replaces_the_partition(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    # A second run of the month (a fresh vendor report) replaces the partition instead of adding rows
    for rows in (300, 200):
        body = csv(rows)
        key = f"raw/particle/particle-demo/2026-10/report-{rows}.csv"
        put_raw(aws.raw, key, body)
        write_parquet.lambda_handler(parquet_event(load_event, key, body, job=str(rows)), lambda_context)
    (key,) = curated_keys(aws.curated)
    data = boto3.client("s3").get_object(Bucket=aws.curated, Key=key)["Body"].read()
    assert pq.read_metadata(io.BytesIO(data)).num_rows == 200


def test_write_parquet_bad_value_fails_clearly_publishes_nothing_and_keeps_raw(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    body = csv(1000, bad_row=700)
    key = "raw/particle/particle-demo/2026-10/report-1.csv"
    put_raw(aws.raw, key, body)
    with pytest.raises(InvalidReportError, match=r"column 'Data Operations'.*'many'"):
        write_parquet.lambda_handler(parquet_event(load_event, key, body), lambda_context)
    assert curated_keys(aws.curated) == []
    assert boto3.client("s3").head_object(Bucket=aws.raw, Key=key)["ContentLength"] == len(body)


def test_write_parquet_row_count_mismatch_publishes_nothing(aws, load_event, lambda_context, monkeypatch):  # type: ignore[no-untyped-def]
    # Given the Parquet footer read back from S3 disagrees with the rows read (a writer bug)
    body = csv(100)
    key = "raw/particle/particle-demo/2026-10/report-1.csv"
    put_raw(aws.raw, key, body)
    real = write_logic.footer_rows
    monkeypatch.setattr(write_logic, "footer_rows", lambda bucket, k: real(bucket, k) - 1)
    # When the handler runs / Then it fails naming both counts and nothing is visible to Athena
    with pytest.raises(InvalidReportError, match=r"100 rows read but the Parquet file holds 99"):
        write_parquet.lambda_handler(parquet_event(load_event, key, body), lambda_context)
    assert curated_keys(aws.curated) == []


def here_gzip(rows: int) -> bytes:
    """A HERE report (gzip CSV) of ``rows`` rows, repeating the fixture's data line."""
    header, line = (FIXTURES / "vendors" / "here" / "report_day.csv").read_text().splitlines()[:2]
    return gzip.compress(("\n".join([header, *[line] * rows]) + "\n").encode())


@pytest.mark.parametrize("dataset_event", ["write_parquet/particle.json", "write_parquet/here.json"])
def test_write_parquet_refuses_to_publish_when_raw_records_and_rows_read_disagree(  # type: ignore[no-untyped-def]
        aws, load_event, lambda_context, monkeypatch, dataset_event):
    # Given the download counted one record more than the reader will find (as when a reader loses a row)
    event = load_event(dataset_event)
    (obj,) = event["raw"]["objects"]
    body = csv(40) if "particle" in dataset_event else here_gzip(40)
    put_raw(aws.raw, obj["key"], body)
    obj.update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest(), records=41)
    event["job"].update(job="1", report_id="1")
    ledger_at(event, downloaded=True)
    manifests_for(event)
    # When WriteParquet runs / Then it fails naming both counts, and nothing is published
    with pytest.raises(InvalidReportError, match="the vendor sent 41 records but 40 rows were read"):
        write_parquet.lambda_handler(event, lambda_context)
    assert curated_keys(aws.curated) == []


def published_table(bucket: str) -> pa.Table:
    key = "curated/particle_data_operations/export=particle-demo/period=2026-10/data.parquet"
    return pq.read_table(io.BytesIO(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_write_parquet_keeps_and_counts_rows_outside_the_period(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    # Given a 2026-10 report with one row dated 2019-01-01 and one dated 2026-11-01
    body = (HEADER + "2019-01-01,old,Old,1,P,cellular,5,1.0,6.1\n"
            + csv(10).decode().removeprefix(HEADER) + "2026-11-01,new,New,1,P,cellular,7,1.0,6.1\n").encode()
    key = "raw/particle/particle-demo/2026-10/report-1.csv"
    put_raw(aws.raw, key, body)
    # When the handler runs
    out = write_parquet.lambda_handler(parquet_event(load_event, key, body), lambda_context)
    # Then every row is published, and the two are counted in the result, the ledger and `status`
    assert out["rows"] == 12 and out["rows_outside_period"] == 2
    assert out["objects"][0]["rows_outside_period"] == 2
    assert published_table(aws.curated).num_rows == 12
    item = DynamoLedger(os.environ["LEDGER_TABLE"]).get("particle-demo", "2026-10")
    assert item is not None and item["rows_outside_period"] == 2
    (line,) = operate.status_lines([item])
    assert dict(zip(operate.STATUS_COLUMNS, line, strict=True))["outside period"] == "2"


def test_write_parquet_reads_a_field_over_one_mebibyte(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    # Given a report whose 3,000th row has a 2 MiB device name, among 5,000 rows
    name = "Tracker " + "x" * (2 << 20)
    lines = csv(5000).decode().splitlines(keepends=True)
    lines[3000] = lines[3000].replace('"Dev, 2999"', f'"{name}"')
    body = "".join(lines).encode()
    key = "raw/particle/particle-demo/2026-10/report-1.csv"
    put_raw(aws.raw, key, body)
    # When the handler runs / Then it publishes every row, the long name intact
    out = write_parquet.lambda_handler(parquet_event(load_event, key, body), lambda_context)
    assert out["rows"] == 5000
    assert published_table(aws.curated).column("device_name")[2999].as_py() == name


def test_write_parquet_header_only_report_publishes_an_empty_partition(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    body = HEADER.rstrip("\n").encode()
    key = "raw/particle/particle-demo/2026-10/report-1.csv"
    put_raw(aws.raw, key, body)
    out = write_parquet.lambda_handler(parquet_event(load_event, key, body), lambda_context)
    assert out["rows"] == 0 and published_table(aws.curated).num_rows == 0


def test_write_parquet_bad_value_names_object_row_and_column_and_publishes_nothing(aws, load_event, lambda_context):  # type: ignore[no-untyped-def]
    # Given 30,000 rows (many parser blocks) where data row 25,001 has a count that is not whole
    lines = csv(30_000).decode().splitlines(keepends=True)
    lines[25_001] = lines[25_001].replace(",25000,1.0,", ",2.5e4,1.0,")
    body = "".join(lines).encode()
    key = "raw/particle/particle-demo/2026-10/report-1.csv"
    put_raw(aws.raw, key, body)
    # When the handler runs / Then the error names the raw object, the data row, the column and the value
    with pytest.raises(InvalidReportError, match=(r"particle_data_operations from raw/particle/particle-demo/2026-10/"
                                                  r"report-1\.csv: data row 25001, column 'Data Operations': "
                                                  r"'2\.5e4' is not a whole number")):
        write_parquet.lambda_handler(parquet_event(load_event, key, body), lambda_context)
    # And nothing is published
    assert curated_keys(aws.curated) == []
