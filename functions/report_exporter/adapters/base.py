"""The vendor adapter contract: request a report, poll it, download it into raw sinks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
from pydantic import SecretStr

from report_exporter.clock import Clock
from report_exporter.errors import ExporterError, SecretError
from report_exporter.models.exports import ExportBase
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.ports import RawSink, RawWriter, RecordCounter, ResumableWriter
from report_exporter.vendors.base import Cadence

Credentials = Mapping[str, SecretStr]
# The raw sink is DownloadReport's port (ports.py): adapters write the vendor's files into it.
__all__ = ["AdapterFactory", "Credentials", "PollResult", "RawSink", "RawWriter", "RecordCounter", "ReportAdapter",
           "RequestResult", "ResumableWriter", "secret_field"]


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
