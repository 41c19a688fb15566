"""KORE JSON lines -> kore_usage_records: flattening, roaming shapes, totals checks, extra, named queries."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from report_exporter.adapters.auth import clear_token_cache
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.datasets.base import ReadContext
from report_exporter.datasets.registry import DATASETS
from report_exporter.errors import InvalidReportError
from report_exporter.local.query import connect, rows
from report_exporter.models.exports import KoreExport
from report_exporter.vendors.kore import dataset as kore_dataset
from report_exporter.vendors.kore.adapter import KoreAdapter
from report_exporter.vendors.kore.dataset import DATASET
from report_exporter.vendors.kore.simulator import KoreSimulator
from tests.fakes import MemorySink, plan_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vendors" / "kore"
EXPORT = KoreExport(name="kore-main", secret_name="kore/main")
UTC = dt.UTC


def fixture_lines() -> bytes:
    """The three fixture pages as the adapter stores them: one page body per line."""
    pages = [(FIXTURES / f"usage_records_page{n}.json").read_bytes() for n in (1, 2, 3)]
    return b"".join(page.strip().replace(b"\n", b" ") + b"\n" for page in pages)


def read(data: bytes, export: KoreExport = EXPORT, period: str = "2024-05") -> pa.Table:
    context = ReadContext.for_plan(plan_for(export, period), report_id=None, source_key="raw/kore/x.jsonl")
    batches = list(DATASET.read(io.BytesIO(data), context))
    return pa.Table.from_batches(batches, schema=DATASET.reader_schema)


def page(*records: dict[str, Any]) -> bytes:
    return json.dumps({"usage_records": list(records), "meta": {"next_page_url": None}}).encode() + b"\n"


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account_sid": "AC" + "0" * 32,
        "period": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"},
        "data": {"total": 3, "download": 2, "upload": 1, "units": "bytes", "billed": 0.01, "billing_units": "USD"},
        "commands": {"total": 1, "to_sim": 1, "from_sim": 0, "billed": 0, "billing_units": "USD"},
    }
    base.update(changes)
    return base


def test_dataset_is_registered_with_its_schema() -> None:
    # Given the registry / When KORE's dataset is looked up / Then its columns are typed as documented
    assert DATASETS["kore_usage_records"] is DATASET
    schema = DATASET.reader_schema
    assert schema.field("period_start").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("data_billed").type == pa.decimal128(38, 18)
    assert schema.field("data_home_total").type == pa.int64()
    assert pa.types.is_list(schema.field("data_international_roaming").type)
    assert schema.field("commands_international_roaming").type.value_type.names == [
        "country_code", "total", "to_sim", "from_sim", "billed", "billing_units",
    ]
    assert schema.names[-1] == "extra"


def test_read_flattens_three_pages_into_one_row_per_record() -> None:
    # Given the three fixture pages (two meta shapes, one pretty-printed originally)
    # When they are read
    table = read(fixture_lines())
    # Then there is one row per record, with nested counters flattened and typed
    assert table.schema == DATASET.reader_schema
    assert table.num_rows == 4
    first = table.to_pylist()[0]
    assert first["account_sid"] == "AC0123456789abcdef0123456789abcdef"
    assert first["sim_sid"] is None
    assert first["granularity"] == "daily"
    assert first["period_start"] == dt.datetime(2024, 5, 1, tzinfo=UTC)
    assert first["period_end"] == dt.datetime(2024, 5, 2, tzinfo=UTC)
    assert first["usage_date"] == dt.date(2024, 5, 1)
    assert (first["data_total"], first["data_download"], first["data_upload"]) == (2048, 1024, 1024)
    assert first["data_billed"] == Decimal("0.010000")
    assert first["data_home_billed"] == Decimal("0.007500")
    assert first["data_national_roaming_total"] is None
    assert (first["commands_total"], first["commands_to_sim"], first["commands_from_sim"]) == (3, 2, 1)
    assert first["extra"] == []


def test_read_accepts_international_roaming_as_array_object_or_null() -> None:
    # Given records whose international_roaming is an array, an object, null, absent, and no data at all
    roaming = {"country_code": "DE", "total": 5, "download": 3, "upload": 2, "units": "bytes", "billed": 0.5,
               "billing_units": "USD"}
    data = {"total": 5, "download": 3, "upload": 2}
    records = [
        record(data={**data, "international_roaming": [roaming, {**roaming, "country_code": "FR"}]}),
        record(data={**data, "international_roaming": roaming}),
        record(data={**data, "international_roaming": None}),
        record(data=data),
        record(data=None),
    ]
    # When read
    table = read(page(*records))
    # Then arrays stay lists, an object becomes a one-element list, null/absent an empty list;
    # only a missing data object leaves the column null
    values = table.column("data_international_roaming").to_pylist()
    assert [None if v is None else [e["country_code"] for e in v] for v in values] == [
        ["DE", "FR"], ["DE"], [], [], None,
    ]
    assert values[1][0]["billed"] == Decimal("0.500000")


def test_read_accepts_the_simulators_mixed_roaming_shapes() -> None:
    # Given a simulator month cycling array / object / null roaming, downloaded by the adapter
    clear_token_cache()
    sim = KoreSimulator()
    sim.clock = VirtualClock(dt.datetime(2026, 11, 3, 6, 0, tzinfo=UTC))
    export = KoreExport(name="kore-main", secret_name="kore/main", base_url=sim.base_url, token_url=sim.token_url)
    adapter = KoreAdapter(export, build_client(sim.base_url, transport=sim.transport()),
                          {k: SecretStr(v) for k, v in sim.credentials().items()}, sim.clock)
    sink = MemorySink()
    adapter.download(plan_for(export, "2024-05"), None, sink)
    clear_token_cache()
    # When the raw file is read
    table = read(next(iter(sink.files.values())), export)
    # Then rows in = records the adapter counted, and the shapes came out as 1, 1, 0 entries
    assert table.num_rows == sink.objects[0].records == 31
    lengths = [len(v) for v in table.column("data_international_roaming").to_pylist()]
    assert lengths[:6] == [1, 1, 0, 1, 1, 0]
    assert all(table.column("data_total_consistent").to_pylist())


def test_read_flags_totals_that_do_not_add_up_and_logs_the_count() -> None:
    # Given the fixture pages, where page 2's data and commands totals do not add up
    # When read
    with mock.patch.object(kore_dataset.logger, "warning") as warning:
        table = read(fixture_lines())
    # Then that record is flagged (and no other), and one warning counts them
    assert table.column("data_total_consistent").to_pylist() == [True, True, False, True]
    assert table.column("commands_total_consistent").to_pylist() == [True, True, False, True]
    warning.assert_called_once()
    counts = warning.call_args.kwargs["extra"]
    assert counts["data_total_mismatches"] == 1 and counts["commands_total_mismatches"] == 1
    assert counts["source_key"] == "raw/kore/x.jsonl"


def test_read_counts_simulator_records_whose_totals_do_not_add_up() -> None:
    # Given a simulator month with 4 inconsistent records
    sim = KoreSimulator(inconsistent=4)
    start, end = EXPORT.query_range(plan_for(EXPORT, "2024-05").window)
    body = page(*sim.usage_records(start, end, "daily"))
    # When read
    with mock.patch.object(kore_dataset.logger, "warning") as warning:
        table = read(body)
    # Then exactly 4 rows are flagged for data and 4 for commands
    assert table.column("data_total_consistent").to_pylist().count(False) == 4
    assert table.column("commands_total_consistent").to_pylist().count(False) == 4
    assert warning.call_args.kwargs["extra"]["data_total_mismatches"] == 4


def test_read_without_mismatches_logs_no_warning() -> None:
    # Given consistent records / When read / Then no warning
    with mock.patch.object(kore_dataset.logger, "warning") as warning:
        read(page(record(), record()))
    warning.assert_not_called()


def test_read_consistency_is_null_when_a_term_is_missing() -> None:
    # Given a record whose data has no upload
    table = read(page(record(data={"total": 3, "download": 3})))
    # When read / Then the check is unknown (null), not a mismatch
    assert table.column("data_total_consistent").to_pylist() == [None]


def test_read_keeps_unknown_fields_in_extra_as_json() -> None:
    # Given the fixture's page 2 (sim_count, data.rating_group) and nested unknowns
    extra_record = record(
        period={"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z", "tz": "GMT"},
        data={"total": 1, "download": 1, "upload": 0, "home": {"total": 1, "download": 1, "upload": 0, "rat": "LTE"},
              "international_roaming": [{"country_code": "DE", "total": 0, "download": 0, "upload": 0, "mcc": 262}]},
    )
    # When read
    table = read(fixture_lines() + page(extra_record))
    # Then unknown fields sit in extra under their dotted path, JSON-encoded
    extras = [dict(e) for e in table.column("extra").to_pylist()]
    assert extras[2] == {"data.rating_group": '"iot-basic"', "sim_count": "12"}
    assert extras[4] == {"period.tz": '"GMT"', "data.home.rat": '"LTE"', "data.international_roaming[0].mcc": "262"}


def test_read_fills_sim_sid_from_a_per_sim_export() -> None:
    # Given a per-SIM export whose records do not repeat the SIM
    export = KoreExport(name="kore-sim", secret_name="kore/main", sim_sid="DE" + "1" * 32, granularity="hourly")
    # When read / Then sim_sid and granularity come from the export
    row = read(page(record()), export).to_pylist()[0]
    assert row["sim_sid"] == "DE" + "1" * 32
    assert row["granularity"] == "hourly"


def test_read_keeps_billed_amounts_exact() -> None:
    # Given billed amounts as JSON numbers and strings, some with more than 6 places
    data = {"total": 0, "download": 0, "upload": 0}
    records = [record(data={**data, "billed": b}) for b in (0.1, 0.000001, "12.5", 0.0000006, 0, 1.5e-17)]
    # When read / Then they are exactly the decimal the JSON text said: nothing rounded
    billed = read(page(*records)).column("data_billed").to_pylist()
    assert billed == [Decimal("0.1"), Decimal("0.000001"), Decimal("12.5"), Decimal("0.0000006"), Decimal(0),
                      Decimal("1.5E-17")]


@pytest.mark.parametrize(("raw", "message"), [
    (b"6.000000000000001e-07", r"has 22 decimal places"),
    (b"1e30", r"has 31 digits before the decimal point"),
    (b"1e400", r"has 401 digits before the decimal point"),
    (b"NaN", r"not a finite number"),
    (b"Infinity", r"not a finite number"),
    (b'"inf"', r"not a number"),
])
def test_read_refuses_a_billed_amount_it_cannot_keep_exactly(raw: bytes, message: str) -> None:
    # Given a billed amount with more places than decimal(38,18) keeps, too large, or not finite
    body = page(record()).replace(b'"billed": 0.01', b'"billed": ' + raw)
    assert raw in body
    # When read / Then the run fails naming line, record and field, never rounding or storing inf
    with pytest.raises(InvalidReportError, match=rf"line 1 record 1: data\.billed: .*{message}"):
        read(body)


def test_read_turns_period_offsets_to_utc() -> None:
    # Given a period with an offset and one without (docs: all times are GMT)
    records = [
        record(period={"start": "2024-05-01T02:00:00+02:00", "end": "2024-05-02T02:00:00+02:00"}),
        record(period={"start": "2024-05-03T00:00:00", "end": "2024-05-04T00:00:00"}),
    ]
    # When read / Then both are UTC instants
    starts = read(page(*records)).column("period_start").to_pylist()
    assert starts == [dt.datetime(2024, 5, 1, tzinfo=UTC), dt.datetime(2024, 5, 3, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (record(data={"total": "lots"}), r"line 1 record 1: data\.total: expected an integer"),
        (record(data={"billed": "free"}), r"data\.billed: expected a decimal"),
        (record(period={"start": "yesterday"}), r"period\.start: expected an ISO 8601"),
        (record(period={"end": "2024-05-02T00:00:00Z"}), r"no period\.start"),
        (record(data={"international_roaming": "DE"}), r"international_roaming must be an array"),
        (record(commands=[1]), r"commands must be an object"),
        (record(data={"total": 2**64}), r"data\.total: expected an integer"),
    ],
)
def test_read_names_the_bad_value(bad: dict[str, Any], message: str) -> None:
    # Given a record with a value of the wrong kind / When read / Then the line, record and field are named
    with pytest.raises(InvalidReportError, match=message):
        read(page(bad))


def test_read_refuses_a_line_that_is_not_a_usage_page() -> None:
    # Given a line that is JSON but not a usage list, and one that is not JSON
    # When read / Then InvalidReportError names the line
    with pytest.raises(InvalidReportError, match="line 2: no 'usage_records' list"):
        read(page(record()) + b'{"message": "x"}\n')
    with pytest.raises(InvalidReportError, match="line 1: not a JSON page"):
        read(b"<html>\n")


def test_read_yields_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given batches of at most 4 records and 2 pages of 5 records
    monkeypatch.setattr(kore_dataset, "BATCH_RECORDS", 4)
    body = page(*[record()] * 5) * 2
    context = ReadContext.for_plan(plan_for(EXPORT, "2024-05"), report_id=None, source_key="k")
    # When read
    batches = list(DATASET.read(io.BytesIO(body), context))
    # Then no batch holds more than 4 rows and none is lost
    assert [b.num_rows for b in batches] == [4, 4, 2]


def test_read_of_an_empty_month_yields_no_rows() -> None:
    # Given one page with no records / When read / Then no rows
    assert read(page()).num_rows == 0


def _write_partition(root: Path, export: str, period: str, table: pa.Table) -> None:
    folder = root / "curated" / DATASET.name / f"export={export}" / f"period={period}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "data.parquet")


def test_named_queries_run_on_duckdb(tmp_path: Path) -> None:
    # Given two exported months: April consistent, May with 2 inconsistent records and more data
    april = KoreSimulator()
    may = KoreSimulator(inconsistent=2)
    for sim, period in ((april, "2024-04"), (may, "2024-05")):
        plan = plan_for(EXPORT, period)
        start, end = EXPORT.query_range(plan.window)
        records = sim.usage_records(start, end, "daily")
        if period == "2024-05":
            for r in records:
                r["data"]["download"] += 1000
                r["data"]["total"] += 1000
        _write_partition(tmp_path, "kore-main", period, read(page(*records), period=period))
    con = connect(tmp_path)
    queries = {q.name: q for q in DATASET.queries}
    # When every named query runs / Then each answers
    for query in DATASET.queries:
        rows(con, query.sql)
    # And usage per month has one row per month with the summed bytes
    names, monthly = rows(con, queries["kore_data_usage_by_account_month"].sql)
    assert [r[names.index("period")] for r in monthly] == ["2024-04", "2024-05"]
    # And month over month shows May's change against April
    names, mom = rows(con, queries["kore_data_month_over_month"].sql)
    april_total, may_total = (r[names.index("data_total")] for r in mom)
    assert mom[0][names.index("previous_month")] is None
    assert mom[1][names.index("change")] == may_total - april_total
    # And the totals check lists May's two inconsistent records only
    names, bad = rows(con, queries["kore_inconsistent_totals"].sql)
    assert [r[names.index("period")] for r in bad] == ["2024-05", "2024-05"]
    assert all(r[names.index("data_difference")] == 7 for r in bad)
    # And the top days are 20 days, biggest first
    names, top = rows(con, queries["kore_top_days_by_data"].sql)
    totals = [r[names.index("data_total")] for r in top]
    assert len(top) == 20 and totals == sorted(totals, reverse=True)


def test_read_refuses_a_key_repeated_in_one_object() -> None:
    body = page(record()).replace(b'"upload": 1', b'"upload": 1, "upload": 2')
    with pytest.raises(InvalidReportError, match=r"line 1: the key 'upload' appears twice in one object"):
        read(body)


def test_read_refuses_a_period_finer_than_a_millisecond() -> None:
    bad = record(period={"start": "2024-05-01T00:00:00.000001Z", "end": "2024-05-02T00:00:00Z"})
    with pytest.raises(InvalidReportError, match=r"line 1 record 1: period\.start: .* finer than a millisecond"):
        read(page(bad))


def test_read_keeps_unknown_numbers_in_extra_as_written() -> None:
    # Given numbers a float would change (more digits than a double holds) in unknown fields
    body = page(record(rate=0.5, big=10**30)).replace(b'"rate": 0.5', b'"rate": 0.10000000000000000001')
    (row,) = read(body).to_pylist()
    # Then extra keeps them exactly as the JSON wrote them
    assert dict(row["extra"]) == {"rate": "0.10000000000000000001", "big": str(10**30)}


def test_records_starting_outside_the_window_are_counted() -> None:
    # Given records starting on the last day of April, in May, and at the very end of May (UTC export)
    starts = ["2024-04-30T00:00:00Z", "2024-05-01T00:00:00Z", "2024-05-31T23:00:00Z", "2024-06-01T00:00:00Z"]
    body = page(*[record(period={"start": s, "end": s}) for s in starts])
    context = ReadContext.for_plan(plan_for(EXPORT, "2024-05"), report_id=None, source_key="k")
    (batch,) = list(DATASET.read(io.BytesIO(body), context))
    assert DATASET.outside_period is not None
    assert DATASET.outside_period(batch, context.window) == 2
    # And in an export whose month is in another time zone, the window moves with it
    berlin = plan_for(EXPORT.model_copy(update={"timezone": "Europe/Berlin"}), "2024-05")
    # (May in Berlin is 04-30T22:00Z to 05-31T22:00Z: 05-31T23:00Z is June 1st there)
    assert DATASET.outside_period(batch, berlin.window) == 3
