"""Saved Athena queries over the ``focus_usage`` view; the demo and the tests run them with DuckDB.

Costs are summed per currency: the view converts nothing, so vendors billing in different currencies are
compared side by side, never added up.
"""

from __future__ import annotations

from report_exporter.datasets.base import NamedQuery

COST_BY_VENDOR_SERVICE_MONTH = NamedQuery(
    "focus_cost_by_vendor_service_month",
    "FOCUS view: billed and effective cost per vendor, service and currency per month, with the unpriced charges",
    """SELECT x_Period AS period, ProviderName AS provider, ServiceName AS service, BillingCurrency AS currency,
       sum(BilledCost) AS billed_cost, sum(EffectiveCost) AS effective_cost,
       count(*) AS charges, count(*) - count(BilledCost) AS unpriced_charges
FROM focus_usage
GROUP BY x_Period, ProviderName, ServiceName, BillingCurrency
ORDER BY period, provider, service, currency""",
)

TOP_RESOURCES_LATEST_MONTH = NamedQuery(
    "focus_top_resources_latest_month",
    "FOCUS view: the 20 resources (devices, SIMs, apps, Applications) that cost most in the latest month, any vendor",
    """SELECT x_Period AS period, ProviderName AS provider, ResourceType AS resource_type, ResourceId AS resource_id,
       max(ResourceName) AS resource_name, BillingCurrency AS currency, sum(EffectiveCost) AS effective_cost
FROM focus_usage
WHERE ResourceId IS NOT NULL AND EffectiveCost IS NOT NULL
  AND x_Period = (SELECT max(x_Period) FROM focus_usage WHERE EffectiveCost IS NOT NULL)
GROUP BY x_Period, ProviderName, ResourceType, ResourceId, BillingCurrency
ORDER BY effective_cost DESC, provider, resource_id
LIMIT 20""",
)

SERVICE_MONTH_OVER_MONTH = NamedQuery(
    "focus_service_month_over_month",
    "FOCUS view: effective cost per vendor, service and currency per month, with the change from the month before",
    """WITH monthly AS (
  SELECT ProviderName AS provider, ServiceName AS service, BillingCurrency AS currency, x_Period AS period,
         sum(EffectiveCost) AS effective_cost
  FROM focus_usage
  WHERE EffectiveCost IS NOT NULL
  GROUP BY ProviderName, ServiceName, BillingCurrency, x_Period
)
SELECT provider, service, currency, period, effective_cost,
       lag(effective_cost) OVER (PARTITION BY provider, service, currency ORDER BY period) AS previous_month,
       effective_cost - lag(effective_cost) OVER (PARTITION BY provider, service, currency ORDER BY period) AS change
FROM monthly
ORDER BY provider, service, currency, period""",
)

USAGE_WITHOUT_PRICE = NamedQuery(
    "focus_usage_without_price",
    "FOCUS view: usage with no cost (no vendor cost and no rate card for its metric), per export, metric and month",
    """SELECT x_Period AS period, x_Export AS export, ProviderName AS provider, ServiceName AS service,
       x_Metric AS metric, ConsumedUnit AS unit, count(*) AS charges,
       sum(ConsumedQuantity) AS consumed_quantity, sum(PricingQuantity) AS pricing_quantity
FROM focus_usage
WHERE BilledCost IS NULL
GROUP BY x_Period, x_Export, ProviderName, ServiceName, x_Metric, ConsumedUnit
ORDER BY period, export, metric, unit""",
)

QUERIES = (COST_BY_VENDOR_SERVICE_MONTH, TOP_RESOURCES_LATEST_MONTH, SERVICE_MONTH_OVER_MONTH, USAGE_WITHOUT_PRICE)
