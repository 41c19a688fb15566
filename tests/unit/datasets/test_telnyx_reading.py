"""Telnyx usage pages -> typed rows: what a page's own request decides, what the run's export fills in, and
what a malformed line's error names."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from report_exporter.adapters.ndjson import envelope_line
from report_exporter.datasets.base import ReadContext
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import TelnyxExport
from report_exporter.vendors.telnyx.dataset import DATASET
from tests.fakes import plan_for

EXPORT = TelnyxExport(name="telnyx-wireless", secret_name="s", product="wireless", dimensions=("direction",),
                      metrics=("parts",), managed_accounts=True)
OCTOBER = {"start_date": "2026-10-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}
REQUEST = {"product": "wireless", "dimensions": ["direction"], "metrics": ["parts"], "managed_accounts": False,
           **OCTOBER, "page": 1}
ROW = {"product": "wireless", "direction": "inbound", "parts": 3, "zone": "eu"}


def line(request: dict[str, Any], data: Any) -> bytes:
    return envelope_line(request, json.dumps({"meta": {}, "data": data}).encode())


def context(export: TelnyxExport = EXPORT) -> ReadContext:
    return ReadContext.for_plan(plan_for(export), report_id=None, source_key="raw/telnyx/x.jsonl")


def read(raw: bytes, export: TelnyxExport = EXPORT) -> pa.Table:
    return pa.Table.from_batches(list(DATASET.read(io.BytesIO(raw), context(export))), schema=DATASET.reader_schema)


@pytest.mark.parametrize("recorded", [
    {},
    {"dimensions": "direction", "metrics": "parts"},
    {"dimensions": ["direction", 7], "metrics": [None]},
], ids=["not-recorded", "strings-not-lists", "not-all-names"])
def test_telnyx_usage_without_usable_names_in_the_page_uses_the_runs_export(recorded: dict[str, Any]) -> None:
    # Given a page whose request records no usable dimensions, metrics or managed flag
    request = {"product": "wireless", **OCTOBER, "page": 1, **recorded}
    # When read for the export that fetched it
    (row,) = read(line(request, [ROW])).to_pylist()
    # Then the export's dimensions, metrics and managed-accounts flag decide the columns
    assert row["dimensions"] == [("direction", "inbound")]
    assert row["metrics"] == [("parts", Decimal(3))]
    assert row["managed_accounts"] is True
    assert row["extra"] == [("zone", "eu")]


def test_telnyx_usage_a_managed_flag_that_is_not_a_boolean_is_left_null() -> None:
    # Given a page whose request spells the managed-accounts flag as text
    (row,) = read(line({**REQUEST, "managed_accounts": "true"}, [ROW])).to_pylist()
    # Then the column says nothing rather than guessing
    assert row["managed_accounts"] is None


@pytest.mark.parametrize("key", ["start_date", "end_date"])
def test_telnyx_usage_a_request_date_that_is_not_a_time_names_the_line(key: str) -> None:
    raw = line(REQUEST, [ROW]) + line({**REQUEST, key: "yesterday"}, [ROW])
    with pytest.raises(InvalidReportError) as caught:
        read(raw)
    assert str(caught.value) == "line 2: request date 'yesterday' is not an ISO 8601 time"


@pytest.mark.parametrize("response", [[ROW], "no usage", None], ids=["list", "text", "null"])
def test_telnyx_usage_a_response_that_is_not_a_page_names_the_line(response: Any) -> None:
    raw = line(REQUEST, [ROW]) + envelope_line(REQUEST, json.dumps(response).encode())
    with pytest.raises(InvalidReportError) as caught:
        read(raw)
    assert str(caught.value) == "line 2: the page has no 'data' list"


def test_telnyx_usage_a_row_that_is_not_an_object_names_line_and_row() -> None:
    with pytest.raises(InvalidReportError) as caught:
        read(line(REQUEST, [ROW, ["inbound", 3]]))
    assert str(caught.value) == "line 1 row 2: not a JSON object"


def test_telnyx_usage_rows_within_the_window_are_not_counted_outside() -> None:
    # Given October's page read for October
    (batch,) = list(DATASET.read(io.BytesIO(line(REQUEST, [ROW, ROW])), context()))
    # When counted / Then no row is outside the month
    assert DATASET.outside_period is not None
    assert DATASET.outside_period(batch, context().window) == 0


def test_telnyx_usage_berlin_ranges_in_utc_are_within_the_berlin_month() -> None:
    # Given a Berlin October read as Telnyx was asked for it: two UTC ranges, and one range a day early
    berlin = EXPORT.model_copy(update={"timezone": "Europe/Berlin"})
    raw = (line({**REQUEST, "start_date": "2026-09-30T22:00:00Z", "end_date": "2026-10-31T22:00:00Z"}, [ROW])
           + line({**REQUEST, "start_date": "2026-10-31T22:00:00Z", "end_date": "2026-10-31T23:00:00Z"}, [ROW])
           + line({**REQUEST, "start_date": "2026-09-30T21:00:00Z", "end_date": "2026-10-31T22:00:00Z"}, [ROW])
           + line({**REQUEST, "start_date": "2026-10-31T22:00:00Z", "end_date": "2026-10-31T23:00:01Z"}, [ROW]))
    ctx = context(berlin)
    (batch,) = list(DATASET.read(io.BytesIO(raw), ctx))
    # When counted / Then only the ranges that start an hour early or end a second late are outside
    assert DATASET.outside_period is not None
    assert DATASET.outside_period(batch, ctx.window) == 2


def test_telnyx_usage_more_rows_than_one_batch_are_all_read() -> None:
    # Given a page of 50,001 rows (more than one of the reader's batches)
    count = 50_001
    data = [{"direction": f"d{i}", "parts": i} for i in range(count)]
    # When read
    table = read(line(REQUEST, data))
    # Then every row is there once, in order, with its values
    assert table.num_rows == count
    assert table.column("requested_end")[count - 1].as_py() == datetime(2026, 11, 1, tzinfo=UTC)
    metrics = table.column("metrics").to_pylist()
    assert [m[0][1] for m in metrics] == [Decimal(i) for i in range(count)]


def test_telnyx_usage_a_lone_surrogate_in_a_row_names_the_line_not_a_codec() -> None:
    bad = envelope_line(REQUEST, b'{"meta": {}, "data": [{"product": "wireless", "zone": "\\ud800"}]}')
    with pytest.raises(InvalidReportError, match=r"^line 2: a string holds a lone surrogate \(\\ud800\)"):
        read(line(REQUEST, [ROW]) + bad)
