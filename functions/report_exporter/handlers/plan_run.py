"""PlanRun Lambda."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_exporter import limits, runtime
from report_exporter.handlers.parsing import event_parser
from report_exporter.logic.plan_run import plan_run
from report_exporter.models.payloads import PlanInput
from report_exporter.observability import logger
from report_exporter.telemetry import instrument


@logger.inject_lambda_context(log_event=False)
@event_parser(model=PlanInput)
@instrument(limits.PLAN_RUN)
def lambda_handler(event: PlanInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(export=event.start.export.name, execution=event.execution_id)
    result = plan_run(event, now=runtime.clock().now())
    logger.info("run planned", extra={"period": result.plan.period, "deadline": result.plan.deadline.isoformat()})
    return result.model_dump(mode="json")
