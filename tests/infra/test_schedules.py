"""EventBridge Scheduler: one schedule per enabled export, sending exactly the execution input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from exporter_infra.app_builder import build_app
from exporter_infra.config import StageConfig
from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import ExportsFile, ScheduleSpec
from report_exporter.models.payloads import StartInput
from tests.infra.conftest import Synth
from tests.infra.support import infra_config, infra_exports, logical_id, logical_ids, resources

PLACEHOLDER = "<aws.scheduler.scheduled-time>"


def _schedules(pipeline: Template) -> dict[str, dict[str, Any]]:
    return {s["Properties"]["Name"]: s["Properties"] for s in resources(pipeline, "AWS::Scheduler::Schedule")}


def test_one_schedule_per_enabled_export(synth: Synth) -> None:
    enabled = {e.name for e in synth.config.exports.exports if e.schedule.enabled}
    assert enabled == {"particle-fleet", "kore-account"}
    assert set(_schedules(synth.pipeline)) == enabled


def test_disabled_export_has_no_schedule(synth: Synth) -> None:
    schedules = _schedules(synth.pipeline)
    assert "particle-sandbox" not in schedules
    assert all("particle-sandbox" not in props["Target"]["Input"] for props in schedules.values())


def test_schedule_uses_the_configured_cron_and_time_zone(synth: Synth) -> None:
    schedules = _schedules(synth.pipeline)
    for export in synth.config.exports.exports:
        if not export.schedule.enabled:
            continue
        spec = export.schedule
        props = schedules[export.name]
        assert props["ScheduleExpression"] == f"cron({spec.minute} {spec.hour} {spec.day_of_month} * ? *)"
        assert props["ScheduleExpressionTimezone"] == spec.timezone
        assert props["State"] == "ENABLED"
    assert schedules["particle-fleet"]["ScheduleExpression"] == "cron(30 7 5 * ? *)"
    assert schedules["particle-fleet"]["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedules["kore-account"]["ScheduleExpression"] == "cron(0 6 3 * ? *)"


def test_flexible_time_window_follows_the_config(synth: Synth) -> None:
    schedules = _schedules(synth.pipeline)
    assert schedules["particle-fleet"]["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 30}
    assert schedules["kore-account"]["FlexibleTimeWindow"] == {"Mode": "OFF"}


def test_schedule_input_is_exactly_the_execution_input(synth: Synth) -> None:
    for name, props in _schedules(synth.pipeline).items():
        document = json.loads(props["Target"]["Input"])
        assert list(document) == ["export", "period", "scheduled_time"]
        assert document["period"] is None
        assert document["scheduled_time"] == PLACEHOLDER
        document["scheduled_time"] = "2026-02-05T07:30:00+01:00"
        start = StartInput.model_validate(document)
        # The export as the stage runs it: the secrets the stack creates carry the stage ("test/...").
        assert start.export == synth.config.deployed_exports.get(name)
        configured = synth.config.exports.get(name)
        assert start.export.secret_name == (f"test/{configured.secret_name}" if configured.create_secret
                                            else configured.secret_name)
        assert start.period is None


def test_schedule_targets_the_state_machine_with_bounded_retries_and_a_dead_letter_queue(synth: Synth) -> None:
    (machine,) = logical_ids(synth.pipeline, "AWS::StepFunctions::StateMachine")
    queue = logical_id(synth.built.pipeline.schedules.dead_letter_queue)
    for props in _schedules(synth.pipeline).values():
        target = props["Target"]
        assert target["Arn"] == {"Ref": machine}
        assert 0 < target["RetryPolicy"]["MaximumRetryAttempts"] <= 185
        assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 24 * 3600
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}


def test_dead_letter_queue_is_encrypted_and_refuses_plain_http(synth: Synth) -> None:
    queue = logical_id(synth.built.pipeline.schedules.dead_letter_queue)
    assert synth.pipeline.find_resources("AWS::SQS::Queue")[queue]["Properties"]["SqsManagedSseEnabled"] is True
    (policy,) = [p for p in resources(synth.pipeline, "AWS::SQS::QueuePolicy")
                 if p["Properties"]["Queues"] == [{"Ref": queue}]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_scheduler_role_may_only_start_this_state_machine(synth: Synth) -> None:
    (machine,) = logical_ids(synth.pipeline, "AWS::StepFunctions::StateMachine")
    queue = logical_id(synth.built.pipeline.schedules.dead_letter_queue)
    role_arns = {json.dumps(p["Target"]["RoleArn"]) for p in _schedules(synth.pipeline).values()}
    assert len(role_arns) == 1
    role_id = json.loads(role_arns.pop())["Fn::GetAtt"][0]
    role = synth.pipeline.find_resources("AWS::IAM::Role")[role_id]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    assert "ManagedPolicyArns" not in role["Properties"]
    statements = [
        s
        for policy in resources(synth.pipeline, "AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert sorted((s["Action"], json.dumps(s["Resource"])) for s in statements) == sorted([
        ("states:StartExecution", json.dumps({"Ref": machine})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": [queue, "Arn"]})),
    ])


def test_bad_schedule_in_the_config_file_fails_synth_naming_export_and_field(tmp_path: Path) -> None:
    config = tmp_path / "exports.toml"
    config.write_text(
        '[[exports]]\nname = "particle-fleet"\nvendor = "particle"\nsecret_name = "s/particle"\n'
        "[exports.schedule]\nday_of_month = 31\n"
    )
    with pytest.raises(InvalidExportError) as raised:
        StageConfig.from_file(config, stage="test", bundle=False)
    assert "particle-fleet" in str(raised.value)
    assert "schedule.day_of_month" in str(raised.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("timezone", "Mars/Olympus_Mons"), ("day_of_month", 31), ("hour", 24)],
)
def test_schedule_input_is_validated_at_synth(field: str, value: object) -> None:
    """A config that slipped past the loader (built in code) still cannot synthesize a bad schedule."""
    good = infra_exports().get("kore-account")
    schedule = ScheduleSpec.model_construct(**(dict(good.schedule) | {field: value}))
    bad = type(good).model_construct(**(dict(good) | {"schedule": schedule}))
    exports = ExportsFile.model_construct(exports=(bad,))
    with pytest.raises(InvalidExportError) as raised:
        build_app(infra_config(exports))
    message = str(raised.value)
    assert "'kore-account'" in message
    assert f"export.schedule.{field}" in message
