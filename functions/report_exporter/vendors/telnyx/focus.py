"""Telnyx's FOCUS charges: one per report row (product and combination of the requested dimensions;
``telnyx_usage``); metric: the export's first metric other than ``cost``; cost: Telnyx's own ``cost``
(else a rate card).
"""

from __future__ import annotations

from collections.abc import Sequence

from report_exporter.focus.branch import Branch, by_export
from report_exporter.models.exports import ExportSpec, VendorName
from report_exporter.vendors.telnyx.export import TelnyxExport


def branches(exports: Sequence[ExportSpec]) -> list[Branch]:
    metrics = {e.name: e.focus_metric for e in exports if isinstance(e, TelnyxExport) and e.focus_metric}
    metric = by_export(metrics, "CAST(NULL AS VARCHAR)")
    quantity = f"CASE WHEN contains(map_keys({{t}}.metrics), {metric}) THEN {{t}}.metrics[{metric}] END"
    return [
        Branch(
            VendorName.TELNYX,
            "telnyx_usage",
            {
                "metric": metric,
                "billing_account_id": "{t}.export",
                "sub_account_id": "{t}.user_id",
                "service_name": "{t}.product",
                "service_category": "'Networking'",
                "sku_id": f"'telnyx:' || {{t}}.product || ':' || {metric}",
                "charge_description": f"{{t}}.product || ' ' || {metric}",
                "charge_start": "{t}.requested_start",
                "charge_end": "{t}.requested_end",
                "consumed_quantity": quantity,
                "consumed_unit": metric,
                "pricing_quantity": quantity,
                "pricing_unit": metric,
                # The row's cost, as Telnyx reports it (the dataset's ``cost`` column, the metric 'cost').
                "vendor_cost": "{t}.cost",
                "vendor_currency": "{t}.currency",
                # Entries sorted first: Trino writes a map's keys sorted, DuckDB in the map's own order.
                "dimensions": "json_format(CAST(map_from_entries(array_sort(map_entries({t}.dimensions))) AS JSON))",
            },
        )
    ]
