"""The export state machine, defined once: PlanRun -> RequestReport -> wait/check loop -> download -> Parquet.

Retry is for transport errors only (backoff with full jitter); every other error is caught and routed
to RecordFailure, then Fail with the original error name. The loop is bounded by each run's deadline
(CheckReport raises past it) and by the state machine's own timeout.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from exporter_infra import names
from exporter_infra.constructs.exporter_functions import ExporterFunctions
from report_exporter.errors import (
    OutstandingReportCapError,
    ReportBusyError,
    ReportNotAvailableYetError,
    VendorThrottledError,
    VendorUnavailableError,
)

TRANSIENT = [VendorThrottledError.__name__, VendorUnavailableError.__name__]
LAMBDA_THROTTLED = ["Lambda.TooManyRequestsException"]
# What LambdaInvoke's default retrier (retry_on_service_exceptions) matches, retried here instead with
# full jitter and a delay cap like every other retrier.
LAMBDA_TRANSPORT = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
]


def _retry_lambda_transport(task: sfn.TaskStateBase) -> None:
    task.add_retry(
        errors=LAMBDA_TRANSPORT,
        interval=Duration.seconds(2),
        backoff_rate=2.0,
        max_attempts=6,
        max_delay=Duration.minutes(1),
        jitter_strategy=sfn.JitterType.FULL,
    )


def _retry_transient(task: sfn.TaskStateBase) -> None:
    task.add_retry(
        errors=TRANSIENT + LAMBDA_THROTTLED,
        interval=Duration.seconds(10),
        backoff_rate=2.0,
        max_attempts=5,
        max_delay=Duration.minutes(5),
        jitter_strategy=sfn.JitterType.FULL,
    )


class ReportStateMachine(Construct):
    """The one definition the cloud runs and the local runner executes."""

    def __init__(self, scope: Construct, id_: str, *, functions: ExporterFunctions, timeout: Duration) -> None:
        super().__init__(scope, id_)
        fn = functions.by_state

        def invoke(state: str, **kwargs: object) -> tasks.LambdaInvoke:
            task = tasks.LambdaInvoke(
                self, state, lambda_function=fn[state], payload_response_only=True,
                retry_on_service_exceptions=False, **kwargs  # type: ignore[arg-type]
            )
            _retry_lambda_transport(task)
            return task

        plan = invoke(
            names.PLAN_RUN,
            payload=sfn.TaskInput.from_object(
                {"start": sfn.JsonPath.object_at("$"), "execution_id": sfn.JsonPath.execution_id}
            ),
            result_path="$",
        )
        request = invoke(names.REQUEST_REPORT, result_path="$.job")
        check = invoke(names.CHECK_REPORT, result_path="$.job")
        download = invoke(names.DOWNLOAD_REPORT, result_path="$.raw")
        write = invoke(names.WRITE_PARQUET, result_path="$.curated")
        record = invoke(
            names.RECORD_FAILURE,
            payload=sfn.TaskInput.from_object(
                {"state": sfn.JsonPath.object_at("$"), "execution_id": sfn.JsonPath.execution_id}
            ),
            result_path="$.failure",
        )
        failed = sfn.Fail(self, names.FAILED, error_path="$.error.Error", cause_path="$.error.Cause")
        record.add_retry(errors=TRANSIENT + LAMBDA_THROTTLED, interval=Duration.seconds(5), max_attempts=3,
                         max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
        record.add_catch(failed, errors=["States.ALL"], result_path="$.recordError")
        record.next(failed)

        for task in (plan, request, check, download, write):
            _retry_transient(task)
        # A full outstanding-request cap is not a failure: wait for a slot (another run finishing).
        # Another execution requesting or downloading the same report right now: retry, then adopt it.
        for task in (request, download):
            task.add_retry(
                errors=[ReportBusyError.__name__],
                interval=Duration.seconds(20),
                backoff_rate=1.5,
                max_attempts=10,
                max_delay=Duration.minutes(5),
                jitter_strategy=sfn.JitterType.FULL,
            )
        # The vendor has not produced the period's data yet (Senet's details file): try again later.
        download.add_retry(
            errors=[ReportNotAvailableYetError.__name__],
            interval=Duration.minutes(10),
            backoff_rate=2.0,
            max_attempts=5,
            max_delay=Duration.hours(1),
            jitter_strategy=sfn.JitterType.FULL,
        )
        request.add_retry(
            errors=[OutstandingReportCapError.__name__],
            interval=Duration.seconds(60),
            backoff_rate=1.5,
            max_attempts=40,
            max_delay=Duration.minutes(10),
            jitter_strategy=sfn.JitterType.FULL,
        )
        for task in (plan, request, check, download, write):
            task.add_catch(record, errors=["States.ALL"], result_path="$.error")

        wait = sfn.Wait(self, names.WAIT_FOR_REPORT, time=sfn.WaitTime.seconds_path("$.job.wait_seconds"))
        published = sfn.Succeed(self, names.PUBLISHED)
        ready = sfn.Choice(self, names.REPORT_READY)
        ready.when(sfn.Condition.string_equals("$.job.status", "READY"), download.next(write).next(published))
        ready.otherwise(wait.next(check).next(ready))

        definition = plan.next(request).next(ready)
        log_group = logs.LogGroup(
            self, "ExecutionLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=timeout,
            tracing_enabled=True,
            # Payloads never hold secrets, but they are not needed in logs either.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
