"""WatchRuns Lambda: invoked every hour by an EventBridge rule, never by the state machine."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_exporter import runtime
from report_exporter.handlers.parsing import event_parser
from report_exporter.logic.watch_runs import watch_runs
from report_exporter.models.payloads import WatchInput
from report_exporter.observability import logger
from report_exporter.runtime import ledger_reader, notifier
from report_exporter.telemetry import emit_watch


@logger.inject_lambda_context(log_event=False)
@event_parser(model=WatchInput)
def lambda_handler(event: WatchInput, context: LambdaContext) -> dict[str, Any]:
    job_ledger, notify = ledger_reader(), notifier()
    report = watch_runs(event, ledger=job_ledger, notify=notify, now=runtime.clock().now())
    emit_watch(event, report)
    logger.info("runs watched", extra={"links_at_risk": report.links_at_risk, "months_late": report.months_late})
    return report.model_dump(mode="json")
