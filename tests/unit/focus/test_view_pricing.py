"""The view's rate-card pricing, in DuckDB over small Parquet files: per row, and per month exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from report_exporter.focus.branch import BRANCH_COLUMNS
from report_exporter.focus.columns import COLUMNS
from report_exporter.focus.vendors import branches
from report_exporter.focus.view import VIEW_NAME, view_sql
from report_exporter.local import query
from report_exporter.models.exports import parse_exports
from report_exporter.vendors.particle import dataset as particle
from report_exporter.vendors.telnyx import dataset as telnyx

RATE_CARD = {"currency": "USD", "metrics": {"data_operations": {
    "included_quantity": "250", "tiers": [{"up_to": "1000", "unit_price": "0.01"}, {"unit_price": "0.001"}],
}}}
EXPORTS = parse_exports({"exports": [
    {"name": "fleet", "vendor": "particle", "secret_name": "s/fleet", "scope": "org", "org": "acme",
     "rate_card": RATE_CARD},
    {"name": "sandbox", "vendor": "particle", "secret_name": "s/sandbox"},
]})


def _particle_row(export: str, period: str, i: int, ops: int) -> dict[str, Any]:
    first = date.fromisoformat(f"{period}-01")
    return {
        "usage_date": first + timedelta(days=i % 28), "device_id": f"{i:024x}", "device_name": f"device {i}",
        "product_id": 7, "product_name": "trackers", "connectivity": "cellular", "data_operations": ops,
        "firmware_version": "6.1.0", "device_os": "6.1.0", "report_type": "devices",
        "date_period_start": first, "date_period_end": first, "vendor": "particle", "report_id": "1",
        "exported_at": datetime(2026, 11, 3, tzinfo=UTC), "source_key": f"raw/particle/{export}/{period}/r.csv",
        "extra": [],
    }


def _write_rows(out: Path, export: str, period: str, rows: list[dict[str, Any]], dataset: Any = particle) -> None:
    folder = out / "curated" / dataset.DATASET.name / f"export={export}" / f"period={period}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=dataset.DATASET.schema), folder / "data.parquet")


def _write(out: Path, export: str, period: str, operations: list[int]) -> None:
    _write_rows(out, export, period, [_particle_row(export, period, i, ops) for i, ops in enumerate(operations)])


@pytest.fixture
def con(tmp_path: Path) -> Any:
    _write(tmp_path, "fleet", "2026-09", [100, 100, 100, 400, 300, 7, 2000])   # 3,007: crosses both bounds
    _write(tmp_path, "fleet", "2026-10", [50, 60])                              # all within the included 250
    _write(tmp_path, "sandbox", "2026-10", [5, 6])                              # no rate card
    return query.connect(tmp_path, EXPORTS)


def test_rows_of_a_month_sum_to_the_months_tiered_price(con: Any) -> None:
    rate = EXPORTS.get("fleet").rate_card.metrics["data_operations"]  # type: ignore[union-attr]
    months = dict(con.execute(f"""SELECT x_Period, sum(BilledCost) FROM {VIEW_NAME}
        WHERE x_Export = 'fleet' GROUP BY ALL""").fetchall())
    assert months == {"2026-09": rate.price(Decimal(3007)), "2026-10": Decimal(0)}
    assert months["2026-09"] == Decimal("7.5") + Decimal("2.007")
    # Each row pays for its own slice of the month: none negative, the included quantity free.
    costs = [row[0] for row in con.execute(f"""SELECT BilledCost FROM {VIEW_NAME}
        WHERE x_Export = 'fleet' AND x_Period = '2026-09' ORDER BY ChargePeriodStart, ResourceId""").fetchall()]
    assert costs[:2] == [Decimal(0), Decimal(0)] and all(c >= 0 for c in costs)
    assert costs[2] == Decimal("0.5")   # 50 of its 100 above the included 250, at 0.01


def test_priced_and_unpriced_rows(con: Any) -> None:
    rows = con.execute(f"""SELECT x_Export, x_CostSource, BillingCurrency, PricingCategory, SkuPriceId,
        BillingAccountId, count(*), sum(ConsumedQuantity) FROM {VIEW_NAME} GROUP BY ALL ORDER BY 1""").fetchall()
    assert rows == [
        ("fleet", "RateCard", "USD", "Standard", "rate-card:fleet:data_operations", "acme", 9, Decimal(3117)),
        # No rate card: no cost, no currency, the quantities kept; a user-scope export is its own account.
        ("sandbox", None, None, None, None, "sandbox", 2, Decimal(11)),
    ]
    assert con.execute(f"SELECT count(*) FROM {VIEW_NAME} WHERE x_Export = 'sandbox' AND BilledCost IS NULL "
                       "AND EffectiveCost IS NULL AND ListCost IS NULL AND ContractedCost IS NULL").fetchone() == (2,)


def test_focus_values_of_a_particle_row(con: Any) -> None:
    cursor = con.execute(f"SELECT * FROM {VIEW_NAME} WHERE x_Export = 'fleet' AND x_Period = '2026-10' "
                         "ORDER BY ResourceId LIMIT 1")
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    assert row["ChargePeriodStart"] == datetime(2026, 10, 1) and row["ChargePeriodEnd"] == datetime(2026, 10, 2)
    assert row["BillingPeriodStart"] == datetime(2026, 10, 1) and row["BillingPeriodEnd"] == datetime(2026, 11, 1)
    assert (row["ProviderName"], row["PublisherName"], row["InvoiceIssuerName"]) == ("Particle",) * 3
    assert (row["ChargeCategory"], row["ChargeFrequency"], row["ServiceCategory"]) == (
        "Usage", "Usage-Based", "Internet of Things")
    assert (row["ResourceId"], row["ResourceType"], row["SubAccountId"]) == (f"{0:024x}", "Device", "7")
    assert row["x_Dimensions"] == (
        '{"connectivity":"cellular","device_os":"6.1.0","firmware_version":"6.1.0","report_type":"devices"}'
    )
    assert row["x_SourceKey"] == "raw/particle/fleet/2026-10/r.csv"


def test_every_branch_yields_the_same_columns_and_the_view_every_focus_column() -> None:
    sql = view_sql(EXPORTS.exports)
    for branch in branches(EXPORTS.exports):
        casts = [line for line in branch.sql().splitlines() if line.startswith("    CAST")]
        assert [line.rsplit(" AS ", 1)[-1].rstrip(",") for line in casts] == list(BRANCH_COLUMNS)
    for column in COLUMNS:
        assert f"AS {column.type.upper()}) AS {column.name}" in sql


def test_without_any_rate_card_the_view_prices_nothing(tmp_path: Path) -> None:
    _write(tmp_path, "sandbox", "2026-10", [5])
    plain = parse_exports({"exports": [{"name": "sandbox", "vendor": "particle", "secret_name": "s"}]})
    con = query.connect(tmp_path, plain)
    assert con.execute(f"SELECT BilledCost, ConsumedQuantity FROM {VIEW_NAME}").fetchall() == [(None, Decimal(5))]


def test_rows_that_tie_on_day_device_and_quantity_are_priced_in_a_fixed_order(tmp_path: Path) -> None:
    # Given two rows of one device and day with the same quantity, told apart only by their firmware, the one
    # that sorts last written first; the month's 400 data operations cross the included 250
    rows = [_particle_row("fleet", "2026-09", 0, 200) | {"firmware_version": version} for version in ("6.2.0", "6.1.0")]
    _write_rows(tmp_path, "fleet", "2026-09", rows)
    con = query.connect(tmp_path, EXPORTS)
    # When the view prices them
    costs = con.execute(f"""SELECT json_extract_string(x_Dimensions, '$.firmware_version'), BilledCost
        FROM {VIEW_NAME} ORDER BY 1""").fetchall()
    # Then the first in the view's order (by every column they differ in) takes the free slice, whatever the
    # order in the file: the same row pays the same in Athena and in DuckDB, run after run
    assert costs == [("6.1.0", Decimal(0)), ("6.2.0", Decimal("1.5"))]


def test_telnyx_dimensions_are_a_json_object_with_sorted_keys(tmp_path: Path) -> None:
    # Given a Telnyx row whose dimensions map keeps the order the export requested them in
    exports = parse_exports({"exports": [{"name": "sms", "vendor": "telnyx", "secret_name": "s/sms",
                                          "product": "messaging", "dimensions": ["direction", "currency"],
                                          "metrics": ["cost", "parts"]}]})
    row = {
        "product": "messaging", "user_id": None, "currency": "USD", "cost": Decimal("0.25"),
        "dimensions": [("direction", "outbound"), ("currency", "USD")], "metrics": [("parts", Decimal(12))],
        "managed_accounts": False, "requested_start": datetime(2026, 9, 1, tzinfo=UTC),
        "requested_end": datetime(2026, 10, 1, tzinfo=UTC), "vendor": "telnyx", "report_id": None,
        "exported_at": datetime(2026, 10, 3, tzinfo=UTC), "source_key": "raw/telnyx/sms/2026-09/usage.jsonl",
        "extra": [],
    }
    _write_rows(tmp_path, "sms", "2026-09", [row], dataset=telnyx)
    con = query.connect(tmp_path, exports)
    # When the view maps it
    found = con.execute(f"""SELECT x_Dimensions, x_Metric, ConsumedQuantity, BilledCost, BillingCurrency, x_CostSource
        FROM {VIEW_NAME}""").fetchall()
    # Then its dimensions read as Athena writes a map as JSON (keys sorted), its cost is Telnyx's own
    assert found == [('{"currency":"USD","direction":"outbound"}', "parts", Decimal(12), Decimal("0.25"), "USD",
                      "Vendor")]
