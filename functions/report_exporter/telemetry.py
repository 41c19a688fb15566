"""Metrics and cost of every run, per state: CloudWatch EMF through Powertools Metrics, and the ledger.

Each handler is wrapped in :func:`instrument`. When the invocation ends (returned or raised) it

* emits one EMF document (namespace ``POWERTOOLS_METRICS_NAMESPACE``, dimensions ``export`` and
  ``vendor`` plus Powertools' ``service``) with what the state did: polls, time waited, report age,
  link-expiry headroom at download, bytes, rows, the run's duration, runs started, published and
  failed, and the estimated cost of the invocation; an error a vendor or its report caused adds a
  ``VendorErrors`` count with an ``error`` dimension (the error's class name);
* adds the same figures, and the invocation's AWS usage (``usage.py``) and estimated cost at the region's
  prices (``prices.py``), to the month's ledger item (``Ledger.record_run``), where ``report-exporter
  status`` reads them. States without the ledger (PlanRun) are accounted by the next one that has it.

The usage of an invocation is what it asked of AWS: one Lambda request and its billed GB-seconds (memory
times duration, rounded up to the millisecond), the state transitions its state accounts for (below),
and every S3, DynamoDB, Secrets Manager and SNS call its clients made.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from pydantic import ValidationError

from report_exporter import limits, runtime, usage
from report_exporter.models.payloads import (
    CheckInput,
    CuratedReport,
    EndRunInput,
    FailureInput,
    ParquetInput,
    PlanInput,
    PlanOutput,
    RawReport,
    ReportJob,
    RequestInput,
    RunPlan,
    StartInput,
    WatchInput,
    WatchReport,
)
from report_exporter.observability import logger
from report_exporter.ports import Ledger
from report_exporter.prices import prices_for

SERVICE = "report-exporter"
NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "ReportExporter"
DIMENSIONS = ("export", "vendor")

# Metric names: the dashboard and the alarms (infra) read the same constants.
RUNS_STARTED = "RunsStarted"
RUNS_PUBLISHED = "RunsPublished"
RUNS_FAILED = "RunsFailed"
POLLS = "Polls"
TIME_WAITED = "TimeWaited"
REPORT_AGE = "ReportAge"
LINK_EXPIRY_HEADROOM = "LinkExpiryHeadroom"
RAW_BYTES = "RawBytes"
ROWS = "Rows"
ROWS_OUTSIDE_PERIOD = "RowsOutsidePeriod"
PARQUET_BYTES = "ParquetBytes"
RUN_DURATION = "RunDuration"
ESTIMATED_COST = "EstimatedCost"
VENDOR_ERRORS = "VendorErrors"
# WatchRuns (logic/watch_runs.py): what is open right now, and what is at risk.
OPEN_REPORTS = "OpenReports"
OLDEST_OPEN_REPORT_AGE = "OldestOpenReportAge"
OPEN_LINK_HEADROOM = "OpenLinkHeadroom"
LINKS_AT_RISK = "LinksAtRisk"
MONTHS_LATE = "MonthsLate"

# Errors a vendor or its report caused (the rest are the exporter's own: config, ledger coordination).
VENDOR_ERROR_NAMES = frozenset({
    "VendorThrottledError", "VendorUnavailableError", "OutstandingReportCapError", "ReportNotAvailableYetError",
    "VendorAuthError", "VendorRequestError", "VendorContractError", "ReportFailedError", "ReportArchivedError",
    "ReportTimedOutError", "ReportNotAvailableError", "DownloadExpiredError", "InvalidReportError",
})

# State transitions each invocation accounts for (Step Functions bills each state entered, retries included):
# its own Task state, plus the Wait and Choice around CheckReport, the Choice after RequestReport, and the
# Succeed / Fail state after WriteParquet / RecordFailure. RequestReport also accounts for PlanRun.
_TRANSITIONS = {
    limits.PLAN_RUN: 1,
    limits.REQUEST_REPORT: 2,
    limits.CHECK_REPORT: 3,
    limits.DOWNLOAD_REPORT: 1,
    limits.WRITE_PARQUET: 2,
    limits.RECORD_FAILURE: 2,
    limits.END_RUN: 0,
}
# PlanRun has no ledger: the RequestReport that succeeds after it adds PlanRun's request, its transition
# and this estimate of its duration (it parses its input and does date arithmetic: well under 100 ms).
PLAN_RUN_MILLISECONDS = 100
PLAN_RUN_MEMORY_MB = 256

Unit = MetricUnit
Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass
class Observation:
    """What one invocation reports: EMF metrics, and the ledger fields it adds to and sets."""

    export: str | None = None
    vendor: str | None = None
    period: str | None = None
    metrics: list[tuple[str, MetricUnit, float]] = field(default_factory=list)
    add: dict[str, int | Decimal] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str, unit: MetricUnit, value: float) -> None:
        self.metrics.append((name, unit, value))


def instrument(state: str, *, ledger: Callable[[], Ledger] | None = None) -> Callable[[Handler], Handler]:
    """Meter the handler's invocation and report its metrics and cost when it ends (see the module docstring).

    Args:
        state: The state (or EndRun) the handler serves.
        ledger: The job ledger, for states that may write to it (their usage is recorded on the month's item).
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            started, clock_started = time.monotonic(), runtime.clock().now()
            result: Any = None
            error: BaseException | None = None
            with usage.metering() as used:
                try:
                    result = handler(event, context)
                    return result
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    if error is None or isinstance(error, Exception):  # not a dying sandbox
                        seconds = max(time.monotonic() - started,
                                      (runtime.clock().now() - clock_started).total_seconds())
                        _report(state, event, result, error, context, used, seconds, ledger)

        return wrapper  # type: ignore[return-value]

    return decorate


def _report(state: str, event: Any, result: Any, error: BaseException | None, context: Any, used: usage.Usage,
            seconds: float, ledger: Callable[[], Ledger] | None) -> None:
    """Never raises: a metric or a ledger write that fails must not fail the run (it is logged)."""
    try:
        now = runtime.clock().now()
        seen = _observe(state, event, result, now)
        memory = int(getattr(context, "memory_limit_in_mb", 0) or 0)
        used.add(lambda_requests=1, state_transitions=_TRANSITIONS.get(state, 1),
                 lambda_gb_seconds=_gb_seconds(memory, seconds))
        if state == limits.REQUEST_REPORT and error is None:
            used.add(lambda_requests=1, state_transitions=_TRANSITIONS[limits.PLAN_RUN],
                     lambda_gb_seconds=_gb_seconds(PLAN_RUN_MEMORY_MB, PLAN_RUN_MILLISECONDS / 1000))
        used.add(s3_stored_bytes=int(seen.add.get("usage_s3_stored_bytes", 0)))
        seen.add.pop("usage_s3_stored_bytes", None)
        error_name = type(error).__name__ if error is not None else None
        if error_name in VENDOR_ERROR_NAMES:
            seen.add[f"vendor_error_{error_name}"] = 1
        writes = ledger is not None and seen.export is not None and seen.period is not None
        if writes:
            used.add(dynamodb_write_units=1)  # the record below
        prices = prices_for(str(runtime.environ().get("AWS_REGION") or "us-east-1"))
        cost = sum(used.cost(prices).values(), Decimal(0))
        if ledger is not None:  # PlanRun's cost is in RequestReport's (see _TRANSITIONS): counted once
            seen.metric(ESTIMATED_COST, MetricUnit.NoUnit, float(cost))
        _emit(seen, error_name if error_name in VENDOR_ERROR_NAMES else None)
        if writes and ledger is not None and seen.export is not None and seen.period is not None:
            add = {**seen.add, **{f"usage_{k}": v for k, v in used.as_dict().items()}, "cost_usd": cost}
            ledger().record_run(export=seen.export, period=seen.period, add=add,
                                values={**seen.set, "cost_region": prices.region})
    except Exception as exc:  # the run's own outcome matters more than its metrics
        logger.warning("run metrics not recorded", extra={"state": state, "error": f"{type(exc).__name__}: {exc}"})


def _gb_seconds(memory_mb: int, seconds: float) -> Decimal:
    """Billed GB-seconds: duration rounded up to the millisecond, times the configured memory."""
    milliseconds = max(1, math.ceil(seconds * 1000))
    return (Decimal(memory_mb) / Decimal(1024) * Decimal(milliseconds) / Decimal(1000)).quantize(Decimal("0.000001"))


def _plan_of(event: Any) -> RunPlan | None:
    if isinstance(event, RequestInput | CheckInput | ParquetInput):
        return event.plan
    if isinstance(event, FailureInput):
        return event.state.plan
    return None


def _observe(state: str, event: Any, result: Any, now: datetime) -> Observation:
    """The figures of one invocation, from its input and (when it returned) its output."""
    seen = Observation()
    plan = _plan_of(event)
    if plan is not None:
        seen.export, seen.vendor, seen.period = plan.export.name, plan.export.vendor_name.value, plan.period
    if isinstance(event, PlanInput):
        seen.export, seen.vendor = event.start.export.name, event.start.export.vendor_name.value
        seen.metric(RUNS_STARTED, MetricUnit.Count, 1)
        if isinstance(result, dict):
            seen.period = PlanOutput.model_validate(result).plan.period
    elif isinstance(event, FailureInput):
        if seen.export is None and isinstance(result, dict):
            seen.export, seen.period = result.get("export"), result.get("period")
            seen.vendor = str((event.state.export or {}).get("vendor") or "") or None
        if isinstance(result, dict) and result.get("ledger_updated"):
            seen.metric(RUNS_FAILED, MetricUnit.Count, 1)
        if plan is not None:
            _run_duration(seen, plan, now)
    elif isinstance(event, EndRunInput):
        _observe_end(seen, event, result)
    elif isinstance(event, CheckInput) and state == limits.CHECK_REPORT:
        seen.metric(POLLS, MetricUnit.Count, 1)
        seen.metric(TIME_WAITED, MetricUnit.Seconds, event.job.wait_seconds)
        seen.add["waited_seconds"] = event.job.wait_seconds
        seen.metric(REPORT_AGE, MetricUnit.Seconds, _age(event.job, now))
    elif isinstance(event, CheckInput) and state == limits.DOWNLOAD_REPORT:
        _observe_download(seen, event.job, result, now)
    elif isinstance(event, ParquetInput) and isinstance(result, dict):
        curated = CuratedReport.model_validate(result)
        if curated.published:
            parquet = sum(o.bytes for o in curated.objects)
            seen.metric(ROWS, MetricUnit.Count, curated.rows)
            seen.metric(ROWS_OUTSIDE_PERIOD, MetricUnit.Count, curated.rows_outside_period)
            seen.metric(PARQUET_BYTES, MetricUnit.Bytes, parquet)
            seen.metric(RUNS_PUBLISHED, MetricUnit.Count, 1)
            seen.set["parquet_bytes"] = parquet
            seen.add["usage_s3_stored_bytes"] = parquet
            if plan is not None:
                _run_duration(seen, plan, now)
    return seen


def _age(job: ReportJob, now: datetime) -> float:
    return max(0.0, (now - job.requested_at).total_seconds())


def _run_duration(seen: Observation, plan: RunPlan, now: datetime) -> None:
    seconds = max(0.0, (now - plan.started_at).total_seconds())
    seen.metric(RUN_DURATION, MetricUnit.Seconds, seconds)
    seen.set["run_seconds"] = round(seconds)


def _observe_download(seen: Observation, job: ReportJob, result: Any, now: datetime) -> None:
    age = _age(job, now)
    seen.metric(REPORT_AGE, MetricUnit.Seconds, age)
    if job.link_expires_at is not None:
        headroom = (job.link_expires_at - now).total_seconds()
        seen.metric(LINK_EXPIRY_HEADROOM, MetricUnit.Seconds, headroom)
        seen.set["link_headroom_seconds"] = round(headroom)
    if isinstance(result, dict):
        raw = sum(o.bytes for o in RawReport.model_validate(result).objects)
        seen.metric(RAW_BYTES, MetricUnit.Bytes, raw)
        seen.set["report_age_seconds"] = round(age)
        seen.add["usage_s3_stored_bytes"] = raw


def _observe_end(seen: Observation, event: EndRunInput, result: Any) -> None:
    try:
        start = StartInput.model_validate_json(event.detail.input or "")
    except ValidationError:
        return
    seen.export, seen.vendor = start.export.name, start.export.vendor_name.value
    if isinstance(result, dict):
        seen.period = result.get("period")
        if result.get("ledger_updated"):
            seen.metric(RUNS_FAILED, MetricUnit.Count, 1)


def namespace() -> str:
    """The stage's metrics namespace (``ReportExporter``; ``ReportExporter/<stage>`` outside prod)."""
    return str(runtime.environ().get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE)


def emf(metrics: list[tuple[str, MetricUnit, float]], dimensions: dict[str, str]) -> dict[str, Any]:
    """One EMF document, serialized by Powertools Metrics (a provider of its own: no state shared between
    invocations that the local runner runs side by side)."""
    provider = AmazonCloudWatchEMFProvider(namespace=namespace(), service=SERVICE)
    for dimension, label in dimensions.items():
        provider.add_dimension(name=dimension, value=label)  # one dimension set (add_dimensions starts another)
    for name, unit, value in metrics:
        provider.add_metric(name=name, unit=unit, value=value)
    # The timestamp is the emitting process's (Powertools'): CloudWatch refuses points more than 14 days old,
    # which a virtual clock's would be.
    return dict(provider.serialize_metric_set(metrics=provider.metric_set, dimensions=provider.dimension_set,
                                              metadata=provider.metadata_set))


def _emit(seen: Observation, vendor_error: str | None) -> None:
    dimensions = {k: v for k, v in (("export", seen.export), ("vendor", seen.vendor)) if v}
    if seen.metrics:
        runtime.emit_metrics(emf(seen.metrics, dimensions))
    if vendor_error is not None:
        runtime.emit_metrics(emf([(VENDOR_ERRORS, MetricUnit.Count, 1)], {**dimensions, "error": vendor_error}))


def values(blob: dict[str, Any]) -> dict[str, float]:
    """The metric values of one EMF document, by name (what the local runner reads back)."""
    names = [m["Name"] for directive in blob["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]]
    # EMF allows a list of samples per metric (Powertools always writes one); each name is added once here.
    return {name: float(sum(v) if isinstance(v := blob[name], list) else v) for name in names}


def emit_watch(event: WatchInput, report: WatchReport) -> None:
    """WatchRuns' figures: per export what is open and how close its links are to expiring; and, for the two
    alarms, how many links are at risk and months late (always emitted, 0 included, so the alarms see data)."""
    for export in event.exports:
        metrics = [(OPEN_REPORTS, MetricUnit.Count, float(report.open_reports.get(export.name, 0)))]
        if export.name in report.oldest_open_seconds:
            metrics.append((OLDEST_OPEN_REPORT_AGE, MetricUnit.Seconds, float(report.oldest_open_seconds[export.name])))
        if export.name in report.link_headroom_seconds:
            metrics.append((OPEN_LINK_HEADROOM, MetricUnit.Seconds, float(report.link_headroom_seconds[export.name])))
        runtime.emit_metrics(emf(metrics, {"export": export.name, "vendor": export.vendor}))
    runtime.emit_metrics(emf([(LINKS_AT_RISK, MetricUnit.Count, float(report.links_at_risk)),
                              (MONTHS_LATE, MetricUnit.Count, float(report.months_late))], {}))
