"""Particle data-operations report CSV -> ``particle_data_operations`` (see facts.py).

The column list is unverified upstream, so the header row is found by its labels (a preamble may
precede it), known labels are typed, and any other column is kept verbatim in ``extra``
(``datasets/csvread.py`` reads the CSV; ``datasets/values.py`` states what each type accepts).

Duplicates: labels are matched exactly (surrounding blanks ignored). When a label appears twice
(``Data Operations,Data Operations``), the leftmost fills the typed column and the other is kept in
``extra`` under its label (``extra['Data Operations']``); a label repeated within ``extra`` itself gets
`` #2``, `` #3``... Nothing is dropped.

The row's date is ``Date`` (``usage_date``), a calendar date as Particle writes it. A row dated before
the run's first day or after its last day (the export's calendar month) is kept, and counted in the
run's ``rows_outside_period``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import pyarrow as pa

from report_exporter.datasets.base import LINEAGE, Dataset, NamedQuery, ReadContext, dates_outside
from report_exporter.datasets.csvread import CsvLayout, read_csv
from report_exporter.models.exports import ParticleExport, VendorName
from report_exporter.vendors.particle.facts import HEADER_LABELS

COLUMNS = pa.schema(
    [
        pa.field("usage_date", pa.date32()),
        pa.field("device_id", pa.string()),
        pa.field("device_name", pa.string()),
        pa.field("product_id", pa.int64()),
        pa.field("product_name", pa.string()),
        pa.field("connectivity", pa.string()),
        pa.field("data_operations", pa.int64()),
        pa.field("firmware_version", pa.string()),
        pa.field("device_os", pa.string()),
        pa.field("report_type", pa.string()),
        pa.field("date_period_start", pa.date32()),
        pa.field("date_period_end", pa.date32()),
    ]
)

LAYOUT = CsvLayout(
    columns={
        "Date": "usage_date",
        "Device ID": "device_id",
        "Device Name": "device_name",
        "Product ID": "product_id",
        "Product Name": "product_name",
        "Connectivity": "connectivity",
        "Data Operations": "data_operations",
        "Firmware Version": "firmware_version",
        "Device OS": "device_os",
    },
    required=HEADER_LABELS,
)


def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    export = context.export
    report_type = export.report_type if isinstance(export, ParticleExport) else None
    constants = {
        "report_type": report_type,
        "date_period_start": context.window.first_day,
        "date_period_end": context.window.last_day,
    }
    yield from read_csv(source, LAYOUT, COLUMNS, constants=constants)


DATASET = Dataset(
    name="particle_data_operations",
    vendor=VendorName.PARTICLE,
    columns=COLUMNS,
    read=read,
    description="Particle data operations per device and day (devices report) for a calendar month",
    outside_period=lambda batch, window: dates_outside(batch.column("usage_date"), window),
    # Memory must stay flat whatever the org's size: at most two groups are in Arrow memory (~140 B per row).
    # 131,072-row groups peak at ~220 MiB for 1M rows, 262,144 at ~255 MiB (bench/README.md).
    row_group_size=131_072,
    # A dictionary per row group only pays for the columns that repeat a few values. The ~33k device ids
    # (random hex) would repeat their dictionary in every group: as one zstd page per chunk, with the lengths
    # apart, they take 3.2 MB per 1M rows (5.5 MB as dictionaries); the names share prefixes
    # ("Tracker 123, fleet") and the counts are small integers: 0.04 and 0.02 MB delta-encoded, 0.6 and 1.0 MB
    # plain (bench/README.md, "Parquet bytes").
    dictionary_columns=tuple(name for name in [*COLUMNS.names, *LINEAGE.names]
                             if name not in ("device_id", "device_name", "data_operations")),
    column_encoding={"device_id": "DELTA_LENGTH_BYTE_ARRAY", "device_name": "DELTA_BYTE_ARRAY",
                     "data_operations": "DELTA_BINARY_PACKED"},
    queries=(
        NamedQuery(
            "particle_usage_by_device_month",
            "Data operations per device and product per month",
            """SELECT export, period, device_id, max(device_name) AS device_name, product_id,
       sum(data_operations) AS data_operations
FROM particle_data_operations
GROUP BY export, period, device_id, product_id
ORDER BY export, period, data_operations DESC, device_id""",
        ),
        NamedQuery(
            "particle_top_devices_latest_month",
            "The 20 devices with the most data operations in the latest exported month",
            """SELECT export, period, device_id, max(device_name) AS device_name,
       sum(data_operations) AS data_operations
FROM particle_data_operations
WHERE period = (SELECT max(period) FROM particle_data_operations)
GROUP BY export, period, device_id
ORDER BY data_operations DESC, device_id
LIMIT 20""",
        ),
        NamedQuery(
            "particle_product_month_over_month",
            "Data operations per product per month, with the change from the month before",
            """WITH monthly AS (
  SELECT export, product_id, period, sum(data_operations) AS data_operations
  FROM particle_data_operations
  GROUP BY export, product_id, period
)
SELECT export, product_id, period, data_operations,
       lag(data_operations) OVER (PARTITION BY export, product_id ORDER BY period) AS previous_month,
       data_operations - lag(data_operations) OVER (PARTITION BY export, product_id ORDER BY period) AS change
FROM monthly
ORDER BY export, product_id, period""",
        ),
    ),
)
