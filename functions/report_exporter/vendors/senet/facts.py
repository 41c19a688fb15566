"""Senet usage (synchronous, per Application and month: a JSON summary and a CSV details file).

The facts the code relies on, each with its public source, are listed below; the other modules of this
folder import their values from here.
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# The file appears once, on the 1st (docs above): probing often gains nothing. CheckReport caps each
# wait at the export's deadline.
CADENCE = Cadence(steps=(900, 1800, 3600))

FACTS = VendorFacts(
    vendor=VendorName.SENET,
    provider="Senet",
    secret_fields=("api_key",),
    datasets=("senet_application_month", "senet_device_month"),
    cadence=CADENCE,
    docs=(
        "https://docs.senetco.io/ap/appUsageApi/",
        "https://docs.senetco.io/ap/appUsage/",
    ),
)
