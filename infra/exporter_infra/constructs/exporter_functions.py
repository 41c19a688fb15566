"""The eight Lambdas, one per task state plus EndRun and WatchRuns: arm64, python3.12, JSON logs, one role each,
least privilege.

Each function has its own role with no managed policy: it may write to its own log group and send
X-Ray traces, plus exactly what its step does. ``ACCESS`` says what that is, function by function, and
both the function's environment and its grants follow from it, so neither can hold more than the other.
Timeouts come from ``report_exporter.limits``, which also sizes the handlers' call budgets and the
ledger's leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
from report_exporter.aws.s3 import CURATED_PREFIX, RAW_PREFIX, STAGING_PREFIX

_MEMORY = {
    names.PLAN_RUN: 256,
    names.REQUEST_REPORT: 256,
    names.CHECK_REPORT: 256,
    names.DOWNLOAD_REPORT: 512,
    # One full vCPU (Lambda allots CPU by memory): the Parquet conversion is CPU-bound (1M
    # HERE rows take ~1.4 CPU-seconds); 1,769 MB is where Lambda allots one full vCPU.
    names.WRITE_PARQUET: 1769,
    names.RECORD_FAILURE: 256,
    names.END_RUN: 256,
    names.WATCH_RUNS: 256,
}
# Two bundles, each with only what its handlers import: pyarrow for WriteParquet, httpx for the others.
PARQUET_HANDLERS = (names.HANDLERS[names.WRITE_PARQUET],)
COMMON_HANDLERS = tuple(handler for handler in names.HANDLERS.values() if handler not in PARQUET_HANDLERS)
PARQUET_REQUIREMENTS = "requirements-parquet.txt"
COMMON_REQUIREMENTS = "requirements.txt"
RAW_OBJECTS = f"{RAW_PREFIX}*"
CURATED_OBJECTS = f"{CURATED_PREFIX}*"
STAGED_OBJECTS = f"{STAGING_PREFIX}*"
# Every call the job ledger makes (aws/ledger.py: conditional GetItem, PutItem, UpdateItem on single items);
# no Scan, Query, batch or delete. tests/infra checks this against the module's calls.
LEDGER_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
# Set for every function: Powertools' logger reads them (and telemetry.py the stage's metrics namespace).
COMMON_ENVIRONMENT = {"POWERTOOLS_SERVICE_NAME": "report-exporter", "POWERTOOLS_LOG_LEVEL": "INFO"}
METRICS_NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"


@dataclass(frozen=True)
class Access:
    """What one function's step touches. Its environment variables and its grants both follow from this.

    Attributes:
        ledger: the job ledger's items (``LEDGER_TABLE``).
        ledger_read: only read the job ledger's items (GetItem; ``LEDGER_TABLE``).
        secrets: GetSecretValue on the configured exports' secrets (names come in the execution input).
        raw: ``"put"`` new raw objects and resume their uploads (DownloadReport) or ``"read"`` them
            (WriteParquet) (``RAW_BUCKET``).
        curated: read and put curated objects, delete only staged ones (``CURATED_BUCKET``).
        alerts: publish to the alert topic (``ALERT_TOPIC_ARN``).
    """

    ledger: bool = False
    ledger_read: bool = False
    secrets: bool = False
    raw: Literal["", "put", "read"] = ""
    curated: bool = False
    alerts: bool = False


ACCESS: dict[str, Access] = {
    # Plans the run from its input and the clock alone.
    names.PLAN_RUN: Access(),
    names.REQUEST_REPORT: Access(ledger=True, secrets=True),
    names.CHECK_REPORT: Access(ledger=True, secrets=True),
    names.DOWNLOAD_REPORT: Access(ledger=True, secrets=True, raw="put"),
    names.WRITE_PARQUET: Access(ledger=True, raw="read", curated=True),
    # RecordFailure reports a failed run; EndRun a run that died without it (failed, timed out, aborted).
    names.RECORD_FAILURE: Access(ledger=True, alerts=True),
    names.END_RUN: Access(ledger=True, alerts=True),
    # Reads the recent months of each export and alerts what is at risk; writes nothing.
    names.WATCH_RUNS: Access(ledger_read=True, alerts=True),
}


class ExporterFunctions(Construct):
    """Builds the functions and grants each exactly what its step does (``ACCESS``).

    ``by_name`` holds all of them; ``by_state`` only the state machine's tasks (EndRun and WatchRuns are
    not: EventBridge rules invoke them, never the state machine).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        ledger: dynamodb.ITableV2,
        alerts: sns.ITopic,
        secrets: ExportSecrets,
        bundle: bool,
        metrics_namespace: str,
    ) -> None:
        super().__init__(scope, id_)
        self._metrics_namespace = metrics_namespace
        self._raw_bucket = raw_bucket
        self._curated_bucket = curated_bucket
        self._ledger = ledger
        self._alerts = alerts
        self._secrets = secrets
        common = lambda_code(COMMON_REQUIREMENTS, handlers=COMMON_HANDLERS, bundle=bundle)
        parquet = lambda_code(PARQUET_REQUIREMENTS, handlers=PARQUET_HANDLERS, bundle=bundle)
        self.by_name: dict[str, lambda_.Function] = {}
        for state, handler in names.HANDLERS.items():
            access = ACCESS[state]
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
                environment=self._environment(access),
                logging_format=lambda_.LoggingFormat.JSON,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                description=f"report-exporter {state}",
            )
            self.by_name[state] = fn
            _acknowledge_function_findings(fn)
            self._grant(fn, access)
        self.by_state = {state: fn for state, fn in self.by_name.items()
                         if state not in (names.END_RUN, names.WATCH_RUNS)}
        self.end_run = self.by_name[names.END_RUN]
        self.watch_runs = self.by_name[names.WATCH_RUNS]

    def _environment(self, access: Access) -> dict[str, str]:
        """The variables the handler asks for (``settings().need(...)``) and nothing else; never a secret value."""
        environment = {**COMMON_ENVIRONMENT, METRICS_NAMESPACE_VARIABLE: self._metrics_namespace}
        if access.ledger or access.ledger_read:
            environment[names.ENV_LEDGER_TABLE] = self._ledger.table_name
        if access.raw:
            environment[names.ENV_RAW_BUCKET] = self._raw_bucket.bucket_name
        if access.curated:
            environment[names.ENV_CURATED_BUCKET] = self._curated_bucket.bucket_name
        if access.alerts:
            environment[names.ENV_ALERT_TOPIC_ARN] = self._alerts.topic_arn
        return environment

    def _grant(self, fn: lambda_.Function, access: Access) -> None:
        if access.ledger:
            self._ledger.grant(fn, *LEDGER_ACTIONS)
        elif access.ledger_read:
            self._ledger.grant(fn, "dynamodb:GetItem")
        if access.secrets:
            # GetSecretValue on exactly the configured exports' secrets; values never enter env vars. Not
            # narrower: one function serves every export, and which one arrives only with the execution input.
            self._secrets.grant_read(fn)
        # Object grants are limited to the prefixes the functions use (aws/s3.py key builders).
        if access.raw == "put":
            self._raw_bucket.grant_put(fn, RAW_OBJECTS)
            # A resumed download checks the parts its upload kept (ListParts) and reads the completed object
            # back once for its sha256 (aws/s3.py ResumableMultipartWriter): these two actions, not grant_read.
            fn.add_to_role_policy(iam.PolicyStatement(
                actions=["s3:ListMultipartUploadParts", "s3:GetObject"],
                resources=[self._raw_bucket.arn_for_objects(RAW_OBJECTS)]))
            _acknowledge_bucket_grant(fn, self._raw_bucket, RAW_OBJECTS, ["s3:Abort*"],
                                      "writes new raw (and resumes their uploads)")
        elif access.raw == "read":
            self._raw_bucket.grant_read(fn, RAW_OBJECTS)
            _acknowledge_bucket_grant(fn, self._raw_bucket, RAW_OBJECTS,
                                      ["s3:GetObject*", "s3:GetBucket*", "s3:List*"], "reads raw")
        if access.curated:
            self._curated_bucket.grant_read(fn, CURATED_OBJECTS)
            self._curated_bucket.grant_put(fn, CURATED_OBJECTS)
            _acknowledge_bucket_grant(fn, self._curated_bucket, CURATED_OBJECTS,
                                      ["s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*"],
                                      "stages, publishes (copies) and reads back")
            # Not grant_delete (s3:DeleteObject* on curated/*, which in a versioned bucket includes
            # DeleteObjectVersion): only the staged copy is ever deleted, after it is published or on failure.
            fn.add_to_role_policy(iam.PolicyStatement(
                actions=["s3:DeleteObject"], resources=[self._curated_bucket.arn_for_objects(STAGED_OBJECTS)]))
            _acknowledge_bucket_grant(fn, self._curated_bucket, STAGED_OBJECTS, [],
                                      "deletes (s3:DeleteObject, never an object version) its own staged")
        if access.alerts:
            self._alerts.grant_publish(fn)
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
