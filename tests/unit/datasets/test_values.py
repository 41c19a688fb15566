"""The value rules every reader applies: what is accepted, the exact value kept, and why a value is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from report_exporter.datasets.values import (
    AMOUNT,
    BadValue,
    decimal_text,
    exact_decimal,
    from_text,
    json_decimal,
    json_integer,
    show,
    timestamp_text,
)


@pytest.mark.parametrize(("number", "dtype", "kept"), [
    (Decimal("0.10"), pa.decimal128(10, 1), Decimal("0.10")),
    (Decimal("42"), pa.decimal128(5, 0), Decimal(42)),
    (Decimal("120.500"), pa.decimal128(5, 2), Decimal("120.500")),
    (Decimal("-0.000"), AMOUNT, Decimal(0)),
])
def test_decimals_that_fit_exactly_once_trailing_zeros_are_dropped_are_kept(
        number: Decimal, dtype: pa.Decimal128Type, kept: Decimal) -> None:
    assert exact_decimal(number, dtype) == kept


@pytest.mark.parametrize(("number", "dtype", "why"), [
    (Decimal("100"), pa.decimal128(4, 2), "has 3 digits before the decimal point; decimal(4,2) holds 2"),
    (Decimal("1E+3"), pa.decimal128(5, 2), "has 4 digits before the decimal point; decimal(5,2) holds 3"),
    (Decimal("0.125"), pa.decimal128(10, 2),
     "has 3 decimal places; the column keeps 2 (decimal(10,2)) and nothing is rounded"),
    (Decimal("NaN"), AMOUNT, "is not a finite number"),
])
def test_decimals_that_do_not_fit_say_why(number: Decimal, dtype: pa.Decimal128Type, why: str) -> None:
    with pytest.raises(BadValue) as refused:
        exact_decimal(number, dtype)
    assert str(refused.value) == why


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), (" 12.5 ", Decimal("12.5")), (7, Decimal(7)), (Decimal("0.5"), Decimal("0.5")),
])
def test_json_decimals(value: Any, expected: Decimal | None) -> None:
    assert json_decimal(value, AMOUNT) == expected


@pytest.mark.parametrize(("value", "why"), [
    (True, "is not a number"), ([1], "is not a number"), ({"v": 1}, "is not a number"), ("1,5", "is not a number"),
    (float("nan"), "is not a finite number"), (float("inf"), "is not a finite number"),
])
def test_json_decimals_refused_say_why(value: Any, why: str) -> None:
    with pytest.raises(BadValue) as refused:
        json_decimal(value, AMOUNT)
    assert str(refused.value) == why


@pytest.mark.parametrize(("value", "dtype", "expected"), [
    (None, pa.int64(), None), ("", pa.int64(), None), ("+5", pa.int64(), 5), (" -7 ", pa.int64(), -7),
    (3, pa.int64(), 3), (Decimal("3.0"), pa.int64(), 3), (4.0, pa.int64(), 4),
    (-32768, pa.int16(), -32768), (32767, pa.int16(), 32767), ("-32768", pa.int16(), -32768),
    (-(2 ** 63), pa.int64(), -(2 ** 63)), (2 ** 63 - 1, pa.int64(), 2 ** 63 - 1),
])
def test_json_integers(value: Any, dtype: pa.DataType, expected: int | None) -> None:
    assert json_integer(value, dtype) == expected


@pytest.mark.parametrize(("value", "dtype", "why"), [
    (True, pa.int64(), "is not a whole number"),
    ("3.5", pa.int64(), "is not a whole number"),
    ("++5", pa.int64(), "is not a whole number"),
    (Decimal("3.5"), pa.int64(), "is not a whole number"),
    (float("inf"), pa.int64(), "is not a whole number"),
    ([3], pa.int64(), "is not a whole number"),
    (32768, pa.int16(), "is out of the range of int16 (-32768..32767)"),
    (-32769, pa.int16(), "is out of the range of int16 (-32768..32767)"),
    (Decimal("1E+400"), pa.int64(), "is out of the range of int64 (-9223372036854775808..9223372036854775807)"),
])
def test_json_integers_refused_say_why(value: Any, dtype: pa.DataType, why: str) -> None:
    with pytest.raises(BadValue) as refused:
        json_integer(value, dtype)
    assert str(refused.value) == why


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-10-05T10:00:00.5", datetime(2026, 10, 5, 10, 0, 0, 500_000, tzinfo=UTC)),
    ("2026-10-05T10:00:00.05Z", datetime(2026, 10, 5, 10, 0, 0, 50_000, tzinfo=UTC)),
    ("2026-10-05 10:07", datetime(2026, 10, 5, 10, 7, tzinfo=UTC)),
    ("2026-10", datetime(2026, 10, 1, tzinfo=UTC)),
])
def test_timestamps_keep_their_milliseconds(text: str, expected: datetime) -> None:
    assert timestamp_text(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("2026-10-05T25:00", "is not a calendar date and time"),
    ("2026-13", "is not a calendar date and time"),
    ("05/10/2026", "is not a date-time (YYYY-MM[-DD[THH[:MM[:SS[.fff]]]]], UTC or Z)"),
])
def test_timestamps_refused_say_why(text: str, why: str) -> None:
    with pytest.raises(BadValue) as refused:
        timestamp_text(text)
    assert str(refused.value) == why


def test_decimal_text_refuses_what_is_not_a_number() -> None:
    with pytest.raises(BadValue, match=r"^is not a number$"):
        decimal_text("12,5", AMOUNT)


def test_from_text_names_a_type_it_cannot_convert_to() -> None:
    with pytest.raises(TypeError, match=r"^no text conversion to binary$"):
        from_text("x", pa.binary())


def test_show_keeps_values_of_sixty_characters_and_cuts_longer_ones_saying_how_long_they_were() -> None:
    assert show("x" * 58) == repr("x" * 58)
    assert show("a" * 56 + "wxyz") == "'" + "a" * 54 + "...yz' (60 characters)"
    assert show("b" * 4999 + "c") == "'" + "b" * 54 + "...bc' (5,000 characters)"
