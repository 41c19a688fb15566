"""Telnyx usage-report pages (JSON lines) -> ``telnyx_usage`` (vendors.md §3.4, §7.3 ``usage_telnyx_product``).

A row is one aggregate: the product, the requested dimensions' values and the requested metrics. The
dimensions and metrics are whatever the export configures, so they live in two maps (any name
survives); ``cost``, ``currency`` and ``user_id``, which every report question needs, are also typed
columns. Response keys that are neither requested dimensions nor metrics are kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import pyarrow as pa

from report_exporter.datasets.base import EXTRA, TIMESTAMP, Dataset, NamedQuery, ReadContext
from report_exporter.datasets.ndjson import envelopes, text
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import TelnyxExport, VendorName

NAME = "telnyx_usage"
MONEY = pa.decimal128(18, 6)
_MICRO = Decimal("0.000001")
_BATCH_ROWS = 50_000

COLUMNS = pa.schema(
    [
        pa.field("product", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("currency", pa.string()),
        pa.field("cost", MONEY),
        pa.field("dimensions", pa.map_(pa.string(), pa.string())),
        pa.field("metrics", pa.map_(pa.string(), pa.float64())),
        pa.field("managed_accounts", pa.bool_()),
        pa.field("requested_start", TIMESTAMP),
        pa.field("requested_end", TIMESTAMP),
    ]
)
SCHEMA = pa.schema([*COLUMNS, EXTRA])
_TYPED = {"product", "user_id"}


def _number(value: Any, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidReportError(f"{what}: {text(value)!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidReportError(f"{what}: {text(value)!r} is not a number") from None
    if not number.is_finite():
        raise InvalidReportError(f"{what}: {text(value)!r} is not a finite number")
    return number


def _money(value: Any, what: str) -> Decimal | None:
    """Cost to micro-units (Telnyx prints six decimals, e.g. ``0.000800``), rounding half to even."""
    number = _number(value, what)
    if number is None:
        return None
    rounded = number.quantize(_MICRO)
    if rounded.adjusted() >= MONEY.precision - MONEY.scale:
        raise InvalidReportError(f"{what}: {text(value)!r} does not fit decimal(18,6)")
    return rounded


def _when(value: Any, line: int) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidReportError(f"line {line}: request date {text(value)!r} is not an ISO 8601 time") from None


def _names(request: dict[str, Any], key: str, fallback: Sequence[str]) -> tuple[str, ...]:
    names = request.get(key)
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return tuple(names)
    return tuple(fallback)


class _Rows:
    """Column lists of the rows read so far, turned into one record batch on :meth:`batch`."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}

    def __len__(self) -> int:
        return len(self.columns["product"])

    def add(self, **values: Any) -> None:
        for name, column in self.columns.items():
            column.append(values[name])

    def batch(self) -> pa.RecordBatch:
        arrays = [pa.array(self.columns[f.name], type=f.type) for f in SCHEMA]
        self.columns = {f.name: [] for f in SCHEMA}
        return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """Yield typed batches from the raw JSON lines: one row per element of each page's ``data``."""
    export = context.plan.export
    configured = export if isinstance(export, TelnyxExport) else None
    rows = _Rows()
    for line, request, response in envelopes(source):
        data = response.get("data") if isinstance(response, dict) else None
        if not isinstance(data, list):
            raise InvalidReportError(f"line {line}: the page has no 'data' list")
        dimensions = _names(request, "dimensions", configured.dimensions if configured else ())
        metrics = _names(request, "metrics", configured.metrics if configured else ())
        managed = request.get("managed_accounts", configured.managed_accounts if configured else None)
        start = _when(request.get("start_date"), line)
        end = _when(request.get("end_date"), line)
        requested_product = request.get("product")
        for index, row in enumerate(data):
            where = f"line {line} row {index + 1}"
            if not isinstance(row, dict):
                raise InvalidReportError(f"{where}: not a JSON object")
            metric_values = []
            for name in metrics:
                number = _number(row.get(name), f"{where} metric {name!r}")
                if number is not None:
                    metric_values.append((name, float(number)))
            known = _TYPED | set(dimensions) | set(metrics)
            rows.add(
                product=text(row.get("product", requested_product)),
                user_id=text(row.get("user_id")),
                currency=text(row.get("currency")),
                cost=_money(row.get("cost"), f"{where} cost"),
                dimensions=[(name, text(row[name])) for name in dimensions if row.get(name) is not None],
                metrics=metric_values,
                managed_accounts=managed if isinstance(managed, bool) else None,
                requested_start=start,
                requested_end=end,
                extra=[(key, text(value)) for key, value in row.items() if key not in known and value is not None],
            )
            if len(rows) >= _BATCH_ROWS:
                yield rows.batch()
    if len(rows):
        yield rows.batch()


DATASET = Dataset(
    name=NAME,
    vendor=VendorName.TELNYX,
    columns=COLUMNS,
    read=read,
    description="Telnyx usage per product, aggregated by the export's dimensions, for a calendar month",
    queries=(
        NamedQuery(
            "telnyx_cost_by_product_dimension_month",
            "Cost per product, dimension value and currency per month (each dimension broken out on its own)",
            # UNNEST of the keys plus a subscript: Trino and DuckDB disagree on unnesting a map directly.
            """SELECT u.export, u.period, u.product, d.dimension, u.dimensions[d.dimension] AS value, u.currency,
       sum(u.cost) AS cost
FROM telnyx_usage AS u
CROSS JOIN UNNEST(map_keys(u.dimensions)) AS d (dimension)
GROUP BY u.export, u.period, u.product, d.dimension, u.dimensions[d.dimension], u.currency
ORDER BY u.export, u.period, u.product, d.dimension, cost DESC, value""",
        ),
        NamedQuery(
            "telnyx_cost_month_over_month",
            "Cost per product and currency per month, with the change from the month before",
            """WITH monthly AS (
  SELECT export, product, currency, period, sum(cost) AS cost
  FROM telnyx_usage
  GROUP BY export, product, currency, period
)
SELECT export, product, currency, period, cost,
       lag(cost) OVER (PARTITION BY export, product, currency ORDER BY period) AS previous_month,
       cost - lag(cost) OVER (PARTITION BY export, product, currency ORDER BY period) AS change
FROM monthly
ORDER BY export, product, currency, period""",
        ),
        NamedQuery(
            "telnyx_metrics_by_product_month",
            "Every requested metric summed per product per month",
            """SELECT u.export, u.period, u.product, m.metric, sum(u.metrics[m.metric]) AS total
FROM telnyx_usage AS u
CROSS JOIN UNNEST(map_keys(u.metrics)) AS m (metric)
GROUP BY u.export, u.period, u.product, m.metric
ORDER BY u.export, u.period, u.product, m.metric""",
        ),
    ),
)
