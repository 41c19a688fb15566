"""RequestReport Lambda."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_exporter import limits, runtime
from report_exporter.handlers.parsing import event_parser
from report_exporter.logic.request_report import request_report
from report_exporter.models.payloads import RequestInput
from report_exporter.observability import logger
from report_exporter.runtime import ledger
from report_exporter.telemetry import instrument
from report_exporter.wiring import adapter_for


@logger.inject_lambda_context(log_event=False)
@event_parser(model=RequestInput)
@instrument(limits.REQUEST_REPORT, ledger=ledger)
def lambda_handler(event: RequestInput, context: LambdaContext) -> dict[str, Any]:
    job_ledger = ledger()  # first: without its ports the step fails before it calls the vendor
    logger.append_keys(export=event.plan.export.name, period=event.plan.period, execution=event.plan.execution_id)
    job = request_report(event, adapter=adapter_for(event.plan.export, context), ledger=job_ledger,
                         now=runtime.clock().now())
    logger.info("report requested", extra={"report_id": job.report_id, "status": job.status.value})
    return job.model_dump(mode="json")
