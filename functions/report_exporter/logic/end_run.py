"""EndRun: an execution ended without its Catch (stopped, timed out, or RecordFailure itself failed).

Step Functions' "Execution Status Change" event reaches this handler through an EventBridge rule. It
frees what the dead execution still held: its outstanding-request slot and its lease on the month's
ledger item (the item turns FAILED, so the next run requests a fresh report instead of waiting for a
lease to run out). It also marks the execution ended: AWS lets a Lambda that was running at
StopExecution finish, and such a late invocation must take no slot and no lease. A failure RecordFailure
already recorded keeps its own error. TIMED_OUT and unrecorded FAILED ends are alerted; a stop
(ABORTED) is an operator's own act and is only recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from report_exporter.logic.record_failure import console_link
from report_exporter.models.exports import previous_period
from report_exporter.models.payloads import EndRunInput, EndRunRecord, StartInput
from report_exporter.ports import Ledger, Notify

_ERRORS = {"FAILED": "ExecutionFailed", "TIMED_OUT": "ExecutionTimedOut", "ABORTED": "ExecutionAborted"}
_WHY = {
    "FAILED": "failed without recording it (RecordFailure did not run or failed)",
    "TIMED_OUT": "hit the state machine's timeout",
    "ABORTED": "was stopped",
}


def end_run(event: EndRunInput, *, ledger: Ledger, notify: Notify | None, now: datetime) -> EndRunRecord:
    """Release the slot and the ledger lease of an execution that ended FAILED, TIMED_OUT or ABORTED.

    The month is derived from the execution input exactly as PlanRun derives it (the given period, else
    the month before the scheduled time, else before the execution's start).
    """
    detail = event.detail
    execution = detail.execution_arn
    name = execution.rsplit(":", 1)[-1]
    try:
        start = StartInput.model_validate_json(detail.input or "")
    except ValidationError:
        # No usable input (EventBridge leaves out inputs over its size limit): nothing can be located.
        return EndRunRecord(export=None, period=None, execution_id=execution, status=detail.status,
                            ledger_updated=False, notified=False)
    export = start.export
    started = datetime.fromtimestamp(detail.start_date / 1000, UTC) if detail.start_date else now
    period = start.period or previous_period(start.scheduled_time or started, export.timezone)
    # Free its slot, and mark it ended so that a Lambda of it still running takes no slot or lease later.
    account = export.account_key() if export.max_outstanding_reports() is not None else None
    ledger.ended(export=export.name, period=period, account=account, execution=execution, now=now)
    error = _ERRORS.get(detail.status, f"Execution{detail.status.title()}")
    message = f"execution {name} {_WHY.get(detail.status, detail.status.lower())}"
    updated = ledger.failed(export=export.name, period=period, execution=execution, error=error, message=message,
                            now=now, only_if_owner=True)
    alert = updated and detail.status != "ABORTED" and notify is not None
    if alert and notify is not None:
        notify(
            f"report-exporter: {export.name} {period} {detail.status.lower().replace('_', ' ')}"[:100],
            "\n".join([
                f"Export:    {export.name}",
                f"Period:    {period}",
                f"Error:     {error}",
                f"Message:   {message}; its slot and lease were released, the next run requests a fresh report",
                f"Execution: {console_link(execution)}",
            ]),
        )
    return EndRunRecord(export=export.name, period=period, execution_id=execution, status=detail.status,
                        ledger_updated=updated, notified=alert)
