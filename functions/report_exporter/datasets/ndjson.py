"""Reading the JSON-lines raw files written by ``adapters/ndjson.py``, one record at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

from report_exporter.errors import InvalidReportError

_CHUNK = 1 << 20


def lines(source: IO[bytes]) -> Iterator[bytes]:
    """Non-empty lines of a stream; only the current line and one chunk are held in memory."""
    rest = b""
    while chunk := source.read(_CHUNK):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from (part for part in parts if part.strip())
    if rest.strip():
        yield rest


def envelopes(source: IO[bytes]) -> Iterator[tuple[int, dict[str, Any], Any]]:
    """``(line number, request, response)`` per record; numbers with a fraction become ``Decimal``.

    Decimals keep money exact (``0.000800`` stays six places) until the reader decides the column type.

    Raises:
        InvalidReportError: a line that is not a ``{"request": {...}, "response": ...}`` record.
    """
    for number, line in enumerate(lines(source), start=1):
        try:
            record = json.loads(line, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidReportError(f"line {number}: not JSON ({str(exc)[:200]})") from None
        if not isinstance(record, dict) or not isinstance(record.get("request"), dict) or "response" not in record:
            raise InvalidReportError(f"line {number}: not a {{'request', 'response'}} record")
        yield number, record["request"], record["response"]


def text(value: Any) -> str | None:
    """A JSON value as the vendor wrote it: strings as is, numbers and booleans in JSON spelling."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, default=str, separators=(",", ":"))
