"""KORE's FOCUS charges: one per usage record and section (``kore_usage_records``, metrics ``data`` and
``commands``); cost: KORE's ``data_billed`` / ``commands_billed``.
"""

from __future__ import annotations

from collections.abc import Sequence

from report_exporter.focus.branch import Branch, json_object, literal
from report_exporter.models.exports import ExportSpec, VendorName
from report_exporter.vendors.kore.facts import FOCUS_METRICS


def branches(exports: Sequence[ExportSpec]) -> list[Branch]:
    data, commands = FOCUS_METRICS

    def section(metric: str, unit: str, description: str, parts: tuple[str, str]) -> dict[str, str]:
        return {
            "metric": literal(metric),
            "billing_account_id": "{t}.account_sid",
            "resource_id": "{t}.sim_sid",
            "resource_type": "CASE WHEN {t}.sim_sid IS NOT NULL THEN 'SIM' END",
            "service_name": "'KORE Programmable Wireless'",
            "service_category": "'Internet of Things'",
            "sku_id": literal(f"kore:{metric}"),
            "charge_description": literal(description),
            "charge_start": "{t}.period_start",
            "charge_end": "{t}.period_end",
            "consumed_quantity": f"{{t}}.{metric}_total",
            "consumed_unit": unit,
            "pricing_quantity": f"{{t}}.{metric}_total",
            "pricing_unit": unit,
            # What KORE billed for the record's section, in its billing units (a currency code).
            "vendor_cost": f"{{t}}.{metric}_billed",
            "vendor_currency": f"{{t}}.{metric}_billing_units",
            "dimensions": json_object({
                "granularity": "{t}.granularity",
                parts[0]: f"{{t}}.{metric}_{parts[0]}",
                parts[1]: f"{{t}}.{metric}_{parts[1]}",
                "total_consistent": f"{{t}}.{metric}_total_consistent",
            }),
        }

    return [
        Branch(VendorName.KORE, "kore_usage_records",
               section(data, "{t}.data_units", "Cellular data of one usage record", ("download", "upload"))),
        Branch(VendorName.KORE, "kore_usage_records",
               section(commands, "'Commands'", "SMS commands of one usage record", ("to_sim", "from_sim"))),
    ]
