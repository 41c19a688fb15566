"""Particle's FOCUS charges: one per device and day (``particle_data_operations``); metric
``data_operations``; priced by the export's rate card. The billing account is an org-scope export's
organization, else the export's name.
"""

from __future__ import annotations

from collections.abc import Sequence

from report_exporter.focus.branch import Branch, by_export, json_object, literal
from report_exporter.models.exports import ExportSpec, VendorName
from report_exporter.vendors.particle.export import ParticleExport
from report_exporter.vendors.particle.facts import FOCUS_METRICS


def branches(exports: Sequence[ExportSpec]) -> list[Branch]:
    (metric,) = FOCUS_METRICS
    account = by_export({e.name: e.org for e in exports if isinstance(e, ParticleExport) and e.scope == "org"},
                        "{t}.export")
    return [
        Branch(
            VendorName.PARTICLE,
            "particle_data_operations",
            {
                "metric": literal(metric),
                # An org-scope export reads its organization; a user-scope one the (unnamed) user account.
                "billing_account_id": account,
                "sub_account_id": "{t}.product_id",
                "sub_account_name": "{t}.product_name",
                "resource_id": "{t}.device_id",
                "resource_name": "{t}.device_name",
                "resource_type": "'Device'",
                "service_name": "'Particle Device Cloud'",
                "service_category": "'Internet of Things'",
                "sku_id": literal(f"particle:{metric}"),
                "charge_description": "'Data operations of one device in one day'",
                "charge_start": "{t}.usage_date",
                "charge_end": "CAST({t}.usage_date AS TIMESTAMP) + INTERVAL '1' DAY",
                "consumed_quantity": "{t}.data_operations",
                "consumed_unit": "'Data Operations'",
                "pricing_quantity": "{t}.data_operations",
                "pricing_unit": "'Data Operations'",
                "dimensions": json_object({
                    "connectivity": "{t}.connectivity",
                    "device_os": "{t}.device_os",
                    "firmware_version": "{t}.firmware_version",
                    "report_type": "{t}.report_type",
                }),
            },
        )
    ]
