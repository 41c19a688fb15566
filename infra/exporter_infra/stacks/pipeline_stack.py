"""STATELESS: functions, the state machine, run cleanup, schedules, the run watch, alarms, alerts, the dashboard.
Safe to destroy and redeploy."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from exporter_infra import nag, names
from exporter_infra.config import StageConfig
from exporter_infra.constructs.dashboard import Dashboard
from exporter_infra.constructs.exporter_functions import ExporterFunctions
from exporter_infra.constructs.monitoring import Monitoring
from exporter_infra.constructs.report_state_machine import ReportStateMachine
from exporter_infra.constructs.run_cleanup import RunCleanup
from exporter_infra.constructs.run_watch import RunWatch
from exporter_infra.constructs.schedules import ExportSchedules
from exporter_infra.stacks.storage_stack import StorageStack

# Functions whose failure means an alert or a cleanup did not happen: one error is worth an alarm.
ALERT_ON_ANY_ERROR = {
    names.RECORD_FAILURE: "RecordFailure itself failed: a failed run may not have been recorded in the ledger or "
                          "alerted.",
    names.END_RUN: "EndRun failed: an execution that failed, timed out or was aborted may still hold its "
                   "outstanding-report slot or ledger lease (and was not alerted). Lambda retries it; what still "
                   "fails lands in the run-cleanup dead-letter queue.",
    names.WATCH_RUNS: "WatchRuns failed: this hour nobody checked for vendor links about to expire or months "
                      "published late.",
}


class PipelineStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, storage: StorageStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        # Failure notices carry export names and error messages, never data or secrets; still encrypted.
        # A customer-managed key, because CloudWatch alarms cannot publish with the AWS-managed SNS key.
        alerts_key = kms.Key(
            self,
            "AlertsKey",
            description="report-exporter: encrypts the alert topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        alerts_key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.alerts = sns.Topic(self, "Alerts", display_name="report-exporter failures", enforce_ssl=True,
                                master_key=alerts_key)
        # StageConfig refuses a stage whose alerts reach nobody unless it says alerts="off".
        if config.alarm_email:
            self.alerts.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        self.functions = ExporterFunctions(
            self,
            "Functions",
            raw_bucket=storage.raw_bucket,
            curated_bucket=storage.curated_bucket,
            ledger=storage.ledger,
            alerts=self.alerts,
            secrets=storage.secrets,
            bundle=config.bundle,
            metrics_namespace=config.names.metrics_namespace,
        )
        # The longest report deadline plus room for download and conversion.
        timeout = Duration.minutes(max(config.max_deadline_minutes + 120, 480))
        self.machine = ReportStateMachine(self, "Export", functions=self.functions, timeout=timeout)
        # Read by `report-exporter backfill` to start executions on the deployed state machine.
        CfnOutput(self, "StateMachineArn", value=self.machine.state_machine.state_machine_arn,
                  description="The export state machine (backfill starts executions here)")
        CfnOutput(self, "WriteParquetFunctionName", value=self.functions.by_state[names.WRITE_PARQUET].function_name,
                  description="Rebuilds Parquet from kept raw files (report-exporter replay)")
        self._acknowledge_state_machine_role()
        self.cleanup = RunCleanup(self, "RunCleanup", state_machine=self.machine.state_machine,
                                  end_run=self.functions.end_run)

        self.schedules = ExportSchedules(
            self,
            "Schedules",
            exports=config.deployed_exports.exports,
            state_machine=self.machine.state_machine,
            group_name=config.names.schedule_group,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=self.machine.state_machine,
            functions=self.functions.by_name,
            schedule_dead_letters=self.schedules.dead_letter_queue,
            cleanup_dead_letters=self.cleanup.dead_letter_queue,
            topic=self.alerts,
            alert_on_any_error=ALERT_ON_ANY_ERROR,
            metrics_namespace=config.names.metrics_namespace,
            link_margin_hours=config.link_margin_hours,
        )
        self.watch = RunWatch(
            self,
            "RunWatch",
            exports=config.deployed_exports.exports,
            watch_runs=self.functions.watch_runs,
            state_machine=self.machine.state_machine,
            link_margin_hours=config.link_margin_hours,
        )
        self.dashboard = Dashboard(
            self,
            "Operations",
            dashboard_name=config.names.dashboard,
            metrics_namespace=config.names.metrics_namespace,
            state_machine=self.machine.state_machine,
            functions=self.functions.by_name,
            queues={"schedules": self.schedules.dead_letter_queue, "run cleanup": self.cleanup.dead_letter_queue},
            alarms=list(self.monitoring.alarms.values()),
            link_margin_hours=config.link_margin_hours,
        )

    def _acknowledge_state_machine_role(self) -> None:
        machine = self.machine.state_machine
        nag.acknowledge(
            machine.role, "AwsSolutions-IAM5[Resource::*]",
            "Execution logging to CloudWatch Logs (logs:CreateLogDelivery, PutResourcePolicy, DescribeLogGroups, "
            "...) and X-Ray tracing (xray:PutTraceSegments, GetSamplingRules, ...) support no resource-level "
            "permissions; Step Functions documents these statements with Resource '*'.",
        )
        for state, function in self.functions.by_state.items():
            nag.acknowledge(
                machine.role, f"AwsSolutions-IAM5[Resource::{nag.arn_reference(function, seen_from=machine)}:*]",
                f"LambdaInvoke grants lambda:InvokeFunction on the {state} function's versions and aliases "
                "(<arn>:*) besides the function itself; still only that one function.",
            )
