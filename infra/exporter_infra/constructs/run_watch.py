"""WatchRuns, every hour: vendor links about to expire before their report was downloaded, and months not
published by their day (logic/watch_runs.py). Alarms on what it counts are in constructs/monitoring.py.

A scheduled check rather than metric math on the runs' own metrics: both failures are things that did
*not* happen (no download, no publish), so no run emits a metric at the moment they become true, and
only a look at the ledger can say which export and which month they concern.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from report_exporter.models.exports import ExportSpec
from report_exporter.models.payloads import WatchedExport

INTERVAL = Duration.hours(1)
# EventBridge accepts target inputs up to 8,192 characters; the exports are listed in it.
MAX_INPUT_CHARACTERS = 8192


def watched(exports: Sequence[ExportSpec]) -> list[WatchedExport]:
    return [WatchedExport(name=e.name, vendor=e.vendor_name.value, timezone=e.timezone,
                          publish_by_day=e.publish_by(), schedule_timezone=e.schedule.timezone) for e in exports]


class RunWatch(Construct):
    """The hourly rule that invokes WatchRuns with the exports to watch and the thresholds."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        exports: Sequence[ExportSpec],
        watch_runs: lambda_.IFunction,
        state_machine: sfn.IStateMachine,
        link_margin_hours: int,
    ) -> None:
        super().__init__(scope, id_)
        self.link_margin_hours = link_margin_hours
        payload = {
            "exports": [w.model_dump(mode="json") for w in watched(exports)],
            "interval_minutes": int(INTERVAL.to_minutes()),
            "link_margin_hours": link_margin_hours,
        }
        # The state machine's ARN is a token; its resolved length is bounded by the stack's name.
        size = len(json.dumps(payload)) + len(Stack.of(self).stack_name) + 200
        if size > MAX_INPUT_CHARACTERS:
            raise ValueError(f"too many exports for one WatchRuns rule ({size:,} characters of input, at most "
                             f"{MAX_INPUT_CHARACTERS:,}); split the exports into stages")
        self.rule = events.Rule(
            self,
            "Hourly",
            description="report-exporter: WatchRuns checks for vendor links about to expire and late months",
            schedule=events.Schedule.rate(INTERVAL),
        )
        self.rule.add_target(targets.LambdaFunction(
            watch_runs,
            event=events.RuleTargetInput.from_object({**payload, "state_machine_arn": state_machine.state_machine_arn}),
            retry_attempts=2,
            max_event_age=Duration.minutes(30),
        ))
