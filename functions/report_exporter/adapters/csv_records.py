"""Counting a CSV file's data records while it streams into S3: the raw side of "rows in raw = rows in Parquet".

One counter for every vendor that sends CSV (Particle, HERE's gzip CSV, Senet's details). It follows
RFC 4180 quoting (a line break or a comma inside quotes is data; ``""`` is an escaped quote), skips
blank lines as the Arrow CSV reader does, and does not count a preamble or the header. A quote
character inside an unquoted field is not RFC 4180 (every vendor's CSV writer quotes such a field);
if one ever came, the counts would disagree and the run would fail before publishing, never publish
a partition with rows missing. Counting runs
at C speed (``bytes.translate`` keeps a chunk's quotes and line ends, a regular expression drops the
quoted spans among them, ``bytes.count`` counts the line ends left), so it keeps up with the download;
gzip input is inflated in bounded pieces.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Sequence

_QUOTED = re.compile(rb'"[^"]*"')
# Every byte but the quote and the line ends: what ``bytes.translate`` drops to leave a chunk's marks.
_NOT_MARKS = bytes(b for b in range(256) if b not in b'"\r\n')
# A line end followed by another: the record between them is blank.
_BLANK = re.compile(rb"\n(?=\n)")
_BOM = b"\xef\xbb\xbf"
_INFLATE_PIECE = 4 << 20


class CsvRecordCounter:
    """Counts the data records of a CSV byte stream fed to it in chunks.

    Args:
        header: Labels the header record carries, in any order (records before it are a preamble, as
            the dataset's reader finds it); None: the first non-blank record is the header.
        gzip: The stream is gzip-compressed (one or more members).
    """

    def __init__(self, *, header: Sequence[str] | None = None, gzip: bool = False) -> None:
        self._header = header
        self._inflater = zlib.decompressobj(wbits=31) if gzip else None
        self._before_header = True
        self._pending = b""
        """Bytes not counted yet: the unfinished line before the header, or a quoted field still open."""
        self._tail = b"\n"
        """``\n`` when what was counted ends a line (the header did), to see a blank record across chunks."""
        self._line_ends = 0
        self._blank = 0
        self._open = False
        """The last record has content but no line end yet."""

    def feed(self, data: bytes) -> None:
        if self._inflater is None:
            self._take(data)
            return
        while data:
            piece = self._inflater.decompress(data, _INFLATE_PIECE)
            self._take(piece)
            data = self._inflater.unconsumed_tail
            if self._inflater.eof and self._inflater.unused_data:
                # Another gzip member follows (concatenated gzip is still one gzip file).
                data = self._inflater.unused_data + data
                self._inflater = zlib.decompressobj(wbits=31)

    def records(self) -> int:
        """Data records seen so far (the header and any preamble excluded)."""
        if self._before_header:
            return 0
        # A last record without a line end: one with content (maybe an unclosed quoted field) counts.
        return self._line_ends - self._blank + (self._open or bool(self._pending.strip(b"\r")))

    # Counting.
    def _take(self, data: bytes) -> None:
        buffer = self._pending + data
        if self._before_header:
            buffer = self._skip_to_header(buffer)
            if self._before_header:
                self._pending = buffer
                return
        # The chunk's quotes and line ends alone (a few % of its bytes, one C pass): quoted fields are
        # paired on them as on the whole chunk, so line ends inside quotes are found without copying it.
        marks = buffer.translate(None, _NOT_MARKS)
        if marks.count(b'"') % 2:
            # A quoted field is still open: count up to its opening quote, keep the rest for the next chunk.
            cut = buffer.rfind(b'"')
            buffer, self._pending = buffer[:cut], buffer[cut:]
            marks = buffer.translate(None, _NOT_MARKS)
        else:
            self._pending = b""
        if not buffer:
            return
        # Two line ends side by side in the chunk are side by side among its marks too: look there first.
        blank = b"\n\n" in marks and b"\n\n" in buffer
        if b"\r" not in marks and not blank and not (self._tail and buffer.startswith(b"\n")):
            # The common chunk: no carriage return and no blank record, so only line ends outside quotes count.
            if b'"' in marks:
                # Two quotes side by side have nothing between them: dropping them changes no line end's side
                # (most quoted fields hold no line end); the regular expression drops what quoted spans remain.
                marks = marks.replace(b'""', b"")
                if b'"' in marks:
                    marks = _QUOTED.sub(b"", marks)
            self._line_ends += marks.count(b"\n")
            self._open = not buffer.endswith(b"\n")
            self._tail = b"" if self._open else b"\n"
            return
        if buffer.endswith(b"\r"):
            # "\r" then "\n" in the next chunk is one line end: decide it with the next chunk.
            buffer, self._pending = buffer[:-1], b"\r" + self._pending
        # Quoted fields become one byte; \r\n, \r and \n all end a line (as for Arrow's reader).
        text = _QUOTED.sub(b"x", buffer) if b'"' in buffer else buffer
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not text:
            return
        self._line_ends += text.count(b"\n")
        if b"\n\n" in text or (self._tail and text.startswith(b"\n")):
            self._blank += len(_BLANK.findall(self._tail + text))
        # Keep a line end at the very end: whether a blank record follows is decided by the next chunk.
        last = text.rfind(b"\n")
        if last >= 0:
            self._open = last < len(text) - 1
            self._tail = b"" if self._open else b"\n"
        else:
            self._open = True
            self._tail = b""

    def _skip_to_header(self, buffer: bytes) -> bytes:
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                return buffer
            line, buffer = buffer[:end].rstrip(b"\r"), buffer[end + 1:]
            if line.startswith(_BOM):
                line = line[len(_BOM):]
            if line.strip() and (self._header is None or self._is_header(line)):
                self._before_header = False
                return buffer

    def _is_header(self, line: bytes) -> bool:
        labels = {label.strip() for label in next(csv.reader([line.decode("utf-8", errors="replace")]), [])}
        return all(label in labels for label in self._header or ())
