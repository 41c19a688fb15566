"""Telnyx usage reports (synchronous, paginated JSON, kept as JSON lines).

The facts the code relies on, each with its public source, are listed below; the other modules of this
folder import their values from here.
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

CADENCE = Cadence(steps=(60,))

FACTS = VendorFacts(
    vendor=VendorName.TELNYX,
    provider="Telnyx",
    secret_fields=("api_key",),
    datasets=("telnyx_usage",),
    cadence=CADENCE,
    docs=(
        "https://developers.telnyx.com/api/usage-reports/get-usage-report",
        "https://developers.telnyx.com/development/api-fundamentals/reliability/rate-limiting",
    ),
)
