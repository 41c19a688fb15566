"""WriteParquet's logic on moto S3: row groups cut across many batches, counts checked per raw object,
lineage per object, encoding, and errors of the writer thread. What is asserted is the published file."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any, ClassVar

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from report_exporter.adapters.ndjson import envelope_line
from report_exporter.aws import s3
from report_exporter.aws.s3 import S3CuratedStore, S3RawStore
from report_exporter.datasets.base import ReadContext
from report_exporter.datasets.csvread import read_csv
from report_exporter.datasets.registry import DATASETS
from report_exporter.errors import InvalidReportError
from report_exporter.logic import write_parquet as write_logic
from report_exporter.logic.write_parquet import write_parquet
from report_exporter.models.exports import HereExport, ParticleExport, SenetExport
from report_exporter.models.payloads import (
    CuratedObject,
    JobStatus,
    ParquetInput,
    RawObject,
    RawReport,
    ReportJob,
    RunPlan,
)
from report_exporter.vendors.particle import dataset as particle_dataset
from tests.conftest import FIXTURES
from tests.fakes import RecordingLedger, plan_for
from tests.integration.conftest import Buckets, keep_manifest

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
EXPORTED = datetime(2026, 11, 3, 7, 30, tzinfo=UTC)
EXPORT = ParticleExport(name="particle-demo", secret_name="s")
PLAN = plan_for(EXPORT, "2026-10", now=NOW)
JOB = ReportJob(job="1001", report_id="1001", status=JobStatus.READY, requested_at=NOW)
NAME = particle_dataset.DATASET.name
FINAL = f"curated/{NAME}/export=particle-demo/period=2026-10/data.parquet"
HEADER = "Date,Device ID,Device Name,Product ID,Product Name,Connectivity,Data Operations,Firmware Version,Device OS\n"


def csv(first: int, rows: int) -> bytes:
    """Rows numbered from ``first``: ``Data Operations`` is the row's number, so order and loss are visible."""
    lines = [f"2026-10-{i % 28 + 1:02d},dev{i % 7},Dev {i},{i % 3},P,cellular,{i},1.0,6.1\n"
             for i in range(first, first + rows)]
    return (HEADER + "".join(lines)).encode()


def sliced(sizes: list[int]) -> Any:
    """Particle's reader in 1 KiB blocks, its batches re-cut to ``sizes`` rows (cycled): many batches per row
    group, and reading threads still at work while the first groups are written."""
    layout = dataclasses.replace(particle_dataset.LAYOUT, block_size=1024)

    def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
        cycle = 0
        constants = {"report_type": "devices", "date_period_start": context.window.first_day,
                     "date_period_end": context.window.last_day}
        for batch in read_csv(source, layout, particle_dataset.COLUMNS, constants=constants):
            start = 0
            while start < batch.num_rows:
                size = sizes[cycle % len(sizes)]
                cycle += 1
                yield batch.slice(start, size)
                start += size

    return read


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Particle's dataset with 100-row groups, fed in batches of 37, 5, 1 and 64 rows."""
    monkeypatch.setitem(DATASETS, NAME, dataclasses.replace(particle_dataset.DATASET, row_group_size=100,
                                                            read=sliced([37, 5, 1, 64])))


def raw(bucket: str, name: str, body: bytes, records: int | None) -> RawObject:
    key = f"raw/particle/particle-demo/2026-10/{name}"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    obj = RawObject(dataset=NAME, key=key, bytes=len(body), sha256="0" * 64, content_type="text/csv",
                    records=records)
    keep_manifest(bucket, PLAN, obj, report_id=JOB.report_id)
    return obj


def run(aws: Buckets, objects: list[RawObject], ledger: RecordingLedger | None = None, *,
        replay: bool = False) -> Any:
    event = ParquetInput(plan=PLAN, job=JOB, raw=RawReport(objects=tuple(objects)), replay=replay)
    return write_parquet(event, raw=S3RawStore(aws.raw), curated=S3CuratedStore(aws.curated),
                         ledger=ledger or RecordingLedger(), now=EXPORTED)


def published(aws: Buckets) -> pq.ParquetFile:
    body = boto3.client("s3").get_object(Bucket=aws.curated, Key=FINAL)["Body"].read()
    return pq.ParquetFile(io.BytesIO(body))


def curated_keys(aws: Buckets) -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws.curated).get("Contents", [])]


def test_row_groups_hold_exactly_the_datasets_size_across_many_small_batches(aws: Buckets, small_groups: None) -> None:
    # Given 1,050 rows read in batches of 37, 5, 1 and 64 rows, and 100-row groups
    obj = raw(aws.raw, "report-1001.csv", csv(0, 1050), records=1050)
    # When written
    out = run(aws, [obj])
    # Then every group has 100 rows but the last, and every row is there once, in order
    parquet = published(aws)
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [100] * 10 + [50]
    assert parquet.read(columns=["data_operations"]).column(0).to_pylist() == list(range(1050))
    assert (out.rows, out.objects[0].rows) == (1050, 1050)


def test_row_groups_of_a_file_that_fills_its_last_group_exactly(aws: Buckets, small_groups: None) -> None:
    obj = raw(aws.raw, "report-1001.csv", csv(0, 300), records=300)
    run(aws, [obj])
    parquet = published(aws)
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [100, 100, 100]


def test_rows_of_several_raw_objects_keep_their_own_lineage_and_counts(aws: Buckets, small_groups: None) -> None:
    # Given two raw files of one report, 130 and 75 rows, each with the record count the download saw
    first = raw(aws.raw, "report-1001-a.csv", csv(0, 130), records=130)
    second = raw(aws.raw, "report-1001-b.csv", csv(130, 75), records=75)
    # When written
    ledger = RecordingLedger()
    out = run(aws, [first, second], ledger)
    # Then one partition holds both, each row naming the raw object it came from, the vendor, report and time
    table = published(aws).read()
    assert table.column("data_operations").to_pylist() == list(range(205))
    assert table.column("source_key").to_pylist() == [first.key] * 130 + [second.key] * 75
    assert set(table.column("vendor").to_pylist()) == {"particle"}
    assert set(table.column("report_id").to_pylist()) == {"1001"}
    assert set(table.column("exported_at").to_pylist()) == {EXPORTED}
    # And the result and the ledger carry the rows read back from the published file
    assert out.objects == (CuratedObject(dataset=NAME, table=NAME, key=FINAL, rows=205, bytes=out.objects[0].bytes),)
    assert out.objects[0].bytes == boto3.client("s3").head_object(Bucket=aws.curated, Key=FINAL)["ContentLength"]
    assert ledger.args("published") == [{"job": "1001", "rows": 205, "objects": list(out.objects),
                                         "execution": PLAN.execution_id, "now": EXPORTED}]
    assert ledger.names() == ["begin_publish", "published"]


def test_a_raw_object_whose_count_disagrees_fails_even_when_the_total_agrees(aws: Buckets, small_groups: None) -> None:
    # Given two raw files whose counts are swapped (the total is right, each file's is not)
    first = raw(aws.raw, "report-1001-a.csv", csv(0, 130), records=75)
    second = raw(aws.raw, "report-1001-b.csv", csv(130, 75), records=130)
    # When written / Then the first object's mismatch is named and nothing is published
    with pytest.raises(InvalidReportError) as caught:
        run(aws, [first, second])
    assert str(caught.value) == (f"{NAME} from {first.key}: the vendor sent 75 records but 130 rows were read")
    assert curated_keys(aws) == []


def test_the_second_raw_objects_count_is_checked_on_its_own_rows(aws: Buckets, small_groups: None) -> None:
    first = raw(aws.raw, "report-1001-a.csv", csv(0, 130), records=130)
    second = raw(aws.raw, "report-1001-b.csv", csv(130, 75), records=76)
    with pytest.raises(InvalidReportError, match="the vendor sent 76 records but 75 rows were read"):
        run(aws, [first, second])
    assert curated_keys(aws) == []


def test_a_raw_object_without_a_count_is_not_checked(aws: Buckets, small_groups: None) -> None:
    obj = raw(aws.raw, "report-1001.csv", csv(0, 120), records=None)
    assert run(aws, [obj]).rows == 120


def test_a_replay_rebuilds_the_partition_without_asking_who_published(aws: Buckets) -> None:
    # Given the month was published before by another execution
    ledger = RecordingLedger(published_by_other=[CuratedObject(dataset=NAME, table=NAME, key=FINAL, rows=1,
                                                               bytes=1)])
    obj = raw(aws.raw, "report-1001.csv", csv(0, 12), records=12)
    # When replayed / Then the partition is rebuilt from the raw file and the ledger notes the new count
    out = run(aws, [obj], ledger, replay=True)
    assert (out.rows, out.published) == (12, True)
    assert published(aws).metadata.num_rows == 12
    assert ledger.calls == [("record_replay", {"rows": 12, "objects": list(out.objects),
                                               "execution": PLAN.execution_id, "now": EXPORTED})]


def test_a_report_another_execution_published_is_reported_not_written(aws: Buckets) -> None:
    done = [CuratedObject(dataset=NAME, table=NAME, key=FINAL, rows=40, bytes=900, rows_outside_period=3),
            CuratedObject(dataset="other", table="other", key="k", rows=2, bytes=10, rows_outside_period=1)]
    ledger = RecordingLedger(published_by_other=done)
    obj = raw(aws.raw, "report-1001.csv", csv(0, 12), records=12)
    out = run(aws, [obj], ledger)
    assert (out.objects, out.rows, out.rows_outside_period, out.published) == (tuple(done), 42, 4, False)
    assert curated_keys(aws) == [] and ledger.names() == ["begin_publish"]


def test_the_partition_is_zstd_compressed_with_each_columns_encoding(aws: Buckets) -> None:
    obj = raw(aws.raw, "report-1001.csv", csv(0, 500), records=500)
    run(aws, [obj])
    group = published(aws).metadata.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert {c.compression for c in columns.values()} == {"ZSTD"}
    assert columns["connectivity"].has_dictionary_page and columns["usage_date"].has_dictionary_page
    assert "DELTA_BINARY_PACKED" in columns["data_operations"].encodings
    assert "DELTA_BYTE_ARRAY" in columns["device_name"].encodings
    assert "DELTA_LENGTH_BYTE_ARRAY" in columns["device_id"].encodings
    assert not any(columns[name].has_dictionary_page for name in ("data_operations", "device_name", "device_id"))


def test_values_repeating_day_after_day_are_compressed_across_the_whole_row_group(aws: Buckets) -> None:
    """One page per column chunk: zstd sees yesterday's device ids again today. With pyarrow's 20,000-row
    pages (and dictionaries) the same rows take far more of the bytes that Athena scans."""
    ids = [f"{(n * 2654435761 * 40503) % 2**96:024x}" for n in range(24_000)]  # scattered 24-digit hex ids
    lines = [f"2026-10-{day:02d},{device},Tracker {n},10,P,cellular,{n % 97},6.1.0,6.1.0\n"
             for day in range(1, 4) for n, device in enumerate(ids)]
    body = (HEADER + "".join(lines)).encode()
    run(aws, [raw(aws.raw, "report-1001.csv", body, records=len(lines))])
    size = boto3.client("s3").head_object(Bucket=aws.curated, Key=FINAL)["ContentLength"]
    table = published(aws).read()
    assert table.num_rows == 72_000 and published(aws).metadata.num_row_groups == 1
    reference = io.BytesIO()
    pq.write_table(table, reference, compression="zstd", compression_level=write_logic.ZSTD_LEVEL)
    assert size < 0.5 * reference.tell()


def test_only_the_datasets_dictionary_columns_are_dictionary_encoded(aws: Buckets,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DATASETS, NAME, dataclasses.replace(particle_dataset.DATASET,
                                                            dictionary_columns=("product_name", "connectivity")))
    obj = raw(aws.raw, "report-1001.csv", csv(0, 500), records=500)
    run(aws, [obj])
    group = published(aws).metadata.row_group(0)
    encoded = {group.column(i).path_in_schema for i in range(group.num_columns) if group.column(i).has_dictionary_page}
    assert encoded == {"product_name", "connectivity"}


def test_a_dataset_that_names_no_dictionary_columns_has_a_dictionary_for_every_column(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DATASETS, NAME, dataclasses.replace(particle_dataset.DATASET, dictionary_columns=None,
                                                            column_encoding={}))
    run(aws, [raw(aws.raw, "report-1001.csv", csv(0, 500), records=500)])
    group = published(aws).metadata.row_group(0)
    columns = [group.column(i) for i in range(group.num_columns)]
    assert [c.path_in_schema for c in columns if not c.has_dictionary_page] == []


class FlakySink(s3.MultipartWriter):
    """The staging upload, losing one write (as when an S3 part upload fails); notes which thread wrote what."""

    fail_at: ClassVar[int | None] = None
    for_good: ClassVar[bool] = False
    threads: ClassVar[list[str]] = []
    part_size: ClassVar[int] = s3.PART_SIZE

    def __init__(self, bucket: str, key: str, *, content_type: str, part_size: int = s3.PART_SIZE) -> None:
        super().__init__(bucket, key, content_type=content_type, part_size=FlakySink.part_size)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        FlakySink.threads.append(threading.current_thread().name)
        written = len(FlakySink.threads) - 1
        if FlakySink.fail_at is not None and (written == FlakySink.fail_at or
                                              (FlakySink.for_good and written > FlakySink.fail_at)):
            raise ConnectionResetError("S3 upload of a part failed")
        return super().write(data)


@pytest.mark.parametrize("which", ["first", "last", "first, for good"])
def test_an_upload_error_on_the_writer_thread_fails_the_run_and_publishes_nothing(
        aws: Buckets, small_groups: None, monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    # Given a report of 50 row groups (past the first 64 KiB, read in 1 KiB blocks) whose encoded groups go to
    # S3 from the writer thread
    monkeypatch.setattr(s3, "MultipartWriter", FlakySink)
    obj = raw(aws.raw, "report-1001.csv", csv(0, 5000), records=5000)
    FlakySink.fail_at, FlakySink.for_good, FlakySink.threads, FlakySink.part_size = None, False, [], s3.PART_SIZE
    run(aws, [obj])
    boto3.client("s3").delete_object(Bucket=aws.curated, Key=FINAL)
    on_writer = [i for i, name in enumerate(FlakySink.threads) if name == f"parquet-{NAME}"]
    # And the upload (in 1 KiB parts) of the first group's, or of the last group's bytes fails, once or for good
    failing = on_writer[0] if which.startswith("first") else on_writer[-1]
    FlakySink.fail_at, FlakySink.threads = failing, []
    FlakySink.for_good, FlakySink.part_size = which.endswith("for good"), 1024
    ledger, before = RecordingLedger(), set(threading.enumerate())
    # When written / Then the upload's error is raised, nothing is published and the ledger is not told
    with pytest.raises(ConnectionResetError, match="S3 upload of a part failed"):
        run(aws, [obj], ledger)
    assert curated_keys(aws) == []
    assert ledger.names() == ["begin_publish"]
    # And the parts already uploaded are dropped, and the writer thread is gone
    assert boto3.client("s3").list_multipart_uploads(Bucket=aws.curated).get("Uploads", []) == []
    assert new_threads(before) == set()


@pytest.mark.parametrize("body", [b"", b"PAR1", b"not a parquet file at all", b"PAR1" + b"x" * 100 + b"PAR2"])
def test_reading_back_an_object_that_is_not_parquet_says_so(aws: Buckets, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=aws.curated, Key="k", Body=body)
    with pytest.raises(InvalidReportError, match=r"^k: not a Parquet file \(no PAR1 footer\)$"):
        write_logic.footer_rows(S3CuratedStore(aws.curated), "k")


def test_reading_back_counts_the_rows_from_the_footer_alone(aws: Buckets) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(1234))}), buffer, row_group_size=500)
    boto3.client("s3").put_object(Bucket=aws.curated, Key="k", Body=buffer.getvalue())
    assert write_logic.footer_rows(S3CuratedStore(aws.curated), "k") == 1234


def test_a_report_of_one_row_is_published_with_its_lineage(aws: Buckets) -> None:
    obj = raw(aws.raw, "report-1001.csv", csv(7, 1), records=1)
    assert run(aws, [obj]).rows == 1
    (row,) = published(aws).read().to_pylist()
    assert (row["data_operations"], row["source_key"], row["vendor"]) == (7, obj.key, "particle")


def test_the_partition_is_published_as_a_parquet_object(aws: Buckets) -> None:
    run(aws, [raw(aws.raw, "report-1001.csv", csv(0, 3), records=3)])
    head = boto3.client("s3").head_object(Bucket=aws.curated, Key=FINAL)
    assert head["ContentType"] == "application/vnd.apache.parquet"


class Records(logging.Handler):
    """Keeps what the exporter's logger emits (on the logger itself: other tests may stop propagation)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    handler = Records()
    exporter = logging.getLogger("report-exporter")
    level = exporter.level
    exporter.addHandler(handler)
    exporter.setLevel(logging.INFO)  # as in Lambda (the local CLI quiets it for the whole process)
    yield handler.records
    exporter.removeHandler(handler)
    exporter.setLevel(level)


def test_rows_outside_the_period_are_logged_as_a_warning_with_the_window(
        aws: Buckets, logged: list[logging.LogRecord]) -> None:
    body = csv(0, 3) + b"2026-11-01,late,Late,1,P,cellular,9,1.0,6.1\n2019-01-01,old,Old,1,P,cellular,9,1.0,6.1\n"
    out = run(aws, [raw(aws.raw, "report-1001.csv", body, records=5)])
    assert (out.rows, out.rows_outside_period) == (5, 2)
    (record,) = [r for r in logged if r.getMessage() == "rows dated outside the run's period"]
    assert record.levelname == "WARNING"
    assert {k: getattr(record, k) for k in ("dataset", "key", "rows", "rows_outside_period", "window_start",
                                            "window_end")} == {
        "dataset": NAME, "key": FINAL, "rows": 5, "rows_outside_period": 2,
        "window_start": "2026-10-01T00:00:00+00:00", "window_end": "2026-11-01T00:00:00+00:00"}


def test_a_month_without_rows_outside_its_period_logs_no_warning(aws: Buckets,
                                                                  logged: list[logging.LogRecord]) -> None:
    run(aws, [raw(aws.raw, "report-1001.csv", csv(0, 3), records=3)])
    assert not [r for r in logged if r.levelno >= logging.WARNING]


def test_a_reader_that_yields_other_columns_than_its_dataset_is_refused(aws: Buckets,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"usage_date": pa.array([None], pa.date32())})

    monkeypatch.setitem(DATASETS, NAME, dataclasses.replace(particle_dataset.DATASET, read=wrong))
    with pytest.raises(InvalidReportError) as caught:
        run(aws, [raw(aws.raw, "report-1001.csv", csv(0, 1), records=None)])
    assert str(caught.value).startswith(f"{NAME} from raw/particle/particle-demo/2026-10/report-1001.csv: {NAME}: "
                                        "reader produced ['usage_date'], expected ['usage_date', 'device_id',")
    assert curated_keys(aws) == []


def new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    return set(threading.enumerate()) - before


class Body:
    """An S3 body that notes whether it was closed."""

    def __init__(self, body: Any) -> None:
        self._body, self.closed = body, False

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._body.read(size)
        return data

    def close(self) -> None:
        self.closed = True
        self._body.close()


def track_bodies(monkeypatch: pytest.MonkeyPatch) -> list[Body]:
    opened: list[Body] = []
    real = s3.open_object

    def tracked(bucket: str, key: str) -> Body:
        opened.append(Body(real(bucket, key)))
        return opened[-1]

    monkeypatch.setattr(s3, "open_object", tracked)
    return opened


def test_a_bad_value_stops_every_reading_and_writing_thread_and_closes_the_raw_body(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a raw file with a bad value in its last row
    opened, before = track_bodies(monkeypatch), set(threading.enumerate())
    body = csv(0, 3000) + b"2026-10-01,d,D,1,P,cellular,many,1.0,6.1\n"
    obj = raw(aws.raw, "report-1001.csv", body, records=3001)
    # When written / Then the error is raised with no thread left behind and the body closed
    with pytest.raises(InvalidReportError, match="'many' is not a whole number"):
        run(aws, [obj])
    assert new_threads(before) == set()
    assert [b.closed for b in opened] == [True]


def test_a_published_run_leaves_no_thread_and_no_open_body(aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    opened, before = track_bodies(monkeypatch), set(threading.enumerate())
    run(aws, [raw(aws.raw, "report-1001.csv", csv(0, 50), records=50),
              raw(aws.raw, "report-1001-b.csv", csv(50, 5), records=5)])
    assert new_threads(before) == set() and [b.closed for b in opened] == [True, True]


def test_memory_stays_at_a_few_row_groups_however_long_the_report(aws: Buckets,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a reader handing over 60 batches of 4,000 rows, each with fresh buffers, into groups of 16,000 rows
    rows = 4000
    (template,) = particle_dataset.read(io.BytesIO(csv(0, rows)), ReadContext.for_plan(PLAN, report_id="1001",
                                                                             source_key="k"))
    ops, names = template.schema.get_field_index("data_operations"), template.schema.get_field_index("device_name")
    allocated: list[int] = []

    def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
        for k in range(60):
            columns = list(template.columns)
            columns[ops] = pc.add(columns[ops], k * rows)
            columns[names] = pc.binary_join_element_wise(columns[names], f"-{k:030d}", "")
            allocated.append(pa.total_allocated_bytes())
            yield pa.RecordBatch.from_arrays(columns, schema=template.schema)

    monkeypatch.setitem(DATASETS, NAME, dataclasses.replace(particle_dataset.DATASET, row_group_size=4 * rows,
                                                            read=read))
    # When written
    out = run(aws, [raw(aws.raw, "report-1001.csv", b"", records=60 * rows)])
    # Then every row is there, in 15 groups, while Arrow never held more than a few groups (~0.7 MB each) at once
    parquet = published(aws)
    assert out.rows == 60 * rows and parquet.num_row_groups == 15
    assert parquet.read(columns=["data_operations"]).column(0).to_pylist()[::rows] == list(range(0, 60 * rows, rows))
    assert max(allocated) - min(allocated) < 6 << 20


def test_a_run_with_two_datasets_publishes_one_partition_each_reading_every_file_under_its_own_key(
        aws: Buckets) -> None:
    # Given a Senet run: one summary of two Applications, and one details file per Application
    export = SenetExport(name="senet-fleet", secret_name="s", application_euis=("00250C0000010001",
                                                                               "00250C0000010002"))
    plan = plan_for(export, "2026-10", now=NOW)
    summary = b"".join(envelope_line({"eui": eui, "month": 10, "year": 2026}, json.dumps({"numberOfDevices": n})
                                     .encode()) for eui, n in (("00250C0000010001", 2), ("00250C0000010002", 1)))
    objects = [raw_object(aws.raw, "raw/senet/senet-fleet/2026-10/run-summary.jsonl", "senet_application_month",
                          summary, 2, plan)]
    for eui, devices in (("00250C0000010001", ["a1", "a2"]), ("00250C0000010002", ["b1"])):
        body = ("dev_eui\n" + "".join(f"{d}\n" for d in devices)).encode()
        objects.append(raw_object(aws.raw, f"raw/senet/senet-fleet/2026-10/run-details-{eui}.csv",
                                  "senet_device_month", body, len(devices), plan, {"application_eui": eui}))
    event = ParquetInput(plan=plan, job=ReportJob(job="availability", report_id="availability",
                                                  status=JobStatus.READY, requested_at=NOW),
                         raw=RawReport(objects=tuple(objects)))
    # When written
    out = write_parquet(event, raw=S3RawStore(aws.raw), curated=S3CuratedStore(aws.curated), ledger=RecordingLedger(),
                        now=EXPORTED)
    # Then each dataset has its partition, and each device row names the Application its manifest names
    assert [(o.dataset, o.rows) for o in out.objects] == [("senet_application_month", 2), ("senet_device_month", 3)]
    assert out.rows == 5
    devices = pq.read_table(io.BytesIO(boto3.client("s3").get_object(
        Bucket=aws.curated, Key=out.objects[1].key)["Body"].read())).to_pylist()
    assert [(r["dev_eui"], r["application_eui"], r["source_key"]) for r in devices] == [
        ("a1", "00250C0000010001", objects[1].key), ("a2", "00250C0000010001", objects[1].key),
        ("b1", "00250C0000010002", objects[2].key)]


def raw_object(bucket: str, key: str, dataset: str, body: bytes, records: int | None, plan: RunPlan,
               params: dict[str, str] | None = None) -> RawObject:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    obj = RawObject(dataset=dataset, key=key, bytes=len(body), sha256="0" * 64, content_type="text/csv",
                    records=records)
    keep_manifest(bucket, plan, obj, params=params)
    return obj


def test_rows_outside_the_period_are_counted_in_every_batch(aws: Buckets, small_groups: None) -> None:
    # Given rows dated outside October spread over many small batches
    lines = csv(0, 400).decode().splitlines(keepends=True)
    for i in (1, 50, 120, 399):
        lines[i] = lines[i].replace("2026-10-", "2026-09-", 1)
    out = run(aws, [raw(aws.raw, "report-1001.csv", "".join(lines).encode(), records=400)])
    assert (out.rows, out.rows_outside_period) == (400, 4)


def test_a_reader_may_hand_over_an_empty_batch_first(aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
        for batch in particle_dataset.read(source, context):
            yield batch.slice(0, 0)
            yield batch

    monkeypatch.setitem(DATASETS, NAME, dataclasses.replace(particle_dataset.DATASET, read=read))
    out = run(aws, [raw(aws.raw, "report-1001.csv", csv(0, 5), records=5)])
    assert out.rows == 5 and published(aws).read().column("source_key").to_pylist() == [
        "raw/particle/particle-demo/2026-10/report-1001.csv"] * 5


def test_each_run_writes_under_its_own_staging_key_before_publishing(aws: Buckets,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "MultipartWriter", FlakySink)
    FlakySink.fail_at, FlakySink.for_good, FlakySink.threads, FlakySink.part_size = None, False, [], s3.PART_SIZE
    keys: list[str] = []
    real = s3.publish
    monkeypatch.setattr(s3, "publish", lambda bucket, source, final: keys.append(source) or real(
        bucket, source, final))
    run(aws, [raw(aws.raw, "report-1001.csv", csv(0, 5), records=5)])
    assert keys == [f"curated/_staging/{NAME}/particle-demo/2026-10/{PLAN.run_name}.parquet"]
    assert curated_keys(aws) == [FINAL]


def test_each_raw_object_is_read_as_its_manifest_says_not_as_the_export_is_configured_now(aws: Buckets) -> None:
    # Given a HERE report downloaded with detail level "day" and charge type "billable"
    asked = HereExport(name="here-main", secret_name="s", realm="org123456789", detail_level="day",
                       charge_type="billable")
    body = gzip.compress((FIXTURES / "vendors" / "here" / "report_day.csv").read_bytes())
    key = "raw/here/here-main/2026-10/report-R1.csv.gz"
    obj = raw_object(aws.raw, key, "here_usage", body, None, plan_for(asked, "2026-10", now=NOW))
    # And an export since reconfigured to monthly, all charges
    today = asked.replace(detail_level="month", charge_type=None)
    event = ParquetInput(plan=plan_for(today, "2026-10", now=NOW), job=JOB, raw=RawReport(objects=(obj,)))
    # When written
    out = write_parquet(event, raw=S3RawStore(aws.raw), curated=S3CuratedStore(aws.curated), ledger=RecordingLedger(),
                        now=EXPORTED)
    # Then the rows say what was asked when the file was downloaded
    table = pq.read_table(io.BytesIO(boto3.client("s3").get_object(
        Bucket=aws.curated, Key=out.objects[0].key)["Body"].read()))
    assert table.num_rows > 0
    assert set(table.column("detail_level").to_pylist()) == {"day"}
    assert set(table.column("charge_type").to_pylist()) == {"billable"}


def test_a_raw_object_without_its_manifest_is_refused_and_nothing_is_published(aws: Buckets) -> None:
    # Given a raw file with no manifest beside it (an upload that never completed, or a file put by hand)
    key = "raw/particle/particle-demo/2026-10/report-1001.csv"
    boto3.client("s3").put_object(Bucket=aws.raw, Key=key, Body=csv(0, 3))
    obj = RawObject(dataset=NAME, key=key, bytes=len(csv(0, 3)), sha256="0" * 64, content_type="text/csv", records=3)
    # When written / Then the error names the file and nothing is published
    with pytest.raises(InvalidReportError, match=rf"^{key}: no manifest beside it"):
        run(aws, [obj])
    assert curated_keys(aws) == []


def test_a_manifest_describing_another_file_than_the_run_recorded_is_refused(aws: Buckets) -> None:
    # Given a raw file whose manifest was written for other bytes than the run recorded
    obj = raw(aws.raw, "report-1001.csv", csv(0, 3), records=3)
    recorded = obj.replace(sha256="1" * 64)
    # When written / Then it is refused, naming both, and nothing is published
    with pytest.raises(InvalidReportError, match=r"its manifest describes .* sha256 000000000000.*the run recorded"):
        run(aws, [recorded])
    assert curated_keys(aws) == []
