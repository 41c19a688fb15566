"""RequestReport: ask the vendor for the run's report (or confirm a synchronous vendor is ready)."""

from __future__ import annotations

from datetime import datetime

from report_exporter.adapters.base import ReportAdapter, next_wait
from report_exporter.models.payloads import JobStatus, ReportJob, RequestInput


def request_report(event: RequestInput, *, adapter: ReportAdapter, now: datetime) -> ReportJob:
    """Request the report and plan the first wait from the vendor's cadence.

    Args:
        event: The run plan.
        adapter: The vendor adapter for the export.
        now: The current time.

    Returns:
        The job: PENDING with a report id and the first wait, or READY for synchronous vendors.
    """
    result = adapter.request(event.plan)
    pending = result.status is JobStatus.PENDING
    return ReportJob(
        report_id=result.report_id,
        status=result.status,
        requested_at=now,
        polls=0,
        wait_seconds=next_wait(adapter.cadence, 0) if pending else 0,
    )
