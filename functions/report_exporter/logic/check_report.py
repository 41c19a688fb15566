"""CheckReport: poll the vendor once and plan the next wait, or give up past the deadline."""

from __future__ import annotations

import math
from datetime import datetime

from report_exporter.adapters.base import ReportAdapter, next_wait
from report_exporter.aws.ledger import Ledger, NullLedger
from report_exporter.errors import ReportTimedOutError, VendorContractError, VendorThrottledError
from report_exporter.models.payloads import CheckInput, JobStatus, ReportJob

NULL_LEDGER = NullLedger()
MAX_WAIT_SECONDS = 3600
MIN_WAIT_SECONDS = 1


def check_report(
    event: CheckInput, *, adapter: ReportAdapter, now: datetime, ledger: Ledger = NULL_LEDGER
) -> ReportJob:
    """Ask the vendor for the job's state and plan the next wait.

    A throttled poll (429) is not a failure: it waits longer (the vendor's hint, at least twice the
    cadence). The report is given up only when it is still pending at the export's deadline.

    Args:
        event: The run plan and the job so far.
        adapter: The vendor adapter for the export.
        now: The current time.

    Returns:
        The job with the new status, one more poll counted and the seconds to wait next.

    Raises:
        ReportTimedOutError: still pending at the deadline.
    """
    job = event.job
    if job.report_id is None:
        raise VendorContractError("CheckReport needs a vendor report id; synchronous vendors skip the wait loop")
    polls = job.polls + 1
    cadence_wait = next_wait(adapter.cadence, polls)
    try:
        result = adapter.poll(event.plan, job.report_id)
    except VendorThrottledError as exc:
        hint = math.ceil(exc.retry_after) if exc.retry_after else 0
        wait = max(hint, 2 * cadence_wait)
        status, detail = JobStatus.PENDING, "throttled"
    else:
        status, detail, wait = result.status, result.detail, cadence_wait
        if result.retry_after:
            wait = max(wait, math.ceil(result.retry_after))
    ledger.polled(event.plan, polls, status.value, now=now)
    if status is JobStatus.READY:
        # Ready is no longer outstanding at the vendor: free the account's slot for another run.
        ledger.release_slot(event.plan)
        return job.model_copy(update={"status": status, "polls": polls, "wait_seconds": 0})
    deadline = event.plan.deadline
    if now >= deadline:
        minutes = round((now - job.requested_at).total_seconds() / 60)
        error = getattr(adapter, "timeout_error", ReportTimedOutError)
        raise error(
            f"{event.plan.export.vendor_name.value} report {job.report_id} for export {event.plan.export.name!r} "
            f"{event.plan.period} is still {detail or 'pending'} after {polls} polls over {minutes} min "
            f"(deadline {event.plan.export.report_deadline_minutes} min)"
        )
    remaining = math.ceil((deadline - now).total_seconds())
    wait = max(MIN_WAIT_SECONDS, min(wait, MAX_WAIT_SECONDS, remaining))
    return job.model_copy(update={"status": status, "polls": polls, "wait_seconds": wait})
