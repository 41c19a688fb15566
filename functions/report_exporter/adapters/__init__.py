"""The vendor registry: one line per vendor, no import scanning."""

from __future__ import annotations

from report_exporter.adapters.base import AdapterFactory, ReportAdapter
from report_exporter.adapters.here import HereAdapter
from report_exporter.adapters.kore import KoreAdapter
from report_exporter.adapters.particle import ParticleAdapter
from report_exporter.adapters.senet import SenetAdapter
from report_exporter.adapters.telnyx import TelnyxAdapter
from report_exporter.models.exports import VendorName

ADAPTERS: dict[VendorName, AdapterFactory] = {
    VendorName.PARTICLE: ParticleAdapter,
    VendorName.HERE: HereAdapter,
    VendorName.TELNYX: TelnyxAdapter,
    VendorName.SENET: SenetAdapter,
    VendorName.KORE: KoreAdapter,
}


def adapter_factory(vendor: VendorName) -> AdapterFactory:
    try:
        return ADAPTERS[vendor]
    except KeyError:
        raise NotImplementedError(f"no adapter for vendor {vendor.value!r} yet") from None


__all__ = ["ADAPTERS", "AdapterFactory", "ReportAdapter", "adapter_factory"]
