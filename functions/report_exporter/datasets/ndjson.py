"""Reading the JSON-lines raw files written by ``adapters/ndjson.py``, one record at a time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

from report_exporter.errors import InvalidReportError

_CHUNK = 1 << 20
# A JSON escape of a UTF-16 surrogate: a pair is one character, a lone one is no text UTF-8 can hold.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def lines(source: IO[bytes]) -> Iterator[bytes]:
    """Non-empty lines of a stream; only the current line and one chunk are held in memory."""
    rest = b""
    while chunk := source.read(_CHUNK):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from (part for part in parts if part.strip())
    if rest.strip():
        yield rest


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice: a parser keeps only one value, so the other would be lost."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return result


def _integer(text: str) -> int | Decimal:
    # Python refuses int() of more than 4,300 digits; such a number is out of every column's range anyway,
    # and as a Decimal it reaches the column's own range check (and its error names the field).
    return int(text) if len(text) <= 4_000 else Decimal(text)


def load(line: bytes | str) -> Any:
    """One JSON document exactly: fractions as ``Decimal``, integers of any size, repeated keys refused.

    ``NaN`` and ``Infinity`` are read as floats; the value conversions refuse them (not finite).

    Raises:
        ValueError: not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``) or a repeated key.
    """
    return json.loads(line, parse_float=Decimal, parse_int=_integer, object_pairs_hook=_object)


def envelopes(source: IO[bytes]) -> Iterator[tuple[int, dict[str, Any], Any]]:
    """``(line number, request, response)`` per record, read by :func:`load`.

    Decimals keep money exact (``0.000800`` stays six places) until the reader decides the column type.

    Raises:
        InvalidReportError: a line that is not a ``{"request": {...}, "response": ...}`` record, or that
            repeats a key in one object.
    """
    for number, line in enumerate(lines(source), start=1):
        try:
            record = load(line)
        except DuplicateKeyError as exc:
            raise InvalidReportError(f"line {number}: {exc}") from None
        except ValueError as exc:
            raise InvalidReportError(f"line {number}: not JSON ({str(exc)[:200]})") from None
        if _SURROGATE_ESCAPE.search(line) and (lone := _lone_surrogate(record)):
            raise InvalidReportError(f"line {number}: a string holds a lone surrogate ({lone}), which is not text")
        if not isinstance(record, dict) or not isinstance(record.get("request"), dict) or "response" not in record:
            raise InvalidReportError(f"line {number}: not a {{'request', 'response'}} record")
        yield number, record["request"], record["response"]


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in a value read by :func:`load`, as its JSON escape; None when there is none."""
    try:
        dumps(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(exc.object[exc.start]):04x}"
    return None


def dumps(value: Any) -> str:
    """Compact JSON of a value read by :func:`load`; its numbers are written back exactly (no float on the way)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{dumps(key)}:{dumps(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def text(value: Any) -> str | None:
    """A JSON value as text: strings as is, numbers and booleans in JSON spelling, objects and arrays as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return dumps(value)
