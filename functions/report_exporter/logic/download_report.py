"""DownloadReport: stream the vendor's file(s) into raw S3 objects, with sha256 and size."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from report_exporter.adapters.base import RawSink, ReportAdapter
from report_exporter.aws.ledger import Ledger
from report_exporter.errors import VendorContractError
from report_exporter.models.payloads import DownloadInput, RawObject, RawReport, RunPlan


class RawStore(Protocol):
    """Where raw vendor files are kept: a sink per run whose ``objects`` are what was written."""

    def sink(self, plan: RunPlan) -> RecordingSink: ...


class RecordingSink(RawSink, Protocol):
    objects: list[RawObject]


def download_report(event: DownloadInput, *, adapter: ReportAdapter, raw: RawStore, ledger: Ledger,
                    now: datetime) -> RawReport:
    """Stream the ready report into the raw store at once (vendor links expire), once per vendor report.

    Args:
        event: The run plan and the READY job.
        adapter: The vendor adapter for the export.
        raw: The raw store (S3 in Lambda).
        ledger: The job ledger: another execution's kept raw file is reused, never downloaded twice.
        now: The current time.

    Returns:
        The raw objects, each with its key, size and sha256.

    Raises:
        ReportBusyError: another execution is downloading this report right now (retried, then reused).
    """
    job = event.job
    kept = ledger.begin_download(event.plan, job=job.job, now=now)
    if kept:
        # Another execution already kept this vendor report: raw objects are immutable, reuse them.
        return RawReport(objects=tuple(kept))
    sink = raw.sink(event.plan)
    adapter.download(event.plan, job.report_id, sink)
    if not sink.objects:
        raise VendorContractError(f"{event.plan.export.vendor_name.value} download produced no file")
    objects = ledger.downloaded(event.plan, job=job.job, objects=sink.objects, now=now)
    return RawReport(objects=tuple(objects))
