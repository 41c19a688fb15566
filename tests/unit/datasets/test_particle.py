"""Particle CSV -> typed batches: header after a preamble, unknown columns kept, bad values named."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pytest

from report_exporter.datasets.base import ReadContext
from report_exporter.datasets.particle import DATASET
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import ParticleExport
from tests.fakes import plan_for

EXPORT = ParticleExport(name="particle-demo", secret_name="s")
HEADER = "Date,Device ID,Device Name,Product ID,Product Name,Connectivity,Data Operations,Firmware Version,Device OS\n"
ROW = '2026-10-01,0123456789abcdef01234567,"Tracker 1, fleet",12345,Fleet,cellular,42,6.1.0,6.1.0\n'


def read(text: str) -> pa.Table:
    context = ReadContext(plan=plan_for(EXPORT), report_id="1", source_key="raw/x.csv")
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
