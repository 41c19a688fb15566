"""HERE's FOCUS charges: one per report row (item, app, org, day or month; ``here_usage``); metric: the
item's name; quantity ``usage_value``, pricing quantity ``billable_value``; priced by the rate card on the
billable value. The billing account is the export's realm.
"""

from __future__ import annotations

from collections.abc import Sequence

from report_exporter.focus.branch import PERIOD_END, PERIOD_START, Branch, by_export, json_object
from report_exporter.models.exports import ExportSpec, VendorName
from report_exporter.vendors.here.export import HereExport


def branches(exports: Sequence[ExportSpec]) -> list[Branch]:
    account = by_export({e.name: e.realm for e in exports if isinstance(e, HereExport)}, "{t}.export")
    # Day or month detail dates each row; a summarized report's rows cover the whole month.
    start = (
        "COALESCE(CASE {t}.detail_level WHEN 'day' THEN date_trunc('day', CAST({t}.usage_datetime AS TIMESTAMP)) "
        "WHEN 'month' THEN date_trunc('month', CAST({t}.usage_datetime AS TIMESTAMP)) END, " + PERIOD_START + ")"
    )
    end = (
        "COALESCE(CASE {t}.detail_level "
        "WHEN 'day' THEN date_trunc('day', CAST({t}.usage_datetime AS TIMESTAMP)) + INTERVAL '1' DAY "
        "WHEN 'month' THEN date_trunc('month', CAST({t}.usage_datetime AS TIMESTAMP)) + INTERVAL '1' MONTH END, "
        + PERIOD_END + ")"
    )
    return [
        Branch(
            VendorName.HERE,
            "here_usage",
            {
                "metric": "{t}.item_name",
                "billing_account_id": account,
                "sub_account_id": "{t}.org_id",
                "sub_account_name": "{t}.org_name",
                "resource_id": "{t}.app_id",
                "resource_name": "{t}.app_name",
                "resource_type": "CASE WHEN {t}.app_id IS NOT NULL THEN 'App' END",
                "service_name": "{t}.category",
                "service_category": "'Other'",
                "sku_id": "{t}.feature_id",
                "charge_description": "{t}.item_name",
                "charge_start": start,
                "charge_end": end,
                "consumed_quantity": "{t}.usage_value",
                "consumed_unit": "{t}.unit",
                # HERE's billable value is what it charges for (usage less what is not billable).
                "pricing_quantity": "{t}.billable_value",
                "pricing_unit": "{t}.unit",
                "tags": "CASE WHEN {t}.billing_tag IS NOT NULL THEN "
                        + json_object({"billingTag": "{t}.billing_tag"}) + " END",
                "dimensions": json_object({
                    "app_hrn": "{t}.app_hrn",
                    "billing_charge_number": "{t}.billing_charge_number",
                    "billing_subscription_id": "{t}.billing_subscription_id",
                    "charge_type": "{t}.charge_type",
                    "detail_level": "{t}.detail_level",
                    "feature_id": "{t}.feature_id",
                    "project_hrn": "{t}.project_hrn",
                    "resource_hrn": "{t}.resource_hrn",
                    "usage_type_code": "{t}.usage_type_code",
                }),
            },
        )
    ]
