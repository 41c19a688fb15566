"""DownloadReport: stream the vendor's file(s) into the raw store, with sha256 and size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from report_exporter.adapters.base import ReportAdapter
from report_exporter.errors import VendorContractError
from report_exporter.models.payloads import DownloadInput, RawReport, RunPlan
from report_exporter.ports import Ledger, RawStore


@dataclass(frozen=True)
class LedgerResume:
    """The download's resume cursor, kept on the ledger item under this execution's download lease."""

    ledger: Ledger
    plan: RunPlan
    job: str

    def load(self) -> dict[str, Any] | None:
        return self.ledger.download_cursor(self.plan, job=self.job)

    def save(self, cursor: dict[str, Any]) -> None:
        self.ledger.save_download_cursor(self.plan, job=self.job, cursor=cursor)

    def clear(self) -> None:
        self.ledger.clear_download_cursor(self.plan, job=self.job)


def download_report(event: DownloadInput, *, adapter: ReportAdapter, raw: RawStore, ledger: Ledger,
                    now: datetime) -> RawReport:
    """Stream the ready report into the raw store at once (vendor links expire), once per vendor report.

    An attempt that follows a failed one (a Step Functions retry, or an execution taking over an expired
    download lease) resumes the download from the cursor the ledger keeps (see ``RawSink.open_resumable``):
    the parts already uploaded stay, and only what comes after them is fetched again.

    Args:
        event: The run plan and the READY job.
        adapter: The vendor adapter for the export.
        raw: The raw store (the raw bucket in Lambda).
        ledger: The job ledger: another execution's kept raw file is reused, never downloaded twice.
        now: The current time.

    Returns:
        The raw objects, each with its key, size and sha256; each has its manifest beside it in the store.

    Raises:
        ReportBusyError: another execution is downloading this report right now (retried, then reused).
    """
    job = event.job
    kept = ledger.begin_download(event.plan, job=job.job, now=now)
    if kept:
        # Another execution already kept this vendor report: raw objects are immutable, reuse them.
        return RawReport(objects=tuple(kept))
    sink = raw.sink(event.plan, resume=LedgerResume(ledger, event.plan, job.job), report_id=job.report_id,
                    job=job.job, now=now)
    adapter.download(event.plan, job.report_id, sink)
    if not sink.objects:
        raise VendorContractError(f"{event.plan.export.vendor_name.value} download produced no file")
    objects = ledger.downloaded(event.plan, job=job.job, objects=sink.objects, now=now)
    return RawReport(objects=tuple(objects))
