"""KORE Wireless usage records (synchronous, paginated JSON behind an OAuth2 token).

The facts the code relies on, each with its public source; the other modules of this folder import their
values from here and point here ("see facts.py").

* ``GET https://programmable-wireless.api.korewireless.com/v1/UsageRecords`` (the account, every SIM;
  :data:`BASE_URL`) or ``/v1/Sims/{SimSid}/UsageRecords`` (one SIM) — [USAGE], [SIM-USAGE].
* ``Start``/``End`` are ISO 8601, both inclusive; ``Granularity`` ``all``, ``daily`` or ``hourly``;
  ``PageSize`` default 50, maximum 1000 (:data:`MAX_PAGE_SIZE`); follow ``meta.next_page_url`` — [OPENAPI].
* The page (``UsageList``) holds ``usage_records`` (:data:`RECORDS_KEY`, named by ``meta.key``) and ``meta``;
  KORE's general guidelines call that object ``meta-data`` (:data:`META_KEYS`) — [OPENAPI], [RESPONSES].
* A record has ``account_sid``, ``period {start, end}`` (GMT), ``data`` (``total``, ``download``,
  ``upload``, ``units``, ``billed``, ``billing_units``) and ``commands`` (``total``, ``to_sim``,
  ``from_sim``, ``billed``, ``billing_units``), each with ``home``, ``national_roaming`` objects (empty:
  null) and ``international_roaming`` (an array in the spec, an object in the docs' table: both accepted);
  ``data`` and ``commands`` are the FOCUS metrics (:data:`FOCUS_METRICS`) — [USAGE], [OPENAPI].
* "Usage information will be retained for 18 months, after which it will be deleted"
  (:data:`RETENTION_MONTHS`) — [USAGE].
* "All usage will typically be processed within 48 hours from when it occurred" (:data:`SETTLE_TIME`) —
  [USAGE].
* The maximum range per ``Granularity`` is not documented; we take Twilio's for the API KORE's derives
  from: hourly 31 days, daily 3 months, all 18 months (:data:`HOURLY_MAX_SPAN`, :data:`DAILY_MAX_MONTHS`,
  :data:`ALL_MAX_MONTHS`) — [TWILIO] (inferred).
* Token: ``POST https://api.korewireless.com/api-services/v1/auth/token`` (:data:`TOKEN_URL`), form body
  ``grant_type=client_credentials`` with the client id and secret; answers ``access_token`` and
  ``expires_in``; refused credentials get 401 — [AUTH].
* Errors: ``{code, status, message, more_info}`` — [OPENAPI], [RESPONSES].

Sources:

* [USAGE] KORE, Account UsageRecord resource:
  https://docs.korewireless.com/en-us/api/products/programmable-wireless/account-usagerecord-resource
* [SIM-USAGE] KORE, SIM UsageRecord resource:
  https://docs.korewireless.com/en-us/api/products/programmable-wireless/sim-usagerecord-resource
* [OPENAPI] KORE's OpenAPI specs (``ProgrammableWireless/yaml/kore-programmable-wireless-v1.yaml``):
  https://github.com/korewireless/kore-openapi
* [RESPONSES] KORE, API responses: https://docs.korewireless.com/en-us/developers/api-management/api-responses
* [AUTH] KORE, API authentication: https://docs.korewireless.com/en-us/developers/api-management/auth
* [TWILIO] Twilio error 83604 (usage record ranges): https://twilio.com/docs/api/errors/83604
"""

from __future__ import annotations

from datetime import timedelta

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# Synchronous: RequestReport answers READY and the wait loop is skipped; the cadence is never used.
CADENCE = Cadence(steps=(5,))

BASE_URL = "https://programmable-wireless.api.korewireless.com"
TOKEN_URL = "https://api.korewireless.com/api-services/v1/auth/token"
MAX_PAGE_SIZE = 1000
RETENTION_MONTHS = 18
# Max range per Granularity is undocumented; these are Twilio's for the API KORE's derives from (inferred).
HOURLY_MAX_SPAN = timedelta(days=31)
DAILY_MAX_MONTHS = 3
ALL_MAX_MONTHS = 18
SETTLE_TIME = timedelta(hours=48)
# Where a list page keeps its records and its paging object. Both the adapter (which counts records) and
# the dataset (which reads them) need these, and neither imports the other: the adapter must not pull in
# pyarrow, the dataset must not pull in httpx.
RECORDS_KEY = "usage_records"
META_KEYS = ("meta", "meta-data", "metadata")
# The metrics of a KORE export's FOCUS rows (focus.py): data and commands per record.
FOCUS_METRICS = ("data", "commands")

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
