"""The vendor adapter contract: request a report, poll it, download it into raw sinks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
from pydantic import SecretStr

from report_exporter.clock import Clock
from report_exporter.errors import ExporterError, SecretError
from report_exporter.models.exports import ExportBase
from report_exporter.models.payloads import JobStatus, RunPlan

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


class RawSink(Protocol):
    """Where an adapter streams the vendor's files; each ``open`` becomes one raw S3 object.

    ``name`` is the file name under the run's raw prefix (for example ``report-1234.csv``). A block that
    raises leaves nothing behind.
    """

    def open(
        self, *, dataset: str, name: str, content_type: str, records: Callable[[], int | None] | None = None
    ) -> AbstractContextManager[RawWriter]: ...


class ReportAdapter(Protocol):
    """One vendor behind the three verbs of the state machine."""

    cadence: tuple[int, ...]
    """Seconds to wait before poll 1, 2, 3, ...; the last value repeats."""

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


def next_wait(cadence: tuple[int, ...], polls: int) -> int:
    """The wait before poll ``polls + 1`` (``polls`` already done): the cadence, then its last value."""
    return cadence[min(polls, len(cadence) - 1)]

