"""HERE gzip CSV -> typed batches: token-keyed header, quoted commas, summarized rows, extras, named queries."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from report_exporter.datasets.base import ReadContext, constant
from report_exporter.datasets.registry import dataset
from report_exporter.errors import InvalidReportError
from report_exporter.local.query import connect, rows
from report_exporter.models.exports import HereExport
from report_exporter.vendors.here.dataset import DATASET, header_token
from report_exporter.vendors.here.simulator import HereSimulator, Report
from tests.fakes import plan_for

EXPORT = HereExport(name="here-main", secret_name="here/main", realm="org123456789", detail_level="day")
SUMMARIZED = EXPORT.model_copy(update={"detail_level": "summarized", "charge_type": "billable"})
UTC = dt.UTC


def read_bytes(data: bytes, export: HereExport = EXPORT) -> pa.Table:
    context = ReadContext.for_plan(plan_for(export), report_id="REPORT-1007", source_key="raw/here/x.csv.gz")
    batches = list(DATASET.read(io.BytesIO(data), context))
    return pa.Table.from_batches(batches, schema=DATASET.reader_schema)


def read(text: str | bytes, export: HereExport = EXPORT) -> pa.Table:
    return read_bytes(gzip.compress(text.encode() if isinstance(text, str) else text), export)


def test_header_token_keys_on_the_parenthesised_name() -> None:
    assert header_token("Usage Amount (billableValue)") == "billableValue"
    assert header_token(" Date and time (usageDateTime) ") == "usageDateTime"
    assert header_token("realmId") == "realmId"


def test_dataset_is_registered_with_the_agreed_types() -> None:
    # Given the registry / When the HERE dataset is looked up
    data = dataset("here_usage")
    # Then it is this module's, with ms UTC timestamps, exact decimal(38,18) amounts and an extra map last
    assert data is DATASET
    schema = data.reader_schema
    assert schema.field("usage_datetime").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("billable_value").type == pa.decimal128(38, 18)
    assert schema.field("usage_value").type == pa.decimal128(38, 18)
    assert schema.names[-1] == "extra"
    assert ("billable_value", "decimal(38,18)") in data.glue_columns()


def test_reads_day_rows_with_quoted_commas(load_fixture: Any) -> None:
    # Given HERE's day-level report with quoted values containing commas and doubled quotes
    table = read(load_fixture("here/report_day.csv"))

    # Then every row is read, typed, with the per-run constants
    assert table.schema == DATASET.reader_schema
    first, second, third = table.to_pylist()
    assert first["usage_datetime"] == dt.datetime(2026, 10, 1, tzinfo=UTC)
    assert first["item_name"] == "Geocoding, Forward"
    assert first["billing_tag"] == "prod, fleet"
    assert second["billing_tag"] == 'team "alpha"'
    assert second["item_name"] == "Data Transfer, Egress"
    assert third["item_name"] == "Stra\u00dfenrouting \u2013 LKW"
    assert first["org_id"] == "org123456789" and second["org_id"] == "org112135"
    assert first["unit"] == "Transactions" and first["feature_id"].endswith("search-geocoding-1")
    assert first["app_id"] == "j1dasda012edasfgne" and second["app_id"] is None
    assert {r["detail_level"] for r in (first, second, third)} == {"day"}
    assert {r["charge_type"] for r in (first, second, third)} == {"all"}


def test_the_two_usage_amount_columns_land_in_their_own_fields(load_fixture: Any) -> None:
    # Given rows whose billable and usage amounts differ
    first, second, _ = read(load_fixture("here/report_day.csv")).to_pylist()

    # Then "Usage Amount (billableValue)" and "Usage Amount (usageValue)" are not confused
    assert first["billable_value"] == Decimal("144940.0000")
    assert first["usage_value"] == Decimal("150000.0000")
    assert second["billable_value"] == Decimal("0.0000")
    assert second["usage_value"] == Decimal("12.5000")


def test_unknown_columns_are_kept_in_extra(load_fixture: Any) -> None:
    # Given a report with a column the dataset does not know ("Region (region)")
    first, second, third = read(load_fixture("here/report_day.csv")).to_pylist()

    # Then its values are kept verbatim under the raw label; empty values are left out
    assert first["extra"] == [("Region (region)", "eu-west, central")]
    assert second["extra"] == []
    assert third["extra"] == [("Region (region)", "us-east")]


def test_summarized_rows_have_null_usage_datetime(load_fixture: Any) -> None:
    # Given a summarized report (no usageDateTime values) for an export that asked for billable usage
    table = read(load_fixture("here/report_summarized.csv"), SUMMARIZED)

    # Then the timestamp is null and the run's constants are recorded
    assert table.column("usage_datetime").null_count == table.num_rows == 2
    assert set(table.column("detail_level").to_pylist()) == {"summarized"}
    assert set(table.column("charge_type").to_pylist()) == {"billable"}
    assert table.column("usage_value").to_pylist() == [Decimal("144940.0000"), Decimal("12.0000")]
    # And absent columns are null, not missing
    assert table.column("app_name").null_count == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2026-10-05T00:00:00", dt.datetime(2026, 10, 5, tzinfo=UTC)),
     ("2026-10-05", dt.datetime(2026, 10, 5, tzinfo=UTC)),
     ("2026-10-05T10:00:00Z", dt.datetime(2026, 10, 5, 10, tzinfo=UTC)),
     ("2026-10", dt.datetime(2026, 10, 1, tzinfo=UTC))],
)
def test_usage_datetime_formats_are_read_as_utc(value: str, expected: dt.datetime) -> None:
    # Given a one-row report with usageDateTime in one of the plausible formats
    text = ('"Date and time (usageDateTime)","Org ID (realmId)","Item (featureId)","Usage Amount (billableValue)"\n'
            f'"{value}","org123456789","hrn:here:service::org123456789:f","1.0000"\n')
    # Then it is a UTC instant
    assert read(text).column("usage_datetime").to_pylist() == [expected]


@pytest.mark.parametrize("value", ["yesterday", "2026-10-05T10:00:00+02:00"])
def test_bad_usage_datetime_names_the_column(value: str) -> None:
    # Given a value that is not a date, or carries an offset other than Z (HERE dates are UTC)
    text = ('"Date and time (usageDateTime)","Org ID (realmId)","Item (featureId)","Usage Amount (billableValue)"\n'
            f'"{value}","org123456789","hrn:f","1.0000"\n')
    # When / Then: refused, naming the column, rather than silently shifted
    with pytest.raises(InvalidReportError, match=r"column 'Date and time \(usageDateTime\)'"):
        read(text)


def test_bad_amount_names_the_column(load_fixture: Any) -> None:
    # Given a billable value that is not a number
    text = load_fixture("here/report_day.csv").replace(b'"144940.0000"', b'"144,940.00"')

    # When / Then: the error names the column by its label
    with pytest.raises(InvalidReportError, match=r"column 'Usage Amount \(billableValue\)'"):
        read(text)


def test_bad_amount_far_into_a_large_report_names_the_column() -> None:
    # Given a report of several parser blocks whose last usageValue is not a number
    sim = HereSimulator(rows=20_000)
    lines = list(sim.csv_lines(_sim_report(sim)))
    lines[-1] = lines[-1].rstrip("\n").rpartition(",")[0] + ',"12,5"\n'

    # When / Then
    with pytest.raises(InvalidReportError, match=r"column 'Usage Amount \(usageValue\)'"):
        read("".join(lines))


def test_missing_required_column_is_a_clear_error() -> None:
    with pytest.raises(InvalidReportError, match="billableValue"):
        read('"Org ID (realmId)","Item (featureId)"\n"org123456789","hrn:f"\n')


def test_raw_file_that_is_not_gzip_is_invalid(load_fixture: Any) -> None:
    with pytest.raises(InvalidReportError, match="gzip"):
        read_bytes(load_fixture("here/report_day.csv"))


def test_truncated_gzip_is_invalid() -> None:
    # Given a large report whose gzip stream was cut short
    sim = HereSimulator(rows=5_000)
    data = b"".join(sim.gzip_body(_sim_report(sim)))

    # When / Then
    with pytest.raises(InvalidReportError, match="gzip"):
        read_bytes(data[: len(data) // 2])


def test_large_report_streams_in_several_batches_and_keeps_every_row() -> None:
    # Given a simulated report of several parser blocks (block size 1 MiB)
    sim = HereSimulator(rows=30_000)
    data = b"".join(sim.gzip_body(_sim_report(sim)))
    context = ReadContext.for_plan(plan_for(EXPORT), report_id="REPORT-1001", source_key="raw/x.csv.gz")

    # When it is read
    batches = list(DATASET.read(io.BytesIO(data), context))

    # Then it came out in several batches, with every row and the exact billable total
    assert len(batches) > 1
    table = pa.Table.from_batches(batches)
    assert table.num_rows == 30_000
    assert sum(v for v in table.column("billable_value").to_pylist() if v is not None) == sim.total_billable()


def test_named_queries_run_on_duckdb(tmp_path: Path, load_fixture: Any) -> None:
    # Given two months of one export as the curated layout holds them
    for period, factor in (("2026-09", 1), ("2026-10", 2)):
        text = load_fixture("here/report_day.csv").replace(b'"144940.0000"', f'"{144940 * factor}.0000"'.encode())
        _write_partition(tmp_path, read(text), period)
    con = connect(tmp_path)

    # When every named query runs
    results = {q.name: rows(con, q.sql) for q in DATASET.queries}

    # Then each answers, and the month-over-month change of the geocoding feature is the doubled value
    assert set(results) == {"here_usage_by_category_feature_month", "here_top_apps_by_billable_value",
                            "here_billable_month_over_month"}
    columns, mom = results["here_billable_month_over_month"]
    geocoding = [dict(zip(columns, r, strict=True)) for r in mom if str(r[2]).endswith("search-geocoding-1")]
    assert [g["period"] for g in geocoding] == ["2026-09", "2026-10"]
    assert geocoding[1]["change"] == Decimal("144940.0000") and geocoding[1]["change_percent"] == 100.0
    columns, top = results["here_top_apps_by_billable_value"]
    ranked = [dict(zip(columns, r, strict=True)) for r in top]
    october = [r for r in ranked if r["period"] == "2026-10" and r["unit"] == "Transactions"]
    assert [(r["app_rank"], r["app_id"]) for r in october] == [(1, "j1dasda012edasfgne")]
    assert october[0]["billable_value"] == Decimal("289883.1416")
    columns, by_feature = results["here_usage_by_category_feature_month"]
    assert len(by_feature) == 6 and "item_name" in columns


def _sim_report(sim: HereSimulator) -> Report:
    start = dt.datetime(2026, 10, 1, tzinfo=UTC)
    return sim.add_report(start, dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))


def _write_partition(root: Path, table: pa.Table, period: str) -> None:
    n = table.num_rows
    lineage = {"vendor": "here", "report_id": "REPORT-1007", "exported_at": dt.datetime(2026, 11, 3, tzinfo=UTC),
               "source_key": "raw/here/here-main/x.csv.gz"}
    arrays = [*table.columns[:-1], *(constant(lineage[f.name], f.type, n) for f in DATASET.schema if f.name in lineage),
              table.column("extra")]
    folder = root / "curated" / DATASET.name / "export=here-main" / f"period={period}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=DATASET.schema), folder / "data.parquet")


HEAD = '"Date and time (usageDateTime)","Org ID (realmId)","Item (featureId)","Usage Amount (billableValue)"'


def one_row(amount: str, *, head: str = HEAD, extra: str = "") -> pa.Table:
    return read(f'{head}\n"2026-10-05","org123456789","hrn:f","{amount}"{extra}\n')


@pytest.mark.parametrize(("amount", "expected"), [
    ("0.12345", Decimal("0.12345")),
    ("12.345678901234567891", Decimal("12.345678901234567891")),
    ("99999999999999999999.5", Decimal("99999999999999999999.5")),
    ("1.5E-7", Decimal("1.5E-7")),
])
def test_amounts_are_kept_exactly_whatever_their_decimals(amount: str, expected: Decimal) -> None:
    # Given an amount with more than HERE's usual 4 decimals (this failed the whole month, naming nothing)
    # When read / Then it is kept exactly
    assert one_row(amount).column("billable_value").to_pylist() == [expected]


@pytest.mark.parametrize(("amount", "reason"), [
    ("0.0000000000000000001", "has 19 decimal places"),
    ("123456789012345678901", "has 21 digits before the decimal point"),
    ("123456789012345678901.5", "has 21 digits before the decimal point"),
    ("1e21", "has 22 digits before the decimal point"),
    ("inf", "is not a number"),
    ("NaN", "is not a number"),
])
def test_an_amount_that_does_not_fit_names_row_and_column(amount: str, reason: str) -> None:
    # Given an amount too fine or too large for decimal(38,18) (a 21-digit integer part used to be accepted)
    # When / Then: refused, naming the data row, the column and the value
    with pytest.raises(InvalidReportError, match=rf"data row 1, column 'Usage Amount \(billableValue\)': "
                                                 rf"'{re.escape(amount)}' {reason}"):
        one_row(amount)


@pytest.mark.parametrize("order", [("orgName", "realmName"), ("realmName", "orgName")])
def test_org_name_and_realm_name_are_both_kept(order: tuple[str, str]) -> None:
    # Given both org-name columns, in either order
    head = HEAD + f',"Org name ({order[0]})","Org name ({order[1]})"'
    values = {"orgName": "Acme", "realmName": "acme-realm"}
    (row,) = one_row("1", head=head, extra=f',"{values[order[0]]}","{values[order[1]]}"').to_pylist()
    # Then org_name takes orgName and realmName is kept in extra under its label
    assert row["org_name"] == "Acme"
    assert row["extra"] == [("Org name (realmName)", "acme-realm")]


def test_resource_and_resource_hrn_are_both_kept() -> None:
    head = HEAD + ',"Resource (resource)","Resource ID (resourceHrn)","Project (project)"'
    (row,) = one_row("1", head=head, extra=',"res-1","hrn:here:data::org1:res-1","p-1"').to_pylist()
    assert row["resource_hrn"] == "hrn:here:data::org1:res-1"
    assert row["project_hrn"] == "p-1"
    assert row["extra"] == [("Resource (resource)", "res-1")]


def test_the_same_token_twice_keeps_the_leftmost_typed_and_the_other_in_extra() -> None:
    head = HEAD + ',"Usage Amount (billableValue)"'
    (row,) = one_row("1.5", head=head, extra=',"2.5"').to_pylist()
    assert row["billable_value"] == Decimal("1.5")
    assert row["extra"] == [("Usage Amount (billableValue)", "2.5")]


def test_rows_outside_the_month_are_counted_by_their_utc_day() -> None:
    # Given day rows of 2026-09-30, 2026-10-01, 2026-10-31 and 2026-11-01, a month row and a summarized row
    days = ["2026-09-30", "2026-10-01T00:00:00", "2026-10-31T23:59:59Z", "2026-11-01", "2026-10", ""]
    text = HEAD + "\n" + "".join(f'"{d}","org123456789","hrn:f","1"\n' for d in days)
    context = ReadContext.for_plan(plan_for(EXPORT), report_id="R", source_key="raw/x.csv.gz")
    (batch,) = list(DATASET.read(io.BytesIO(gzip.compress(text.encode())), context))
    # When counted / Then the two rows of other months are outside; the undated one is not counted
    assert batch.num_rows == 6
    assert DATASET.outside_period is not None
    assert DATASET.outside_period(batch, context.window) == 2
