"""The vendor adapter contract: request a report, poll it, download it into raw sinks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from report_exporter.clock import Clock
from report_exporter.errors import ExporterError, SecretError
from report_exporter.models.exports import ExportBase
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.vendors.base import Cadence

Credentials = Mapping[str, SecretStr]


@dataclass(frozen=True)
class RequestResult:
    """What asking for a report gave: an id to poll, or READY for synchronous vendors."""

    status: JobStatus
    report_id: str | None = None


@dataclass(frozen=True)
class PollResult:
    """One status check. ``retry_after`` is the vendor's hint (seconds) to wait before the next one;
    ``expires_at`` when a ready report's download link expires, for vendors that say."""

    status: JobStatus
    retry_after: float | None = None
    detail: str = ""
    expires_at: datetime | None = None


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


class ReportAdapter(Protocol):
    """One vendor behind the three verbs of the state machine."""

    cadence: Cadence
    """When to poll a pending report (see ``Cadence``)."""

    timeout_error: type[ExporterError]
    """Raised by CheckReport when the report is still pending at the export's deadline."""

    def request(self, plan: RunPlan) -> RequestResult:
        """Ask the vendor for the run's report (async vendors) or confirm it can be read (sync)."""
        ...

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        """Ask the vendor how the report is doing. Terminal failures raise."""
        ...

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Stream the report (or every page) into ``sink``; never hold the whole file in memory."""
        ...


class AdapterFactory(Protocol):
    """Builds an export's adapter. The clock is the process's (virtual in the demo and the tests): token
    expiry, settle-time checks and in-Lambda waits must agree with the time the rest of the run sees."""

    def __call__(
        self, export: ExportBase, client: httpx.Client, credentials: Credentials, clock: Clock
    ) -> ReportAdapter: ...


def secret_field(credentials: Credentials, field: str, export: ExportBase) -> SecretStr:
    """One required field of the export's secret.

    Raises:
        SecretError: naming the export, the secret and the missing field (never a value).
    """
    value = credentials.get(field)
    if value is None or not value.get_secret_value():
        raise SecretError(f"export {export.name!r}: secret {export.secret_name!r} has no {field!r}")
    return value
