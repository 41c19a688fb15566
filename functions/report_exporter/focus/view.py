"""The ``focus_usage`` view's SQL: every vendor's charges (``vendors.py``), priced, in FOCUS columns.

The same text is the Glue view Athena runs (``infra/exporter_infra/constructs/focus_view.py``) and the DuckDB
view the local path runs (``report_exporter/local/query.py``, which holds the few DuckDB shims). It depends
on the exports file only through their rate cards and the per-export values in ``vendors.py``.

Pricing. For each export, month and metric, the rows are put in a fixed order (charge start, resource,
sub-account, raw object, quantity, then every other column they may differ in) and each row takes the slice
``[before, before + quantity)`` of the month's cumulative pricing quantity. A row's rate-card cost is the sum,
over the rate card's priced segments (``MetricRate.segments()``: tiers less the included quantity), of the
overlap of its slice with the segment times the segment's unit price. The slices tile the month's quantity,
so the rows of a month sum to exactly ``MetricRate.price(total)``: the included quantity and the tiers apply to
the month, not to each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from report_exporter.focus.branch import BRANCH_COLUMNS, literal
from report_exporter.focus.columns import AMOUNT, COLUMNS
from report_exporter.focus.vendors import branches
from report_exporter.models.exports import ExportSpec
from report_exporter.models.exports.rate_card import MetricRate

VIEW_NAME = "focus_usage"
_AMOUNT = AMOUNT.upper()
# The cost of a slice is a DECIMAL(29,9) quantity times a DECIMAL(19,9) price: exactly DECIMAL(38,18) in both
# engines (rate_card.py bounds prices to 9 decimals and 10 integer digits).
_SLICE = "DECIMAL(29,9)"
_PRICE = "DECIMAL(19,9)"


def _amount(value: Decimal) -> str:
    return f"CAST({literal(format(value, 'f'))} AS {_AMOUNT})"


def _metric_cost(rate: MetricRate) -> str:
    """The rate-card cost of a row of ``running`` (``quantity_before``, ``quantity_through``)."""
    terms = []
    for lower, upper, unit_price in rate.segments():
        top = "r.quantity_through" if upper is None else f"least(r.quantity_through, {_amount(upper)})"
        overlap = f"greatest({top} - greatest(r.quantity_before, {_amount(lower)}), {_amount(Decimal(0))})"
        price = f"CAST({literal(format(unit_price, 'f'))} AS {_PRICE})"
        terms.append(f"CAST({overlap} AS {_SLICE}) * {price}")
    # Everything within the included quantity (or at price 0) costs 0: a priced row, not an unpriced one.
    return " + ".join([_amount(Decimal(0)), *terms])


def _rate_card_cases(exports: Sequence[ExportSpec]) -> tuple[str, str]:
    """CASE expressions for the rate-card cost and currency of a row of ``running`` (NULL: no rate card)."""
    costs, currencies = [], []
    for export in exports:
        card = export.rate_card
        if card is None:
            continue
        for metric, rate in sorted(card.metrics.items()):
            when = f"WHEN r.export = {literal(export.name)} AND r.metric = {literal(metric)}"
            costs.append(f"      {when} THEN {_metric_cost(rate)}")
            currencies.append(f"      {when} THEN {literal(card.currency)}")
    if not costs:
        return f"CAST(NULL AS {_AMOUNT})", "CAST(NULL AS VARCHAR)"
    return (
        "CASE\n" + "\n".join(costs) + "\n    END",
        "CASE\n" + "\n".join(currencies) + "\n    END",
    )


# The order the rows of a month take their slices in. Rows that tie on every key are equal in every column the
# view shows (source_key names the raw object, so report_id and exported_at agree too): which of them takes which
# slice cannot be seen, and both engines answer the same rows.
_ORDER = "ORDER BY " + ", ".join(
    f"c.{name} NULLS LAST"
    for name in (
        "charge_start", "resource_id", "sub_account_id", "source_key", "pricing_quantity", "charge_end",
        "sku_id", "consumed_quantity", "consumed_unit", "pricing_unit", "resource_name", "sub_account_name",
        "billing_account_id", "charge_description", "service_name", "tags", "dimensions", "vendor_cost",
        "vendor_currency",
    )
)

_PROJECTION = {
    "AvailabilityZone": "NULL",
    "BilledCost": "p.cost",
    "BillingAccountId": "p.billing_account_id",
    "BillingAccountName": "NULL",
    "BillingCurrency": "p.currency",
    "BillingPeriodEnd": "CAST(p.period || '-01' AS TIMESTAMP) + INTERVAL '1' MONTH",
    "BillingPeriodStart": "CAST(p.period || '-01' AS TIMESTAMP)",
    "ChargeCategory": "'Usage'",
    "ChargeClass": "NULL",
    "ChargeDescription": "p.charge_description",
    "ChargeFrequency": "'Usage-Based'",
    "ChargePeriodEnd": "p.charge_end",
    "ChargePeriodStart": "p.charge_start",
    "CommitmentDiscountCategory": "NULL",
    "CommitmentDiscountId": "NULL",
    "CommitmentDiscountName": "NULL",
    "CommitmentDiscountStatus": "NULL",
    "CommitmentDiscountType": "NULL",
    "ConsumedQuantity": "p.consumed_quantity",
    "ConsumedUnit": "p.consumed_unit",
    "ContractedCost": "p.cost",
    "ContractedUnitPrice": "NULL",
    "EffectiveCost": "p.cost",
    "InvoiceIssuerName": "p.provider",
    "ListCost": "p.cost",
    "ListUnitPrice": "NULL",
    "PricingCategory": "CASE WHEN p.cost IS NOT NULL THEN 'Standard' END",
    "PricingQuantity": "p.pricing_quantity",
    "PricingUnit": "p.pricing_unit",
    "ProviderName": "p.provider",
    "PublisherName": "p.provider",
    "RegionId": "NULL",
    "RegionName": "NULL",
    "ResourceId": "p.resource_id",
    "ResourceName": "p.resource_name",
    "ResourceType": "p.resource_type",
    "ServiceCategory": "p.service_category",
    "ServiceName": "p.service_name",
    "SkuId": "p.sku_id",
    "SkuPriceId": (
        "CASE p.cost_source WHEN 'Vendor' THEN p.sku_id "
        "WHEN 'RateCard' THEN 'rate-card:' || p.export || ':' || p.metric END"
    ),
    "SubAccountId": "p.sub_account_id",
    "SubAccountName": "p.sub_account_name",
    "Tags": "p.tags",
    "x_Vendor": "p.vendor",
    "x_Export": "p.export",
    "x_Period": "p.period",
    "x_Dataset": "p.dataset",
    "x_Metric": "p.metric",
    "x_CostSource": "p.cost_source",
    "x_Dimensions": "p.dimensions",
    "x_SourceKey": "p.source_key",
    "x_ReportId": "p.report_id",
    "x_ExportedAt": "p.exported_at",
}


def view_sql(exports: Sequence[ExportSpec]) -> str:
    """The view's SELECT (no ``CREATE VIEW``, no trailing semicolon), for the configured ``exports``."""
    if [c.name for c in COLUMNS] != list(_PROJECTION):
        raise AssertionError("the projection and focus.columns.COLUMNS disagree")
    union = "\n  UNION ALL\n".join(branch.sql() for branch in branches(exports))
    cost, currency = _rate_card_cases(exports)
    running_columns = ", ".join(f"c.{name}" for name in BRANCH_COLUMNS)
    projection = ",\n  ".join(
        f"CAST({_PROJECTION[c.name]} AS {c.type.upper()}) AS {c.name}" for c in COLUMNS
    )
    zero = _amount(Decimal(0))
    return f"""WITH charges AS (
{union}
),
running AS (
  SELECT {running_columns},
    sum(COALESCE(c.pricing_quantity, {zero})) OVER (
      PARTITION BY c.export, c.period, c.metric
      {_ORDER}
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS quantity_through
  FROM charges AS c
),
sliced AS (
  SELECT r.*, r.quantity_through - COALESCE(r.pricing_quantity, {zero}) AS quantity_before
  FROM running AS r
),
rated AS (
  SELECT r.*,
    {cost.replace(chr(10), chr(10) + "  ")} AS rate_card_cost,
    {currency.replace(chr(10), chr(10) + "  ")} AS rate_card_currency
  FROM sliced AS r
),
priced AS (
  SELECT r.*,
    COALESCE(r.vendor_cost, r.rate_card_cost) AS cost,
    CASE WHEN r.vendor_cost IS NOT NULL THEN r.vendor_currency ELSE r.rate_card_currency END AS currency,
    CASE WHEN r.vendor_cost IS NOT NULL THEN 'Vendor' WHEN r.rate_card_cost IS NOT NULL THEN 'RateCard' END
      AS cost_source
  FROM rated AS r
)
SELECT
  {projection}
FROM priced AS p"""
