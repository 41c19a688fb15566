"""KORE usage records -> Parquet columns: the column contract, values read exactly, errors that show the bad value.

Complements test_kore.py: the full list of columns a cold start builds, timestamps on a machine that is not
in UTC, millisecond periods, bodies that arrive in small pieces or with blank lines, a record's own
``sim_sid``, the totals warning's counts, and the value each error shows (cut at 40 characters).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import re
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest

from report_exporter.datasets.base import ReadContext
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import KoreExport
from report_exporter.vendors.kore import dataset as kore_dataset
from report_exporter.vendors.kore.dataset import DATASET
from tests.fakes import plan_for
from tests.unit.datasets.test_kore import page, record

UTC = dt.UTC
EXPORT = KoreExport(name="kore-main", secret_name="kore/main")


def read(data: bytes | io.RawIOBase, export: KoreExport = EXPORT) -> pa.Table:
    context = ReadContext.for_plan(plan_for(export, "2024-05"), report_id=None, source_key="raw/kore/x.jsonl")
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return pa.Table.from_batches(list(DATASET.read(source, context)), schema=DATASET.reader_schema)


# The column contract (what Athena's table and saved queries rely on).

DECIMAL = "decimal128(38, 18)"
DATA = [("total", "int64"), ("download", "int64"), ("upload", "int64"), ("units", "string"), ("billed", DECIMAL),
        ("billing_units", "string")]
COMMANDS = [("total", "int64"), ("to_sim", "int64"), ("from_sim", "int64"), ("billed", DECIMAL),
            ("billing_units", "string")]


def _section(name: str, fields: list[tuple[str, str]]) -> list[str]:
    """Counters at the top, under home and under national_roaming; roaming abroad as a list; the totals check."""
    flat = [f"{name}{part}_{key}: {kind}" for part in ("", "_home", "_national_roaming") for key, kind in fields]
    struct = ", ".join(f"{key}: {kind}" for key, kind in [("country_code", "string"), *fields])
    return [*flat, f"{name}_international_roaming: list<item: struct<{struct}>>", f"{name}_total_consistent: bool"]


COLUMNS = [
    "account_sid: string", "sim_sid: string", "granularity: string",
    "period_start: timestamp[ms, tz=UTC]", "period_end: timestamp[ms, tz=UTC]", "usage_date: date32[day]",
    *_section("data", DATA), *_section("commands", COMMANDS),
]


def test_a_cold_start_builds_every_documented_column_with_its_type() -> None:
    # Given the dataset module loaded afresh, as a Lambda's cold start does
    spec = importlib.util.spec_from_file_location(kore_dataset.__name__, kore_dataset.__file__)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    # When its columns are listed / Then they are exactly the documented ones, in order, with their types
    for columns in (fresh.DATASET.columns, DATASET.columns):
        assert [f"{f.name}: {f.type}" for f in columns] == COLUMNS
    assert len(COLUMNS) == 6 + 2 * 2 + 3 * 6 + 3 * 5


# Values.

def test_periods_are_utc_instants_and_days_whatever_the_machines_time_zone(new_york_machine: None) -> None:
    # Given a machine in New York and periods written with Z, with no zone (GMT per KORE) and with an offset
    starts = ["2024-05-01T00:30:00Z", "2024-05-01T00:30:00", "2024-05-01T02:30:00+02:00"]
    records = [record(period={"start": s, "end": "2024-05-02T00:00:00Z"}) for s in starts]
    # When read
    table = read(page(*records))
    # Then each is 00:30 UTC on May 1st, and so is its usage day (not April 30th in New York)
    assert table.column("period_start").to_pylist() == [dt.datetime(2024, 5, 1, 0, 30, tzinfo=UTC)] * 3
    assert table.column("usage_date").to_pylist() == [dt.date(2024, 5, 1)] * 3


def test_periods_with_milliseconds_are_kept_to_the_millisecond() -> None:
    # Given periods at whole milliseconds
    records = [record(period={"start": "2024-05-01T00:00:00.001Z", "end": "2024-05-01T00:00:00.999Z"})]
    # When read / Then they are kept exactly
    (row,) = read(page(*records)).to_pylist()
    assert row["period_start"] == dt.datetime(2024, 5, 1, 0, 0, 0, 1000, tzinfo=UTC)
    assert row["period_end"] == dt.datetime(2024, 5, 1, 0, 0, 0, 999000, tzinfo=UTC)


def test_a_records_own_sim_sid_is_kept_in_an_account_export() -> None:
    # Given an account export whose records name their SIM
    sim = "DE" + "7" * 32
    # When read / Then the SIM is in its column, not in extra
    (row,) = read(page(record(sim_sid=sim))).to_pylist()
    assert row["sim_sid"] == sim
    assert row["extra"] == []


class Trickle(io.RawIOBase):
    """A body that hands out at most ``piece`` bytes per read, as a slow network stream may."""

    def __init__(self, data: bytes, piece: int) -> None:
        self._data, self._piece = data, piece

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        piece, self._data = self._data[: self._piece], self._data[self._piece:]
        return piece


def test_a_body_arriving_in_small_pieces_gives_every_row() -> None:
    # Given three pages (one record each) whose bytes arrive 7 at a time
    body = page(record()) + page(record(account_sid="AC2")) + page(record(account_sid="AC3"))
    # When read / Then every record is a row, in order
    table = read(Trickle(body, 7))
    assert table.column("account_sid").to_pylist() == ["AC" + "0" * 32, "AC2", "AC3"]


def test_blank_lines_between_pages_are_skipped_not_the_end() -> None:
    # Given two pages separated by blank lines
    body = page(record()) + b"\n  \n" + page(record(account_sid="AC2"))
    # When read / Then both pages' records are rows
    assert read(body).column("account_sid").to_pylist() == ["AC" + "0" * 32, "AC2"]


def test_the_totals_warning_counts_records_and_mismatches() -> None:
    # Given three records, one whose data total does not add up
    bad = record(data={"total": 9, "download": 2, "upload": 1})
    # When read
    with mock.patch.object(kore_dataset.logger, "warning") as warning:
        read(page(record(), bad, record()))
    # Then one warning says how many of how many records, for the operator to look at
    warning.assert_called_once()
    assert warning.call_args.args == ("kore usage records whose totals do not add up",)
    assert warning.call_args.kwargs["extra"] == {
        "source_key": "raw/kore/x.jsonl", "records": 3, "data_total_mismatches": 1, "commands_total_mismatches": 0,
    }


# Errors show where and what.

@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (7, 'a usage record must be an object, got 7'),
        (record(account_sid=True), "account_sid: expected a string, got true"),
        (record(period="May"), 'period must be an object with start and end, got "May"'),
        (record(period={"start": "yesterday"}), 'period.start: expected an ISO 8601 date-time, got "yesterday"'),
        (record(period={"start": "2024-05-01T00:00:00.0005Z"}),
         'period.start: "2024-05-01T00:00:00.0005Z" is finer than a millisecond (not truncated)'),
        (record(data=[1]), "data must be an object, got [1]"),
        (record(data={"home": 5}), "data.home must be an object, got 5"),
        (record(data={"national_roaming": "none"}), 'data.national_roaming must be an object, got "none"'),
        (record(data={"total": "lots"}), 'data.total: expected an integer, got "lots" ('),
        (record(data={"billed": "free"}), 'data.billed: expected a decimal amount, got "free" ('),
        (record(data={"international_roaming": [5]}), "data.international_roaming[0] must be an object, got 5"),
        (record(commands={"international_roaming": [{"country_code": 5.5}, {"country_code": True}]}),
         "commands.international_roaming[1].country_code: expected a string, got true"),
        (record(commands={"international_roaming": {"to_sim": "x"}}),
         'commands.international_roaming[0].to_sim: expected an integer, got "x" ('),
    ],
)
def test_an_error_names_the_record_the_field_and_the_value(bad: Any, message: str) -> None:
    # Given a second record with a value of the wrong kind / When read
    with pytest.raises(InvalidReportError) as caught:
        read(page(record(), bad))
    # Then the error names line, record, field and shows the value
    assert str(caught.value).startswith(f"line 1 record 2: {message}")


def test_a_sid_that_is_not_a_finite_number_is_refused_by_name() -> None:
    # Given an account_sid of NaN (JSON as some encoders write it)
    body = page(record(account_sid=float("nan")))
    assert b"NaN" in body
    # When read / Then it is refused as a string field, showing the value
    with pytest.raises(InvalidReportError, match=r"^line 1 record 1: account_sid: expected a string, got NaN$"):
        read(body)


@pytest.mark.parametrize(("length", "shown"), [
    (38, '"' + "a" * 38 + '"'),  # 40 characters of JSON: shown whole
    (39, '"' + "a" * 36 + "..."),  # 41: its first 37, marked as cut
    (60, '"' + "a" * 36 + "..."),
])
def test_a_long_bad_value_is_cut_at_40_characters(length: int, shown: str) -> None:
    # Given a counter holding a long text
    body = page(record(data={"total": "a" * length}))
    # When read / Then the error shows it whole up to 40 characters of JSON, else its first 37 and "..."
    expected = f"line 1 record 1: data.total: expected an integer, got {shown} ("
    with pytest.raises(InvalidReportError, match="^" + re.escape(expected)):
        read(body)
