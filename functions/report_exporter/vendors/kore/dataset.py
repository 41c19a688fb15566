"""KORE usage-records JSON lines -> ``kore_usage_records`` (see facts.py).

One raw line is one page body; each usage record becomes one row. The nested ``data`` and ``commands``
objects are flattened: their counters and their ``home`` / ``national_roaming`` children become columns
(``data_home_total``...), ``international_roaming`` becomes a list of structs. Account and per-SIM
records share the table (``sim_sid`` is null for account records).

Quirks handled:

- ``international_roaming`` is an array in the spec, an object (empty value null) in the docs' tables
  (see facts.py): an object becomes a one-element list; null or absent becomes an empty list, the same
  "no international usage" that KORE documents as ``[]`` for commands. Only a missing parent object
  (no ``data`` at all) leaves the column null.
- ``billed`` is a JSON number (kore-openapi ``x-jvm-type: BigDecimal``): it is read from the JSON text
  itself, exactly, into ``decimal(38,18)``; a value with more than 18 decimals or 20 integer digits, or
  a non-finite one, fails the run naming the line, the record and the field. Nothing is rounded.
- Counters are ``int64``: a JSON integer, an integral number (``3.0``) or digits in a string; anything
  else, or out of range, fails naming line, record and field (``datasets/values.py``).
- ``period.start``/``end`` are ISO 8601 (no zone = UTC, as KORE documents); finer than a millisecond is
  refused rather than truncated.
- ``total`` should equal ``download + upload`` (data) and ``to_sim + from_sim`` (commands); records
  where it does not are kept, flagged in ``data_total_consistent`` / ``commands_total_consistent``
  (null when a term is missing), and counted in one warning log line.
- Unknown fields at any level are kept in ``extra`` under their dotted path (``data.home.foo``,
  ``data.international_roaming[0].foo``), JSON-encoded. A JSON object with the same key twice is refused
  (the line and key named): a JSON parser would keep one value and lose the other.
- Errors name the line of the raw file and the record's 1-based position in that page's list.

The row's date is ``period.start``: a record that starts before the run's window or at/after its end
(the export's calendar month in its time zone) is kept, and counted in the run's ``rows_outside_period``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

import pyarrow as pa

from report_exporter.datasets.base import (
    EXTRA,
    EXTRA_TYPE,
    TIMESTAMP,
    Dataset,
    NamedQuery,
    ReadContext,
    instants_outside,
)
from report_exporter.datasets.ndjson import DuplicateKeyError, dumps, load
from report_exporter.datasets.values import AMOUNT, BadValue, json_decimal, json_integer
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import KoreExport, VendorName
from report_exporter.observability import logger
from report_exporter.vendors.kore.export import page_records

NAME = "kore_usage_records"
MONEY = AMOUNT
# Rows per record batch: the reader holds at most this many flattened records (plus one page).
BATCH_RECORDS = 10_000
_READ_CHUNK = 1 << 20

# Field kinds of the usage objects (kore-openapi DataUsageDetails / CommandsUsageDetails).
_INT, _STR, _DEC = pa.int64(), pa.string(), AMOUNT
SECTIONS: dict[str, dict[str, pa.DataType]] = {
    "data": {"total": _INT, "download": _INT, "upload": _INT, "units": _STR, "billed": _DEC, "billing_units": _STR},
    "commands": {"total": _INT, "to_sim": _INT, "from_sim": _INT, "billed": _DEC, "billing_units": _STR},
}
# What ``total`` must equal, per section.
TOTAL_TERMS = {"data": ("download", "upload"), "commands": ("to_sim", "from_sim")}
CHILDREN = ("home", "national_roaming")
ROAMING = "international_roaming"


def _roaming_type(fields: dict[str, pa.DataType]) -> pa.DataType:
    return pa.list_(pa.struct([pa.field("country_code", pa.string()), *(pa.field(k, t) for k, t in fields.items())]))


def _section_fields(section: str, fields: dict[str, pa.DataType]) -> list[pa.Field]:
    columns = [pa.field(f"{section}_{key}", dtype) for key, dtype in fields.items()]
    for child in CHILDREN:
        columns += [pa.field(f"{section}_{child}_{key}", dtype) for key, dtype in fields.items()]
    columns.append(pa.field(f"{section}_{ROAMING}", _roaming_type(fields)))
    columns.append(pa.field(f"{section}_total_consistent", pa.bool_()))
    return columns


COLUMNS = pa.schema(
    [
        pa.field("account_sid", pa.string()),
        pa.field("sim_sid", pa.string()),
        pa.field("granularity", pa.string()),
        pa.field("period_start", TIMESTAMP),
        pa.field("period_end", TIMESTAMP),
        # UTC calendar day of period_start: lets the named queries group by day the same way in Athena and DuckDB.
        pa.field("usage_date", pa.date32()),
        *(f for section, fields in SECTIONS.items() for f in _section_fields(section, fields)),
    ]
)
_SCHEMA = pa.schema([*COLUMNS, EXTRA])


def _show(value: Any) -> str:
    text = dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(value: Any, where: str) -> int | None:
    try:
        return json_integer(value, pa.int64())
    except BadValue as exc:
        raise InvalidReportError(f"{where}: expected an integer, got {_show(value)} ({exc})") from None


def _money(value: Any, where: str) -> Decimal | None:
    try:
        return json_decimal(value, MONEY)
    except BadValue as exc:
        raise InvalidReportError(f"{where}: expected a decimal amount, got {_show(value)} ({exc})") from None


def _str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    raise InvalidReportError(f"{where}: expected a string, got {_show(value)}")


def _timestamp(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
        if moment is not None:
            if moment.microsecond % 1000:
                raise InvalidReportError(f"{where}: {_show(value)} is finer than a millisecond (not truncated)")
            # "All dates and times are GMT" (https://docs.korewireless.com/en-us/developers/api-management/api-responses)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    raise InvalidReportError(f"{where}: expected an ISO 8601 date-time, got {_show(value)}")


_CONVERT = {_INT: _int, _STR: _str, _DEC: _money}


def _convert(dtype: pa.DataType, value: Any, where: str) -> Any:
    return _CONVERT[dtype](value, where)


class _Flattener:
    """Turns usage records into column lists, ``BATCH_RECORDS`` at a time."""

    def __init__(self, context: ReadContext) -> None:
        export = context.export
        self._granularity = export.granularity if isinstance(export, KoreExport) else None
        self._sim_sid = (export.sim_sid or None) if isinstance(export, KoreExport) else None
        self._names = COLUMNS.names
        self._columns: dict[str, list[Any]] = {name: [] for name in self._names}
        self._extra: list[list[tuple[str, str]]] = []
        self.rows = 0
        self.mismatches = dict.fromkeys(SECTIONS, 0)

    @property
    def pending(self) -> int:
        return len(self._extra)

    def add(self, record: Any, where: str) -> None:
        if not isinstance(record, dict):
            raise InvalidReportError(f"{where}: a usage record must be an object, got {_show(record)}")
        row: dict[str, Any] = {}
        extra: list[tuple[str, str]] = []
        for key, value in record.items():
            if key in ("account_sid", "sim_sid"):
                row[key] = _str(value, f"{where}: {key}")
            elif key == "period":
                self._period(value, row, extra, where)
            elif key in SECTIONS:
                self._section(key, value, row, extra, where)
            else:
                extra.append((key, dumps(value)))
        if "period_start" not in row:
            raise InvalidReportError(f"{where}: no period.start")
        row["usage_date"] = row["period_start"].date()
        row["granularity"] = self._granularity
        if row.get("sim_sid") is None:
            # Per-SIM records should carry sim_sid; the export says which SIM they are for anyway.
            row["sim_sid"] = self._sim_sid
        for name in self._names:
            self._columns[name].append(row.get(name))
        self._extra.append(extra)
        self.rows += 1

    def _period(self, value: Any, row: dict[str, Any], extra: list[tuple[str, str]], where: str) -> None:
        if not isinstance(value, dict):
            raise InvalidReportError(f"{where}: period must be an object with start and end, got {_show(value)}")
        for key, item in value.items():
            if key in ("start", "end"):
                row[f"period_{key}"] = _timestamp(item, f"{where}: period.{key}")
            else:
                extra.append((f"period.{key}", dumps(item)))

    def _section(
        self, section: str, value: Any, row: dict[str, Any], extra: list[tuple[str, str]], where: str
    ) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise InvalidReportError(f"{where}: {section} must be an object, got {_show(value)}")
        fields = SECTIONS[section]
        row[f"{section}_{ROAMING}"] = []
        for key, item in value.items():
            path = f"{section}.{key}"
            if key in fields:
                row[f"{section}_{key}"] = _convert(fields[key], item, f"{where}: {path}")
            elif key in CHILDREN:
                self._child(section, key, item, row, extra, where)
            elif key == ROAMING:
                row[f"{section}_{ROAMING}"] = self._roaming(section, item, extra, where)
            else:
                extra.append((path, dumps(item)))
        total = row.get(f"{section}_total")
        names = [f"{section}_{term}" for term in TOTAL_TERMS[section]]
        terms = [row[name] for name in names if row.get(name) is not None]
        if total is None or len(terms) != len(names):
            row[f"{section}_total_consistent"] = None
        else:
            consistent = total == sum(terms)
            row[f"{section}_total_consistent"] = consistent
            self.mismatches[section] += not consistent

    def _child(
        self, section: str, child: str, value: Any, row: dict[str, Any], extra: list[tuple[str, str]], where: str
    ) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise InvalidReportError(f"{where}: {section}.{child} must be an object, got {_show(value)}")
        fields = SECTIONS[section]
        for key, item in value.items():
            path = f"{section}.{child}.{key}"
            if key in fields:
                row[f"{section}_{child}_{key}"] = _convert(fields[key], item, f"{where}: {path}")
            else:
                extra.append((path, dumps(item)))

    def _roaming(self, section: str, value: Any, extra: list[tuple[str, str]], where: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list):
            raise InvalidReportError(f"{where}: {section}.{ROAMING} must be an array, an object or null")
        fields = SECTIONS[section]
        entries = []
        for index, item in enumerate(items):
            path = f"{section}.{ROAMING}[{index}]"
            if not isinstance(item, dict):
                raise InvalidReportError(f"{where}: {path} must be an object, got {_show(item)}")
            entry: dict[str, Any] = {"country_code": None, **dict.fromkeys(fields)}
            for key, part in item.items():
                if key == "country_code":
                    entry[key] = _str(part, f"{where}: {path}.{key}")
                elif key in fields:
                    entry[key] = _convert(fields[key], part, f"{where}: {path}.{key}")
                else:
                    extra.append((f"{path}.{key}", dumps(part)))
            entries.append(entry)
        return entries

    def batch(self) -> pa.RecordBatch:
        """The pending records as one record batch of the reader schema; the buffers start over."""
        arrays = []
        for f in COLUMNS:
            try:
                arrays.append(pa.array(self._columns[f.name], type=f.type))
            # UnicodeEncodeError: JSON may escape a lone surrogate ("\ud800"), which no UTF-8 column can hold.
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError) as exc:
                raise InvalidReportError(f"column {f.name}: {exc}") from None
        try:
            arrays.append(pa.array(self._extra, type=EXTRA_TYPE))
        except UnicodeEncodeError as exc:
            raise InvalidReportError(f"column {EXTRA.name}: {exc}") from None
        self._columns = {name: [] for name in self._names}
        self._extra = []
        return pa.RecordBatch.from_arrays(arrays, schema=_SCHEMA)


def _lines(source: IO[bytes]) -> Iterator[bytes]:
    """Lines of a stream, read in 1 MiB chunks (works on any ``read()``-only body, like S3's)."""
    rest = b""
    while chunk := source.read(_READ_CHUNK):
        rest += chunk
        *complete, rest = rest.split(b"\n")
        yield from complete
    if rest:
        yield rest


def read(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """Flatten every page line of a raw KORE file into record batches of ``kore_usage_records``."""
    rows = _Flattener(context)
    for number, line in enumerate(_lines(source), start=1):
        if not line.strip():
            continue
        try:
            page = load(line)
        except DuplicateKeyError as exc:
            raise InvalidReportError(f"line {number}: {exc}") from None
        except ValueError:
            raise InvalidReportError(f"line {number}: not a JSON page") from None
        records = page_records(page)
        if records is None:
            raise InvalidReportError(f"line {number}: no 'usage_records' list")
        for index, record in enumerate(records):
            rows.add(record, f"line {number} record {index + 1}")
            if rows.pending >= BATCH_RECORDS:
                yield rows.batch()
    if rows.pending:
        yield rows.batch()
    if any(rows.mismatches.values()):
        logger.warning(
            "kore usage records whose totals do not add up",
            extra={
                "source_key": context.source_key,
                "records": rows.rows,
                "data_total_mismatches": rows.mismatches["data"],
                "commands_total_mismatches": rows.mismatches["commands"],
            },
        )


DATASET = Dataset(
    name=NAME,
    vendor=VendorName.KORE,
    columns=COLUMNS,
    read=read,
    description="KORE Programmable Wireless usage records (data and commands) per account or SIM and period",
    outside_period=lambda batch, window: instants_outside(batch.column("period_start"), window),
    queries=(
        NamedQuery(
            "kore_data_usage_by_account_month",
            "Data and commands usage per account (and SIM, for per-SIM exports) per month",
            """SELECT export, period, account_sid, sim_sid,
       sum(data_total) AS data_total, sum(data_download) AS data_download, sum(data_upload) AS data_upload,
       max(data_units) AS data_units, sum(data_billed) AS data_billed, sum(commands_total) AS commands_total
FROM kore_usage_records
GROUP BY export, period, account_sid, sim_sid
ORDER BY export, period, account_sid, sim_sid""",
        ),
        NamedQuery(
            "kore_top_days_by_data",
            "The 20 days with the most data used, over every exported month (daily and hourly exports)",
            """SELECT export, usage_date, account_sid, sim_sid, sum(data_total) AS data_total
FROM kore_usage_records
WHERE granularity <> 'all'
GROUP BY export, usage_date, account_sid, sim_sid
ORDER BY data_total DESC, export, usage_date, account_sid, sim_sid
LIMIT 20""",
        ),
        NamedQuery(
            "kore_data_month_over_month",
            "Data used per account (and SIM) per month, with the change from the month before",
            """WITH monthly AS (
  SELECT export, account_sid, sim_sid, period, sum(data_total) AS data_total
  FROM kore_usage_records
  GROUP BY export, account_sid, sim_sid, period
), compared AS (
  SELECT export, account_sid, sim_sid, period, data_total,
         lag(data_total) OVER (PARTITION BY export, account_sid, sim_sid ORDER BY period) AS previous_month
  FROM monthly
)
SELECT export, account_sid, sim_sid, period, data_total, previous_month,
       data_total - previous_month AS change,
       CASE WHEN previous_month > 0
            THEN round(100 * CAST(data_total - previous_month AS DOUBLE) / previous_month, 2) END AS change_percent
FROM compared
ORDER BY export, account_sid, sim_sid, period""",
        ),
        NamedQuery(
            "kore_inconsistent_totals",
            "Usage records whose total is not download + upload (data) or to_sim + from_sim (commands)",
            """SELECT export, period, account_sid, sim_sid, period_start, period_end,
       data_total, data_download, data_upload, data_total - (data_download + data_upload) AS data_difference,
       commands_total, commands_to_sim, commands_from_sim,
       commands_total - (commands_to_sim + commands_from_sim) AS commands_difference
FROM kore_usage_records
WHERE NOT data_total_consistent OR NOT commands_total_consistent
ORDER BY export, period, period_start, account_sid, sim_sid""",
        ),
    ),
)
