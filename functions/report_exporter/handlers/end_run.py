"""EndRun Lambda: invoked by the EventBridge rule on executions that FAILED, TIMED_OUT or were ABORTED."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_exporter import limits, runtime
from report_exporter.handlers.parsing import event_parser
from report_exporter.logic.end_run import end_run
from report_exporter.models.payloads import EndRunInput
from report_exporter.observability import logger
from report_exporter.runtime import ledger, notifier
from report_exporter.telemetry import instrument


@logger.inject_lambda_context(log_event=False)
@event_parser(model=EndRunInput)
@instrument(limits.END_RUN, ledger=ledger)
def lambda_handler(event: EndRunInput, context: LambdaContext) -> dict[str, Any]:
    job_ledger, notify = ledger(), notifier()
    record = end_run(event, ledger=job_ledger, notify=notify, now=runtime.clock().now())
    logger.append_keys(export=record.export, period=record.period, execution=record.execution_id)
    logger.info("execution ended without its catch",
                extra={"status": record.status, "ledger_updated": record.ledger_updated})
    return record.model_dump(mode="json")
