"""DownloadReport Lambda."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_exporter import limits, runtime
from report_exporter.handlers.parsing import event_parser
from report_exporter.logic.download_report import download_report
from report_exporter.models.payloads import DownloadInput
from report_exporter.observability import logger
from report_exporter.runtime import ledger, raw_store
from report_exporter.telemetry import instrument
from report_exporter.wiring import adapter_for


@logger.inject_lambda_context(log_event=False)
@event_parser(model=DownloadInput)
@instrument(limits.DOWNLOAD_REPORT, ledger=ledger)
def lambda_handler(event: DownloadInput, context: LambdaContext) -> dict[str, Any]:
    job_ledger, raw_files = ledger(), raw_store()  # first: without its ports the step calls no vendor
    logger.append_keys(export=event.plan.export.name, period=event.plan.period, report_id=event.job.report_id)
    raw = download_report(event, adapter=adapter_for(event.plan.export, context), raw=raw_files, ledger=job_ledger,
                          now=runtime.clock().now())
    for obj in raw.objects:
        logger.info("raw object stored", extra={"key": obj.key, "bytes": obj.bytes, "sha256": obj.sha256})
    return raw.model_dump(mode="json")
