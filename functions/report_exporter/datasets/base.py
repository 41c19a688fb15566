"""A dataset: one Arrow schema that is the single source for the Parquet writer and the Glue table.

Readers turn a raw vendor file into record batches of the dataset's typed columns plus ``extra``
(unknown source columns, verbatim). The writer adds the lineage columns. ``export`` and ``period`` are
partition keys: they live in the object key (``export=.../period=...``), not in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from report_exporter.models.exports import ExportSpec, VendorName, Window
from report_exporter.models.manifest import RawManifest
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
    """What a reader may need besides the bytes: what the raw object answers, from its manifest.

    ``export`` is the export as the run requested the report (not today's config), ``window`` the period
    it covers, ``params`` what this one object answers within the request (Senet details: the application
    EUI). Build it with :meth:`from_manifest` (WriteParquet, replay) or :meth:`for_plan` (the manifest the
    run would write, for tests and benchmarks).
    """

    export: ExportSpec
    window: Window
    report_id: str | None
    source_key: str
    params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: RawManifest) -> ReadContext:
        return cls(export=manifest.request, window=manifest.window, report_id=manifest.report_id,
                   source_key=manifest.key, params=dict(manifest.params))

    @classmethod
    def for_plan(cls, plan: RunPlan, *, report_id: str | None, source_key: str,
                 params: Mapping[str, str] | None = None) -> ReadContext:
        return cls(export=plan.export, window=plan.window, report_id=report_id, source_key=source_key,
                   params=dict(params or {}))


Reader = Callable[[IO[bytes], ReadContext], Iterator[pa.RecordBatch]]
OutsidePeriod = Callable[[pa.RecordBatch, Window], int]
"""How many rows of a reader's batch lie outside the run's window (their own date, per dataset)."""


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
    """The columns written as a dictionary per row group; None: all of them."""
    column_encoding: Mapping[str, str] = field(default_factory=dict)
    """Parquet encodings of columns written without a dictionary (``DELTA_BINARY_PACKED`` for counts,
    ``DELTA_BYTE_ARRAY`` for text that shares prefixes...): encodings that Athena (Trino), DuckDB and
    pyarrow read."""
    queries: tuple[NamedQuery, ...] = ()
    outside_period: OutsidePeriod | None = None
    """Counts the rows dated outside the run's window; None when rows carry no date of their own."""

    def __post_init__(self) -> None:
        names = set(self.schema.names)
        dictionary = names if self.dictionary_columns is None else set(self.dictionary_columns)
        if unknown := sorted(set(self.column_encoding) - names):
            raise ValueError(f"dataset {self.name}: column_encoding names columns it does not have: {unknown}")
        if both := sorted(set(self.column_encoding) & dictionary):
            raise ValueError(f"dataset {self.name}: dictionary columns cannot take another encoding: {both}")

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
    items = pa.concat_arrays(values)
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


def _count(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def dates_outside(values: pa.Array, window: Window) -> int:
    """Rows whose calendar date is before the window's first day or after its last day (null: not counted).

    For vendors that report calendar dates: the date is compared with the export's calendar month as is.
    """
    first = pa.scalar(window.first_day, pa.date32())
    last = pa.scalar(window.last_day, pa.date32())
    return _count(pc.or_(pc.less(values, first), pc.greater(values, last)))


def instants_outside(values: pa.Array, window: Window) -> int:
    """Rows whose instant is before the window's start or at/after its end (in the export's time zone)."""
    start = pa.scalar(window.start, values.type)
    end = pa.scalar(window.end, values.type)
    return _count(pc.or_(pc.less(values, start), pc.greater_equal(values, end)))


