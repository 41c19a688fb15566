"""The export state machine, defined once: PlanRun -> RequestReport -> wait/check loop -> download -> Parquet.

Retry is for what passes: transport errors (Lambda's and the vendors'), crashes of the steps that are
safe to run again, another execution holding the step's ledger lease, a full outstanding-report cap and
data the vendor has not produced yet. Every other error is caught and routed to RecordFailure, then Fail
with the original error name. The loop is bounded by each run's deadline (CheckReport raises past it)
and by the state machine's own timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# A crash without an error type of ours: Step Functions reports a runtime failure, an out-of-memory kill
# or a function timeout as Lambda.Unknown; newer runtimes report a timeout as Sandbox.Timedout.
LAMBDA_CRASHED = ["Lambda.Unknown", "Sandbox.Timedout"]


@dataclass(frozen=True)
class Backoff:
    interval: Duration
    backoff_rate: float
    max_attempts: int
    max_delay: Duration
    jitter: sfn.JitterType = sfn.JitterType.FULL


# Step Functions evaluates a state's retriers in order and an error name may appear in only one of them:
# the error lists below are disjoint.
TRANSPORT_BACKOFF = Backoff(Duration.seconds(2), 2.0, 6, Duration.minutes(1))
TRANSIENT_BACKOFF = Backoff(Duration.seconds(10), 2.0, 5, Duration.minutes(5))
RECORD_TRANSIENT_BACKOFF = Backoff(Duration.seconds(5), 2.0, 3, Duration.seconds(30))
CRASHED_BACKOFF = Backoff(Duration.seconds(5), 2.0, 3, Duration.seconds(60))
# No jitter: a waiting run must outlast a dead holder's lease, which it can only do if the total wait is
# known. 15 s x1.5 up to 120 s, 20 times: 1,992 s, more than a publish lease taken at the end of a full
# WriteParquet (limits.PUBLISH_LEASE + its timeout = 1,920 s; tests/infra asserts it).
BUSY_BACKOFF = Backoff(Duration.seconds(15), 1.5, 20, Duration.seconds(120), sfn.JitterType.NONE)
# The run's deadline is meant to end this wait: past it RequestReport raises ReportTimedOutError instead of
# OutstandingReportCapError. 100 attempts wait about 8 h in all with full jitter (16 h at most), beyond the
# default 6 h deadline; an export with a deadline much past 7 h may run out of attempts first.
SLOT_BACKOFF = Backoff(Duration.seconds(60), 1.5, 100, Duration.minutes(10))
NOT_YET_BACKOFF = Backoff(Duration.minutes(10), 2.0, 5, Duration.hours(1))


def _retry(task: sfn.TaskStateBase, errors: list[str], backoff: Backoff) -> None:
    task.add_retry(
        errors=errors,
        interval=backoff.interval,
        backoff_rate=backoff.backoff_rate,
        max_attempts=backoff.max_attempts,
        max_delay=backoff.max_delay,
        jitter_strategy=backoff.jitter,
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
            _retry(task, LAMBDA_TRANSPORT, TRANSPORT_BACKOFF)
            return task

        plan = invoke(
            names.PLAN_RUN,
            payload=sfn.TaskInput.from_object(
                {
                    "start": sfn.JsonPath.object_at("$"),
                    "execution_id": sfn.JsonPath.execution_id,
                    # The default period comes from the start time, which EndRun also gets (the event's startDate).
                    "started_at": sfn.JsonPath.execution_start_time,
                }
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
        record.add_catch(failed, errors=["States.ALL"], result_path="$.recordError")
        record.next(failed)

        # Safe to run again after a crash or a timeout: they read, or write under a ledger lease owned by the
        # execution, which the repeat holds as well. Not RequestReport: a crash after the vendor accepted a
        # create would request a second report. It does not time out on a slow vendor either: every vendor
        # call is bounded by the invocation's remaining time (limits.CALL_MARGIN_SECONDS), so a hanging vendor
        # ends as a retried VendorUnavailableError. Its crashes go to RecordFailure.
        for task in (plan, check, download, write, record):
            _retry(task, LAMBDA_CRASHED, CRASHED_BACKOFF)
        for task in (plan, request, check, download, write):
            _retry(task, TRANSIENT + LAMBDA_THROTTLED, TRANSIENT_BACKOFF)
        _retry(record, TRANSIENT + LAMBDA_THROTTLED, RECORD_TRANSIENT_BACKOFF)
        # Another execution holds this step's ledger lease (requesting, downloading or publishing the same
        # report): wait, then adopt its report, reuse its download or report its published result.
        for task in (request, download, write):
            _retry(task, [ReportBusyError.__name__], BUSY_BACKOFF)
        # A full outstanding-report cap is not a failure: wait for a slot (another run finishing).
        _retry(request, [OutstandingReportCapError.__name__], SLOT_BACKOFF)
        # The vendor has not produced the period's data yet (Senet's details file): try again later.
        _retry(download, [ReportNotAvailableYetError.__name__], NOT_YET_BACKOFF)
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
