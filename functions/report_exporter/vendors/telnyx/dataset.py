"""Telnyx usage-report pages (JSON lines) -> ``telnyx_usage`` (see facts.py).

A row is one aggregate: the product, the requested dimensions' values and the requested metrics. The
dimensions and metrics are whatever the export configures, so they live in two maps (any name
survives); ``cost``, ``currency`` and ``user_id``, which every report question needs, are also typed
columns. Response keys that are neither requested dimensions nor metrics are kept in ``extra``.

Every metric and ``cost`` is ``decimal(38,18)``, read from the JSON text exactly (Telnyx prints six
decimals; counts and seconds are whole): a value with more than 18 decimals or 20 integer digits, a
non-finite one (``NaN``, ``Infinity``, ``1e400``) or one that is not a number fails the run naming the
line, the row in the page's ``data`` (1-based) and the field (``datasets/values.py``). Nothing is
rounded, and SQL sums are exact.

Duplicates: a dimension or metric named twice in the request is one map entry; a JSON object with the
same key twice is refused (the line and key are named).

The row's date: a usage row has none of its own; it aggregates the page's requested interval
(``start_date`` inclusive, ``end_date`` exclusive, recorded with the page as ``requested_start`` and
``requested_end``). A row whose interval starts before the run's window or ends after it is kept, and
counted in the run's ``rows_outside_period``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from report_exporter.datasets.base import EXTRA, TIMESTAMP, Dataset, NamedQuery, ReadContext
from report_exporter.datasets.ndjson import envelopes, text
from report_exporter.datasets.values import AMOUNT, BadValue, json_decimal, show
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import TelnyxExport, VendorName, Window

NAME = "telnyx_usage"
_BATCH_ROWS = 50_000

COLUMNS = pa.schema(
    [
        pa.field("product", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("currency", pa.string()),
        pa.field("cost", AMOUNT),
        pa.field("dimensions", pa.map_(pa.string(), pa.string())),
        pa.field("metrics", pa.map_(pa.string(), AMOUNT)),
        pa.field("managed_accounts", pa.bool_()),
        pa.field("requested_start", TIMESTAMP),
        pa.field("requested_end", TIMESTAMP),
    ]
)
SCHEMA = pa.schema([*COLUMNS, EXTRA])
_TYPED = {"product", "user_id"}


def _number(value: Any, what: str) -> Decimal | None:
    """A metric or cost, exactly as the JSON wrote it (see the module docstring)."""
    try:
        return json_decimal(value, AMOUNT)
    except BadValue as exc:
        raise InvalidReportError(f"{what}: {show(text(value))} {exc}") from None


def _when(value: Any, line: int) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidReportError(f"line {line}: request date {text(value)!r} is not an ISO 8601 time") from None


def _names(request: dict[str, Any], key: str, fallback: Sequence[str]) -> tuple[str, ...]:
    names = request.get(key)
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return tuple(dict.fromkeys(names))
    return tuple(dict.fromkeys(fallback))


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
    export = context.export
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
                    metric_values.append((name, number))
            known = _TYPED | set(dimensions) | set(metrics)
            rows.add(
                product=text(row.get("product", requested_product)),
                user_id=text(row.get("user_id")),
                currency=text(row.get("currency")),
                cost=_number(row.get("cost"), f"{where} cost"),
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


def outside_period(batch: pa.RecordBatch, window: Window) -> int:
    """Rows whose requested interval is not within the run's window."""
    start = pa.scalar(window.start, TIMESTAMP)
    end = pa.scalar(window.end, TIMESTAMP)
    early = pc.less(batch.column("requested_start"), start)
    late = pc.greater(batch.column("requested_end"), end)
    return int(pc.sum(pc.cast(pc.fill_null(pc.or_(early, late), False), pa.int64())).as_py() or 0)


DATASET = Dataset(
    name=NAME,
    vendor=VendorName.TELNYX,
    columns=COLUMNS,
    read=read,
    description="Telnyx usage per product, aggregated by the export's dimensions, for a calendar month",
    outside_period=outside_period,
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
