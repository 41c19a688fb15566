"""Alarms and the alert topic."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from exporter_infra import names
from exporter_infra.app_builder import build_app
from tests.infra.support import infra_config, logical_ids, resources


def _alarms(pipeline: Template) -> list[dict[str, Any]]:
    return [a["Properties"] for a in resources(pipeline, "AWS::CloudWatch::Alarm")]


def _topic(pipeline: Template) -> str:
    (topic,) = logical_ids(pipeline, "AWS::SNS::Topic")
    return topic


def test_state_machine_alarms(pipeline: Template) -> None:
    (machine,) = logical_ids(pipeline, "AWS::StepFunctions::StateMachine")
    alarmed = {
        a["MetricName"]
        for a in _alarms(pipeline)
        if a["Namespace"] == "AWS/States"
        and a["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}]
    }
    assert alarmed == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"}


def test_every_function_has_an_errors_alarm(pipeline: Template) -> None:
    functions = set(logical_ids(pipeline, "AWS::Lambda::Function"))
    alarmed = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in _alarms(pipeline)
        if a["Namespace"] == "AWS/Lambda" and a["MetricName"] == "Errors"
    }
    assert alarmed == functions
    assert len(functions) == len(names.HANDLERS)


def test_dead_letter_queue_depth_alarm(pipeline: Template) -> None:
    (queue,) = logical_ids(pipeline, "AWS::SQS::Queue")
    (alarm,) = [a for a in _alarms(pipeline) if a["Namespace"] == "AWS/SQS"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert alarm["Threshold"] == 1


def test_every_alarm_notifies_the_alert_topic(pipeline: Template) -> None:
    topic = _topic(pipeline)
    alarms = _alarms(pipeline)
    assert alarms
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alert_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(pipeline: Template) -> None:
    (topic,) = resources(pipeline, "AWS::SNS::Topic")
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = pipeline.find_resources("AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key["KeyPolicy"]["Statement"])


def test_record_failure_may_publish_to_the_alert_topic(pipeline: Template) -> None:
    topic = _topic(pipeline)
    publishers = [
        p for p in resources(pipeline, "AWS::IAM::Policy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "sns:Publish" and s["Resource"] == {"Ref": topic}
    ]
    assert len(publishers) == 1


def test_email_subscription_only_when_configured(pipeline: Template) -> None:
    assert resources(pipeline, "AWS::SNS::Subscription") == []
    built = build_app(infra_config(alarm_email="ops@example.com"))
    # The construct tree is enough here; a second synth would cost seconds for one property.
    (subscription,) = [c for c in built.pipeline.node.find_all() if isinstance(c, sns.CfnSubscription)]
    assert subscription.protocol == "email"
    assert subscription.endpoint == "ops@example.com"
    assert built.pipeline.resolve(subscription.topic_arn) == built.pipeline.resolve(built.pipeline.alerts.topic_arn)


def test_stacks_output_what_backfill_and_status_look_up(storage: Template, pipeline: Template) -> None:
    from report_exporter.local import operate

    assert operate.STATE_MACHINE_OUTPUT in pipeline.to_json().get("Outputs", {})
    assert operate.LEDGER_OUTPUT in storage.to_json().get("Outputs", {})
