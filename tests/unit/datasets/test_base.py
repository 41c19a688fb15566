"""The dataset contract: the Glue types Athena reads, the ``extra`` map, rows dated outside the window."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from report_exporter.aws.s3 import curated_key
from report_exporter.datasets.base import (
    PARTITION_KEYS,
    ReadContext,
    constant,
    dates_outside,
    extra_map,
    hive_type,
    instants_outside,
)
from report_exporter.datasets.registry import DATASETS
from report_exporter.models.exports import SenetExport, month_window
from report_exporter.models.manifest import RawManifest
from report_exporter.models.payloads import RawObject
from tests.fakes import plan_for


@pytest.mark.parametrize(("dtype", "hive"), [
    (pa.string(), "string"),
    (pa.large_string(), "string"),
    (pa.int64(), "bigint"),
    (pa.int32(), "int"),
    (pa.int16(), "smallint"),
    (pa.int8(), "tinyint"),
    (pa.bool_(), "boolean"),
    (pa.float64(), "double"),
    (pa.float32(), "float"),
    (pa.date32(), "date"),
    (pa.timestamp("ms", tz="UTC"), "timestamp"),
    (pa.decimal128(38, 18), "decimal(38,18)"),
    (pa.decimal128(12, 2), "decimal(12,2)"),
    (pa.map_(pa.string(), pa.string()), "map<string,string>"),
    (pa.map_(pa.string(), pa.int32()), "map<string,int>"),
    (pa.list_(pa.int16()), "array<smallint>"),
    (pa.large_list(pa.date32()), "array<date>"),
    (pa.struct([("id", pa.string()), ("n", pa.int64()), ("ok", pa.bool_())]), "struct<id:string,n:bigint,ok:boolean>"),
])
def test_hive_type_is_the_athena_ddl_type_that_reads_the_parquet_column(dtype: pa.DataType, hive: str) -> None:
    assert hive_type(dtype) == hive


def test_hive_type_refuses_a_type_athena_has_no_column_for() -> None:
    with pytest.raises(TypeError, match=r"^no Hive type for Arrow type binary$"):
        hive_type(pa.binary())


def test_particle_table_columns_as_athena_declares_them() -> None:
    # The Glue table of Particle's dataset, written out: data columns, lineage, then extra
    assert DATASETS["particle_data_operations"].glue_columns() == [
        ("usage_date", "date"), ("device_id", "string"), ("device_name", "string"), ("product_id", "bigint"),
        ("product_name", "string"), ("connectivity", "string"), ("data_operations", "bigint"),
        ("firmware_version", "string"), ("device_os", "string"), ("report_type", "string"),
        ("date_period_start", "date"), ("date_period_end", "date"),
        ("vendor", "string"), ("report_id", "string"), ("exported_at", "timestamp"), ("source_key", "string"),
        ("extra", "map<string,string>"),
    ]


def test_lineage_columns_are_required_except_the_report_id_of_synchronous_vendors() -> None:
    schema = DATASETS["particle_data_operations"].schema
    lineage = {name: (str(schema.field(name).type), schema.field(name).nullable)
               for name in ("vendor", "report_id", "exported_at", "source_key", "extra")}
    assert lineage == {"vendor": ("string", False), "report_id": ("string", True),
                       "exported_at": ("timestamp[ms, tz=UTC]", False), "source_key": ("string", False),
                       "extra": ("map<string, string>", True)}
    assert DATASETS["particle_data_operations"].reader_schema.names[-2:] == ["date_period_end", "extra"]


def test_extra_map_keeps_each_rows_values_by_column_and_leaves_nulls_out() -> None:
    # Given two unknown columns, one numeric, with nulls
    columns = [("Notes", pa.array(["a", None, "c"])), ("Count", pa.array([None, None, 7]))]
    # When mapped / Then each row holds its non-null values, in column order; a row of nulls is an empty map
    assert extra_map(columns, 3).to_pylist() == [[("Notes", "a")], [], [("Notes", "c"), ("Count", "7")]]


def test_extra_map_without_unknown_columns_is_an_empty_map_per_row() -> None:
    array = extra_map([], 3)
    assert array.type == pa.map_(pa.string(), pa.string()) and array.to_pylist() == [[], [], []]


def test_extra_map_of_many_rows_keeps_rows_apart() -> None:
    rows = 1000
    columns = [("x", pa.array([str(i) for i in range(rows)])), ("y", pa.array([f"y{i}" for i in range(rows)]))]
    assert extra_map(columns, rows).to_pylist()[::250] == [[("x", str(i)), ("y", f"y{i}")] for i in range(0, rows,
                                                                                                            250)]


def test_constant_repeats_a_value_and_is_empty_for_no_rows() -> None:
    assert constant("devices", pa.string(), 3).to_pylist() == ["devices"] * 3
    empty = constant(date(2026, 10, 1), pa.date32(), 0)
    assert (empty.type, len(empty)) == (pa.date32(), 0)


def test_dates_outside_the_month_are_counted_at_both_ends_and_nulls_are_not() -> None:
    window = month_window("2026-10", "UTC")
    days = pa.array([date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 31), date(2026, 11, 1), None,
                     date(2019, 1, 1)], pa.date32())
    assert dates_outside(days, window) == 3
    assert dates_outside(pa.array([], pa.date32()), window) == 0
    assert dates_outside(pa.array([None], pa.date32()), window) == 0


def test_instants_outside_the_month_use_the_exports_time_zone_start_inclusive_end_exclusive() -> None:
    # Given October in Berlin: 2026-09-30T22:00Z to 2026-10-31T23:00Z
    window = month_window("2026-10", "Europe/Berlin")
    start, end = datetime(2026, 9, 30, 22, tzinfo=UTC), datetime(2026, 10, 31, 23, tzinfo=UTC)
    ms = timedelta(milliseconds=1)
    values = pa.array([start - ms, start, end - ms, end, None], pa.timestamp("ms", tz="UTC"))
    assert instants_outside(values, window) == 2


def test_partition_keys_are_the_hive_folders_of_the_published_key() -> None:
    key = curated_key("particle_data_operations", "particle-demo", "2026-10")
    assert [part.split("=")[0] for part in key.split("/") if "=" in part] == [name for name, _ in PARTITION_KEYS]
    assert [hive for _, hive in PARTITION_KEYS] == ["string", "string"]


def test_a_read_context_from_a_manifest_carries_what_the_object_answers() -> None:
    # Given the manifest DownloadReport wrote beside a Senet details file
    export = SenetExport(name="senet-fleet", secret_name="s", application_euis=("00250C0000010001",))
    plan = plan_for(export)
    obj = RawObject(dataset="senet_device_month", key="raw/senet/senet-fleet/2026-10/details-00250C0000010001.csv",
                    bytes=3, sha256="a" * 64, content_type="text/csv", records=1)
    manifest = RawManifest.describe(plan, obj, params={"application_eui": "00250C0000010001"}, report_id="r-1")
    # When a reader's context is built from it
    context = ReadContext.from_manifest(manifest)
    # Then it names the object (errors name it), the request as the run made it, its window and parameters
    assert context.source_key == obj.key
    assert (context.export, context.window, context.report_id) == (export, plan.window, "r-1")
    assert dict(context.params) == {"application_eui": "00250C0000010001"}


@pytest.mark.parametrize(("dictionary", "encoding", "named"), [
    (None, {"device_id": "DELTA_BYTE_ARRAY"}, "dictionary columns cannot take another encoding: ['device_id']"),
    (("device_id", "device_os"), {"device_os": "DELTA_BYTE_ARRAY", "device_name": "DELTA_BYTE_ARRAY"},
     "dictionary columns cannot take another encoding: ['device_os']"),
    (("device_os",), {"device_idd": "PLAIN"}, "column_encoding names columns it does not have: ['device_idd']"),
])
def test_a_dataset_whose_encodings_pyarrow_would_refuse_is_refused_when_declared(
        dictionary: tuple[str, ...] | None, encoding: dict[str, str], named: str) -> None:
    particle = DATASETS["particle_data_operations"]
    with pytest.raises(ValueError, match=re.escape(f"dataset particle_data_operations: {named}")):
        dataclasses.replace(particle, dictionary_columns=dictionary, column_encoding=encoding)
