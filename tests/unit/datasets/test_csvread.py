"""The CSV reader's edges: field sizes, header-only files, malformed records, fast and exact conversions agree."""

from __future__ import annotations

import csv
import io
import random
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from report_exporter.adapters.csv_records import CsvRecordCounter
from report_exporter.datasets import csvread
from report_exporter.datasets.csvread import CsvLayout, Refused, convert_column, read_csv, unique_keys
from report_exporter.datasets.values import AMOUNT, BadValue, from_text
from report_exporter.errors import InvalidReportError

LAYOUT = CsvLayout(columns={"id": "id", "n": "n", "amount": "amount", "day": "day"}, required=("id",),
                   block_size=1 << 10)
COLUMNS = pa.schema([pa.field("id", pa.string()), pa.field("n", pa.int64()), pa.field("amount", AMOUNT),
                     pa.field("day", pa.date32())])


def read(data: bytes, layout: CsvLayout = LAYOUT, **options: bool) -> pa.Table:
    batches = list(read_csv(io.BytesIO(data), layout, COLUMNS, **options))
    return pa.Table.from_batches(batches, schema=pa.schema([*COLUMNS, pa.field("extra", pa.map_(pa.string(),
                                                                                            pa.string()))]))


def test_a_field_larger_than_a_block_is_read_whole() -> None:
    # Given a quoted field of 3 MiB (with commas and line breaks) in a reader whose blocks are 1 KiB
    big = ("x, y\n" * 629_146)[: 3 << 20]
    data = f'id,n,note\na,1,small\nb,2,"{big}"\nc,3,after\n'.encode()
    # When read
    rows = read(data).to_pylist()
    # Then every row is there and the big field is intact
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert dict(rows[1]["extra"])["note"] == big


def test_a_field_of_several_mebibytes_is_read_with_the_default_block_size() -> None:
    # Given a 5 MiB unquoted field (Arrow's streaming reader refused it: "straddles two block boundaries")
    layout = CsvLayout(columns=LAYOUT.columns, required=("id",))
    data = b"id,n,note\na,1," + b"z" * (5 << 20) + b"\nb,2,ok\n"
    # When read / Then both rows are there
    rows = read(data, layout).to_pylist()
    assert [r["n"] for r in rows] == [1, 2] and len(dict(rows[0]["extra"])["note"]) == 5 << 20


@pytest.mark.parametrize("data", [b"id,n", b"id,n\n", b"id,n\r\n", b"\xef\xbb\xbfid,n", b"id,n\n\n\n"])
def test_a_header_only_report_has_no_rows_with_or_without_its_last_line_break(data: bytes) -> None:
    assert read(data).num_rows == 0


def test_the_last_record_needs_no_line_break_and_crlf_and_bom_are_read() -> None:
    rows = read(b"\xef\xbb\xbfid,n\r\na,1\r\nb,2").to_pylist()
    assert [(r["id"], r["n"]) for r in rows] == [("a", 1), ("b", 2)]


def test_a_quoted_header_label_may_hold_a_comma_or_a_line_break() -> None:
    data = b'"id","n","Notes, free\ntext"\na,1,x\n'
    (row,) = read(data).to_pylist()
    assert row["extra"] == [("Notes, free\ntext", "x")]


def test_rows_are_numbered_as_data_records_across_blocks_and_multi_line_fields() -> None:
    # Given 20,000 rows (the first 64 KiB are read with the header, the rest in 1 KiB blocks), some fields
    # spanning lines, and a bad count in row 15,000
    lines = [f'r{i},{i},"note\n{i}"\n' if i % 7 == 0 else f"r{i},{i},plain\n" for i in range(1, 20_001)]
    lines[14_999] = "r15000,many,plain\n"
    # When read / Then the error names the data row (not the line) and the column
    with pytest.raises(InvalidReportError, match=r"^data row 15000, column 'n': 'many' is not a whole number$"):
        read(("id,n,note\n" + "".join(lines)).encode())


def test_a_record_with_the_wrong_number_of_fields_names_its_row() -> None:
    with pytest.raises(InvalidReportError, match=r"data row 3: 4 fields where the header has 3"):
        read(b"id,n,note\na,1,x\nb,2,y\nc,3,z,extra\nd,4,w\n")
    with pytest.raises(InvalidReportError, match=r"data row 2: 2 fields where the header has 3"):
        read(b"id,n,note\na,1,x\nb,2\n")


def test_text_that_is_not_utf8_names_row_and_column() -> None:
    with pytest.raises(InvalidReportError, match=r"data row 2, column 'note': the text is not UTF-8"):
        read(b"id,n,note\na,1,x\nb,2,caf\xe9\n")


def test_a_stray_quote_in_an_unquoted_field_is_read_as_csv_reads_it() -> None:
    # Given a display size with a bare inch mark, and later a quoted field spanning lines
    rows = [f'd{i},{i},"Screen\n{i}"\n' if i == 9000 else f'd{i},{i},7" display\n' for i in range(1, 10_001)]
    data = ("id,n,note\n" + "".join(rows)).encode()
    # When read with small blocks (past the first 64 KiB) / Then each record is what Python's csv module reads
    table = read(data).to_pylist()
    assert len(table) == 10_000
    assert dict(table[10]["extra"])["note"] == '7" display'
    assert dict(table[8999]["extra"])["note"] == "Screen\n9000"
    assert [r["n"] for r in table] == list(range(1, 10_001))


def test_a_column_with_empty_fields_and_a_value_only_the_exact_path_judges_names_that_value() -> None:
    # Given an empty count (null) before a hexadecimal one (Arrow's cast would take it; values.py refuses it)
    # When read / Then the error names the second data row, the column and the value, not the empty field
    with pytest.raises(InvalidReportError, match=r"data row 2.*'n'.*'0x1f'"):
        read(b"id,n\na,\nb,0x1f\n")


def test_unique_keys_numbers_repeated_labels() -> None:
    assert unique_keys(["a", "b", "a", "a"]) == ["a", "b", "a #2", "a #3"]
    assert unique_keys(["a", "a", "a #2"]) == ["a", "a #2", "a #2 #2"]


@pytest.mark.parametrize(("text", "dtype", "reason"), [
    ("0x1f", pa.int64(), "is not a whole number"),
    ("+5", pa.int64(), "is not a whole number"),
    ("9223372036854775808", pa.int64(), "out of the range"),
    ("7e+-3", AMOUNT, "is not a number"),
    ("4e28", AMOUNT, "29 digits before the decimal point"),
    ("123456789012345678901", AMOUNT, "21 digits before the decimal point"),
    ("0.0000000000000000001", AMOUNT, "19 decimal places"),
    ("inf", AMOUNT, "is not a number"),
    ("0000-01-01", pa.date32(), "not a calendar date"),
    ("2026-02-30", pa.date32(), "not a calendar date"),
    ("2026-10-01T10:00:00+02:00", pa.timestamp("ms", tz="UTC"), "is not a date-time"),
    ("2026-10-01T10:00:00.1234", pa.timestamp("ms", tz="UTC"), "is not a date-time"),
])
def test_values_arrow_would_accept_or_garble_are_refused(text: str, dtype: pa.DataType, reason: str) -> None:
    # Given text Arrow's casts accept (hex, "+-" exponents, the year 0) or turn into a wrong number (overflow)
    # When converted / Then it is refused, with why
    with pytest.raises(Refused, match=reason) as refused:
        convert_column(pa.array(["1", text] if not pa.types.is_temporal(dtype) else ["2026-10-01", text]), dtype)
    assert refused.value.index == 1 and refused.value.text == text


@pytest.mark.parametrize(("text", "dtype", "expected"), [
    ("0e400", AMOUNT, Decimal(0)),
    ("1.5e-17", AMOUNT, Decimal("1.5E-17")),
    ("000000000000000000000000001.000000000000000000000", AMOUNT, Decimal(1)),
    ("-0", pa.int64(), 0),
    ("2026-10", pa.timestamp("ms", tz="UTC"), datetime(2026, 10, 1, tzinfo=UTC)),
    ("2026-10-05T10:00:00.5Z", pa.timestamp("ms", tz="UTC"), datetime(2026, 10, 5, 10, 0, 0, 500_000, tzinfo=UTC)),
    ("0001-01-01", pa.date32(), date(1, 1, 1)),
])
def test_values_arrow_refuses_but_that_are_exact_are_kept(text: str, dtype: pa.DataType, expected: object) -> None:
    assert convert_column(pa.array([text]), dtype).to_pylist() == [expected]


def _candidates(rng: random.Random, alphabet: str, templates: list[str]) -> list[str]:
    out = []
    for _ in range(3000):
        if templates and rng.random() < 0.6:
            chars = list(rng.choice(templates))
            for _ in range(rng.randint(0, 2)):
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
            out.append("".join(chars))
        else:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 45))))
    return out


@pytest.mark.parametrize(("dtype", "alphabet", "templates"), [
    (pa.int64(), "0123456789-+xXeE. ", ["12345", "-9223372036854775808", "9223372036854775807"]),
    (AMOUNT, "0123456789+-.eE ", ["12345678901234567890.123456789012345678", "0.0001", "-.5e3"]),
    (pa.date32(), "0123456789-T ", ["2026-10-01", "0000-01-01", "2024-02-29"]),
    (pa.timestamp("ms", tz="UTC"), "0123456789-:TZ. ", ["2026-10-01T10:00:00", "2026-10", "2026-10-01 23:59:59.999Z"]),
])
def test_the_fast_path_and_the_exact_rules_agree_value_by_value(
    dtype: pa.DataType, alphabet: str, templates: list[str]
) -> None:
    # Given thousands of odd texts (fixed seed), each converted alone: Arrow's fast path where it vouches,
    # otherwise the exact rules of values.py
    for text in _candidates(random.Random(9), alphabet, templates):
        try:
            expected = from_text(text, dtype)
        except BadValue:
            expected = BadValue
        try:
            (got,) = convert_column(pa.array([text]), dtype).to_pylist()
        except Refused:
            got = BadValue
        # Then both agree on what is accepted and on the value
        assert got == expected, text


def test_a_value_starting_with_a_byte_order_mark_keeps_it_wherever_a_chunk_starts() -> None:
    # Given rows whose first value is U+FEFF, one of them at the start of every small chunk
    data = b"id,n\n" + b"".join(b"\xef\xbb\xbf," + str(i).encode() + b"\n" for i in range(20_000))
    # When read / Then the mark is a value (only the file's own mark before the header is dropped)
    rows = read(data).to_pylist()
    assert {r["id"] for r in rows} == {"\ufeff"} and [r["n"] for r in rows] == list(range(20_000))


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, as a slow network body does."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self.reads = data, step, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        size = self._step if size < 0 else min(size, self._step)
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


def test_only_an_empty_field_is_null_and_na_like_text_stays_text() -> None:
    # Given fields Arrow would read as null by default ("NA", "null", "N/A"), a quoted empty and an empty field
    data = b'id,n,a,b,c,d,e\nNA,,null,N/A,"",,nan\n'
    # When read
    (row,) = read(data).to_pylist()
    # Then only the empty fields (quoted or not) are null; the rest is kept as written
    assert (row["id"], row["n"]) == ("NA", None)
    assert row["extra"] == [("a", "null"), ("b", "N/A"), ("e", "nan")]


def test_a_typed_column_is_cast_and_its_empty_fields_are_null() -> None:
    rows = read(b'id,n,amount,day\na,7,12.50,2026-10-31\nb,,"",\n').to_pylist()
    assert [(r["n"], r["amount"], r["day"]) for r in rows] == [(7, Decimal("12.5"), date(2026, 10, 31)),
                                                               (None, None, None)]


def test_the_header_is_found_across_many_short_reads_after_a_long_preamble() -> None:
    # Given 100 KiB of preamble lines, then the header, delivered 1,000 bytes per read
    preamble = b"".join(b"generated by the vendor, line %d\n" % i for i in range(3000))
    source = Trickle(preamble + b'id,n\n"a\nb",1\nc,2\n', 1000)
    # When read / Then the header is found and both rows are read
    rows = list(read_csv(source, LAYOUT, COLUMNS))
    table = pa.Table.from_batches(rows)
    assert table.column("id").to_pylist() == ["a\nb", "c"] and table.column("n").to_pylist() == [1, 2]


def test_a_header_split_by_a_read_inside_a_quoted_label_is_read_whole() -> None:
    # Given a quoted label holding a line break, and a read that ends right after that break
    data = b'id,"Notes\nmore",n\nx,y,3\n'
    rows = pa.Table.from_batches(list(read_csv(Trickle(data, 10), LAYOUT, COLUMNS))).to_pylist()
    assert [(r["id"], r["n"], r["extra"]) for r in rows] == [("x", 3, [("Notes\nmore", "y")])]


def test_no_header_in_the_first_mebibyte_is_an_error_naming_the_labels() -> None:
    layout = CsvLayout(columns=LAYOUT.columns, required=("id", "n"))
    source = io.BytesIO((b"noise," * 1000 + b"\n") * 200)
    with pytest.raises(InvalidReportError, match=r"^no header row with 'id', 'n' in the first 1,048,576 bytes"):
        list(read_csv(source, layout, COLUMNS))


def test_a_header_ending_on_the_last_byte_searched_is_found() -> None:
    # Given a preamble that pushes the header's line break onto the last byte of the first mebibyte, rows after
    preamble = b"exported by the vendor," * 1000 + b"\n"
    header = b"id,n\n"
    filler = (1 << 20) - len(header) - len(preamble) * ((1 << 20) // len(preamble) - 1)
    data = preamble * ((1 << 20) // len(preamble) - 1) + b"x" * (filler - 1) + b"\n" + header + b"a,1\nb,2\n"
    assert data.index(header) + len(header) == 1 << 20
    # When read / Then the header is found and the rows read
    assert [(r["id"], r["n"]) for r in read(data).to_pylist()] == [("a", 1), ("b", 2)]


def test_no_header_in_a_short_report_names_its_size() -> None:
    with pytest.raises(InvalidReportError, match=r"^no header row with 'id' in the first 12 bytes of the report$"):
        list(read_csv(io.BytesIO(b"a,b\nc,d\ne,f\n"), LAYOUT, COLUMNS))


@pytest.mark.parametrize("data", [b"", b"\n\n", b"  \r\n"])
def test_a_blank_report_is_empty_or_an_error_as_the_reader_says(data: bytes) -> None:
    assert list(read_csv(io.BytesIO(data), LAYOUT, COLUMNS, empty_ok=True)) == []
    with pytest.raises(InvalidReportError, match=r"^the report is empty \(no header row\)$"):
        list(read_csv(io.BytesIO(data), LAYOUT, COLUMNS))


ALIASES = CsvLayout(columns={"id": "id", "Amount (USD)": "amount", "Amount": "amount", "n": "n"}, required=("id",))


def test_an_alias_earlier_in_the_layout_wins_and_the_other_column_is_kept_in_extra() -> None:
    (row,) = read(b"id,Amount,Amount (USD)\na,1.5,2.5\n", ALIASES).to_pylist()
    assert row["amount"] == Decimal("2.5") and row["extra"] == [("Amount", "1.5")]


def test_of_two_columns_with_one_label_the_leftmost_is_typed() -> None:
    (row,) = read(b"id,n,n\na,1,2\n").to_pylist()
    assert row["n"] == 1 and row["extra"] == [("n", "2")]


def test_keep_all_keeps_typed_columns_in_extra_too() -> None:
    (row,) = read(b"id,n,note\na,1,x\n", keep_all=True).to_pylist()
    assert (row["id"], row["n"]) == ("a", 1)
    assert row["extra"] == [("id", "a"), ("n", "1"), ("note", "x")]


def test_a_layout_column_the_dataset_lacks_goes_to_extra() -> None:
    layout = CsvLayout(columns={**LAYOUT.columns, "note": "note"}, required=("id",))
    (row,) = read(b"id,note\na,x\n", layout).to_pylist()
    assert row["extra"] == [("note", "x")]


def test_labels_are_matched_by_their_key_without_surrounding_blanks() -> None:
    layout = CsvLayout(columns={"ID": "id", "N": "n"}, required=("ID",), header_key=str.upper)
    (row,) = read(b"preamble,line\n id , n \na,7\n", layout).to_pylist()
    assert (row["id"], row["n"], row["extra"]) == ("a", 7, [])


def test_trimmed_layouts_trim_typed_values_and_keep_text_verbatim() -> None:
    layout = CsvLayout(columns=LAYOUT.columns, required=("id",), trim=True)
    (row,) = read(b"id,n,amount,day,note\n a ,\t7 , 1.5 , 2026-10-01 , x \n", layout).to_pylist()
    assert (row["id"], row["n"], row["amount"], row["day"]) == (" a ", 7, Decimal("1.5"), date(2026, 10, 1))
    assert row["extra"] == [("note", " x ")]
    with pytest.raises(InvalidReportError, match=r"^data row 1, column 'n': ' 7' is not a whole number$"):
        read(b"id,n\na, 7\n")


def test_columns_without_a_source_are_the_runs_constants_or_null() -> None:
    rows = list(read_csv(io.BytesIO(b"id\na\nb\n"), LAYOUT, COLUMNS, constants={"day": date(2026, 10, 31)}))
    table = pa.Table.from_batches(rows)
    assert table.column("day").to_pylist() == [date(2026, 10, 31)] * 2
    assert table.column("n").to_pylist() == [None, None]


def test_a_preamble_line_the_csv_module_refuses_is_skipped() -> None:
    # Given a preamble line longer than the csv module's field limit
    rows = read(b"x" * (200 << 10) + b"\nid,n\na,1\n").to_pylist()
    assert [(r["id"], r["n"]) for r in rows] == [("a", 1)]


def test_the_header_is_the_first_record_with_every_required_label() -> None:
    layout = CsvLayout(columns=LAYOUT.columns, required=("id", "n"))
    rows = read(b"id,note\nid,n\na,1\n", layout).to_pylist()
    assert [(r["id"], r["n"]) for r in rows] == [("a", 1)]


def test_a_malformed_report_leaves_the_csv_modules_field_limit_as_it_was() -> None:
    before = csv.field_size_limit()
    with pytest.raises(InvalidReportError):
        read(b"id,n,note\na,1,x\nb,2\n")
    assert csv.field_size_limit() == before


def test_an_unclosed_quote_runs_to_the_end_as_for_the_csv_module_and_the_download_counter() -> None:
    data = b'id,n,note\na,1,x\nb,2,"never, closed\nc,3,y\n'
    rows = read(data).to_pylist()
    assert [(r["id"], r["extra"]) for r in rows] == [("a", [("note", "x")]),
                                                     ("b", [("note", "never, closed\nc,3,y\n")])]
    counter = CsvRecordCounter()
    counter.feed(data)
    assert counter.records() == len(rows)


class Breaking(io.RawIOBase):
    """A body whose connection drops after ``good`` bytes."""

    def __init__(self, data: bytes, good: int) -> None:
        self._data, self._good = data, good

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._good <= 0:
            raise ConnectionResetError("the S3 body broke off")
        chunk = self._data[: min(size, self._good)]
        self._data, self._good = self._data[len(chunk):], self._good - len(chunk)
        return chunk


def test_a_body_that_breaks_off_raises_where_the_rows_are_read_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    data = b"id,n\n" + b"".join(b"r%d,%d\n" % (i, i) for i in range(20_000))
    with pytest.raises(ConnectionResetError, match="the S3 body broke off"):
        list(read_csv(Breaking(data, 100_000), LAYOUT, COLUMNS))
    assert set(threading.enumerate()) - before == set()


def test_a_reader_closed_early_stops_reading_and_its_threads() -> None:
    # Given a large report of which only the first batch is wanted
    before = set(threading.enumerate())
    data = b"id,n\n" + b"".join(b"r%d,%d\n" % (i, i) for i in range(200_000))
    source = io.BytesIO(data)
    batches = read_csv(source, LAYOUT, COLUMNS)
    assert next(batches).num_rows > 0
    # When the reader is closed / Then its threads are gone and the rest of the report was never read
    batches.close()
    assert set(threading.enumerate()) - before == set()
    assert source.tell() < len(data) // 2


def test_a_slow_consumer_still_gets_every_record() -> None:
    # Given a consumer that stops for a moment after the first batch (a slow upload, say), while the
    # reading threads have filled their queues and wait to hand over more
    data = b"id,n\n" + b"".join(b"r%d,%d\n" % (i, i) for i in range(20_000))
    batches = read_csv(io.BytesIO(data), LAYOUT, COLUMNS)
    numbers = next(batches).column("n").to_pylist()
    time.sleep(0.5)
    # When it goes on / Then nothing was dropped
    for batch in batches:
        numbers += batch.column("n").to_pylist()
    assert numbers == list(range(20_000))


def test_a_multi_line_field_in_the_middle_of_a_record_is_read_however_the_blocks_fall() -> None:
    # Given 5,000 records whose middle field spans lines, read in 64-byte blocks after the first 64 KiB
    layout = CsvLayout(columns=LAYOUT.columns, required=("id",), block_size=64)
    data = b"id,note,n\n" + b"".join(b'r%d,"x\ny%d\nz",%d\n' % (i, i, i) for i in range(5000))
    # When read / Then every record is whole, in order
    rows = read(data, layout).to_pylist()
    assert [r["n"] for r in rows] == list(range(5000))
    assert {dict(r["extra"])["note"] for r in rows[4990:]} == {f"x\ny{i}\nz" for i in range(4990, 5000)}


def test_a_report_streams_in_pieces_of_about_a_block_even_when_blocks_end_inside_quoted_fields() -> None:
    # Given 200 records, each with a 2 KiB quoted field of many short lines, read in 1 KiB blocks: the
    # last line break of almost every block is inside a quoted field
    note = "\n".join(["word"] * 400)
    data = ("id,n,note\n" + "".join(f'r{i},{i},"{note}"\n' for i in range(200))).encode()
    batches = list(read_csv(io.BytesIO(data), LAYOUT, COLUMNS))
    # When read / Then the records come in many batches (the report is never held whole), all of them
    assert sum(b.num_rows for b in batches) == 200
    assert len(batches) >= 100


def test_clean_columns_are_converted_by_arrow_without_the_value_by_value_rules(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the exact rules made to fail: only the vectorized path may convert
    def refuse(text: str, dtype: pa.DataType) -> object:
        raise AssertionError(f"value by value: {text!r}")

    monkeypatch.setattr(csvread, "from_text", refuse)
    cases = [
        (pa.int64(), ["1", "-20", "300"], [1, -20, 300]),
        (AMOUNT, ["1.5", "-0.25", "12"], [Decimal("1.5"), Decimal("-0.25"), Decimal(12)]),
        (pa.decimal128(12, 2), ["1234567890.12", "0.5"], [Decimal("1234567890.12"), Decimal("0.5")]),
        (pa.date32(), ["2026-10-01", "2026-10-31"], [date(2026, 10, 1), date(2026, 10, 31)]),
        (pa.timestamp("ms", tz="UTC"), ["2026-10-01 10:00:00", "2026-10-02T11:30:00"],
         [datetime(2026, 10, 1, 10, tzinfo=UTC), datetime(2026, 10, 2, 11, 30, tzinfo=UTC)]),
        (pa.timestamp("ms", tz="UTC"), ["2026-10-01T10:00:00Z", "2026-11"],
         [datetime(2026, 10, 1, 10, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)]),
    ]
    for dtype, texts, values in cases:
        assert convert_column(pa.array(texts), dtype).to_pylist() == values


@pytest.mark.parametrize(("text", "dtype", "reason"), [
    ("0X1F", pa.int64(), "is not a whole number"),
    ("7E+-3", AMOUNT, "is not a number"),
    ("9" * 39, AMOUNT, "has 39 digits before the decimal point"),
])
def test_values_arrow_would_garble_are_refused_whatever_their_letter_case_or_length(
        text: str, dtype: pa.DataType, reason: str) -> None:
    # Arrow reads 0X1F as 31, 7E+-3 as 0.007, and wraps 39 nines around to a negative number
    with pytest.raises(Refused, match=reason):
        convert_column(pa.array([text]), dtype)


def test_a_column_type_the_reader_has_no_rules_for_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match=r"^no CSV conversion to double$"):
        convert_column(pa.array(["1.5"]), pa.float64())


def test_a_preamble_that_is_not_utf8_does_not_hide_the_header() -> None:
    (row,) = read(b"Report \xff\xfe generated\nid,n\na,1\n").to_pylist()
    assert (row["id"], row["n"]) == ("a", 1)


@pytest.mark.parametrize("step", [1, 3, 4, 9])
def test_a_header_line_cut_by_a_read_is_not_taken_for_a_shorter_header(step: int) -> None:
    # Given reads of a few bytes: the first one ends inside the header line ("id,n" of "id,note")
    rows = pa.Table.from_batches(list(read_csv(Trickle(b"id,note\na,x\nb,y\n", step), LAYOUT, COLUMNS)))
    assert rows.column("extra").to_pylist() == [[("note", "x")], [("note", "y")]]


def test_trimming_takes_off_blanks_and_tabs_only() -> None:
    layout = CsvLayout(columns=LAYOUT.columns, required=("id",), trim=True)
    with pytest.raises(InvalidReportError, match=r"^data row 1, column 'n': 'X7' is not a whole number$"):
        read(b"id,n\na,X7\n", layout)


def _reference(data: bytes) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(data.decode(), newline="")) if r][1:]


@pytest.mark.parametrize("block", [7, 64, 333, 4096])
def test_every_block_size_reads_what_the_csv_module_reads(block: int) -> None:
    # Given ~150 KiB of records of every shape: short, long unquoted, quoted with commas and line breaks,
    # empty fields, lines of exactly one block
    shapes = ['r{i},{i},plain', 'r{i},{i},' + 'w' * 300, 'r{i},{i},"a, b\nc ""q"" d"', 'r{i},,',
              'r{i},{i},"' + 'x\n' * 40 + '"', 'r{i},{i},' + 'z' * (block - 8)]
    lines = [shapes[i % len(shapes)].format(i=i) for i in range(1500)]
    data = ("id,n,note\n" + "\n".join(lines) + "\n").encode()
    layout = CsvLayout(columns=LAYOUT.columns, required=("id",), block_size=block)
    # When read in blocks of that size / Then every record is the csv module's, in order
    rows = read(data, layout).to_pylist()
    expected = _reference(data)
    assert [r["id"] for r in rows] == [e[0] for e in expected]
    assert [dict(r["extra"]).get("note") for r in rows] == [e[2] or None for e in expected]
