"""WriteParquet Lambda (the only one that carries pyarrow)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_exporter import limits, runtime
from report_exporter.handlers.parsing import event_parser
from report_exporter.logic.write_parquet import write_parquet
from report_exporter.models.payloads import ParquetInput
from report_exporter.observability import logger
from report_exporter.runtime import curated_store, ledger, raw_store
from report_exporter.telemetry import instrument


@logger.inject_lambda_context(log_event=False)
@event_parser(model=ParquetInput)
@instrument(limits.WRITE_PARQUET, ledger=ledger)
def lambda_handler(event: ParquetInput, context: LambdaContext) -> dict[str, Any]:
    job_ledger, raw, partitions = ledger(), raw_store(), curated_store()  # first: fails before any read
    logger.append_keys(export=event.plan.export.name, period=event.plan.period, report_id=event.job.report_id)
    curated = write_parquet(event, raw=raw, curated=partitions, ledger=job_ledger, now=runtime.clock().now())
    for obj in curated.objects:
        logger.info("partition published", extra={"key": obj.key, "rows": obj.rows, "bytes": obj.bytes})
    return curated.model_dump(mode="json")
