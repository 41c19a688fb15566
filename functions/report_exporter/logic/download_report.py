"""DownloadReport: stream the vendor's file(s) into raw S3 objects, with sha256 and size."""

from __future__ import annotations

from datetime import datetime

from report_exporter.adapters.base import ReportAdapter
from report_exporter.aws.ledger import Ledger, NullLedger
from report_exporter.aws.s3 import S3RawSink
from report_exporter.errors import VendorContractError
from report_exporter.models.payloads import DownloadInput, RawReport

NULL_LEDGER = NullLedger()


def download_report(
    event: DownloadInput, *, adapter: ReportAdapter, raw_bucket: str, now: datetime, ledger: Ledger = NULL_LEDGER
) -> RawReport:
    """Stream the ready report into the raw bucket at once (vendor links expire).

    Args:
        event: The run plan and the READY job.
        adapter: The vendor adapter for the export.
        raw_bucket: The bucket that keeps raw vendor files.

    Returns:
        The raw objects written, each with its key, size and sha256.
    """
    report_id = event.job.report_id
    if report_id is not None:
        kept = ledger.begin_download(event.plan, report_id, now=now)
        if kept:
            # Another execution already kept this vendor report: raw objects are immutable, reuse them.
            return RawReport(objects=tuple(kept))
    sink = S3RawSink(raw_bucket, event.plan)
    adapter.download(event.plan, report_id, sink)
    if not sink.objects:
        raise VendorContractError(f"{event.plan.export.vendor_name.value} download produced no file")
    ledger.downloaded(event.plan, report_id, sink.objects, now=now)
    return RawReport(objects=tuple(sink.objects))
