"""STATELESS: functions, the state machine, alerts. Safe to destroy and redeploy at any time."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_sns as sns
from constructs import Construct

from exporter_infra.config import StageConfig
from exporter_infra.constructs.exporter_functions import ExporterFunctions
from exporter_infra.constructs.report_state_machine import ReportStateMachine
from exporter_infra.stacks.storage_stack import StorageStack


class PipelineStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, storage: StorageStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.alerts = sns.Topic(self, "Alerts", display_name="report-exporter failures", enforce_ssl=True)
        secret_arns = [
            self.format_arn(service="secretsmanager", resource="secret", resource_name=f"{e.secret_name}-??????",
                            arn_format=__import__("aws_cdk").ArnFormat.COLON_RESOURCE_NAME)
            for e in config.exports.exports
        ]
        self.functions = ExporterFunctions(
            self,
            "Functions",
            raw_bucket=storage.raw_bucket,
            curated_bucket=storage.curated_bucket,
            ledger=storage.ledger,
            alerts=self.alerts,
            secret_arns=sorted(set(secret_arns)),
            bundle=config.bundle,
        )
        # The longest report deadline plus room for download and conversion.
        timeout = Duration.minutes(max(config.max_deadline_minutes + 120, 480))
        self.machine = ReportStateMachine(self, "Export", functions=self.functions, timeout=timeout)
