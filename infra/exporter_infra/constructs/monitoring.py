"""Alarms on what needs an operator: failed, timed-out and throttled executions, Lambda errors, and
schedule starts that ended in the dead-letter queue. Every alarm notifies the alert topic, which
RecordFailure also publishes to.
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

PERIOD = Duration.minutes(5)
# Lambda errors include the retried transient ones (a vendor's 429), so one alone is not news; failed
# runs alarm through ExecutionsFailed. RecordFailure is the exception: if it fails, no alert is sent.
FUNCTION_ERRORS_PERIOD = Duration.hours(1)
FUNCTION_ERRORS_THRESHOLD = 5


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queue: sqs.IQueue,
        topic: sns.ITopic,
        record_failure: str,
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
            if state == record_failure:
                alarm(f"{state}Errors", function.metric_errors(period=PERIOD, statistic="Sum"),
                      f"{state} itself failed: a failed run may not have been recorded in the ledger or alerted.")
            else:
                alarm(f"{state}Errors", function.metric_errors(period=FUNCTION_ERRORS_PERIOD, statistic="Sum"),
                      f"The {state} Lambda raised {FUNCTION_ERRORS_THRESHOLD}+ errors in an hour (transient ones "
                      "are retried, the rest routed to RecordFailure): a vendor or the code may be misbehaving.",
                      threshold=FUNCTION_ERRORS_THRESHOLD)
        alarm("ScheduleDeadLetters",
              dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
              "A schedule could not start the state machine after its retries; the start is in the "
              "dead-letter queue (the message names the export).")
