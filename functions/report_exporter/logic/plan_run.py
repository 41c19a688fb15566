"""PlanRun: decide which month a run exports, check it can be served, set the report deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import month_window, previous_period
from report_exporter.models.payloads import PlanInput, PlanOutput, RunPlan


def plan_run(event: PlanInput, *, now: datetime) -> PlanOutput:
    """Resolve the period (given, or the month before the scheduled time, else before the execution's start)
    and validate it.

    Args:
        event: The execution input, the execution's id and start time.
        now: The current time.

    Returns:
        The run plan carried by every later state.

    Raises:
        InvalidExportError: the period has not ended yet, or the vendor cannot serve it.
    """
    start = event.start
    export = start.export
    period = start.period or previous_period(start.scheduled_time or event.started_at or now, export.timezone)
    window = month_window(period, export.timezone)
    if window.end > now:
        raise InvalidExportError(
            f"export {export.name!r} period {period}: the month has not ended yet "
            f"(it ends {window.end.isoformat()}); export it after that"
        )
    export.check_window(window, now=now)
    return PlanOutput(
        plan=RunPlan(
            export=export,
            window=window,
            execution_id=event.execution_id,
            started_at=now,
            deadline=now + timedelta(minutes=export.report_deadline_minutes),
        )
    )
