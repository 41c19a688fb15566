"""The JSON-lines raw files: the same request always gives the same bytes, and reading them holds little."""

from __future__ import annotations

import io
import re
import tracemalloc

import pytest

from report_exporter.adapters.ndjson import envelope_line
from report_exporter.datasets.ndjson import envelopes, lines
from report_exporter.errors import InvalidReportError


def test_an_envelope_line_is_the_same_bytes_whatever_the_request_key_order() -> None:
    # A rerun writes the same raw object (and the same sha256 in its manifest) for the same answer
    first = envelope_line({"page": 2, "filter": {"b": 1, "a": "x"}}, b'{"data": [1,\n 2]}')
    again = envelope_line({"filter": {"a": "x", "b": 1}, "page": 2}, b'{"data": [1,\n 2]}')
    assert first == again == b'{"request":{"filter":{"a":"x","b":1},"page":2},"response":{"data": [1,  2]}}\n'
    assert list(envelopes(io.BytesIO(first))) == [(1, {"filter": {"a": "x", "b": 1}, "page": 2}, {"data": [1, 2]})]


class _Lines(io.RawIOBase):
    """A raw file of ``size`` bytes of records, made as it is read (nothing held up front)."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._at = 0
        self._line = b'{"request":{},"response":{"n":12345}}\n'

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        start = self._at % len(self._line)
        buffer[:n] = (self._line * (n // len(self._line) + 2))[start:start + n]
        self._left -= n
        self._at += n
        return n


def test_reading_a_large_raw_file_holds_about_one_chunk_at_a_time() -> None:
    size = 16 << 20
    tracemalloc.start()
    try:
        count = sum(1 for _ in lines(_Lines(size)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == size // len(b'{"request":{},"response":{"n":12345}}\n') + 1  # the cut last record too
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB for a {size >> 20} MiB file"


@pytest.mark.parametrize(("escaped", "lone"), [(b"\\ud800", "\\ud800"), (b"x\\uDFFF", "\\udfff"),
                                               (b"\\ude00\\ud83d", "\\ude00")])
def test_a_lone_surrogate_escape_is_refused_naming_the_line_and_the_escape(escaped: bytes, lone: str) -> None:
    raw = envelope_line({"page": 1}, b'{"data": []}') + envelope_line({"page": 2}, b'{"data": ["' + escaped + b'"]}')
    with pytest.raises(InvalidReportError, match=re.escape(f"line 2: a string holds a lone surrogate ({lone})")):
        list(envelopes(io.BytesIO(raw)))


@pytest.mark.parametrize(("escaped", "read"), [(b"\\ud83d\\ude00", "\U0001f600"), (b"\\\\ud800", "\\ud800"),
                                               (b"\\u00e9t\\u00e9", "\u00e9t\u00e9")])
def test_a_surrogate_pair_and_a_backslash_before_u_are_text(escaped: bytes, read: str) -> None:
    raw = envelope_line({"page": 1}, b'{"data": ["' + escaped + b'"]}')
    assert list(envelopes(io.BytesIO(raw))) == [(1, {"page": 1}, {"data": [read]})]


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"a": 1,,}\n', r"^line 1: not JSON \(Expecting property name enclosed in double quotes: line 1 column 9"),
    (b"[1, 2]\n", r"^line 1: not a \{'request', 'response'\} record$"),
    (b'{"request": [], "response": {}}\n', r"^line 1: not a \{'request', 'response'\} record$"),
    (b'{"request": {}}\n', r"^line 1: not a \{'request', 'response'\} record$"),
])
def test_a_line_that_is_not_a_request_and_its_response_is_refused_saying_why(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidReportError, match=message):
        list(envelopes(io.BytesIO(raw)))
