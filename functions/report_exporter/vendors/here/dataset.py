"""HERE usage report ``.csv.gz`` -> ``here_usage`` (see facts.py).

Header labels read ``Usage Amount (billableValue)``: columns are keyed on the token in parentheses,
because two columns share the label "Usage Amount". The async report's exact column set is not
documented, so known tokens are typed and every other column is kept verbatim in ``extra``. The gzip
stream is inflated on the fly as the CSV reader (``datasets/csvread.py``) pulls from it: the file is
never held whole in memory.

Amounts (``usageValue``, ``billableValue``) are ``decimal(38,18)``: HERE writes four decimals, and any
value with up to 18 decimals and 20 integer digits is kept exactly; anything else fails the run naming
the data row and column (``datasets/values.py``), never rounded.

Duplicates and aliases: several tokens fill one column, by preference: ``org_name`` takes ``orgName``,
else ``realmName``; ``resource_hrn`` takes ``resourceHrn``, else ``resource``; ``project_hrn`` takes
``projectHrn``, else ``project``. The same token twice: the leftmost. Every other column, including the
alias that lost, is kept in ``extra`` under its full label (``extra['Org name (realmName)']``); a label
repeated within ``extra`` gets `` #2``, `` #3``...

The row's date is the UTC calendar day of ``usageDateTime`` (the day, or the first of the month at
``month`` detail; summarized rows have none and are never counted). A row whose day is before the
run's first day or after its last day (the export's calendar month) is kept, and counted in the run's
``rows_outside_period``.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from typing import IO, cast

import pyarrow as pa
import pyarrow.compute as pc

from report_exporter.datasets.base import LINEAGE, TIMESTAMP, Dataset, NamedQuery, ReadContext, dates_outside
from report_exporter.datasets.csvread import CsvLayout, read_csv
from report_exporter.datasets.values import AMOUNT
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import HereExport, VendorName, Window

NAME = "here_usage"

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

# HERE dates are UTC (see facts.py) but the CSV's usageDateTime format is not documented: ISO 8601
# without a zone or with Z, date-only, or year-month (month detail) are read (``values.timestamp_text``).
# Amounts are nearly unique per row: dictionary-encoding them only costs memory and time before the writer
# falls back to plain encoding. ``resource_hrn`` (~28k distinct HRNs that share long prefixes) is smaller
# without a dictionary repeated in every row group, and smallest with the prefixes delta-encoded: 0.03 MB per
# 1M rows, against 0.29 plain and 0.89 as dictionaries. Every other column repeats a lot.
_DICTIONARY_COLUMNS = tuple(
    name for name in [*COLUMNS.names, *LINEAGE.names]
    if name not in ("usage_value", "billable_value", "resource_hrn")
)

# Header token -> column, in order of preference where several fill one column. Sync /csv header from
# https://developer.here.com/documentation/cost-management/dev_guide/topics/tutorial-get-usage-csv-by-billing-tag.html
# plus the OpenAPI example's appName/appHrn; ``resource``/``project`` are the bare usageFields names.
_TOKENS = {
    "usageDateTime": "usage_datetime",
    "realmId": "org_id",
    # Partners get an extra org-name column whose label is not documented (see facts.py).
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
    # The OpenAPI example header has no usageValue, so only these are required.
    required=("realmId", "featureId", "billableValue"),
    header_key=header_token,
)


def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """Record batches of ``here_usage`` (data columns and ``extra``) from a raw ``.csv.gz`` stream."""
    export = context.export
    here = export if isinstance(export, HereExport) else None
    constants = {
        "detail_level": here.detail_level if here else None,
        # HERE's documented default when the request names no chargeType.
        "charge_type": (here.charge_type or "all") if here else None,
    }
    try:
        # GzipFile inflates as the CSV parser pulls: only the parser's block is ever in memory.
        with gzip.GzipFile(fileobj=source, mode="rb") as text:
            yield from read_csv(cast(IO[bytes], text), LAYOUT, COLUMNS, constants=constants)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InvalidReportError(f"the raw report is not a complete gzip file: {exc}") from None


def outside_period(batch: pa.RecordBatch, window: Window) -> int:
    """Rows whose UTC day of ``usage_datetime`` is not a day of the run's month (summarized rows: none)."""
    return dates_outside(pc.cast(batch.column("usage_datetime"), pa.date32()), window)


DATASET = Dataset(
    name=NAME,
    vendor=VendorName.HERE,
    columns=COLUMNS,
    read=read,
    description="HERE usage per org, app, feature and (unless summarized) date, from partner usage reports",
    # 65,536-row groups keep WriteParquet's peak at ~230 MiB for 1M rows (at most two groups, ~48 MiB, in Arrow
    # memory). 131,072-row groups make the file only ~1 % smaller (11.74 against 11.89 MB per 1M rows, zstd
    # level 3) and would lose the peak's 0.25 x pandas (bench/README.md, "What is in WriteParquet's peak" and
    # "P1"). ``resource_hrn`` has no dictionary, so no dictionary page limit is at stake.
    row_group_size=65_536,
    dictionary_columns=_DICTIONARY_COLUMNS,
    column_encoding={"resource_hrn": "DELTA_BYTE_ARRAY"},
    outside_period=outside_period,
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
