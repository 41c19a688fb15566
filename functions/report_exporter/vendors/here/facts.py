"""HERE partner usage reports (asynchronous: OAuth 1.0a token, request, poll, download a gzip CSV).

The facts the code relies on, each with its public source; the other modules of this folder import their
values from here and point here ("see facts.py").

* Reports: ``POST /usage/realms/{realmId}/reports`` (201 with ``{"id", "status"}``), status at
  ``GET .../reports/{reportId}``, the gzip CSV at ``GET .../reports/{reportId}/output``; base URL
  ``https://usage.bam.api.here.com/v2`` — [GENERATE], [OPENAPI].
* ``realmId`` (the org id) is 5-30 characters; without ``subAccounts`` only the partner org's usage is
  reported — [GENERATE].
* ``startDate``/``endDate`` are ``yyyy-MM-dd'T'HH:mm:ss``, in UTC; "The maximum time range that can be
  queried is 95 days" (:data:`MAX_RANGE_DAYS`); "hour level is not supported" for report requests; a report
  holds at most 1,000,000 records — [GENERATE].
* ``X-Correlation-ID`` is marked required by the spec (it lets HERE support trace one call) — [OPENAPI].
* Status values: ``pending``, ``inProgress``, ``completed``, ``failed``, ``archived``; the documented
  ``resultHref`` example is not a usable URL, so the download URL is built from the report id — [OPENAPI].
* Errors: ``ErrorResponse`` ``{title, errorId, status, code, cause, action, correlationId, details}`` —
  [OPENAPI]. No rate limit is documented for the usage API; polling every 30-60 s or slower is our choice.
* Token: ``POST https://account.api.here.com/oauth2/token`` (:data:`TOKEN_URL`) signed with OAuth 1.0a
  HMAC-SHA256 by the access key id and secret, body ``grant_type=client_credentials``; tokens last 24 hours
  (``expires_in``); form requests get snake_case fields, JSON requests camelCase ones — [TOKEN],
  [TOKEN-API].
* Token errors: ``{errorId, httpStatus, errorCode, message, errorFields}`` — [TOKEN-API].
* CSV: each header label ends with its field's camelCase token in parentheses (``Usage Amount
  (billableValue)``), every value double-quoted; ``usageDateTime`` is empty at the ``summarized`` level and
  its format is not documented; partners get an extra org-name column whose label is not documented —
  [CSV], [OPENAPI].

Sources:

* [GENERATE] HERE, "Partner generate usage report requests":
  https://developer.here.com/documentation/cost-management/dev_guide/topics/tutorial-partner-generate-usage-requests.html
* [OPENAPI] HERE Cost Management Usage API v2: https://docs.here.com/usage/openapi/usage-v2-openapi.yml
* [TOKEN] HERE authentication, constructing a token request:
  https://developer.here.com/documentation/authentication/dev_guide/topics/request-constructing.html
* [TOKEN-API] HERE OAuth 2.0 token API (mirror of HERE's spec):
  https://github.com/api-evangelist/here/blob/main/openapi/_original/here-oauth2-token-v1-openapi.yml
* [CSV] HERE, usage CSV by billing tag:
  https://developer.here.com/documentation/cost-management/dev_guide/topics/tutorial-get-usage-csv-by-billing-tag.html
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# HERE documents no poll rate limit and reports of up to 1,000,000 rows take minutes to hours to build
# (so no faster than every 30-60 s). Once a minute for the first ten minutes
# finds a small report within a minute; after that each wait is a tenth of the report's age, at most 30 min,
# so a report pending a day costs 84 polls (about 800 history events).
CADENCE = Cadence(steps=(60,), growth=0.1, cap=1800)

# "The maximum time range that can be queried is 95 days."
MAX_RANGE_DAYS = 95
TOKEN_URL = "https://account.api.here.com/oauth2/token"

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
