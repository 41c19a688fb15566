"""Senet usage (synchronous, per Application and month: a JSON summary and a CSV details file).

The facts the code relies on, each with its public source; the other modules of this folder import their
values from here and point here ("see facts.py").

* ``GET https://api.senetco.io/rest/integration/usage/summary?eui=&month=&year=`` (JSON summary of one LoRa
  Application and month) and ``.../details?eui=&month=&year=`` (``text/csv``, every device of the
  Application with its usage); ``eui`` is the Application's EUI-64 in hex; no date range, no paging, no
  asynchronous job — [API].
* ``Authorization: <API key>``, the raw key with no ``Bearer`` prefix; Usage-API keys differ from
  Onboarding keys — [API], [KEYS].
* Statuses: 400 bad parameters, 403 authorization failure, 404 the Application is not found *or* has no
  usage for that month, 500 "Server is busy"; bodies are not documented — [API].
* On the first of each month the Application Details file of the prior month is generated (so a 404 for
  the month just ended means "not yet") (:data:`CADENCE`) — [USAGE].
* Summary fields include ``numberOfDevices``, ``numberOfActiveDevices``, ``totalUpPackets``,
  ``totalDownPackets`` (the FOCUS metrics :data:`FOCUS_METRICS`); the details CSV's column list is not
  published, so unknown columns are kept — [API], [USAGE].
* A parallel deployment answers the same paths at ``https://api.senraco.io`` — [SENRACO].

Sources:

* [API] Senet, Usage API: https://docs.senetco.io/ap/appUsageApi/
* [USAGE] Senet, Application usage: https://docs.senetco.io/ap/appUsage/
* [KEYS] Senet, API keys: https://docs.senetco.io/ap/adminApiKeys
* [SENRACO] https://docs.senraco.io/ap/appUsageApi/
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# The file appears once, on the 1st (above): probing often gains nothing. CheckReport caps each
# wait at the export's deadline.
CADENCE = Cadence(steps=(900, 1800, 3600))

# The metrics of a Senet export's FOCUS rows (focus.py): active devices per Application and month (summary),
# uplink and downlink packets per device and month (details).
FOCUS_METRICS = ("active_devices", "uplinks", "downlinks")

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
