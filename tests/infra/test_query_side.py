"""Glue tables generated from the dataset schemas, partition projection, the Athena workgroup and queries."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from report_exporter.datasets.base import PARTITION_KEYS
from report_exporter.datasets.registry import DATASETS
from report_exporter.focus.queries import QUERIES as FOCUS_QUERIES
from tests.infra.conftest import Synth
from tests.infra.support import SCANNED_BYTES_CUTOFF, joined, logical_ids, resources


def _tables(storage: Template) -> dict[str, dict[str, Any]]:
    """The Glue tables over Parquet (the views are VIRTUAL_VIEW tables: tests/infra/test_focus_view.py)."""
    return {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]
        for t in resources(storage, "AWS::Glue::Table")
        if t["Properties"]["TableInput"]["TableType"] != "VIRTUAL_VIEW"
    }


def _curated_bucket(storage: Template) -> str:
    (curated,) = [
        logical
        for logical, bucket in storage.find_resources("AWS::S3::Bucket").items()
        if any(rule.get("Prefix") == "curated/_staging/"
               for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", []))
    ]
    return curated


def test_glue_database_and_workgroup_are_named_for_the_stage(synth: Synth) -> None:
    (database,) = resources(synth.storage, "AWS::Glue::Database")
    assert database["Properties"]["DatabaseInput"]["Name"] == synth.config.names.glue_database == "report_exporter_test"
    (workgroup,) = resources(synth.storage, "AWS::Athena::WorkGroup")
    assert workgroup["Properties"]["Name"] == synth.config.names.athena_workgroup == "report-exporter-test"


def test_one_table_per_dataset(storage: Template) -> None:
    assert set(_tables(storage)) == set(DATASETS)
    (database,) = logical_ids(storage, "AWS::Glue::Database")
    assert all(t["DatabaseName"] == {"Ref": database} for t in _tables(storage).values())


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_table_columns_are_the_parquet_writer_schema(storage: Template, name: str) -> None:
    table = _tables(storage)[name]["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == DATASETS[name].glue_columns()
    # The writer's schema, in order (names from the Arrow schema itself, not from glue_columns()).
    assert [c[0] for c in columns] == DATASETS[name].schema.names


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_table_reads_parquet_under_the_dataset_prefix(storage: Template, name: str) -> None:
    descriptor = _tables(storage)[name]["TableInput"]["StorageDescriptor"]
    bucket = _curated_bucket(storage)
    assert joined(descriptor["Location"]) == f"s3://{{{bucket}}}/curated/{name}/"
    assert descriptor["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    serde = descriptor["SerdeInfo"]["SerializationLibrary"]
    assert serde == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert _tables(storage)[name]["TableInput"]["TableType"] == "EXTERNAL_TABLE"


def test_no_table_reads_the_raw_bucket_so_manifests_are_never_rows(storage: Template) -> None:
    # Raw files keep a <key>.manifest.json beside them (models/manifest.py): Athena must never read raw/.
    curated = _curated_bucket(storage)
    locations = [joined(t["TableInput"]["StorageDescriptor"]["Location"]) for t in _tables(storage).values()]
    assert locations and all(location.startswith(f"s3://{{{curated}}}/curated/") for location in locations)
    assert not [location for location in locations if "raw/" in location]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_partitions_are_export_and_period_with_projection(synth: Synth, name: str) -> None:
    table = _tables(synth.storage)[name]["TableInput"]
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == list(PARTITION_KEYS)
    assert [k["Name"] for k in table["PartitionKeys"]] == ["export", "period"]
    params = table["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.export.type"] == "enum"
    assert params["projection.period.type"] == "date"
    assert params["projection.period.format"] == "yyyy-MM"
    assert params["projection.period.range"] == "2020-01,NOW"
    assert params["projection.period.interval"] == "1"
    assert params["projection.period.interval.unit"] == "MONTHS"
    # Hive-style layout, as WriteParquet's curated_key() writes it.
    bucket = _curated_bucket(synth.storage)
    assert joined(params["storage.location.template"]) == (
        f"s3://{{{bucket}}}/curated/{name}/export=${{export}}/period=${{period}}/"
    )


def test_export_projection_lists_the_configured_exports_of_the_vendor(synth: Synth) -> None:
    tables = _tables(synth.storage)
    for name, dataset in DATASETS.items():
        configured = sorted(e.name for e in synth.config.exports.exports if e.vendor_name is dataset.vendor)
        values = tables[name]["TableInput"]["Parameters"]["projection.export.values"].split(",")
        # No export of the vendor configured: the dataset name stands in (it can never be an export name).
        assert values == (configured or [name])
    assert tables["particle_data_operations"]["TableInput"]["Parameters"]["projection.export.values"] == (
        "particle-fleet,particle-sandbox"
    )


def test_curated_layout_matches_the_writer_keys() -> None:
    from report_exporter.aws.s3 import curated_key

    assert curated_key("kore_usage_records", "kore-account", "2026-01") == (
        "curated/kore_usage_records/export=kore-account/period=2026-01/data.parquet"
    )


def test_workgroup_enforces_encrypted_results_and_a_cutoff(storage: Template) -> None:
    (workgroup,) = resources(storage, "AWS::Athena::WorkGroup")
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == SCANNED_BYTES_CUTOFF
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"
    results = config["ResultConfiguration"]
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"
    location = joined(results["OutputLocation"])
    bucket_id = location.removeprefix("s3://{").split("}")[0]
    bucket = storage.find_resources("AWS::S3::Bucket")[bucket_id]["Properties"]
    assert bucket_id != _curated_bucket(storage)
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert any("ExpirationInDays" in rule for rule in bucket["LifecycleConfiguration"]["Rules"])


def test_one_named_query_per_dataset_query(storage: Template) -> None:
    (workgroup_id,) = logical_ids(storage, "AWS::Athena::WorkGroup")
    (workgroup,) = resources(storage, "AWS::Athena::WorkGroup")
    (database,) = logical_ids(storage, "AWS::Glue::Database")
    queries = {q["Properties"]["Name"]: q for q in resources(storage, "AWS::Athena::NamedQuery")}
    expected = {query.name: query for dataset in DATASETS.values() for query in dataset.queries}
    expected |= {query.name: query for query in FOCUS_QUERIES}
    assert set(queries) == set(expected)
    for name, query in queries.items():
        assert query["Properties"]["QueryString"] == expected[name].sql
        assert query["Properties"]["Database"] == {"Ref": database}
        assert query["Properties"]["WorkGroup"] == workgroup["Properties"]["Name"]
        assert workgroup_id in query["DependsOn"]
