"""CheckReport: poll the vendor once and plan the next wait, or give up past the deadline."""

from __future__ import annotations

import math
from datetime import datetime

from report_exporter.adapters.base import PollResult, ReportAdapter
from report_exporter.errors import VendorContractError, VendorThrottledError
from report_exporter.models.payloads import CheckInput, JobStatus, ReportJob
from report_exporter.ports import Ledger
from report_exporter.vendors.base import next_wait

MAX_WAIT_SECONDS = 3600
MIN_WAIT_SECONDS = 1


def check_report(event: CheckInput, *, adapter: ReportAdapter, ledger: Ledger, now: datetime) -> ReportJob:
    """Ask the vendor for the job's state and plan the next wait.

    The wait follows the adapter's cadence, which escalates with the report's age. A throttled poll (429)
    is not a failure: it waits longer (the vendor's hint, at least twice the cadence); a ``Retry-After`` on a
    normal answer is waited out too. The report is given up only when it is still pending at the export's deadline.

    Args:
        event: The run plan and the job so far.
        adapter: The vendor adapter for the export.
        ledger: The job ledger (poll count; a ready report frees the account's slot).
        now: The current time.

    Returns:
        The job with the new status, one more poll counted and the seconds to wait next.

    Raises:
        ReportTimedOutError: still pending at the deadline (the adapter may name a more precise error).
    """
    job = event.job
    plan = event.plan
    if job.report_id is None:
        raise VendorContractError("CheckReport needs a vendor report id; synchronous vendors skip the wait loop")
    polls = job.polls + 1
    # The cadence escalates with the report's age, so a wait lengthened by throttling is not paid back
    # with extra polls afterwards.
    cadence_wait = next_wait(adapter.cadence, polls, (now - job.requested_at).total_seconds())
    result: PollResult | None = None
    try:
        result = adapter.poll(plan, job.report_id)
    except VendorThrottledError as exc:
        wait = max(math.ceil(exc.retry_after or 0), 2 * cadence_wait)
        status, detail = JobStatus.PENDING, "throttled"
    else:
        status, detail, wait = result.status, result.detail, cadence_wait
        if result.retry_after:
            wait = max(wait, math.ceil(result.retry_after))
    ready = status is JobStatus.READY
    expires = result.expires_at if ready and result is not None else None
    ledger.polled(plan, job=job.job, polls=polls, ready=ready, now=now, link_expires_at=expires)
    if ready:
        # Ready is no longer outstanding at the vendor: free the account's slot for another run.
        if plan.export.max_outstanding_reports() is not None:
            ledger.release_slot(plan.export.account_key(), plan.execution_id)
        return job.replace(status=status, polls=polls, wait_seconds=0, link_expires_at=expires)
    if now >= plan.deadline:
        minutes = round((now - job.requested_at).total_seconds() / 60)
        raise adapter.timeout_error(
            f"{plan.export.vendor_name.value} report {job.report_id} for export {plan.export.name!r} "
            f"{plan.period} is still {detail or 'pending'} after {polls} polls over {minutes} min "
            f"(deadline {round((plan.deadline - plan.started_at).total_seconds() / 60)} min)"
        )
    remaining = math.ceil((plan.deadline - now).total_seconds())
    wait = max(MIN_WAIT_SECONDS, min(wait, MAX_WAIT_SECONDS, remaining))
    return job.replace(status=status, polls=polls, wait_seconds=wait)
