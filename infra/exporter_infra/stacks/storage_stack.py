"""STATEFUL: buckets, the job ledger, secrets, the query side. Termination-protected in prod only.

Redeploying or destroying the pipeline stack keeps all of this. The query side (Glue database, one
table per dataset, the Athena workgroup, its results bucket, the saved queries) lives here too: it
describes the data, not the pipeline.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from exporter_infra.config import StageConfig
from exporter_infra.constructs.athena_table import DatasetTable
from exporter_infra.constructs.athena_workgroup import AthenaWorkgroup
from exporter_infra.constructs.export_secrets import ExportSecrets
from exporter_infra.constructs.focus_view import FocusView
from report_exporter.aws.s3 import STAGING_PREFIX
from report_exporter.datasets.registry import DATASETS
from report_exporter.focus.queries import QUERIES as FOCUS_QUERIES


def _bucket(scope: Construct, id_: str, *, versioned: bool, logs: s3.IBucket | None, **kwargs: Any) -> s3.Bucket:
    return s3.Bucket(
        scope,
        id_,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=versioned,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        server_access_logs_bucket=logs,
        server_access_logs_prefix=f"{id_.lower()}/" if logs else None,
        **kwargs,
    )


class StorageStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, **kwargs: Any) -> None:
        stage = config.names
        super().__init__(scope, id_, termination_protection=stage.is_prod, **kwargs)
        self.access_logs = _bucket(self, "AccessLogs", versioned=False, logs=None, lifecycle_rules=[
            s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))
        ])
        # Raw vendor files are the source of truth: versioned, moved to cheaper storage as they age.
        self.raw_bucket = _bucket(self, "Raw", versioned=True, logs=self.access_logs, lifecycle_rules=[
            s3.LifecycleRule(
                id="raw-tiering",
                transitions=[
                    s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(90)),
                    s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                                  transition_after=Duration.days(365)),
                ],
                noncurrent_version_expiration=Duration.days(365),
                abort_incomplete_multipart_upload_after=Duration.days(2),
            )
        ])
        self.curated_bucket = _bucket(self, "Curated", versioned=True, logs=self.access_logs, lifecycle_rules=[
            s3.LifecycleRule(
                id="curated-cleanup",
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(2),
            ),
            s3.LifecycleRule(id="staging-cleanup", prefix=STAGING_PREFIX, expiration=Duration.days(2)),
        ])
        self.ledger = dynamodb.TableV2(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Read by `report-exporter status` (the operator's view of every export and month).
        CfnOutput(self, "LedgerTableName", value=self.ledger.table_name, description="The job ledger table")
        # Read by `report-exporter replay`: each raw file's manifest says what it answers.
        CfnOutput(self, "RawBucketName", value=self.raw_bucket.bucket_name,
                  description="The raw vendor files and their manifests (report-exporter replay)")
        self.secrets = ExportSecrets(self, "Secrets", exports=config.deployed_exports.exports,
                                     create=config.create_secrets)

        # Query side.
        self.database = glue.Database(
            self,
            "Database",
            database_name=stage.glue_database,
            description="report-exporter: one table per dataset over the curated Parquet files",
        )
        self.tables: dict[str, DatasetTable] = {}
        for dataset in DATASETS.values():
            exports = [e.name for e in config.exports.exports if e.vendor_name is dataset.vendor]
            self.tables[dataset.name] = DatasetTable(
                self, f"Table-{dataset.name}", dataset=dataset, database=self.database,
                bucket=self.curated_bucket, exports=exports,
            )
        # The cross-vendor view over every table: FOCUS columns, priced by the exports' rate cards.
        self.focus_view = FocusView(
            self, "FocusView", database=self.database, database_name=stage.glue_database,
            exports=config.exports.exports, tables=self.tables.values(),
        )
        self.query_results = _bucket(self, "QueryResults", versioned=False, logs=self.access_logs, lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-query-results",
                expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ])
        self.athena = AthenaWorkgroup(
            self,
            "Athena",
            name=stage.athena_workgroup,
            database_name=self.database.database_name,
            results_bucket=self.query_results,
            scanned_bytes_cutoff=config.scanned_bytes_cutoff,
            datasets=DATASETS.values(),
            queries=FOCUS_QUERIES,
        )
