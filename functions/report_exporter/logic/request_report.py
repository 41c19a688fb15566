"""RequestReport: ask the vendor for the run's report (or confirm a synchronous vendor is ready)."""

from __future__ import annotations

from datetime import datetime

from report_exporter.adapters.base import ReportAdapter
from report_exporter.errors import ExporterError, OutstandingReportCapError, ReportTimedOutError
from report_exporter.models.payloads import JobStatus, ReportJob, RequestInput, RunPlan
from report_exporter.ports import Ledger
from report_exporter.vendors.base import next_wait

# An adopted report was requested earlier: check it soon rather than restarting the cadence.
MIN_ADOPT_WAIT = 5


def _no_slot_before_deadline(plan: RunPlan, cause: OutstandingReportCapError | None) -> ReportTimedOutError:
    return ReportTimedOutError(
        f"export {plan.export.name!r} {plan.period}: no report slot of the {plan.export.vendor_name.value} account "
        f"became free before the deadline ({plan.export.report_deadline_minutes} min)"
        + (f": {cause}" if cause is not None else "")
    )


def request_report(event: RequestInput, *, adapter: ReportAdapter, ledger: Ledger, now: datetime) -> ReportJob:
    """Adopt the open report of this export and period, or request a new one within the account's cap.

    Args:
        event: The run plan.
        adapter: The vendor adapter for the export.
        ledger: The job ledger (adoption, outstanding-request cap).
        now: The current time.

    Returns:
        The job: PENDING with a report id and the first wait, or READY for synchronous vendors.

    Raises:
        OutstandingReportCapError: the account's cap is full, in the ledger or at the vendor (retried:
            the run waits for a slot until its deadline, then fails with ReportTimedOutError).
        ReportTimedOutError: a capped account's run reached its deadline before it requested a report.
        ReportBusyError: another execution is requesting the same report right now (retried, then adopted).
    """
    plan = event.plan
    claim = ledger.claim(plan, now=now)
    if claim.adopt and claim.job:
        # A rerun, a retry or a second schedule firing: follow the report already requested. A synchronous
        # vendor's "report" is the other run's download: go straight to it (and reuse its raw file).
        pending = claim.report_id is not None
        return ReportJob(job=claim.job, report_id=claim.report_id, status=JobStatus.PENDING if pending else
                         JobStatus.READY, requested_at=now, wait_seconds=MIN_ADOPT_WAIT if pending else 0,
                         adopted=True)
    cap = plan.export.max_outstanding_reports()
    if cap is not None and now >= plan.deadline:
        # A slot lasts until the run's deadline (+ grace): one taken now would be expired, or nearly, while the
        # report it stands for is still outstanding at the vendor, and the account's cap would not count it.
        raise _no_slot_before_deadline(plan, None)
    try:
        if cap is not None:
            ledger.acquire_slot(plan, cap, now=now)
        try:
            result = adapter.request(plan)
        except ExporterError:
            if cap is not None:
                ledger.release_slot(plan.export.account_key(), plan.execution_id)
            raise
    except OutstandingReportCapError as exc:
        if now >= plan.deadline:
            raise _no_slot_before_deadline(plan, exc) from None
        raise
    pending = result.status is JobStatus.PENDING
    if not pending and cap is not None:
        ledger.release_slot(plan.export.account_key(), plan.execution_id)
    job = result.report_id if result.report_id is not None else f"run:{plan.run_name}"
    ledger.requested(plan, job=job, report_id=result.report_id, ready=not pending, now=now)
    return ReportJob(
        job=job,
        report_id=result.report_id,
        status=result.status,
        requested_at=now,
        polls=0,
        wait_seconds=next_wait(adapter.cadence, 0) if pending else 0,
    )
