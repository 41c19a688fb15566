"""The Athena workgroup users query in, and the saved queries of every dataset and of the FOCUS view.

The workgroup's settings are enforced (a client cannot override them): results go encrypted (SSE-S3) to
the dedicated results bucket, every query is cut off past ``scanned_bytes_cutoff``, engine version 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_s3 as s3
from constructs import Construct

from report_exporter.datasets.base import Dataset, NamedQuery

ENGINE_VERSION = "Athena engine version 3"
RESULTS_PREFIX = "results/"


class AthenaWorkgroup(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        database_name: str,
        results_bucket: s3.IBucket,
        scanned_bytes_cutoff: int,
        datasets: Iterable[Dataset],
        queries: Iterable[NamedQuery] = (),
    ) -> None:
        super().__init__(scope, id_)
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=name,
            description="report-exporter: query the exported vendor usage (Glue database "
                        f"{database_name})",
            state="ENABLED",
            # Lets CloudFormation delete or replace the workgroup even when it holds saved queries.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=scanned_bytes_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results_bucket.bucket_name}/{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=Stack.of(self).account,
                ),
            ),
        )
        self.named_queries: list[athena.CfnNamedQuery] = []
        # Each dataset's queries, then ``queries`` (over several tables or views, e.g. the FOCUS view).
        for query in chain((q for dataset in datasets for q in dataset.queries), queries):
            named = athena.CfnNamedQuery(
                self,
                query.name,
                name=query.name,
                description=query.description[:1024],
                database=database_name,
                work_group=name,
                query_string=query.sql,
            )
            # By name, not Ref: so the dependency is explicit.
            named.add_resource_dependency(self.workgroup)
            self.named_queries.append(named)
