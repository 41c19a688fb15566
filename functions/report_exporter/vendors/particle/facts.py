"""Particle data-operations reports (asynchronous: request, poll, download a pre-signed CSV).

The facts the code relies on, each with its public source; the other modules of this folder import their
values from here and point here ("see facts.py").

* Scopes by URL prefix: ``/v1/user/...`` (sandbox) or ``/v1/orgs/{org}/...``; a report is created under a
  service agreement (``GET .../service_agreements``, ``POST .../service_agreements/{id}/usage_reports``) and
  polled at ``GET .../usage_reports/{id}`` — [TUTORIAL], [SAMPLE].
* Pick the agreement whose ``attributes.state`` is ``active``, not ``data[0]`` — [MIRROR] (the sample takes
  ``data[0]``).
* "Metered device reports can only query dates within the last 6 months" (:data:`LOOKBACK_DAYS`) — [MIRROR].
* Dates are ``YYYY-MM-DD``; the report's status is ``data.attributes.state`` (``pending``, then ``available``
  with ``download_url``) — [TUTORIAL], [MIRROR].
* "At most 3 outstanding report requests" per requester (:data:`MAX_OUTSTANDING_REPORTS`); the error for a
  fourth is not documented — [TUTORIAL].
* Poll guidance: wait 15 s, then 30 s, then 60 s, then once a minute (:data:`CADENCE`); a report takes
  "seconds to several minutes" — [TUTORIAL].
* Reports can be downloaded for 7 days, then are deleted; ``expires_at`` says when — [TUTORIAL].
* The download URL is unguessable but grants access to every device's data: a secret, never logged, and
  sent without the Particle token — [TUTORIAL], [SAMPLE].
* No official column list: the CSV may start with a preamble; the header starts ``Date,Device ID`` and
  carries ``Data Operations`` (:data:`HEADER_LABELS`), an integer count per device and day — [TUTORIAL]
  (what a data operation is), third-party clients (the column names; unverified).
* Rate limit 10,000 requests per 5 minutes per source IP, HTTP 429 beyond; 401 means the token is invalid or
  expired (retrying does not help); errors are ``{"ok": false, "error", "error_description"}`` — [API].

Sources:

* [TUTORIAL] Particle, "Data operations reports" tutorial:
  https://docs.particle.io/tutorials/device-cloud/data-report-tutorial/ (source:
  https://github.com/particle-iot/docs, ``src/content/tutorials/device-cloud/data-report-tutorial.md``)
* [SAMPLE] Particle's node-data-report sample:
  https://github.com/particle-iot/docs/tree/3ec5e7b7652edb8fbd9a05ed0f31a3c70a579bce/src/assets/files/projects/node-data-report
* [MIRROR] The Particle API reference's service-agreements section, mirrored as OpenAPI:
  https://github.com/api-evangelist/particle/blob/main/openapi/particle-serviceagreements-api-openapi.yml
* [API] Particle Cloud API reference: https://docs.particle.io/reference/cloud-apis/api/
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# Particle's own guidance: wait 15 s, then 30 s, then 60 s, then once a minute. A report takes
# "seconds to several minutes", so once a minute holds for the first ten minutes; after that each wait is a
# tenth of the report's age, at most 30 min: a report pending a day costs 85 polls instead of 1,442.
CADENCE = Cadence(steps=(15, 30, 60), growth=0.1, cap=1800)

# "Metered device reports can only query dates within the last 6 months."
LOOKBACK_DAYS = 183
# At most 3 outstanding report requests per requester.
MAX_OUTSTANDING_REPORTS = 3
# The labels that make a line of the report CSV its header (a preamble may come first). Shared by the
# dataset's reader and the download's record counter, which must agree on where the data starts.
HEADER_LABELS = ("Date", "Device ID", "Data Operations")
# The metric of each FOCUS row of a Particle export (focus.py): one per device and day.
FOCUS_METRICS = ("data_operations",)

FACTS = VendorFacts(
    vendor=VendorName.PARTICLE,
    provider="Particle",
    secret_fields=("access_token",),
    datasets=("particle_data_operations",),
    cadence=CADENCE,
    docs=(
        "https://docs.particle.io/reference/cloud-apis/api/",
        "https://github.com/particle-iot/docs/tree/3ec5e7b7652edb8fbd9a05ed0f31a3c70a579bce/src/assets/files/projects/node-data-report",
    ),
)
