"""EndRun: what an execution that died outside the state machine's own error handling leaves behind.

A run that fails, times out or is aborted may still hold an outstanding-report slot or a ledger lease,
and RecordFailure never ran for a timeout or an abort. The state machine cannot react to its own end,
so an EventBridge rule on the default bus hands every such "Step Functions Execution Status Change"
of this state machine to EndRun.

Two retry layers, one dead-letter queue: EventBridge retries delivering the event to Lambda's
asynchronous queue (the target's retry policy and dead-letter queue cover only that), then Lambda
retries EndRun's own errors and timeouts (its asynchronous invoke config), sending what still fails
to the same queue. Either way a message there is a run nobody cleaned up; it is alarmed on.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from exporter_infra import nag

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
# A SUCCEEDED run reached Published through its own steps; only these can leave a slot or lease behind.
ENDED_BADLY = ["FAILED", "TIMED_OUT", "ABORTED"]
DELIVERY_RETRY_ATTEMPTS = 8
# Both layers give up after this long: a slot or lease freed later than that has long expired anyway.
MAX_EVENT_AGE = Duration.hours(6)
# Lambda's maximum for asynchronous invocations.
FUNCTION_RETRY_ATTEMPTS = 2


class RunCleanup(Construct):
    """The rule that invokes EndRun for executions that ended badly, and the queue of those it could not."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        state_machine: sfn.IStateMachine,
        end_run: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, id_)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dead_letter_queue, "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the EndRun rule target and of EndRun's failed "
            "asynchronous invocations; nothing consumes it but an operator, it is alarmed on and needs no DLQ.",
        )
        # EndRun's own errors and timeouts, once Lambda's retries are spent: the event and the error go to the queue.
        lambda_.EventInvokeConfig(
            self,
            "EndRunAsyncInvoke",
            function=end_run,
            retry_attempts=FUNCTION_RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        self.rule = events.Rule(
            self,
            "ExecutionEndedBadly",
            description="report-exporter: an export run failed, timed out or was aborted; EndRun releases "
                        "what it held",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[EXECUTION_STATUS_CHANGE],
                detail={"status": ENDED_BADLY, "stateMachineArn": [state_machine.state_machine_arn]},
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                end_run,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=DELIVERY_RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
