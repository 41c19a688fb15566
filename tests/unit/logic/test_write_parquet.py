"""WriteParquet with in-memory ports: what is published where, what the ledger is told, and what fails.

The same step on S3 (moto), with its threads, multipart parts and bodies, is in
tests/integration/test_write_parquet.py; here every port is a fake of tests/fakes.py, so a case costs
milliseconds.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from report_exporter.errors import InvalidReportError
from report_exporter.logic.write_parquet import PARQUET_CONTENT_TYPE, footer_rows, write_parquet
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import (
    CuratedObject,
    CuratedReport,
    JobStatus,
    ParquetInput,
    RawObject,
    RawReport,
    ReportJob,
)
from report_exporter.vendors.particle import dataset as particle_dataset
from tests.fakes import MemoryCuratedStore, MemoryRawStore, RecordingLedger, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
EXPORTED = datetime(2026, 11, 3, 7, 30, tzinfo=UTC)
EXPORT = ParticleExport(name="particle-demo", secret_name="s")
PLAN = plan_for(EXPORT, "2026-10", now=NOW)
JOB = ReportJob(job="1001", report_id="1001", status=JobStatus.READY, requested_at=NOW)
NAME = particle_dataset.DATASET.name
FINAL = f"curated/{NAME}/export=particle-demo/period=2026-10/data.parquet"
STAGING = f"curated/_staging/{NAME}/particle-demo/2026-10/{PLAN.run_name}.parquet"
KEY = "raw/particle/particle-demo/2026-10/report-1001.csv"
HEADER = "Date,Device ID,Device Name,Product ID,Product Name,Connectivity,Data Operations,Firmware Version,Device OS\n"


def csv(rows: int, *, month: str = "2026-10") -> bytes:
    """``Data Operations`` is the row's number, so order and loss are visible."""
    return (HEADER + "".join(f"{month}-{i % 28 + 1:02d},dev{i % 7},Dev {i},{i % 3},P,cellular,{i},1.0,6.1\n"
                             for i in range(rows))).encode()


def stored(raw: MemoryRawStore, key: str, body: bytes, records: int | None) -> RawObject:
    obj = RawObject(dataset=NAME, key=key, bytes=len(body), sha256="0" * 64, content_type="text/csv",
                    records=records)
    return raw.put(PLAN, obj, body, report_id=JOB.report_id)


def write(objects: list[RawObject], raw: MemoryRawStore, curated: MemoryCuratedStore, ledger: RecordingLedger,
          *, replay: bool = False) -> CuratedReport:
    event = ParquetInput(plan=PLAN, job=JOB, raw=RawReport(objects=tuple(objects)), replay=replay)
    return write_parquet(event, raw=raw, curated=curated, ledger=ledger, now=EXPORTED)


def rows_of(curated: MemoryCuratedStore, key: str = FINAL) -> list[dict[str, object]]:
    return pq.read_table(io.BytesIO(curated.objects[key])).to_pylist()


def parquet_of(rows: int) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(rows))}), buffer)
    return buffer.getvalue()


def test_the_raw_report_is_published_as_the_partitions_one_parquet_object_and_recorded() -> None:
    # Given a raw report of three rows in the raw store
    raw, curated, ledger = MemoryRawStore(), MemoryCuratedStore(), RecordingLedger()
    obj = stored(raw, KEY, csv(3), records=3)
    # When written
    out = write([obj], raw, curated, ledger)
    # Then the partition's one object holds the rows, each with its lineage, and nothing else is left
    assert set(curated.objects) == {FINAL}
    assert curated.content_types[FINAL] == PARQUET_CONTENT_TYPE
    assert [(r["data_operations"], r["device_id"], r["vendor"], r["report_id"], r["source_key"], r["exported_at"])
            for r in rows_of(curated)] == [(i, f"dev{i}", "particle", "1001", KEY, EXPORTED) for i in range(3)]
    # And it was written under the run's staging key, then published over the partition's key
    assert [u.key for u in curated.uploads] == [STAGING] and curated.published == [(STAGING, FINAL)]
    # And the raw object was read once and its body closed
    assert raw.reads == [KEY] and raw.open_bodies == []
    # And the ledger took the publish lease, then recorded what was published
    expected = CuratedObject(dataset=NAME, table=NAME, key=FINAL, rows=3, bytes=len(curated.objects[FINAL]))
    assert out == CuratedReport(objects=(expected,), rows=3)
    assert ledger.calls == [
        ("begin_publish", {"job": "1001", "execution": PLAN.execution_id, "now": EXPORTED}),
        ("published", {"job": "1001", "rows": 3, "objects": [expected], "execution": PLAN.execution_id,
                       "now": EXPORTED}),
    ]


def test_several_raw_objects_of_a_dataset_make_one_partition_in_their_order() -> None:
    raw, curated = MemoryRawStore(), MemoryCuratedStore()
    first = stored(raw, KEY, csv(2), records=2)
    second = stored(raw, KEY.replace("1001", "1002"), csv(1), records=1)
    out = write([first, second], raw, curated, RecordingLedger())
    assert out.rows == 3
    assert [(r["data_operations"], r["source_key"]) for r in rows_of(curated)] == [
        (0, first.key), (1, first.key), (0, second.key)]


def test_a_report_another_execution_published_is_reported_not_written_again() -> None:
    # Given the ledger says another execution published this very report
    theirs = CuratedObject(dataset=NAME, table=NAME, key=FINAL, rows=7, bytes=100, rows_outside_period=2)
    raw, curated = MemoryRawStore(), MemoryCuratedStore()
    ledger = RecordingLedger(published_by_other=[theirs])
    # When written
    out = write([stored(raw, KEY, csv(3), records=3)], raw, curated, ledger)
    # Then its result is reported as not published by this run, and nothing was read or written
    assert out == CuratedReport(objects=(theirs,), rows=7, rows_outside_period=2, published=False)
    assert raw.reads == [] and curated.uploads == [] and curated.objects == {}
    assert ledger.names() == ["begin_publish"]


def test_a_replay_rewrites_the_partition_without_the_publish_lease_and_notes_it() -> None:
    raw, curated, ledger = MemoryRawStore(), MemoryCuratedStore(), RecordingLedger()
    out = write([stored(raw, KEY, csv(4), records=4)], raw, curated, ledger, replay=True)
    assert out.rows == 4 and len(rows_of(curated)) == 4
    assert ledger.names() == ["record_replay"]
    assert ledger.args("record_replay") == [{"rows": 4, "objects": list(out.objects),
                                             "execution": PLAN.execution_id, "now": EXPORTED}]


def test_rows_dated_outside_the_period_are_kept_and_counted() -> None:
    raw, curated = MemoryRawStore(), MemoryCuratedStore()
    body = csv(3) + csv(2, month="2026-09")[len(HEADER):]
    out = write([stored(raw, KEY, body, records=5)], raw, curated, RecordingLedger())
    assert (out.rows, out.rows_outside_period) == (5, 2)
    assert len(rows_of(curated)) == 5


def test_a_record_count_that_differs_from_the_rows_read_publishes_nothing() -> None:
    # Given the vendor said four records but the file holds three rows
    raw, curated, ledger = MemoryRawStore(), MemoryCuratedStore(), RecordingLedger()
    obj = stored(raw, KEY, csv(3), records=4)
    # When written / Then the run fails naming both counts, and nothing is published
    with pytest.raises(InvalidReportError, match=rf"^{NAME} from {KEY}: the vendor sent 4 records but 3 rows were "
                                                 r"read$"):
        write([obj], raw, curated, ledger)
    assert curated.objects == {} and curated.published == []
    # And the staged upload was dropped, the body closed, and the ledger not told it was published
    (upload,) = curated.uploads
    assert upload.aborted and not upload.committed
    assert raw.open_bodies == [] and ledger.names() == ["begin_publish"]


def test_a_bad_value_names_the_dataset_and_the_raw_object_and_publishes_nothing() -> None:
    raw, curated, ledger = MemoryRawStore(), MemoryCuratedStore(), RecordingLedger()
    body = csv(2).replace(b",cellular,1,", b",cellular,lots,")
    with pytest.raises(InvalidReportError, match=rf"^{NAME} from {KEY}: "):
        write([stored(raw, KEY, body, records=2)], raw, curated, ledger)
    assert curated.objects == {} and curated.uploads[0].aborted
    assert raw.open_bodies == [] and ledger.names() == ["begin_publish"]


def test_a_failed_upload_fails_the_run_and_stops_the_writer_thread() -> None:
    # Given a curated store whose commit of the staged object fails
    raw, ledger = MemoryRawStore(), RecordingLedger()
    curated = MemoryCuratedStore(fail_commit=ConnectionResetError("S3 upload failed"))
    before = set(threading.enumerate())
    # When written / Then the store's error is the run's, nothing is published, the upload is dropped
    with pytest.raises(ConnectionResetError, match=r"^S3 upload failed$"):
        write([stored(raw, KEY, csv(3), records=3)], raw, curated, ledger)
    assert curated.objects == {} and curated.uploads[0].aborted
    assert ledger.names() == ["begin_publish"]
    assert {t for t in threading.enumerate() if t.is_alive()} - before == set()


def test_a_staged_file_whose_footer_disagrees_with_the_rows_read_is_deleted_not_published() -> None:
    # Given a store that reads back a different Parquet file than the one written (two rows instead of three)
    raw, ledger = MemoryRawStore(), RecordingLedger()
    curated = MemoryCuratedStore(tamper=lambda _: parquet_of(2))
    # When written / Then the run fails naming both counts
    with pytest.raises(InvalidReportError, match=rf"^{NAME} particle-demo 2026-10: 3 rows read but the Parquet file "
                                                 r"holds 2; nothing was published$"):
        write([stored(raw, KEY, csv(3), records=3)], raw, curated, ledger)
    # And the staged object is deleted, the partition untouched, the ledger not told
    assert curated.deleted == [STAGING] and curated.objects == {} and curated.published == []
    assert ledger.names() == ["begin_publish"]


def test_the_footer_gives_the_row_count_and_anything_else_is_not_parquet() -> None:
    curated = MemoryCuratedStore(objects={"ok": parquet_of(1234), "bad": b"PAR1 not a footer"})
    assert footer_rows(curated, "ok") == 1234
    with pytest.raises(InvalidReportError, match=r"^bad: not a Parquet file \(no PAR1 footer\)$"):
        footer_rows(curated, "bad")
