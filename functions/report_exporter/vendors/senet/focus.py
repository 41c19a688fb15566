"""Senet's FOCUS charges: one per Application and month (``senet_application_month``, metric
``active_devices``) and one per device, month and direction (``senet_device_month``, metrics ``uplinks``
and ``downlinks``); priced by the rate card. The summary's packet totals are not charged again: packets
come from the per-device details only, so none is counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from report_exporter.focus.branch import PERIOD_END, PERIOD_START, Branch, json_object, literal
from report_exporter.models.exports import ExportSpec, VendorName
from report_exporter.vendors.senet.facts import FOCUS_METRICS


def branches(exports: Sequence[ExportSpec]) -> list[Branch]:
    active, uplinks, downlinks = FOCUS_METRICS
    application = {
        "metric": literal(active),
        "billing_account_id": "{t}.export",
        "sub_account_id": "{t}.application_eui",
        "resource_id": "{t}.application_eui",
        "resource_type": "'Application'",
        "service_name": "'Senet LoRaWAN Network'",
        "service_category": "'Internet of Things'",
        "sku_id": literal(f"senet:{active}"),
        "charge_description": "'Active devices of one Application in one month'",
        "charge_start": PERIOD_START,
        "charge_end": PERIOD_END,
        "consumed_quantity": "{t}.number_of_active_devices",
        "consumed_unit": "'Devices'",
        "pricing_quantity": "{t}.number_of_active_devices",
        "pricing_unit": "'Devices'",
        "dimensions": json_object({
            name: f"{{t}}.{name}"
            for name in (
                "number_of_devices", "number_of_reporting_devices", "number_of_devices_evaluated",
                "total_registrations", "total_activations", "total_deactivations", "total_up_packets",
                "total_down_packets", "total_security_sessions", "total_local_up_msg", "total_foreign_up_msg",
            )
        }),
    }

    def device(metric: str, column: str, direction: str) -> dict[str, str]:
        return {
            "metric": literal(metric),
            "billing_account_id": "{t}.export",
            "sub_account_id": "{t}.application_eui",
            "resource_id": "{t}.dev_eui",
            "resource_type": "'Device'",
            "service_name": "'Senet LoRaWAN Network'",
            "service_category": "'Internet of Things'",
            "sku_id": literal(f"senet:{metric}"),
            "charge_description": literal(f"{direction} packets of one device in one month"),
            "charge_start": PERIOD_START,
            "charge_end": PERIOD_END,
            "consumed_quantity": f"{{t}}.{column}",
            "consumed_unit": "'Packets'",
            "pricing_quantity": f"{{t}}.{column}",
            "pricing_unit": "'Packets'",
            "dimensions": json_object({
                "contract_id": "{t}.contract_id",
                "security_sessions": "{t}.security_sessions",
            }),
        }

    return [
        Branch(VendorName.SENET, "senet_application_month", application),
        Branch(VendorName.SENET, "senet_device_month", device(uplinks, "uplinks", "Uplink")),
        Branch(VendorName.SENET, "senet_device_month", device(downlinks, "downlinks", "Downlink")),
    ]
