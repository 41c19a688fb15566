"""WriteParquet: stream raw files through pyarrow into one typed Parquet object per dataset and partition.

Design (pyarrow streaming with a writer thread: the fastest and flattest of pyarrow, pandas, polars and duckdb
measured on 1M-3M-row reports, ~245 MiB peak whatever the size): the CSV/JSON reader yields record batches, which
are gathered into row groups; a writer thread encodes row group k while the reader parses k+1.
Memory stays flat whatever the file size. The file is written to a staging key, its footer is read
back from the store and its row count compared with the rows read, and only then is it copied over the
partition's final key: Athena never sees half a partition, and a rerun replaces rather than adds.

Memory (measured with bench/): at most two row groups are alive, the one being encoded and the one
being gathered (the reader hands a full group over only when the writer takes it); every row group
has exactly ``row_group_size`` rows but the last; and the lineage columns are slices of one array per
raw object, not a copy per batch.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

# Arrow's allocator (mimalloc) reads its options once, when pyarrow loads, and this module is the first to
# load it in the WriteParquet Lambda. Committing arena memory lazily lets freed pages go back to the OS:
# at 1M rows it lowers the peak by ~20 MiB (HERE) to ~45 MiB (Particle), CPU time within +-2 %
# (bench/README.md). A value set in the function's environment wins; where pyarrow is already loaded
# (tests, local runs) this does nothing.
os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")

import pyarrow as pa
import pyarrow.parquet as pq

from report_exporter.datasets.base import Dataset, ReadContext, constant
from report_exporter.datasets.registry import dataset
from report_exporter.errors import InvalidReportError
from report_exporter.models.payloads import CuratedObject, CuratedReport, ParquetInput, RawObject
from report_exporter.observability import logger
from report_exporter.ports import CuratedStore, CuratedUpload, Ledger, RawStore

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
# duckdb's default level: 2-7 % smaller files than pyarrow's default (1) on both vendors' reports, for a few %
# of the writer thread's CPU (bench/README.md); levels above 3 buy less than 2 % more. Athena reads zstd.
ZSTD_LEVEL = 3
_FOOTER = 8
# A page holds a whole column chunk (up to this size): zstd compresses each page on its own, and a row group's
# values repeat across days (Particle's device ids, one row per device and day), which 20,000-row pages hide
# from it (bench/README.md, "Parquet bytes"). Pages are encoded one column at a time, so this bounds the
# extra memory.
_PAGE_BYTES = 8 << 20
# Rows encoded between two returns of freed memory to the OS (every 4th group of 65,536 rows).
_RELEASE_ROWS = 262_144


class _RowGroupWriter:
    """Gathers batches into row groups of exactly ``row_group_size`` rows and encodes them on a second thread.

    The hand-over is a rendezvous: a full group waits until the writer thread takes it, so at most two
    groups are in memory (one encoding, one gathering) while parsing and encoding still overlap.
    """

    def __init__(self, data: Dataset, sink: Any) -> None:
        self._data = data
        self._writer = pq.ParquetWriter(
            sink,
            data.schema,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=list(data.dictionary_columns) if data.dictionary_columns is not None else True,
            column_encoding=dict(data.column_encoding) or None,
            max_rows_per_page=data.row_group_size,
            data_page_size=_PAGE_BYTES,
        )
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        # The writer thread runs in a copy of the caller's context (log keys, the local runner's sandbox).
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._drain,), name=f"parquet-{data.name}",
                                        daemon=True)
        self._thread.start()
        self.rows = 0

    def _drain(self) -> None:
        pool, unreleased = pa.default_memory_pool(), 0
        while (table := self._queue.get()) is not None:
            self._queue.task_done()  # taken: the reading thread may gather the next group
            if self._error is None:
                try:
                    self._writer.write_table(table, row_group_size=self._data.row_group_size)
                except BaseException as exc:  # handed back to the reading thread
                    self._error = exc
            unreleased += table.num_rows
            del table  # not kept alive while waiting for the next group
            if unreleased >= _RELEASE_ROWS:
                # Hand the freed pages back to the OS now and then: a few % of CPU (the pages fault in
                # again) for a peak that stays flat with many groups (bench/README.md).
                pool.release_unused()
                unreleased = 0
        self._queue.task_done()

    def _put(self, table: pa.Table | None) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)
        self._queue.join()

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        size = self._data.row_group_size
        while self._pending_rows + batch.num_rows >= size:
            # Cut the group at exactly ``size`` rows (zero-copy slices); the rest starts the next group.
            take = size - self._pending_rows
            self._pending.append(batch.slice(0, take))
            batch = batch.slice(take)
            self._flush()
        if batch.num_rows:
            self._pending.append(batch)
            self._pending_rows += batch.num_rows

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self._data.schema)
            self._pending, self._pending_rows = [], 0
            self._put(table)

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error
        self._writer.close()

    def abandon(self) -> None:
        self._error = self._error or RuntimeError("abandoned")
        self._pending, self._pending_rows = [], 0
        self._queue.put(None)
        self._thread.join()
        # Close the Parquet writer now, before the caller aborts the upload: left open, pyarrow closes it
        # when it is garbage-collected, and its footer would then start a new upload nobody aborts.
        with contextlib.suppress(Exception):  # the run fails with the error that got us here
            self._writer.close()


class _Lineage:
    """The lineage columns of one raw object: one constant array per column, handed out as slices.

    A slice shares its parent's buffers, so a row group of a million rows holds one batch's worth of
    lineage values instead of a copy per batch (``source_key`` alone is ~55 bytes a row).
    """

    def __init__(self, data: Dataset, values: dict[str, Any]) -> None:
        self._fields = [f for f in data.schema if f.name in values]
        self._values = values
        self._arrays: list[pa.Array] = []
        self._length = -1  # nothing built yet: the first call builds, even for an empty batch

    def columns(self, length: int) -> list[pa.Array]:
        if length > self._length:
            self._length = max(length, 2 * self._length)
            self._arrays = [constant(self._values[f.name], f.type, self._length) for f in self._fields]
        return [array.slice(0, length) for array in self._arrays]


def _with_lineage(batch: pa.RecordBatch, data: Dataset, lineage: _Lineage) -> pa.RecordBatch:
    if batch.schema != data.reader_schema:
        raise InvalidReportError(
            f"{data.name}: reader produced {batch.schema.names}, expected {data.reader_schema.names}"
        )
    arrays = list(batch.columns[:-1])
    arrays += lineage.columns(batch.num_rows)
    arrays.append(batch.column(batch.num_columns - 1))
    return pa.RecordBatch.from_arrays(arrays, schema=data.schema)


def footer_rows(curated: CuratedStore, key: str) -> int:
    """Rows in a Parquet object according to its footer, read back from the store with two ranged GETs."""
    tail = curated.tail(key, _FOOTER)
    if len(tail) != _FOOTER or tail[4:] != b"PAR1":
        raise InvalidReportError(f"{key}: not a Parquet file (no PAR1 footer)")
    length = int.from_bytes(tail[:4], "little")
    footer = curated.tail(key, length + _FOOTER)
    metadata = pq.read_metadata(pa.BufferReader(b"PAR1" + footer))
    return int(metadata.num_rows)


def _context(raw: RawStore, obj: RawObject) -> ReadContext:
    """What ``obj`` answers, from the manifest beside it (never from today's config).

    Raises:
        InvalidReportError: no manifest, or one that describes another file than the run's record of it.
    """
    manifest = raw.manifest(obj.key)
    if (manifest.dataset, manifest.sha256, manifest.bytes) != (obj.dataset, obj.sha256, obj.bytes):
        raise InvalidReportError(
            f"{obj.key}: its manifest describes {manifest.dataset} ({manifest.bytes} bytes, sha256 "
            f"{manifest.sha256[:12]}...), the run recorded {obj.dataset} ({obj.bytes} bytes, sha256 "
            f"{obj.sha256[:12]}...)"
        )
    return ReadContext.from_manifest(manifest)


def _write_dataset(
    data: Dataset, objects: list[RawObject], event: ParquetInput, *, raw: RawStore, curated: CuratedStore,
    now: datetime,
) -> CuratedObject:
    plan = event.plan
    staging = curated.staging_key(data.name, plan.export.name, plan.period, plan.run_name)
    final = curated.partition_key(data.name, plan.export.name, plan.period)
    sink: CuratedUpload = curated.upload(staging, content_type=PARQUET_CONTENT_TYPE)
    writer = _RowGroupWriter(data, sink)
    outside = 0
    try:
        for obj in objects:
            context = _context(raw, obj)
            lineage = _Lineage(
                data,
                {
                    "vendor": plan.export.vendor_name.value,
                    "report_id": context.report_id,
                    "exported_at": now,
                    "source_key": obj.key,
                },
            )
            before = writer.rows
            body = raw.read(obj.key)
            batches = data.read(body, context)
            try:
                for batch in batches:
                    if data.outside_period is not None:
                        outside += data.outside_period(batch, plan.window)
                    writer.write(_with_lineage(batch, data, lineage))
            except InvalidReportError as exc:
                raise InvalidReportError(f"{data.name} from {obj.key}: {exc}") from None
            finally:
                # The reader first (a CSV reader stops its read-ahead thread), then the body it reads.
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
                body.close()
            read = writer.rows - before
            if obj.records is not None and read != obj.records:
                raise InvalidReportError(
                    f"{data.name} from {obj.key}: the vendor sent {obj.records} records but {read} rows were read"
                )
        writer.close()
        sink.commit()
    except BaseException:
        writer.abandon()
        sink.abort()
        raise
    written = footer_rows(curated, staging)
    if written != writer.rows:
        curated.delete(staging)
        raise InvalidReportError(
            f"{data.name} {plan.export.name} {plan.period}: {writer.rows} rows read but the Parquet file holds "
            f"{written}; nothing was published"
        )
    curated.publish(staging, final)
    if outside:
        # Kept (the vendor sent them for this report), but never silently: counted in the result and the ledger.
        logger.warning("rows dated outside the run's period", extra={
            "dataset": data.name, "key": final, "rows": written, "rows_outside_period": outside,
            "window_start": plan.window.start.isoformat(), "window_end": plan.window.end.isoformat()})
    return CuratedObject(dataset=data.name, table=data.name, key=final, rows=written, bytes=sink.size,
                         rows_outside_period=outside)


def write_parquet(
    event: ParquetInput, *, raw: RawStore, curated: CuratedStore, ledger: Ledger, now: datetime
) -> CuratedReport:
    """Convert every raw object of the run into its dataset's Parquet partition, once per vendor report.

    Each object is read as its manifest says (``models/manifest.py``): the request it answers, not the
    export as configured today.

    Args:
        event: The run plan, the job and the raw objects.
        raw: The raw store holding the raw objects (the raw bucket in Lambda).
        curated: The curated store of the Athena tables (the curated bucket in Lambda).
        ledger: The job ledger: a report published by another execution is reported, not written again.
        now: The export time written to ``exported_at``.

    Returns:
        One curated object per dataset, with its row count read back from the published file and the
        number of those rows dated outside the run's window (kept, counted, logged as a warning).

    Raises:
        InvalidReportError: a bad value or missing column (named), rows in != rows out, or a raw object
            without its manifest.
        ReportBusyError: another execution is publishing this report right now (retried: this run then
            reports its result, or takes over if that execution died).
    """
    plan, job = event.plan, event.job
    if not event.replay:
        done = ledger.begin_publish(plan, job=job.job, now=now)
        if done is not None:
            # Another execution published this very vendor report: publish once, report its result.
            return CuratedReport(objects=tuple(done), rows=sum(c.rows for c in done),
                                 rows_outside_period=sum(c.rows_outside_period for c in done), published=False)
    grouped: dict[str, list[RawObject]] = defaultdict(list)
    for obj in event.raw.objects:
        grouped[obj.dataset].append(obj)
    written = [
        _write_dataset(dataset(name), objects, event, raw=raw, curated=curated, now=now)
        for name, objects in grouped.items()
    ]
    if event.replay:
        ledger.record_replay(plan, written, now=now)
    else:
        ledger.published(plan, job=job.job, objects=written, now=now)
    return CuratedReport(objects=tuple(written), rows=sum(c.rows for c in written),
                         rows_outside_period=sum(c.rows_outside_period for c in written))
