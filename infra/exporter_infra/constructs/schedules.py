"""One EventBridge Scheduler schedule per enabled export, each starting the export state machine.

A schedule's input is exactly the execution input (``StartInput``): the export's full spec, no period
(the run takes the month before the scheduled time) and the scheduler's ``<aws.scheduler.scheduled-time>``.
It is validated at synth, so a bad config fails ``cdk synth`` naming the export and the field.
Undeliverable starts (after the bounded retries) land in an encrypted dead-letter queue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, RemovalPolicy, TimeZone
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from pydantic import ValidationError

from exporter_infra import nag
from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import ExportSpec, ScheduleSpec, VendorName
from report_exporter.models.payloads import StartInput

SCHEDULED_TIME = str(scheduler.ContextAttribute.scheduled_time)
# Stands in for the context attribute when the input is validated at synth.
SAMPLE_SCHEDULED_TIME = "2026-01-03T06:00:00Z"
MAX_EVENT_AGE = Duration.hours(24)
RETRY_ATTEMPTS = 50


def schedule_input(export: ExportSpec) -> dict[str, Any]:
    """The execution input a schedule sends, with the scheduler's placeholder for the scheduled time."""
    return {"export": export.model_dump(mode="json"), "period": None, "scheduled_time": SCHEDULED_TIME}


def cron_expression(spec: ScheduleSpec) -> str:
    """``cron(minute hour day-of-month * ? *)``: monthly, as EventBridge Scheduler writes it."""
    return f"cron({spec.minute} {spec.hour} {spec.day_of_month} * ? *)"


def validate_schedule_input(export: ExportSpec) -> StartInput:
    """The input parsed as the state machine's first Lambda will parse it.

    Raises:
        InvalidExportError: naming the export and each field that is wrong.
    """
    document = schedule_input(export)
    sample = json.loads(json.dumps(document).replace(SCHEDULED_TIME, SAMPLE_SCHEDULED_TIME))
    try:
        return StartInput.model_validate(sample)
    except ValidationError as exc:
        vendors = {v.value for v in VendorName}
        problems = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"] if str(part) not in vendors]
            problems.append(f"{'.'.join(loc) or '(input)'}: {error['msg']}")
        raise InvalidExportError(
            f"export {getattr(export, 'name', '?')!r}: its schedule input is not a valid execution input: "
            + "; ".join(problems)
        ) from None


class ExportSchedules(Construct):
    """Schedules, their dead-letter queue and the role that may start exactly this state machine."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        exports: tuple[ExportSpec, ...],
        state_machine: sfn.IStateMachine,
        group_name: str,
    ) -> None:
        super().__init__(scope, id_)
        # Validate everything before building anything, so the first error is the config's.
        enabled = [export for export in exports if export.schedule.enabled]
        for export in enabled:
            validate_schedule_input(export)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dead_letter_queue, "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the schedules' targets (EventBridge Scheduler "
            "DeadLetterConfig, which cdk-nag does not recognise); it is alarmed on and needs no DLQ of its own.",
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": state_machine.stack.account}},
            ),
            description="EventBridge Scheduler: start the report-exporter state machine, dead-letter to SQS",
        )
        # Deleting the group deletes its schedules: nothing to keep when the stateless stack goes.
        self.group = scheduler.ScheduleGroup(self, "Group", schedule_group_name=group_name,
                                             removal_policy=RemovalPolicy.DESTROY)
        self.by_export: dict[str, scheduler.Schedule] = {}
        for export in enabled:
            spec = export.schedule
            target = targets.StepFunctionsStartExecution(
                state_machine,
                input=scheduler.ScheduleTargetInput.from_text(json.dumps(schedule_input(export))),
                role=self.role,
                dead_letter_queue=self.dead_letter_queue,
                max_event_age=MAX_EVENT_AGE,
                retry_attempts=RETRY_ATTEMPTS,
            )
            window = spec.flexible_window_minutes
            self.by_export[export.name] = scheduler.Schedule(
                self,
                export.name,
                schedule_name=export.name,
                schedule_group=self.group,
                description=f"report-exporter: export {export.name} ({export.vendor_name.value}), "
                            "the month before each run",
                schedule=scheduler.ScheduleExpression.cron(
                    minute=str(spec.minute),
                    hour=str(spec.hour),
                    day=str(spec.day_of_month),
                    month="*",
                    year="*",
                    time_zone=TimeZone.of(spec.timezone),
                ),
                time_window=scheduler.TimeWindow.flexible(Duration.minutes(window)) if window
                else scheduler.TimeWindow.off(),
                target=target,
            )
