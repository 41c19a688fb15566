"""EndRun's trigger: the EventBridge rule for executions that ended badly, its retries and dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest

from exporter_infra import names
from tests.infra.conftest import Synth
from tests.infra.support import logical_id, logical_ids, resources

SIX_HOURS = 6 * 3600


def _rule_id(synth: Synth) -> str:
    """The run-cleanup rule's logical id (the stack has one more rule: WatchRuns' hourly one)."""
    return logical_id(synth.built.pipeline.cleanup.rule)


@pytest.fixture(scope="module")
def rule(synth: Synth) -> dict[str, Any]:
    properties: dict[str, Any] = synth.pipeline.find_resources("AWS::Events::Rule")[_rule_id(synth)]["Properties"]
    return properties


def test_end_run_has_one_rule_and_it_is_the_run_cleanup_rule(synth: Synth) -> None:
    end_run = {"Fn::GetAtt": [_end_run(synth), "Arn"]}
    invoking = [rule_id for rule_id, r in synth.pipeline.find_resources("AWS::Events::Rule").items()
                if any(t["Arn"] == end_run for t in r["Properties"].get("Targets", []))]
    assert invoking == [_rule_id(synth)]


def _end_run(synth: Synth) -> str:
    return logical_id(synth.built.pipeline.functions.end_run)


def _queue(synth: Synth) -> str:
    return logical_id(synth.built.pipeline.cleanup.dead_letter_queue)


def test_rule_matches_this_state_machines_executions_that_ended_badly(rule: dict[str, Any], synth: Synth) -> None:
    (machine,) = logical_ids(synth.pipeline, "AWS::StepFunctions::StateMachine")
    # Service events arrive on the default bus only.
    assert "EventBusName" not in rule
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [{"Ref": machine}]},
    }
    assert rule["State"] == "ENABLED"


def test_rule_invokes_end_run_with_bounded_retries_and_a_dead_letter_queue(rule: dict[str, Any],
                                                                          synth: Synth) -> None:
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_end_run(synth), "Arn"]}
    assert "Input" not in target and "InputPath" not in target  # EndRun gets the whole event (startDate)
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": SIX_HOURS}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [_queue(synth), "Arn"]}}


def test_end_run_failures_after_lambdas_retries_go_to_the_same_queue(synth: Synth) -> None:
    # The target's retry policy only covers handing the event to Lambda; EndRun's own errors and timeouts
    # are retried by Lambda's asynchronous invocation, then sent on.
    (config,) = resources(synth.pipeline, "AWS::Lambda::EventInvokeConfig")
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": _end_run(synth)}
    assert props["MaximumRetryAttempts"] == 2
    assert props["MaximumEventAgeInSeconds"] == SIX_HOURS
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [_queue(synth), "Arn"]}}}


def test_only_this_rule_may_invoke_end_run(synth: Synth) -> None:
    rule_id = _rule_id(synth)
    permissions = [p["Properties"] for p in resources(synth.pipeline, "AWS::Lambda::Permission")
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [_end_run(synth), "Arn"]}]
    assert permissions == [{
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [_end_run(synth), "Arn"]},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
    }]


def test_cleanup_queue_is_encrypted_refuses_plain_http_and_takes_only_this_rules_events(synth: Synth) -> None:
    queue = _queue(synth)
    rule_id = _rule_id(synth)
    assert queue != logical_id(synth.built.pipeline.schedules.dead_letter_queue)
    assert synth.pipeline.find_resources("AWS::SQS::Queue")[queue]["Properties"]["SqsManagedSseEnabled"] is True
    (policy,) = [p for p in resources(synth.pipeline, "AWS::SQS::QueuePolicy")
                 if p["Properties"]["Queues"] == [{"Ref": queue}]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    (allowed,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allowed["Principal"] == {"Service": "events.amazonaws.com"}
    assert allowed["Action"] == "sqs:SendMessage"
    assert allowed["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}


def test_end_run_is_not_part_of_the_state_machine(synth: Synth) -> None:
    assert names.END_RUN not in synth.built.pipeline.functions.by_state
    assert synth.built.pipeline.functions.by_name[names.END_RUN] is synth.built.pipeline.functions.end_run
