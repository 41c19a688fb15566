"""Vendor CSV -> typed record batches, streaming, exact, and every error naming its data row and column.

How a report is read:

1. **Header.** The header is the first CSV record (after any preamble lines) that carries every label the
   layout requires; it is found with Python's ``csv`` module, so a quoted label may hold a comma or a
   line break. A UTF-8 byte-order mark is dropped. A header-only file, with or without its last line
   break, has no rows.
2. **Chunks of whole records.** The rest is cut into chunks of about ``block_size`` bytes that end where a
   record ends: at a line break preceded by an even number of quote characters (RFC 4180 quoting). A chunk
   grows until such a line break comes, so a field of any size is read (Arrow's own streaming reader
   refuses a record longer than its block). Each cut is confirmed by Arrow itself: a sentinel record
   appended to the chunk must come back as the chunk's last row, which it cannot if the cut fell inside a
   quoted field (a stray quote in an unquoted field can fool the count); a refused cut waits for more bytes.
3. **Strings first.** Arrow parses every column of a chunk as text (an empty field is null). A record
   with the wrong number of fields, or text that is not UTF-8, is named by its data row (1-based, counting
   records after the header; blank lines are not records) using Python's ``csv`` module on that chunk.
4. **Typed columns.** Each typed column is converted by an Arrow cast (``values.py`` states the rules).
   If the cast refuses a chunk, the column is converted value by value with the same rules, which finds
   and names the first bad value: ``data row 7, column 'Data Operations': 'many' is not a whole number``.

Which source column fills which typed column (:func:`plan_columns`): every header label is mapped to a
key by the layout; a key listed in ``CsvLayout.columns`` names its dataset column. When several source
columns map to one dataset column, the one whose key comes first in ``CsvLayout.columns`` wins (aliases
by preference), and among equal keys the leftmost. Every other source column is kept verbatim in
``extra`` under its header label; a label already used in ``extra`` gets `` #2``, `` #3``... in order.
Nothing is dropped.
"""

from __future__ import annotations

import contextvars
import csv
import functools
import io
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Generic, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from report_exporter.datasets.base import EXTRA, constant, extra_map
from report_exporter.datasets.values import BadValue, from_text, show
from report_exporter.errors import InvalidReportError

_SNIFF = 1 << 16
_MAX_HEADER_SEARCH = 1 << 20
T = TypeVar("T")
_MARK = "\x1f"
_BOM = b"\xef\xbb\xbf"
_STRINGS_NULL = {"null_values": [""], "strings_can_be_null": True, "quoted_strings_can_be_null": True}
_PARSE = pacsv.ParseOptions(newlines_in_values=True)


class Refused(Exception):
    """The first value of a column that does not convert: its index in the batch, its text and why."""

    def __init__(self, index: int, text: str, reason: str) -> None:
        super().__init__(reason)
        self.index, self.text, self.reason = index, text, reason


@dataclass(frozen=True)
class CsvLayout:
    """How a vendor's CSV maps onto a dataset: header key -> dataset column, in order of preference."""

    columns: Mapping[str, str]
    required: tuple[str, ...] = ()
    header_key: Callable[[str], str] = field(default=lambda label: label)
    trim: bool = False
    """Typed values lose surrounding spaces and tabs before they are converted (strings are kept verbatim)."""
    block_size: int = 1 << 20


@dataclass(frozen=True)
class Header:
    labels: list[str]
    """The header labels as written (a byte-order mark dropped)."""
    keys: list[str]
    """Each label's key (``layout.header_key`` of the label without surrounding blanks)."""


@dataclass(frozen=True)
class ColumnPlan:
    """Where each column of the batches comes from: typed columns by CSV index, ``extra`` keys by CSV index."""

    typed: dict[str, int]
    extra: list[tuple[str, int]]


def unique_keys(labels: Sequence[str]) -> list[str]:
    """``labels`` with repeats renamed ``label #2``, ``label #3``... (map keys must be unique for Athena)."""
    seen: set[str] = set()
    keys = []
    for label in labels:
        key, number = label, 2
        while key in seen:
            key = f"{label} #{number}"
            number += 1
        seen.add(key)
        keys.append(key)
    return keys


def plan_columns(header: Header, layout: CsvLayout, columns: pa.Schema, *, keep_all: bool = False) -> ColumnPlan:
    """Which CSV column fills each typed column, and which go to ``extra`` (see the module docstring)."""
    rank = {key: position for position, key in enumerate(layout.columns)}
    wanted = set(columns.names)
    typed: dict[str, int] = {}
    for index, key in enumerate(header.keys):
        name = layout.columns.get(key)
        if name is None or name not in wanted:
            continue
        current = typed.get(name)
        if current is None or rank[key] < rank[header.keys[current]]:
            typed[name] = index
    used = set(typed.values())
    indices = [i for i in range(len(header.labels)) if keep_all or i not in used]
    keys = unique_keys([header.labels[i] for i in indices])
    return ColumnPlan(typed=typed, extra=list(zip(keys, indices, strict=True)))


def _lines(head: bytes, eof: bool) -> Iterator[bytes]:
    lines = head.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if not eof and index == len(lines) - 1 and not line.endswith((b"\n", b"\r")):
            return  # cut by the read: not a whole line yet
        yield line


def _find_header(head: bytes, layout: CsvLayout, eof: bool) -> tuple[Header, int] | None:
    """The header and the byte offset just after it, or None when ``head`` does not hold it (yet)."""
    consumed, exhausted = 0, False

    def text_lines() -> Iterator[str]:
        nonlocal consumed, exhausted
        for line in _lines(head, eof):
            encoding = "utf-8-sig" if consumed == 0 else "utf-8"
            consumed += len(line)
            yield line.decode(encoding, errors="replace")
        exhausted = True

    records = csv.reader(text_lines())
    while True:
        try:
            record = next(records)
        except StopIteration:
            return None
        except csv.Error:
            continue  # a preamble line the csv module refuses is not the header
        if exhausted and not eof:
            return None  # the record ran to the end of what was read: it may go on (a quoted line break)
        keys = [layout.header_key(label.strip()) for label in record]
        if layout.required and all(required in keys for required in layout.required):
            return Header(labels=record, keys=keys), consumed


def read_header(source: IO[bytes], layout: CsvLayout) -> tuple[Header, bytes] | None:
    """The header row and the bytes read past it; None for an empty (blank) report.

    Raises:
        InvalidReportError: no header row with the required labels near the top of the report.
    """
    head, eof = b"", False
    while True:
        data = source.read(_SNIFF)
        eof = not data
        head += data
        if not head.strip() and eof:
            return None
        found = _find_header(head, layout, eof)
        if found is not None:
            header, offset = found
            return header, head[offset:]
        if eof or len(head) >= _MAX_HEADER_SEARCH:
            wanted = ", ".join(repr(r) for r in layout.required)
            raise InvalidReportError(f"no header row with {wanted} in the first {len(head):,} bytes of the report")


def _last_even_break(buffer: bytes) -> int | None:
    """The end of the last line break after an even number of quote characters (RFC 4180), if any."""
    quotes, end = buffer.count(b'"'), len(buffer)
    position = buffer.rfind(b"\n")
    while position >= 0:
        quotes -= buffer.count(b'"', position + 1, end)
        if quotes % 2 == 0:
            return position + 1
        end = position
        position = buffer.rfind(b"\n", 0, end)
    return None


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class Ahead(Generic[T]):
    """Runs an iterator on a thread of its own, at most ``depth`` items ahead of the one consuming it.

    Reading (an S3 body, gzip inflating), Arrow's parsing and its casts release the GIL, so the stages
    overlap, as they did inside Arrow's own streaming reader. An error in the iterator is raised where the
    items are consumed. :meth:`close` stops the thread (and closes the iterator) before the caller closes
    what it reads.
    """

    def __init__(self, produce: Callable[[], Iterator[T]], *, depth: int, name: str) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run, produce), name=name, daemon=True)
        self._thread.start()

    def _run(self, produce: Callable[[], Iterator[T]]) -> None:
        try:
            items = produce()
            try:
                for item in items:
                    if not self._put(item):
                        return
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            self._put(_END)
        except BaseException as exc:  # handed to the consuming thread
            self._put(_Failure(exc))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        while True:  # free a slot at once for a put that is waiting, rather than after its timeout
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()


class CsvRows:
    """The data records of one report as all-string record batches, with the data row number of each batch."""

    def __init__(self, source: IO[bytes], head: bytes, header: Header, block_size: int) -> None:
        self._source = source
        self._blocks = [head] if head else []
        self._size = len(head)
        self._header = header
        self._width = len(header.labels)
        self._names = [str(i) for i in range(self._width)]
        self._block = block_size
        self._sentinel = (",".join([_MARK] * self._width) + "\n").encode()
        self._convert = pacsv.ConvertOptions(column_types=dict.fromkeys(self._names, pa.string()), **_STRINGS_NULL)
        self.rows = 0

    def __iter__(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Three stages, each on its own thread: reading blocks, cutting and parsing chunks, the caller's own work."""
        blocks: Ahead[bytes] = Ahead(lambda: iter(functools.partial(self._source.read, self._block), b""),
                                     depth=4, name="csv-read")
        try:
            records = Ahead(lambda: self._records(blocks), depth=2, name="csv-parse")
            try:
                yield from records
            finally:
                records.close()
        finally:
            blocks.close()

    def _records(self, blocks: Iterable[bytes]) -> Iterator[tuple[int, pa.RecordBatch]]:
        attempt_at = 0
        for data in blocks:
            self._blocks.append(data)
            self._size += len(data)
            if self._size < attempt_at:
                continue
            # Usually the last line break ends a record; after a multi-line quoted field near the end it may
            # not, and the last break after an even number of quotes is the next guess.
            table = self._try_cut(*self._last_break())
            if table is None:
                whole = b"".join(self._blocks)
                self._blocks = [whole]
                even = _last_even_break(whole)
                table = self._try_cut(0, even) if even is not None else None
            if table is None:
                attempt_at = 2 * self._size  # inside a long field: try again once the buffer doubled
                continue
            attempt_at = 0
            yield from self._emit(table)
        data = b"".join(self._blocks)
        self._blocks, self._size = [], 0
        if data.strip():
            yield from self._emit(self._parse_final(data))

    def _last_break(self) -> tuple[int, int]:
        """(block index, offset just after) of the last line break in the buffered blocks; (0, 0) if none."""
        for index in range(len(self._blocks) - 1, -1, -1):
            position = self._blocks[index].rfind(b"\n")
            if position >= 0:
                return index, position + 1
        return 0, 0

    def _emit(self, table: pa.Table) -> Iterator[tuple[int, pa.RecordBatch]]:
        for batch in table.to_batches():
            if batch.num_rows:
                yield self.rows + 1, batch
                self.rows += batch.num_rows

    def _read(self, data: bytes) -> pa.Table | str:
        """Arrow's parse of ``data``, every column as text, or Arrow's error message.

        The table may keep ``data`` alive (its strings point into it), so ``data`` is an immutable copy,
        never the growing buffer.
        """
        if data.startswith(_BOM):
            # Arrow drops a byte-order mark at the start of its input, here the start of a data value: a
            # blank line first (not a record) keeps it.
            data = b"\n" + data
        options = pacsv.ReadOptions(column_names=self._names, block_size=len(data) + 1, use_threads=False)
        try:
            return pacsv.open_csv(pa.BufferReader(data), read_options=options, parse_options=_PARSE,
                                  convert_options=self._convert).read_all()
        except pa.ArrowInvalid as exc:
            return str(exc)

    def _try_cut(self, index: int, offset: int) -> pa.Table | None:
        """The records before ``offset`` in block ``index`` (then dropped from the buffer), or None when that
        point does not end a record.

        A sentinel record appended at the cut must come back as the last row: inside a quoted field it
        would be read as part of that field instead.
        """
        if index == 0 and offset == 0:
            return None
        data = b"".join([*self._blocks[:index], memoryview(self._blocks[index])[:offset], self._sentinel])
        table = self._read(data)
        if isinstance(table, str):
            self._locate(data[: -len(self._sentinel)], final=False, arrow=table)
            return None
        last = table.slice(table.num_rows - 1) if table.num_rows else None
        if last is None or any(column[0].as_py() != _MARK for column in last.columns):
            return None
        rest = self._blocks[index][offset:]
        self._blocks = [rest, *self._blocks[index + 1:]] if rest else self._blocks[index + 1:]
        self._size = sum(len(block) for block in self._blocks)
        return table.slice(0, table.num_rows - 1)

    def _parse_final(self, data: bytes) -> pa.Table:
        table = self._read(data)
        if isinstance(table, str):
            self._locate(data, final=True, arrow=table)
            raise InvalidReportError(f"data rows {self.rows + 1} and after: not readable as CSV ({table[:300]})")
        return table

    def _locate(self, chunk: bytes, *, final: bool, arrow: str) -> None:
        """Name the record Arrow refused, using Python's csv module on the chunk (the error path only).

        Returns (instead of raising) when only the chunk's last record is wrong and the chunk is not the
        end of the report: the cut may have fallen inside a quoted field, so the caller waits for more bytes.
        """
        text = chunk.decode("utf-8", errors="surrogateescape")
        limit = csv.field_size_limit()
        csv.field_size_limit(sys.maxsize)
        try:
            records = [record for record in csv.reader(io.StringIO(text, newline="")) if record]
        except csv.Error as exc:
            raise InvalidReportError(f"data rows {self.rows + 1} and after: not readable as CSV ({exc})") from None
        finally:
            csv.field_size_limit(limit)
        for index, record in enumerate(records):
            row = self.rows + 1 + index
            if len(record) != self._width:
                if index == len(records) - 1 and not final:
                    return
                raise InvalidReportError(
                    f"data row {row}: {len(record)} fields where the header has {self._width}"
                )
            for label, value in zip(self._header.labels, record, strict=True):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidReportError(f"data row {row}, column {label!r}: the text is not UTF-8") from None
        if not final:
            return
        raise InvalidReportError(f"data rows {self.rows + 1} and after: not readable as CSV ({arrow[:300]})")


def _plain_decimal_pattern(dtype: pa.Decimal128Type) -> str:
    """Text Arrow's cast converts exactly: plain digits that fit ``dtype`` as written.

    Arrow's string-to-decimal cast (pyarrow 26) accepts ``7e+-3``, and silently wraps around when the
    value needs more digits than the precision after rescaling (``4e28``, or 21 integer digits, into
    decimal(38,18)). Anything else (exponents, long digit strings) takes the exact slow path.
    """
    whole, fraction = dtype.precision - dtype.scale, dtype.scale
    return rf"^[+-]?([0-9]{{1,{whole}}}(\.[0-9]{{0,{fraction}}})?|\.[0-9]{{1,{fraction}}})$"


def _has(array: pa.Array, *texts: str) -> bool:
    return any(pc.any(pc.match_substring(array, text)).as_py() for text in texts)


def _fast(array: pa.Array, dtype: pa.DataType) -> pa.Array | None:
    """Arrow's vectorized conversion, or None when it cannot vouch for every value (the slow path decides).

    The checks only reject what Arrow's casts would accept but ``values.py`` does not (tested against
    each other in tests/unit/datasets/test_csvread.py): hexadecimal integers, decimal exponents and
    digit strings long enough to overflow, and the year 0000.
    """
    if pa.types.is_integer(dtype):
        return None if _has(array, "x", "X") else pc.cast(array, dtype)
    if pa.types.is_decimal(dtype):
        if _has(array, "e", "E"):
            return None
        longest = pc.max(pc.binary_length(array)).as_py() or 0
        short = longest <= min(dtype.precision - dtype.scale, dtype.scale)
        if not short and pc.all(pc.match_substring_regex(array, _plain_decimal_pattern(dtype))).as_py() is False:
            return None
        return pc.cast(array, dtype)
    if pa.types.is_date32(dtype):
        return None if _has_year_zero(array) else pc.cast(array, dtype)
    if pa.types.is_timestamp(dtype):
        if _has_year_zero(array):
            return None
        naive = pa.timestamp(dtype.unit)
        try:
            return pc.cast(array, naive).view(dtype)
        except pa.ArrowInvalid:
            pass
        # A literal Z (UTC) and year-month (HERE's month detail) are not ISO 8601 forms Arrow's cast knows.
        array = pc.replace_substring_regex(array, "Z$", "")
        months = pc.equal(pc.binary_length(array), 7)
        array = pc.if_else(months, pc.binary_join_element_wise(array, "-01", ""), array)
        return pc.cast(array, naive).view(dtype)
    raise TypeError(f"no CSV conversion to {dtype}")


def _has_year_zero(array: pa.Array) -> bool:
    return bool(pc.any(pc.starts_with(array, "0000")).as_py())


def convert_column(array: pa.Array, dtype: pa.DataType, *, trim: bool = False) -> pa.Array:
    """Text -> ``dtype`` by the rules of ``values.py``.

    Raises:
        Refused: the first value that does not convert.
    """
    if pa.types.is_string(dtype):
        return array
    if trim:
        array = pc.utf8_trim(array, " \t")
    try:
        converted = _fast(array, dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        converted = None
    if converted is not None:
        return converted
    values: list[Any] = []
    for index, text in enumerate(array.to_pylist()):
        try:
            values.append(None if text is None else from_text(text, dtype))
        except BadValue as exc:
            raise Refused(index, text, str(exc)) from None
    return pa.array(values, type=dtype)


def typed_batch(
    batch: pa.RecordBatch, first_row: int, header: Header, plan: ColumnPlan, layout: CsvLayout, columns: pa.Schema,
    constants: Mapping[str, Any] | None = None,
) -> pa.RecordBatch:
    """One all-string batch -> the dataset's columns and ``extra``, by ``plan``.

    Raises:
        InvalidReportError: naming the data row, the column and the value that does not convert.
    """
    length = batch.num_rows
    arrays = []
    for f in columns:
        index = plan.typed.get(f.name)
        if index is not None:
            try:
                arrays.append(convert_column(batch.column(index), f.type, trim=layout.trim))
            except Refused as exc:
                where = f"data row {first_row + exc.index}, column {header.labels[index]!r}"
                raise InvalidReportError(f"{where}: {show(exc.text)} {exc.reason}") from None
        elif constants and f.name in constants:
            arrays.append(constant(constants[f.name], f.type, length))
        else:
            arrays.append(pa.nulls(length, f.type))
    arrays.append(extra_map([(key, batch.column(index)) for key, index in plan.extra], length))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([*columns, EXTRA]))


def read_csv(
    source: IO[bytes], layout: CsvLayout, columns: pa.Schema, *, constants: Mapping[str, Any] | None = None,
    keep_all: bool = False, empty_ok: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Typed record batches (``columns`` and ``extra``) from a vendor CSV stream; see the module docstring.

    Args:
        source: The raw report, read once, front to back.
        layout: Labels, aliases and required labels of the vendor's CSV.
        columns: The dataset's columns; those no source column fills are constants or null.
        constants: Per-run values for columns the CSV does not carry.
        keep_all: Keep every source column in ``extra``, typed ones too.
        empty_ok: A blank report has no rows (otherwise it is an error).

    Raises:
        InvalidReportError: no header, a malformed record or a value that does not convert (row and column named).
    """
    found = read_header(source, layout)
    if found is None:
        if empty_ok:
            return
        raise InvalidReportError("the report is empty (no header row)")
    header, head = found
    plan = plan_columns(header, layout, columns, keep_all=keep_all)
    for first_row, batch in CsvRows(source, head, header, layout.block_size):
        yield typed_batch(batch, first_row, header, plan, layout, columns, constants)
