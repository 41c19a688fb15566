"""RecordFailure Lambda."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_exporter import limits, runtime
from report_exporter.handlers.parsing import event_parser
from report_exporter.logic.record_failure import record_failure
from report_exporter.models.payloads import FailureInput
from report_exporter.observability import logger
from report_exporter.runtime import ledger, notifier
from report_exporter.telemetry import instrument


@logger.inject_lambda_context(log_event=False)
@event_parser(model=FailureInput)
@instrument(limits.RECORD_FAILURE, ledger=ledger)
def lambda_handler(event: FailureInput, context: LambdaContext) -> dict[str, Any]:
    job_ledger, notify = ledger(), notifier()
    record = record_failure(event, notify=notify, ledger=job_ledger, now=runtime.clock().now())
    logger.append_keys(export=record.export, period=record.period)
    logger.error("export failed", extra={"error": record.error, "reason": record.message})
    return record.model_dump(mode="json")
