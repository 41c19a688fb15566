"""RecordFailure: tell the operator which export and period failed, why, and where to look."""

from __future__ import annotations

import json
from datetime import datetime

from report_exporter.models.payloads import FailureInput, FailureRecord
from report_exporter.ports import Ledger, Notify

_MESSAGE_LIMIT = 1500


def _error_message(cause: str) -> str:
    """Lambda errors arrive as ``{"errorType", "errorMessage", "stackTrace"}``: keep the message only."""
    try:
        parsed = json.loads(cause)
    except (json.JSONDecodeError, TypeError):
        return cause[:_MESSAGE_LIMIT]
    if isinstance(parsed, dict) and isinstance(parsed.get("errorMessage"), str):
        return str(parsed["errorMessage"])[:_MESSAGE_LIMIT]
    return cause[:_MESSAGE_LIMIT]


def console_link(execution_id: str) -> str:
    """The Step Functions console page of an execution ARN."""
    parts = execution_id.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_id}"


def record_failure(event: FailureInput, *, notify: Notify | None, ledger: Ledger, now: datetime) -> FailureRecord:
    """Summarize the failure, record it in the ledger and publish it (never a secret: messages are written
    secret-free upstream).

    The ledger item turns FAILED only if this execution holds it (an adopter's failure leaves the owner's
    run alone) and it is not published; the execution's outstanding-request slot is freed either way.

    Args:
        event: The state at the failing step and the caught error.
        notify: Publisher for the alert, or None when no topic is configured.
        ledger: The job ledger.
        now: The current time.

    Returns:
        What was recorded.
    """
    state = event.state
    plan = state.plan
    export = plan.export.name if plan else str((state.export or {}).get("name", "unknown"))
    period = plan.period if plan else state.period
    execution_id = event.execution_id or (plan.execution_id if plan else "")
    message = _error_message(state.error.cause)
    updated = False
    if period is not None:
        updated = ledger.failed(export=export, period=period, execution=execution_id, error=state.error.error,
                                message=message, now=now)
    if plan is not None and plan.export.max_outstanding_reports() is not None:
        ledger.release_slot(plan.export.account_key(), execution_id)
    if notify is not None:
        subject = f"report-exporter: {export} {period or ''} failed: {state.error.error}"[:100]
        body = "\n".join(
            [
                f"Export:    {export}",
                f"Period:    {period or '(not planned)'}",
                f"Error:     {state.error.error}",
                f"Message:   {message}",
                f"Execution: {console_link(execution_id) if execution_id else '(unknown)'}",
            ]
        )
        notify(subject, body)
    return FailureRecord(
        export=export,
        period=period,
        error=state.error.error,
        message=message,
        execution_id=execution_id,
        notified=notify is not None,
        ledger_updated=updated,
        recorded_at=now,
    )
