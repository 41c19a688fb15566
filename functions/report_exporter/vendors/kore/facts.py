"""KORE Wireless usage records (synchronous, paginated JSON behind an OAuth2 token).

The facts the code relies on, each with its public source, are listed below; the other modules of this
folder import their values from here.
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# Synchronous: RequestReport answers READY and the wait loop is skipped; the cadence is never used.
CADENCE = Cadence(steps=(5,))

FACTS = VendorFacts(
    vendor=VendorName.KORE,
    provider="KORE Wireless",
    secret_fields=("client_id", "client_secret"),
    datasets=("kore_usage_records",),
    cadence=CADENCE,
    docs=(
        "https://docs.korewireless.com/en-us/api/products/programmable-wireless/account-usagerecord-resource",
        "https://docs.korewireless.com/en-us/developers/api-management/auth",
        "https://github.com/korewireless/kore-openapi",
    ),
)
