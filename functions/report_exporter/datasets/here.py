"""HERE usage report ``.csv.gz`` -> ``here_usage`` (vendors.md §2.6, §7.2).

Header labels read ``Usage Amount (billableValue)``: columns are keyed on the token in parentheses,
because two columns share the label "Usage Amount". The async report's exact column set is not
documented, so known tokens are typed and every other column is kept verbatim in ``extra``. The gzip
stream is inflated on the fly as the CSV parser pulls from it: the file is never held whole in memory.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from typing import IO, cast

import pyarrow as pa
import pyarrow.csv as pacsv

from report_exporter.datasets.base import (
    EXTRA,
    LINEAGE,
    TIMESTAMP,
    CsvLayout,
    Dataset,
    NamedQuery,
    ReadContext,
    csv_batches,
    shape_csv_batch,
)
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import HereExport, VendorName

NAME = "here_usage"
AMOUNT = pa.decimal128(24, 4)

COLUMNS = pa.schema(
    [
        pa.field("usage_datetime", TIMESTAMP),
        pa.field("org_id", pa.string()),
        pa.field("org_name", pa.string()),
        pa.field("category", pa.string()),
        pa.field("app_id", pa.string()),
        pa.field("app_name", pa.string()),
        pa.field("app_hrn", pa.string()),
        pa.field("feature_id", pa.string()),
        pa.field("billing_subscription_id", pa.string()),
        pa.field("billing_charge_number", pa.string()),
        pa.field("resource_hrn", pa.string()),
        pa.field("item_name", pa.string()),
        pa.field("unit", pa.string()),
        pa.field("project_hrn", pa.string()),
        pa.field("billing_tag", pa.string()),
        pa.field("usage_type_code", pa.string()),
        pa.field("usage_value", AMOUNT),
        pa.field("billable_value", AMOUNT),
        pa.field("detail_level", pa.string()),
        pa.field("charge_type", pa.string()),
    ]
)

# HERE dates are UTC (vendors.md §2.3) but the CSV's usageDateTime format is not documented. The CSV parser
# reads it as a zone-less timestamp (no intermediate string column), relabelled UTC without a copy (``view``).
_NAIVE = pa.timestamp("ms")
_PARSE_COLUMNS = COLUMNS.set(0, pa.field("usage_datetime", _NAIVE))
# ISO 8601 without a zone (also date-only), with a literal Z, or year-month (month detail).
_TIMESTAMP_FORMATS = (pacsv.ISO8601, "%Y-%m-%dT%H:%M:%SZ", "%Y-%m")
_READER_SCHEMA = pa.schema([*COLUMNS, EXTRA])
# Amounts are nearly unique per row: dictionary-encoding them only costs memory and time before the writer
# falls back to plain encoding. Every other column repeats a lot.
_DICTIONARY_COLUMNS = tuple(
    name for name in [*COLUMNS.names, *LINEAGE.names] if name not in ("usage_value", "billable_value")
)

# Header token -> column. Sync /csv header from
# https://developer.here.com/documentation/cost-management/dev_guide/topics/tutorial-get-usage-csv-by-billing-tag.html
# plus the OpenAPI example's appName/appHrn; ``resource``/``project`` are the bare usageFields names.
_TOKENS = {
    "usageDateTime": "usage_datetime",
    "realmId": "org_id",
    # Partners get an extra org-name column whose label is not documented (vendors.md §2.6).
    "orgName": "org_name",
    "realmName": "org_name",
    "category": "category",
    "appId": "app_id",
    "appName": "app_name",
    "appHrn": "app_hrn",
    "featureId": "feature_id",
    "billingSubscriptionId": "billing_subscription_id",
    "billingChargeNumber": "billing_charge_number",
    "resourceHrn": "resource_hrn",
    "resource": "resource_hrn",
    "name": "item_name",
    "valueDriver": "unit",
    "projectHrn": "project_hrn",
    "project": "project_hrn",
    "billingTag": "billing_tag",
    "usageTypeCode": "usage_type_code",
    "usageValue": "usage_value",
    "billableValue": "billable_value",
}
_TOKEN = re.compile(r"\(([^()]+)\)\s*$")


def header_token(label: str) -> str:
    """``Usage Amount (billableValue)`` -> ``billableValue``; a label without parentheses is its own key."""
    found = _TOKEN.search(label)
    return found.group(1).strip() if found else label.strip()


LAYOUT = CsvLayout(
    columns=_TOKENS,
    types={f.name: f.type for f in _PARSE_COLUMNS},
    # The OpenAPI example header has no usageValue, so only these are required.
    required=("realmId", "featureId", "billableValue"),
    header_key=header_token,
    timestamp_parsers=_TIMESTAMP_FORMATS,
)


def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """Record batches of ``here_usage`` (data columns and ``extra``) from a raw ``.csv.gz`` stream."""
    export = context.plan.export
    here = export if isinstance(export, HereExport) else None
    constants = {
        "detail_level": here.detail_level if here else None,
        # HERE's documented default when the request names no chargeType.
        "charge_type": (here.charge_type or "all") if here else None,
    }
    try:
        # GzipFile inflates as the CSV parser pulls: only the parser's block is ever in memory.
        with gzip.GzipFile(fileobj=source, mode="rb") as text:
            for batch, labels in csv_batches(cast(IO[bytes], text), LAYOUT):
                shaped = shape_csv_batch(batch, labels, LAYOUT, _PARSE_COLUMNS, constants)
                arrays = [shaped.column(0).view(TIMESTAMP), *shaped.columns[1:]]
                yield pa.RecordBatch.from_arrays(arrays, schema=_READER_SCHEMA)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InvalidReportError(f"the raw report is not a complete gzip file: {exc}") from None


DATASET = Dataset(
    name=NAME,
    vendor=VendorName.HERE,
    columns=COLUMNS,
    read=read,
    description="HERE usage per org, app, feature and (unless summarized) date, from partner usage reports",
    # ~28k distinct resource HRNs overflow one dictionary page in 1M-row groups; 131k rows give the
    # smallest files on HERE data (perf-baseline.md, "Parquet output").
    row_group_size=65_536,
    dictionary_columns=_DICTIONARY_COLUMNS,
    queries=(
        NamedQuery(
            "here_usage_by_category_feature_month",
            "Usage and billable value per category, feature and unit per month",
            """SELECT export, period, category, feature_id, max(item_name) AS item_name, unit,
       sum(usage_value) AS usage_value, sum(billable_value) AS billable_value
FROM here_usage
GROUP BY export, period, category, feature_id, unit
ORDER BY export, period, category, billable_value DESC NULLS LAST, feature_id""",
        ),
        NamedQuery(
            "here_top_apps_by_billable_value",
            "The 10 apps with the highest billable value per export, month and unit",
            """WITH per_app AS (
  SELECT export, period, unit, coalesce(app_id, '(no app)') AS app, max(app_name) AS app_name,
         sum(billable_value) AS billable_value
  FROM here_usage
  GROUP BY export, period, unit, coalesce(app_id, '(no app)')
), ranked AS (
  SELECT export, period, unit, app, app_name, billable_value,
         row_number() OVER (PARTITION BY export, period, unit ORDER BY billable_value DESC NULLS LAST, app) AS app_rank
  FROM per_app
)
SELECT export, period, unit, app_rank, app AS app_id, app_name, billable_value
FROM ranked
WHERE app_rank <= 10
ORDER BY export, period, unit, app_rank""",
        ),
        NamedQuery(
            "here_billable_month_over_month",
            "Billable value per feature and unit per month, with the change from the month before",
            """WITH monthly AS (
  SELECT export, category, feature_id, unit, period, max(item_name) AS item_name,
         sum(billable_value) AS billable_value
  FROM here_usage
  GROUP BY export, category, feature_id, unit, period
), compared AS (
  SELECT export, category, feature_id, item_name, unit, period, billable_value,
         lag(billable_value) OVER (PARTITION BY export, category, feature_id, unit ORDER BY period) AS previous_month
  FROM monthly
)
SELECT export, category, feature_id, item_name, unit, period, billable_value, previous_month,
       billable_value - previous_month AS change,
       round(CAST(billable_value - previous_month AS double) * 100
             / CAST(nullif(previous_month, 0) AS double), 2) AS change_percent
FROM compared
ORDER BY export, category, feature_id, unit, period""",
        ),
    ),
)
