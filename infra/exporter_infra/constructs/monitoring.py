"""Alarms on what needs an operator: failed, timed-out and throttled executions, Lambda errors,
schedule starts that ended in their dead-letter queue, ended runs EndRun could not clean up, and the two
WatchRuns counts: ready reports whose vendor link is about to expire, and months not published by
their day. Every alarm notifies the alert topic, which RecordFailure, EndRun and WatchRuns also publish
to (WatchRuns' message names the export, the month and the console link; the alarm stays in ALARM
while any such finding lasts).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from report_exporter import telemetry

PERIOD = Duration.minutes(5)
# WatchRuns reports its counts once an hour.
WATCH_PERIOD = Duration.hours(1)


def watch_metric(namespace: str, name: str) -> cloudwatch.Metric:
    """A WatchRuns count over all exports (its EMF document with only Powertools' ``service`` dimension)."""
    return cloudwatch.Metric(namespace=namespace, metric_name=name, dimensions_map={"service": telemetry.SERVICE},
                             statistic="Maximum", period=WATCH_PERIOD)
# Lambda errors include the retried transient ones (a vendor's 429), so one alone is not news; failed
# runs alarm through ExecutionsFailed. RecordFailure and EndRun are the exceptions (alert_on_any_error):
# if they fail, an alert or a cleanup is missing.
FUNCTION_ERRORS_PERIOD = Duration.hours(1)
FUNCTION_ERRORS_THRESHOLD = 5


class Monitoring(Construct):
    """The state machine's alarms, an errors alarm per function and one per dead-letter queue.

    ``alert_on_any_error`` maps the functions alarmed on a single error to their alarm's description.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        schedule_dead_letters: sqs.IQueue,
        cleanup_dead_letters: sqs.IQueue,
        topic: sns.ITopic,
        alert_on_any_error: Mapping[str, str],
        metrics_namespace: str,
        link_margin_hours: int,
    ) -> None:
        super().__init__(scope, id_)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        notify = actions.SnsAction(topic)

        def alarm(id_: str, metric: cloudwatch.IMetric, description: str, threshold: int = 1) -> None:
            created = cloudwatch.Alarm(
                self,
                id_,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(notify)
            self.alarms[id_] = created

        alarm("ExecutionsFailed", state_machine.metric_failed(period=PERIOD, statistic="Sum"),
              "An export run failed; RecordFailure has the export, period and error (see the alert and the ledger).")
        alarm("ExecutionsTimedOut", state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
              "An export run hit the state machine's timeout (RecordFailure did not run for it).")
        alarm("ExecutionThrottled", state_machine.metric_throttled(period=PERIOD, statistic="Sum"),
              "Step Functions throttled state transitions of the export state machine.")
        for state, function in functions.items():
            if state in alert_on_any_error:
                alarm(f"{state}Errors", function.metric_errors(period=PERIOD, statistic="Sum"),
                      alert_on_any_error[state])
            else:
                alarm(f"{state}Errors", function.metric_errors(period=FUNCTION_ERRORS_PERIOD, statistic="Sum"),
                      f"The {state} Lambda raised {FUNCTION_ERRORS_THRESHOLD}+ errors in an hour (transient ones "
                      "are retried, the rest routed to RecordFailure): a vendor or the code may be misbehaving.",
                      threshold=FUNCTION_ERRORS_THRESHOLD)
        alarm("ScheduleDeadLetters",
              schedule_dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
              "A schedule could not start the state machine after its retries; the start is in the "
              "dead-letter queue (the message names the export).")
        alarm("RunCleanupDeadLetters",
              cleanup_dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
              "EndRun did not clean up after an execution that failed, timed out or was aborted (not delivered, "
              "or failing after its retries): its outstanding-report slot or ledger lease may still be held. "
              "The message holds the execution's status-change event; replay it to EndRun.")
        self.links_at_risk = watch_metric(metrics_namespace, telemetry.LINKS_AT_RISK)
        self.months_late = watch_metric(metrics_namespace, telemetry.MONTHS_LATE)
        alarm("ReportLinkExpiring", self.links_at_risk,
              f"A ready vendor report is still not downloaded less than {link_margin_hours} h before its download "
              "link expires (after that the vendor deletes it). WatchRuns' alert names the export, the month and "
              "the execution; see `report-exporter status` and rerun the month if its run is gone.")
        alarm("MonthNotPublished", self.months_late,
              "A configured export's last month is not published by its publish_by_day. WatchRuns' alert names the "
              "export, the month and a console link; see `report-exporter status`, then backfill the month.")
