"""The synthesized ASL: the states DESIGN.md names, retries for transport errors only, catches, timeout."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from exporter_infra import names
from report_exporter import errors
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
def test_retry_only_on_transport_errors_with_full_jitter_and_a_delay_cap(states: dict[str, Any], state: str) -> None:
    retries = states[state]["Retry"]
    assert retries
    for retrier in retries:
        assert set(retrier["ErrorEquals"]) <= LAMBDA_TRANSPORT | TRANSIENT, retrier["ErrorEquals"]
        assert "States.ALL" not in retrier["ErrorEquals"]
        assert retrier["JitterStrategy"] == "FULL"
        assert retrier["MaxDelaySeconds"] > 0
        assert retrier["MaxAttempts"] <= 50


@pytest.mark.parametrize("state", TASKS)
def test_every_task_retries_vendor_and_lambda_transport_errors(states: dict[str, Any], state: str) -> None:
    retried = {error for retrier in states[state]["Retry"] for error in retrier["ErrorEquals"]}
    assert {"VendorThrottledError", "VendorUnavailableError", "Lambda.ServiceException",
            "Lambda.TooManyRequestsException"} <= retried


def test_request_report_waits_for_a_free_outstanding_report_slot(states: dict[str, Any]) -> None:
    retried = {error for retrier in states[names.REQUEST_REPORT]["Retry"] for error in retrier["ErrorEquals"]}
    assert errors.OutstandingReportCapError.__name__ in retried
    others = {e for s in TASKS if s != names.REQUEST_REPORT for r in states[s]["Retry"] for e in r["ErrorEquals"]}
    assert errors.OutstandingReportCapError.__name__ not in others


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
