"""Particle CSV -> typed batches: header after a preamble, unknown columns kept, bad values named."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pytest

from report_exporter.datasets.base import ReadContext
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import ParticleExport
from report_exporter.vendors.particle.dataset import DATASET
from tests.fakes import plan_for

EXPORT = ParticleExport(name="particle-demo", secret_name="s")
HEADER = "Date,Device ID,Device Name,Product ID,Product Name,Connectivity,Data Operations,Firmware Version,Device OS\n"
ROW = '2026-10-01,0123456789abcdef01234567,"Tracker 1, fleet",12345,Fleet,cellular,42,6.1.0,6.1.0\n'


def read(text: str) -> pa.Table:
    context = ReadContext.for_plan(plan_for(EXPORT), report_id="1", source_key="raw/x.csv")
    return pa.Table.from_batches(list(DATASET.read(io.BytesIO(text.encode()), context)), schema=DATASET.reader_schema)


def test_reads_typed_rows() -> None:
    table = read(HEADER + ROW)
    row = table.to_pylist()[0]
    assert row["usage_date"] == dt.date(2026, 10, 1)
    assert row["device_name"] == "Tracker 1, fleet"
    assert row["product_id"] == 12345 and row["data_operations"] == 42
    assert row["report_type"] == "devices"
    assert row["date_period_end"] == dt.date(2026, 10, 31)
    assert row["extra"] == []


def test_finds_the_header_after_a_preamble() -> None:
    table = read("Usage report for Acme\nGenerated 2026-11-02\n" + HEADER + ROW + ROW)
    assert table.num_rows == 2


def test_keeps_unknown_columns_in_extra_and_tolerates_missing_ones() -> None:
    text = "Date,Device ID,Data Operations,SIM ICCID\n2026-10-02,abc,7,8901\n2026-10-03,abd,8,\n"
    rows = read(text).to_pylist()
    assert rows[0]["extra"] == [("SIM ICCID", "8901")]
    assert rows[1]["extra"] == []
    assert rows[0]["device_name"] is None


def test_bad_value_names_the_column() -> None:
    with pytest.raises(InvalidReportError, match="column 'Data Operations'"):
        read(HEADER + ROW.replace(",42,", ",forty-two,"))


def test_no_header_is_a_clear_error() -> None:
    with pytest.raises(InvalidReportError, match="no header row"):
        read("just,some,numbers\n1,2,3\n")


def test_empty_report_is_a_clear_error() -> None:
    with pytest.raises(InvalidReportError, match="empty"):
        read("")


def test_a_second_column_with_the_same_label_is_kept_in_extra() -> None:
    # Given a report whose "Data Operations" column appears twice
    text = "Date,Device ID,Data Operations,Data Operations\n2026-10-02,abc,42,58\n"
    # When read
    (row,) = read(text).to_pylist()
    # Then the leftmost fills the typed column and the other is kept, not dropped
    assert row["data_operations"] == 42
    assert row["extra"] == [("Data Operations", "58")]


def test_unknown_columns_repeating_a_label_get_numbered_keys() -> None:
    text = "Date,Device ID,Data Operations,SIM,SIM,SIM\n2026-10-02,abc,1,a,b,c\n"
    (row,) = read(text).to_pylist()
    assert row["extra"] == [("SIM", "a"), ("SIM #2", "b"), ("SIM #3", "c")]


@pytest.mark.parametrize("text", [HEADER.rstrip("\n"), HEADER, "Preamble\n" + HEADER.rstrip("\n")])
def test_a_header_only_report_has_no_rows(text: str) -> None:
    # Given a report with no data rows, with or without the header's line break
    # When read / Then it has no rows (the header-only file without a line break used to fail)
    assert read(text).num_rows == 0


def test_a_field_of_several_mebibytes_is_read() -> None:
    # Given a device name of 3 MiB (Arrow's 1 MiB blocks refused it: "straddles two block boundaries")
    name = "N" * (3 << 20)
    text = HEADER + ROW + ROW.replace('"Tracker 1, fleet"', f'"{name}"') + ROW
    # When read / Then every row is there, the long name intact
    rows = read(text).to_pylist()
    assert len(rows) == 3 and rows[1]["device_name"] == name


def test_bad_value_names_the_data_row_and_the_column() -> None:
    # Given a bad count in the third data row
    text = HEADER + ROW + ROW + ROW.replace(",42,", ",4.2,") + ROW
    # When / Then: the data row (1-based, after the header) and the column are named, with the value
    with pytest.raises(InvalidReportError, match=r"data row 3, column 'Data Operations': '4\.2' is not a whole number"):
        read(text)


@pytest.mark.parametrize(("value", "reason"), [("2026-13-01", "is not a calendar date"),
                                               ("2026-02-30", "is not a calendar date"),
                                               ("01/10/2026", r"is not a date \(YYYY-MM-DD\)")])
def test_bad_date_names_row_and_column(value: str, reason: str) -> None:
    with pytest.raises(InvalidReportError, match=rf"data row 2, column 'Date': '{value}' {reason}"):
        read(HEADER + ROW + ROW.replace("2026-10-01", value))


def test_rows_dated_outside_the_month_are_kept_and_counted() -> None:
    # Given a 2026-10 report with a row from 2019, one from 2026-09-30, one from 2026-11-01 and two inside
    text = HEADER + "".join(ROW.replace("2026-10-01", d) for d in
                            ("2019-01-01", "2026-09-30", "2026-10-01", "2026-10-31", "2026-11-01"))
    context = ReadContext.for_plan(plan_for(EXPORT), report_id="1", source_key="raw/x.csv")
    (batch,) = list(DATASET.read(io.BytesIO(text.encode()), context))
    # When counted / Then all five rows are kept and three are outside the window
    assert batch.num_rows == 5
    assert DATASET.outside_period is not None
    assert DATASET.outside_period(batch, context.window) == 3
