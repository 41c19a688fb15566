"""Exact conversions of one source value (CSV text or a JSON value) to a column's Arrow type.

These are the rules every reader applies, written once. The CSV reader converts whole columns with
Arrow's vectorized casts and falls back to these functions, value by value, only to find and name a
value the fast path refused (see ``csvread.py``); the JSON readers call them per value.

- **Whole numbers** (``int64``, ``int16``, ...): optional ``-`` then ASCII digits (CSV); a JSON integer,
  an integral JSON number such as ``3.0``, or ``[+-]digits`` in a JSON string (surrounding blanks
  ignored). Out of the type's range is an error.
- **Decimals** (money and quantities): ``[+-]digits[.digits][e[+-]digits]`` in ASCII, or a JSON number.
  The value must be exactly representable in the column's ``decimal(precision, scale)``: more fractional
  digits than the scale, or more integer digits than ``precision - scale``, is an error, never rounded.
  ``inf``, ``nan`` and JSON's ``NaN``/``Infinity`` are errors.
- **Dates**: ``YYYY-MM-DD`` (years 0001-9999).
- **Timestamps**: ``YYYY-MM``, ``YYYY-MM-DD``, ``YYYY-MM-DD[T ]HH[:MM[:SS[.fff]]]`` with an optional ``Z``;
  a zone-less value is UTC. Finer than a millisecond is an error, never truncated.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

# Every quantity and money column: 20 integer digits (int64 counts fit) and 18 fractional digits (the
# shortest text of any double down to 0.1 has at most 17). Athena reads decimal(38,18) as is.
AMOUNT = pa.decimal128(38, 18)

DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER_TEXT = re.compile(r"-?[0-9]+")
SIGNED_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
TIMESTAMP_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})(?:-([0-9]{2})(?:[T ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,3}))?)?)?)?)?(Z)?"
)
_SHOWN = 60


class BadValue(ValueError):
    """Why one value does not convert; the caller names where it was."""


def show(value: Any) -> str:
    """A value as an error message shows it: its repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 5]}...{text[-3:]} ({len(str(value)):,} characters)"


def _integer_bounds(dtype: pa.DataType) -> tuple[int, int]:
    bits = dtype.bit_width
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def exact_decimal(number: Decimal, dtype: pa.Decimal128Type) -> Decimal:
    """``number`` if ``dtype`` holds it exactly.

    Raises:
        BadValue: not finite, more fractional digits than the scale, or too many integer digits.
    """
    if not number.is_finite():
        raise BadValue("is not a finite number")
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1
        exponent += 1
    if significant == 1 and digits[0] == 0:
        return Decimal(0)
    fraction = max(0, -exponent)
    integer = significant + exponent
    if fraction > dtype.scale:
        raise BadValue(f"has {fraction} decimal places; the column keeps {dtype.scale} (decimal({dtype.precision},"
                       f"{dtype.scale})) and nothing is rounded")
    if integer > dtype.precision - dtype.scale:
        raise BadValue(f"has {integer} digits before the decimal point; decimal({dtype.precision},{dtype.scale}) "
                       f"holds {dtype.precision - dtype.scale}")
    return number


def decimal_text(text: str, dtype: pa.Decimal128Type) -> Decimal:
    if not DECIMAL_TEXT.fullmatch(text):
        raise BadValue("is not a number")
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise BadValue("is not a number") from None
    return exact_decimal(number, dtype)


def integer_text(text: str, dtype: pa.DataType) -> int:
    low, high = _integer_bounds(dtype)
    if not INTEGER_TEXT.fullmatch(text):
        raise BadValue("is not a whole number")
    # int() of thousands of digits is refused by Python itself; such a number is out of range anyway.
    if len(text.lstrip("-0")) > 20 or not low <= int(text) <= high:
        raise BadValue(f"is out of the range of {dtype} ({low}..{high})")
    return int(text)


def date_text(text: str) -> date:
    found = DATE_TEXT.fullmatch(text)
    if not found:
        raise BadValue("is not a date (YYYY-MM-DD)")
    try:
        return date(*(int(part) for part in found.groups()))
    except ValueError:
        raise BadValue("is not a calendar date") from None


def timestamp_text(text: str) -> datetime:
    found = TIMESTAMP_TEXT.fullmatch(text)
    if not found:
        raise BadValue("is not a date-time (YYYY-MM[-DD[THH[:MM[:SS[.fff]]]]], UTC or Z)")
    year, month, day, hour, minute, second, millis, _ = found.groups()
    try:
        return datetime(int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0),
                        int((millis or "0").ljust(3, "0")) * 1000, tzinfo=UTC)
    except ValueError:
        raise BadValue("is not a calendar date and time") from None


def from_text(text: str, dtype: pa.DataType) -> Any:
    """One CSV field's text as a value of ``dtype`` (the slow path of the CSV reader's column casts)."""
    if pa.types.is_string(dtype):
        return text
    if pa.types.is_integer(dtype):
        return integer_text(text, dtype)
    if pa.types.is_decimal(dtype):
        return decimal_text(text, dtype)
    if pa.types.is_date32(dtype):
        return date_text(text)
    if pa.types.is_timestamp(dtype):
        return timestamp_text(text)
    raise TypeError(f"no text conversion to {dtype}")


def json_decimal(value: Any, dtype: pa.Decimal128Type) -> Decimal | None:
    """A JSON number (``int``, or ``Decimal`` from ``parse_float``) or numeric string, exactly; ``None``/"" -> null."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue("is not a number")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):  # NaN and Infinity are the only floats the JSON readers let through
        number = Decimal(repr(value))
    elif isinstance(value, str):
        return decimal_text(value.strip(), dtype)
    else:
        raise BadValue("is not a number")
    return exact_decimal(number, dtype)


def json_integer(value: Any, dtype: pa.DataType) -> int | None:
    """A JSON whole number (``3``, ``3.0``, ``"3"``) within ``dtype``'s range; ``None``/"" -> null."""
    if value is None or value == "":
        return None
    low, high = _integer_bounds(dtype)
    if isinstance(value, bool):
        raise BadValue("is not a whole number")
    if isinstance(value, str):
        text = value.strip()
        return integer_text(text.removeprefix("+") if SIGNED_INTEGER_TEXT.fullmatch(text) else text, dtype)
    if isinstance(value, Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite() or number != number.to_integral_value():
            raise BadValue("is not a whole number")
        if number.adjusted() > 20:
            raise BadValue(f"is out of the range of {dtype} ({low}..{high})")
        value = int(number)
    if not isinstance(value, int):
        raise BadValue("is not a whole number")
    if not low <= value <= high:
        raise BadValue(f"is out of the range of {dtype} ({low}..{high})")
    return value
