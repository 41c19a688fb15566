"""The seven Lambdas, one per task state plus EndRun: arm64, python3.12, JSON logs, one role each, least privilege.

Each function has its own role with no managed policy: it may write to its own log group and send
X-Ray traces, plus exactly what its step does (see the grants below). Timeouts come from
``report_exporter.limits``, which also sizes the handlers' call budgets and the ledger's leases.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from exporter_infra import nag, names
from exporter_infra.bundling import lambda_code
from exporter_infra.constructs.export_secrets import ExportSecrets
from report_exporter import limits

_MEMORY = {
    names.PLAN_RUN: 256,
    names.REQUEST_REPORT: 256,
    names.CHECK_REPORT: 256,
    names.DOWNLOAD_REPORT: 512,
    # One full vCPU (Lambda allots CPU by memory): the Parquet conversion is CPU-bound (perf-baseline.md).
    names.WRITE_PARQUET: 1769,
    names.RECORD_FAILURE: 256,
    names.END_RUN: 256,
}
RAW_OBJECTS = "raw/*"
CURATED_OBJECTS = "curated/*"


class ExporterFunctions(Construct):
    """Builds the functions and grants each exactly what its step does.

    ``by_name`` holds all of them; ``by_state`` only the state machine's tasks (EndRun is not one: an
    EventBridge rule invokes it, never the state machine).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        ledger: dynamodb.ITable,
        alerts: sns.ITopic,
        secrets: ExportSecrets,
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
        self.by_name: dict[str, lambda_.Function] = {}
        for state, handler in names.HANDLERS.items():
            log_group = logs.LogGroup(
                self, f"{state}Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY
            )
            role = iam.Role(
                self,
                f"{state}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"report-exporter {state} Lambda",
            )
            # Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this function's group only.
            log_group.grant_write(role)
            fn = lambda_.Function(
                self,
                state,
                role=role,
                runtime=lambda_.Runtime.PYTHON_3_12,
                architecture=lambda_.Architecture.ARM_64,
                handler=handler,
                code=parquet if state == names.WRITE_PARQUET else common,
                memory_size=_MEMORY[state],
                timeout=Duration.seconds(limits.FUNCTION_TIMEOUT_SECONDS[state]),
                environment=environment,
                logging_format=lambda_.LoggingFormat.JSON,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                description=f"report-exporter {state}",
            )
            self.by_name[state] = fn
            _acknowledge_function_findings(fn)
        self.by_state = {state: fn for state, fn in self.by_name.items() if state != names.END_RUN}
        self.end_run = self.by_name[names.END_RUN]

        vendor_facing = [names.REQUEST_REPORT, names.CHECK_REPORT, names.DOWNLOAD_REPORT]
        for state in vendor_facing:
            fn = self.by_state[state]
            # GetSecretValue on exactly the configured exports' secrets; values never enter env vars.
            secrets.grant_read(fn)
            ledger.grant_read_write_data(fn)
        # Object grants are limited to the prefixes the functions write (aws/s3.py key builders).
        raw_bucket.grant_put(self.by_state[names.DOWNLOAD_REPORT], RAW_OBJECTS)
        raw_bucket.grant_read(self.by_state[names.WRITE_PARQUET], RAW_OBJECTS)
        curated_bucket.grant_read_write(self.by_state[names.WRITE_PARQUET], CURATED_OBJECTS)
        curated_bucket.grant_delete(self.by_state[names.WRITE_PARQUET], CURATED_OBJECTS)
        _acknowledge_bucket_grant(self.by_state[names.DOWNLOAD_REPORT], raw_bucket, RAW_OBJECTS, ["s3:Abort*"],
                                  "writes new raw")
        _acknowledge_bucket_grant(self.by_state[names.WRITE_PARQUET], raw_bucket, RAW_OBJECTS,
                                  ["s3:GetObject*", "s3:GetBucket*", "s3:List*"], "reads raw")
        _acknowledge_bucket_grant(self.by_state[names.WRITE_PARQUET], curated_bucket, CURATED_OBJECTS,
                                  ["s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*", "s3:DeleteObject*"],
                                  "reads, stages, publishes and deletes curated")
        for state in (names.PLAN_RUN, names.WRITE_PARQUET, names.RECORD_FAILURE, names.END_RUN):
            ledger.grant_read_write_data(self.by_name[state])
        # RecordFailure reports a failed run; EndRun a run that died without it (failed, timed out, aborted).
        for state in (names.RECORD_FAILURE, names.END_RUN):
            fn = self.by_name[state]
            alerts.grant_publish(fn)
            nag.acknowledge(
                fn.role or fn, "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                "Publishing to the KMS-encrypted alert topic (Topic.grant_publish) needs data keys of the topic's "
                "key (GenerateDataKey, GenerateDataKeyWithoutPlaintext); the statement is limited to that one key.",
            )

    @property
    def functions(self) -> list[lambda_.Function]:
        return list(self.by_name.values())


def _acknowledge_function_findings(fn: lambda_.Function) -> None:
    nag.acknowledge(fn, "AwsSolutions-L1",
                    "python3.12 is pinned on purpose: the bundles are pip-built from cp312 manylinux wheels "
                    "(pyarrow) and tested on 3.12; moving to a newer runtime is a deliberate, tested change.")
    nag.acknowledge(fn.role or fn, "AwsSolutions-IAM5[Resource::*]",
                    "xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) have no resource-level "
                    "permissions; they are the role's only '*' resource.")


# Why each wildcard of the CDK bucket grants is needed; acknowledged per finding on the function's role.
_GRANT_ACTION_REASONS = {
    "s3:Abort*": "s3:AbortMultipartUpload (grant_put): streamed uploads are multipart and must be abortable "
                 "when a download or conversion fails",
    "s3:GetObject*": "grant_read: GetObject (streaming and ranged reads, HeadObject during the publish copy) "
                     "on this prefix only",
    "s3:GetBucket*": "part of grant_read's action set: bucket metadata reads (location, versioning, encryption) "
                     "of this one bucket, no object data",
    "s3:List*": "grant_read: ListBucket (and multipart-upload listings) on this one bucket, so that a missing key "
                "answers 404 (NoSuchKey) instead of 403",
    "s3:DeleteObject*": "grant_delete: the staged Parquet object is deleted after it is copied over the final key",
}


def _acknowledge_bucket_grant(fn: lambda_.Function, bucket: s3.IBucket, prefix: str, actions: list[str],
                              what: str) -> None:
    role = fn.role or fn
    objects = f"{nag.arn_reference(bucket, seen_from=fn)}/{prefix}"
    nag.acknowledge(role, f"AwsSolutions-IAM5[Resource::{objects}]",
                    f"{fn.node.id} {what} objects under {prefix} only; their keys are per export and period "
                    "(aws/s3.py), so they cannot be listed in advance")
    for action in actions:
        nag.acknowledge(role, f"AwsSolutions-IAM5[Action::{action}]", _GRANT_ACTION_REASONS[action])
