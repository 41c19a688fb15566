"""One Glue table per dataset over ``curated/<dataset>/``, with partition projection (no crawler, no MSCK).

The columns come from the dataset's Arrow schema (``Dataset.glue_columns()``), the same one the Parquet
writer uses, so the table and the files cannot drift apart. Partitions are the Hive-style folders
``export=<export>/period=<yyyy-MM>/`` that WriteParquet publishes to.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from report_exporter.datasets.base import PARTITION_KEYS, Dataset

PERIOD_FORMAT = "yyyy-MM"
FIRST_PERIOD = "2020-01"
_COMPLEX = ("map<", "array<", "struct<")


def glue_type(hive: str) -> glue.Type:
    """A Glue column type from a Hive type string, complex ones (``map<string,string>``, …) included."""
    return glue.Schema.custom(input_string=hive, is_primitive=not hive.startswith(_COMPLEX))


def table_prefix(dataset: Dataset) -> str:
    return f"curated/{dataset.name}/"


class DatasetTable(Construct):
    """The Athena table of one dataset. ``exports`` are the configured exports of the dataset's vendor."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        dataset: Dataset,
        database: glue.IDatabase,
        bucket: s3.IBucket,
        exports: Sequence[str],
    ) -> None:
        super().__init__(scope, id_)
        prefix = table_prefix(dataset)
        # Projection needs at least one enum value. With no export of this vendor configured, the dataset
        # name stands in: export names cannot contain '_', so it never matches a real partition.
        export_values = sorted(exports) or [dataset.name]
        (export_key, export_type), (period_key, period_type) = PARTITION_KEYS
        self.table = glue.S3Table(
            self,
            "Table",
            table_name=dataset.name,
            description=dataset.description[:2048],
            database=database,
            storage=glue.S3TableStorage.from_bucket(bucket),
            s3_prefix=prefix,
            data_format=glue.DataFormat.PARQUET,
            # The objects are SSE-S3 encrypted, which Athena reads as is; this flag means client-side (CSE-KMS).
            has_encrypted_data=False,
            columns=[glue.Column(name=name, type=glue_type(hive)) for name, hive in dataset.glue_columns()],
            partition_keys=[
                glue.Column(name=export_key, type=glue_type(export_type)),
                glue.Column(name=period_key, type=glue_type(period_type)),
            ],
            partition_projection={
                export_key: glue.PartitionProjectionConfiguration.enum(values=export_values),
                period_key: glue.PartitionProjectionConfiguration.date(
                    min=FIRST_PERIOD,
                    max="NOW",
                    format=PERIOD_FORMAT,
                    step=glue.DateProjectionStep(interval=1, interval_unit=glue.DateIntervalUnit.MONTHS),
                ),
            },
            parameters={
                # Spelled out so the layout is unambiguous: WriteParquet's curated_key() writes exactly here.
                "storage.location.template": (
                    f"s3://{bucket.bucket_name}/{prefix}{export_key}=${{{export_key}}}/{period_key}=${{{period_key}}}/"
                ),
            },
        )
