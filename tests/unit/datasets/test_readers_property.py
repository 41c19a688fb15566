"""Every dataset reader against a reference parse built from the standard library (csv, json, decimal).

Hypothesis generates reports the way vendors might send them: quoting styles, embedded line breaks,
a byte-order mark, preambles, unicode, duplicated, missing, unknown and reordered columns, numbers with
many decimals, huge or tiny ones, exponents, ``inf``/``nan`` text, and a little invalid UTF-8 or a record
with the wrong number of fields. For each report the reference decides, from the documented rules only:

- valid: the reader's batches hold exactly the reference's values (typed columns and ``extra``);
- invalid: the reader raises ``InvalidReportError`` naming a data row (CSV) or line and row (JSON) and a
  column or field that the reference also finds invalid.

A reader that refuses a report the reference accepts fails, and so does one that accepts an invalid one.
Runs are derandomized (the same examples every time) and small blocks make the CSV reader cut reports into
many chunks.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from types import ModuleType
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from report_exporter.adapters.ndjson import envelope_line
from report_exporter.datasets.base import Dataset, ReadContext
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import HereExport, KoreExport, ParticleExport, SenetExport, TelnyxExport
from report_exporter.vendors.here import dataset as here
from report_exporter.vendors.kore import dataset as kore
from report_exporter.vendors.particle import dataset as particle
from report_exporter.vendors.senet import dataset as senet
from report_exporter.vendors.telnyx import dataset as telnyx
from tests.fakes import plan_for

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# The reference: the documented rules (datasets/values.py's docstring), written again with the standard library.

class Invalid(Exception):  # a verdict of the reference, not an error of the code under test
    pass


_EXACT = Context(prec=4000, Emax=999_999, Emin=-999_999)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}(?:-[0-9]{2}(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,3})?)?)?)?)?Z?"
)
_INT64 = (-(2**63), 2**63 - 1)


def ref_amount(number: Decimal) -> Decimal:
    """decimal(38,18): |x| < 10**20 with at most 18 decimals, exactly."""
    if not number.is_finite():
        raise Invalid("not finite")
    if number.is_zero():
        return Decimal(0)
    if number.adjusted() > 40 or number.adjusted() < -60:
        raise Invalid("out of range")
    scaled = _EXACT.multiply(number, Decimal(10) ** 18)
    if scaled != scaled.to_integral_value(context=_EXACT) or abs(scaled) >= Decimal(10) ** 38:
        raise Invalid("does not fit")
    return number


def ref_text_value(text: str, kind: str) -> Any:
    if kind == "text":
        return text
    if kind == "int":
        if not re.fullmatch(r"-?[0-9]+", text) or len(text) > 25 or not _INT64[0] <= int(text) <= _INT64[1]:
            raise Invalid(kind)
        return int(text)
    if kind == "decimal":
        if not _DECIMAL.fullmatch(text):
            raise Invalid(kind)
        return ref_amount(Decimal(text))
    if kind == "date":
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise Invalid(kind)
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise Invalid(kind) from None
    if kind == "timestamp":
        if not _TIMESTAMP.fullmatch(text):
            raise Invalid(kind)
        plain = text.removesuffix("Z")
        try:
            moment = datetime.fromisoformat(plain + "-01" if len(plain) == 7 else plain)
        except ValueError:
            raise Invalid(kind) from None
        return moment.replace(tzinfo=UTC)
    raise AssertionError(kind)


def ref_json_amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):  # JSON's NaN and Infinity are the only floats
        raise Invalid("not a finite number")
    if isinstance(value, int | Decimal):
        return ref_amount(Decimal(value))
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value.strip()):
            raise Invalid("not a number")
        return ref_amount(Decimal(value.strip()))
    raise Invalid("not a number")


def ref_json_int(value: Any, bits: int = 64) -> int | None:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        raise Invalid("not a whole number")
    if isinstance(value, str):
        if not re.fullmatch(r"[+-]?[0-9]+", value.strip()) or len(value.strip()) > 25:
            raise Invalid("not a whole number")
        number = int(value.strip())
    elif isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 25 or value != value.to_integral_value(context=_EXACT):
            raise Invalid("not a whole number")
        number = int(value)
    elif isinstance(value, int):
        number = value
    else:
        raise Invalid("not a whole number")
    if not low <= number <= high:
        raise Invalid("out of range")
    return number


def ref_json_text(value: Any) -> str | None:
    """Text of a JSON value: strings as is, numbers as written (Decimal's text), true/false, nested as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ref_json_load(line: str) -> Any:
    """``json.loads`` with exact numbers; a key repeated in one object is refused."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        for key in keys:
            if keys.count(key) > 1:
                raise Invalid(f"the key {key!r} appears twice")
        return dict(items)

    return json.loads(line, parse_float=Decimal, object_pairs_hook=pairs)


# Generated values: mostly valid, sometimes odd.

# No bare "\r": csv.writer leaves it unquoted, so it breaks the record for Python's csv module and Arrow alike.
PIECES = st.one_of(
    st.characters(codec="utf-8", exclude_characters="\x00\r"),
    st.sampled_from([",", '"', "\n", "\r\n", " ", "\t", "é", "東京", "\ufeff", "\x1f", "''", '""']),
)
TEXT = st.lists(PIECES, max_size=8).map("".join)


def mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], one_in: int = 20) -> st.SearchStrategy[Any]:
    """``valid``, except about one time in ``one_in`` ``odd``.

    ``odd`` sits in the middle of the choices: Hypothesis favours the first and last, and shrinks to the first.
    """
    half = (one_in - 1) // 2
    return st.sampled_from([valid] * half + [odd] + [valid] * (one_in - 1 - half)).flatmap(lambda choice: choice)


def _fitting_decimals() -> st.SearchStrategy[Decimal]:
    """Decimals that fit decimal(38,18): up to 18 places, below 10**19."""
    return st.integers(0, 18).flatmap(lambda places: st.decimals(
        min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=places, allow_nan=False, allow_infinity=False))


def _spell(number: Decimal, style: str) -> str:
    return str(number) if style == "str" else format(number, style)


def _decimal_texts() -> st.SearchStrategy[str]:
    """Valid decimal text in every spelling: plain, exponent (``1.5E-7``), leading dot, trailing dot, sign."""
    spelled = st.tuples(_fitting_decimals(), st.sampled_from(["str", "f", "e", "E"])).map(lambda p: _spell(*p))
    digits = st.tuples(st.sampled_from(["", "+", "-"]), st.text("0123456789", min_size=1, max_size=20),
                       st.text("0123456789", max_size=18)).map(
        lambda p: f"{p[0]}{p[1]}.{p[2]}" if p[2] else p[0] + p[1])
    return st.one_of(spelled, digits, st.sampled_from(["0.0001", "144940.0000", "-12.5", ".5", "5.", "+.5", "-0",
                                                       "0e400", "1.5e-17", "15e-3"]))


def _odd_decimal_texts() -> st.SearchStrategy[str]:
    """Too many decimals, too many digits, exponents out of range, non-finite and malformed text."""
    fine = st.tuples(st.text("0123456789", min_size=1, max_size=3), st.text("0123456789", min_size=18, max_size=18),
                     st.text("0123456789", max_size=5), st.sampled_from("123456789")).map(
        lambda p: f"{p[0]}.{''.join(p[1:])}")
    huge = st.text("123456789", min_size=21, max_size=30)
    exponent = st.tuples(st.integers(1, 99), st.integers(-60, 60)).map(lambda p: f"{p[0]}e{p[1]}")
    return st.one_of(fine, huge, exponent, st.sampled_from(
        ["inf", "-inf", "nan", "NaN", "Infinity", "1e400", "1e-400", "4e28", "7e+-3", "1_000", " 1", "1 ", "0x10",
         "", "1.2.3", "١٢", "12345678901234567890123", "0.0000000000000000000001", "e5", "1e", "-", "."]))


DECIMAL_TEXT = mostly(_decimal_texts(), _odd_decimal_texts())
INT_TEXT = mostly(st.integers(-(2**63), 2**63 - 1).map(str), st.sampled_from(
    ["4.2", "1e3", " 5", "0x1f", "+5", "-0", "007", "٣", "", "9223372036854775808", "-9223372036854775809",
     "99999999999999999999999"]))
DATE_TEXT = mostly(st.dates().map(date.isoformat), st.sampled_from(
    ["2026-13-01", "2026-02-30", "0000-01-01", "2026-1-1", "20261001", "2026-10-01T00:00:00", "", "yesterday"]))
_TIMESTAMP_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y-%m", "%Y-%m-%dT%H:%M:%SZ",
                      "%Y-%m-%dT%H", "%Y-%m-%dT%H:%MZ", "ms"]
TIMESTAMP_TEXT = mostly(
    st.tuples(st.datetimes(min_value=datetime(1000, 1, 1)), st.sampled_from(_TIMESTAMP_FORMATS)).map(
        lambda pair: pair[0].strftime("%Y-%m-%dT%H:%M:%S.") + f"{pair[0].microsecond // 1000:03d}"
        if pair[1] == "ms" else pair[0].strftime(pair[1])),
    st.sampled_from(["2026-10-01T10:00:00+02:00", "2026-10-01T10:00:00.1234", "2026-10-01T24:00:00", "0000-01-01",
                     "2026-02-30", "2026-10-01T", "yesterday", "2026-10-01T10:00:60", ""]))
CELLS: dict[str, st.SearchStrategy[str]] = {
    "text": TEXT, "int": INT_TEXT, "decimal": DECIMAL_TEXT, "date": DATE_TEXT, "timestamp": TIMESTAMP_TEXT,
}


# CSV readers.

@dataclass(frozen=True)
class CsvCase:
    """One CSV dataset: how its labels map to columns and types, and how to read a raw file."""

    module: ModuleType
    export: Any
    source_key: str
    key: Callable[[str], str]
    """The reference's header key of a label (already stripped of surrounding blanks)."""
    columns: Mapping[str, str]
    """Key -> column, in order of preference."""
    kinds: Mapping[str, str]
    """Column -> value kind."""
    required: tuple[str, ...]
    known_labels: st.SearchStrategy[str]
    unknown_labels: st.SearchStrategy[str]
    trim: bool = False
    keep_all: bool = False
    gzip: bool = False
    empty_ok: bool = False

    @property
    def dataset(self) -> Dataset:
        data: Dataset = self.module.DATASET if hasattr(self.module, "DATASET") else senet.DEVICE_DATASET
        return data


def _spelled(alias: str) -> st.SearchStrategy[str]:
    """An alias as a vendor might spell it: any case, with spaces, underscores or dashes between letters."""
    return st.lists(st.tuples(st.booleans(), st.sampled_from(["", "", " ", "_", "-"])), min_size=len(alias),
                    max_size=len(alias)).map(
        lambda marks: "".join((c.upper() if up else c) + sep for c, (up, sep) in zip(alias, marks, strict=True)
                              ).strip(" _-"))


def _here_token(label: str) -> str:
    found = re.search(r"\(([^()]+)\)\s*$", label)
    return found.group(1).strip() if found else label.strip()


def _senet_key(label: str) -> str:
    canonical = {alias: column for column, aliases in senet.DEVICE_ALIASES.items() for alias in aliases}
    return canonical.get(re.sub(r"[^0-9a-z]", "", label.lower()), label)


_WORDS = st.text(st.sampled_from("ABCdef xyz,\"\n'é東"), max_size=8)

PARTICLE = CsvCase(
    module=particle, export=ParticleExport(name="particle-demo", secret_name="s"), source_key="raw/p.csv",
    key=lambda label: label, columns=particle.LAYOUT.columns,
    kinds={"usage_date": "date", "product_id": "int", "data_operations": "int"},
    required=("Date", "Device ID", "Data Operations"),
    known_labels=st.tuples(st.sampled_from(list(particle.LAYOUT.columns)), st.sampled_from(["", " "])).map(
        lambda pair: pair[1] + pair[0] + pair[1]),
    unknown_labels=_WORDS.filter(lambda label: label.strip() not in particle.LAYOUT.columns),
)
HERE = CsvCase(
    module=here, export=HereExport(name="here-main", secret_name="s", realm="org123456789", detail_level="day"),
    source_key="raw/h.csv.gz", key=_here_token, columns=here.LAYOUT.columns,
    kinds={"usage_datetime": "timestamp", "usage_value": "decimal", "billable_value": "decimal"},
    required=("realmId", "featureId", "billableValue"),
    known_labels=st.tuples(_WORDS.filter(lambda w: "(" not in w and ")" not in w),
                           st.sampled_from(list(here.LAYOUT.columns))).map(lambda pair: f"{pair[0]} ({pair[1]})"),
    unknown_labels=st.one_of(_WORDS, st.text("abcXYZ", min_size=1, max_size=6).map(lambda t: f"Other ({t})")).filter(
        lambda label: _here_token(label.strip()) not in here.LAYOUT.columns),
    gzip=True,
)
SENET = CsvCase(
    module=senet, export=SenetExport(name="senet-fleet", secret_name="s", application_euis=("00250C0000010001",)),
    source_key="raw/senet/senet-fleet/2026-10/senet-fleet-2026-10-details-00250C0000010001.csv",
    key=_senet_key, columns=senet.DEVICE_LAYOUT.columns,
    kinds={"uplinks": "int", "downlinks": "int", "security_sessions": "int"},
    required=("dev_eui",),
    known_labels=st.sampled_from([alias for aliases in senet.DEVICE_ALIASES.values() for alias in aliases]).flatmap(
        _spelled),
    unknown_labels=_WORDS.filter(lambda label: _senet_key(label.strip()) not in senet.DEVICE_LAYOUT.columns),
    trim=True, keep_all=True, empty_ok=True,
)


def _label_for(case: CsvCase, required: str) -> str:
    if case is HERE:
        return f"Amount ({required})"
    if case is SENET:
        return "DevEUI"
    return required


@st.composite
def csv_reports(draw: st.DrawFn, case: CsvCase) -> tuple[bytes, int]:
    """A CSV report as bytes, and the reader's block size."""
    labels = [_label_for(case, r) for r in case.required]
    labels += draw(st.lists(case.known_labels, max_size=5))  # may repeat a label or an alias
    labels += draw(st.lists(case.unknown_labels, max_size=3))
    labels = draw(st.permutations(labels))
    kinds = [case.kinds.get(case.columns.get(case.key(label.strip()), ""), "text") for label in labels]
    rows = [list(row) for row in draw(st.lists(st.tuples(*(CELLS[kind] for kind in kinds)),
                                                min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=12))]
    if rows and draw(st.integers(0, 14)) == 0:  # a record with the wrong number of fields
        row = draw(st.sampled_from(rows))
        row.append("surplus") if draw(st.booleans()) or len(row) == 1 else row.pop()
    if rows and draw(st.integers(0, 14)) == 0:  # invalid UTF-8 in one field
        row = draw(st.sampled_from(rows))
        row[draw(st.integers(0, len(row) - 1))] = "caf\udce9"
    out = io.StringIO()
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    writer = csv.writer(out, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])), lineterminator=newline)
    if case is not SENET and draw(st.booleans()):
        out.write(f"Usage report{newline}generated 2026-11-02{newline}")
    writer.writerow(labels)
    for row in rows:
        writer.writerow(row)
        if draw(st.integers(0, 9)) == 0:
            out.write(newline)  # a blank line: not a record
    text = out.getvalue()
    if not draw(st.booleans()):
        text = text.removesuffix(newline)
    data = (("\ufeff" if draw(st.booleans()) else "") + text).encode("utf-8", errors="surrogateescape")
    return data, draw(st.sampled_from([16, 97, 1 << 20]))


@dataclass
class Expected:
    rows: list[dict[str, Any]]
    invalid_rows: set[int]
    invalid_cells: set[tuple[int, str]]


def unique(labels: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for label in labels:
        key, n = label, 2
        while key in seen:
            key, n = f"{label} #{n}", n + 1
        seen.add(key)
        out.append(key)
    return out


def reference_csv(data: bytes, case: CsvCase) -> Expected:
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    records = iter(csv.reader(io.StringIO(text, newline="")))
    header = next(r for r in records if all(req in [case.key(label.strip()) for label in r] for req in case.required))
    keys = [case.key(label.strip()) for label in header]
    rank = {key: n for n, key in enumerate(case.columns)}
    typed: dict[str, int] = {}
    for index, key in enumerate(keys):
        column = case.columns.get(key)
        if column is not None and (column not in typed or rank[key] < rank[keys[typed[column]]]):
            typed[column] = index
    extra_indices = [i for i in range(len(header)) if case.keep_all or i not in typed.values()]
    extra_keys = unique([header[i] for i in extra_indices])
    expected = Expected([], set(), set())
    for number, record in enumerate((r for r in records if r), start=1):
        if len(record) != len(header):
            expected.invalid_rows.add(number)
            continue
        row: dict[str, Any] = {}
        for label, value in zip(header, record, strict=True):
            if any("\udc80" <= c <= "\udcff" for c in value):
                expected.invalid_cells.add((number, label))
        for column, index in typed.items():
            value = record[index]
            value = value.strip(" \t") if case.trim and case.kinds.get(column, "text") != "text" else value
            try:
                row[column] = None if value == "" else ref_text_value(value, case.kinds.get(column, "text"))
            except Invalid:
                expected.invalid_cells.add((number, header[index]))
        row["extra"] = [(key, record[i]) for key, i in zip(extra_keys, extra_indices, strict=True) if record[i] != ""]
        expected.rows.append(row)
    return expected


def read_csv_case(case: CsvCase, data: bytes, block: int) -> pa.Table:
    params = {"application_eui": "00250C0000010001"} if case is SENET else None  # what its manifest says
    context = ReadContext.for_plan(plan_for(case.export), report_id="1", source_key=case.source_key, params=params)
    layout_name = "DEVICE_LAYOUT" if case is SENET else "LAYOUT"
    layout = dataclasses.replace(getattr(case.module, layout_name), block_size=block)
    raw = gzip.compress(data) if case.gzip else data
    with mock.patch.object(case.module, layout_name, layout):
        batches = list(case.dataset.read(io.BytesIO(raw), context))
    return pa.Table.from_batches(batches, schema=case.dataset.reader_schema)


def check_csv(case: CsvCase, data: bytes, block: int) -> None:
    expected = reference_csv(data, case)
    try:
        table = read_csv_case(case, data, block)
    except InvalidReportError as exc:
        message = str(exc)
        named = {n for n in expected.invalid_rows if f"data row {n}: " in message} | {
            (n, label) for n, label in expected.invalid_cells if f"data row {n}, column {label!r}: " in message}
        assert named, f"the reader refused what the reference accepts, or named no invalid row/column: {message}"
        event("refused, naming an invalid row or column")
        return
    assert not expected.invalid_rows and not expected.invalid_cells, f"accepted an invalid report: {expected}"
    event(f"read: {min(len(expected.rows), 5)}{'+' if len(expected.rows) >= 5 else ''} rows")
    got = table.to_pylist()
    assert len(got) == len(expected.rows)
    for want, row in zip(expected.rows, got, strict=True):
        for column, value in want.items():
            assert row[column] == value, (column, value, row[column])
        for column in case.kinds:
            if column not in want:
                assert row[column] is None


@pytest.mark.parametrize("case", [PARTICLE, HERE, SENET], ids=["particle", "here", "senet_details"])
@SETTINGS
@given(data=st.data())
def test_csv_readers_agree_with_the_reference(case: CsvCase, data: st.DataObject) -> None:
    check_csv(case, *data.draw(csv_reports(case), label="report, block size"))


# JSON readers: numbers are written as raw JSON text, so the report holds exactly the digits generated.

@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (a number's exact text, NaN, Infinity)."""

    text: str


def dumps(value: Any, repeat: str | None = None) -> str:
    """JSON text with ``Raw`` tokens; ``repeat`` names a key written twice in its object."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = [f"{json.dumps(k)}:{dumps(v, repeat)}" for k, v in value.items()]
        items += [f"{json.dumps(k)}:{dumps(v, repeat)}" for k, v in value.items() if k == repeat]
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v, repeat) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _json_numbers() -> st.SearchStrategy[str]:
    """Valid JSON number text that fits decimal(38,18) (and, when whole, int64)."""
    whole = st.integers(-(10**18), 10**18).map(str)
    spelled = st.tuples(_fitting_decimals(), st.sampled_from(["str", "f", "e", "E"])).map(lambda p: _spell(*p))
    return st.one_of(whole, spelled.filter(lambda t: _JSON_NUMBER.fullmatch(t) is not None),
                     st.sampled_from(["-0", "0.10000000000000000", "1E+3", "15e-3", "0.0", "1.0"]))


ODD_JSON_NUMBER = st.one_of(
    st.sampled_from(["1e400", "0.10000000000000000001", "NaN", "Infinity", "-Infinity", "0.0000000000000000001",
                     "123456789012345678901", "6.000000000000001e-07", "1e30", "99999999999999999999.5",
                     "9223372036854775808", "2.5"]),
    st.tuples(st.integers(1, 99), st.integers(-60, 60)).map(lambda p: f"{p[0]}e{p[1]}"),
).map(Raw)
JSON_NUMBER = _json_numbers().map(Raw)
JSON_STRING_NUMBER = st.one_of(_decimal_texts(), st.sampled_from([" 12 ", "7", "+5"]))
JSON_SCALAR = st.one_of(JSON_NUMBER, TEXT, st.booleans(), st.none())
JSON_VALUE = st.one_of(
    JSON_SCALAR, st.lists(st.one_of(TEXT, st.integers(-5, 5), st.booleans()), max_size=3),
    st.dictionaries(st.text("abc", min_size=1, max_size=3), st.one_of(TEXT, st.integers(-5, 5)), max_size=2))
COUNT = mostly(st.one_of(st.integers(0, 10**6).map(lambda n: Raw(str(n))), st.integers(0, 10**6).map(
    lambda n: Raw(f"{n}.0")), st.integers(-99, 99).map(str), st.none()),
    st.one_of(ODD_JSON_NUMBER, TEXT, st.booleans(), st.sampled_from(["1.5", "n/a", "0x10", "\u0663"])), one_in=40)
AMOUNT = mostly(st.one_of(JSON_NUMBER, JSON_STRING_NUMBER, st.none()),
                st.one_of(ODD_JSON_NUMBER, _odd_decimal_texts(), st.booleans(), TEXT, st.just([1])), one_in=40)


def _read_json(data: Dataset, export: Any, raw: bytes, source_key: str, period: str = "2026-10") -> pa.Table:
    context = ReadContext.for_plan(plan_for(export, period), report_id=None, source_key=source_key)
    return pa.Table.from_batches(list(data.read(io.BytesIO(raw), context)), schema=data.reader_schema)


def check_json(read: Callable[[], pa.Table], reference: Callable[[], tuple[list[dict[str, Any]], set[str]]],
               compare: Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]) -> None:
    """Either the reader equals the reference, or both refuse and the reader names one invalid place."""
    rows, invalid = reference()
    try:
        table = read()
    except InvalidReportError as exc:
        message = str(exc)
        assert invalid, f"the reader refused what the reference accepts: {message}"
        assert any(place in message for place in invalid), f"{message!r} names none of {sorted(invalid)}"
        event("refused, naming an invalid line, row and field")
        return
    assert not invalid, f"accepted an invalid report: {sorted(invalid)}"
    event(f"read: {min(len(rows), 5)}{'+' if len(rows) >= 5 else ''} rows")
    compare(rows, table.to_pylist())


# Telnyx usage pages.

TELNYX_EXPORT = TelnyxExport(name="telnyx-messaging", secret_name="s", product="messaging",
                             dimensions=("direction",), metrics=("cost",))
DIMENSIONS = ["direction", "country_iso", "currency"]
METRICS = ["cost", "parts", "count", "billed_sec"]


@st.composite
def telnyx_pages(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Any], str | None]:
    requests, pages = [], []
    for _ in range(draw(st.integers(1, 3))):
        dimensions = draw(st.lists(st.sampled_from(DIMENSIONS), max_size=3))
        metrics = draw(st.lists(st.sampled_from(METRICS), max_size=4))
        requests.append({"product": "messaging", "dimensions": dimensions, "metrics": metrics,
                         "start_date": "2026-10-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"})
        rows = []
        for _ in range(draw(st.integers(0, 4))):
            row: dict[str, Any] = {}
            for name in draw(st.lists(st.sampled_from(["product", "user_id", "currency", *DIMENSIONS, *METRICS,
                                                       "unknown", "flags"]), unique=True, max_size=7)):
                if name in METRICS:
                    row[name] = draw(AMOUNT)
                elif name in ("unknown", "flags"):
                    row[name] = draw(JSON_VALUE)
                else:
                    row[name] = draw(st.one_of(TEXT, st.none(), JSON_NUMBER))
            rows.append(row)
        pages.append({"meta": {}, "data": rows})
    repeat = draw(st.sampled_from([None, None, None, None, "parts", "direction"]))
    return requests, pages, repeat


def _lines(raw: bytes) -> list[str]:
    return raw.decode().split("\n")[:-1]  # only "\n" ends a line, as for the readers (not U+2028 and the like)


def _envelopes(raw: bytes, invalid: set[str]) -> list[tuple[int, Any]]:
    """(line number, parsed line); a line repeating a key is noted as invalid instead."""
    parsed = []
    for line, text in enumerate(_lines(raw), start=1):
        try:
            parsed.append((line, ref_json_load(text)))
        except Invalid as why:
            invalid.add(f"line {line}: {str(why).removesuffix(' twice')}")
    return parsed


def telnyx_reference(raw: bytes) -> tuple[list[dict[str, Any]], set[str]]:
    rows: list[dict[str, Any]] = []
    invalid: set[str] = set()
    for line, envelope in _envelopes(raw, invalid):
        request, data = envelope["request"], envelope["response"]["data"]
        dimensions = list(dict.fromkeys(request["dimensions"]))
        metrics = list(dict.fromkeys(request["metrics"]))
        for number, row in enumerate(data, start=1):
            where = f"line {line} row {number}"
            out: dict[str, Any] = {
                "product": ref_json_text(row.get("product", request["product"])),
                "user_id": ref_json_text(row.get("user_id")), "currency": ref_json_text(row.get("currency")),
                "dimensions": [(n, ref_json_text(row[n])) for n in dimensions if row.get(n) is not None],
                "extra": [(k, ref_json_text(v)) for k, v in row.items()
                          if k not in {"product", "user_id", *dimensions, *metrics} and v is not None],
                "metrics": [],
            }
            for name in metrics:
                try:
                    value = ref_json_amount(row.get(name))
                except Invalid:
                    invalid.add(f"{where} metric {name!r}: ")
                    continue
                if value is not None:
                    out["metrics"].append((name, value))
            try:
                out["cost"] = ref_json_amount(row.get("cost"))
            except Invalid:
                invalid.add(f"{where} cost: ")
            rows.append(out)
    return rows, invalid


def same_rows(want: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
    """Every column the reference computed holds the same value (unordered maps compared as lists, in order)."""
    assert len(got) == len(want)
    for expected, row in zip(want, got, strict=True):
        for key, value in expected.items():
            assert row[key] == value, (key, value, row[key])


@SETTINGS
@given(telnyx_pages())
def test_telnyx_reader_agrees_with_the_reference(generated: tuple[list[dict[str, Any]], list[Any], str | None]) -> None:
    requests, pages, repeat = generated
    raw = b"".join(envelope_line(req, dumps(page, repeat).encode()) for req, page in zip(requests, pages, strict=True))
    check_json(lambda: _read_json(telnyx.DATASET, TELNYX_EXPORT, raw, "raw/telnyx/x.jsonl"),
               lambda: telnyx_reference(raw), same_rows)


# Senet summaries.

SENET_EXPORT = SenetExport(name="senet-fleet", secret_name="s", application_euis=("00250C0000010001",))
SUMMARY_KEYS = sorted({*senet.SUMMARY_FIELDS, "eui", "month", "year", "billingplan", "totallocaldownmsg"})


@st.composite
def senet_summaries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    requests, bodies = [], []
    for _ in range(draw(st.integers(1, 3))):
        requests.append({"eui": draw(st.sampled_from(["00250C0000010001", "00250C0000010002"])),
                         "month": draw(mostly(st.integers(1, 12), st.one_of(st.integers(-200, 200), st.just("10")))),
                         "year": draw(mostly(st.just(2026), st.one_of(st.integers(-40000, 40000), st.just(2026.5))))})
        body: dict[str, Any] = {}
        for key in draw(st.lists(st.sampled_from(SUMMARY_KEYS).flatmap(_spelled), max_size=6)):
            if key not in body:
                body[key] = draw(st.one_of(COUNT, JSON_VALUE))
        bodies.append(body)
    repeat = draw(st.sampled_from([None, None, None, None, *sorted({k for b in bodies for k in b})[:1]]))
    return requests, bodies, repeat


def _norm(key: str) -> str:
    return re.sub(r"[^0-9a-z]", "", key.lower())


_SUMMARY_IDS = {"eui", "appeui", "applicationeui", "month", "year"}


def _summary_count(key: str, value: Any) -> int | None:
    """An undocumented field's value as an other_counters entry: a JSON number that is a whole int64."""
    if _norm(key) in _SUMMARY_IDS or isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        return ref_json_int(value)
    except Invalid:
        return None


def senet_reference(raw: bytes) -> tuple[list[dict[str, Any]], set[str]]:
    rows: list[dict[str, Any]] = []
    invalid: set[str] = set()
    for line, envelope in _envelopes(raw, invalid):
        request, body = envelope["request"], envelope["response"]
        out: dict[str, Any] = {"application_eui": request["eui"]}
        for name, bits in (("year", 16), ("month", 8)):
            try:
                out[name] = ref_json_int(request[name], bits)
            except Invalid:
                invalid.add(f"line {line} {name}: ")
        other, extra = [], []
        for key, value in body.items():
            column = senet.SUMMARY_FIELDS.get(_norm(key))
            count = _summary_count(key, value)
            if column is not None and column not in out:
                try:
                    out[column] = ref_json_int(value)
                except Invalid:
                    invalid.add(f"line {line} {key}: ")
            elif column is None and count is not None:
                other.append((key, count))
            elif value is not None:
                extra.append((key, ref_json_text(value)))
        out["other_counters"], out["extra"] = other, extra
        rows.append(out)
    return rows, invalid


def same_rows_all_columns(want: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
    """Every column the reader wrote is the reference's (null where the reference has nothing)."""
    assert len(got) == len(want)
    for expected, row in zip(want, got, strict=True):
        for key in row:
            assert row[key] == expected.get(key), (key, expected.get(key), row[key])


@SETTINGS
@given(senet_summaries())
def test_senet_summary_reader_agrees_with_the_reference(
    generated: tuple[list[dict[str, Any]], list[dict[str, Any]], str | None],
) -> None:
    requests, bodies, repeat = generated
    raw = b"".join(envelope_line(req, dumps(body, repeat).encode()) for req, body in zip(requests, bodies, strict=True))
    check_json(lambda: _read_json(senet.APPLICATION_DATASET, SENET_EXPORT, raw, "raw/senet/x.jsonl"),
               lambda: senet_reference(raw), same_rows_all_columns)


# KORE usage records.

KORE_EXPORT = KoreExport(name="kore-main", secret_name="kore/main")
PERIOD_TEXT = mostly(
    st.tuples(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
              st.sampled_from(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S+02:00", "%Y-%m-%d"])).map(
        lambda pair: pair[0].replace(microsecond=0).strftime(pair[1])),
    st.one_of(st.sampled_from(["yesterday", "2024-05-01T00:00:00.000001Z", "2024-05-01T00:00:00.123Z", "2024-13-01"]),
              st.integers(0, 9).map(lambda n: Raw(str(n)))), one_in=40)
SECTION_FIELDS = {"data": {"total": "int", "download": "int", "upload": "int", "units": "str", "billed": "amount"},
                  "commands": {"total": "int", "to_sim": "int", "from_sim": "int", "billed": "amount"}}
STR_VALUE = mostly(st.one_of(TEXT, st.none(), JSON_NUMBER),
                   st.one_of(ODD_JSON_NUMBER, st.booleans(), st.just({"a": 1})), one_in=40)


@st.composite
def kore_pages(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str | None]:
    pages = []
    for _ in range(draw(st.integers(1, 2))):
        records = []
        for _ in range(draw(st.integers(0, 4))):
            record: dict[str, Any] = {"account_sid": draw(STR_VALUE)}
            period = {"start": draw(PERIOD_TEXT), "end": draw(PERIOD_TEXT)}
            if draw(st.integers(0, 9)) == 0:
                period["tz"] = draw(JSON_VALUE)
            record["period"] = period
            for section, fields in SECTION_FIELDS.items():
                if draw(st.integers(0, 9)) == 0:
                    record[section] = None
                    continue
                body: dict[str, Any] = {}
                for name in draw(st.lists(st.sampled_from([*fields, "rating"]), unique=True, max_size=6)):
                    kind = fields.get(name, "other")
                    body[name] = draw(COUNT if kind == "int" else AMOUNT if kind == "amount" else
                                      STR_VALUE if kind == "str" else JSON_VALUE)
                if draw(st.booleans()):
                    body["home"] = {"total": draw(COUNT), "billed": draw(AMOUNT)}
                record[section] = body
            if draw(st.integers(0, 4)) == 0:
                record["sim_count"] = draw(JSON_VALUE)
            records.append(record)
        pages.append({"usage_records": records, "meta": {"next_page_url": None}})
    return pages, draw(st.sampled_from([None, None, None, None, "total", "start"]))


def _kore_reference(raw: bytes) -> tuple[list[dict[str, Any]], set[str]]:
    rows: list[dict[str, Any]] = []
    invalid: set[str] = set()
    for line, page in _envelopes(raw, invalid):
        for number, record in enumerate(page["usage_records"], start=1):
            where = f"line {line} record {number}: "
            out: dict[str, Any] = {"extra": {}}
            account = record.get("account_sid")
            if account is None or isinstance(account, str) or (isinstance(account, int | Decimal) and not isinstance(
                    account, bool)):
                out["account_sid"] = None if account is None else str(account)
            else:
                invalid.add(where + "account_sid")
            for key, value in record["period"].items():
                if key not in ("start", "end"):
                    out["extra"][f"period.{key}"] = _kore_json(value)
                    continue
                try:
                    if not isinstance(value, str):
                        raise Invalid
                    moment = datetime.fromisoformat(value.strip())
                    if moment.microsecond % 1000:
                        raise Invalid
                    out[f"period_{key}"] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(
                        UTC)
                except (Invalid, ValueError):
                    invalid.add(where + f"period.{key}")
            for section, fields in SECTION_FIELDS.items():
                body = record.get(section)
                if body is None:
                    continue
                for key, value in body.items():
                    kind = fields.get(key)
                    try:
                        if kind == "int":
                            out[f"{section}_{key}"] = ref_json_int(value)
                        elif kind == "amount":
                            out[f"{section}_{key}"] = ref_json_amount(value)
                        elif kind == "str":
                            if value is not None and not isinstance(value, str) and not (
                                    isinstance(value, int | Decimal) and not isinstance(value, bool)):
                                raise Invalid
                            out[f"{section}_{key}"] = None if value is None else str(value)
                        elif key == "home":
                            for child, item in value.items():
                                if child == "total":
                                    out[f"{section}_home_total"] = ref_json_int(item)
                                else:
                                    out[f"{section}_home_billed"] = ref_json_amount(item)
                        else:
                            out["extra"][f"{section}.{key}"] = _kore_json(value)
                    except Invalid:
                        path = f"{section}.{key}" if key != "home" else f"{section}.home."
                        invalid.add(where + path)
            for key, value in record.items():
                if key not in ("account_sid", "period", *SECTION_FIELDS):
                    out["extra"][key] = _kore_json(value)
            rows.append(out)
    return rows, invalid


def _kore_json(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_kore_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_kore_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def same_kore_rows(want: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for expected, row in zip(want, got, strict=True):
        assert dict(row["extra"]) == expected["extra"]
        for key, value in expected.items():
            if key != "extra":
                assert row[key] == value, (key, value, row[key])


@SETTINGS
@given(kore_pages())
def test_kore_reader_agrees_with_the_reference(generated: tuple[list[dict[str, Any]], str | None]) -> None:
    pages, repeat = generated
    raw = b"".join(dumps(page, repeat).encode() + b"\n" for page in pages)
    check_json(lambda: _read_json(kore.DATASET, KORE_EXPORT, raw, "raw/kore/x.jsonl", "2024-05"),
               lambda: _kore_reference(raw), same_kore_rows)


def test_a_json_number_beyond_python_int_digits_is_a_named_error_not_a_crash() -> None:
    # Python refuses int() of more than 4,300 digits; the reader names the field instead of crashing
    raw = envelope_line({"product": "messaging", "dimensions": [], "metrics": ["parts"],
                         "start_date": "2026-10-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"},
                        b'{"data": [{"parts": 1' + b"0" * 5000 + b"}]}")
    with pytest.raises(InvalidReportError, match=r"line 1 row 1 metric 'parts': .* digits before the decimal"):
        _read_json(telnyx.DATASET, TELNYX_EXPORT, raw, "raw/telnyx/x.jsonl")


def test_reference_rules_spot_checks() -> None:
    # The reference itself, on the values the issue reported
    with pytest.raises(Invalid):
        ref_amount(Decimal("1e30"))
    with pytest.raises(Invalid):
        ref_amount(Decimal("0.0000000000000000001"))
    assert ref_amount(Decimal("0.0000005")) == Decimal("0.0000005")
    with pytest.raises(Invalid):
        ref_text_value("123456789012345678901", "decimal")
    with pytest.raises((Invalid, InvalidOperation)):
        ref_json_amount(float("inf"))
