"""The adapter registry: one line per vendor, no import scanning. Only the vendor-calling Lambdas import it."""

from __future__ import annotations

from report_exporter.adapters.base import AdapterFactory, ReportAdapter
from report_exporter.models.exports import VendorName
from report_exporter.vendors.here.adapter import HereAdapter
from report_exporter.vendors.kore.adapter import KoreAdapter
from report_exporter.vendors.particle.adapter import ParticleAdapter
from report_exporter.vendors.senet.adapter import SenetAdapter
from report_exporter.vendors.telnyx.adapter import TelnyxAdapter

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
