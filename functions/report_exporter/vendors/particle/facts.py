"""Particle data-operations reports (asynchronous: request, poll, download a pre-signed CSV).

The facts the code relies on, each with its public source, are listed below; the other modules of this
folder import their values from here.
"""

from __future__ import annotations

from report_exporter.models.exports.base import VendorName
from report_exporter.vendors.base import Cadence, VendorFacts

# Particle's own guidance: wait 15 s, then 30 s, then 60 s, then once a minute (seed 000). A report takes
# "seconds to several minutes", so once a minute holds for the first ten minutes; after that each wait is a
# tenth of the report's age, at most 30 min: a report pending a day costs 85 polls instead of 1,442.
CADENCE = Cadence(steps=(15, 30, 60), growth=0.1, cap=1800)

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
