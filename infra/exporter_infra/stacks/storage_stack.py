"""STATEFUL: buckets, the job ledger, secrets. Termination-protected; redeploying the pipeline keeps them."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from exporter_infra.config import StageConfig


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
        super().__init__(scope, id_, termination_protection=config.stage == "prod", **kwargs)
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
            s3.LifecycleRule(id="staging-cleanup", prefix="curated/_staging/", expiration=Duration.days(2)),
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
