"""Senet usage -> ``senet_application_month`` (summary JSON) and ``senet_device_month`` (details CSV).

vendors.md §4.4 and §7.4. The summary's documented fields are typed columns, any other whole-number
field lands in ``other_counters`` and anything else in ``extra``. The details CSV's columns are not
published, so it is read header-driven: likely labels (``devEui``, ``DevEUI``, ``Device EUI``,
``Uplinks``, ...) are matched case- and punctuation-insensitively onto typed columns, and every column
of the row is also kept verbatim in ``extra``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from report_exporter.datasets.base import (
    EXTRA,
    CsvLayout,
    Dataset,
    NamedQuery,
    ReadContext,
    _Chained,
    constant,
    csv_batches,
    extra_map,
)
from report_exporter.datasets.ndjson import envelopes, text
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import VendorName

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
_DEVICE_SCHEMA = pa.schema([*DEVICE_COLUMNS, EXTRA])
# Every label reads as a string, so ``extra`` keeps the text exactly; typed columns are cast after.
DEVICE_LAYOUT = CsvLayout(
    columns={column: column for column in DEVICE_ALIASES},
    types={},
    required=("dev_eui",),
    header_key=lambda label: _CANONICAL.get(_key(label), label),
)
_DETAILS_KEY = re.compile(r"-details-([0-9A-F]{16})\.csv$")


def _whole(value: Any, what: str) -> int | None:
    """A counter: JSON integers, integral decimals and numeric strings are accepted."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidReportError(f"{what}: {text(value)!r} is not a count")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise InvalidReportError(f"{what}: {text(value)!r} is not a count") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidReportError(f"{what}: {text(value)!r} is not a whole number")
    return int(number)


def _is_count(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()
    )


def read_summary(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """One row per Application: the request's EUI/month/year plus the summary's counters."""
    columns: dict[str, list[Any]] = {f.name: [] for f in _APPLICATION_SCHEMA}
    for line, request, response in envelopes(source):
        if not isinstance(response, dict):
            raise InvalidReportError(f"line {line}: the summary is not a JSON object")
        values: dict[str, Any] = {
            "application_eui": text(request.get("eui")),
            "year": _whole(request.get("year"), f"line {line} year"),
            "month": _whole(request.get("month"), f"line {line} month"),
        }
        other: list[tuple[str, int]] = []
        extra: list[tuple[str, str | None]] = []
        for key, value in response.items():
            name = SUMMARY_FIELDS.get(_key(key))
            if name is not None:
                values[name] = _whole(value, f"line {line} {key}")
            elif _key(key) not in _SUMMARY_IDS and _is_count(value):
                other.append((key, int(value)))
            elif value is not None:
                extra.append((key, text(value)))
        values["other_counters"] = other
        values["extra"] = extra
        for name, column in columns.items():
            column.append(values.get(name))
    if columns["application_eui"]:
        arrays = [pa.array(columns[f.name], type=f.type) for f in _APPLICATION_SCHEMA]
        yield pa.RecordBatch.from_arrays(arrays, schema=_APPLICATION_SCHEMA)


def _application_eui(source_key: str) -> str:
    found = _DETAILS_KEY.search(source_key)
    if found is None:
        raise InvalidReportError(f"{source_key}: a details file is named <run>-details-<application EUI>.csv")
    return found.group(1)


def _count_column(array: pa.Array, label: str) -> pa.Array:
    try:
        return pc.cast(pc.utf8_trim_whitespace(array), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidReportError(f"column {label!r}: a value is not a whole number") from None


def read_details(source: IO[bytes], context: ReadContext) -> Iterator[pa.RecordBatch]:
    """One row per device of one Application's details CSV; a body with no header holds no devices."""
    application = _application_eui(context.source_key)
    head = source.read(1 << 16)
    if not head.strip():
        return
    stream = io.BufferedReader(_Chained(head, source))
    for batch, labels in csv_batches(stream, DEVICE_LAYOUT):
        length = batch.num_rows
        raw_labels = batch.schema.names
        typed: dict[str, tuple[str, pa.Array]] = {}
        for raw, key, array in zip(raw_labels, labels, batch.columns, strict=False):
            if key in DEVICE_ALIASES and key not in typed:
                typed[key] = (raw, array)
        arrays: list[pa.Array] = [constant(application, pa.string(), length)]
        for field in DEVICE_COLUMNS:
            if field.name == "application_eui":
                continue
            if field.name not in typed:
                arrays.append(pa.nulls(length, field.type))
            else:
                label, array = typed[field.name]
                arrays.append(_count_column(array, label) if field.type == pa.int64() else array)
        arrays.append(extra_map(list(zip(raw_labels, batch.columns, strict=True)), length))
        yield pa.RecordBatch.from_arrays(arrays, schema=_DEVICE_SCHEMA)


APPLICATION_DATASET = Dataset(
    name=APPLICATION_MONTH,
    vendor=VendorName.SENET,
    columns=APPLICATION_COLUMNS,
    read=read_summary,
    description="Senet usage summary per LoRa Application and calendar month",
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
