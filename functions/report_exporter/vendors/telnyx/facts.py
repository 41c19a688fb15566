"""Telnyx usage reports (synchronous, paginated JSON, kept as JSON lines).

The facts the code relies on, each with its public source; the other modules of this folder import their
values from here and point here ("see facts.py").

* ``GET https://api.telnyx.com/v2/usage_reports``: one ``product`` per call, with ``dimensions`` and
  ``metrics`` that ``GET /usage_reports/options`` lists for it; ``filter[<dimension>]=<value>``;
  ``Authorization: Bearer <API v2 key>``; the endpoint is BETA — [USAGE], [GUIDE].
* ``start_date``/``end_date`` are ``YYYY-MM-DDTHH:mm:ssZ``, start inclusive, end exclusive, billing computed
  in UTC; "The maximum time range is 31 days" (:data:`MAX_RANGE`) — [USAGE], [GUIDE].
* Pages: ``page[number]`` from 1, ``page[size]`` at most 5000 (:data:`MAX_PAGE_SIZE`, default 20); ``meta``
  carries ``total_pages``, ``total_results``, ``page_number``, ``page_size`` (some renderings as strings);
  each row is the chosen dimensions and metrics plus ``product`` (open schema), e.g. messaging rows with
  ``direction``, ``product_name``, ``country_iso`` — [USAGE].
* ``cost`` is a metric: Telnyx's own cost of the row (:data:`COST_METRIC`) — [USAGE].
* Errors: ``{"errors": [{"code", "title", "detail", "source", "meta"}]}``; documented statuses 200, 400,
  500 — [USAGE]. 429 with ``x-ratelimit-*`` headers when rate-limited — [RATE].

Sources:

* [USAGE] Telnyx, "Get Telnyx product usage data (BETA)":
  https://developers.telnyx.com/api/usage-reports/get-usage-report
* [GUIDE] Telnyx, usage reports guide: https://developers.telnyx.com/docs/reporting/usage-reports
* [RATE] Telnyx, rate limiting:
  https://developers.telnyx.com/development/api-fundamentals/reliability/rate-limiting
"""

from __future__ import annotations

from datetime import timedelta

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

CADENCE = Cadence(steps=(60,))

# "The maximum time range is 31 days" per request.
MAX_RANGE = timedelta(days=31)
MAX_PAGE_SIZE = 5000
# The metric that carries Telnyx's own cost; the FOCUS view uses it as the billed cost (focus.py).
COST_METRIC = "cost"

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
