"""Alarms, the alert topic and where alerts go (a destination, or alerts explicitly off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from exporter_infra import names
from exporter_infra.app_builder import build_app
from exporter_infra.config import StageConfig, StageConfigError
from tests.infra.conftest import Synth
from tests.infra.support import infra_config, infra_exports, logical_id, logical_ids, resources

INFRA = Path(__file__).resolve().parents[2] / "infra"


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


def test_one_error_of_record_failure_or_end_run_alarms(synth: Synth) -> None:
    # Either one failing means an alert or a cleanup (a released slot or lease) is missing.
    by_function = {
        a["Dimensions"][0]["Value"]["Ref"]: a
        for a in _alarms(synth.pipeline)
        if a["Namespace"] == "AWS/Lambda" and a["MetricName"] == "Errors"
    }
    for name, fn in synth.built.pipeline.functions.by_name.items():
        alarm = by_function[logical_id(fn)]
        if name in (names.RECORD_FAILURE, names.END_RUN, names.WATCH_RUNS):
            assert (alarm["Threshold"], alarm["Period"]) == (1, 300), name
        else:
            assert (alarm["Threshold"], alarm["Period"]) == (5, 3600), name
    assert "slot or ledger lease" in by_function[logical_id(synth.built.pipeline.functions.end_run)][
        "AlarmDescription"]


def test_every_dead_letter_queue_has_a_depth_alarm(synth: Synth) -> None:
    queues = set(logical_ids(synth.pipeline, "AWS::SQS::Queue"))
    assert queues == {logical_id(synth.built.pipeline.schedules.dead_letter_queue),
                      logical_id(synth.built.pipeline.cleanup.dead_letter_queue)}
    alarms = [a for a in _alarms(synth.pipeline) if a["Namespace"] == "AWS/SQS"]
    alarmed = set()
    for alarm in alarms:
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Threshold"] == 1
        (dimension,) = alarm["Dimensions"]
        assert dimension["Name"] == "QueueName"
        alarmed.add(dimension["Value"]["Fn::GetAtt"][0])
    assert len(alarms) == len(alarmed) == 2
    assert alarmed == queues


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


def test_record_failure_end_run_and_watch_runs_may_publish_to_the_alert_topic(synth: Synth) -> None:
    topic = _topic(synth.pipeline)
    publishers = [
        role["Ref"]
        for p in resources(synth.pipeline, "AWS::IAM::Policy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "sns:Publish" in s["Action"]
        for role in p["Properties"]["Roles"]
    ]
    functions = synth.built.pipeline.functions.by_name
    roles = [functions[name].role for name in (names.RECORD_FAILURE, names.END_RUN, names.WATCH_RUNS)]
    assert sorted(publishers) == sorted(logical_id(role) for role in roles if role is not None)
    assert len(publishers) == 3
    assert all(s["Resource"] == {"Ref": topic}
               for p in resources(synth.pipeline, "AWS::IAM::Policy")
               for s in p["Properties"]["PolicyDocument"]["Statement"] if "sns:Publish" in s["Action"])


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


def test_synth_refuses_alerts_that_reach_nobody() -> None:
    # Given a stage with neither an alarm email nor an explicit "alerts off"
    with pytest.raises(StageConfigError) as raised:
        StageConfig(exports=infra_exports(), stage="test", bundle=False)
    # Then the error names both ways to fix it, as context and as environment variable
    message = str(raised.value)
    assert "alerts would reach nobody" in message
    assert "-c alarm_email=" in message and "ALARM_EMAIL=" in message
    assert "-c alerts=off" in message and "ALERTS=off" in message


def test_alerts_off_is_explicit_and_excludes_an_email() -> None:
    assert StageConfig(exports=infra_exports(), stage="test", alerts="off").alerts == "off"
    assert StageConfig(exports=infra_exports(), stage="test", alarm_email="ops@example.com").alerts == "on"
    with pytest.raises(StageConfigError, match="contradicts"):
        StageConfig(exports=infra_exports(), stage="test", alerts="off", alarm_email="ops@example.com")
    with pytest.raises(StageConfigError, match="'on' or 'off'"):
        StageConfig(exports=infra_exports(), stage="test", alerts="no")  # type: ignore[arg-type]
    with pytest.raises(StageConfigError, match="not an email address"):
        StageConfig(exports=infra_exports(), stage="test", alarm_email="ops")


def test_cdk_app_stops_before_synth_without_an_alert_destination(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"ALARM_EMAIL", "ALERTS", "STAGE"}}
    env |= {"BUNDLE": "false", "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, str(INFRA / "app.py")], env=env, cwd=INFRA, capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode != 0
    assert "cannot synthesize" in result.stderr and "ALERTS=off" in result.stderr
    assert not (tmp_path / "manifest.json").exists()


def test_cdk_app_reads_alerts_off_from_the_environment(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"ALARM_EMAIL", "STAGE"}}
    env |= {"BUNDLE": "false", "CDK_OUTDIR": str(tmp_path), "ALERTS": "off", "STAGE": "dev"}
    result = subprocess.run([sys.executable, str(INFRA / "app.py")], env=env, cwd=INFRA, capture_output=True,
                            text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {"ReportExporterStorage-dev", "ReportExporterPipeline-dev"} <= set(manifest["artifacts"])
    pipeline = json.loads((tmp_path / "ReportExporterPipeline-dev.template.json").read_text())
    assert not [r for r in pipeline["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"]
