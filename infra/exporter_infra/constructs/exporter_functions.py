"""The six Lambdas, one per state: arm64, python3.12, JSON logs, one role each, least privilege."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from exporter_infra import names
from exporter_infra.bundling import lambda_code

_MEMORY = {
    names.PLAN_RUN: 256,
    names.REQUEST_REPORT: 256,
    names.CHECK_REPORT: 256,
    names.DOWNLOAD_REPORT: 512,
    # One full vCPU (Lambda allots CPU by memory): the Parquet conversion is CPU-bound (perf-baseline.md).
    names.WRITE_PARQUET: 1769,
    names.RECORD_FAILURE: 256,
}
_TIMEOUT = {
    names.DOWNLOAD_REPORT: Duration.minutes(15),
    names.WRITE_PARQUET: Duration.minutes(15),
}


class ExporterFunctions(Construct):
    """Builds the functions and grants each exactly what its step does."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        ledger: dynamodb.ITable,
        alerts: sns.ITopic,
        secret_arns: list[str],
        bundle: bool,
    ) -> None:
        super().__init__(scope, id_)
        common = lambda_code("requirements.txt", bundle=bundle)
        parquet = lambda_code("requirements-parquet.txt", bundle=bundle)
        environment = {
            names.ENV_RAW_BUCKET: raw_bucket.bucket_name,
            names.ENV_CURATED_BUCKET: curated_bucket.bucket_name,
            names.ENV_LEDGER_TABLE: ledger.table_name,
            names.ENV_ALERT_TOPIC_ARN: alerts.topic_arn,
            "POWERTOOLS_SERVICE_NAME": "report-exporter",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.by_state: dict[str, lambda_.Function] = {}
        for state, handler in names.HANDLERS.items():
            log_group = logs.LogGroup(
                self, f"{state}Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY
            )
            fn = lambda_.Function(
                self,
                state,
                runtime=lambda_.Runtime.PYTHON_3_12,
                architecture=lambda_.Architecture.ARM_64,
                handler=handler,
                code=parquet if state == names.WRITE_PARQUET else common,
                memory_size=_MEMORY[state],
                timeout=_TIMEOUT.get(state, Duration.seconds(60)),
                environment=environment,
                logging_format=lambda_.LoggingFormat.JSON,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                description=f"report-exporter {state}",
            )
            self.by_state[state] = fn

        vendor_facing = [names.REQUEST_REPORT, names.CHECK_REPORT, names.DOWNLOAD_REPORT]
        for state in vendor_facing:
            fn = self.by_state[state]
            if secret_arns:
                fn.add_to_role_policy(
                    iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=secret_arns)
                )
            ledger.grant_read_write_data(fn)
        raw_bucket.grant_put(self.by_state[names.DOWNLOAD_REPORT])
        raw_bucket.grant_read(self.by_state[names.WRITE_PARQUET])
        curated_bucket.grant_read_write(self.by_state[names.WRITE_PARQUET])
        curated_bucket.grant_delete(self.by_state[names.WRITE_PARQUET])
        for state in (names.PLAN_RUN, names.WRITE_PARQUET, names.RECORD_FAILURE):
            ledger.grant_read_write_data(self.by_state[state])
        alerts.grant_publish(self.by_state[names.RECORD_FAILURE])

    @property
    def functions(self) -> list[lambda_.Function]:
        return list(self.by_state.values())
