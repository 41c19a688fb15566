"""The ports of the logic steps: what a Step Functions state needs from the world, as protocols.

``logic/`` is written against these and nothing else: the job ledger, the raw store (the vendor's files as
they came), the curated store (the Parquet partitions Athena reads), the alert publisher and the clock. The
Lambdas get the AWS implementations (``aws/ledger.py``, ``aws/s3.py``, ``aws/notify.py``) from one
composition root (:mod:`report_exporter.runtime`), built from the function's environment; the tests give
in-memory ones (``tests/fakes.py``).

Kept free of boto3, pyarrow and httpx: every bundle carries it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any, Protocol

from report_exporter.clock import Clock
from report_exporter.models.manifest import RawManifest
from report_exporter.models.payloads import CuratedObject, RawObject, RunPlan

__all__ = [
    "Claim", "Clock", "CuratedStore", "CuratedUpload", "Ledger", "LedgerReader", "Notify", "RawSink", "RawStore",
    "RawWriter", "RecordCounter", "RecordingSink", "ResumableWriter", "ResumeStore", "RunStatus", "lease_expired",
]

Notify = Callable[[str, str], None]
"""(subject, message) -> None: publishes an alert (to the SNS topic in Lambda)."""


# The job ledger.
class RunStatus(StrEnum):
    """Where a month's run item is in its lifecycle (``aws/ledger.py`` draws the transitions)."""

    REQUESTING = "REQUESTING"
    PENDING = "PENDING"
    READY = "READY"
    DOWNLOADING = "DOWNLOADING"
    DOWNLOADED = "DOWNLOADED"
    PUBLISHING = "PUBLISHING"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Claim:
    """What RequestReport may do: request a new report, or adopt the open one."""

    adopt: bool
    job: str | None = None
    report_id: str | None = None


class Ledger(Protocol):
    """One item per (export, period) and one outstanding-request item per vendor account; every transition is a
    conditional write under a lease (see ``aws/ledger.py``)."""

    def claim(self, plan: RunPlan, *, now: datetime) -> Claim: ...
    def acquire_slot(self, plan: RunPlan, cap: int, *, now: datetime) -> None: ...
    def release_slot(self, account: str, execution: str) -> None: ...
    def requested(self, plan: RunPlan, *, job: str, report_id: str | None, ready: bool, now: datetime) -> None: ...
    def polled(self, plan: RunPlan, *, job: str, polls: int, ready: bool, now: datetime,
               link_expires_at: datetime | None = None) -> None: ...
    def begin_download(self, plan: RunPlan, *, job: str, now: datetime) -> list[RawObject] | None: ...
    def downloaded(self, plan: RunPlan, *, job: str, objects: list[RawObject], now: datetime) -> list[RawObject]: ...
    def download_cursor(self, plan: RunPlan, *, job: str) -> dict[str, Any] | None: ...
    def save_download_cursor(self, plan: RunPlan, *, job: str, cursor: dict[str, Any]) -> None: ...
    def clear_download_cursor(self, plan: RunPlan, *, job: str) -> None: ...
    def begin_publish(self, plan: RunPlan, *, job: str, now: datetime) -> list[CuratedObject] | None: ...
    def published(self, plan: RunPlan, *, job: str, objects: list[CuratedObject], now: datetime) -> None: ...
    def record_replay(self, plan: RunPlan, objects: list[CuratedObject], *, now: datetime) -> None: ...
    def failed(self, *, export: str, period: str, execution: str, error: str, message: str, now: datetime,
               only_if_owner: bool = False) -> bool: ...
    def ended(self, *, export: str, period: str, account: str | None, execution: str, now: datetime) -> None: ...
    def record_run(self, *, export: str, period: str, add: Mapping[str, int | Decimal], values: Mapping[str, Any],
                   ) -> bool: ...


class LedgerReader(Protocol):
    """The ledger read only (WatchRuns): a month's item as plain values, or None."""

    def get(self, export: str, period: str) -> dict[str, Any] | None: ...


def lease_expired(item: Mapping[str, Any], now: datetime) -> bool:
    """True when the item's lease holder is gone (its ``lease_expires``, epoch milliseconds, has passed)."""
    return bool(item.get("lease_owner")) and float(item.get("lease_expires", 0)) <= int(now.timestamp() * 1000)


# The raw store.
class ResumeStore(Protocol):
    """Where a resumable raw upload keeps its cursor between attempts (the job ledger, under the download lease).

    The cursor names the key, the multipart upload, the parts kept with their ETags, their byte count and the
    adapter's own cursor. ``save`` raises when this attempt no longer holds the download (``ReportBusyError``).
    """

    def load(self) -> dict[str, Any] | None: ...

    def save(self, cursor: dict[str, Any]) -> None: ...

    def clear(self) -> None: ...


class RawWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


class ResumableWriter(RawWriter, Protocol):
    """A raw object whose download may span several attempts of DownloadReport.

    The adapter calls :meth:`checkpoint` after each whole unit it wrote (a page, a chunk of a file) with a
    cursor saying where it would go on from there. When what was written has filled a part, the part is
    uploaded and the cursor kept with it (in the job ledger, under the download lease). If the attempt
    then fails on a transient error (or dies), the next attempt opens the same object with
    :attr:`resumed` set to the cursor of the last kept part and :meth:`tell` at its byte count, and
    carries on from there. What was written after that part is lost and fetched again.

    Cursors are small JSON objects: page numbers, relative next-page paths, byte counts, an ETag. Never a
    secret or a signed URL (ask the vendor for a fresh link on resume instead).
    """

    @property
    def resumed(self) -> Mapping[str, Any] | None:
        """The cursor an earlier attempt kept (None: this attempt starts from the first byte)."""
        ...

    def tell(self) -> int:
        """Bytes of the object so far: those an earlier attempt kept plus those written since."""
        ...

    def checkpoint(self, cursor: Mapping[str, Any] | None) -> None:
        """Everything written so far is covered by ``cursor`` (None: a part may end here, but the vendor
        cannot be resumed from this point, so nothing is kept across attempts)."""
        ...

    def restart(self) -> None:
        """Drop every byte written or kept: the vendor cannot continue where the object stops."""
        ...


class RecordCounter(Protocol):
    """Counts a raw file's records from its bytes (``csv_records.CsvRecordCounter``)."""

    def feed(self, data: bytes, /) -> None: ...

    def records(self) -> int: ...


class RawSink(Protocol):
    """Where an adapter streams the vendor's files; each ``open`` becomes one raw S3 object.

    ``name`` is the file name under the run's raw prefix (for example ``report-1234.csv``). A block that
    raises leaves nothing behind, except that :meth:`open_resumable` keeps what it committed when the
    error is transient, for the next attempt to resume. Each complete object gets a manifest beside it
    (``models/manifest.py``) saying what it answers: the run's request, plus ``params`` for what this one
    object answers within it when a reader needs that (Senet's details file: its application EUI).
    """

    def open(
        self, *, dataset: str, name: str, content_type: str, records: Callable[[], int | None] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AbstractContextManager[RawWriter]: ...

    def open_resumable(
        self, *, dataset: str, name: str, content_type: str, records: Callable[[], int | None] | None = None,
        recount: Callable[[], RecordCounter] | None = None, params: Mapping[str, str] | None = None,
    ) -> AbstractContextManager[ResumableWriter]:
        """Like :meth:`open`, for one object per download that may be resumed (see :class:`ResumableWriter`).

        A resumed object's sha256 (and, with ``recount``, its record count) is computed by reading the
        completed object back once: hash and counter states cannot be kept between attempts. Without
        ``recount``, ``records`` must count the whole object (carry the count in the cursor).
        """
        ...


class RecordingSink(RawSink, Protocol):
    """A run's raw sink; ``objects`` are the raw objects completed so far, in order."""

    objects: list[RawObject]


class RawStore(Protocol):
    """The vendor's files as they came: written once by DownloadReport, read by WriteParquet (the raw bucket)."""

    def sink(self, plan: RunPlan, *, resume: ResumeStore | None = None, report_id: str | None = None,
             job: str | None = None, now: datetime | None = None) -> RecordingSink:
        """A sink for the run's raw objects; a resumable object keeps its cursor in ``resume``; their manifests
        name ``report_id``, ``job`` and ``now`` (when the file was downloaded)."""
        ...

    def read(self, key: str) -> IO[bytes]:
        """A streaming, read-once body of a raw object (the caller closes it)."""
        ...

    def manifest(self, key: str) -> RawManifest:
        """The manifest beside the raw object ``key`` (``models/manifest.py``).

        Raises:
            InvalidReportError: there is none, or it describes another object.
        """
        ...


# The curated store.
class CuratedUpload(Protocol):
    """A write-only file object (pyarrow's sink) that becomes one curated object at :meth:`commit`.

    Nothing is visible before ``commit``; ``abort`` drops what was written.
    """

    key: str

    @property
    def closed(self) -> bool: ...

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, data: bytes | bytearray | memoryview) -> int: ...
    def writable(self) -> bool: ...
    def readable(self) -> bool: ...
    def seekable(self) -> bool: ...
    def tell(self) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class CuratedStore(Protocol):
    """The Parquet partitions Athena reads (the curated bucket): each written to a staging key of its run,
    checked, then published over the partition's one key, so a rerun replaces and a reader never sees half."""

    def partition_key(self, dataset: str, export: str, period: str) -> str:
        """The one object of a partition."""
        ...

    def staging_key(self, dataset: str, export: str, period: str, run: str) -> str:
        """Where a run writes a partition before publishing it (outside every table's location)."""
        ...

    def upload(self, key: str, *, content_type: str) -> CuratedUpload:
        """A new object at ``key``, streamed in constant memory."""
        ...

    def tail(self, key: str, length: int) -> bytes:
        """The last ``length`` bytes of an object (its Parquet footer)."""
        ...

    def publish(self, staged: str, final: str) -> None:
        """Replace ``final`` by the staged object at once, then remove the staged copy."""
        ...

    def delete(self, key: str) -> None: ...
