"""One folder per vendor: ``vendors/<vendor>/`` holds everything the project knows of that vendor.

Each folder has the same modules: ``facts`` (documented limits, cadence, secret fields, sources), ``export``
(the config model), ``adapter`` (the HTTP client), ``dataset`` (curated tables), ``focus`` (FOCUS charges)
and ``simulator`` (local only). Which of them a Lambda bundle holds is decided by its handlers' imports, so
WriteParquet (pyarrow) never imports an adapter (httpx), and no Lambda imports a simulator.

The registries, one line per vendor each: :data:`FACTS` here, ``models.exports.ExportSpec``,
``adapters.registry.ADAPTERS``, ``datasets.registry.DATASETS``, ``focus.vendors.BRANCHES`` and
``local.demo.SIMULATORS``.
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import VendorFacts
from report_exporter.vendors.here.facts import FACTS as HERE
from report_exporter.vendors.kore.facts import FACTS as KORE
from report_exporter.vendors.particle.facts import FACTS as PARTICLE
from report_exporter.vendors.senet.facts import FACTS as SENET
from report_exporter.vendors.telnyx.facts import FACTS as TELNYX

FACTS: dict[VendorName, VendorFacts] = {
    VendorName.PARTICLE: PARTICLE,
    VendorName.HERE: HERE,
    VendorName.TELNYX: TELNYX,
    VendorName.SENET: SENET,
    VendorName.KORE: KORE,
}

__all__ = ["FACTS", "VendorFacts"]
