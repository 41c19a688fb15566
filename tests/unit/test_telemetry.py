"""Run metrics (EMF through Powertools) and the cost estimate: what each state reports, in units AWS bills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from report_exporter import limits, runtime, telemetry, usage
from report_exporter.errors import ReportBusyError, VendorThrottledError
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import CheckInput, JobStatus, PlanInput, ReportJob, StartInput
from report_exporter.prices import FALLBACK_REGION, PRICES, prices_for
from tests.fakes import RecordingLedger, plan_for

EXPORT = ParticleExport(name="particle-fleet", secret_name="s")
NOW = datetime(2026, 11, 3, 6, 10, tzinfo=UTC)


class Context:
    memory_limit_in_mb = 1024


def check_input(**job: Any) -> CheckInput:
    plan = plan_for(EXPORT, now=NOW - timedelta(minutes=10))
    fields: dict[str, Any] = {"job": "1001", "report_id": "1001", "status": JobStatus.PENDING,
                              "requested_at": NOW - timedelta(minutes=5), "polls": 2, "wait_seconds": 60}
    return CheckInput(plan=plan, job=ReportJob(**(fields | job)))


@pytest.fixture
def emitted() -> Any:
    blobs: list[dict[str, Any]] = []
    with runtime.override(metrics=blobs.append):
        yield blobs


def test_aws_calls_are_counted_in_the_units_aws_bills() -> None:
    with usage.metering() as used:
        for service, operation in [("s3", "CreateMultipartUpload"), ("s3", "UploadPart"), ("s3", "UploadPart"),
                                   ("s3", "CompleteMultipartUpload"), ("s3", "CopyObject"), ("s3", "ListObjectsV2"),
                                   ("s3", "GetObject"), ("s3", "HeadObject"), ("s3", "DeleteObject"),
                                   ("s3", "AbortMultipartUpload"), ("dynamodb", "GetItem"),
                                   ("dynamodb", "UpdateItem"), ("dynamodb", "PutItem"),
                                   ("secretsmanager", "GetSecretValue"), ("sns", "Publish"),
                                   ("sts", "GetCallerIdentity")]:
            usage.count_call(service, operation)
    assert used.as_dict() == {"s3_write_requests": 6, "s3_read_requests": 2, "dynamodb_read_units": 1,
                              "dynamodb_write_units": 2, "secrets_api_calls": 1, "sns_publishes": 1}
    # Outside a meter (the operator CLI, the runner's own calls) nothing is counted anywhere.
    usage.count_call("s3", "PutObject")
    assert used.s3_write_requests == 6


def test_cost_is_units_times_the_regions_prices() -> None:
    used = usage.Usage(state_transitions=18, lambda_requests=8, lambda_gb_seconds=Decimal("1.5"),
                       s3_write_requests=4, s3_read_requests=2, s3_stored_bytes=1024**3, secrets_api_calls=1,
                       dynamodb_read_units=2, dynamodb_write_units=20, sns_publishes=1)
    cost = used.cost(PRICES["us-east-1"])
    assert cost["stepfunctions"] == Decimal("0.000450000")  # 18 x $0.025 / 1,000
    assert cost["lambda"] == Decimal("0.000021600")  # 8 x $0.20 / 1M + 1.5 GB-s x $0.0000133334
    assert cost["s3"] == Decimal("0.023020800")  # 4 x $0.005/1,000 + 2 x $0.0004/1,000 + 1 GB-month x $0.023
    assert cost["secretsmanager"] == Decimal("0.000005000")
    assert cost["dynamodb"] == Decimal("0.000012750")  # 2 x $0.125/1M + 20 x $0.625/1M
    assert cost["sns"] == Decimal("0.000000500")
    assert used.cost(PRICES["eu-central-1"])["dynamodb"] > cost["dynamodb"]


def test_a_region_without_prices_is_estimated_at_us_east_1s_and_says_so() -> None:
    assert prices_for("ap-south-2").region == FALLBACK_REGION
    assert prices_for("eu-west-1").region == "eu-west-1"


def test_check_report_reports_a_poll_the_wait_before_it_and_the_reports_age(emitted: list[dict[str, Any]]) -> None:
    ledger = RecordingLedger()
    handler = telemetry.instrument(limits.CHECK_REPORT, ledger=lambda: ledger)(lambda event, context: {"ok": 1})
    with runtime.override(clock=_Fixed(NOW)):
        handler(check_input(), Context())
    (blob,) = emitted
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == telemetry.DEFAULT_NAMESPACE
    # One dimension set: what the dashboard's SEARCH and the alarms name.
    assert [sorted(d) for d in blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]] == [["export", "service", "vendor"]]
    assert (blob["export"], blob["vendor"], blob["service"]) == ("particle-fleet", "particle", "report-exporter")
    values = telemetry.values(blob)
    assert (values["Polls"], values["TimeWaited"], values["ReportAge"]) == (1, 60, 300)
    assert values["EstimatedCost"] > 0
    (record,) = [a for n, a in ledger.calls if n == "record_run"]
    assert (record["export"], record["period"]) == ("particle-fleet", "2026-10")
    add = record["add"]
    # One request, the Wait + CheckReport + Choice transitions, the record write itself; and its cost.
    assert add["usage_lambda_requests"] == 1
    assert (add["usage_state_transitions"], add["usage_dynamodb_write_units"]) == (3, 1)
    assert add["waited_seconds"] == 60
    assert add["cost_usd"] == Decimal(str(values["EstimatedCost"]))
    assert record["values"] == {"cost_region": "us-east-1"}


def test_a_vendor_error_is_counted_by_name_and_raised_unchanged(emitted: list[dict[str, Any]]) -> None:
    ledger = RecordingLedger()

    def throttled(event: Any, context: Any) -> Any:
        raise VendorThrottledError("429")

    with pytest.raises(VendorThrottledError):
        telemetry.instrument(limits.CHECK_REPORT, ledger=lambda: ledger)(throttled)(check_input(), Context())
    errors = [b for b in emitted if "VendorErrors" in b]
    assert [(b["error"], b["export"], telemetry.values(b)["VendorErrors"]) for b in errors] == [
        ("VendorThrottledError", "particle-fleet", 1.0)]
    (record,) = [a for n, a in ledger.calls if n == "record_run"]
    assert record["add"]["vendor_error_VendorThrottledError"] == 1


def test_the_exporters_own_errors_are_no_vendor_errors(emitted: list[dict[str, Any]]) -> None:
    def busy(event: Any, context: Any) -> Any:
        raise ReportBusyError("another execution holds it")

    with pytest.raises(ReportBusyError):
        telemetry.instrument(limits.CHECK_REPORT, ledger=RecordingLedger)(busy)(check_input(), Context())
    assert not [b for b in emitted if "VendorErrors" in b]


def test_plan_run_counts_a_run_started_and_leaves_its_cost_to_request_report(emitted: list[dict[str, Any]]) -> None:
    plan = plan_for(EXPORT, now=NOW)
    handler = telemetry.instrument(limits.PLAN_RUN)(lambda event, context: {"plan": plan.model_dump(mode="json")})
    handler(PlanInput(start=StartInput(export=EXPORT), execution_id=plan.execution_id), Context())
    (blob,) = emitted
    assert telemetry.values(blob) == {"RunsStarted": 1}


def test_metrics_that_cannot_be_recorded_never_fail_the_run(emitted: list[dict[str, Any]]) -> None:
    class Broken(RecordingLedger):
        def record_run(self, **kwargs: Any) -> bool:
            raise RuntimeError("DynamoDB is down")

    handler = telemetry.instrument(limits.CHECK_REPORT, ledger=Broken)(lambda event, context: {"ok": 1})
    assert handler(check_input(), Context()) == {"ok": 1}


def test_billed_duration_is_rounded_up_to_the_millisecond() -> None:
    assert telemetry._gb_seconds(1024, 0.0001) == Decimal("0.001000")
    assert telemetry._gb_seconds(512, 2.0) == Decimal("1.000000")


class _Fixed:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
