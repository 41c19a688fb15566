"""The embedded default: demo exports and, per vendor, the simulator that stands in for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from report_exporter.local.simulators.base import Simulator
from report_exporter.models.exports import ExportsFile, VendorName, load_exports
from report_exporter.vendors.here.simulator import HereSimulator
from report_exporter.vendors.kore.simulator import KoreSimulator
from report_exporter.vendors.particle.simulator import ParticleSimulator
from report_exporter.vendors.senet.simulator import SenetSimulator
from report_exporter.vendors.telnyx.simulator import TelnyxSimulator

DEMO_EXPORTS = Path(__file__).with_name("demo_exports.toml")

SIMULATORS: dict[VendorName, Callable[[], Simulator]] = {
    VendorName.PARTICLE: lambda: ParticleSimulator(pending_polls=3, rows=1200, devices=40, preamble=True),
    VendorName.HERE: lambda: HereSimulator(pending_polls=2, rows=2000),
    VendorName.TELNYX: lambda: TelnyxSimulator(rows=36, realistic=True),
    VendorName.SENET: lambda: SenetSimulator(unavailable_probes=1),
    VendorName.KORE: lambda: KoreSimulator(page_size=10, inconsistent=2),
}


def demo_exports() -> ExportsFile:
    return load_exports(DEMO_EXPORTS)
