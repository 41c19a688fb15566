"""A dataset: one Arrow schema that is the single source for the Parquet writer and the Glue table.

Readers turn a raw vendor file into record batches of the dataset's typed columns plus ``extra``
(unknown source columns, verbatim). The writer adds the lineage columns. ``export`` and ``period`` are
partition keys: they live in the object key (``export=.../period=...``), not in the file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import VendorName
from report_exporter.models.payloads import RunPlan

TIMESTAMP = pa.timestamp("ms", tz="UTC")
EXTRA_TYPE = pa.map_(pa.string(), pa.string())
LINEAGE = pa.schema(
    [
        pa.field("vendor", pa.string(), nullable=False),
        pa.field("report_id", pa.string()),
        pa.field("exported_at", TIMESTAMP, nullable=False),
        pa.field("source_key", pa.string(), nullable=False),
    ]
)
EXTRA = pa.field("extra", EXTRA_TYPE)
PARTITION_KEYS = (("export", "string"), ("period", "string"))


@dataclass(frozen=True)
class ReadContext:
    """What a reader may need besides the bytes: the run and the raw object it reads."""

    plan: RunPlan
    report_id: str | None
    source_key: str


Reader = Callable[[IO[bytes], ReadContext], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class NamedQuery:
    """A saved Athena query over one dataset's table; also run by the tests with DuckDB.

    ``sql`` names the table by its bare name (Athena resolves it in the workgroup's database; the local
    runner creates a DuckDB view of the same name with ``export`` and ``period`` from the Hive path).
    Keep to SQL that Trino and DuckDB both accept.
    """

    name: str
    description: str
    sql: str


@dataclass(frozen=True)
class Dataset:
    """One Athena table: its typed columns, how to read raw files into them, how to write them."""

    name: str
    vendor: VendorName
    columns: pa.Schema
    read: Reader
    description: str
    row_group_size: int = 131_072
    dictionary_columns: tuple[str, ...] | None = None
    queries: tuple[NamedQuery, ...] = ()

    @property
    def schema(self) -> pa.Schema:
        """Columns of the Parquet file, in order: data, lineage, extra."""
        return pa.schema([*self.columns, *LINEAGE, EXTRA])

    @property
    def reader_schema(self) -> pa.Schema:
        """What ``read`` yields: data columns and ``extra``."""
        return pa.schema([*self.columns, EXTRA])

    def glue_columns(self) -> list[tuple[str, str]]:
        """(name, Hive type) for every Parquet column, as the Glue table declares them."""
        return [(f.name, hive_type(f.type)) for f in self.schema]


def hive_type(dtype: pa.DataType) -> str:
    """The Hive/Athena DDL type that reads ``dtype`` from Parquet."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_int64(dtype):
        return "bigint"
    if pa.types.is_int32(dtype):
        return "int"
    if pa.types.is_int16(dtype):
        return "smallint"
    if pa.types.is_int8(dtype):
        return "tinyint"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_float64(dtype):
        return "double"
    if pa.types.is_float32(dtype):
        return "float"
    if pa.types.is_date32(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_map(dtype):
        return f"map<{hive_type(dtype.key_type)},{hive_type(dtype.item_type)}>"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"array<{hive_type(dtype.value_type)}>"
    if pa.types.is_struct(dtype):
        inner = ",".join(f"{dtype.field(i).name}:{hive_type(dtype.field(i).type)}" for i in range(dtype.num_fields))
        return f"struct<{inner}>"
    raise TypeError(f"no Hive type for Arrow type {dtype}")


def constant(value: Any, dtype: pa.DataType, length: int) -> pa.Array:
    """An array of ``length`` copies of ``value`` (cheap: built once, then sliced)."""
    return pa.repeat(pa.scalar(value, type=dtype), length) if length else pa.array([], type=dtype)


def _arange(length: int) -> pa.Array:
    ones = pa.repeat(pa.scalar(1, pa.int64()), length)
    return pc.subtract(pc.cumulative_sum(ones), 1)


def _offsets(counts: pa.Array) -> pa.Array:
    """List offsets (int32) from per-row entry counts."""
    zero = pa.array([0], pa.int64())
    return pc.cast(pa.concat_arrays([zero, pc.cumulative_sum(counts).cast(pa.int64())]), pa.int32())


def extra_map(columns: Sequence[tuple[str, pa.Array]], length: int) -> pa.Array:
    """A ``map<string,string>`` column holding ``columns`` (name, values) verbatim, one entry per column per row.

    Null values are left out of a row's map; a row with no values gets an empty map. Vectorized: no
    Python loop over rows.
    """
    if not columns:
        return pa.MapArray.from_arrays(
            pa.repeat(pa.scalar(0, pa.int32()), length + 1), pa.array([], pa.string()), pa.array([], pa.string())
        )
    width = len(columns)
    values = [pc.cast(array, pa.string()) for _, array in columns]
    keys = pa.concat_arrays([pa.repeat(pa.scalar(name, pa.string()), length) for name, _ in columns])
    items = pa.concat_arrays([v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v for v in values])
    rows = _arange(length)
    # Column c of row r goes to position r * width + c: sort by that to interleave rows.
    position = pa.concat_arrays([pc.add(pc.multiply(rows, width), c) for c in range(width)])
    order = pc.sort_indices(position)
    keys, items = keys.take(order), items.take(order)
    keep = pc.is_valid(items)
    counts = pc.cast(pc.is_valid(values[0]), pa.int64())
    for v in values[1:]:
        counts = pc.add(counts, pc.cast(pc.is_valid(v), pa.int64()))
    return pa.MapArray.from_arrays(_offsets(counts), keys.filter(keep), items.filter(keep))


class _Chained(io.RawIOBase):
    """A read-only stream of ``head`` followed by the rest of ``tail`` (for sniffing a header)."""

    def __init__(self, head: bytes, tail: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._tail.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class CsvLayout:
    """How a vendor's CSV maps onto a dataset: header label -> (column name, Arrow type)."""

    columns: Mapping[str, str]
    types: Mapping[str, pa.DataType]
    required: tuple[str, ...] = ()
    header_key: Callable[[str], str] = field(default=lambda label: label)
    timestamp_parsers: tuple[str, ...] = ()
    block_size: int = 1 << 20


def _split_header(line: bytes) -> list[str]:
    text = line.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return next(csv.reader([text]), [])


def find_header(head: bytes, layout: CsvLayout) -> tuple[int, list[str]]:
    """Line index and labels of the header row: the first line that carries every required label."""
    lines = head.split(b"\n")
    for index, line in enumerate(lines[:-1] if len(lines) > 1 else lines):
        labels = [layout.header_key(label.strip()) for label in _split_header(line)]
        if layout.required and all(req in labels for req in layout.required):
            return index, labels
    wanted = ", ".join(repr(r) for r in layout.required)
    raise InvalidReportError(f"no header row with {wanted} in the first {len(head)} bytes of the report")


def csv_batches(source: IO[bytes], layout: CsvLayout, *, sniff_bytes: int = 1 << 16) -> Iterator[
    tuple[pa.RecordBatch, list[str]]
]:
    """Typed record batches straight from a CSV stream, after any preamble, plus the header labels.

    Known columns are typed with ``layout.types`` by the Arrow parser (empty fields become null);
    unknown columns stay strings. The caller renames and builds ``extra``.
    """
    head = b""
    while len(head) < sniff_bytes:
        chunk = source.read(sniff_bytes - len(head))
        if not chunk:
            break
        head += chunk
    if not head.strip():
        raise InvalidReportError("the report is empty (no header row)")
    skip, labels = find_header(head, layout)
    raw_labels = _split_header(head.split(b"\n")[skip])
    column_types: dict[str, pa.DataType] = {}
    for raw, key in zip(raw_labels, labels, strict=False):
        name = layout.columns.get(key)
        column_types[raw] = layout.types[name] if name is not None and name in layout.types else pa.string()
    stream = io.BufferedReader(_Chained(head, source), buffer_size=layout.block_size)
    convert = pacsv.ConvertOptions(
        column_types=column_types,
        # Only an empty field is null: Arrow's defaults would also turn "NA", "null", "N/A" into NULL,
        # silently losing a billing tag named NA and accepting "n/a" where a number belongs.
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        timestamp_parsers=list(layout.timestamp_parsers) or None,
    )
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(skip_rows=skip, block_size=layout.block_size, encoding="utf8"),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=convert,
        )
        for batch in reader:
            yield batch, labels
    except pa.ArrowInvalid as exc:
        raise InvalidReportError(_describe_arrow_error(str(exc), raw_labels)) from None


def _describe_arrow_error(message: str, labels: list[str]) -> str:
    """Arrow says 'In CSV column #3: Row #7: ...': name the column too."""
    found = re.search(r"column #(\d+)", message)
    if found and int(found.group(1)) < len(labels):
        message = f"column {labels[int(found.group(1))]!r}: {message}"
    return f"bad value in the report: {message}"


def shape_csv_batch(
    batch: pa.RecordBatch, labels: list[str], layout: CsvLayout, columns: pa.Schema,
    constants: Mapping[str, Any] | None = None,
) -> pa.RecordBatch:
    """Rename known CSV columns to the dataset's names and types, fill absent ones with nulls,
    add per-run constants, and fold unknown columns into ``extra``."""
    length = batch.num_rows
    by_name: dict[str, pa.Array] = {}
    unknown: list[tuple[str, pa.Array]] = []
    raw_labels = batch.schema.names
    for index, key in enumerate(labels[: len(raw_labels)]):
        array = batch.column(index)
        name = layout.columns.get(key)
        if name is None:
            unknown.append((raw_labels[index], array))
        elif name not in by_name:
            by_name[name] = array
    arrays = []
    for f in columns:
        if f.name in by_name:
            array = by_name[f.name]
            arrays.append(array if array.type == f.type else pc.cast(array, f.type))
        elif constants and f.name in constants:
            arrays.append(constant(constants[f.name], f.type, length))
        else:
            arrays.append(pa.nulls(length, f.type))
    arrays.append(extra_map(unknown, length))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([*columns, EXTRA]))


def check_columns(present: Iterable[str], required: Iterable[str], what: str) -> None:
    missing = [c for c in required if c not in set(present)]
    if missing:
        raise InvalidReportError(f"{what}: missing column(s) {', '.join(missing)}")
