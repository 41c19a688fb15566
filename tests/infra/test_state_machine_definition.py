"""The synthesized ASL: the states of the design (README), what is retried and how long, catches, timeout."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from exporter_infra import names
from report_exporter import errors, limits
from tests.infra.conftest import Synth
from tests.infra.support import asl

TASKS = [names.PLAN_RUN, names.REQUEST_REPORT, names.CHECK_REPORT, names.DOWNLOAD_REPORT, names.WRITE_PARQUET]
# Lambda's own transport errors (service, SDK, throttling), which Step Functions reports by these names.
LAMBDA_TRANSPORT = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# Our transient errors: everything the functions raise that is worth retrying (errors.TransientError).
TRANSIENT = {
    cls.__name__
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.TransientError) and cls is not errors.TransientError
}


# A crash without an error type of ours: unhandled runtime error, out of memory, function timeout.
LAMBDA_CRASHED = {"Lambda.Unknown", "Sandbox.Timedout"}
# Safe to run again after such a crash; RequestReport is not (it may have created a vendor report).
REPEATABLE = [names.PLAN_RUN, names.CHECK_REPORT, names.DOWNLOAD_REPORT, names.WRITE_PARQUET, names.RECORD_FAILURE]
# Steps that take a ledger lease another execution may hold.
LEASED = [names.REQUEST_REPORT, names.DOWNLOAD_REPORT, names.WRITE_PARQUET]


def _retrier(states: dict[str, Any], state: str, error: str) -> dict[str, Any] | None:
    """The retrier of ``state`` that matches ``error`` (Step Functions takes the first that does)."""
    return next((r for r in states[state]["Retry"] if error in r["ErrorEquals"]), None)


def _backoff(retrier: dict[str, Any]) -> tuple[float, float, int, float, str]:
    return (retrier["IntervalSeconds"], retrier["BackoffRate"], retrier["MaxAttempts"], retrier["MaxDelaySeconds"],
            retrier["JitterStrategy"])


def total_retry_delay(retrier: dict[str, Any]) -> float:
    """How long Step Functions waits in all before giving up, without jitter: retry n (from 1) waits
    IntervalSeconds * BackoffRate ** (n - 1), at most MaxDelaySeconds."""
    return sum(
        min(float(retrier["IntervalSeconds"]) * float(retrier["BackoffRate"]) ** attempt,
            float(retrier["MaxDelaySeconds"]))
        for attempt in range(int(retrier["MaxAttempts"]))
    )


@pytest.fixture(scope="module")
def states(pipeline: Template) -> dict[str, Any]:
    definition: dict[str, Any] = asl(pipeline)["States"]
    return definition


def test_states_are_the_ones_design_names(pipeline: Template, states: dict[str, Any]) -> None:
    assert asl(pipeline)["StartAt"] == names.PLAN_RUN
    assert set(states) == {
        names.PLAN_RUN, names.REQUEST_REPORT, names.WAIT_FOR_REPORT, names.CHECK_REPORT, names.REPORT_READY,
        names.DOWNLOAD_REPORT, names.WRITE_PARQUET, names.PUBLISHED, names.RECORD_FAILURE, names.FAILED,
    }
    assert names.END_RUN not in states  # EventBridge invokes it, never the state machine
    assert states[names.PUBLISHED]["Type"] == "Succeed"
    assert states[names.FAILED]["Type"] == "Fail"


def test_the_chain_and_the_wait_loop(states: dict[str, Any]) -> None:
    assert states[names.PLAN_RUN]["Next"] == names.REQUEST_REPORT
    assert states[names.REQUEST_REPORT]["Next"] == names.REPORT_READY
    ready = states[names.REPORT_READY]
    assert ready["Type"] == "Choice"
    assert [c["Next"] for c in ready["Choices"]] == [names.DOWNLOAD_REPORT]
    assert ready["Default"] == names.WAIT_FOR_REPORT
    wait = states[names.WAIT_FOR_REPORT]
    assert wait["Type"] == "Wait"
    assert wait["SecondsPath"] == "$.job.wait_seconds"
    assert wait["Next"] == names.CHECK_REPORT
    assert states[names.CHECK_REPORT]["Next"] == names.REPORT_READY
    assert states[names.DOWNLOAD_REPORT]["Next"] == names.WRITE_PARQUET
    assert states[names.WRITE_PARQUET]["Next"] == names.PUBLISHED
    assert states[names.RECORD_FAILURE]["Next"] == names.FAILED


@pytest.mark.parametrize("state", [*TASKS, names.RECORD_FAILURE])
def test_retry_only_on_named_transient_errors_each_in_one_retrier_with_a_delay_cap(
    states: dict[str, Any], state: str
) -> None:
    retries = states[state]["Retry"]
    assert retries
    matched = [error for retrier in retries for error in retrier["ErrorEquals"]]
    # Step Functions takes the first matching retrier: an error listed twice would never reach the second.
    assert len(matched) == len(set(matched)), matched
    for retrier in retries:
        assert set(retrier["ErrorEquals"]) <= LAMBDA_TRANSPORT | LAMBDA_CRASHED | TRANSIENT, retrier["ErrorEquals"]
        assert not {"States.ALL", "States.TaskFailed", "States.Timeout"} & set(retrier["ErrorEquals"])
        assert retrier["MaxDelaySeconds"] > 0
        # Full jitter everywhere but the lease wait, whose total must be known (see below).
        expected = "NONE" if retrier["ErrorEquals"] == [errors.ReportBusyError.__name__] else "FULL"
        assert retrier["JitterStrategy"] == expected, retrier


@pytest.mark.parametrize("state", TASKS)
def test_every_task_retries_vendor_and_lambda_transport_errors(states: dict[str, Any], state: str) -> None:
    retried = {error for retrier in states[state]["Retry"] for error in retrier["ErrorEquals"]}
    assert {"VendorThrottledError", "VendorUnavailableError", "Lambda.ServiceException",
            "Lambda.TooManyRequestsException"} <= retried


@pytest.mark.parametrize("state", REPEATABLE)
def test_repeatable_steps_retry_lambda_crashes_and_timeouts(states: dict[str, Any], state: str) -> None:
    (retrier,) = [r for r in states[state]["Retry"] if set(r["ErrorEquals"]) & LAMBDA_CRASHED]
    assert set(retrier["ErrorEquals"]) == LAMBDA_CRASHED
    assert _backoff(retrier) == (5, 2, 3, 60, "FULL")


def test_request_report_is_not_repeated_after_a_crash_or_timeout(states: dict[str, Any]) -> None:
    # A repeat after the vendor accepted a create would request a second report: RecordFailure instead.
    retried = {error for retrier in states[names.REQUEST_REPORT]["Retry"] for error in retrier["ErrorEquals"]}
    assert not retried & (LAMBDA_CRASHED | {"States.ALL", "States.TaskFailed", "States.Timeout"})
    (catch,) = states[names.REQUEST_REPORT]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == names.RECORD_FAILURE


@pytest.mark.parametrize("state", [*TASKS, names.RECORD_FAILURE])
def test_report_busy_is_waited_out_without_jitter_on_the_leased_steps_only(states: dict[str, Any], state: str) -> None:
    retrier = _retrier(states, state, errors.ReportBusyError.__name__)
    if state not in LEASED:
        assert retrier is None
        return
    assert retrier is not None
    assert retrier["ErrorEquals"] == [errors.ReportBusyError.__name__]
    assert _backoff(retrier) == (15, 1.5, 20, 120, "NONE")


@pytest.mark.parametrize("state", LEASED)
def test_report_busy_wait_outlasts_a_publish_lease_taken_at_the_end_of_a_full_write(
    states: dict[str, Any], state: str
) -> None:
    # The holder may die at the very end of its WriteParquet; its lease then runs for PUBLISH_LEASE more.
    retrier = _retrier(states, state, errors.ReportBusyError.__name__)
    assert retrier is not None and retrier["JitterStrategy"] == "NONE"  # with jitter the total would be random
    holder = limits.PUBLISH_LEASE + limits.function_timeout(names.WRITE_PARQUET)
    assert total_retry_delay(retrier) > holder.total_seconds()


def test_total_retry_delay_follows_the_step_functions_formula() -> None:
    # 15, 22.5, 33.75, 50.625, 75.9375, 113.90625, then 14 waits capped at 120.
    retrier = {"IntervalSeconds": 15, "BackoffRate": 1.5, "MaxAttempts": 20, "MaxDelaySeconds": 120}
    assert total_retry_delay(retrier) == pytest.approx(311.71875 + 14 * 120)


def test_request_report_waits_for_a_free_outstanding_report_slot(states: dict[str, Any], synth: Synth) -> None:
    retrier = _retrier(states, names.REQUEST_REPORT, errors.OutstandingReportCapError.__name__)
    assert retrier is not None
    assert retrier["ErrorEquals"] == [errors.OutstandingReportCapError.__name__]
    assert _backoff(retrier) == (60, 1.5, 100, 600, "FULL")
    # Many attempts, so that the run's deadline (ReportTimedOutError) ends the wait: with full jitter the
    # expected total is half the unjittered one, and it still outlasts the configured deadlines.
    assert total_retry_delay(retrier) / 2 > synth.config.max_deadline_minutes * 60
    others = {e for s in TASKS if s != names.REQUEST_REPORT for r in states[s]["Retry"] for e in r["ErrorEquals"]}
    assert errors.OutstandingReportCapError.__name__ not in others


def test_download_waits_for_data_the_vendor_has_not_produced_yet(states: dict[str, Any]) -> None:
    retrier = _retrier(states, names.DOWNLOAD_REPORT, errors.ReportNotAvailableYetError.__name__)
    assert retrier is not None and retrier["ErrorEquals"] == [errors.ReportNotAvailableYetError.__name__]
    others = {e for s in TASKS if s != names.DOWNLOAD_REPORT for r in states[s]["Retry"] for e in r["ErrorEquals"]}
    assert errors.ReportNotAvailableYetError.__name__ not in others


def test_plan_run_gets_the_execution_id_and_its_start_time(states: dict[str, Any]) -> None:
    # The default period derives from the start time, which EndRun gets too (the event's startDate).
    assert states[names.PLAN_RUN]["Parameters"] == {
        "start.$": "$",
        "execution_id.$": "$$.Execution.Id",
        "started_at.$": "$$.Execution.StartTime",
    }


@pytest.mark.parametrize("state", TASKS)
def test_every_task_catches_everything_into_record_failure(states: dict[str, Any], state: str) -> None:
    (catch,) = states[state]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    assert catch["Next"] == names.RECORD_FAILURE
    assert catch["ResultPath"] == "$.error"


def test_record_failure_ends_in_fail_even_when_it_fails(states: dict[str, Any]) -> None:
    (catch,) = states[names.RECORD_FAILURE]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    assert catch["Next"] == names.FAILED
    assert states[names.FAILED]["ErrorPath"] == "$.error.Error"


def test_state_machine_has_a_timeout(pipeline: Template) -> None:
    timeout = asl(pipeline)["TimeoutSeconds"]
    assert 8 * 3600 <= timeout <= 26 * 3600
