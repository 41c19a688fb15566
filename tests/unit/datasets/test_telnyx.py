"""Telnyx usage pages (JSON lines) -> typed batches, and the named queries on DuckDB."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from report_exporter.adapters.ndjson import envelope_line
from report_exporter.datasets.base import LINEAGE, ReadContext
from report_exporter.errors import InvalidReportError
from report_exporter.local.query import connect, rows
from report_exporter.models.exports import TelnyxExport
from report_exporter.vendors.telnyx.dataset import DATASET
from tests.fakes import plan_for

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vendors" / "telnyx"
EXPORT = TelnyxExport(
    name="telnyx-messaging", secret_name="s", product="messaging",
    dimensions=("product_name", "country_iso", "direction", "currency"), metrics=("cost", "parts", "count"),
)
REQUEST = {
    "product": "messaging", "dimensions": list(EXPORT.dimensions), "metrics": list(EXPORT.metrics),
    "managed_accounts": False, "start_date": "2026-10-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z",
}


def page(data: list[dict[str, Any]], number: int = 1, **request: Any) -> bytes:
    """One raw line as the adapter writes it, for a page holding ``data``."""
    return envelope_line({**REQUEST, "page": number, **request}, json.dumps({"meta": {}, "data": data}).encode())


def read(raw: bytes, export: TelnyxExport = EXPORT, period: str = "2026-10") -> pa.Table:
    context = ReadContext.for_plan(plan_for(export, period), report_id=None, source_key="raw/telnyx/x.jsonl")
    return pa.Table.from_batches(list(DATASET.read(io.BytesIO(raw), context)), schema=DATASET.reader_schema)


def recorded_pages() -> bytes:
    return b"".join(
        envelope_line({**REQUEST, "page": n}, (FIXTURES / f"usage_page{n}.json").read_bytes()) for n in (1, 2, 3)
    )


def test_telnyx_usage_reads_typed_rows_from_the_recorded_pages() -> None:
    # Given the three recorded pages as the adapter stores them
    # When read
    table = read(recorded_pages())
    # Then every row of every page is there, with money exact and the request's range as timestamps
    assert table.num_rows == 5
    first, _, third, *_ = table.to_pylist()
    assert first == {
        "product": "messaging",
        "user_id": None,
        "currency": "USD",
        "cost": Decimal("0.012"),
        "dimensions": [("product_name", "long_code"), ("country_iso", "LC"), ("direction", "outbound"),
                       ("currency", "USD")],
        "metrics": [("cost", Decimal("0.012")), ("parts", Decimal(12)), ("count", Decimal(8))],
        "managed_accounts": False,
        "requested_start": datetime(2026, 10, 1, tzinfo=UTC),
        "requested_end": datetime(2026, 11, 1, tzinfo=UTC),
        "extra": [("customer_carrier_fee", "0")],
    }
    assert third["cost"] == Decimal("0.000800")
    assert third["extra"] == [("customer_carrier_fee", "0.0025")]
    assert table.schema.field("requested_start").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("cost").type == pa.decimal128(38, 18)
    assert table.schema.field("metrics").type == pa.map_(pa.string(), pa.decimal128(38, 18))


def test_telnyx_usage_uses_the_dimensions_recorded_with_the_page() -> None:
    # Given a page fetched for dimension "direction" only, read after the config changed
    raw = page([{"product": "messaging", "direction": "inbound", "cost": 1, "parts": 3}],
               dimensions=["direction"], metrics=["parts"])
    # When read with today's config
    (row,) = read(raw).to_pylist()
    # Then the page's own request decides what is a dimension or a metric; the rest stays in extra
    assert row["dimensions"] == [("direction", "inbound")]
    assert row["metrics"] == [("parts", Decimal(3))]
    assert row["cost"] == Decimal("1.000000")
    assert row["extra"] == [("cost", "1")]


def test_telnyx_usage_keeps_any_configured_dimension_and_metric() -> None:
    # Given dimensions and metrics no typed column knows, with a user id from managed accounts
    raw = page(
        [{"product": "wireless", "sim_card_group": "g-1", "mcc": 204, "downlink_mb": "12.5", "uplink_mb": 3,
          "user_id": "3ca7bd3d", "flags": {"roaming": True}, "active": True}],
        product="wireless", dimensions=["sim_card_group", "mcc"], metrics=["downlink_mb", "uplink_mb"],
        managed_accounts=True,
    )
    # When read
    (row,) = read(raw).to_pylist()
    # Then they survive in the maps (numbers given as strings too) and the unrequested keys in extra
    assert row["product"] == "wireless" and row["user_id"] == "3ca7bd3d" and row["managed_accounts"] is True
    assert row["dimensions"] == [("sim_card_group", "g-1"), ("mcc", "204")]
    assert row["metrics"] == [("downlink_mb", Decimal("12.5")), ("uplink_mb", Decimal(3))]
    assert row["extra"] == [("flags", '{"roaming":true}'), ("active", "true")]
    assert row["cost"] is None and row["currency"] is None


def test_telnyx_usage_bad_metric_value_names_line_row_and_metric() -> None:
    raw = page([{"product": "messaging", "parts": 1}]) + page([{"product": "messaging", "parts": "many"}], 2)
    with pytest.raises(InvalidReportError, match="line 2 row 1 metric 'parts': 'many' is not a number"):
        read(raw)


def test_telnyx_usage_keeps_small_amounts_exactly_and_refuses_what_does_not_fit() -> None:
    # Given a cost with more than six decimals (once rounded to 0), and amounts too large or too fine
    (row,) = read(page([{"product": "messaging", "cost": 0.0000005, "parts": 0.0000125}],
                       metrics=["parts"])).to_pylist()
    # Then the small ones are kept exactly
    assert row["cost"] == Decimal("0.0000005")
    assert row["metrics"] == [("parts", Decimal("0.0000125"))]
    # And a cost of 1e30 (once a bare decimal.InvalidOperation) or 19 decimals is refused, naming where
    with pytest.raises(InvalidReportError, match=r"line 1 row 1 cost: '1E\+30' has 31 digits before the decimal"):
        read(page([{"product": "messaging", "cost": 1e30}], metrics=["parts"]))
    with pytest.raises(InvalidReportError, match=r"line 1 row 1 metric 'cost': .* has 19 decimal places"):
        read(page([{"product": "messaging", "cost": "0.0000000000000000001"}]))


def test_telnyx_usage_empty_page_gives_no_rows() -> None:
    assert read(page([])).num_rows == 0


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"meta": {}, "data": []}\n', "not a {'request', 'response'} record"),
    (b"not json\n", "line 1: not JSON"),
    (envelope_line(REQUEST, b'{"errors": []}'), "line 1: the page has no 'data' list"),
])
def test_telnyx_usage_refuses_lines_it_did_not_write(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidReportError, match=message):
        read(raw)


def publish(out: Path, table: pa.Table, export: str, period: str) -> None:
    """Write ``table`` where WriteParquet would, with lineage columns, for the DuckDB views."""
    n = table.num_rows
    lineage = {"vendor": "telnyx", "report_id": None, "exported_at": datetime(2026, 11, 3, tzinfo=UTC),
               "source_key": "raw/x"}
    arrays = [table.column(f.name) if f.name in table.column_names else pa.array([lineage[f.name]] * n, f.type)
              for f in DATASET.schema]
    folder = out / "curated" / DATASET.name / f"export={export}" / f"period={period}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=DATASET.schema), folder / "data.parquet")


def test_telnyx_usage_named_queries_answer_cost_questions_on_duckdb(tmp_path: Path) -> None:
    # Given September and October exported
    september = page([
        {"product": "messaging", "direction": "outbound", "currency": "USD", "cost": 2.5, "parts": 10},
        {"product": "messaging", "direction": "inbound", "currency": "USD", "cost": 0.5, "parts": 4},
    ], dimensions=["direction", "currency"], metrics=["cost", "parts"])
    october = page([
        {"product": "messaging", "direction": "outbound", "currency": "USD", "cost": 4.0, "parts": 16},
    ], dimensions=["direction", "currency"], metrics=["cost", "parts"])
    publish(tmp_path, read(september, period="2026-09"), "telnyx-messaging", "2026-09")
    publish(tmp_path, read(october), "telnyx-messaging", "2026-10")
    con = connect(tmp_path)
    queries = {q.name: q.sql for q in DATASET.queries}
    # When the named queries run
    _, by_dimension = rows(con, queries["telnyx_cost_by_product_dimension_month"])
    _, month_over_month = rows(con, queries["telnyx_cost_month_over_month"])
    _, metrics = rows(con, queries["telnyx_metrics_by_product_month"])
    # Then cost is broken out per dimension value, and October's change from September is +1.00
    assert ("telnyx-messaging", "2026-09", "messaging", "direction", "outbound", "USD", Decimal("2.5")) in by_dimension
    assert ("telnyx-messaging", "2026-09", "messaging", "direction", "inbound", "USD", Decimal("0.5")) in by_dimension
    assert [(r[3], r[4], r[5], r[6]) for r in month_over_month] == [
        ("2026-09", Decimal("3"), None, None), ("2026-10", Decimal("4"), Decimal("3"), Decimal("1")),
    ]
    assert ("telnyx-messaging", "2026-10", "messaging", "parts", 16.0) in metrics


def test_telnyx_usage_lineage_columns_are_not_in_the_reader_schema() -> None:
    assert not set(LINEAGE.names) & set(DATASET.reader_schema.names)


def test_telnyx_usage_metric_sums_are_exact_in_sql(tmp_path: Path) -> None:
    # Given metrics whose double sum is 65.71000000000002
    raw = page([{"product": "messaging", "direction": d, "parts": v} for d, v in (("in", 65.7), ("out", 0.01))],
               dimensions=["direction"], metrics=["parts"])
    publish(tmp_path, read(raw), "telnyx-messaging", "2026-10")
    # When the metrics query sums them / Then the total is exactly 65.71
    queries = {q.name: q.sql for q in DATASET.queries}
    _, metrics = rows(connect(tmp_path), queries["telnyx_metrics_by_product_month"])
    assert metrics == [("telnyx-messaging", "2026-10", "messaging", "parts", Decimal("65.71"))]


@pytest.mark.parametrize(("value", "reason"), [
    (b"1e400", "has 401 digits before the decimal point"),
    (b"NaN", "is not a finite number"),
    (b"-Infinity", "is not a finite number"),
    (b'"inf"', "is not a number"),
    (b"true", "is not a number"),
])
def test_telnyx_usage_non_finite_or_huge_metrics_are_errors_not_inf(value: bytes, reason: str) -> None:
    raw = page([{"product": "messaging", "parts": 1}]).replace(b'"parts": 1', b'"parts": ' + value)
    assert value in raw
    with pytest.raises(InvalidReportError, match=rf"line 1 row 1 metric 'parts': .* {reason}"):
        read(raw)


def test_telnyx_usage_a_key_repeated_in_a_row_is_refused() -> None:
    raw = page([{"product": "messaging", "parts": 1}]).replace(b'"parts": 1', b'"parts": 1, "parts": 2')
    with pytest.raises(InvalidReportError, match=r"line 1: the key 'parts' appears twice in one object"):
        read(raw)


def test_telnyx_usage_a_metric_requested_twice_is_one_entry() -> None:
    (row,) = read(page([{"product": "messaging", "parts": 2}], metrics=["parts", "parts"])).to_pylist()
    assert row["metrics"] == [("parts", Decimal(2))]


def test_telnyx_usage_rows_of_pages_outside_the_window_are_counted() -> None:
    # Given one page for October and one whose interval spills into November
    raw = page([{"product": "messaging", "parts": 1}] * 2) + page(
        [{"product": "messaging", "parts": 1}], 2, start_date="2026-10-15T00:00:00Z", end_date="2026-11-15T00:00:00Z")
    context = ReadContext.for_plan(plan_for(EXPORT), report_id=None, source_key="raw/telnyx/x.jsonl")
    (batch,) = list(DATASET.read(io.BytesIO(raw), context))
    # When counted / Then only the spilling page's row is outside
    assert DATASET.outside_period is not None
    assert DATASET.outside_period(batch, context.window) == 1
