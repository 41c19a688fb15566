"""RequestReport: ask the vendor for the run's report (or confirm a synchronous vendor is ready)."""

from __future__ import annotations

from datetime import datetime

from report_exporter.adapters.base import ReportAdapter, next_wait
from report_exporter.aws.ledger import Ledger, NullLedger
from report_exporter.errors import ExporterError
from report_exporter.models.payloads import JobStatus, ReportJob, RequestInput

NULL_LEDGER = NullLedger()
# An adopted report was requested earlier: check it soon rather than restarting the cadence.
MIN_ADOPT_WAIT = 5


def request_report(
    event: RequestInput, *, adapter: ReportAdapter, now: datetime, ledger: Ledger = NULL_LEDGER
) -> ReportJob:
    """Adopt the open report of this export and period, or request a new one within the account's cap.

    Args:
        event: The run plan.
        adapter: The vendor adapter for the export.
        now: The current time.
        ledger: The job ledger (adoption, outstanding-request cap).

    Returns:
        The job: PENDING with a report id and the first wait, or READY for synchronous vendors.

    Raises:
        OutstandingReportCapError: the vendor account's cap is full (retried by Step Functions).
        ReportBusyError: another execution is requesting the same report (retried).
    """
    plan = event.plan
    claim = ledger.claim(plan, now=now)
    if claim.adopt:
        # A rerun, a retry or a second schedule firing: wait for the report already requested.
        return ReportJob(report_id=claim.report_id, status=JobStatus.PENDING, requested_at=now,
                         polls=0, wait_seconds=MIN_ADOPT_WAIT, adopted=True)
    cap = plan.export.max_outstanding_reports()
    if cap is not None:
        ledger.acquire_slot(plan, cap)
    try:
        result = adapter.request(plan)
    except ExporterError:
        if cap is not None:
            ledger.release_slot(plan)
        raise
    pending = result.status is JobStatus.PENDING
    if not pending and cap is not None:
        ledger.release_slot(plan)
    ledger.requested(plan, result.report_id, "PENDING" if pending else "READY", now=now)
    return ReportJob(
        report_id=result.report_id,
        status=result.status,
        requested_at=now,
        polls=0,
        wait_seconds=next_wait(adapter.cadence, 0) if pending else 0,
    )
