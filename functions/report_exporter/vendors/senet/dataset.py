"""Senet usage -> ``senet_application_month`` (summary JSON) and ``senet_device_month`` (details CSV).

Facts: facts.py. The summary's documented fields are typed columns, any other whole-number
field that fits ``int64`` lands in ``other_counters`` and anything else in ``extra``. The details CSV's
columns are not published, so it is read header-driven (``datasets/csvread.py``): likely labels
(``devEui``, ``DevEUI``, ``Device EUI``, ``Uplinks``, ...) are matched case- and punctuation-insensitively
onto typed columns, and every column of the row is also kept verbatim in ``extra``.

Duplicates and aliases:

- Summary: field names are matched case- and punctuation-insensitively (``totalUpPackets`` =
  ``total_up_packets``; ``totalSecuritySession`` = ``totalSecuritySessions``). When two fields fill one
  column, the first in the JSON object fills it and the other is kept in ``extra`` under its own name.
  A JSON object with the same key twice is refused (the line and key are named).
- Details: when several labels map to one typed column (``Uplinks`` and ``Up Msgs``, or the same label
  twice), the leftmost fills it; every column is in ``extra`` anyway, a repeated label as ``label #2``.

Counts are ``int64`` (surrounding blanks ignored in the details CSV); a value that is not a whole number
or does not fit fails the run naming the line (summary) or data row (details) and the field.

The row's date: a summary row is for the ``year`` and ``month`` it was requested for; when that is not
the run's period the row is kept and counted in ``rows_outside_period``. Details rows carry no date of
their own (the file is one Application's month), so none is ever counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from report_exporter.datasets.base import EXTRA, Dataset, NamedQuery, ReadContext
from report_exporter.datasets.csvread import CsvLayout, read_csv
from report_exporter.datasets.ndjson import envelopes, text
from report_exporter.datasets.values import BadValue, json_integer, show
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import VendorName, Window

APPLICATION_MONTH = "senet_application_month"
DEVICE_MONTH = "senet_device_month"


def _key(label: str) -> str:
    """``totalUpPackets``, ``Total Up Packets`` and ``total_up_packets`` all become ``totaluppackets``."""
    return re.sub(r"[^0-9a-z]", "", label.lower())


# Summary JSON fields (docs: https://docs.senraco.io/op/appUsageApi, list partly retrieved).
SUMMARY_FIELDS = {
    "numberofdevices": "number_of_devices",
    "numberofactivedevices": "number_of_active_devices",
    "numberofreportingdevices": "number_of_reporting_devices",
    "numberofdevicesevaluated": "number_of_devices_evaluated",
    "totalregistrations": "total_registrations",
    "totalactivations": "total_activations",
    "totaldeactivations": "total_deactivations",
    "totaluppackets": "total_up_packets",
    "totaldownpackets": "total_down_packets",
    "totalsecuritysession": "total_security_sessions",
    "totalsecuritysessions": "total_security_sessions",
    "totallocalupmsg": "total_local_up_msg",
    "totalforeignupmsg": "total_foreign_up_msg",
}
# Identity fields a summary may echo: never counters, even when numeric.
_SUMMARY_IDS = {"eui", "appeui", "applicationeui", "month", "year"}

APPLICATION_COLUMNS = pa.schema(
    [
        pa.field("application_eui", pa.string()),
        pa.field("year", pa.int16()),
        pa.field("month", pa.int8()),
        *(pa.field(name, pa.int64()) for name in dict.fromkeys(SUMMARY_FIELDS.values())),
        pa.field("other_counters", pa.map_(pa.string(), pa.int64())),
    ]
)
_APPLICATION_SCHEMA = pa.schema([*APPLICATION_COLUMNS, EXTRA])

# Details CSV: likely labels for the typed columns; the portal's usage categories guided the guesses
# (docs: https://docs.senetco.io/ap/appUsage/). Every column also stays in ``extra``.
DEVICE_ALIASES = {
    "dev_eui": ("deveui", "deviceeui", "deviceid"),
    "contract_id": ("contractid", "customercontractid", "contract", "customercontract"),
    "uplinks": ("uplinks", "uplink", "upmsgs", "upmsg", "uppackets", "totaluppackets", "uplinkcount"),
    "downlinks": ("downlinks", "downlink", "dnmsgs", "dnmsg", "downmsgs", "downpackets", "totaldownpackets",
                  "downlinkcount"),
    "security_sessions": ("securitysessions", "securitysession", "totalsecuritysession", "joins",
                          "successfuljoins"),
}
_CANONICAL = {alias: column for column, aliases in DEVICE_ALIASES.items() for alias in aliases}

DEVICE_COLUMNS = pa.schema(
    [
        pa.field("application_eui", pa.string()),
        pa.field("dev_eui", pa.string()),
        pa.field("contract_id", pa.string()),
        pa.field("uplinks", pa.int64()),
        pa.field("downlinks", pa.int64()),
        pa.field("security_sessions", pa.int64()),
    ]
)
DEVICE_LAYOUT = CsvLayout(
    columns={column: column for column in DEVICE_ALIASES},
    required=("dev_eui",),
    header_key=lambda label: _CANONICAL.get(_key(label), label),
    trim=True,
)


_INT64 = pa.int64()


def _whole(value: Any, what: str, dtype: pa.DataType = _INT64) -> int | None:
    """A counter: JSON integers, integral numbers (``3.0``) and numeric strings, within ``dtype``'s range."""
    try:
        return json_integer(value, dtype)
    except BadValue as exc:
        raise InvalidReportError(f"{what}: {show(text(value))} {exc}") from None


def _counter(value: Any) -> int | None:
    """An undocumented field's value as an ``other_counters`` entry, or None when it is not an int64 count."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        return json_integer(value, _INT64)
    except BadValue:
        return None


def read_summary(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """One row per Application: the request's EUI/month/year plus the summary's counters."""
    columns: dict[str, list[Any]] = {f.name: [] for f in _APPLICATION_SCHEMA}
    for line, request, response in envelopes(source):
        if not isinstance(response, dict):
            raise InvalidReportError(f"line {line}: the summary is not a JSON object")
        values: dict[str, Any] = {
            "application_eui": text(request.get("eui")),
            "year": _whole(request.get("year"), f"line {line} year", pa.int16()),
            "month": _whole(request.get("month"), f"line {line} month", pa.int8()),
        }
        other: list[tuple[str, int]] = []
        extra: list[tuple[str, str | None]] = []
        for key, value in response.items():
            name = SUMMARY_FIELDS.get(_key(key))
            count = None if _key(key) in _SUMMARY_IDS else _counter(value)
            if name is not None and name not in values:
                values[name] = _whole(value, f"line {line} {key}")
            elif name is None and count is not None:
                other.append((key, count))
            elif value is not None:
                extra.append((key, text(value)))
        values["other_counters"] = other
        values["extra"] = extra
        for name, column in columns.items():
            column.append(values.get(name))
    if columns["application_eui"]:
        arrays = [pa.array(columns[f.name], type=f.type) for f in _APPLICATION_SCHEMA]
        yield pa.RecordBatch.from_arrays(arrays, schema=_APPLICATION_SCHEMA)


def _application_eui(context: ReadContext) -> str:
    """The Application a details file is about, as its manifest says (``params.application_eui``)."""
    eui = context.params.get("application_eui")
    if not eui:
        raise InvalidReportError(f"{context.source_key}: its manifest names no application_eui; a details file "
                                 "answers for one Application")
    return eui


def read_details(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """One row per device of one Application's details CSV; a blank body or a bare header holds no devices."""
    application = _application_eui(context)
    yield from read_csv(source, DEVICE_LAYOUT, DEVICE_COLUMNS, constants={"application_eui": application},
                        keep_all=True, empty_ok=True)


def summary_outside_period(batch: pa.RecordBatch, window: Window) -> int:
    """Summary rows whose requested year and month are not the run's period."""
    year, month = (int(part) for part in window.period.split("-"))
    other = pc.or_(pc.not_equal(batch.column("year"), year), pc.not_equal(batch.column("month"), month))
    return int(pc.sum(pc.cast(pc.fill_null(other, False), pa.int64())).as_py() or 0)


APPLICATION_DATASET = Dataset(
    name=APPLICATION_MONTH,
    vendor=VendorName.SENET,
    columns=APPLICATION_COLUMNS,
    read=read_summary,
    description="Senet usage summary per LoRa Application and calendar month",
    outside_period=summary_outside_period,
    queries=(
        NamedQuery(
            "senet_uplinks_downlinks_by_application_month",
            "Uplink and downlink packets per Application per month, with device counts",
            """SELECT export, period, application_eui,
       sum(total_up_packets) AS uplinks, sum(total_down_packets) AS downlinks,
       sum(number_of_devices) AS devices, sum(number_of_reporting_devices) AS reporting_devices
FROM senet_application_month
GROUP BY export, period, application_eui
ORDER BY export, period, application_eui""",
        ),
    ),
)

DEVICE_DATASET = Dataset(
    name=DEVICE_MONTH,
    vendor=VendorName.SENET,
    columns=DEVICE_COLUMNS,
    read=read_details,
    description="Senet usage per device (Application Details file) and calendar month",
    queries=(
        NamedQuery(
            "senet_top_devices_by_uplinks",
            "The 20 devices with the most uplinks in the latest exported month",
            """SELECT export, period, application_eui, dev_eui, sum(uplinks) AS uplinks, sum(downlinks) AS downlinks
FROM senet_device_month
WHERE period = (SELECT max(period) FROM senet_device_month)
GROUP BY export, period, application_eui, dev_eui
ORDER BY uplinks DESC, dev_eui
LIMIT 20""",
        ),
    ),
)
