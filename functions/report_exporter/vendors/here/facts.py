"""HERE partner usage reports (asynchronous: OAuth 1.0a token, request, poll, download a gzip CSV).

The facts the code relies on, each with its public source, are listed below; the other modules of this
folder import their values from here.
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# HERE documents no poll rate limit and reports of up to 1,000,000 rows take minutes to hours to build
# (vendors.md §2.7 suggests polling no faster than every 30-60 s). Once a minute for the first ten minutes
# finds a small report within a minute; after that each wait is a tenth of the report's age, at most 30 min,
# so a report pending a day costs 84 polls (about 800 history events).
CADENCE = Cadence(steps=(60,), growth=0.1, cap=1800)

FACTS = VendorFacts(
    vendor=VendorName.HERE,
    provider="HERE Technologies",
    secret_fields=("access_key_id", "access_key_secret"),
    datasets=("here_usage",),
    cadence=CADENCE,
    docs=(
        "https://docs.here.com/usage/openapi/usage-v2-openapi.yml",
        "https://docs.here.com/usage/docs/cost-management-tutorials",
        "https://developer.here.com/documentation/authentication/dev_guide/topics/request-constructing.html",
    ),
)
