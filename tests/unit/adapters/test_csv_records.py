"""The raw-side record counter agrees with a CSV parser, whatever the chunking."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from report_exporter.adapters.csv_records import CsvRecordCounter

FIELD = st.text(alphabet=st.sampled_from([*list('ab,"\n\r é€'), "\u2028"]), max_size=6)


def reference(body: bytes, header: bytes | None = None) -> int:
    """Data records by the standard library: non-blank records after the header (and any preamble)."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    rows = [r for r in rows if r]
    if header is not None:
        starts = [i for i, r in enumerate(rows) if ",".join(r).encode().startswith(header)]
        return len(rows) - starts[0] - 1 if starts else 0
    return max(0, len(rows) - 1)


def count(body: bytes, cuts: list[int], **kwargs: object) -> int:
    counter = CsvRecordCounter(**kwargs)  # type: ignore[arg-type]
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    for start, end in itertools.pairwise(points):
        counter.feed(body[start:end])
    return counter.records()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=st.lists(st.lists(FIELD, min_size=1, max_size=4), max_size=12), blank=st.lists(st.integers(0, 12)),
       crlf=st.booleans(), final_newline=st.booleans(), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_counts_like_a_csv_parser_however_the_stream_is_cut(  # type: ignore[no-untyped-def]
        rows, blank, crlf, final_newline, cuts) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["Date", "Device ID", "Ops"])
    for index, row in enumerate(rows):
        if index in blank:
            buffer.write("\r\n" if crlf else "\n")
        writer.writerow(row)
    text = buffer.getvalue()
    if not final_newline:
        text = text.rstrip("\r\n")
    body = text.encode()
    assert count(body, cuts) == reference(body)


def test_a_preamble_and_the_header_are_not_records() -> None:
    body = b'Particle data operations report\n\nDate,Device ID,Ops\n2026-10-01,"a\nb",1\n\n2026-10-02,c,2'
    assert count(body, [5, 40, 41], header=("Device ID", "Date")) == 2


def test_a_header_only_file_has_no_records_with_or_without_its_newline() -> None:
    assert count(b"\xef\xbb\xbfDate,Device ID\n", []) == 0
    assert count(b"Date,Device ID", []) == 0


def test_gzip_members_are_counted_as_one_file() -> None:
    first = gzip.compress(b"a,b\n1,2\n" + b'3,"x\n"\n' * 5000)
    second = gzip.compress(b"4,5\n")
    body = first + second
    assert count(body, list(range(0, len(body), 97)), gzip=True) == 5002


def test_a_stream_that_is_zlib_not_gzip_is_refused() -> None:
    # Given gzip=True and a zlib-wrapped (not gzip) body, alone or as the second member
    with pytest.raises(zlib.error):
        CsvRecordCounter(gzip=True).feed(zlib.compress(b"a,b\n1,2\n"))
    with pytest.raises(zlib.error):
        CsvRecordCounter(gzip=True).feed(gzip.compress(b"a,b\n1,2\n") + zlib.compress(b"3,4\n"))


def test_inflating_a_highly_compressed_report_holds_a_few_mebibytes_at_a_time() -> None:
    # Given 32 MiB of records compressed to ~32 KiB (a report of repeated rows compresses like this)
    body = gzip.compress(b"id,n\n" + b"1,2\n" * (8 << 20), compresslevel=9)
    counter = CsvRecordCounter(gzip=True)
    # When counted in one feed
    tracemalloc.start()
    try:
        counter.feed(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Then every record is counted while only pieces of the inflated text were alive at once
    assert counter.records() == 8 << 20
    assert peak < 24 << 20


def test_a_preamble_line_that_is_not_utf8_is_skipped() -> None:
    body = b"Report \xff\xfe generated\nDate,Device ID\n1,2\n3,4\n"
    assert count(body, [3, 30], header=("Date", "Device ID")) == 2


def test_the_header_is_found_by_its_labels_with_crlf_line_ends() -> None:
    assert count(b"note\r\nid,MAX\r\n1,2\r\n", [], header=("id", "MAX")) == 1


def test_an_unclosed_quoted_field_at_the_end_is_a_record() -> None:
    assert count(b'id,n\na,1\n"b,2', []) == 2
    assert count(b'id,n\na,1\n"b,\n2', [11]) == 2
    # Records with closed quoted fields before the unclosed one, in the same chunk, are each counted.
    assert count(b'id,n\n"a",1\n"c",3\n"b,2', []) == 3


def test_a_blank_line_right_after_a_cut_is_not_a_record() -> None:
    # The chunk before the cut ends a record; the one after it starts with the blank line's line end.
    assert count(b"id\na\n\nb\n", [5]) == 2
    assert count(b'id\n"a"\n\n"b"\n', [7]) == 2
    assert count(b"id\na\n\n\nb", [5, 6]) == 2
