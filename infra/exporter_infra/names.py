"""Names shared by the infra, the local runner and the tests: states and env vars.

Physical names (stacks, the Glue database, the workgroup, ...) depend on the stage: see
``report_exporter.stages``, which the operator CLI shares.
"""

from __future__ import annotations

PLAN_RUN = "PlanRun"
REQUEST_REPORT = "RequestReport"
WAIT_FOR_REPORT = "WaitForReport"
CHECK_REPORT = "CheckReport"
REPORT_READY = "ReportReady?"
DOWNLOAD_REPORT = "DownloadReport"
WRITE_PARQUET = "WriteParquet"
PUBLISHED = "Published"
RECORD_FAILURE = "RecordFailure"
FAILED = "Failed"
# Not a state: EventBridge invokes it when an execution fails, times out or is aborted (constructs/run_cleanup.py).
END_RUN = "EndRun"
# Not a state either: an hourly EventBridge rule invokes it (constructs/run_watch.py).
WATCH_RUNS = "WatchRuns"

# Lambda functions: state (or EndRun) name -> handler module.
HANDLERS = {
    PLAN_RUN: "report_exporter.handlers.plan_run.lambda_handler",
    REQUEST_REPORT: "report_exporter.handlers.request_report.lambda_handler",
    CHECK_REPORT: "report_exporter.handlers.check_report.lambda_handler",
    DOWNLOAD_REPORT: "report_exporter.handlers.download_report.lambda_handler",
    WRITE_PARQUET: "report_exporter.handlers.write_parquet.lambda_handler",
    RECORD_FAILURE: "report_exporter.handlers.record_failure.lambda_handler",
    END_RUN: "report_exporter.handlers.end_run.lambda_handler",
    WATCH_RUNS: "report_exporter.handlers.watch_runs.lambda_handler",
}

ENV_RAW_BUCKET = "RAW_BUCKET"
ENV_CURATED_BUCKET = "CURATED_BUCKET"
ENV_LEDGER_TABLE = "LEDGER_TABLE"
ENV_ALERT_TOPIC_ARN = "ALERT_TOPIC_ARN"
