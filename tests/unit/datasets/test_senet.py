"""Senet summary JSON lines and details CSV -> typed batches, and the named queries on DuckDB."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from report_exporter.adapters.ndjson import envelope_line
from report_exporter.datasets.base import Dataset, ReadContext
from report_exporter.errors import InvalidReportError
from report_exporter.local.query import connect, rows
from report_exporter.models.exports import SenetExport
from report_exporter.vendors.senet.dataset import APPLICATION_DATASET, DEVICE_DATASET
from tests.fakes import plan_for

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vendors" / "senet"
EUI = "00250C0000010001"
EXPORT = SenetExport(name="senet-fleet", secret_name="s", application_euis=(EUI,))
DETAILS_KEY = f"raw/senet/senet-fleet/2026-10/senet-fleet-2026-10-details-{EUI}.csv"


APPLICATION = {"application_eui": EUI}


def read(data: Dataset, raw: bytes, params: dict[str, str] = APPLICATION) -> pa.Table:
    """``params`` as the raw object's manifest has them (the details file's application EUI)."""
    context = ReadContext.for_plan(plan_for(EXPORT), report_id=None, source_key=DETAILS_KEY, params=params)
    return pa.Table.from_batches(list(data.read(io.BytesIO(raw), context)), schema=data.reader_schema)


def summary_line(body: dict[str, Any] | bytes, eui: str = EUI, month: int = 10) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return envelope_line({"eui": eui, "month": month, "year": 2026}, raw)


def test_senet_summary_reads_the_documented_counters() -> None:
    # Given the recorded summary as the adapter stores it
    raw = summary_line((FIXTURES / "summary.json").read_bytes())
    # When read
    (row,) = read(APPLICATION_DATASET, raw).to_pylist()
    # Then the request names the Application and month, documented fields are typed, the rest kept
    assert (row["application_eui"], row["year"], row["month"]) == (EUI, 2026, 10)
    assert row["number_of_devices"] == 3 and row["number_of_reporting_devices"] == 2
    assert (row["total_up_packets"], row["total_down_packets"]) == (4520, 37)
    assert row["total_security_sessions"] == 4  # documented as totalSecuritySession (singular)
    assert (row["total_local_up_msg"], row["total_foreign_up_msg"]) == (4100, 420)
    assert row["other_counters"] == [("totalLocalDownMsg", 30)]
    assert row["extra"] == [("billingPlan", "LoRaWAN Standard")]


def test_senet_summary_one_row_per_application_and_missing_fields_are_null() -> None:
    raw = summary_line({"numberOfDevices": 1}) + summary_line({"totalUpPackets": "12", "eui": EUI}, "00250C0000010002")
    table = read(APPLICATION_DATASET, raw)
    assert table.column("application_eui").to_pylist() == [EUI, "00250C0000010002"]
    assert table.column("total_up_packets").to_pylist() == [None, 12]
    assert table.column("extra").to_pylist() == [[], [("eui", EUI)]]


def test_senet_summary_fractional_count_names_line_and_field() -> None:
    raw = summary_line({"numberOfDevices": 1}) + summary_line({"totalUpPackets": 1.5})
    with pytest.raises(InvalidReportError, match=r"line 2 totalUpPackets: '1\.5' is not a whole number"):
        read(APPLICATION_DATASET, raw)


def test_senet_details_reads_the_recorded_file_header_driven() -> None:
    # Given the recorded details CSV (CRLF, quoted comma, quoted line break)
    raw = (FIXTURES / "details.csv").read_bytes()
    # When read
    table = read(DEVICE_DATASET, raw)
    # Then each device is a row of its Application, counts typed, every column also kept verbatim
    assert table.num_rows == 3
    first, second, _ = table.to_pylist()
    assert {k: first[k] for k in ("application_eui", "dev_eui", "contract_id", "uplinks", "downlinks",
                                  "security_sessions")} == {
        "application_eui": EUI, "dev_eui": "00250C0100000001", "contract_id": "C-1000",
        "uplinks": 4000, "downlinks": 30, "security_sessions": 1,
    }
    assert first["extra"] == [
        ("DevEUI", "00250C0100000001"), ("Device Name", "Meter, basement"), ("Contract ID", "C-1000"),
        ("Uplinks", "4000"), ("Downlinks", "30"), ("Security Sessions", "1"),
    ]
    assert ("Notes", "line one\r\nline two") in second["extra"]


@pytest.mark.parametrize("header", [
    "devEui,uplinkCount,DOWNLINKS,Customer Contract ID,Joins",
    "Device EUI,Up Msgs,Dn Msgs,contract_id,security_session",
    "dev_eui,total_up_packets,total_down_packets,Contract,successfulJoins",
])
def test_senet_details_maps_likely_labels_whatever_their_spelling(header: str) -> None:
    (row,) = read(DEVICE_DATASET, f"{header}\n00250C0100000009,7,2,C-9,1\n".encode()).to_pylist()
    assert (row["dev_eui"], row["uplinks"], row["downlinks"], row["contract_id"], row["security_sessions"]) == (
        "00250C0100000009", 7, 2, "C-9", 1,
    )


def test_senet_details_finds_the_header_after_a_preamble_and_tolerates_missing_columns() -> None:
    raw = b"Application Details,October 2026\n\nDevEUI,Last Seen\n00250C0100000001,2026-10-30\n"
    (row,) = read(DEVICE_DATASET, raw).to_pylist()
    assert row["dev_eui"] == "00250C0100000001" and row["uplinks"] is None
    assert row["extra"] == [("DevEUI", "00250C0100000001"), ("Last Seen", "2026-10-30")]


def test_senet_details_empty_body_is_an_application_without_devices() -> None:
    assert read(DEVICE_DATASET, b"").num_rows == 0
    assert read(DEVICE_DATASET, b"DevEUI,Uplinks\r\n").num_rows == 0


@pytest.mark.parametrize(("raw", "params", "message"), [
    (b"Name,Uplinks\nx,1\n", APPLICATION, "no header row with 'dev_eui'"),
    (b"DevEUI,Uplinks\n00250C0100000001,1.5\n", APPLICATION,
     "data row 1, column 'Uplinks': '1.5' is not a whole number"),
    (b"DevEUI,Uplinks\n00250C0100000001,1\n", {}, "its manifest names no application_eui"),
])
def test_senet_details_refuses_what_it_cannot_read(raw: bytes, params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidReportError, match=message):
        read(DEVICE_DATASET, raw, params)


def test_senet_details_take_the_application_from_the_manifest_not_the_file_name() -> None:
    # Given a details file whose manifest names an Application the object's key does not
    other = "00250C00000100FF"
    # When it is read / Then every device row carries the manifest's Application
    (row,) = read(DEVICE_DATASET, b"DevEUI,Uplinks\n00250C0100000001,1\n", {"application_eui": other}).to_pylist()
    assert row["application_eui"] == other


def publish(out: Path, data: Dataset, table: pa.Table, period: str) -> None:
    """Write ``table`` where WriteParquet would, with lineage columns, for the DuckDB views."""
    n = table.num_rows
    lineage = {"vendor": "senet", "report_id": None, "exported_at": datetime(2026, 11, 3, tzinfo=UTC),
               "source_key": "raw/x"}
    arrays = [table.column(f.name) if f.name in table.column_names else pa.array([lineage[f.name]] * n, f.type)
              for f in data.schema]
    folder = out / "curated" / data.name / "export=senet-fleet" / f"period={period}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=data.schema), folder / "data.parquet")


def test_senet_named_queries_answer_usage_questions_on_duckdb(tmp_path: Path) -> None:
    # Given two months of summaries and October's devices
    publish(tmp_path, APPLICATION_DATASET, read(APPLICATION_DATASET, summary_line(
        {"totalUpPackets": 10, "totalDownPackets": 1, "numberOfDevices": 2}, month=9)), "2026-09")
    publish(tmp_path, APPLICATION_DATASET, read(APPLICATION_DATASET, summary_line(
        {"totalUpPackets": 4520, "totalDownPackets": 37, "numberOfDevices": 3})), "2026-10")
    publish(tmp_path, DEVICE_DATASET, read(DEVICE_DATASET, (FIXTURES / "details.csv").read_bytes()), "2026-10")
    con = connect(tmp_path)
    (per_application,) = (q.sql for q in APPLICATION_DATASET.queries)
    (top_devices,) = (q.sql for q in DEVICE_DATASET.queries)
    # When the named queries run
    columns, applications = rows(con, per_application)
    _, devices = rows(con, top_devices)
    # Then uplinks/downlinks per Application per month, and October's devices by uplinks
    assert columns[:5] == ["export", "period", "application_eui", "uplinks", "downlinks"]
    assert [r[:5] for r in applications] == [
        ("senet-fleet", "2026-09", EUI, 10, 1), ("senet-fleet", "2026-10", EUI, 4520, 37),
    ]
    assert [(r[3], r[4]) for r in devices] == [("00250C0100000001", 4000), ("00250C0100000002", 520),
                                               ("00250C0100000003", 0)]


def test_senet_summary_a_second_alias_of_a_field_is_kept_in_extra() -> None:
    # Given the same counter under two spellings (both map to total_up_packets)
    raw = summary_line({"totalUpPackets": 10, "total_up_packets": 12, "totalSecuritySession": 1,
                        "totalSecuritySessions": 2})
    (row,) = read(APPLICATION_DATASET, raw).to_pylist()
    # Then the first fills the column and the other is kept, not silently overwritten
    assert row["total_up_packets"] == 10 and row["total_security_sessions"] == 1
    assert row["extra"] == [("total_up_packets", "12"), ("totalSecuritySessions", "2")]


@pytest.mark.parametrize(("body", "message"), [
    (b'{"totalUpPackets": 9223372036854775808}', r"line 1 totalUpPackets: '9223372036854775808' is out of the range"),
    (b'{"totalUpPackets": 1e400}', r"line 1 totalUpPackets: '1E\+400' is out of the range"),
    (b'{"totalUpPackets": NaN}', r"line 1 totalUpPackets: 'NaN' is not a whole number"),
    (b'{"totalUpPackets": 1, "totalUpPackets": 2}', r"line 1: the key 'totalUpPackets' appears twice"),
])
def test_senet_summary_counters_that_do_not_fit_are_named(body: bytes, message: str) -> None:
    with pytest.raises(InvalidReportError, match=message):
        read(APPLICATION_DATASET, summary_line(body))


def test_senet_summary_a_huge_unknown_count_goes_to_extra_not_other_counters() -> None:
    (row,) = read(APPLICATION_DATASET, summary_line(b'{"bigCounter": 99999999999999999999, "small": 3}')).to_pylist()
    assert row["other_counters"] == [("small", 3)]
    assert row["extra"] == [("bigCounter", "99999999999999999999")]


def test_senet_summary_rows_for_another_month_are_counted() -> None:
    raw = summary_line({"totalUpPackets": 1}) + summary_line({"totalUpPackets": 2}, month=9)
    context = ReadContext.for_plan(plan_for(EXPORT), report_id=None, source_key="raw/senet/x.jsonl")
    (batch,) = list(APPLICATION_DATASET.read(io.BytesIO(raw), context))
    assert APPLICATION_DATASET.outside_period is not None
    assert APPLICATION_DATASET.outside_period(batch, context.window) == 1
    assert DEVICE_DATASET.outside_period is None  # details rows carry no date of their own


def test_senet_details_duplicate_labels_fill_the_column_once_and_stay_in_extra() -> None:
    raw = b"DevEUI,Uplinks,Up Msgs,Uplinks\n00250C0100000001,4, 5 ,6\n"
    (row,) = read(DEVICE_DATASET, raw).to_pylist()
    assert row["uplinks"] == 4
    assert row["extra"] == [("DevEUI", "00250C0100000001"), ("Uplinks", "4"), ("Up Msgs", " 5 "), ("Uplinks #2", "6")]


def test_senet_details_a_header_only_file_without_line_break_has_no_devices() -> None:
    assert read(DEVICE_DATASET, b"DevEUI,Uplinks").num_rows == 0


@pytest.mark.parametrize(("request_fields", "message"), [
    ({"eui": EUI, "year": 40000, "month": 10}, r"^line 1 year: '40000' is out of the range"),
    ({"eui": EUI, "year": "x", "month": 10}, r"^line 1 year: 'x' is not a whole number"),
    ({"eui": EUI, "year": 2026, "month": 300}, r"^line 1 month: '300' is out of the range"),
    ({"eui": EUI, "year": 2026, "month": 1.5}, r"^line 1 month: '1\.5' is not a whole number"),
])
def test_senet_summary_a_request_year_or_month_that_does_not_fit_is_named(
        request_fields: dict[str, Any], message: str) -> None:
    # The year is stored as int16 and the month as int8: a value outside them is refused, naming the line and field
    with pytest.raises(InvalidReportError, match=message):
        read(APPLICATION_DATASET, envelope_line(request_fields, b'{"totalUpPackets": 1}'))


def test_senet_summary_that_is_not_an_object_names_its_line() -> None:
    raw = summary_line({"totalUpPackets": 1}) + summary_line(b"[1, 2]")
    with pytest.raises(InvalidReportError, match=r"^line 2: the summary is not a JSON object$"):
        read(APPLICATION_DATASET, raw)


def test_senet_details_without_an_application_say_what_a_details_file_is() -> None:
    with pytest.raises(InvalidReportError) as raised:
        read(DEVICE_DATASET, b"DevEUI,Uplinks\n00250C0100000001,1\n", {})
    assert str(raised.value) == (f"{DETAILS_KEY}: its manifest names no application_eui; a details file answers "
                                 "for one Application")


def test_senet_summary_rows_in_the_period_or_without_a_month_are_not_counted_outside_it() -> None:
    context = ReadContext.for_plan(plan_for(EXPORT), report_id=None, source_key="raw/senet/x.jsonl")
    assert APPLICATION_DATASET.outside_period is not None
    (batch,) = list(APPLICATION_DATASET.read(io.BytesIO(summary_line({"totalUpPackets": 1})), context))
    assert APPLICATION_DATASET.outside_period(batch, context.window) == 0
    # A request without year or month: nothing says it is another month, so it is not counted as one
    undated = envelope_line({"eui": EUI}, b'{"totalUpPackets": 1}')
    (batch,) = list(APPLICATION_DATASET.read(io.BytesIO(undated), context))
    assert batch.column("year").to_pylist() == [None]
    assert APPLICATION_DATASET.outside_period(batch, context.window) == 0


def test_senet_a_lone_surrogate_in_a_summary_names_the_line_not_a_codec() -> None:
    raw = summary_line({"totalUpPackets": 1}) + summary_line(b'{"totalUpPackets": 2, "name": "\\udc80"}')
    with pytest.raises(InvalidReportError, match=r"^line 2: a string holds a lone surrogate \(\\udc80\)"):
        read(APPLICATION_DATASET, raw)
